"""install.sh and the settings snippet, run for real: busybox sh, dash and bash against a fake host
tree, with the jar served over HTTP by a thread on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from installer_fixtures import (
    BUSYBOX,
    CLUSTER,
    ENV_FILE,
    HEADER,
    INCLUDE_FILE,
    INCLUDE_TEXT,
    INSTALL_DIR,
    INSTALLER,
    SERVER_ADDRESS,
    Host,
    JarServer,
    agent_flags,
    block_lines,
    host_name,
    installed_real_host,
    sha256,
    snapshot,
    snippet_for,
    spec,
    tool,
    write_scripts,
    zip_bytes,
)

from gen import yamlio
from gen.components.cassandra_scripts import (
    BEGIN_MARKER,
    END_MARKER,
    JAR_NAME,
    SNIPPET_NAME,
    settings_snippet,
)
from gen.spec.cluster import Cassandra

# The package's shell text as it is, and the easy-db-lab host model the tests run.
SHELL_FILES = [
    *sorted(p for p in (Path(__file__).parents[1] / "gen" / "resources").iterdir() if p.suffix in (".sh", ".in")),
    *sorted((Path(__file__).parent / "easydblab").iterdir()),
]
JAR = zip_bytes("agent v1")
JAR2 = zip_bytes("agent v2")
SOURCE_LINE = f"if [ -f '{INSTALL_DIR}/{SNIPPET_NAME}' ]; then . '{INSTALL_DIR}/{SNIPPET_NAME}'; fi"


@pytest.fixture
def server() -> Iterator[JarServer]:
    with JarServer(JAR) as s:
        yield s


def original(trailing_newline: bool) -> bytes:
    text = INCLUDE_TEXT.encode()
    return text if trailing_newline else text.rstrip(b"\n")


def make_host(tmp_path: Path, server: JarServer, *, trailing_newline: bool = True) -> Host:
    """A host with Cassandra's include file and /etc/default, nothing of ours yet."""
    host = Host(tmp_path, server, host_root=str(tmp_path / "host"), install_dir=INSTALL_DIR)
    host.include.parent.mkdir(parents=True)
    host.env_path.parent.mkdir(parents=True)
    host.include.write_bytes(original(trailing_newline))
    return host


@pytest.fixture(params=[True, False], ids=["trailing-newline", "no-trailing-newline"])
def trailing(request: pytest.FixtureRequest) -> bool:
    """Whether the include file ends with a line break before the first install."""
    return bool(request.param)


@pytest.fixture
def host(tmp_path: Path, server: JarServer, trailing: bool) -> Host:
    return make_host(tmp_path, server, trailing_newline=trailing)


def sep(trailing_newline: bool) -> bytes:
    # install adds a line break in front of its block only when the file lacks one.
    return b"" if trailing_newline else b"\n"


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("install.sh: error: "), lines
    return lines[0]


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


# ---------------------------------------------------------------- rendering


def test_scripts_start_with_the_header_and_the_shellcheck_directive() -> None:
    text = snippet_for(spec())
    assert text.split("\n")[:2] == [HEADER, "# shellcheck shell=sh"]
    installer = INSTALLER.read_text(encoding="utf-8")
    assert installer.split("\n")[0] == "# shellcheck shell=sh"
    for script in (text, installer):
        assert script.endswith("\n")
        assert "\r" not in script


def test_the_pod_template_carries_the_installers_checksum() -> None:
    """A new base/cassandra-agent/install.sh must be a new pod template, or no host would run it."""
    (daemonset,) = yamlio.parse_all_plain((INSTALLER.parent / "daemonset.yaml").read_text(encoding="utf-8"))
    annotations = daemonset["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/installer"] == hashlib.sha256(INSTALLER.read_bytes()).hexdigest()


def test_rendering_is_deterministic_and_sorts_labels() -> None:
    c = spec()
    assert snippet_for(c) == snippet_for(spec())
    text = snippet_for(c)
    assert 'cluster=lab-east,hostname=$gen_profiling_host,dc=dc1,rack=r1"' in text


