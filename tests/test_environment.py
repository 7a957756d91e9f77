"""Faults of the environment, not of gen: each is one line naming the path and the cause, with its own exit code.

A read-only repository, a full disk, a file where a directory must be, malformed
YAML under argocd/, a revision with links out of its tree, a bare clone, a revision
from before the fleet existed, and Ctrl-C (exit 130, nothing half-written left for
`git add -A`). The repository lock never shows in `git status`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gen.cli import cli
from gen.errors import EXIT_ENVIRONMENT, EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_USAGE
from gen.render import writer
from tests.conftest import PROJECT, snapshot
from tests.git_fixtures import GIT_ENV, commit_all, gen, git, init, rendered_repo


def _one_error(stderr: str) -> str:
    """The single error line of a run that must not show a traceback."""
    assert "Traceback" not in stderr and "unexpected error" not in stderr, stderr
    errors = [x for x in stderr.splitlines() if "error" in x]
    assert len(errors) == 1, stderr
    return errors[0]


def _leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(f"{writer.TMP_PREFIX}*"))


# ------------------------------------------------------------------ the file system refuses


def _in_namespace(script: str, root: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) as root of a private mount namespace, with GEN running gen; skip where that is not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True, check=False).returncode:
        pytest.skip("no private mount namespace here (unshare -rm)")
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "GEN": f"{sys.executable} -m gen", "ROOT": str(root)}
    return subprocess.run([unshare, "-rm", "sh", "-c", script], capture_output=True, text=True, env=env, check=False)


def test_a_read_only_repository_is_named_with_its_cause(fleet: Path) -> None:
    proc = _in_namespace('mount -o bind,ro "$ROOT" "$ROOT" && exec $GEN render --all --root "$ROOT"', fleet)
    assert proc.returncode == EXIT_ENVIRONMENT, proc.stderr
    line = _one_error(proc.stderr)
    assert line.startswith(f"gen: error: {fleet}") and line.endswith(": Read-only file system"), line


def test_a_full_disk_names_the_file_and_leaves_no_temporary_files(fleet: Path) -> None:
    (fleet / "overlays").mkdir()
    script = 'mount -t tmpfs -o size=16k tmpfs "$ROOT/overlays" && $GEN render --all --root "$ROOT"; rc=$?; '
    script += 'ls -A "$ROOT/overlays"; exit $rc'
    proc = _in_namespace(script, fleet)
    assert proc.returncode == EXIT_ENVIRONMENT, proc.stderr
    line = _one_error(proc.stderr)
    assert line.startswith(f"gen: error: {fleet}/overlays/") and line.endswith(": No space left on device"), line
    assert writer.TMP_PREFIX not in proc.stdout  # what the tmpfs held at the end


def test_a_file_where_a_directory_must_be_is_named(fleet: Path) -> None:
    (fleet / "overlays").write_text("not a directory\n", encoding="utf-8")
    result = gen("render", "--all", "--root", str(fleet))
    assert result.exit_code == EXIT_USAGE
    assert _one_error(result.stderr) == "error: overlays: a file, where gen expects a directory"


# ------------------------------------------------------------------ what the repository holds


@pytest.mark.parametrize("rel", ["argocd/applications/extra.yaml", "argocd/project.yaml"])
def test_malformed_yaml_under_argocd_is_a_problem_of_that_file(fleet: Path, rel: str) -> None:
    root = rendered_repo(fleet)
    (root / rel).write_text("a: [\n", encoding="utf-8")
    validate = gen("validate", "--root", str(root))
    assert validate.exit_code == EXIT_FINDINGS
    assert any(line.startswith(f"{rel}:2:1: invalid YAML: ") for line in validate.stdout.splitlines())
    diff = gen("diff", "--base", "HEAD", "--root", str(root))
    assert diff.exit_code == EXIT_FINDINGS
    assert diff.stderr.startswith(f"error: {rel}:2:1: invalid YAML: ")
    commit_all(root, "malformed")
    (root / rel).write_text("a: 1\n", encoding="utf-8")
    at_ref = gen("diff", "--base", "HEAD", "--root", str(root))
    assert at_ref.exit_code == EXIT_FINDINGS
    assert at_ref.stderr.startswith(f"error: {rel}:2:1: invalid YAML: ")
    assert " (at HEAD)" in at_ref.stderr.splitlines()[0]


def test_a_revision_with_a_link_out_of_its_tree_is_refused(fleet: Path) -> None:
    root = rendered_repo(fleet)
    os.symlink("../../../../../etc", root / "overlays/lab-minimal/escape")
    commit_all(root, "a link out of the tree")
    (root / "overlays/lab-minimal/escape").unlink()
    result = gen("diff", "--base", "HEAD", "--root", str(root))
    assert result.exit_code == EXIT_FINDINGS
    assert result.stderr.splitlines()[0] == (
        "error: overlays/lab-minimal/escape: a symbolic link; gen reads only regular files (at HEAD)"
    )


def test_diff_in_a_bare_clone_says_there_is_no_work_tree(fleet: Path, tmp_path: Path) -> None:
    root = rendered_repo(fleet)
    bare = tmp_path / "bare.git"
    git(root, "clone", "-q", "--bare", str(root), str(bare))
    result = gen("diff", "--base", "HEAD", "--root", str(bare))
    assert result.exit_code == EXIT_USAGE
    assert "no work tree" in _one_error(result.stderr)
    assert result.stdout == ""


def test_a_revision_from_before_the_fleet_directory_shows_every_cluster_added(fleet: Path) -> None:
    top = fleet.parent
    init(top)
    (top / "README").write_text("before the fleet\n", encoding="utf-8")
    git(top, "add", "README")
    git(top, "commit", "-q", "-m", "no fleet yet")
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    result = gen("diff", "--base", "HEAD", "--format", "json", "--root", str(fleet))
    assert result.exit_code == 0, result.output
    assert '"status": "added"' in result.stdout and '"status": "removed"' not in result.stdout


# ------------------------------------------------------------------ the lock


def _git_status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all", "--ignored")


def test_the_lock_stays_out_of_the_work_tree_in_worktrees_and_subdirectory_fleets(fleet: Path, tmp_path: Path) -> None:
    top = fleet.parent
    init(top)
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    commit_all(top, "a fleet in a subdirectory")
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    assert _git_status(top) == ""
    assert writer.lock_path(fleet) == top / ".git" / "gen.lock"

    other = tmp_path / "worktree"
    git(top, "worktree", "add", "-q", str(other))
    (other / "fleet/clusters/lab-minimal.yaml").unlink()
    assert gen("render", "--all", "--root", str(other / "fleet")).exit_code == 0
    assert "gen.lock" not in _git_status(other)
    assert writer.lock_path(other / "fleet").parent == top / ".git" / "worktrees" / "worktree"


# ------------------------------------------------------------------ Ctrl-C


class _Interrupt:
    """Ctrl-C just before the step-th file-system change of a render, as Python delivers it."""

    STEPS = ("rename", "link", "unlink", "rmdir", "mkdir", "open")

    def __init__(self, step: int) -> None:
        self.step, self.count = step, 0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            if self.count == self.step:
                raise KeyboardInterrupt
            return fn(*args, **kwargs)

        return call


def test_ctrl_c_at_any_write_exits_130_and_leaves_no_temporary_files(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    for spec in (fleet / "clusters").glob("lab-*.yaml"):
        spec.write_text(spec.read_text(encoding="utf-8").replace("10.0.1.10", "10.0.1.11"), encoding="utf-8")
    pristine = snapshot(fleet)
    step = 0
    while True:
        step += 1
        interrupt = _Interrupt(step)
        with monkeypatch.context() as patch:
            for name in _Interrupt.STEPS:
                patch.setattr(os, name, interrupt.wrap(getattr(os, name)))
            result = CliRunner().invoke(cli, ["render", "--all", "--root", str(fleet)])
        if interrupt.count < step:
            assert result.exit_code == 0
            break
        assert result.exit_code == EXIT_INTERRUPTED, (step, result.output)
        assert result.stderr.splitlines()[-1] == "gen: interrupted"
        assert _leftovers(fleet) == [], f"left behind after Ctrl-C at step {step}"
        for rel in {*snapshot(fleet)} | {*pristine}:
            (fleet / rel).unlink(missing_ok=True)
        for rel, data in pristine.items():
            (fleet / rel).parent.mkdir(parents=True, exist_ok=True)
            (fleet / rel).write_bytes(data)
    assert step > 10


def test_a_real_ctrl_c_exits_130(fleet: Path) -> None:
    (fleet / ".git").mkdir()  # the lock's place: .git/gen.lock
    fd = os.open(fleet / ".git" / "gen.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the run waits here for "another gen"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gen", "render", "--all", "--root", str(fleet)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(PROJECT), **GIT_ENV},
            start_new_session=True,
        )
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while "waiting for another gen" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(fd)
    assert proc.returncode == EXIT_INTERRUPTED
    assert err.strip() == "gen: interrupted"
    assert _leftovers(fleet) == []
