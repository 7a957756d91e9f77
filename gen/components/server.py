"""The Pyroscope server: its config file, and where, what and how it runs per cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gen import yamlio
from gen.components.common import SYNC_WAVE, Part, Patch, checkov_skip, config_map, header, image_override, patch_op
from gen.spec.cluster import RAFT_PORT, Cluster, major_of

BASE_IMAGE = "grafana/pyroscope"
DATA_MOUNT = "/data"  # where base/server mounts storagePath inside the container
NETWORK_POLICY_FILE = "networkpolicy.yaml"
HOST_PORT_SKIP = (
    "CKV_K8S_26=server.hostNetwork false: the HTTP port is a hostPort on the control node, so that the Java "
    "agents on the database hosts still reach the server at the control node's address; NetworkPolicy "
    "pyroscope admits only allowFrom, the eBPF agents and Grafana, and only to that port"
)


def config(cluster: Cluster) -> dict[str, Any]:
    """The server's config.yaml, in the keys of the image's major version.

    Every directory the server writes is set under the mounted DATA_MOUNT: the upstream
    defaults are relative (./data, ./data-compactor) and resolve against the image's
    working directory, which is the read-only root file system.
    """
    server = cluster.spec.server
    limits: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if server.major >= 2:
        # The default, v1-v2-dual, also runs the v1 ingester, compactor and store-gateway, the
        # compactor in /data-compactor on the read-only root. What dual mode adds, reading v1
        # blocks, finds none: a former 1.x server's blocks lie under another directory.
        out["architecture_storage"] = "v2"
        out["storage"] = {"backend": "filesystem", "filesystem": {"dir": f"{DATA_MOUNT}/v2/shared"}}
        out["metastore"] = {
            "data_dir": f"{DATA_MOUNT}/v2/metastore/data",
            # The single binary's metastore and query backend are dialled on the gRPC port.
            "address": f"localhost:{server.grpc_port}",
            "raft": {
                "dir": f"{DATA_MOUNT}/v2/metastore/raft",
                # Where earlier renders' relative default put the snapshots (the image's
                # working directory is /), so an upgraded server keeps them.
                "snapshots_dir": f"{DATA_MOUNT}/v2/metastore/raft",
                # The server ID is kept in the raft state, so it must never change under an existing
                # data directory: it stays the upstream default whatever raftPort is (an ID only; the
                # lone voter never dials its own address).
                "server_id": f"localhost:{RAFT_PORT}",
                "bind_address": f"localhost:{server.raft_port}",
                "advertise_address": f"localhost:{server.raft_port}",
            },
        }
        out["query_backend"] = {"address": f"localhost:{server.grpc_port}"}
        # Wiped by the worker at start-up; on /data rather than the size-limited /tmp emptyDir.
        out["compaction_worker"] = {"temp_dir": f"{DATA_MOUNT}/v2/compaction"}
        limits["retention_period"] = server.retention
    else:
        out["pyroscopedb"] = {"data_path": f"{DATA_MOUNT}/pyroscope"}
        out["storage"] = {"backend": "filesystem", "filesystem": {"dir": f"{DATA_MOUNT}/shared"}}
        out["compactor"] = {"data_dir": f"{DATA_MOUNT}/compactor"}
        out["store_gateway"] = {"bucket_store": {"sync_dir": f"{DATA_MOUNT}/pyroscope-sync"}}
        limits["compactor_blocks_retention_period"] = server.retention
    # Queries reach back 1w by default, whatever the retention. For both keys 0 means
    # no limit, so retention 0 (keep forever) gives max_query_lookback 0 (query all of it).
    limits["max_query_lookback"] = server.retention
    # The defaults (4 MB/s, burst 2 MB) answer JFR uploads with alloc and lock on with 429.
    limits["ingestion_rate_mb"] = 16
    limits["ingestion_burst_size_mb"] = 32
    out["limits"] = limits
    out["server"] = {"http_listen_port": server.port, "grpc_listen_port": server.grpc_port}
    out["memberlist"] = {
        # Never memberlist's default 7946, and no join_members: a lone member that other
        # memberlist users on the node (Tempo, Loki) neither clash with nor join. Messages
        # without this label are dropped (verification is on unless disabled).
        "bind_port": server.memberlist_port,
        # Memberlist takes any label of at most 255 bytes; a cluster name is at most 40.
        "cluster_label": f"pyroscope-{cluster.name}",
        "cluster_label_verification_disabled": False,
    }
    out["self_profiling"] = {"disable_push": True}
    # Lab clusters often have no route out; don't phone home.
    out["analytics"] = {"reporting_enabled": False}
    return out


STORAGE_NOT_MIGRATED = (
    "Pyroscope 1.x to 2.x: the 2.x server does not read the profiles 1.x stored (they are not migrated); "
    "it starts empty, and 1.x's blocks stay in the storage directory until removed"
)


def image_of(kustomization: Mapping[str, Any]) -> str | None:
    """The server image an overlay's kustomization pins (`name:tag`), or None when it names none."""
    for entry in kustomization.get("images") or []:
        if isinstance(entry, dict) and entry.get("name") == BASE_IMAGE:
            return f"{entry.get('newName', BASE_IMAGE)}:{entry.get('newTag', '')}"
    return None