def test_an_install_directory_named_like_a_placeholder_is_written_as_it_is() -> None:
    # The spec admits '@' in a path; the template's own placeholders are filled once, never in a value.
    c = Cassandra.model_validate({"installDir": "/usr/local/pyroscope-@PROPS@", "labels": {"dc": "dc1"}})
    text = snippet_for(c)
    assert "'/usr/local/pyroscope-@PROPS@/pyroscope.jar'" in text
    assert text.count("-Dpyroscope.application.name=") == 1


def test_alloc_and_lock_are_left_out_when_unset() -> None:
    text = snippet_for(spec(profiler={"alloc": None, "lock": None}))
    assert "profiler.alloc" not in text
    assert "profiler.lock" not in text
    assert "-Dpyroscope.profiler.event=cpu" in text


@pytest.mark.parametrize(
    ("header", "overrides"),
    [
        ("no comment", {}),
        ("# two\n# lines", {}),
        (HEADER, {"install_dir": "relative/dir"}),
        (HEADER, {"install_dir": "/usr/local/it's"}),
        (HEADER, {"application_name": "cassandra server"}),
        (HEADER, {"labels": {"dc": "$(reboot)"}}),
        (HEADER, {"labels": {"bad key": "x"}}),
        (HEADER, {"cluster": "a,b"}),
        (HEADER, {"server_address": "http://10.1.2.3:4040 -Dx=y"}),
        (HEADER, {"server_address": "$PYROSCOPE_SERVER_ADDRESS"}),
        # A final line break would end the shell line: `$` alone lets it through.
        (HEADER, {"labels": {"dc": "east\n"}}),
        (HEADER, {"labels": {"dc\n": "east"}}),
        (HEADER, {"install_dir": INSTALL_DIR + "\n"}),
        (HEADER, {"server_address": SERVER_ADDRESS + "\n"}),
    ],
)
def test_unsafe_values_are_refused(header: str, overrides: dict[str, object]) -> None:
    args: dict[str, object] = {
        "install_dir": INSTALL_DIR,
        "application_name": "cassandra",
        "event": "cpu",
        "alloc": "512k",
        "lock": "10ms",
        "upload_interval": "10s",
        "cluster": CLUSTER,
        "server_address": SERVER_ADDRESS,
        "labels": {},
    }
    args.update(overrides)
    with pytest.raises(ValueError):
        settings_snippet(header, **args)  # type: ignore[arg-type]


