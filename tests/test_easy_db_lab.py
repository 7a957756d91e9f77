"""The rendered stack on a cluster that easy-db-lab built: it takes easy-db-lab's profiling objects
over in place, collides with nothing else, and leaves Grafana alone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gen import yamlio
from gen.cli import cli
from gen.components.argocd import application
from gen.spec.fleet import load_fleet
from gen.spec.loader import load_clusters
from gen.validate import kustomize
from tests import easy_db_lab_cluster as edl
from tests.conftest import FIXTURES, PROJECT, write_spec

SPEC = """\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: edl
spec:
  controlNode:
    address: 10.0.1.10
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      server: https://kubernetes.default.svc
"""


def _fleet(root: Path, spec: str = SPEC) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    write_spec(root, "edl", spec)
    result = CliRunner().invoke(cli, ["render", "edl", "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _objects(root: Path) -> list[dict[str, Any]]:
    return [o for o in yamlio.parse_all_plain(kustomize.build(root / "overlays" / "edl")) if isinstance(o, dict)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return _objects(_fleet(tmp_path_factory.mktemp("edl") / "fleet"))


def _key(obj: dict[str, Any]) -> tuple[str, str | None, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace"), meta["name"]


def test_every_profiling_object_of_easy_db_lab_is_taken_over_in_place(built: list[dict[str, Any]]) -> None:
    rendered = {_key(o): o for o in built}
    for live in (o for o in edl.OBJECTS if o.profiling):
        obj = rendered.get((live.kind, live.namespace, live.name))
        assert obj is not None, f"{live.kind}/{live.name} is not rendered under easy-db-lab's name and namespace"
        if live.selector:
            # A selector cannot change in place: any other one would fail the sync.
            assert obj["spec"]["selector"] == {"matchLabels": live.selector}, live.name
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert live.selector.items() <= labels.items(), live.name
        # Replaced, not applied: nothing of easy-db-lab's field manager may survive the sync.
        assert obj["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Replace=true", live.name


def test_nothing_else_collides_and_grafana_is_left_alone(built: list[dict[str, Any]]) -> None:
    others = {(o.kind, o.namespace, o.name) for o in edl.OBJECTS if not o.profiling}
    taken_over = {(o.kind, o.namespace, o.name) for o in edl.OBJECTS if o.profiling}
    for obj in built:
        key = _key(obj)
        assert key not in others, key
        assert obj["kind"] != "Namespace", "easy-db-lab's namespace default exists and is not the stack's"
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert key[1] == edl.NAMESPACE, key
        labels = obj["metadata"].get("labels") or {}
        assert not {"grafana_datasource", "grafana_dashboard"} & set(labels), "easy-db-lab's Grafana has no sidecar"
        if key not in taken_over:
            # What is new keeps the default apply: only taken-over objects are replaced.
            assert "Replace=true" not in str(
                (obj["metadata"].get("annotations") or {}).get("argocd.argoproj.io/sync-options")
            )


def _node_ports(pod: dict[str, Any]) -> set[int]:
    """The ports a pod binds on its node: every container port on the host network, else its hostPorts."""
    ports = [p for c in pod["containers"] + pod.get("initContainers", []) for p in c.get("ports", [])]
    if pod.get("hostNetwork"):
        return {p["containerPort"] for p in ports}
    return {p["hostPort"] for p in ports if "hostPort" in p}


def test_no_pod_binds_a_port_already_bound_on_its_nodes(built: list[dict[str, Any]]) -> None:
    checked = 0
    for obj in built:
        if obj["kind"] not in ("Deployment", "DaemonSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        roles = edl.roles_of(pod.get("nodeSelector") or {})
        assert roles, f"{obj['metadata']['name']} matches no node of the cluster"
        for role in roles:
            for port in _node_ports(pod):
                owner = edl.taken(role).get(port)
                # The port of an object taken over is freed by that very object.
                assert owner in (None, f"{obj['kind']}/{obj['metadata']['name']}"), (role, port, owner)
                checked += 1
    assert checked >= 4, "the server's ports were not seen"


# A probe's handlers: the API server refuses a probe with more than one.
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _reapplied_merge_problems(objs: list[dict[str, Any]]) -> list[str]:
    """What the API server would refuse once easy-db-lab applies its own fields over the rendered objects.

    Server-side apply merges a probe field by field and a Service's ports by (port, protocol): a handler or
    a port that only the rendered object has stays beside easy-db-lab's.
    """
    problems = []
    for obj in objs:
        ref = f"{obj['kind']}/{obj['metadata']['name']}"
        for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for probe, theirs in edl.REAPPLIED_PROBES.get((ref, container["name"]), {}).items():
                handlers = {h for h in PROBE_HANDLERS if h in container.get(probe, {}) or h in theirs}
                if len(handlers) > 1:
                    problems.append(f"{ref} {container['name']} {probe}: {sorted(handlers)}")
        if obj["kind"] == "Service":
            merged = {(p["port"], p.get("protocol", "TCP")): p for p in obj["spec"]["ports"]}
            for port in edl.REAPPLIED_SERVICE_PORTS.get(obj["metadata"]["name"], []):
                merged[(port["port"], port["protocol"])] = {**merged.get((port["port"], port["protocol"]), {}), **port}
            names = [p.get("name") for p in merged.values()]
            if len(names) != len(set(names)):
                problems.append(f"{ref}: port names {sorted(map(str, names))}")
    return problems


def test_easy_db_labs_next_up_can_apply_its_own_objects_over_the_taken_over_ones(tmp_path: Path) -> None:
    # A refused apply stops easy-db-lab's `up` and `grafana update-config` with an error.
    assert _reapplied_merge_problems(_objects(_fleet(tmp_path / "fleet"))) == []


def test_another_server_port_on_easy_db_lab_is_warned_about_for_what_it_breaks(tmp_path: Path) -> None:
    # The Service is on server.port, as the spec says; easy-db-lab's next up then adds its own port
    # 4040, also named http, and the API server refuses the Service: the render warning says so.
    root = _fleet(tmp_path / "fleet", SPEC.replace("  argocd:\n", "  server:\n    port: 4100\n  argocd:\n"))
    assert _reapplied_merge_problems(_objects(root)) == ["Service/pyroscope: port names ['http', 'http']"]
    result = CliRunner().invoke(cli, ["render", "edl", "--root", str(root)])
    assert "easy-db-lab's next up fails on the Service" in result.stderr


def test_the_server_lands_on_the_control_node_and_the_installer_on_database_nodes(built: list[dict[str, Any]]) -> None:
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in built if o["kind"] in ("Deployment", "DaemonSet")
    }
    assert edl.roles_of(pods["pyroscope"]["nodeSelector"]) == ["control"]
    assert edl.roles_of(pods["pyroscope-cassandra-agent"]["nodeSelector"]) == ["db"]
    assert edl.roles_of(pods["pyroscope-ebpf"].get("nodeSelector") or {}) == ["control", "db", "app"]


def test_the_application_syncs_into_default_without_creating_it(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet")
    (item,) = load_clusters(root)
    fleet = load_fleet(root)
    assert fleet is not None
    spec = application(item.cluster, fleet)["spec"]
    assert spec["destination"]["namespace"] == edl.NAMESPACE
    assert "CreateNamespace=true" not in spec["syncPolicy"]["syncOptions"]
    assert spec["project"] == fleet.project


def test_a_config_change_rolls_only_the_pods_that_mount_it(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet")
    before = {_key(o): o for o in _objects(root)}
    write_spec(root, "edl", SPEC.replace("  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n"))
    assert CliRunner().invoke(cli, ["render", "edl", "--root", str(root)]).exit_code == 0
    after = {_key(o): o for o in _objects(root)}
    assert set(after) == set(before), "config names are exact: a change renames nothing"

    def checksum(name: str, objs: dict[tuple[str, str | None, str], dict[str, Any]]) -> str:
        kind = "Deployment" if name == "pyroscope" else "DaemonSet"
        return str(objs[(kind, edl.NAMESPACE, name)]["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum("pyroscope-ebpf", before) != checksum("pyroscope-ebpf", after)
    for name in ("pyroscope", "pyroscope-cassandra-agent"):
        assert checksum(name, before) == checksum(name, after), name
    # The checksum joins the annotations the base template carries; it does not replace them.
    agent = after[("DaemonSet", edl.NAMESPACE, "pyroscope-cassandra-agent")]
    assert "checksum/installer" in agent["spec"]["template"]["metadata"]["annotations"]


def test_the_ebpf_profile_of_the_cassandra_jvm_is_kept_apart_from_the_java_agents(tmp_path: Path) -> None:
    # Both send process_cpu: under one service_name Grafana would add them up.
    root = _fleet(tmp_path / "fleet")
    alloy = (root / "overlays" / "edl" / "config.alloy").read_text()
    rule = alloy[alloy.index("CassandraDaemon") :]
    replacement = rule[rule.index("replacement") :].split("\n", 1)[0]
    assert replacement.split("=", 1)[1].strip() == '"cassandra-ebpf"'
    assert 'demangle         = "full"' in alloy
    assert "python_enabled   = false" in alloy


def test_validate_names_the_grafana_namespace_only_where_grafana_objects_are_rendered(tmp_path: Path) -> None:
    root = _fleet(tmp_path / "fleet")
    kubernetes = (
        SPEC.replace("metadata:\n  name: edl\n", "metadata:\n  name: k8s\n")
        .replace("spec:\n", "spec:\n  platform: kubernetes\n  grafana:\n    namespace: grafana\n")
        .replace("server: https://kubernetes.default.svc", "name: other-cluster")
    )
    write_spec(root, "k8s", kubernetes)
    assert CliRunner().invoke(cli, ["render", "k8s", "--root", str(root)]).exit_code == 0
    result = CliRunner().invoke(cli, ["validate", "--root", str(root)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "must exist" in line]
    assert notes == [
        "gen: overlays/k8s: namespace grafana (grafana.namespace) must exist on the destination cluster: Argo CD "
        "creates only profiling; without it the Grafana ConfigMaps alone fail (they sync last, after the stack) "
        "and so does the sync, which Argo CD, once its retries are spent, never tries again for that revision by "
        "itself: argocd app sync profiling-k8s"
    ]


def test_another_server_port_warns_that_easy_db_labs_grafana_will_not_find_it(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    _fleet(root)
    write_spec(root, "edl", SPEC.replace("  argocd:\n", "  server:\n    port: 4100\n  argocd:\n"))
    result = CliRunner().invoke(cli, ["render", "edl", "--root", str(root)])
    assert result.exit_code == 0
    assert (
        "clusters/edl.yaml:9:11: warning: spec.server.port: easy-db-lab's Grafana keeps its datasource at "
        "http://localhost:4040, which gen leaves alone: it finds no server on port 4100, and easy-db-lab's other "
        "agents (its Cassandra sidecar, Spark, Presto and Trino) send to port 4040 too; and easy-db-lab's next up "
        "fails on the Service, adding its own port 4040 named http beside this one"
    ) in result.stderr.splitlines()
