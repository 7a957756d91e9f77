"""The Grafana datasource: a provisioning file in a ConfigMap Grafana's sidecar picks up."""

from __future__ import annotations

from typing import Any

from gen import yamlio
from gen.build.common import Part, config_map, header, server_url
from gen.spec import Cluster

SIDECAR_LABEL = {"grafana_datasource": "1"}


def datasource(cluster: Cluster) -> dict[str, Any]:
    grafana = cluster.spec.grafana
    # Grafana cannot show a step finer than what the eBPF agent collects.
    min_step = f"{cluster.spec.ebpf.collect_seconds}s"
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": grafana.datasource_name,
                "type": "grafana-pyroscope-datasource",
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
    return Part(
        files={"datasource.yaml": header(cluster) + yamlio.dump(datasource(cluster))},
        generators=[
            config_map(
                "pyroscope-datasource",
                ["pyroscope.yaml=datasource.yaml"],
                namespace=grafana.namespace,
                labels=SIDECAR_LABEL,
            )
        ],
    )
