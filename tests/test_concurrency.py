"""Concurrent renders on one repository: the lock serialises their writes.

A second gen waits for the lock (saying so on stderr) and writes only after the
first one is done, so two renders started at once leave exactly what one would.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

import pytest

from gen.errors import LockError
from gen.render import writer
from tests.conftest import FIXTURES, PROJECT, snapshot
from tests.fleet_fixtures import check_old_or_new, render, write_specs

# Long enough for a blocked process to have written something if the lock were not real.
BLOCKED_SECONDS = 0.5
TIMEOUT = 60


class _Gen:
    """`gen render --all` in a subprocess, with its stderr lines collected as they come."""

    def __init__(self, root: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gen", "render", "--all", "--root", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.process.stderr is not None
        threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True).start()

    def _read(self, stream: TextIO) -> None:
        with stream:
            for line in stream:
                self.lines.put(line.rstrip("\n"))

    def wait_for_line(self, prefix: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r} on stderr")

    def finish(self) -> tuple[int, str]:
        # Not communicate(): it would close stderr under the thread that reads it.
        assert self.process.stdout is not None
        with self.process.stdout:
            stdout = self.process.stdout.read()
        return self.process.wait(timeout=TIMEOUT), stdout


def _waiting_line(root: Path) -> str:
    return f"gen: waiting for another gen writing to {root}"


def _fleet(tmp_path: Path, clusters: int) -> Path:
    root = tmp_path / "fleet"
    (root / "clusters").mkdir(parents=True)
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    write_specs(root, list(range(clusters)), 0)
    return root


def test_a_render_waits_for_the_lock_and_writes_nothing_until_it_is_released(tmp_path: Path) -> None:
    root = _fleet(tmp_path, 3)
    (root / ".git").mkdir()  # the lock then lives in .git/gen.lock, out of the work tree
    expected = render(root)
    with writer.repo_lock(root):
        before = snapshot(root)  # the lock file included
        gen = _Gen(root)
        gen.wait_for_line(_waiting_line(root))
        time.sleep(BLOCKED_SECONDS)
        assert gen.process.poll() is None, "the second gen did not wait for the lock"
        assert snapshot(root) == before
    code, stdout = gen.finish()
    assert code == 0
    assert "created overlays/lab-000/kustomization.yaml" in stdout.splitlines()
    assert check_old_or_new(root, (expected.overlays, expected.files), (expected.overlays, expected.files))


def test_two_renders_at_once_write_one_after_the_other(tmp_path: Path) -> None:
    """Both wait on a lock the test holds, then race for it: exactly one of them writes."""
    root = _fleet(tmp_path, 200)
    expected = render(root)
    with writer.repo_lock(root):
        first, second = _Gen(root), _Gen(root)
        for gen in (first, second):
            gen.wait_for_line(_waiting_line(root))
    results = [first.finish(), second.finish()]
    assert [code for code, _ in results] == [0, 0]
    outputs = sorted(stdout.splitlines() for _, stdout in results)
    # The later one compares under the lock, after the earlier one wrote everything:
    # it finds nothing to do. Interleaved writes would show as two lists of created files.
    assert outputs[0] == ["200 cluster(s) up to date"], outputs[0][:5]
    assert len(outputs[1]) == sum(len(f) for f in expected.overlays.values()) + len(expected.files)
    assert all(line.startswith("created ") for line in outputs[1])
    want = (expected.overlays, expected.files)
    assert check_old_or_new(root, want, want) == want
    assert list(root.rglob(f"{writer.TMP_PREFIX}*")) == []


def test_without_waiting_a_held_lock_is_one_clear_error(tmp_path: Path) -> None:
    root = _fleet(tmp_path, 1)
    with writer.repo_lock(root), pytest.raises(LockError) as caught, writer.repo_lock(root, wait=False):
        pass
    assert caught.value.lines() == [f"error: another gen is writing to {root} (lock {root})"]
