"""The Cassandra agent: the installer ConfigMap and the DaemonSet's per-cluster settings."""

from __future__ import annotations

import posixpath
from typing import Any

from gen.components import cassandra_scripts
from gen.components.common import Part, Patch, config_map, header, patch_op, server_url
from gen.spec.cluster import Cassandra, Cluster
from gen.spec.hostpaths import include_mount

HOST_ROOT = "/host"
CONFIG_MAP = "pyroscope-cassandra-agent"
DAEMONSET = "pyroscope-cassandra-agent"
INIT = "/spec/template/spec/initContainers/0"


def settings_for(c: Cassandra, cluster_name: str, head: str, *, server_address: str) -> str:
    """The snippet for one cassandra section, under the given header line."""
    return cassandra_scripts.settings_snippet(head, **_snippet_settings(c, cluster_name, server_address))


def jvm_options_size(c: Cassandra, cluster_name: str, *, server_address: str) -> int:
    """Bytes the snippet adds to every Cassandra JVM's command line, at the longest host name."""
    return cassandra_scripts.options_size(**_snippet_settings(c, cluster_name, server_address))


def _snippet_settings(c: Cassandra, cluster_name: str, server_address: str) -> dict[str, Any]:
    return dict(
        install_dir=c.install_dir,
        application_name=c.application_name,
        event=c.profiler.event,
        alloc=c.profiler.alloc,
        lock=c.profiler.lock,
        upload_interval=c.profiler.upload_interval,
        cluster=cluster_name,
        server_address=server_address,
        labels=c.labels,
    )


def host_dirs(cluster: Cluster) -> list[tuple[str, str, str]]:
    """(volume name, host directory, hostPath type) for each directory the installer writes.

    Only these directories are mounted, never `/`; a directory inside another
    mounted one is reached through that mount.
    """
    c = cluster.spec.cassandra
    wanted = [
        ("host-install-dir", c.install_dir, "DirectoryOrCreate"),
        ("host-include-dir", include_mount(c.include_file), "Directory"),
        ("host-env-dir", posixpath.dirname(c.env_file), "Directory"),
    ]
    kept: list[tuple[str, str, str]] = []
    # By path: a directory sorts before every directory inside it, which starts with its path.
    for entry in sorted(wanted, key=lambda w: w[1]):
        if not any(entry[1] == k[1] or entry[1].startswith(k[1].rstrip("/") + "/") for k in kept):
            kept.append(entry)
    return kept


def _ops(cluster: Cluster) -> list[dict[str, Any]]:
    c = cluster.spec.cassandra
    ops = [patch_op("replace", "/spec/template/spec/nodeSelector", dict(c.node_selector))]
    if c.tolerations:
        tolerations = [t.model_dump(by_alias=True, exclude_none=True) for t in c.tolerations]
        ops.append(patch_op("add", "/spec/template/spec/tolerations", tolerations))
    for name, path, kind in host_dirs(cluster):
        ops.append(patch_op("add", f"{INIT}/volumeMounts/-", {"name": name, "mountPath": HOST_ROOT + path}))
        ops.append(
            patch_op("add", "/spec/template/spec/volumes/-", {"name": name, "hostPath": {"path": path, "type": kind}})
        )
    if c.state == "absent":
        ops.append(patch_op("replace", f"{INIT}/args", ["uninstall"]))
    return ops


def build(cluster: Cluster) -> Part:
    c, head, server = cluster.spec.cassandra, header(cluster).rstrip("\n"), server_url(cluster)
    # The installer's inputs: kept in the ConfigMap so that a new pin changes its hash.
    env = {
        "AGENT_URL": c.agent.download_url,
        "AGENT_SHA256": c.agent.sha256 or "",
        "INSTALL_DIR": c.install_dir,
        "INCLUDE_FILE": c.include_file,
        "ENV_FILE": c.env_file,
        "PYROSCOPE_SERVER_ADDRESS": server,
        "CLUSTER_NAME": cluster.name,
    }
    literals = [f"{k}={v}" for k, v in env.items()]
    return Part(
        component="cassandra-agent",
        # install.sh is the same for every cluster: base/cassandra-agent merges it into this ConfigMap.
        files={"cassandra-pyroscope.sh": settings_for(c, cluster.name, head, server_address=server)},
        generators=[config_map(CONFIG_MAP, ["cassandra-pyroscope.sh"], literals=literals)],
        patches=[Patch("DaemonSet", DAEMONSET, _ops(cluster))],
    )
