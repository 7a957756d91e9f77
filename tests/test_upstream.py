"""Every rendered config key is one the program accepts, per ../shared/upstream/ (taken from upstream docs).

The Pyroscope server refuses an unknown config key at start-up and Alloy an
unknown argument or block; neither can run here, so their key lists stand in.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Any

import pytest

from gen import yamlio
from gen.components import ebpf, server
from gen.spec.loader import load_text
from tests.conftest import SHARED
from tests.fleet_fixtures import render

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


SERVER_SPEC = """apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata: {{name: lab-{major}}}
spec:
  controlNode: {{address: 10.0.0.1}}
  server: {{image: "{image}", retention: "{retention}", port: 4100, grpcPort: 9200, memberlistPort: 7950}}
  argocd: {{repoURL: "https://example.com/a.git", destination: {{name: x}}}}
"""
LAST = {1: ("grafana/pyroscope:1.21.1", "v1.21.1"), 2: ("grafana/pyroscope:2.2.1", "v2.2.1")}

# Every key of the upstream lists that names a directory or file, and why a rendered config may
# leave it out: the single binary (target all) of that major and storage architecture never
# writes there. Any other such key must be set under /data. [pkg/pyroscope/pyroscope.go, v2.2.1]
# TLS certificate and key files are left out: the server runs without TLS.
PATH_KEY = re.compile(r"^(?!tls_).*(^|_)(dir|path)$")
UNUSED_PATH_KEYS = {
    1: {
        "embedded_grafana.data_path": "embedded Grafana is its own target, not part of all",
        "ingester.lifecycler.tokens_file_path": "empty: tokens are not kept",
        "store_gateway.sharding_ring.tokens_file_path": "empty: tokens are not kept",
    },
    2: {
        "embedded_grafana.data_path": "embedded Grafana is its own target, not part of all",
        "segment_writer.lifecycler.tokens_file_path": "empty: tokens are not kept",
        # architecture_storage v2 runs no v1 ingester, compactor or store-gateway.
        "pyroscopedb.data_path": "v1 only",
        "compactor.data_dir": "v1 only",
        "store_gateway.bucket_store.sync_dir": "v1 only",
        "ingester.lifecycler.tokens_file_path": "v1 only",
        "store_gateway.sharding_ring.tokens_file_path": "v1 only",
    },
}
# Prometheus' model.Duration, which max_query_lookback and the retention keys are.
_MODEL_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(text: str) -> int:
    if text == "0":
        return 0
    parts = re.findall(r"(\d+)([ywdhms])", text)
    assert "".join(n + u for n, u in parts) == text, f"{text!r} is not a model.Duration"
    return sum(int(n) * _MODEL_UNITS[u] for n, u in parts)


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _rendered(major: int, retention: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    image, keys = LAST[major]
    spec = SERVER_SPEC.format(major=major, image=image, retention=retention)
    cluster = load_text(spec.encode(), f"clusters/lab-{major}.yaml", f"lab-{major}").cluster
    # The config.yaml text the overlay carries, read back.
    config = yamlio.parse_plain(server.build(cluster).files["config.yaml"])
    tree = json.loads((UPSTREAM / f"pyroscope-config-keys-{keys}.json").read_text())["keys"]
    return cluster, config, tree


@pytest.mark.parametrize("major", [1, 2])
@pytest.mark.parametrize("retention", ["168h", "36h30m", "0"])
def test_rendered_server_config_is_accepted_and_queries_reach_the_whole_retention(major: int, retention: str) -> None:
    _, config, tree = _rendered(major, retention)
    assert _unknown_keys(config, tree) == []
    limits = config["limits"]
    kept = limits["retention_period" if major == 2 else "compactor_blocks_retention_period"]
    assert kept == retention
    lookback = _seconds(limits["max_query_lookback"])
    # 0 is "no limit" for max_query_lookback and "keep forever" for the retention keys.
    if _seconds(retention) == 0:
        assert lookback == 0
    else:
        assert lookback == 0 or lookback >= _seconds(retention)


@pytest.mark.parametrize("major", [1, 2])
def test_rendered_server_config_uses_the_spec_ports_and_a_private_memberlist(major: int) -> None:
    cluster, config, tree = _rendered(major, "168h")
    assert config["server"] == {"http_listen_port": 4100, "grpc_listen_port": 9200}
    memberlist = config["memberlist"]
    assert memberlist["bind_port"] == 7950
    # hashicorp/memberlist takes any label up to 255 bytes and, with verification on
    # (the default), drops messages that lack it.
    assert memberlist["cluster_label"] == f"pyroscope-lab-{major}"
    assert len(memberlist["cluster_label"].encode()) <= 255
    assert memberlist.get("cluster_label_verification_disabled") is not True
    assert "join_members" not in memberlist and "advertise_port" not in memberlist
    if major == 2:
        assert config["architecture_storage"] == "v2"  # one of v1, v1-v2-dual, v2 (storage_layer.go)
        # The single binary dials its own metastore and query backend at these (default localhost:9095).
        assert config["metastore"]["address"] == "localhost:9200"
        assert config["query_backend"]["address"] == "localhost:9200"
        raft = config["metastore"]["raft"]
        assert raft["bind_address"] == raft["advertise_address"] == raft["server_id"] == "localhost:9099"
        assert cluster.spec.server.ports == {"http": 4100, "grpc": 9200, "memberlist": 7950, "raft": 9099}
    else:
        assert "architecture_storage" not in tree and "architecture_storage" not in config
        assert cluster.spec.server.ports == {"http": 4100, "grpc": 9200, "memberlist": 7950}


@pytest.mark.parametrize("major", [1, 2])
def test_every_data_path_of_the_server_is_absolute_under_the_mount(major: int) -> None:
    _, config, tree = _rendered(major, "168h")
    rendered = _leaves(config)
    paths = {k: v for k, v in rendered.items() if PATH_KEY.search(k.rsplit(".", 1)[-1])}
    assert paths
    for key, value in paths.items():
        assert isinstance(value, str) and value.startswith(server.DATA_MOUNT + "/"), f"{key}: {value!r}"
        assert posixpath.normpath(value) == value, f"{key}: {value!r}"
    upstream = {k for k in _leaves(tree) if PATH_KEY.search(k.rsplit(".", 1)[-1])}
    unused = UNUSED_PATH_KEYS[major]
    assert set(unused) <= upstream, "an exemption names a key upstream does not have"
    assert upstream - set(unused) == set(paths), "a path key is neither set under /data nor known to be unused"
    assert not set(unused) & set(paths)


def test_v1_only_keys_are_absent_from_a_v2_config() -> None:
    cluster = load_text(SPEC.format(image="grafana/pyroscope:2.2.1").encode(), "clusters/x.yaml", "x").cluster
    text = yamlio.dump(server.config(cluster))
    for key in ("data_path", "min_free_disk_gb", "min_disk_available_percentage", "compactor_blocks_retention_period"):
        assert key not in text


def test_example_server_configs_are_accepted(examples: Path) -> None:
    for item in render(examples).clusters:
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


def test_alloy_config_uses_only_known_current_arguments_and_blocks(examples: Path) -> None:
    data = json.loads((UPSTREAM / "alloy-components-v1.18.1.json").read_text())
    known = {**data["components"], **data["config_blocks"]}
    for item in render(examples).clusters:
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


def test_alloy_required_arguments_are_given(examples: Path) -> None:
    data = json.loads((UPSTREAM / "alloy-components-v1.18.1.json").read_text())["components"]
    item = render(examples).clusters[0]
    parsed = parse_alloy(ebpf.config(item.cluster))
    for name, spec in data.items():
        given = {arg for path, arg in parsed if path == [name] and arg}
        if [name] in [p for p, _ in parsed]:
            required = {a for a, m in spec["__args__"].items() if m["required"] == "yes"}
            assert required <= given, f"{name} misses {required - given}"
