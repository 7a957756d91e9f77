"""Valid specs mutated at random: gen exits 0 or 2, writes nothing on 2, and never raises anything else.

Each example takes one of the example specs (renamed `fuzz`), mutates its data
(keys deleted, renamed or added, values replaced by other types) and then its
bytes (lines duplicated or dropped, truncation, random bytes, tabs, YAML
syntax), and runs `gen render` in-process on a fleet that already holds
rendered overlays, so that a write on error would show.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gen import yamlio
from gen.cli import cli
from tests.conftest import EXAMPLES, FIXTURES, make_fleet, snapshot

# Hypothesis touches a deprecated mypy_extensions name while it reports a failing
# example; with warnings as errors that would hide the example behind an internal error.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")

NAME = "fuzz"
SPEC = f"clusters/{NAME}.yaml"

# Reproducible in CI: the same examples on every run, nothing read from or written
# to a local example database. One example renders in a few tens of milliseconds;
# the deadline only catches a pathological one, with the 2-second bound.
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _base(name: str) -> dict[str, Any]:
    data = yamlio.load((FIXTURES / "clusters" / f"{name}.yaml").read_bytes(), name).data
    assert isinstance(data, dict)
    data["metadata"]["name"] = NAME
    data["spec"]["argocd"]["destination"] = {"name": NAME}  # on the examples' own, it would collide with them
    return data


BASES = [_base(name) for name in EXAMPLES]

# Values a spec field could plausibly be given by mistake, next to arbitrary ones.
NEAR_MISSES = st.sampled_from(
    [
        "",
        "0",
        "1m",
        "10s",
        "1.5s",
        "-1",
        "latest",
        "grafana/pyroscope",
        "/",
        "..",
        "../etc",
        "a,b",
        "k=v",
        "cpu,wall",
        "null",
        "true",
        "yes",
        "0x10",
        "1e3",
        "2024-01-01",
        "~",
        "*",
        "&a",
        "!!str",
        "é",
        "a" * 300,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    NEAR_MISSES,
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)
KEYS = st.one_of(st.text(min_size=1, max_size=12), NEAR_MISSES.filter(bool))


def _slots(data: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) of a tree, the root's entries included."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield data, key
            yield from _slots(value)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield data, index
            yield from _slots(value)


def _containers(data: Any) -> Iterator[Any]:
    if isinstance(data, dict | list):
        yield data
        for value in data.values() if isinstance(data, dict) else data:
            yield from _containers(value)


Draw = st.DrawFn


def _delete(draw: Draw, data: dict[str, Any]) -> None:
    parent, key = draw(st.sampled_from(list(_slots(data))))
    del parent[key]


def _replace(draw: Draw, data: dict[str, Any]) -> None:
    parent, key = draw(st.sampled_from(list(_slots(data))))
    parent[key] = draw(VALUES)


def _rename(draw: Draw, data: dict[str, Any]) -> None:
    mappings = [(p, k) for p, k in _slots(data) if isinstance(p, dict)]
    parent, key = draw(st.sampled_from(mappings))
    parent[draw(KEYS)] = parent.pop(key)


def _insert(draw: Draw, data: dict[str, Any]) -> None:
    target = draw(st.sampled_from(list(_containers(data))))
    if isinstance(target, dict):
        target[draw(KEYS)] = draw(VALUES)
    else:
        target.insert(draw(st.integers(0, len(target))), draw(VALUES))


STRUCTURAL = [_delete, _replace, _rename, _insert]

# Other valid values for fields by key name, so that many examples render (exit 0)
# and the builders see unusual but valid combinations.
ALTERNATIVES: dict[str, list[Any]] = {
    "namespace": ["profiling", "monitoring-2", "a"],
    "address": ["10.9.8.7", "::1", "pyroscope.example.internal"],
    "image": ["grafana/pyroscope:1.2.0", "grafana/pyroscope:2.2.1@sha256:" + "a" * 64, "registry:5000/alloy:v1.2.3"],
    "port": [1024, 4041, 65535],
    "storagePath": ["/data/pyroscope", "/var/lib/pyroscope-2", "/usr/local/pyroscope-data"],
    "retention": ["0", "1h", "36h30m15s"],
    "enabled": [True, False],
    "privileged": [True, False],
    "sampleRate": [1, 1000],
    "collectInterval": ["1s", "1m30s", "2h"],
    "datasourceName": ["P", "Pyroscope lab"],
    "state": ["present", "absent"],
    "tolerations": [[], [{"operator": "Exists"}], [{"key": "k", "value": "v", "effect": "NoExecute"}]],
    "version": ["2.9.1", "0.0.1"],
    "url": [None, "https://example.com/agent.jar"],
    "sha256": [None, "0" * 64],
    "installDir": ["/opt/p"],
    "includeFile": ["/usr/share/cassandra/cassandra.in.sh", "/opt/cassandra/*/bin/cassandra.in.sh"],
    "envFile": ["/etc/sysconfig/cassandra", "/opt/cassandra/pyroscope.env"],
    "applicationName": ["c", "cassandra.lab-1/a_b"],
    "event": ["cpu", "itimer", "wall", "ctimer"],
    "alloc": [None, "1", "1g"],
    "lock": [None, "1ns", "10s"],
    "uploadInterval": ["1ns", "60s"],
    "labels": [{}, {"rack": "r1", "_x.y": "a:b/c@d+e"}],
    "nodeSelector": [{}, {"example.com/role": "db-1"}],
    "targetRevision": ["v1.2.3", "refs/heads/x"],
    "project": ["default", "lab"],
    "automated": [True, False],
}


def _valid_alternative(draw: Draw, data: dict[str, Any]) -> None:
    slots = [(p, k) for p, k in _slots(data) if isinstance(p, dict) and k in ALTERNATIVES]
    if slots:
        parent, key = draw(st.sampled_from(slots))
        parent[key] = copy.deepcopy(draw(st.sampled_from(ALTERNATIVES[key])))


# Fragments of YAML syntax that a careless edit or a hostile file could hold.
SYNTAX = st.sampled_from(
    [
        b"\t",
        b"  ",
        b"&a ",
        b"*a",
        b"!!python/object/apply:os.system ",
        b"!!binary ",
        b"<<: ",
        b"---\n",
        b"...\n",
        b"[",
        b"]",
        b"{",
        b"}",
        b": ",
        b"- ",
        b"? ",
        b"'",
        b'"',
        b"#",
        b"%YAML 1.1\n",
        b"@",
        b"`",
        b"|",
        b">",
        b"\x00",
        b"\xff",
        b"\xef\xbb\xbf",
        b"\r",
        b"\n",
    ]
)


def _lines(text: bytes) -> list[bytes]:
    return text.splitlines(keepends=True) or [b""]


def _duplicate_line(draw: Draw, text: bytes) -> bytes:
    lines = _lines(text)
    i = draw(st.integers(0, len(lines) - 1))
    return b"".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


def _drop_line(draw: Draw, text: bytes) -> bytes:
    lines = _lines(text)
    i = draw(st.integers(0, len(lines) - 1))
    return b"".join(lines[:i] + lines[i + 1 :])


def _truncate(draw: Draw, text: bytes) -> bytes:
    return text[: draw(st.integers(0, len(text)))]


def _insert_bytes(draw: Draw, text: bytes) -> bytes:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.one_of(st.binary(min_size=1, max_size=8), SYNTAX)) + text[at:]


def _tab_indent(draw: Draw, text: bytes) -> bytes:
    lines = _lines(text)
    i = draw(st.integers(0, len(lines) - 1))
    lines[i] = b"\t" + lines[i].lstrip(b" ")
    return b"".join(lines)


TEXTUAL = [_duplicate_line, _drop_line, _truncate, _insert_bytes, _tab_indent]


@st.composite
def mutated_specs(draw: Draw) -> bytes:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 4))):
        _valid_alternative(draw, data)
    # About half of the examples stay valid, so that writing is exercised as much as refusing.
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            if data:
                draw(st.sampled_from(STRUCTURAL))(draw, data)
    text = yamlio.dump(data).encode("utf-8")
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 2))):
            mutate: Callable[[Draw, bytes], bytes] = draw(st.sampled_from(TEXTUAL))
            text = mutate(draw, text)
    return text


@pytest.fixture(scope="module")
def rendered_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fleet whose examples are rendered already: a write on error would change it."""
    root = make_fleet(tmp_path_factory.mktemp("fuzz") / "fleet")
    result = CliRunner().invoke(cli, ["render", "--all", "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _restore(root: Path, baseline: dict[str, bytes]) -> None:
    """Put the fleet back as it was after a successful render of the mutated spec."""
    current = snapshot(root)
    for rel in current.keys() - baseline.keys():
        (root / rel).unlink()
    for rel, data in baseline.items():
        if current.get(rel) != data:
            (root / rel).write_bytes(data)
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


@FUZZ
@given(spec=mutated_specs(), all_clusters=st.booleans())
def test_mutated_spec_exits_0_or_2_and_writes_nothing_on_error(
    rendered_fleet: Path, spec: bytes, all_clusters: bool
) -> None:
    root = rendered_fleet
    baseline = snapshot(root)
    (root / SPEC).write_bytes(spec)
    before = snapshot(root)
    args = ["render", "--all"] if all_clusters else ["render", NAME]
    try:
        result = CliRunner().invoke(cli, [*args, "--root", str(root)])
        # Anything but SystemExit escaping the command is a bug (exit 4 for a user).
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        event(f"exit {result.exit_code}")  # shown by --hypothesis-show-statistics
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            assert snapshot(root) == before
            for line in result.stderr.splitlines():
                # Only gen's own lines: a positioned problem in the spec, or one error line.
                assert line.startswith((f"{SPEC}:", "error: ")), line
    finally:
        (root / SPEC).unlink()
        _restore(root, baseline)
