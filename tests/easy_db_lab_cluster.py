"""A model of what a cluster built by easy-db-lab holds before gen's stack is synced onto it.

Written from the platform description (shared/docs/easy-db-lab-platform.md), independently of
gen's own tables, so that the tests compare two accounts of the same cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "default"


@dataclass(frozen=True)
class LiveObject:
    kind: str
    name: str
    namespace: str | None = NAMESPACE  # None: cluster-scoped
    # A workload's selector, which the API server never lets change in place.
    selector: dict[str, str] = field(default_factory=dict)
    # The stack's own objects, which gen takes over; the rest must be left alone.
    profiling: bool = True


OBJECTS = (
    LiveObject("Deployment", "pyroscope", selector={"app.kubernetes.io/name": "pyroscope"}),
    LiveObject("Service", "pyroscope"),
    LiveObject("ConfigMap", "pyroscope-config"),
    LiveObject("DaemonSet", "pyroscope-ebpf", selector={"app.kubernetes.io/name": "pyroscope-ebpf"}),
    LiveObject("ServiceAccount", "pyroscope-ebpf"),
    LiveObject("ConfigMap", "pyroscope-ebpf-config"),
    LiveObject("ClusterRole", "pyroscope-ebpf", namespace=None),
    LiveObject("ClusterRoleBinding", "pyroscope-ebpf", namespace=None),
    # Grafana and its provisioning: not the stack's, never to be touched.
    LiveObject("Deployment", "grafana", selector={"app.kubernetes.io/name": "grafana"}, profiling=False),
    LiveObject("ConfigMap", "grafana-datasources", profiling=False),
    LiveObject("ConfigMap", "grafana-dashboard-profiling", profiling=False),
)

# Host ports in use before the sync, by node role, each with the workload that binds it.
# "every" ports are bound on the control node and the database nodes too.
HOST_PORTS: dict[str, dict[int, str]] = {
    "control": {
        6443: "k3s",
        2379: "k3s",  # embedded etcd
        2380: "k3s",
        10257: "k3s",  # kube-controller-manager
        10259: "k3s",  # kube-scheduler
        3000: "grafana",
        8081: "grafana-image-renderer",
        4040: "Deployment/pyroscope",
        9095: "Deployment/pyroscope",
        7946: "Deployment/pyroscope",  # memberlist default, shared with Tempo
        8428: "victoriametrics",
        9428: "victorialogs",
        3200: "tempo",
        9096: "tempo",
        4320: "tempo",
        4321: "tempo",
        5000: "registry",
        8080: "s3-manager",
        5001: "yace",
    },
    "every": {
        4317: "otel-collector",
        4318: "otel-collector",
        13133: "otel-collector",
        8888: "otel-collector",
        2020: "fluent-bit",
        9400: "beyla",
        9435: "ebpf-exporter",
        12345: "DaemonSet/pyroscope-ebpf",
        10250: "kubelet",
    },
    "db": {9042: "cassandra", 7000: "cassandra", 7001: "cassandra", 7199: "cassandra", 9000: "maac", 9043: "sidecar"},
}

# Node labels: where each rendered workload lands.
NODE_LABELS = {
    "control": {"type": "control", "node-role.kubernetes.io/control-plane": "true"},
    "db": {"type": "db"},
    "app": {"type": "app"},
}


def roles_of(node_selector: dict[str, str]) -> list[str]:
    """The node roles whose labels satisfy a pod's nodeSelector (every role when it has none)."""
    return [role for role, labels in NODE_LABELS.items() if all(labels.get(k) == v for k, v in node_selector.items())]


def taken(role: str) -> dict[int, str]:
    """The ports already bound on nodes of a role."""
    return {**HOST_PORTS["every"], **HOST_PORTS.get(role, {})}


# What easy-db-lab's next `up` (or `grafana update-config`) applies again over the objects taken over,
# with server-side apply and forceConflicts: the fields whose merge with the rendered ones the API
# server validates. (easy-db-lab's PyroscopeManifestBuilder.)
REAPPLIED_PROBES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("Deployment/pyroscope", "pyroscope"): {
        "livenessProbe": {"httpGet": {"path": "/ready", "port": 4040}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 4040}},
    },
}
REAPPLIED_SERVICE_PORTS: dict[str, list[dict[str, Any]]] = {
    "pyroscope": [{"name": "http", "port": 4040, "targetPort": 4040, "protocol": "TCP"}],
}
