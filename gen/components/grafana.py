"""The Grafana datasource and profiling dashboard: ConfigMaps Grafana's sidecar picks up."""

from __future__ import annotations

from typing import Any

from gen import yamlio
from gen.components import dashboard
from gen.components.common import Part, config_map, header, header_text, server_url
from gen.spec import units
from gen.spec.cluster import Cluster

# The wave after every workload's (1), so that a missing Grafana namespace never holds the stack back. Argo
# CD starts it only once the workloads are healthy: a DaemonSet with a pod that never becomes ready (a host
# whose installer fails, a node that is down) stays Progressing, and these ConfigMaps wait with the sync.
GRAFANA_WAVE = "2"
DATASOURCE_CONFIGMAP = "pyroscope-datasource"


def datasource(cluster: Cluster) -> dict[str, Any]:
    grafana = cluster.spec.grafana
    min_step = f"{min_step_seconds(cluster)}s"
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": grafana.datasource_name,
                "type": dashboard.DATASOURCE_TYPE,
                "uid": grafana.datasource_uid,
                "access": "proxy",
                "url": server_url(cluster),
                "editable": False,
                "jsonData": {"minStep": min_step},
            }
        ],
    }


def min_step_seconds(cluster: Cluster) -> int:
    """The coarsest interval at which the rendered agents send, in whole seconds: Grafana cannot show a finer step
    (the eBPF agent's collect interval, the Java agent's upload interval; the former when neither is rendered)."""
    spec = cluster.spec
    steps = [spec.ebpf.collect_seconds] if spec.ebpf.enabled else []
    if spec.cassandra.enabled and spec.cassandra.state == "present":
        upload = units.agent_interval_ns(spec.cassandra.profiler.upload_interval)
        steps.append(-(-upload // 10**9))  # rounded up: a step below it would show gaps
    return max(steps, default=spec.ebpf.collect_seconds)


def build(cluster: Cluster) -> Part:
    grafana = cluster.spec.grafana
    files = {"datasource.yaml": header(cluster) + yamlio.dump(datasource(cluster))}
    maps = [(DATASOURCE_CONFIGMAP, "pyroscope.yaml=datasource.yaml", {"grafana_datasource": "1"})]
    if grafana.dashboard:
        files["dashboard.json"] = dashboard.dashboard_json(cluster, header_text(cluster))
        maps.append(("pyroscope-dashboard", "pyroscope-profiling.json=dashboard.json", {"grafana_dashboard": "1"}))
    generators = [
        config_map(name, [entry], namespace=grafana.namespace, labels=labels, wave=GRAFANA_WAVE)
        for name, entry, labels in maps
    ]
    return Part(files=files, generators=generators)