def crosses_to_v2(old_image: str | None, new_image: str | None) -> bool:
    """Whether a change of server image moves from 1.x to 2.x (whose storage is new)."""
    try:
        return old_image is not None and new_image is not None and major_of(old_image) < 2 <= major_of(new_image)
    except ValueError:
        return False


def build(cluster: Cluster) -> Part:
    spec = cluster.spec
    server = spec.server
    # Declared so that the scheduler counts them as the node's ports on the host network.
    ports = [{"name": name, "containerPort": port} for name, port in server.ports.items()]
    deployment_ops = [
        patch_op("replace", "/spec/template/spec/nodeSelector", dict(spec.control_node.node_selector)),
        patch_op("replace", "/spec/template/spec/containers/0/ports", ports),
        patch_op("replace", "/spec/template/spec/volumes/1/hostPath/path", server.storage_path),
        # Named in the init container's refusal, which sees the directory only as DATA_MOUNT.
        patch_op("replace", "/spec/template/spec/initContainers/0/args/1", server.storage_path),
    ]
    files = {"config.yaml": header(cluster) + yamlio.dump(config(cluster))}
    resources = []
    if not server.host_network:
        deployment_ops += _pod_network_ops(cluster)
        files[NETWORK_POLICY_FILE] = header(cluster) + yamlio.dump(network_policy(cluster))
        resources.append(NETWORK_POLICY_FILE)
    return Part(
        component="server",
        files=files,
        generators=[config_map("pyroscope-config", ["config.yaml"])],
        patches=[
            Patch("Deployment", "pyroscope", deployment_ops),
            Patch("Service", "pyroscope", [patch_op("replace", "/spec/ports/0/port", server.port)]),
        ],
        images=[image_override(BASE_IMAGE, server.image)],
        resources=resources,
    )


def _pod_network_ops(cluster: Cluster) -> list[dict[str, Any]]:
    # Only the HTTP port is bound on the node (a hostPort); gRPC, memberlist and raft stay in the
    # pod, under the NetworkPolicy. The fixed host name keeps the server's ring membership, which
    # it keys on the host name, across restarts (a Deployment's pod name changes with each).
    template = "/spec/template/spec"
    return [
        patch_op("replace", f"{template}/hostNetwork", False),
        patch_op("replace", f"{template}/dnsPolicy", "ClusterFirst"),
        patch_op("add", f"{template}/hostname", "pyroscope"),
        patch_op("add", f"{template}/containers/0/ports/0/hostPort", cluster.spec.server.port),
        # The host-network exceptions of base/server no longer hold; the hostPort is one.
        patch_op("replace", checkov_skip(1), HOST_PORT_SKIP),
        patch_op("remove", checkov_skip(2)),
    ]


def network_policy(cluster: Cluster) -> dict[str, Any]:
    """Who may reach the pod-network server: its HTTP port only, from what sends or queries.

    Other nodes' profiles (host Java agents, pods the CNI masquerades) come from node addresses, admitted
    by `allowFrom`; the eBPF agent and Grafana on the control node keep pod addresses, admitted by selector.
    """
    spec = cluster.spec
    # The pod labels and selectors are base/server's and base/ebpf's (easy-db-lab's).
    sources: list[dict[str, Any]] = []
    if spec.ebpf.enabled:
        sources.append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "pyroscope-ebpf"}}})
    if spec.grafana.enabled:
        sources.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": spec.grafana.namespace}}})
    sources += [{"ipBlock": {"cidr": cidr}} for cidr in spec.server.allow_from or []]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "pyroscope",
            "labels": {"app.kubernetes.io/name": "pyroscope", "app.kubernetes.io/component": "server"},
            "annotations": {SYNC_WAVE: "1"},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "pyroscope"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": spec.server.port}]}],
        },
    }
