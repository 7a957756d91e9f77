"""What each platform's nodes already hold: the objects the stack takes over and the host ports in use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["control", "db", "every"]


@dataclass(frozen=True)
class HostPort:
    port: int
    owner: str
    role: Role  # the nodes that bind it: the control node, the database nodes, or every node
    # The stack object that replaces this port's owner in place: that object may bind it.
    taken_over_by: str | None = None


# easy-db-lab's own profiling objects in namespace `default`, taken over in place (same
# kind, name and selector), as (kind, name).
EASY_DB_LAB_OBJECTS = (
    ("ClusterRole", "pyroscope-ebpf"),
    ("ClusterRoleBinding", "pyroscope-ebpf"),
    ("ConfigMap", "pyroscope-config"),
    ("ConfigMap", "pyroscope-ebpf-config"),
    ("DaemonSet", "pyroscope-ebpf"),
    ("Deployment", "pyroscope"),
    ("Service", "pyroscope"),
    ("ServiceAccount", "pyroscope-ebpf"),
)

_SERVER = "the Pyroscope server"

EASY_DB_LAB_PORTS = (
    HostPort(6443, "the K3s API server", "control"),
    # K3s's control plane: embedded etcd, and the controllers it runs in its own process.
    HostPort(2379, "K3s's embedded etcd (clients)", "control"),
    HostPort(2380, "K3s's embedded etcd (peers)", "control"),
    HostPort(10257, "K3s's kube-controller-manager", "control"),
    HostPort(10259, "K3s's kube-scheduler", "control"),
    HostPort(3000, "Grafana", "control"),
    HostPort(8081, "Grafana's image renderer", "control"),
    HostPort(4040, "easy-db-lab's Pyroscope (HTTP)", "control", taken_over_by=_SERVER),
    HostPort(9095, "easy-db-lab's Pyroscope (gRPC)", "control", taken_over_by=_SERVER),
    # Tempo's memberlist port is not pinned by easy-db-lab; memberlist's default is this one.
    HostPort(7946, "memberlist of easy-db-lab's Pyroscope and Tempo", "control"),
    HostPort(8428, "VictoriaMetrics", "control"),
    HostPort(9428, "VictoriaLogs", "control"),
    HostPort(3200, "Tempo (HTTP)", "control"),
    HostPort(9096, "Tempo (gRPC)", "control"),
    HostPort(4320, "Tempo (OTLP)", "control"),
    HostPort(4321, "Tempo (OTLP)", "control"),
    HostPort(5000, "the container registry", "control"),
    HostPort(8080, "the S3 manager", "control"),
    HostPort(5001, "YACE", "control"),
    HostPort(4317, "the OpenTelemetry collector (OTLP gRPC)", "every"),
    HostPort(4318, "the OpenTelemetry collector (OTLP HTTP)", "every"),
    HostPort(13133, "the OpenTelemetry collector (health)", "every"),
    HostPort(8888, "the OpenTelemetry collector (metrics)", "every"),
    HostPort(2020, "fluent-bit", "every"),
    HostPort(9400, "Beyla", "every"),
    HostPort(9435, "ebpf_exporter", "every"),
    HostPort(12345, "easy-db-lab's Alloy (pyroscope-ebpf)", "every", taken_over_by="the eBPF agent"),
    HostPort(10250, "the kubelet", "every"),
    HostPort(10248, "the kubelet (health)", "every"),
    HostPort(10249, "kube-proxy (metrics)", "every"),
    HostPort(10256, "kube-proxy (health)", "every"),
    HostPort(6444, "K3s's API load balancer", "every"),
    HostPort(10010, "K3s's containerd (CRI streaming)", "every"),
    # UDP, which memberlist binds on its port too.
    HostPort(8472, "Flannel (VXLAN)", "every"),
    HostPort(6831, "the OpenTelemetry collector (Jaeger, UDP)", "every"),
    HostPort(9042, "Cassandra (CQL)", "db"),
    HostPort(7000, "Cassandra (internode)", "db"),
    HostPort(7001, "Cassandra (internode TLS)", "db"),
    HostPort(7199, "Cassandra (JMX)", "db"),
    HostPort(9000, "the MAAC agent", "db"),
    HostPort(9043, "the Cassandra sidecar", "db"),
)

# Only what every conformant node runs.
KUBERNETES_PORTS = (
    HostPort(6443, "the Kubernetes API server", "control"),
    HostPort(2379, "etcd (clients)", "control"),
    HostPort(2380, "etcd (peers)", "control"),
    HostPort(10257, "kube-controller-manager", "control"),
    HostPort(10259, "kube-scheduler", "control"),
    HostPort(10250, "the kubelet", "every"),
    HostPort(10255, "the kubelet (read-only)", "every"),
    HostPort(10248, "the kubelet (health)", "every"),
    HostPort(10249, "kube-proxy (metrics)", "every"),
    HostPort(10256, "kube-proxy (health)", "every"),
)

PORTS = {"easy-db-lab": EASY_DB_LAB_PORTS, "kubernetes": KUBERNETES_PORTS}


def port_clash(platform: str, port: int, role: Role, user: str) -> HostPort | None:
    """The platform's use of a host port that `user` (a stack part) would bind on nodes of `role`, if any."""
    mine = (t for t in PORTS[platform] if t.port == port and t.taken_over_by != user)
    return next((t for t in mine if "every" in (t.role, role) or t.role == role), None)
