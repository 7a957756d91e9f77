"""Every spec the models accept renders objects the API server and Argo CD take, at the limits of each field.

The specs below push each field to the edge of what gen accepts; their overlays are built with the real
kustomize and every object is held to the rules in `tests/apiserver_rules.py` (the API server's own,
beyond the OpenAPI schema) and to the size limits `gen validate` checks. Values past those rules are
refused when the spec is read, naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gen import yamlio
from gen.render import layout
from gen.spec.cluster import Cluster, Toleration
from gen.validate import k8s_limits, kustomize
from tests import apiserver_rules
from tests.conftest import make_fleet, write_spec
from tests.git_fixtures import gen

HEAD = """\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: {name}
spec:
"""
ARGOCD = """\
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: {name}
"""
ADDRESS = "  controlNode:\n    address: 10.0.1.10\n"

PREFIX = "p" * 61 + "." + "q" * 63 + "." + "r" * 63 + "." + "s" * 63  # a DNS subdomain of 253 characters
LONG_KEY = f"{PREFIX}/{'k' * 63}"
LONG_PATH = "/opt/" + "/".join(["d" * 200] * 20)  # 4024 characters
CIDRS = ["0.0.0.0/0", "::/0", "10.0.0.1/32", "fd00::1/128"] + [f"10.{i}.0.0/16" for i in range(60)]

# One spec per cluster, each pushing some fields to the edge of what the models accept.
AT_THE_LIMITS = {
    # The longest name: the `cluster` label on every object, the Application's name.
    "a" * 40: ADDRESS,
    "pod-network": (
        "  platform: kubernetes\n"
        f"  namespace: {'n' * 63}\n"
        + ADDRESS
        + "  server:\n    image: grafana/pyroscope:1.21.1\n    port: 65535\n    grpcPort: 1024\n"
        "    memberlistPort: 65534\n    hostNetwork: false\n    allowFrom:\n"
        + "".join(f"    - '{c}'\n" for c in CIDRS)
        + f"  ebpf:\n    privileged: false\n  grafana:\n    namespace: {'g' * 63}\n"
    ),
    "host-network": (
        "  controlNode:\n    address: 'fd00::10'\n"
        f"    nodeSelector:\n      {LONG_KEY}: {'v' * 63}\n      empty: ''\n"
        "  server:\n    image: registry.example.com:5000/grafana/pyroscope:2.2.1@sha256:" + "a" * 64 + "\n"
        "    port: 65535\n    grpcPort: 1024\n    memberlistPort: 65534\n    raftPort: 65533\n"
        f"    storagePath: {LONG_PATH}\n"
        "  ebpf:\n    image: grafana/alloy@sha256:" + "b" * 64 + "\n"
    ),
    "placement": (
        ADDRESS + "  cassandra:\n    nodeSelector: {}\n    tolerations:\n"
        "    - operator: Exists\n"
        "    - operator: Exists\n      key: example.com/dedicated\n      effect: NoSchedule\n"
        f"    - key: {LONG_KEY}\n      value: {'v' * 63}\n      effect: PreferNoSchedule\n"
        "    - key: k\n      effect: NoExecute\n      tolerationSeconds: -5\n"
    ),
    "host-paths": (
        ADDRESS + "  cassandra:\n    state: absent\n"
        f"    installDir: {LONG_PATH}/install\n"
        f"    includeFile: {LONG_PATH}/*/bin/cassandra.in.sh\n"
        f"    envFile: {LONG_PATH}/env/cassandra.env\n"
    ),
    "agent": (
        ADDRESS + "  cassandra:\n    applicationName: " + "c" * 2048 + "\n    agent:\n"
        # Go's JSON writes each & as six bytes in the copy client-side apply keeps.
        "      url: https://example.com/agent.jar?" + "a=1&" * 10_000 + "\n"
        "    labels:\n" + "".join(f"      k{i}: {'v' * 1800}\n" for i in range(16))
    ),
}


def _spec(name: str, body: str) -> str:
    return HEAD.format(name=name) + body + ARGOCD.format(name=name)


def _objects(root: Path, name: str) -> list[dict[str, Any]]:
    """The objects of a cluster's overlay as kustomize builds them, and its Application."""
    built = yamlio.parse_all_plain(kustomize.build(root / "overlays" / name))
    built += yamlio.parse_all_plain((root / "argocd" / "applications" / f"{name}.yaml").read_text(encoding="utf-8"))
    return [o for o in built if isinstance(o, dict)]


