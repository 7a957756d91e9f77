"""The eBPF profiler (Grafana Alloy): its config.alloy and per-cluster settings."""

from __future__ import annotations

import json
from typing import Any

from gen.components.common import (
    Part,
    Patch,
    checkov_skip,
    config_map,
    filled,
    header,
    image_override,
    patch_op,
    server_url,
)
from gen.spec.cluster import Cluster

BASE_IMAGE = "grafana/alloy"
DAEMONSET = "pyroscope-ebpf"  # base/ebpf
# What the eBPF profiler needs when it does not run privileged (Alloy's pyroscope.ebpf
# documentation, "Required privileges"). SYS_ADMIN is deliberately not in it: it would
# undo most of what this mode is for. Kernels before 5.9 lack CAP_CHECKPOINT_RESTORE
# (and, before 5.8, CAP_BPF and CAP_PERFMON) and need ebpf.privileged: true instead.
CAPABILITIES = [
    "BPF",
    "CHECKPOINT_RESTORE",
    "DAC_READ_SEARCH",
    "PERFMON",
    "SYS_PTRACE",
    "SYS_RESOURCE",
    "SYSLOG",
]
TRACEFS = "/sys/kernel/tracing"
# The privileged-mode exceptions in base/ebpf (checkov.io/skip6 to skip9) and the one that replaces them here.
PRIVILEGED_SKIPS = [checkov_skip(n) for n in (6, 7, 8, 9)]
CAPABILITY_SKIP = (
    "CKV_K8S_25=ebpf.privileged false: every capability is dropped but BPF, PERFMON, SYS_PTRACE, "
    "CHECKPOINT_RESTORE, SYS_RESOURCE, DAC_READ_SEARCH and SYSLOG, the set Alloy documents for eBPF "
    "profiling without privileged"
)


def _q(text: str) -> str:
    """An Alloy string literal (Alloy strings share JSON's escapes)."""
    return json.dumps(text)


def config(cluster: Cluster) -> str:
    """config.alloy: pods on this node joined with every host process, then profiled."""
    ebpf = cluster.spec.ebpf
    values = {
        # The Cassandra JVM's eBPF profile is never named as the Java agent's: on easy-db-lab the image's
        # agent profiles the JVM as `cassandra` even when gen's agent is off.
        "CASSANDRA_SERVICE_NAME": _q(f"{cluster.spec.cassandra.application_name}-ebpf"),
        "CLUSTER": _q(cluster.name),
        "SAMPLE_RATE": str(ebpf.sample_rate),
        "COLLECT_INTERVAL": _q(ebpf.collect_interval),
        "DEMANGLE": _q(ebpf.demangle),
        "SERVER_URL": _q(server_url(cluster)),
    }
    return filled(values, "config.alloy.template")


def build(cluster: Cluster) -> Part:
    ebpf = cluster.spec.ebpf
    return Part(
        component="ebpf",
        files={"config.alloy": header(cluster, "//") + config(cluster)},
        generators=[config_map("pyroscope-ebpf-config", ["config.alloy"])],
        patches=[] if ebpf.privileged else [Patch("DaemonSet", DAEMONSET, _least_privilege_ops())],
        images=[image_override(BASE_IMAGE, ebpf.image)],
    )


def _least_privilege_ops() -> list[dict[str, Any]]:
    container = "/spec/template/spec/containers/0"
    security_context = {
        "privileged": False,
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": CAPABILITIES},
        # The runtime's default AppArmor profile lets a container ptrace (and so read
        # /proc/<pid>/mem and maps of) only processes under the same profile; the profiler
        # reads host processes such as Cassandra. The pod's RuntimeDefault seccomp profile
        # stays: containerd's admits bpf() and perf_event_open() for CAP_BPF and CAP_PERFMON.
        "appArmorProfile": {"type": "Unconfined"},
    }
    return [
        patch_op("replace", f"{container}/securityContext", security_context),
        patch_op("add", f"{container}/volumeMounts/-", {"name": "tracefs", "mountPath": TRACEFS, "readOnly": True}),
        patch_op(
            "add",
            "/spec/template/spec/volumes/-",
            {"name": "tracefs", "hostPath": {"path": TRACEFS, "type": "Directory"}},
        ),
        # The scanner's exceptions follow the mode: privileged's go, the capability set's comes.
        patch_op("replace", PRIVILEGED_SKIPS[0], CAPABILITY_SKIP),
        *(patch_op("remove", path) for path in PRIVILEGED_SKIPS[1:]),
    ]
