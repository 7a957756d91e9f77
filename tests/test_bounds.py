"""Bounds and output: no spec value or file name can break a host, the API server, a pull-request comment or CI.

Values that land on every Cassandra JVM's command line are bounded where the spec
is read; objects too large for the API server are refused at render and flagged by
validate; markdown and GitHub annotations show any value inertly; --jobs is bounded.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cmarkgfm  # type: ignore[import-untyped]
import pytest
from cmarkgfm.cmark import Options  # type: ignore[import-untyped]

from gen.errors import Problem
from gen.spec import units
from tests.conftest import snapshot, write_spec
from tests.git_fixtures import edit, gen, rendered_repo

MINIMAL = """\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: {name}
spec:
  controlNode:
    address: 10.0.1.10
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: {name}
"""


def _spec(name: str, extra: str = "") -> str:
    return MINIMAL.format(name=name) + extra


def _refused(root: Path, *args: str) -> list[str]:
    """Run gen (expecting exit 2 and nothing written); its error lines."""
    before = snapshot(root)
    result = gen(*args, "--root", str(root))
    assert result.exit_code == 2, result.output
    assert snapshot(root) == before
    assert "Traceback" not in result.output
    return result.stderr.splitlines()


# ------------------------------------------------------------------ the JVM command line


def test_a_huge_label_is_refused_in_one_short_line_naming_the_field(fleet: Path) -> None:
    write_spec(fleet, "big", _spec("big", f"  cassandra:\n    labels:\n      team: {'a' * 140_000}\n"))
    lines = [x for x in _refused(fleet, "render", "big") if ": error: " in x]
    assert len(lines) == 1
    assert "spec.cassandra.labels" in lines[0] and "2048" in lines[0]
    assert len(lines[0]) < 300  # the value is cut short, not echoed


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        # An explicit key: YAML allows no longer implicit one.
        (f"  cassandra:\n    labels:\n      ? {'k' * 1025}\n      : v\n", "spec.cassandra.labels", "1024"),
        (f"  cassandra:\n    applicationName: {'a' * 2049}\n", "spec.cassandra.applicationName", "2048"),
        (
            "  cassandra:\n    labels:\n" + "".join(f"      k{i}: v\n" for i in range(17)),
            "spec.cassandra.labels",
            "at most 16",
        ),
        # Each label within bounds, together more than a command line should carry.
        (
            "  cassandra:\n    labels:\n" + "".join(f"      k{i}: {'v' * 2048}\n" for i in range(16)),
            "spec.cassandra.labels",
            "command line",
        ),
        (f"  cassandra:\n    installDir: /{'d' * 5000}\n", "spec.cassandra.installDir", "4095"),
    ],
)
def test_values_on_the_jvm_command_line_are_bounded(fleet: Path, extra: str, field: str, words: str) -> None:
    write_spec(fleet, "big", _spec("big", extra))
    lines = [x for x in _refused(fleet, "render", "big") if ": error: " in x]
    assert len(lines) == 1, lines
    assert f"error: {field}: " in lines[0] and words in lines[0]


def test_the_largest_accepted_labels_fit_the_command_line_budget(fleet: Path) -> None:
    labels = "".join(f"      k{i}: {'v' * 1900}\n" for i in range(units.MAX_PROFILE_LABELS))
    write_spec(fleet, "big", _spec("big", f"  cassandra:\n    labels:\n{labels}"))
    result = gen("render", "big", "--root", str(fleet))
    assert result.exit_code == 0, result.output
    snippet = (fleet / "overlays/big/cassandra-pyroscope.sh").read_text(encoding="utf-8")
    words = re.findall(r"-D\S+|-javaagent:\S+", snippet)
    longest_host = sum(len(w) for w in words) + len(words) + units.HOST_NAME_MAX
    assert longest_host <= units.MAX_JVM_OPTIONS < 128 * 1024  # Linux's MAX_ARG_STRLEN


# ------------------------------------------------------------------ object sizes


def test_render_refuses_a_config_map_argo_cd_could_not_sync(fleet: Path) -> None:
    # A Go duration may repeat its parts: 300 KB of ebpf config, past client-side apply's annotation limit.
    write_spec(fleet, "big", _spec("big", f"  ebpf:\n    collectInterval: {'1s' * 150_000}\n"))
    lines = _refused(fleet, "render", "big")
    assert lines == [
        next(x for x in lines if x.startswith("clusters/big.yaml:") and "pyroscope-ebpf-config" in x and "262144" in x)
    ]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1_100_000, "the API server refuses a ConfigMap over 1048576 bytes"),
        (300_000, "kubectl.kubernetes.io/last-applied-configuration"),
    ],
)
def test_validate_flags_objects_the_api_server_refuses(fleet: Path, size: int, expected: str) -> None:
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    # lab-tuned's objects are its own (client-side apply), not taken over from easy-db-lab (Replace=true).
    # The size is spread over two files of one ConfigMap, added to the overlay by hand: gen builds no
    # single file over 1 MiB.
    overlay = fleet / "overlays/lab-tuned"
    for name in ("extra-1.sh", "extra-2.sh"):
        (overlay / name).write_text("# " + "x" * (size // 2) + "\n", encoding="utf-8")
    edit(
        overlay / "kustomization.yaml",
        "  - cassandra-pyroscope.sh\n",
        "  - cassandra-pyroscope.sh\n  - extra-1.sh\n  - extra-2.sh\n",
    )
    result = gen("validate", "lab-tuned", "--root", str(fleet))
    assert result.exit_code == 1, result.output
    flagged = [x for x in result.stdout.splitlines() if "ConfigMap/pyroscope-cassandra-agent" in x]
    assert flagged and expected in flagged[0], result.stdout


# ------------------------------------------------------------------ markdown


HOSTILE = "a`b``c``` <img src=x> ![x](https://e.invalid/y.png) | **bold** [link](https://e.invalid) <b>"


def _html(markdown: str) -> str:
    # GitHub's own markdown (cmark-gfm), with raw HTML let through so that an injection shows.
    return str(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))


def test_markdown_shows_hostile_values_inertly(fleet: Path) -> None:
    root = rendered_repo(fleet)
    kustomization = root / "overlays/lab-minimal/kustomization.yaml"
    edit(kustomization, "- CLUSTER_NAME=lab-minimal", f"- 'CLUSTER_NAME={HOSTILE}'")
    edit(kustomization, "- AGENT_SHA256=", f'- "AGENT_SHA256={HOSTILE}\\n</details>\\n\\n# forged\\n{HOSTILE}"')
    # A cluster section whose name is hostile too (a directory name).
    odd = root / "overlays" / "x`|<img src=x>|`y"
    shutil.copytree(root / "overlays/lab-minimal", odd)
    result = gen("diff", "--base", "HEAD", "--format", "markdown", "--root", str(root))
    assert result.exit_code == 0, result.output
    page = _html(result.stdout)
    assert "<img" not in page and "<strong>bold" not in page and "<h1>" not in page
    assert "<a " not in page and "e.invalid/y.png" in page
    # The only bold HTML is gen's own, around each section's name.
    assert page.count("<b>") == page.count("<summary><b>") == 2
    # The summary table keeps its five columns in every row.
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        assert len(re.findall(r"<t[dh][ >]", row)) == 5, row
    # Every value is still shown, whole, inside code.
    codes = [c for c in re.findall(r"<code>(.*?)</code>", page, re.S)]
    assert any("&lt;img src=x&gt;" in c and "a`b``c```" in c for c in codes)


def test_markdown_code_spans_survive_any_backtick_run() -> None:
    from gen.review.diffview import _code, _fenced

    for value in ["`", "``", "a```b", "` x `", "", " ", "x\ny", "|"]:
        html = _html(f"- {_code(value)}\n")
        assert html.count("<code>") == 1, (value, html)
    block = "\n".join(_fenced(["```", "~~~~", "````` x"], "diff")) + "\nafter\n"
    assert _html(block).count("<pre") == 1 and "<p>after</p>" in _html(block)


# ------------------------------------------------------------------ GitHub annotations


def test_a_file_name_cannot_forge_an_annotation(fleet: Path) -> None:
    forged = "x\n::error file=forged.yaml,line=1::forged"
    write_spec(fleet, forged, _spec("lab-x"))
    for fmt in ("text", "github"):
        result = gen("render", "--all", "--format", fmt, "--root", str(fleet))
        assert result.exit_code == 2
        assert not [x for x in result.output.splitlines() if x.startswith("::error file=forged")], result.output
        assert "x\\n::error" in result.stderr


def test_annotation_properties_and_data_are_escaped() -> None:
    p = Problem("a,b:c%\nd.yaml", 3, 4, "spec.x", "100% bad\r\nvalue")
    assert p.github() == "::error file=a%2Cb%3Ac%25%0Ad.yaml,line=3,col=4::spec.x: 100%25 bad%0D%0Avalue"
    assert p.github("warning").startswith("::warning file=a%2Cb%3Ac%25%0Ad.yaml,")
    assert "\n" not in str(p) and "\r" not in str(p)


# ------------------------------------------------------------------ --jobs


@pytest.mark.parametrize("command", ["render", "check", "validate"])
def test_jobs_has_a_documented_maximum(fleet: Path, command: str) -> None:
    extra = ["--all"] if command == "render" else []
    result = gen(command, *extra, "--jobs", "1000", "--root", str(fleet))
    assert result.exit_code == 2
    assert "--jobs" in result.stderr and "1<=x<=64" in result.stderr
    assert not (fleet / "overlays").exists()
    help_text = gen(command, "--help").stdout
    assert "at most 64" in help_text