def test_both_scripts_are_shellcheck_clean(tmp_path: Path) -> None:
    script = write_scripts(tmp_path, spec())
    result = subprocess.run(
        [tool("shellcheck"), "-s", "sh", str(script), str(tmp_path / SNIPPET_NAME), *map(str, SHELL_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- install


def test_first_install(host: Host, server: JarServer, trailing: bool) -> None:
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        f"install.sh: {INSTALL_DIR}/{JAR_NAME}: installed",
        f"install.sh: {INSTALL_DIR}/{SNIPPET_NAME}: installed",
        f"install.sh: {ENV_FILE}: created",
        f"install.sh: {INCLUDE_FILE}: block added",
    ]
    assert server.requests == 1

    assert host.jar.read_bytes() == JAR
    assert host.snippet.read_bytes() == (host.scripts / SNIPPET_NAME).read_bytes()
    assert mode(host.jar) == mode(host.snippet) == 0o644
    assert mode(host.jar.parent) == 0o755

    data = host.include.read_bytes()
    head = original(trailing) + sep(trailing)
    assert data.startswith(head)
    block = data[len(head) :].decode()
    assert block.startswith(BEGIN_MARKER + "\n")
    assert block.endswith(END_MARKER + "\n")
    assert SOURCE_LINE in block_lines(block)

    env = host.env_path.read_text()
    assert env.startswith(BEGIN_MARKER + "\n")
    assert env.endswith(END_MARKER + "\n")
    assert block_lines(env) == [f"PYROSCOPE_SERVER_ADDRESS={SERVER_ADDRESS}", f"CLUSTER_NAME={CLUSTER}"]
    assert mode(host.env_path) == 0o644

    # The env file must export the same values when read by sh with set -a.
    shown = subprocess.run(
        [BUSYBOX, "sh", "-c", 'set -a; . "$1"; exec env', "sh", str(host.env_path)],
        env={},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert f"PYROSCOPE_SERVER_ADDRESS={SERVER_ADDRESS}" in shown
    assert f"CLUSTER_NAME={CLUSTER}" in shown


def test_second_run_changes_no_byte_and_downloads_nothing(host: Host, server: JarServer) -> None:
    assert host.run().returncode == 0
    before = snapshot(host.tmp / "host")
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert snapshot(host.tmp / "host") == before
    assert server.requests == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert all(line.endswith(("unchanged", "unchanged (matches AGENT_SHA256)")) for line in lines)


def test_a_jar_that_is_a_link_is_left_as_it_is(host: Host) -> None:
    assert host.run().returncode == 0
    real = host.jar.with_name("pyroscope-2.9.1.jar")
    host.jar.rename(real)
    host.jar.symlink_to(real.name)
    before = snapshot(host.tmp / "host")
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [
        f"install.sh: {INSTALL_DIR}/{JAR_NAME}: unchanged (matches AGENT_SHA256)",
        f"install.sh: {INSTALL_DIR}/{SNIPPET_NAME}: unchanged",
    ]
    assert snapshot(host.tmp / "host") == before


def test_without_a_pin_the_jar_is_fetched_but_only_rewritten_when_it_changed(host: Host, server: JarServer) -> None:
    env = host.env(AGENT_SHA256="")
    first = host.run(env=env)
    assert first.returncode == 0
    assert first.stderr.splitlines() == [
        f"install.sh: warning: AGENT_SHA256 is empty: the jar from {server.url} is not verified; pin it"
    ]
    before = snapshot(host.tmp / "host")
    assert host.run(env=env).returncode == 0
    assert server.requests == 2
    assert snapshot(host.tmp / "host") == before

    server.body = JAR2
    result = host.run(env=env)
    assert result.returncode == 0
    assert f"install.sh: {INSTALL_DIR}/{JAR_NAME}: updated" in result.stdout.splitlines()
    assert host.jar.read_bytes() == JAR2


def test_a_new_pin_replaces_the_jar(host: Host, server: JarServer) -> None:
    assert host.run().returncode == 0
    server.body = JAR2
    result = host.run(env=host.env(AGENT_SHA256=sha256(JAR2).upper()))
    assert result.returncode == 0, result.stderr
    assert host.jar.read_bytes() == JAR2
    assert mode(host.jar) == 0o644
    assert server.requests == 2


def test_an_unpinned_error_page_is_refused(host: Host, server: JarServer) -> None:
    server.body = b"<html>sign in first</html>"
    before = snapshot(host.tmp / "host")
    line = one_error(host.run(env=host.env(AGENT_SHA256="")))
    assert line == f"install.sh: error: the download from {server.url} is not a jar (no zip header)"
    assert snapshot(host.tmp / "host") == before


@pytest.mark.parametrize("installed", [False, True], ids=["fresh", "installed"])
def test_wrong_checksum_changes_nothing(host: Host, server: JarServer, installed: bool) -> None:
    if installed:
        assert host.run().returncode == 0
    before = snapshot(host.tmp / "host")
    line = one_error(host.run(env=host.env(AGENT_SHA256=sha256(JAR2))))
    assert line == (
        f"install.sh: error: checksum mismatch for {server.url}: expected {sha256(JAR2)}, got {sha256(JAR)}"
    )
    assert snapshot(host.tmp / "host") == before
    assert host.jar.parent.exists() == installed


@pytest.mark.parametrize("status", [404, 500])
@pytest.mark.parametrize("installed", [False, True], ids=["fresh", "installed"])
def test_failed_download_changes_nothing(host: Host, server: JarServer, installed: bool, status: int) -> None:
    if installed:
        assert host.run().returncode == 0
    server.status = status
    before = snapshot(host.tmp / "host")
    line = one_error(host.run(env=host.env(AGENT_SHA256=sha256(JAR2))))
    assert line.startswith(f"install.sh: error: download of {server.url} failed (curl: (22) ")
    assert str(status) in line
    assert snapshot(host.tmp / "host") == before
    assert host.jar.parent.exists() == installed


def test_a_failed_copy_leaves_no_temporary_file_beside_the_env_file(tmp_path: Path, server: JarServer) -> None:
    # The disk fills up while the env file is copied: Host.run also finds no temporary file left beside it.
    host = make_host(tmp_path, server)
    host.env_path.write_bytes(b"MAX_HEAP_SIZE=8G\n")
    assert host.run().returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cp").write_text("#!/bin/sh\necho 'cp: No space left on device' >&2\nexit 1\n")
    (bin_dir / "cp").chmod(0o755)
    before = snapshot(tmp_path / "host")
    moved = host.env(PYROSCOPE_SERVER_ADDRESS="http://10.9.9.9:4040", PATH=f"{bin_dir}:{os.environ['PATH']}")
    line = one_error(host.run(shell=(tool("dash"),), env=moved))
    assert line == f"install.sh: error: cannot copy {ENV_FILE} (cp: No space left on device)"
    assert snapshot(tmp_path / "host") == before


def test_missing_include_file_changes_nothing(tmp_path: Path, server: JarServer) -> None:
    host = make_host(tmp_path, server)
    host.include.unlink()
    before = snapshot(tmp_path / "host")
    line = one_error(host.run())
    assert line == (
        f"install.sh: error: include file {INCLUDE_FILE} not found on this host; is Cassandra installed here?"
    )
    assert snapshot(tmp_path / "host") == before
    assert not host.jar.parent.exists()
    assert server.requests == 0


def test_an_include_file_that_links_out_of_reach_says_where_it_leads(tmp_path: Path, server: JarServer) -> None:
    host = make_host(tmp_path, server)
    host.include.unlink()
    target = "/opt/cassandra/bin/cassandra.in.sh"
    host.include.symlink_to(target)
    lost = (
        f"include file {INCLUDE_FILE} leads to {target}, which is not there (a dangling link, or outside the"
        f" directories mounted here: then set cassandra.includeFile to {target})"
    )
    before = snapshot(tmp_path / "host")
    assert one_error(host.run()) == f"install.sh: error: {lost}"
    assert snapshot(tmp_path / "host") == before
    assert server.requests == 0
    removed = host.run("uninstall")
    assert removed.returncode == 0, removed.stderr
    assert removed.stderr.splitlines() == [f"install.sh: warning: {lost}; nothing removed there"]
    assert removed.stdout.splitlines()[0] == f"install.sh: {INCLUDE_FILE}: not reached, nothing removed"


def test_a_damaged_block_is_left_for_a_person(host: Host, server: JarServer) -> None:
    text = host.include.read_bytes() + f"\n{BEGIN_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}\n".encode()
    host.include.write_bytes(text)
    before = snapshot(host.tmp / "host")
    line = one_error(host.run())
    assert "repair it by hand" in line
    assert snapshot(host.tmp / "host") == before
    assert server.requests == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PYROSCOPE_SERVER_ADDRESS", "http://10.1.2.3:4040 x"),
        ("PYROSCOPE_SERVER_ADDRESS", "http://$(id):4040"),
        ("CLUSTER_NAME", "lab'east"),
        ("CLUSTER_NAME", None),
        ("AGENT_SHA256", "abc"),
        ("AGENT_URL", "ftp://example.org/pyroscope.jar"),
        ("INSTALL_DIR", "usr/local/pyroscope"),
        ("INCLUDE_FILE", ""),
    ],
)
def test_bad_inputs_are_refused_before_anything_changes(
    host: Host, server: JarServer, name: str, value: str | None
) -> None:
    before = snapshot(host.tmp / "host")
    line = one_error(host.run(env=host.env(**{name: value})))
    assert name in line
    assert snapshot(host.tmp / "host") == before
    assert server.requests == 0


# What the spec refuses, refused again at run time: a ConfigMap edited by hand must not make the
# installer write one file's block into another, or the env block over the jar.
CROSSED = [
    (
        {"INCLUDE_FILE": "/etc/shadow", "ENV_FILE": "/etc/passwd"},
        "INCLUDE_FILE must name Cassandra's include file, cassandra.in.sh, got '/etc/shadow'",
    ),
    (
        {"ENV_FILE": INCLUDE_FILE},
        f"ENV_FILE and INCLUDE_FILE are both '{INCLUDE_FILE}'; each file gets a block of its own",
    ),
    (
        {"ENV_FILE": "/etc/default/cassandra.in.sh"},
        "ENV_FILE must not be named cassandra.in.sh, Cassandra's include file, got '/etc/default/cassandra.in.sh'",
    ),
    (
        {"ENV_FILE": f"{INSTALL_DIR}/{JAR_NAME}"},
        f"ENV_FILE {INSTALL_DIR}/{JAR_NAME} lies inside INSTALL_DIR {INSTALL_DIR}, which holds the jar and the snippet",
    ),
    (
        {"INSTALL_DIR": f"{INSTALL_DIR}/", "ENV_FILE": f"{INSTALL_DIR}/{JAR_NAME}"},
        f"INSTALL_DIR must be a normalised path (no '//', '.', '..' or trailing '/'), got '{INSTALL_DIR}/'",
    ),
    (
        {"INSTALL_DIR": "/usr/local/cassandra"},
        f"INCLUDE_FILE {INCLUDE_FILE} lies inside INSTALL_DIR /usr/local/cassandra, "
        "which holds the jar and the snippet",
    ),
    ({"INCLUDE_FILE": "/cassandra.in.sh", "INSTALL_DIR": "/"}, "INSTALL_DIR must not be '/'"),
]


@pytest.mark.parametrize("action", ["install", "uninstall"])
@pytest.mark.parametrize(
    ("inputs", "message"), CROSSED, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(CROSSED)]
)
def test_crossed_files_are_refused_before_anything_changes(
    tmp_path: Path, server: JarServer, inputs: dict[str, str], message: str, action: str
) -> None:
    host = make_host(tmp_path, server)
    host.path("/etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    host.path("/etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    assert host.run().returncode == 0
    before = snapshot(tmp_path / "host")
    assert one_error(host.run(action, env=host.env(**inputs))) == f"install.sh: error: {message}"
    assert snapshot(tmp_path / "host") == before
    assert server.requests == 1


def test_an_include_file_that_links_to_the_env_file_is_refused(tmp_path: Path, server: JarServer) -> None:
    # A host link must not lead the include block into the env file (the blocks would flip-flop).
    host = make_host(tmp_path, server)
    host.env_path.write_text("CASSANDRA_HEAP=4G\n")
    host.include.unlink()
    host.include.symlink_to(ENV_FILE)
    before = snapshot(tmp_path / "host")
    assert one_error(host.run()) == (
        f"install.sh: error: include file {INCLUDE_FILE} is {ENV_FILE}, which is not named cassandra.in.sh; refused"
    )
    assert snapshot(tmp_path / "host") == before
    assert server.requests == 0


ENV_TEXT = b"JVM_EXTRA_OPTS=-Xfoo\nMAX_HEAP_SIZE=8G\n"


@pytest.mark.parametrize("target", ["/opt/cass/env", "../../opt/cass/env"], ids=["absolute", "relative"])
def test_an_env_file_that_is_a_link_stays_one_and_its_target_gets_the_block(
    tmp_path: Path, server: JarServer, target: str
) -> None:
    # Replacing the link with a file would drop the settings its target holds from the unit.
    host = make_host(tmp_path, server)
    real = host.path("/opt/cass/env")
    real.parent.mkdir(parents=True)
    real.write_bytes(ENV_TEXT)
    host.env_path.symlink_to(target)
    result = host.run()
    assert result.returncode == 0, result.stderr
    assert f"install.sh: {ENV_FILE}: updated" in result.stdout.splitlines()
    assert os.readlink(host.env_path) == target
    assert real.read_bytes().startswith(ENV_TEXT + BEGIN_MARKER.encode())
    assert block_lines(real.read_text()) == [f"PYROSCOPE_SERVER_ADDRESS={SERVER_ADDRESS}", f"CLUSTER_NAME={CLUSTER}"]
    assert host.run("uninstall").returncode == 0
    assert os.readlink(host.env_path) == target
    assert real.read_bytes() == ENV_TEXT


def test_an_env_file_link_out_of_reach_is_refused(tmp_path: Path, server: JarServer) -> None:
    # /opt/cass is not mounted into the pod: the block cannot reach the file the unit reads.
    host = make_host(tmp_path, server)
    host.env_path.symlink_to("/opt/cass/env")
    lost = (
        f"ENV_FILE {ENV_FILE} leads to /opt/cass/env, whose directory is not there (a dangling link, or outside"
        " the directories mounted here: then set cassandra.envFile to /opt/cass/env)"
    )
    before = snapshot(tmp_path / "host")
    assert one_error(host.run()) == f"install.sh: error: {lost}"
    assert snapshot(tmp_path / "host") == before
    assert server.requests == 0
    removed = host.run("uninstall")
    assert removed.returncode == 0, removed.stderr
    assert removed.stderr.splitlines() == [f"install.sh: warning: {lost}; nothing removed there"]
    assert f"install.sh: {ENV_FILE}: not reached, nothing removed" in removed.stdout.splitlines()
    assert snapshot(tmp_path / "host") == before


@pytest.mark.parametrize("action", ["install", "uninstall"])
def test_an_env_file_that_links_into_the_install_directory_is_refused(
    host: Host, server: JarServer, action: str
) -> None:
    assert host.run().returncode == 0
    host.env_path.unlink()
    host.env_path.symlink_to(f"{INSTALL_DIR}/{JAR_NAME}")
    before = snapshot(host.tmp / "host")
    assert one_error(host.run(action)) == (
        f"install.sh: error: ENV_FILE {ENV_FILE} leads to {INSTALL_DIR}/{JAR_NAME}, inside INSTALL_DIR"
        f" {INSTALL_DIR}, which holds the jar and the snippet; refused"
    )
    assert snapshot(host.tmp / "host") == before


def test_both_actions_call_a_directory_env_file_not_a_regular_file(tmp_path: Path, server: JarServer) -> None:
    host = make_host(tmp_path, server)
    host.env_path.mkdir()
    assert one_error(host.run()) == f"install.sh: error: ENV_FILE {ENV_FILE} is not a regular file"
    removed = host.run("uninstall")
    assert removed.returncode == 0, removed.stderr
    assert f"install.sh: {ENV_FILE}: not a regular file, nothing to remove" in removed.stdout.splitlines()


@pytest.mark.parametrize("args", [["bogus"], ["install", "again"], ["--help"]])
def test_unknown_arguments_print_usage_and_exit_2(host: Host, server: JarServer, args: list[str]) -> None:
    before = snapshot(host.tmp / "host")
    result = host.run(*args)
    assert result.returncode == 2
    assert result.stderr == "usage: install.sh [install|uninstall]\n"
    assert result.stdout == ""
    assert snapshot(host.tmp / "host") == before
    assert server.requests == 0


def test_permission_bits_of_the_edited_files_are_kept(tmp_path: Path, server: JarServer) -> None:
    host = make_host(tmp_path, server)
    host.include.chmod(0o750)
    host.env_path.write_bytes(b"MAX_HEAP_SIZE=8G\n")
    host.env_path.chmod(0o640)
    assert host.run().returncode == 0
    assert mode(host.include) == 0o750
    assert mode(host.env_path) == 0o640
    assert host.run("uninstall").returncode == 0
    assert host.env_path.read_bytes() == b"MAX_HEAP_SIZE=8G\n"
    assert mode(host.env_path) == 0o640


# ---------------------------------------------------------------- uninstall


def test_uninstall_restores_the_include_file_byte_for_byte(host: Host) -> None:
    before = host.include.read_bytes()
    assert host.run().returncode == 0
    result = host.run("uninstall")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"install.sh: {INCLUDE_FILE}: block removed",
        f"install.sh: {ENV_FILE}: block removed",
        f"install.sh: {INSTALL_DIR}/{SNIPPET_NAME}: removed",
        f"install.sh: {INSTALL_DIR}/{JAR_NAME}: removed",
    ]
    assert host.include.read_bytes() == before
    assert not host.jar.exists()
    assert not host.snippet.exists()
    # install created the env file; uninstall leaves it, empty.
    assert host.env_path.read_bytes() == b""

    after = snapshot(host.tmp / "host")
    again = host.run("uninstall")
    assert again.returncode == 0
    assert snapshot(host.tmp / "host") == after