def _broken(objects: list[dict[str, Any]]) -> list[str]:
    return [p for o in objects for p in apiserver_rules.problems(o) + k8s_limits.problems(o)]


@pytest.fixture(scope="module")
def at_the_limits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_fleet(tmp_path_factory.mktemp("limits") / "fleet")
    for name, body in AT_THE_LIMITS.items():
        write_spec(root, name, _spec(name, body))
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 0, result.output
    return root


@pytest.mark.parametrize("name", [*AT_THE_LIMITS, "lab-minimal", "lab-tuned"])
def test_objects_at_the_limits_are_ones_the_api_server_takes(at_the_limits: Path, name: str) -> None:
    objects = _objects(at_the_limits, name)
    assert len(objects) > 5
    assert _broken(objects) == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        # The API server refuses tolerationSeconds with any effect but NoExecute.
        (
            "  cassandra:\n    tolerations:\n    - key: dedicated\n      effect: NoSchedule\n"
            "      tolerationSeconds: 60\n",
            "spec.cassandra.tolerations.0.tolerationSeconds",
            "NoExecute",
        ),
        ("  cassandra:\n    tolerations:\n    - key: 'no spaces'\n", "spec.cassandra.tolerations.0.key", "taint key"),
        ("  cassandra:\n    tolerations:\n    - key: ''\n", "spec.cassandra.tolerations.0.key", "taint key"),
        (
            "  cassandra:\n    tolerations:\n    - key: k\n      value: " + "v" * 64 + "\n",
            "spec.cassandra.tolerations.0.value",
            "taint value",
        ),
        ("  cassandra:\n    tolerations:\n    - key: k\n      value: a/b\n", "spec.cassandra.tolerations.0.value", ""),
        # A label key's prefix is a DNS subdomain: at most 253 characters.
        (f"  cassandra:\n    nodeSelector:\n      x{LONG_KEY}: v\n", "spec.cassandra.nodeSelector", "node label key"),
        # install.sh, which base/ merges into the installer's ConfigMap, takes its share of the annotation.
        (
            "  cassandra:\n    agent:\n      url: https://example.com/" + "a" * 235_000 + "\n",
            "spec",
            "pyroscope-cassandra-agent",
        ),
    ],
)
def test_values_the_api_server_would_refuse_are_refused_naming_the_field(
    fleet: Path, body: str, field: str, words: str
) -> None:
    write_spec(fleet, "bad", _spec("bad", ADDRESS + body))
    result = gen("render", "bad", "--root", str(fleet))
    assert result.exit_code == 2, result.output
    errors = [x for x in result.stderr.splitlines() if ": error: " in x]
    assert len(errors) == 1 and f"error: {field}: " in errors[0] and words in errors[0], result.stderr
    assert not (fleet / "overlays" / "bad").exists()


def _cluster(url_length: int) -> Cluster:
    data = yamlio.parse_plain(_spec("edge", ADDRESS))
    data["spec"]["cassandra"] = {"agent": {"url": "https://example.com/" + "&" * url_length}}
    return Cluster.model_validate(data)


