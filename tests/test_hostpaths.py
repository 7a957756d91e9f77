"""What a host path in a spec may be (gen.spec.hostpaths): dedicated directories, Cassandra's own files.

The refusals, each with its exact line, are in tests/negative; here the places users do
use stay accepted, and the table keeps the property the checks rely on.
"""

from __future__ import annotations

import posixpath
from typing import Any

import pytest
from pydantic import ValidationError

from gen.components.cassandra import host_dirs
from gen.spec import hostpaths
from gen.spec.cluster import Cassandra, Cluster, Server


def _cluster(cassandra: dict[str, Any]) -> Cluster:
    return Cluster.model_validate(
        {
            "apiVersion": "gen.profiling/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": "lab"},
            "spec": {
                "controlNode": {"address": "10.0.1.10"},
                "cassandra": cassandra,
                "argocd": {"repoURL": "https://github.com/acme/x.git", "destination": {"name": "in-cluster"}},
            },
        },
    )


def test_every_parent_of_a_system_directory_is_one_too() -> None:
    # So that refusing the system directories also refuses every directory that holds one.
    for d in hostpaths.SYSTEM_DIRS:
        at = d
        while at != "/":
            at = posixpath.dirname(at)
            assert at in hostpaths.SYSTEM_DIRS, (d, at)


@pytest.mark.parametrize(
    "path", ["/mnt/db1/pyroscope", "/var/lib/pyroscope", "/srv/pyroscope", "/opt/pyroscope", "/data/pyroscope"]
)
def test_dedicated_data_directories_are_accepted(path: str) -> None:
    assert Server.model_validate({"storagePath": path}).storage_path == path


@pytest.mark.parametrize("path", ["/usr/local/pyroscope", "/opt/pyroscope", "/var/lib/pyroscope-agent"])
def test_dedicated_install_directories_are_accepted(path: str) -> None:
    assert Cassandra.model_validate({"installDir": path}).install_dir == path


@pytest.mark.parametrize(
    ("include", "env"),
    [
        ("/usr/local/cassandra/*/bin/cassandra.in.sh", "/etc/default/cassandra"),
        # The Debian and RPM packages, and a tarball with its own EnvironmentFile.
        ("/usr/share/cassandra/cassandra.in.sh", "/etc/sysconfig/cassandra"),
        ("/opt/cassandra/bin/cassandra.in.sh", "/opt/cassandra/conf/pyroscope.env"),
        ("/etc/cassandra/cassandra.in.sh", "/etc/default/cassandra-pyroscope"),
    ],
)
def test_cassandras_own_files_are_accepted(include: str, env: str) -> None:
    c = Cassandra.model_validate({"includeFile": include, "envFile": env})
    assert (c.include_file, c.env_file) == (include, env)


@pytest.mark.parametrize(
    "path",
    ["/run/pyroscope", "/tmp/pyroscope", "/home/cassandra", "/var/lib/rancher/k3s", "/usr/local/share/x", "/mnt"],
)
def test_system_directories_and_what_they_hold_are_refused_for_data(path: str) -> None:
    with pytest.raises(ValidationError) as e:
        Server.model_validate({"storagePath": path})
    assert [err["loc"] for err in e.value.errors()] == [("storagePath",)]


def test_the_installer_mounts_no_system_directory() -> None:
    for include, env in [
        ("/usr/local/cassandra/*/bin/cassandra.in.sh", "/etc/default/cassandra"),
        ("/usr/share/cassandra/cassandra.in.sh", "/etc/sysconfig/cassandra"),
    ]:
        mounted = {path for _, path, _ in host_dirs(_cluster({"includeFile": include, "envFile": env}))}
        # The EnvironmentFile's directory is the one system directory mounted.
        assert not (mounted - hostpaths.ENV_FILE_DIRS) & hostpaths.SYSTEM_DIRS, mounted