def test_uninstall_where_nothing_is_installed_changes_nothing(host: Host, server: JarServer) -> None:
    before = snapshot(host.tmp / "host")
    result = host.run("uninstall", env=host.env(AGENT_URL=None, CLUSTER_NAME=None))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert snapshot(host.tmp / "host") == before
    assert server.requests == 0


def test_text_around_the_blocks_survives_every_run(host: Host, trailing: bool) -> None:
    assert host.run().returncode == 0
    top, tail = b"# added by an operator\n", b"# added later\n"
    host.include.write_bytes(top + host.include.read_bytes() + tail)
    host.env_path.write_bytes(b"MAX_HEAP_SIZE=8G\n" + host.env_path.read_bytes() + b"TZ=UTC")

    moved = "http://10.9.9.9:4040"
    result = host.run(env=host.env(PYROSCOPE_SERVER_ADDRESS=moved))
    assert result.returncode == 0, result.stderr
    assert f"install.sh: {INCLUDE_FILE}: unchanged" in result.stdout.splitlines()
    assert f"install.sh: {ENV_FILE}: updated" in result.stdout.splitlines()

    include = host.include.read_bytes()
    assert include.startswith(top + original(trailing) + sep(trailing) + BEGIN_MARKER.encode())
    assert include.endswith(END_MARKER.encode() + b"\n" + tail)
    assert SOURCE_LINE in block_lines(include.decode())
    env = host.env_path.read_bytes()
    assert env.startswith(b"MAX_HEAP_SIZE=8G\n" + BEGIN_MARKER.encode() + b"\n")
    assert env.endswith(END_MARKER.encode() + b"\nTZ=UTC")
    assert block_lines(env.decode()) == [f"PYROSCOPE_SERVER_ADDRESS={moved}", f"CLUSTER_NAME={CLUSTER}"]

    assert host.run("uninstall").returncode == 0
    # The line break install added stays: the operator's line after the block needs it.
    assert host.include.read_bytes() == top + original(trailing) + sep(trailing) + tail
    assert host.env_path.read_bytes() == b"MAX_HEAP_SIZE=8G\nTZ=UTC"


