"""install.sh on a model of an easy-db-lab Cassandra host: two installed versions, a `current`
link that `use-cassandra` repoints, an image block that already adds a Pyroscope agent to
JVM_OPTS, and an EnvironmentFile that easy-db-lab rewrites whole. Whatever happens, the server
JVM gets exactly one agent, gen's, and nodetool none."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from installer_fixtures import (
    BUSYBOX,
    EDL_ADDRESS,
    EDL_INCLUDE,
    INSTALL_DIR,
    SERVER_ADDRESS,
    VERSIONS,
    EasyDbLabHost,
    Host,
    JarServer,
    agent_flags,
    block_lines,
    host_name,
    sha256,
    snapshot,
    tool,
    zip_bytes,
)

from gen.components.cassandra_scripts import JAR_NAME, SNIPPET_NAME

JAR = zip_bytes("agent 2.9.1")
LINKS = ["absolute", "relative"]
SOURCE_LINE = f"if [ -f '{INSTALL_DIR}/{SNIPPET_NAME}' ]; then . '{INSTALL_DIR}/{SNIPPET_NAME}'; fi"


@pytest.fixture
def server() -> Iterator[JarServer]:
    with JarServer(JAR) as s:
        yield s


def shell_argv(shell: str) -> tuple[str, ...]:
    return (BUSYBOX, "sh") if shell == "busybox" else (tool(shell),)


def include_path(version: str) -> str:
    return f"/usr/local/cassandra/{version}/bin/cassandra.in.sh"


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    [line] = result.stderr.splitlines()
    return line


# ---------------------------------------------------------------- through HOST_ROOT, as in the pod


def mapped(tmp_path: Path, server: JarServer, link: str) -> tuple[EasyDbLabHost, Host]:
    """The host under tmp/host, reached through HOST_ROOT; links spell host paths."""
    edl = EasyDbLabHost(tmp_path / "host", "", link)
    host = Host(tmp_path, server, host_root=str(edl.root), install_dir=INSTALL_DIR, include_file=EDL_INCLUDE)
    return edl, host


def no_leftovers(edl: EasyDbLabHost) -> None:
    for version in VERSIONS:
        assert [p.name for p in edl.include(version).parent.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("shell", ["busybox", "dash"])
@pytest.mark.parametrize("link", LINKS)
def test_every_version_is_hooked_once_and_uninstall_restores_each(
    tmp_path: Path, server: JarServer, link: str, shell: str
) -> None:
    edl, host = mapped(tmp_path, server, link)
    current = edl.home("current")
    target = os.readlink(current)
    if link == "absolute":
        # The link names a host path that this machine lacks: only resolving it under
        # HOST_ROOT finds the version.
        assert target == f"/usr/local/cassandra/{VERSIONS[-1]}"
        assert not Path(target).exists()
    originals = {v: edl.include(v).read_bytes() for v in VERSIONS}

    result = host.run(shell=shell_argv(shell))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"install.sh: {INSTALL_DIR}/{JAR_NAME}: installed",
        f"install.sh: {INSTALL_DIR}/{SNIPPET_NAME}: installed",
        "install.sh: /etc/default/cassandra: updated",
        *(f"install.sh: {include_path(v)}: block added" for v in VERSIONS),
    ]
    for version in VERSIONS:
        data = edl.include(version).read_bytes()
        assert data.startswith(originals[version])
        assert SOURCE_LINE in block_lines(data.decode())
    # The link is still the link, not a copy of the file it led to.
    assert current.is_symlink() and os.readlink(current) == target
    no_leftovers(edl)

    before = snapshot(edl.root)
    again = host.run(shell=shell_argv(shell))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-2:] == [f"install.sh: {include_path(v)}: unchanged" for v in VERSIONS]
    assert snapshot(edl.root) == before
    assert server.requests == 1

    removed = host.run("uninstall", shell=shell_argv(shell))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[:2] == [f"install.sh: {include_path(v)}: block removed" for v in VERSIONS]
    assert {v: edl.include(v).read_bytes() for v in VERSIONS} == originals
    assert current.is_symlink() and os.readlink(current) == target
    no_leftovers(edl)


def test_a_dangling_current_is_skipped_with_a_warning(tmp_path: Path, server: JarServer) -> None:
    edl, host = mapped(tmp_path, server, "absolute")
    edl.home("current").unlink()
    edl.home("current").symlink_to("/usr/local/cassandra/3.11.17")
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "install.sh: warning: /usr/local/cassandra/current leads to /usr/local/cassandra/3.11.17, which is not"
        " there (a dangling link, or outside the directories mounted here); skipped"
    ]
    assert [line for line in result.stdout.splitlines() if "cassandra.in.sh" in line] == [
        f"install.sh: {include_path(v)}: block added" for v in VERSIONS
    ]


def test_no_installed_version_is_an_error_and_changes_nothing(tmp_path: Path, server: JarServer) -> None:
    edl, host = mapped(tmp_path, server, "relative")
    for version in VERSIONS:
        edl.include(version).unlink()
    before = snapshot(edl.root)
    line = one_error(host.run())
    assert line == (
        f"install.sh: error: no include file matches {EDL_INCLUDE} on this host; is Cassandra installed here?"
    )
    assert snapshot(edl.root) == before
    assert server.requests == 0
    # Taking the agent off such a host is no error: there is nothing to unhook.
    removed = host.run("uninstall")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[0] == f"install.sh: {EDL_INCLUDE}: no file matches, nothing to remove"


COPY = "/usr/local/cassandra/5.0.4 (copy)/bin/cassandra.in.sh"
ODD_NAME = "holds characters other than letters, digits, / and . _ + @ -"


def test_a_match_whose_name_is_refused_is_skipped_and_the_other_versions_are_hooked(
    tmp_path: Path, server: JarServer
) -> None:
    edl, host = mapped(tmp_path, server, "relative")
    copy = host.path(COPY)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(edl.include(VERSIONS[-1]).read_bytes())
    originals = {v: edl.include(v).read_bytes() for v in VERSIONS}
    warning = f"install.sh: warning: include file {COPY} {ODD_NAME}; skipped (rename it if it should be hooked)"
    for action, state in (("install", "block added"), ("uninstall", "block removed")):
        result = host.run(action)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [warning]
        assert [line for line in result.stdout.splitlines() if "cassandra.in.sh" in line] == [
            f"install.sh: {include_path(v)}: {state}" for v in VERSIONS
        ]
        assert copy.read_bytes() == originals[VERSIONS[-1]]
    assert {v: edl.include(v).read_bytes() for v in VERSIONS} == originals


def test_a_match_that_links_out_of_reach_is_skipped_with_a_warning(tmp_path: Path, server: JarServer) -> None:
    _, host = mapped(tmp_path, server, "relative")
    packaged = host.path(include_path("4.0.17"))
    packaged.parent.mkdir(parents=True)
    packaged.symlink_to("/etc/cassandra/cassandra.in.sh")
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"install.sh: warning: include file {include_path('4.0.17')} leads to /etc/cassandra/cassandra.in.sh,"
        " which is not there (a dangling link, or outside the directories mounted here); skipped"
    ]
    assert [line for line in result.stdout.splitlines() if "cassandra.in.sh" in line] == [
        f"install.sh: {include_path(v)}: block added" for v in VERSIONS
    ]


def test_an_include_file_named_exactly_whose_link_leads_to_a_refused_name_is_an_error(
    tmp_path: Path, server: JarServer
) -> None:
    edl, host = mapped(tmp_path, server, "relative")
    host.path(COPY).parent.mkdir(parents=True)
    host.path(COPY).write_text("")
    edl.use("5.0.4 (copy)")
    before = snapshot(edl.root)
    result = host.run(env=host.env(INCLUDE_FILE=include_path("current")))
    assert (
        one_error(result)
        == f"install.sh: error: include file {include_path('current')} leads to {COPY}, which {ODD_NAME}"
    )
    assert snapshot(edl.root) == before


@pytest.mark.parametrize("damage", ["directory", "loop"])
def test_a_bad_match_stops_the_run_before_anything_changes(tmp_path: Path, server: JarServer, damage: str) -> None:
    edl, host = mapped(tmp_path, server, "relative")
    if damage == "directory":
        (edl.home("6.0") / "bin" / "cassandra.in.sh").mkdir(parents=True)
        expected = f"install.sh: error: include file {include_path('6.0')} is not a regular file"
    else:
        edl.home("current").unlink()
        edl.home("current").symlink_to("current")
        expected = "install.sh: error: /usr/local/cassandra/current: too many levels of symbolic links"
    before = snapshot(edl.root)
    assert one_error(host.run()) == expected
    assert snapshot(edl.root) == before
    assert server.requests == 0


IMAGE_JAR = zip_bytes("agent 2.3.0")
KEPT = f"{INSTALL_DIR}/pyroscope.jar.before-gen"


@pytest.mark.parametrize("found", ["image jar", "stopped after keeping it", "pinned jar"])
def test_uninstall_puts_the_images_agent_back(tmp_path: Path, server: JarServer, found: str) -> None:
    # The image's own block loads /usr/local/pyroscope/pyroscope.jar when it exists: after
    # uninstall that must again be the image's agent, or going back leaves Cassandra unprofiled.
    edl, host = mapped(tmp_path, server, "absolute")
    image_jar = edl.bake_agent(IMAGE_JAR)
    if found == "pinned jar":
        server.body = IMAGE_JAR
        host.pin = sha256(IMAGE_JAR)
    before = snapshot(edl.root)
    if found == "stopped after keeping it":
        # An install that got no further than keeping the jar (a second name for it).
        os.link(image_jar, host.path(KEPT))

    result = host.run()
    assert result.returncode == 0, result.stderr
    jar_line = result.stdout.splitlines()[0]
    if found == "stopped after keeping it":
        assert jar_line == f"install.sh: {INSTALL_DIR}/{JAR_NAME}: updated"
    elif found == "pinned jar":
        assert jar_line == (
            f"install.sh: {INSTALL_DIR}/{JAR_NAME}: unchanged (matches AGENT_SHA256); the jar found there is kept"
            f" as {KEPT}, which uninstall puts back"
        )
    else:
        assert jar_line == (
            f"install.sh: {INSTALL_DIR}/{JAR_NAME}: replaced; the jar found there is kept as {KEPT},"
            " which uninstall puts back"
        )
        assert image_jar.read_bytes() == JAR
    assert host.path(KEPT).read_bytes() == IMAGE_JAR
    installed = snapshot(edl.root)
    assert host.run().returncode == 0
    assert snapshot(edl.root) == installed

    removed = host.run("uninstall")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines()[-2:] == [
        f"install.sh: {INSTALL_DIR}/{SNIPPET_NAME}: removed",
        f"install.sh: {INSTALL_DIR}/{JAR_NAME}: put back (the jar found there before the first install)",
    ]
    assert snapshot(edl.root) == before
    # And a second uninstall takes nothing more away.
    assert host.run("uninstall").returncode == 0
    assert snapshot(edl.root) == before


def test_a_failed_install_does_not_keep_the_images_agent(tmp_path: Path, server: JarServer) -> None:
    # Failing after the jar was kept (here: on the new jar's mode) must leave no second name behind.
    edl, host = mapped(tmp_path, server, "absolute")
    edl.bake_agent(IMAGE_JAR)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "chmod").write_text("#!/bin/sh\necho 'chmod: Read-only file system' >&2\nexit 1\n")
    (bin_dir / "chmod").chmod(0o755)
    before = snapshot(edl.root)
    failed = host.run(shell=shell_argv("dash"), env=host.env(PATH=f"{bin_dir}:{os.environ['PATH']}"))
    assert one_error(failed) == (
        f"install.sh: error: cannot set the mode of {INSTALL_DIR}/{JAR_NAME} (chmod: Read-only file system)"
    )
    assert snapshot(edl.root) == before


@pytest.mark.parametrize(
    "pattern",
    [
        "/usr/local/*/*/bin/cassandra.in.sh",
        "/usr/local/cassandra/5.*/bin/cassandra.in.sh",
        "/usr/local/cassandra/current/bin/*",
        "/*/local/cassandra/current/bin/cassandra.in.sh",
        "/usr/local/cassandra/*/bin/cassandra in.sh",
    ],
)
def test_other_patterns_are_refused(tmp_path: Path, server: JarServer, pattern: str) -> None:
    edl, host = mapped(tmp_path, server, "relative")
    before = snapshot(edl.root)
    line = one_error(host.run(env=host.env(INCLUDE_FILE=pattern)))
    assert line.startswith("install.sh: error: INCLUDE_FILE may hold ")
    assert snapshot(edl.root) == before


# ---------------------------------------------------------------- the start scripts, for real


def installed(tmp_path: Path, server: JarServer, link: str, shell: str = "busybox") -> tuple[EasyDbLabHost, Host]:
    """The host with real paths inside tmp (HOST_ROOT empty), the agent installed by `shell`."""
    root = tmp_path / "root"
    edl = EasyDbLabHost(root, str(root), link)
    host = Host(
        tmp_path,
        server,
        host_root="",
        install_dir=f"{root}{INSTALL_DIR}",
        include_file=f"{root}{EDL_INCLUDE}",
        env_file=f"{root}/etc/default/cassandra",
    )
    result = host.run(shell=shell_argv(shell))
    assert result.returncode == 0, result.stderr
    return edl, host


def pyroscope_words(words: list[str]) -> list[str]:
    return [w for w in words if w.startswith("-Dpyroscope.") or (w.startswith("-javaagent:") and "pyroscope" in w)]


def assert_gen_agent_only(result: subprocess.CompletedProcess[str], host: Host) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    words = result.stdout.splitlines()
    assert [w for w in words if w.startswith("-javaagent:")] == [f"-javaagent:{host.install_dir}/{JAR_NAME}"]
    # gen's properties, rendered: not the image's, nor the EnvironmentFile's address.
    assert pyroscope_words(words) == agent_flags(host.install_dir, host_name()).split()
    assert "-Xss256k" in words


def assert_no_agent(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert pyroscope_words(result.stdout.splitlines()) == []
    assert "-javaagent:" not in result.stdout


@pytest.mark.parametrize(("link", "installer"), [("absolute", "busybox"), ("relative", "dash")])
def test_one_agent_in_the_server_and_none_in_nodetool(
    tmp_path: Path, server: JarServer, link: str, installer: str
) -> None:
    edl, host = installed(tmp_path, server, link, installer)
    for step in ("installed", "use-cassandra", "up rewrote the env file"):
        if step == "use-cassandra":
            edl.use(VERSIONS[0])
        elif step == "up rewrote the env file":
            edl.write_env_file()
            assert edl.unit_env()["PYROSCOPE_SERVER_ADDRESS"] == EDL_ADDRESS != SERVER_ADDRESS
        for shell in ("bash", "dash"):
            for version in (*VERSIONS, "current"):
                assert_gen_agent_only(edl.start("cassandra", shell, version), host)
                assert_no_agent(edl.start("nodetool", shell, version))


def test_another_vendors_agent_stays_in_front(tmp_path: Path, server: JarServer) -> None:
    edl, host = installed(tmp_path, server, "relative")
    axon = edl.root / "usr" / "share" / "axonops" / "axon-cassandra-agent.jar"
    axon.parent.mkdir(parents=True)
    axon.write_bytes(b"PK")
    words = edl.start("cassandra", "dash").stdout.splitlines()
    assert [w for w in words if w.startswith("-javaagent:")] == [
        f"-javaagent:{axon}=/etc/axonops/axon-agent.yml",
        f"-javaagent:{host.install_dir}/{JAR_NAME}",
    ]
    assert_no_agent(edl.start("nodetool", "dash"))


@pytest.mark.parametrize("off", ["no address", "no jar"])
def test_profiling_off_is_said_by_the_server_start_only(tmp_path: Path, server: JarServer, off: str) -> None:
    edl, host = installed(tmp_path, server, "absolute")
    if off == "no address":
        edl.env_file.write_text("")
        why = "PYROSCOPE_SERVER_ADDRESS is empty (see the EnvironmentFile of the unit)"
    else:
        host.jar.unlink()
        why = f"{host.install_dir}/{JAR_NAME} is missing"
    for shell in ("bash", "dash"):
        started = edl.start("cassandra", shell)
        assert started.returncode == 0, started.stderr
        assert started.stderr.splitlines() == [f"cassandra-pyroscope.sh: profiling is off: {why}"]
        assert pyroscope_words(started.stdout.splitlines()) == []
        nodetool = edl.start("nodetool", shell)
        assert_no_agent(nodetool)
