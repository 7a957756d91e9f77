"""The profiling dashboard for Grafana's sidecar: the template in gen/resources with one cluster's values."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from gen.components.common import resource_text
from gen.spec.cluster import Cluster

TEMPLATE = "profiling-dashboard.json"
DATASOURCE_TYPE = "grafana-pyroscope-datasource"
GRID_WIDTH = 24

# Profile type IDs are <name>:<sample type>:<sample unit>:<period type>:<period unit>. The Java
# agent uploads JFR; Pyroscope turns each JFR event kind into one pprof profile named as below
# (grafana/jfr-parser, pprof/pprof.go, profileBuilderForSampleType, which Pyroscope's JFR ingestion
# calls). jdk.ExecutionSample becomes process_cpu whatever the event (cpu, itimer, ctimer), the same
# type the eBPF agent sends.
PROCESS_CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
WALL = "wall:wall:nanoseconds:wall:nanoseconds"
# jdk.ObjectAllocationInNewTLAB: one profile with two sample types.
ALLOC = ("memory:alloc_in_new_tlab_bytes:bytes:space:bytes", "memory:alloc_in_new_tlab_objects:count:space:bytes")
# The lock event makes async-profiler record jdk.JavaMonitorEnter (synchronized, "mutex") and
# jdk.ThreadPark (java.util.concurrent locks, "block"); Cassandra mostly uses the latter.
LOCK = (
    "mutex:delay:nanoseconds:mutex:count",
    "mutex:contentions:count:mutex:count",
    "block:delay:nanoseconds:block:count",
    "block:contentions:count:block:count",
)
ALL_PROFILE_TYPES = (PROCESS_CPU, WALL, *ALLOC, *LOCK)


def template() -> dict[str, Any]:
    """A fresh copy of the dashboard template, every panel in it."""
    data: dict[str, Any] = json.loads(resource_text(TEMPLATE))
    return data


def profile_types(cluster: Cluster) -> list[str]:
    """The profile types the cluster's agents send, process_cpu first."""
    # process_cpu comes from the eBPF agent and from the Java agent's execution samples; it
    # stays even when neither is rendered, as the panel of whatever else sends to the server.
    types = [PROCESS_CPU]
    cassandra = cluster.spec.cassandra
    if cassandra.enabled and cassandra.state == "present":
        profiler = cassandra.profiler
        if profiler.event == "wall":
            types.append(WALL)
        if profiler.alloc is not None:
            types += ALLOC
        if profiler.lock is not None:
            types += LOCK
    return types


def _layout(panels: list[dict[str, Any]]) -> None:
    """Place panels left to right in their template sizes, a new row when one would overflow."""
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        panel["id"] = number
        x += w
        row_height = max(row_height, h)


def dashboard(cluster: Cluster) -> dict[str, Any]:
    """The dashboard of one cluster: its datasource, its cluster name, the panels its agents fill."""
    return _dashboard(*_inputs(cluster), cluster.name)


def _inputs(cluster: Cluster) -> tuple[str, tuple[str, ...], bool, str]:
    """What a dashboard is made from besides the cluster's name."""
    spec = cluster.spec
    return (
        spec.grafana.datasource_uid,
        tuple(profile_types(cluster)),
        spec.ebpf.enabled,
        spec.cassandra.application_name,
    )


def _dashboard(uid: str, types: tuple[str, ...], ebpf: bool, app: str, name: str) -> dict[str, Any]:
    datasource = {"type": DATASOURCE_TYPE, "uid": uid}
    # The variables list the label values of one profile type. The Java agent with the wall
    # event and no eBPF agent may send no process_cpu at all.
    source = WALL if WALL in types and not ebpf else PROCESS_CPU
    # Grafana asks Pyroscope for a label's values over the selector `<profileTypeId>{}`, whose
    # metric name Pyroscope matches against __name__, the profile's name (process_cpu), never its
    # full type id: given the id, every variable would list nothing and fall back to "".
    source_name = source.split(":", 1)[0]
    out = template()
    panels = [p for p in out["panels"] if p["targets"][0]["profileTypeId"] in types]
    for panel in panels:
        panel["datasource"] = dict(datasource)
        for target in panel["targets"]:
            target["datasource"] = dict(datasource)
    _layout(panels)
    out["panels"] = panels
    defaults = {"cluster": name, "service_name": app}
    for variable in out["templating"]["list"]:
        variable["datasource"] = dict(datasource)
        variable["query"]["profileTypeId"] = source_name
        if variable["name"] in defaults:
            value = defaults[variable["name"]]
            variable["current"] = {"selected": True, "text": value, "value": value}
    return out


# Stands for the cluster's name in the cached text: a control character, so it can be in no
# template, uid or application name (the spec refuses them), and JSON writes it as one escape.
_NAME = "\x00cluster\x00"


@cache
def _text_without_name(uid: str, types: tuple[str, ...], ebpf: bool, app: str) -> str:
    # json.dumps with indent runs the pure-Python encoder: a fleet shares a few dashboards
    # that differ only in the cluster's name, so each is encoded once.
    return json.dumps(_dashboard(uid, types, ebpf, app, _NAME), indent=2, sort_keys=True, ensure_ascii=False)


def dashboard_json(cluster: Cluster, header: str) -> str:
    """The dashboard as the file Grafana reads, with gen's header as a "//" key on the first line.

    JSON has no comments: the key keeps the file recognisably gen's (the header test and
    `gen check` read the first line) and Grafana ignores it.
    """
    body = _text_without_name(*_inputs(cluster)).replace(json.dumps(_NAME)[1:-1], json.dumps(cluster.name)[1:-1])
    return '{"//": ' + json.dumps(header) + ",\n" + body.removeprefix("{\n") + "\n"