# ---------------------------------------------------------------- other shells and tools


def test_install_under_dash(host: Host, server: JarServer) -> None:
    before = host.include.read_bytes()
    dash = (tool("dash"),)
    assert host.run(shell=dash).returncode == 0
    assert host.jar.read_bytes() == JAR
    snap = snapshot(host.tmp / "host")
    assert host.run(shell=dash).returncode == 0
    assert snapshot(host.tmp / "host") == snap
    assert server.requests == 1
    assert host.run("uninstall", shell=dash).returncode == 0
    assert host.include.read_bytes() == before


@pytest.fixture(scope="module")
def busybox_only(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH holding only busybox applets, like a busybox init container: no curl."""
    bin_dir = tmp_path_factory.mktemp("busybox-bin")
    subprocess.run([BUSYBOX, "--install", "-s", str(bin_dir)], check=True)
    assert not (bin_dir / "curl").exists()
    return str(bin_dir)


def test_an_install_directory_created_meanwhile_by_another_install_is_used(host: Host, tmp_path: Path) -> None:
    # mkdir loses the race: another install creates the directory first.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mkdir = tool("mkdir")
    (bin_dir / "mkdir").write_text(f'#!/bin/sh\n"{mkdir}" "$@"\nexec "{mkdir}" "$@"\n')
    (bin_dir / "mkdir").chmod(0o755)
    result = host.run(shell=(tool("dash"),), env=host.env(PATH=f"{bin_dir}:{os.environ['PATH']}"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"install.sh: {INSTALL_DIR}/{JAR_NAME}: installed"
    assert host.jar.read_bytes() == JAR


def test_busybox_alone_installs_with_wget(host: Host, server: JarServer, busybox_only: str) -> None:
    server.status = 404
    failed = host.run(env=host.env(PATH=busybox_only))
    assert one_error(failed).startswith(f"install.sh: error: download of {server.url} failed (wget: ")
    assert not host.jar.parent.exists()

    server.status = 200
    result = host.run(env=host.env(PATH=busybox_only))
    assert result.returncode == 0, result.stderr
    assert host.jar.read_bytes() == JAR
    assert host.run("uninstall", env=host.env(PATH=busybox_only)).returncode == 0


# ---------------------------------------------------------------- sourcing the include file

DRIVER = """set -eu
JVM_OPTS='-Xjvm'
JVM_EXTRA_OPTS='-Xfoo'
. "$1"
. "$1"
printf '%s\\n' "$JVM_EXTRA_OPTS" "$JVM_OPTS"
"""


@pytest.fixture
def real_host(tmp_path: Path, server: JarServer) -> Host:
    return installed_real_host(tmp_path, server)


def source_twice(
    host: Host,
    shell: str,
    address: str | None,
    driver: str = DRIVER,
    *,
    path: str | None = None,
    name: str = "cassandra",
) -> subprocess.CompletedProcess[str]:
    # The driver stands in for bin/<name>: the snippet tells the server start by $0.
    script = host.tmp / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(driver)
    env = {"PATH": path if path is not None else os.environ.get("PATH", "/usr/bin:/bin")}
    if address is not None:
        env["PYROSCOPE_SERVER_ADDRESS"] = address
    argv = [BUSYBOX, "sh"] if shell == "busybox" else [tool(shell)]
    return subprocess.run(
        [*argv, str(script), str(host.include)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("shell", ["bash", "dash", "busybox"])
@pytest.mark.parametrize("address", [SERVER_ADDRESS, "", None], ids=["address", "empty", "unset"])
@pytest.mark.parametrize("jar", [True, False], ids=["jar", "no-jar"])
def test_sourcing_the_include_file(real_host: Host, shell: str, address: str | None, jar: bool) -> None:
    if not jar:
        real_host.jar.unlink()
    result = source_twice(real_host, shell, address)
    assert result.returncode == 0, result.stderr
    extra, jvm_opts = result.stdout.splitlines()
    assert jvm_opts == "-Xjvm"
    if jar and address:
        assert extra == "-Xfoo " + agent_flags(real_host.install_dir, host_name())
        assert result.stderr == ""
    else:
        assert extra == "-Xfoo"
        why = "pyroscope.jar is missing" if not jar else "PYROSCOPE_SERVER_ADDRESS is empty"
        [notice] = result.stderr.splitlines()
        assert notice.startswith("cassandra-pyroscope.sh: profiling is off: ")
        assert why in notice


@pytest.mark.parametrize("name", ["nodetool", "sstableloader", "cassandra.sh"])
def test_only_the_server_start_says_that_profiling_is_off(real_host: Host, name: str) -> None:
    real_host.jar.unlink()
    result = source_twice(real_host, "dash", SERVER_ADDRESS, name=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["-Xfoo", "-Xjvm"]
    assert result.stderr == ""


def test_sourcing_with_jvm_extra_opts_unset_and_no_hostname_tool(real_host: Host, tmp_path: Path) -> None:
    # Only uname on PATH: the snippet must fall back to `uname -n` for the host name.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    uname = tool("uname")
    (bin_dir / "uname").symlink_to(uname)
    node = subprocess.run([uname, "-n"], capture_output=True, text=True, check=True).stdout.strip()
    driver = 'set -eu\n. "$1"\n. "$1"\nprintf \'%s\\n\' "$JVM_EXTRA_OPTS"\n'
    result = source_twice(real_host, "dash", SERVER_ADDRESS, driver, path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout == agent_flags(real_host.install_dir, node) + "\n"
    assert result.stderr == ""
