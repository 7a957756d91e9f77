"""The server's root init container, run for real under busybox sh against directories in tmp.

It may hand the data directory to uid 10001 only when the directory is empty (just made by
DirectoryOrCreate) or already the server's, and never touches what the directory holds.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gen import yamlio
from tests.conftest import PROJECT
from tests.installer_fixtures import BUSYBOX, tool

SERVER_UID = 10001
HOST_PATH = "/etc"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 10001 needs root (CI runs the tests as root)")


def _init_container() -> dict[str, Any]:
    deployment = yamlio.parse_plain((PROJECT / "base" / "server" / "deployment.yaml").read_text())
    init: dict[str, Any] = deployment["spec"]["template"]["spec"]["initContainers"][0]
    assert init["name"] == "data-dir-owner"
    return init


def granted() -> list[str]:
    """The capabilities the manifest leaves the init container, as setpriv names them."""
    caps = _init_container()["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    return [c.lower() for c in caps["add"]]


def run(directory: Path) -> subprocess.CompletedProcess[str]:
    """The init container's command with `directory` mounted as its data directory.

    Run as root with only the capabilities the manifest grants, as the container runs.
    """
    init = _init_container()
    command = list(init["command"])
    assert command[:2] == ["sh", "-c"]
    mount, _host_path = init["args"]
    assert mount == "/data"
    bounding = ",".join(["-all", *(f"+{c}" for c in granted())])
    return subprocess.run(
        [
            tool("setpriv"),
            f"--bounding-set={bounding}",
            "--inh-caps=-all",
            "--",
            BUSYBOX,
            *command,
            str(directory),
            HOST_PATH,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def owners(root: Path) -> dict[str, tuple[int, int, int]]:
    """(uid, gid, mode) of root and everything under it."""
    out = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        out[p.relative_to(root).as_posix()] = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
    return out


def test_an_empty_directory_is_handed_to_the_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chown(data, 0, 0)
    result = run(data)
    assert result.returncode == 0, result.stderr
    assert owners(data) == {".": (SERVER_UID, SERVER_UID, 0o750)}


def test_the_servers_own_directory_keeps_its_content_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "v2").mkdir(parents=True)
    (data / "v2" / "block").write_text("profile")
    os.chown(data, SERVER_UID, SERVER_UID)
    os.chown(data / "v2", SERVER_UID, SERVER_UID)
    # Something root left inside: not the init container's to take.
    (data / "root-file").write_text("x")
    before = owners(data)
    result = run(data)
    assert result.returncode == 0, result.stderr
    after = owners(data)
    assert after.pop(".") == (SERVER_UID, SERVER_UID, 0o750)
    before.pop(".")
    assert after == before


def refusal(state: str) -> str:
    """The one line the init container prints when it refuses a directory it is not to take over."""
    return (
        f"data-dir-owner: error: server.storagePath {HOST_PATH} is {state} and not owned by uid 10001; refusing "
        "to take it over: give the server a directory of its own, or chown this one to 10001:10001 if it holds "
        "the server's data"
    )


@pytest.mark.parametrize("entry", ["passwd", ".hidden"])
def test_a_directory_of_someone_elses_is_refused_and_left_alone(tmp_path: Path, entry: str) -> None:
    # What storagePath: /etc would have handed to the server: root's files, and a subdirectory.
    host_dir = tmp_path / "etc"
    (host_dir / "ssh").mkdir(parents=True)
    (host_dir / entry).write_text("root:x:0:0::/root:/bin/sh\n")
    (host_dir / "ssh" / "sshd_config").write_text("PermitRootLogin no\n")
    before = owners(host_dir)
    result = run(host_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [refusal("not empty")]
    assert owners(host_dir) == before


def test_it_holds_only_chown_and_fowner() -> None:
    # The directory itself is all it touches: reading what someone else's holds is no part of it,
    # and DAC_READ_SEARCH would also let the default seccomp profile admit open_by_handle_at.
    assert sorted(granted()) == ["chown", "fowner"]


def test_a_directory_root_cannot_list_is_refused_and_left_alone(tmp_path: Path) -> None:
    # Another user's private directory: without a DAC capability root may not read it.
    host_dir = tmp_path / "home"
    host_dir.mkdir(mode=0o700)
    (host_dir / "notes").write_text("x")
    os.chown(host_dir, 1234, 1234)
    os.chmod(host_dir, 0o700)
    before = owners(host_dir)
    result = run(host_dir)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [refusal("not readable")]
    assert owners(host_dir) == before
