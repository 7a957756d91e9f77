"""Every rendered config key is one the program accepts, per ../shared/upstream/ (taken from upstream docs).

The Pyroscope server refuses an unknown config key at start-up and Alloy an
unknown argument or block; neither can run here, so their key lists stand in.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gen import yamlio
from gen.build import ebpf, server
from gen.loader import load_text
from gen.render import render
from tests.conftest import PROJECT, SHARED

UPSTREAM = SHARED / "upstream"
pytestmark = pytest.mark.skipif(not UPSTREAM.is_dir(), reason=f"{UPSTREAM} is absent (a fresh clone has no ../shared)")

SPEC = """apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata: {{name: x}}
spec:
  controlNode: {{address: 10.0.0.1}}
  server: {{image: "{image}"}}
  argocd: {{repoURL: "https://example.com/a.git", destination: {{name: x}}}}
"""


def _unknown_keys(config: Any, allowed: Any, prefix: str = "") -> list[str]:
    found = []
    for key, value in config.items():
        path = f"{prefix}{key}"
        if not isinstance(allowed, dict) or key not in allowed:
            found.append(path)
        elif isinstance(value, dict) and allowed[key] is not None and allowed[key] != {}:
            found += _unknown_keys(value, allowed[key], path + ".")
    return found


@pytest.mark.parametrize(
    "image,keys",
    [
        ("grafana/pyroscope:2.2.1", "v2.2.1"),
        ("grafana/pyroscope:1.21.1", "v1.21.1"),
        ("grafana/pyroscope:v2.2.1@sha256:" + "a" * 64, "v2.2.1"),
    ],
)
def test_server_config_keys_are_accepted(image: str, keys: str) -> None:
    cluster = load_text(SPEC.format(image=image).encode(), "clusters/x.yaml", "x").cluster
    tree = json.loads((UPSTREAM / f"pyroscope-config-keys-{keys}.json").read_text())["keys"]
    assert _unknown_keys(server.config(cluster), tree) == []


def test_v1_only_keys_are_absent_from_a_v2_config() -> None:
    cluster = load_text(SPEC.format(image="grafana/pyroscope:2.2.1").encode(), "clusters/x.yaml", "x").cluster
    text = yamlio.dump(server.config(cluster))
    for key in ("data_path", "min_free_disk_gb", "min_disk_available_percentage", "compactor_blocks_retention_period"):
        assert key not in text


def test_example_server_configs_are_accepted() -> None:
    for item in render(PROJECT).clusters:
        major = item.cluster.spec.server.major
        tree = json.loads((UPSTREAM / f"pyroscope-config-keys-v{'2.2.1' if major == 2 else '1.21.1'}.json").read_text())
        assert _unknown_keys(server.config(item.cluster), tree["keys"]) == [], item.name


def parse_alloy(text: str) -> list[tuple[list[str], str]]:
    """(block path, argument) for every argument, and (block path, "") for every block opened."""
    out: list[tuple[list[str], str]] = []
    stack: list[str] = []
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip() if not raw.strip().startswith("//") else ""
        if not line:
            continue
        if m := re.fullmatch(r'([a-z_.]+)(\s+"[^"]+")?\s*\{', line):
            stack.append(m.group(1))
            out.append((list(stack), ""))
        elif line == "}":
            stack.pop()
        elif m := re.fullmatch(r"([a-z_]+)\s*=.*", line):
            out.append((list(stack), m.group(1)))
        else:
            raise AssertionError(f"unparsed Alloy line: {raw!r}")
    assert not stack, "unbalanced braces"
    return out


def test_alloy_config_uses_only_known_current_arguments_and_blocks() -> None:
    data = json.loads((UPSTREAM / "alloy-components-v1.18.1.json").read_text())
    known = {**data["components"], **data["config_blocks"]}
    for item in render(PROJECT).clusters:
        if not item.cluster.spec.ebpf.enabled:
            continue
        for path, arg in parse_alloy(ebpf.config(item.cluster)):
            assert path[0] in known, f"unknown component or block {path[0]}"
            node = known[path[0]]
            for block in path[1:]:
                assert block in node, f"unknown block {'.'.join(path)}"
                node = node[block]
            if arg:
                args = node["__args__"] if len(path) == 1 else node
                assert arg in args, f"unknown argument {arg} in {'.'.join(path)}"
                assert not args[arg].get("deprecated"), f"deprecated argument {arg} in {'.'.join(path)}"


def test_alloy_required_arguments_are_given() -> None:
    data = json.loads((UPSTREAM / "alloy-components-v1.18.1.json").read_text())["components"]
    item = render(PROJECT).clusters[0]
    parsed = parse_alloy(ebpf.config(item.cluster))
    for name, spec in data.items():
        given = {arg for path, arg in parsed if path == [name] and arg}
        if [name] in [p for p, _ in parsed]:
            required = {a for a, m in spec["__args__"].items() if m["required"] == "yes"}
            assert required <= given, f"{name} misses {required - given}"
