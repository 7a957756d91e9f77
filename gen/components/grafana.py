"""The Grafana datasource and profiling dashboard: ConfigMaps Grafana's sidecar picks up."""

from __future__ import annotations

from typing import Any

from gen import yamlio
from gen.components import dashboard
from gen.components.common import Part, config_map, header, header_text, server_url
from gen.spec.cluster import Cluster

# After every workload (waves 0 to 2): the Grafana namespace is not the stack's, and when it is
# missing these ConfigMaps fail their wave, which must then hold nothing else back.
GRAFANA_WAVE = "5"
DATASOURCE_CONFIGMAP = "pyroscope-datasource"


def datasource(cluster: Cluster) -> dict[str, Any]:
    grafana = cluster.spec.grafana
    # Grafana cannot show a step finer than what the eBPF agent collects.
    min_step = f"{cluster.spec.ebpf.collect_seconds}s"
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
