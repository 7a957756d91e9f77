"""End to end with a real JVM: a tiny Java agent built at test time is served as the download,
installed by install.sh, loaded through the patched include file, and reports the properties
it was started with."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from installer_fixtures import (
    CLUSTER,
    EDL_INCLUDE,
    INSTALL_DIR,
    SERVER_ADDRESS,
    EasyDbLabHost,
    Host,
    JarServer,
    host_name,
    installed_real_host,
    tool,
)

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="javac not found: needs a JDK (javac, jar, java)")

AGENT_SOURCE = """\
import java.util.Map;
import java.util.TreeMap;

public final class Agent {
    public static void premain(String args) {
        // Once per -javaagent: a second agent would print this line again.
        System.out.println("agent loaded");
        TreeMap<String, String> found = new TreeMap<>();
        for (String name : System.getProperties().stringPropertyNames()) {
            if (name.startsWith("pyroscope.")) {
                found.put(name, System.getProperty(name));
            }
        }
        for (Map.Entry<String, String> e : found.entrySet()) {
            System.out.println(e.getKey() + "=" + e.getValue());
        }
    }
}
"""

MAIN_SOURCE = """\
public final class Main {
    public static void main(String[] args) {
        System.out.println("main ran");
    }
}
"""

# The include file is sourced the way bin/cassandra does it, then the JVM is started with
# JVM_EXTRA_OPTS split into words, as cassandra-env.sh and bin/cassandra do.
DRIVER = """set -eu
JVM_EXTRA_OPTS=${JVM_EXTRA_OPTS:-}
. "$1"
# shellcheck disable=SC2086
exec java $JVM_EXTRA_OPTS -cp "$2" Main
"""


def agent_report(hostname: str) -> list[str]:
    """What the JVM prints when it loads the agent once, with the settings of installer_fixtures.spec()."""
    return [
        "agent loaded",
        "pyroscope.application.name=cassandra",
        "pyroscope.format=jfr",
        f"pyroscope.labels=cluster={CLUSTER},hostname={hostname},dc=dc1,rack=r1",
        "pyroscope.profiler.alloc=512k",
        "pyroscope.profiler.event=cpu",
        "pyroscope.profiler.lock=10ms",
        f"pyroscope.server.address={SERVER_ADDRESS}",
        "pyroscope.upload.interval=10s",
        "main ran",
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """The agent jar's bytes and the directory holding Main.class."""
    work = tmp_path_factory.mktemp("java")
    (work / "Agent.java").write_text(AGENT_SOURCE)
    (work / "Main.java").write_text(MAIN_SOURCE)
    classes = work / "classes"
    subprocess.run(
        [tool("javac"), "-d", str(classes), str(work / "Agent.java"), str(work / "Main.java")],
        check=True,
    )
    manifest = work / "manifest.txt"
    manifest.write_text("Premain-Class: Agent\n")
    jar = work / "agent.jar"
    subprocess.run(
        [tool("jar"), "cfm", str(jar), str(manifest), "-C", str(classes), "Agent.class"],
        check=True,
    )
    return jar.read_bytes(), classes


@pytest.fixture
def server(built: tuple[bytes, Path]) -> Iterator[JarServer]:
    with JarServer(built[0]) as s:
        yield s


def test_the_jvm_starts_with_the_agent_and_every_property(
    tmp_path: Path, server: JarServer, built: tuple[bytes, Path]
) -> None:
    host = installed_real_host(tmp_path, server)
    assert host.jar.read_bytes() == built[0]

    assert _started(tmp_path, host.include, built[1]) == agent_report(host_name())


@pytest.mark.parametrize("other", ["opt/pyroscope/agent-2.9.1.jar", "opt/Pyroscope/agent.jar"])
def test_an_agent_from_another_pyroscope_path_is_not_loaded_too(
    tmp_path: Path, server: JarServer, built: tuple[bytes, Path], other: str
) -> None:
    # Maven's name for the jar holds no "pyroscope"; its directory does.
    host = installed_real_host(tmp_path, server)
    jar = tmp_path / other
    jar.parent.mkdir(parents=True)
    jar.write_bytes(built[0])
    extra = f"-javaagent:{jar} -Dpyroscope.application.name=other"
    assert _started(tmp_path, host.include, built[1], JVM_EXTRA_OPTS=extra) == agent_report(host_name())


def _started(tmp_path: Path, include: Path, classes: Path, **env: str) -> list[str]:
    """What the test JVM reports of its agent when started through the include file, as bin/cassandra does."""
    driver = tmp_path / "start.sh"
    driver.write_text(DRIVER)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYROSCOPE_SERVER_ADDRESS": SERVER_ADDRESS, **env}
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    result = subprocess.run(
        [tool("bash"), str(driver), str(include), str(classes)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_on_an_easydblab_host_the_server_jvm_loads_one_agent_with_gens_settings(
    tmp_path: Path, server: JarServer, built: tuple[bytes, Path]
) -> None:
    # The image's block adds the same jar to JVM_OPTS with its own properties; the snippet
    # takes that out, so the JVM loads the agent once, with the rendered settings only.
    root = tmp_path / "root"
    edl = EasyDbLabHost(root, str(root), "relative")
    host = Host(
        tmp_path,
        server,
        host_root="",
        install_dir=f"{root}{INSTALL_DIR}",
        include_file=f"{root}{EDL_INCLUDE}",
        env_file=f"{root}/etc/default/cassandra",
    )
    installed = host.run()
    assert installed.returncode == 0, installed.stderr
    edl.write_env_file()  # easy-db-lab's next `up`: its own address and cluster name only

    env = {**edl.unit_env(), "MODEL_CLASSPATH": str(built[1])}
    if "JAVA_HOME" in os.environ:
        env["JAVA_HOME"] = os.environ["JAVA_HOME"]
    result = edl.start("cassandra", "bash", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == agent_report(host_name())
