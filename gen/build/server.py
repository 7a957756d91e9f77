"""The Pyroscope server: its config file, and where, what and how it runs per cluster."""

from __future__ import annotations

from typing import Any

from gen import yamlio
from gen.build.common import Part, config_map, header, image_override, json_patch
from gen.spec import Cluster

BASE_IMAGE = "grafana/pyroscope"
DATA_MOUNT = "/data"  # where base/server mounts storagePath inside the container
GRPC_PORT = 9095
# The defaults (4 MB/s, burst 2 MB) answer JFR uploads with alloc and lock on with 429.
INGESTION_RATE_MB = 16
INGESTION_BURST_MB = 32


def config(cluster: Cluster) -> dict[str, Any]:
    """The server's config.yaml, in the keys of the image's major version."""
    server = cluster.spec.server
    limits: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if server.major >= 2:
        # 2.x: the v2 storage engine; v1 keys such as pyroscopedb.data_path do nothing here.
        out["storage"] = {"backend": "filesystem", "filesystem": {"dir": f"{DATA_MOUNT}/v2/shared"}}
        out["metastore"] = {
            "data_dir": f"{DATA_MOUNT}/v2/metastore/data",
            "raft": {"dir": f"{DATA_MOUNT}/v2/metastore/raft"},
        }
        limits["retention_period"] = server.retention
    else:
        out["pyroscopedb"] = {"data_path": f"{DATA_MOUNT}/pyroscope"}
        out["storage"] = {"backend": "filesystem", "filesystem": {"dir": f"{DATA_MOUNT}/shared"}}
        out["compactor"] = {"data_dir": f"{DATA_MOUNT}/compactor"}
        limits["compactor_blocks_retention_period"] = server.retention
    limits["ingestion_rate_mb"] = INGESTION_RATE_MB
    limits["ingestion_burst_size_mb"] = INGESTION_BURST_MB
    out["limits"] = limits
    out["server"] = {"http_listen_port": server.port, "grpc_listen_port": GRPC_PORT}
    out["self_profiling"] = {"disable_push": True}
    # Lab clusters often have no route out; don't phone home.
    out["analytics"] = {"reporting_enabled": False}
    return out


def build(cluster: Cluster) -> Part:
    spec = cluster.spec
    server = spec.server
    deployment_ops: list[dict[str, Any]] = [
        {"op": "replace", "path": "/spec/template/spec/nodeSelector", "value": dict(spec.control_node.node_selector)},
        {"op": "replace", "path": "/spec/template/spec/containers/0/ports/0/containerPort", "value": server.port},
        {"op": "replace", "path": "/spec/template/spec/volumes/1/hostPath/path", "value": server.storage_path},
    ]
    service_ops: list[dict[str, Any]] = [{"op": "replace", "path": "/spec/ports/0/port", "value": server.port}]
    return Part(
        component="server",
        files={"config.yaml": header(cluster) + yamlio.dump(config(cluster))},
        generators=[config_map("pyroscope-config", ["config.yaml"])],
        patches=[
            json_patch("Deployment", "pyroscope", deployment_ops),
            json_patch("Service", "pyroscope", service_ops),
        ],
        images=[image_override(BASE_IMAGE, server.image)],
    )
