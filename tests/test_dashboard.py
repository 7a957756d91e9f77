"""The Grafana profiling dashboard: its variables and panels per spec, and its ConfigMap in a built overlay."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gen import yamlio
from gen.cli import cli
from gen.components import dashboard as dash
from gen.components.common import header_text
from gen.render import layout
from gen.spec.cluster import Cluster
from gen.validate import kustomize
from tests.conftest import write_spec

SELECTOR_PARTS = ('cluster="$cluster"', 'hostname=~"${hostname:regex}"', 'service_name="$service_name"')


def _cluster(**spec: Any) -> Cluster:
    data = {
        "apiVersion": "gen.profiling/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "lab-dash"},
        "spec": {
            "controlNode": {"address": "10.0.1.10"},
            "argocd": {
                "repoURL": "https://github.com/acme/profiling-gitops.git",
                "destination": {"server": "https://kubernetes.default.svc"},
            },
            **spec,
        },
    }
    return Cluster.model_validate(data)


def _types(board: dict[str, Any]) -> list[str]:
    return [p["targets"][0]["profileTypeId"] for p in board["panels"]]


def test_profile_type_ids_are_the_ones_pyroscope_makes_of_jfr() -> None:
    # grafana/jfr-parser pprof/pprof.go: metric name, sample type and unit, period type and unit.
    assert dash.PROCESS_CPU == "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    assert dash.WALL == "wall:wall:nanoseconds:wall:nanoseconds"
    assert set(dash.ALLOC) == {
        "memory:alloc_in_new_tlab_bytes:bytes:space:bytes",
        "memory:alloc_in_new_tlab_objects:count:space:bytes",
    }
    assert set(dash.LOCK) == {
        "mutex:contentions:count:mutex:count",
        "mutex:delay:nanoseconds:mutex:count",
        "block:contentions:count:block:count",
        "block:delay:nanoseconds:block:count",
    }
    # The template holds exactly one panel per profile type, so each can be chosen.
    assert sorted(_types(dash.template())) == sorted(dash.ALL_PROFILE_TYPES)


@pytest.mark.parametrize(
    ("profiler", "expected"),
    [
        ({}, [dash.PROCESS_CPU, *dash.ALLOC, *dash.LOCK]),
        ({"event": "wall", "alloc": None, "lock": None}, [dash.PROCESS_CPU, dash.WALL]),
        ({"event": "itimer", "alloc": "1m", "lock": None}, [dash.PROCESS_CPU, *dash.ALLOC]),
        ({"event": "ctimer", "alloc": None, "lock": "1ms"}, [dash.PROCESS_CPU, *dash.LOCK]),
    ],
)
def test_panels_follow_the_profiler_settings(profiler: dict[str, Any], expected: list[str]) -> None:
    cluster = _cluster(
        grafana={"datasourceUid": "lab-ds"}, cassandra={"applicationName": "cass-a", "profiler": profiler}
    )
    board = dash.dashboard(cluster)
    assert _types(board) == expected
    for panel in board["panels"]:
        assert panel["type"] == "flamegraph"
        assert panel["datasource"] == {"type": "grafana-pyroscope-datasource", "uid": "lab-ds"}
        (target,) = panel["targets"]
        assert target["queryType"] == "profile"
        assert target["datasource"]["uid"] == "lab-ds"
        selector = target["labelSelector"]
        assert selector.startswith("{") and selector.endswith("}")
        assert [p.strip() for p in selector[1:-1].split(",")] == list(SELECTOR_PARTS)


def test_variables_use_the_pyroscope_label_value_query() -> None:
    board = dash.dashboard(_cluster(grafana={"datasourceUid": "lab-ds"}, cassandra={"applicationName": "cass-a"}))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["cluster", "hostname", "service_name"]
    for name, v in variables.items():
        assert v["type"] == "query"
        assert v["datasource"] == {"type": "grafana-pyroscope-datasource", "uid": "lab-ds"}
        # grafana-pyroscope-datasource types.ts LabelValueQuery: VariableSupport lists the values of
        # labelName over the selector profileTypeId + "{}" (see _label_values).
        assert v["query"] == {
            "type": "labelValue",
            "profileTypeId": "process_cpu",
            "labelName": name,
            "refId": "A",
        }
    assert variables["cluster"]["current"]["value"] == "lab-dash"
    assert variables["service_name"]["current"]["value"] == "cass-a"
    # One service at a time: the eBPF and Java CPU profiles of one JVM must not be summed.
    assert not variables["service_name"]["multi"] and not variables["service_name"]["includeAll"]
    assert variables["hostname"]["multi"] and variables["hostname"]["allValue"] == ".*"


def test_without_the_java_agent_only_cpu_remains_and_wall_only_clusters_list_wall_labels() -> None:
    board = dash.dashboard(_cluster(cassandra={"enabled": False}))
    assert _types(board) == [dash.PROCESS_CPU]
    assert _types(dash.dashboard(_cluster(cassandra={"state": "absent"}))) == [dash.PROCESS_CPU]
    wall_only = dash.dashboard(_cluster(ebpf={"enabled": False}, cassandra={"profiler": {"event": "wall"}}))
    assert {v["query"]["profileTypeId"] for v in wall_only["templating"]["list"]} == {"wall"}


def _label_values(variable: dict[str, Any], series: list[dict[str, str]]) -> set[str]:
    """What Grafana's label-value variable lists when Pyroscope holds these series.

    Grafana (VariableSupport.ts) sends the matcher profileTypeId + "{}"; Pyroscope parses it as a
    Prometheus selector, so its metric name is an equality matcher on __name__.
    """
    query = variable["query"]
    match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{\}", query["profileTypeId"] + "{}")
    assert match, query
    return {s[query["labelName"]] for s in series if s["__name__"] == match[1]}


def _stored_series(profile_type: str, **labels: str) -> dict[str, str]:
    # Pyroscope's labels of a profile series: __name__ is the profile's name, the type id's first part.
    return {"__name__": profile_type.split(":", maxsplit=1)[0], "__profile_type__": profile_type, **labels}


@pytest.mark.parametrize(
    ("spec", "profile_type"),
    [
        ({"cassandra": {"applicationName": "cass-a"}}, dash.PROCESS_CPU),
        (
            {"ebpf": {"enabled": False}, "cassandra": {"applicationName": "cass-a", "profiler": {"event": "wall"}}},
            dash.WALL,
        ),
    ],
)
def test_variables_list_the_labels_of_the_profiles_pyroscope_holds(spec: dict[str, Any], profile_type: str) -> None:
    board = dash.dashboard(_cluster(**spec))
    series = [_stored_series(profile_type, cluster="lab-dash", hostname="db0", service_name="cass-a")]
    if profile_type == dash.PROCESS_CPU:
        series.append(_stored_series(profile_type, cluster="lab-dash", hostname="db1", service_name="cass-a-ebpf"))
    for variable in board["templating"]["list"]:
        values = _label_values(variable, series)
        assert values == {s[variable["name"]] for s in series}, variable["name"]
        # A default the listed values lack would be replaced, and an empty list leaves "".
        default = variable.get("current", {}).get("value")
        assert default in ([["$__all"]] if variable["includeAll"] else values)


def test_panels_are_laid_out_without_overlap() -> None:
    board = dash.dashboard(_cluster(cassandra={"profiler": {"event": "wall"}}))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, panel["title"]
        cells |= area
    assert [p["id"] for p in board["panels"]] == list(range(1, len(board["panels"]) + 1))


def test_dashboard_file_is_json_with_a_stable_identity_and_sorted_keys() -> None:
    cluster = _cluster()
    text = dash.dashboard_json(cluster, header_text(cluster))
    assert text == dash.dashboard_json(cluster, header_text(cluster))
    assert layout.is_generated(text)

    def sorted_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert keys == sorted(keys)
        return dict(pairs)

    board = json.loads(text, object_pairs_hook=sorted_pairs)
    assert board.pop("//") == header_text(cluster)
    assert board == dash.dashboard(cluster)
    assert (board["uid"], board["title"]) == ("pyroscope-profiling", "Pyroscope profiling")
    assert isinstance(board["schemaVersion"], int)
    assert "id" not in board


def _spec(extra: str) -> str:
    return f"""\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: lab-dash
