"""`gen render --all` killed (SIGKILL) at random moments: every overlay is entirely old or entirely new.

A fleet of 200 clusters is rendered, then in every round each spec changes (so
every overlay changes), one cluster is removed and one added, and a render in a
subprocess is killed after a random delay. The delays are spread over the
measured length of a full run, so the kills land before, during and after the
writes. After each kill, every overlay directory and every Argo CD file must be
exactly what it held before the run or exactly the new rendering (both computed
in memory by `tests.fleet_fixtures.render`); `.gen-tmp-*` entries are allowed only as
leftovers. A last uninterrupted run must repair everything and leave no leftovers.
"""

from __future__ import annotations

import os
import random
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
from gen.render import writer
from tests.conftest import FIXTURES, PROJECT
from tests.fleet_fixtures import check_old_or_new, is_leftover, write_specs

CLUSTERS = 200
# Wall-clock budget for the kill rounds: the number of rounds follows from the
# measured length of a run, so a slow file system means fewer kills, not a slow test.
KILL_BUDGET_SECONDS = 30.0
MIN_KILLS, MAX_KILLS = 8, 20


def _gen_render(root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen(
        [sys.executable, "-m", "gen", "render", "--all", "--root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _timed_run(root: Path) -> float:
    start = time.monotonic()
    assert _gen_render(root).wait() == 0
    return time.monotonic() - start


def test_killed_renders_leave_each_overlay_old_or_new_and_the_next_run_repairs(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    (root / "clusters").mkdir(parents=True)
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    rng = random.Random(20240601)
    members = list(range(CLUSTERS))
    next_index = CLUSTERS

    current = write_specs(root, members, 0)
    assert CliRunner().invoke(cli, ["render", "--all", "--root", str(root)]).exit_code == 0
    assert check_old_or_new(root, current, current) == current

    # Measure: a run with nothing to write (start-up, loading, rendering, comparing),
    # then a run that rewrites every overlay.
    idle = _timed_run(root)
    current = write_specs(root, members, 1)
    full = _timed_run(root)
    assert check_old_or_new(root, current, current) == current
    kills = max(MIN_KILLS, min(MAX_KILLS, int(KILL_BUDGET_SECONDS / (full + 0.5))))

    # One delay in each of `kills` equal slices of [0.6 * idle, 1.05 * full], in random
    # order: a few land before any write, most during the overlay and Argo CD writes.
    low, high = 0.6 * idle, 1.05 * full
    step = (high - low) / kills
    delays = [low + (k + rng.random()) * step for k in range(kills)]
    rng.shuffle(delays)
    interrupted = 0
    for version, delay in enumerate(delays, start=2):
        members.remove(rng.choice(members))  # an overlay to remove
        members.append(next_index)  # and one to create
        next_index += 1
        new = write_specs(root, members, version)
        process = _gen_render(root)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        interrupted += process.wait() == -signal.SIGKILL
        current = check_old_or_new(root, current, new)

    # Loose on purpose (run times vary under load); it only guards the test's meaning.
    assert interrupted >= kills // 4, f"only {interrupted} of {kills} runs were killed before they finished"
    assert _gen_render(root).wait() == 0
    final = check_old_or_new(root, new, new)
    assert final == new
    leftovers = [p for p in (root / "overlays").iterdir() if is_leftover(p.name)]
    leftovers += [p for p in (root / "argocd").rglob("*") if is_leftover(p.name)]
    assert leftovers == []


class _Crash(BaseException):
    """Stands for SIGKILL at one file-system step: not an Exception, so nothing in gen handles it."""


# The file-system calls the writer makes, directly or through pathlib and shutil.rmtree.
_STEPS = ("rename", "replace", "link", "unlink", "rmdir", "mkdir")


def _render_crashing_at(root: Path, step: int, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Render --all in-process, crashing just before the step-th file-system change; True when it crashed."""
    count = 0

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            nonlocal count
            count += 1
            if count == step:
                raise _Crash
            return fn(*args, **kwargs)

        return call

    with monkeypatch.context() as patch:
        for name in _STEPS:
            patch.setattr(os, name, counted(getattr(os, name)))
        patch.setattr(writer, "_exchange", counted(writer._exchange))
        patch.setattr(writer, "open", counted(open), raising=False)  # the files of an overlay
        patch.setattr(Path, "write_text", counted(Path.write_text))  # the Argo CD files
        try:
            CliRunner().invoke(cli, ["render", "--all", "--root", str(root)], catch_exceptions=False)
        except _Crash:
            return True
    return False


def _no_renameat2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the platform has no RENAME_EXCHANGE, the writer falls back to two renames."""
    monkeypatch.setattr(writer, "_libc", object())


@pytest.mark.parametrize("exchange", ["renameat2", "two-renames"])
def test_a_crash_at_every_step_leaves_each_overlay_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: str
) -> None:
    """Deterministic counterpart of the kill test: one crash at each file-system step of a run, in turn.

    A small fleet where every overlay changes, one is removed and one created.
    The repairing run follows a spec set without the created cluster, so that what
    the crash left for that cluster must be cleaned up rather than overwritten.
    With two renames, the old overlay is briefly parked: the next run's first act
    (clean_leftovers) puts it back, so the check follows that step there.
    """
    if exchange == "two-renames":
        _no_renameat2(monkeypatch)
    root = tmp_path / "fleet"
    (root / "clusters").mkdir(parents=True)
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    old = write_specs(root, [0, 1, 2, 3], 0)
    assert CliRunner().invoke(cli, ["render", "--all", "--root", str(root)]).exit_code == 0
    repaired = write_specs(root, [1, 2, 3], 1)
    new = write_specs(root, [1, 2, 3, 4], 1)
    pristine = tmp_path / "pristine"
    shutil.copytree(root, pristine)

    step = 0
    while True:
        step += 1
        for part in ("clusters", "overlays", "argocd"):
            shutil.rmtree(root / part)
            shutil.copytree(pristine / part, root / part)
        if not _render_crashing_at(root, step, monkeypatch):
            break
        if exchange == "two-renames":
            writer.clean_leftovers(root / "overlays")
        check_old_or_new(root, old, new)
        (root / "clusters" / "lab-004.yaml").unlink()
        assert CliRunner().invoke(cli, ["render", "--all", "--root", str(root)]).exit_code == 0
        assert check_old_or_new(root, repaired, repaired) == repaired, f"not repaired after a crash at step {step}"
        assert list(root.rglob(f"{writer.TMP_PREFIX}*")) == [], f"leftovers after a crash at step {step}"
    assert step > 40  # the run was cut at every one of its steps
    assert check_old_or_new(root, new, new) == new