def test_the_largest_config_map_render_accepts_is_one_argo_cd_can_apply(fleet: Path) -> None:
    # The longest agent URL (all '&', six bytes each in the copy client-side apply keeps) that render takes.
    low, high = 0, 256 * 1024
    while low < high:
        mid = (low + high + 1) // 2
        try:
            layout.render_cluster(_cluster(mid))
            low = mid
        except layout.ConfigMapTooLargeError:
            high = mid - 1
    assert low > 30_000
    spec = _spec("edge", ADDRESS + "  cassandra:\n    agent:\n      url: https://example.com/" + "&" * low + "\n")
    write_spec(fleet, "edge", spec)
    result = gen("render", "edge", "--root", str(fleet))
    assert result.exit_code == 0, result.output
    assert _broken(_objects(fleet, "edge")) == []


def test_json_bytes_counts_what_go_escapes() -> None:
    assert k8s_limits.json_bytes("a<b>&\u2028é") == len('"a\\u003cb\\u003e\\u0026\\u2028é"'.encode())


def test_validate_counts_the_copy_client_side_apply_keeps_as_go_writes_it() -> None:
    # 50 KB as Python writes it, 300 KB as Go does: over the annotation limit.
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "&" * 50_000}}
    [problem] = k8s_limits.problems(config_map)
    assert k8s_limits.LAST_APPLIED in problem


# ------------------------------------------------------------------ the models against the rules

TOKENS = st.sampled_from(["", "k", "a b", "a/b", "example.com/k", LONG_KEY, "x" + LONG_KEY, "v" * 63, "v" * 64, "-a"])


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    key=st.one_of(st.none(), TOKENS),
    operator=st.sampled_from(["Equal", "Exists"]),
    value=st.one_of(st.none(), TOKENS),
    effect=st.sampled_from([None, "NoSchedule", "PreferNoSchedule", "NoExecute"]),
    seconds=st.sampled_from([None, -1, 0, 300]),
)
def test_every_toleration_the_model_accepts_is_one_the_api_server_takes(
    key: str | None, operator: str, value: str | None, effect: str | None, seconds: int | None
) -> None:
    data = {"key": key, "operator": operator, "value": value, "effect": effect, "tolerationSeconds": seconds}
    try:
        toleration = Toleration.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError:
        return
    rendered = toleration.model_dump(by_alias=True, exclude_none=True)
    assert list(apiserver_rules._tolerations([rendered], "t")) == []


@settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(key=TOKENS, value=TOKENS)
def test_every_node_selector_the_model_accepts_is_one_the_api_server_takes(key: str, value: str) -> None:
    data = yamlio.parse_plain(_spec("sel", ADDRESS))
    data["spec"]["cassandra"] = {"nodeSelector": {key: value}}
    try:
        cluster = Cluster.model_validate(data)
    except ValidationError:
        return
    assert list(apiserver_rules._labels(cluster.spec.cassandra.node_selector, "nodeSelector")) == []


def test_the_rules_catch_what_the_api_server_refuses(at_the_limits: Path) -> None:
    # The rules are not vacuous: the objects above, broken as the API server would refuse them.
    objects = {o["kind"] + "/" + o["metadata"]["name"]: o for o in _objects(at_the_limits, "placement")}
    daemonset = objects["DaemonSet/pyroscope-cassandra-agent"]
    pod = daemonset["spec"]["template"]["spec"]
    pod["tolerations"][1]["tolerationSeconds"] = 5
    pod["nodeSelector"] = {"x" + LONG_KEY: "v"}
    pod["containers"][0]["ports"] = [{"name": "a-much-too-long-name", "containerPort": 80}]
    daemonset["spec"]["selector"]["matchLabels"]["extra"] = "x"
    found = apiserver_rules.problems(daemonset)
    for words in ("tolerationSeconds", "nodeSelector: key", "IANA_SVC_NAME", "does not match the template"):
        assert any(words in f for f in found), (words, found)
    ebpf = objects["DaemonSet/pyroscope-ebpf"]
    ebpf["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = False
    assert any("allowPrivilegeEscalation" in f for f in apiserver_rules.problems(ebpf))