spec:
  platform: kubernetes
  controlNode:
    address: 10.0.1.10
  grafana:
    namespace: grafana
    datasourceUid: lab-ds
{extra}  cassandra:
    applicationName: cass-a
    profiler:
      event: wall
      alloc: null
      lock: null
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: lab-dash
"""


def _build(fleet: Path, extra: str = "") -> list[dict[str, Any]]:
    write_spec(fleet, "lab-dash", _spec(extra))
    result = CliRunner().invoke(cli, ["render", "lab-dash", "--root", str(fleet)])
    assert result.exit_code == 0, result.output
    return yamlio.parse_all_plain(kustomize.build(fleet / "overlays" / "lab-dash"))


def _grafana_maps(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] in ("pyroscope-datasource", "pyroscope-dashboard")
    }


def test_built_overlay_holds_the_dashboard_for_the_sidecar_after_every_workload(fleet: Path) -> None:
    objs = _build(fleet)
    maps = _grafana_maps(objs)
    assert sorted(maps) == ["pyroscope-dashboard", "pyroscope-datasource"]
    assert maps["pyroscope-datasource"]["metadata"]["labels"]["grafana_datasource"] == "1"
    board_map = maps["pyroscope-dashboard"]
    assert board_map["metadata"]["namespace"] == "grafana"
    assert board_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert list(board_map["data"]) == ["pyroscope-profiling.json"]
    board = json.loads(board_map["data"]["pyroscope-profiling.json"])
    assert board["uid"] == "pyroscope-profiling"
    assert _types(board) == [dash.PROCESS_CPU, dash.WALL]
    assert {p["datasource"]["uid"] for p in board["panels"]} == {"lab-ds"}

    def wave(o: dict[str, Any]) -> int:
        return int(o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])

    # After every workload, so that a missing Grafana namespace never holds the stack back.
    latest_workload = max(wave(o) for o in objs if o not in maps.values())
    assert all(wave(m) == latest_workload + 1 for m in maps.values())


def test_dashboard_false_drops_only_the_dashboard(fleet: Path) -> None:
    objs = _build(fleet, "    dashboard: false\n")
    assert sorted(_grafana_maps(objs)) == ["pyroscope-datasource"]
    assert not (fleet / "overlays" / "lab-dash" / "dashboard.json").exists()
    assert (fleet / "overlays" / "lab-dash" / "datasource.yaml").exists()
