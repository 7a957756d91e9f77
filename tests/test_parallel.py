"""`render` and `check` with worker processes give exactly what one process gives.

A fleet of 120 clusters (enough for the workers to be used) is rendered and
checked with `--jobs 1` and with `--jobs 3`, so the clusters are split over
three workers: the written files, stdout, stderr and the exit code must be the
same, with drift in several files, with errors in several specs, and without
fleet.yaml. A worker that fails or dies surfaces in the parent as one line,
Ctrl-C exits 130, and no worker process outlives a command.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from tqdm import tqdm

from gen.cli import main
from gen.commands import check as check_command
from gen.commands import list as list_command
from gen.commands import render as render_command
from gen.commands import validate as validate_command
from gen.errors import Problem, SpecError
from gen.output import Output
from gen.render import layout, workers
from gen.render import rendering as render_module
from gen.spec.cluster import Cluster
from tests.conftest import FIXTURES, PROJECT, snapshot
from tests.fleet_fixtures import numbered_spec
from tests.git_fixtures import commit_all, edit, gen, init

CLUSTERS = 120
JOBS = "3"  # not a divisor of CLUSTERS' chunks on 2 cores: more workers than cores is fine

Outcome = tuple[int, str, str]  # exit code, stdout, stderr


def test_the_fleet_is_large_enough_for_workers() -> None:
    # Otherwise every comparison below would compare the one-process path with itself.
    assert CLUSTERS >= workers.PARALLEL_MIN_CLUSTERS


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fleet repository with CLUSTERS varied specs, nothing rendered."""
    root = tmp_path_factory.mktemp("parallel") / "fleet"
    (root / "clusters").mkdir(parents=True)
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    for i in range(CLUSTERS):
        (root / "clusters" / f"lab-{i:03d}.yaml").write_text(numbered_spec(i, 0), encoding="utf-8")
    return root


def _copy(template: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(template, tmp_path / name, symlinks=True))


def _gen(*args: str) -> Outcome:
    if args[:2] == ("render", "--all"):
        # Every cluster rendered, by the workers too: the render cache would leave most out.
        args = (*args, "--no-cache")
    result = gen(*args)
    return result.exit_code, result.stdout, result.stderr


def _both(root: Path, *args: str) -> tuple[Outcome, Outcome]:
    """The same command with one job and with several, on the same repository."""
    return _gen(*args, "--jobs", "1", "--root", str(root)), _gen(*args, "--jobs", JOBS, "--root", str(root))


def _break(root: Path, name: str, old: str, new: str) -> None:
    edit(root / "clusters" / f"{name}.yaml", old, new)


def test_render_from_scratch_then_check_give_the_same_files_and_output(template: Path, tmp_path: Path) -> None:
    one, many = _copy(template, tmp_path, "one"), _copy(template, tmp_path, "many")
    rendered_one = _gen("render", "--all", "--jobs", "1", "--root", str(one))
    rendered_many = _gen("render", "--all", "--jobs", JOBS, "--root", str(many))
    assert rendered_one[0] == 0, rendered_one
    assert rendered_many == rendered_one
    assert snapshot(many) == snapshot(one)
    assert len([line for line in rendered_one[1].splitlines() if line.startswith("created ")]) > 6 * CLUSTERS

    checked_one, checked_many = _both(many, "check")
    assert checked_one[0] == 0, checked_one
    assert checked_many == checked_one
    assert _gen("check", "--jobs", "40", "--root", str(many)) == checked_one  # 3 clusters a worker
    again = _both(many, "render", "--all")
    assert again[0] == again[1] == (0, f"{CLUSTERS} cluster(s) up to date\n", again[0][2])


def _rendered_repo(template: Path, tmp_path: Path) -> Path:
    root = _copy(template, tmp_path, "repo")
    init(root)
    assert _gen("render", "--all", "--jobs", "1", "--root", str(root))[0] == 0
    commit_all(root, "render")
    return root


def test_hand_edits_in_several_chunks_are_the_same_findings(template: Path, tmp_path: Path) -> None:
    root = _rendered_repo(template, tmp_path)
    overlays = root / "overlays"
    # Edits in the first, second and third chunk, of several kinds; no spec changed.
    for name in ("lab-003", "lab-070", "lab-115"):
        path = overlays / name / "config.yaml"
        path.write_text(path.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")
    namespace = overlays / "lab-050" / "namespace.yaml"
    namespace.write_text(namespace.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    (overlays / "lab-090" / "namespace.yaml").unlink()
    (overlays / "lab-020" / "notes.txt").write_text("mine\n", encoding="utf-8")
    shutil.rmtree(overlays / "lab-100")
    app = root / "argocd/applications/lab-030.yaml"
    app.write_text(app.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")
    project = root / "argocd/project.yaml"
    project.write_text(project.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")

    for fmt in ("github", "text"):
        one, many = _both(root, "check", "--format", fmt)
        assert one[0] == 1, one
        assert many == one
    assert "overlays/lab-115/config.yaml: hand-edited: edited by hand" in one[1]
    assert "overlays/lab-050/namespace.yaml: hand-edited: gen's header line is gone" in one[1]
    assert "overlays/lab-100: missing: the cluster's overlay was never rendered" in one[1]
    # `gen list` gives the same statuses with workers, and calls stale what check reports.
    statuses = {r["name"]: r["status"] for r in list_command.rows(root, jobs=1)[0]}
    assert list_command.rows(root, jobs=int(JOBS)) == list_command.rows(root, jobs=1)
    stale = {"lab-003", "lab-070", "lab-115", "lab-050", "lab-090", "lab-020", "lab-100", "lab-030"}
    assert {name for name, status in statuses.items() if status != "in sync"} == stale


def test_spec_changes_and_orphans_are_the_same_findings_and_writes(template: Path, tmp_path: Path) -> None:
    root = _rendered_repo(template, tmp_path)
    for name in ("lab-010", "lab-080"):
        _break(root, name, "  namespace: ", "  namespace: x")
    (root / "clusters/lab-119.yaml").unlink()
    (root / "overlays/hand-made").mkdir()
    (root / "overlays/hand-made/kustomization.yaml").write_text("resources: []\n", encoding="utf-8")

    one, many = _both(root, "check")
    assert one[0] == 1, one
    assert many == one
    assert "overlays/lab-119/kustomization.yaml: orphan: " in one[1]
    assert "overlays/lab-010/namespace.yaml: changed: " in one[1]

    other = Path(shutil.copytree(root, tmp_path / "other", symlinks=True))
    rendered_one = _gen("render", "--all", "--jobs", "1", "--root", str(root))
    rendered_many = _gen("render", "--all", "--jobs", JOBS, "--root", str(other))
    assert rendered_one[0] == 0, rendered_one
    assert rendered_many == rendered_one
    assert "removed overlays/lab-119" in rendered_one[1].splitlines()
    assert snapshot(other) == snapshot(root)


def test_render_of_named_clusters_in_any_order_gives_the_same_files_and_output(template: Path, tmp_path: Path) -> None:
    one, many = _copy(template, tmp_path, "one"), _copy(template, tmp_path, "many")
    names = [f"lab-{i:03d}" for i in reversed(range(0, CLUSTERS, 2))]  # 60, last first
    rendered_one = _gen("render", *names, "--jobs", "1", "--root", str(one))
    rendered_many = _gen("render", *names, "--jobs", JOBS, "--root", str(many))
    assert rendered_one[0] == 0, rendered_one
    assert rendered_many == rendered_one
    assert snapshot(many) == snapshot(one)
    assert not (one / "overlays/lab-001").exists()


def test_errors_in_several_specs_are_the_same_lines_and_nothing_is_written(template: Path, tmp_path: Path) -> None:
    root = _copy(template, tmp_path, "broken")
    _break(root, "lab-002", "  server:\n", "  sever:\n")
    _break(root, "lab-061", "kind: Cluster", "kind: [Cluster")
    _break(root, "lab-117", "name: lab-117", "name: lab-118")
    # Inherited by every cluster: one line, however many workers report it.
    (root / "clusters/_defaults.yaml").write_text(
        "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  extra: 1\n", encoding="utf-8"
    )
    before = snapshot(root)
    for command in (("render", "--all"), ("check",)):
        one, many = _both(root, *command)
        assert one[0] == 2, one
        assert many == one
        lines = one[2].splitlines()
        assert lines == sorted(lines)
        assert len([line for line in lines if line.startswith("clusters/_defaults.yaml:")]) == 1
        assert {line.split(":", 1)[0] for line in lines} == {
            "clusters/_defaults.yaml",
            "clusters/lab-002.yaml",
            "clusters/lab-061.yaml",
            "clusters/lab-117.yaml",
        }
    assert snapshot(root) == before


def test_a_broken_fleet_yaml_is_the_same_error(template: Path, tmp_path: Path) -> None:
    root = _copy(template, tmp_path, "broken")
    (root / "fleet.yaml").write_text("apiVersion: gen.profiling/v1alpha1\nkind: Fleet\nspec: {}\n", encoding="utf-8")
    one, many = _both(root, "check")
    assert one[0] == 2, one
    assert many == one
    assert one[2].startswith("fleet.yaml:")
    _break(root, "lab-090", "  server:\n", "  sever:\n")  # a spec's problem comes first, alone
    one, many = _both(root, "check")
    assert many == one
    assert [line.split(":", 1)[0] for line in one[2].splitlines()] == ["clusters/lab-090.yaml"]


def test_without_fleet_yaml_the_setting_comes_from_the_specs_alike(template: Path, tmp_path: Path) -> None:
    one, many = _copy(template, tmp_path, "one"), _copy(template, tmp_path, "many")
    for root in (one, many):
        (root / "fleet.yaml").unlink()
    assert _gen("render", "--all", "--jobs", "1", "--root", str(one)) == _gen(
        "render", "--all", "--jobs", JOBS, "--root", str(many)
    )
    assert snapshot(many) == snapshot(one)

    for name in ("lab-070", "lab-110"):  # in other chunks than the first spec
        _break(many, name, "    automated:", "    targetRevision: dev\n    automated:")
    first, second = _both(many, "check")
    assert first[0] == 2, first
    assert second == first
    assert first[2].splitlines()[0].startswith("clusters/lab-070.yaml:")
    assert "without fleet.yaml all clusters must agree on it" in first[2]


@pytest.fixture
def children() -> Iterator[Callable[[], set[int]]]:
    """The child processes of this process, and a check that a test leaves none behind."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")

    def now() -> set[int]:
        return set(_child_pids(os.getpid()))

    before = now()
    yield now
    assert now() == before, "a worker process outlived the command"


def _main(*args: str) -> tuple[int, str]:
    """Run the console entry point (which maps unexpected errors to exit 4); its exit code and stderr."""
    err = StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        with pytest.raises(SystemExit) as stop:
            main(list(args))
    finally:
        sys.stderr = old
    assert isinstance(stop.value.code, int)
    return stop.value.code, err.getvalue()


def test_an_unexpected_error_in_a_worker_is_reported_as_without_workers(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Callable[[], set[int]]
) -> None:
    root = _copy(template, tmp_path, "fleet")
    real = layout.render_cluster

    def failing(cluster: Cluster) -> dict[str, str]:
        if cluster.name == "lab-070":
            raise KeyError("boom")
        return real(cluster)

    monkeypatch.setattr(layout, "render_cluster", failing)  # inherited by the forked workers
    one = _main("render", "--all", "--jobs", "1", "--root", str(root))
    many = _main("render", "--all", "--jobs", JOBS, "--root", str(root))
    assert one == (4, "gen: unexpected error: KeyError: 'boom' (rerun with --debug for the traceback)\n")
    assert many == one
    assert not (root / "overlays").exists()


def test_a_failure_while_comparing_in_a_worker_is_the_same_error(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Callable[[], set[int]]
) -> None:
    root = _copy(template, tmp_path, "fleet")
    assert _gen("render", "--all", "--root", str(root))[0] == 0
    real = render_module.differences

    def failing(root: Path, directory: str, overlay: dict[str, str], files: dict[str, str]) -> list[Any]:
        if directory == "overlays/lab-100":  # in the last worker's chunks
            raise OSError(5, "Input/output error", str(root / directory))
        return real(root, directory, overlay, files)

    monkeypatch.setattr(render_module, "differences", failing)  # inherited by the forked workers
    # A refusal of the file system, in a worker or not: the path and the cause, exit 5.
    expected = f"gen: error: {root}/overlays/lab-100: Input/output error\n"
    for jobs in ("1", JOBS):
        assert _main("check", "--jobs", jobs, "--root", str(root)) == (5, expected)


def test_a_worker_that_dies_is_one_error_line_not_a_hang(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Callable[[], set[int]]
) -> None:
    root = _copy(template, tmp_path, "fleet")
    real = layout.render_cluster
    parent = os.getpid()

    def dying(cluster: Cluster) -> dict[str, str]:
        if cluster.name == "lab-070" and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(cluster)

    monkeypatch.setattr(layout, "render_cluster", dying)
    for command in (("check",), ("render", "--all")):
        code, err = _main(*command, "--jobs", JOBS, "--root", str(root))
        assert (code, err.count("\n")) == (4, 1), err
        assert err.startswith("gen: unexpected error: WorkerError: a worker process ended abruptly")
    assert not (root / "overlays").exists()


_SLOW_GEN = """
import sys, time
from gen.render import layout, workers
from gen.cli import main

real = layout.render_cluster

def slow(cluster):
    time.sleep(0.05)
    return real(cluster)

layout.render_cluster = slow
main(sys.argv[1:])
"""


def test_ctrl_c_while_workers_render_exits_130_and_leaves_nothing(template: Path, tmp_path: Path) -> None:
    root = _copy(template, tmp_path, "fleet")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_GEN, "render", "--all", "--jobs", JOBS, "--root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        start_new_session=True,  # a group of its own, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 30
        while not _child_pids(proc.pid):  # the workers are rendering
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, err) == (130, "gen: interrupted\n")
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # no worker left in the group
    assert not (root / "overlays").exists()


def _child_pids(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_advances_in_the_parent_as_workers_finish_clusters(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: Callable[[], set[int]]
) -> None:
    root = _copy(template, tmp_path, "fleet")
    steps: list[tuple[int, int]] = []  # (process, clusters done)
    update = tqdm.update

    def counted(self: tqdm[object], n: float | None = 1) -> bool | None:
        steps.append((os.getpid(), int(n or 0)))
        return update(self, n)

    monkeypatch.setattr(tqdm, "update", counted)
    err = _Terminal()
    assert render_command.run(root, [], True, Output(out=StringIO(), err=err), jobs=int(JOBS)) == 0
    assert {pid for pid, _ in steps} == {os.getpid()}
    assert sum(n for _, n in steps) == CLUSTERS
    assert len(steps) >= int(JOBS)  # at least each worker's last clusters, each as they came
    bar, rest = _cleared(err.getvalue())
    assert bar.startswith("\rrendering:   0%|") and f"| 0/{CLUSTERS} [" in bar
    assert "\r" not in rest, "cleared before the warnings are printed"


def test_check_shows_its_progress_on_a_terminal_and_clears_it(template: Path, tmp_path: Path) -> None:
    root = _copy(template, tmp_path, "fleet")
    assert _gen("render", "--all", "--root", str(root))[0] == 0
    err = _Terminal()
    assert check_command.run(root, Output(out=StringIO(), err=err), jobs=int(JOBS)) == 0
    bar, rest = _cleared(err.getvalue())
    assert bar.startswith("\rchecking:   0%|") and f"/{CLUSTERS} [" in bar
    assert rest.endswith("in sync with the specs\n")
    quiet = _Terminal()
    assert check_command.run(root, Output(out=StringIO(), err=quiet, quiet=True), jobs=int(JOBS)) == 0
    assert quiet.getvalue() == ""


def test_validate_shows_its_progress_on_a_terminal_and_clears_it(fleet: Path) -> None:
    assert _gen("render", "--all", "--root", str(fleet))[0] == 0
    err = _Terminal()
    assert validate_command.run(fleet, [], "1.33", None, Output(out=StringIO(), err=err)) == 0
    bar, rest = _cleared(err.getvalue())
    assert bar.startswith("\rvalidating:   0%|") and "| 0/2 [" in bar
    assert rest.endswith("0 problem(s)\n")


def _cleared(err: str) -> tuple[str, str]:
    """The progress bar's frames, and what was printed after the bar cleared its line (with blanks)."""
    match = re.fullmatch(r"(\r[^\n]*?)\r +\r(.*)", err, re.DOTALL)
    assert match is not None, err
    return match[1], match[2]


def test_chunks_are_contiguous_and_even() -> None:
    names = [f"c{i}" for i in range(102)]
    chunks = workers.chunked(names, 2)
    assert [len(c) for c in chunks] == [13] * 6 + [12] * 2
    assert [n for c in chunks for n in c] == names
    assert workers.chunked(names[:10], 2) == [names[:10]], "too few to be worth a worker"
    assert workers.chunked([], 4) == [[]]


def test_a_spec_error_crosses_processes_with_its_problems() -> None:
    problems = [Problem("clusters/b.yaml", 2, 1, "x", "bad"), Problem("clusters/a.yaml", 1, 1, "", "worse")]
    error = pickle.loads(pickle.dumps(SpecError(problems)))
    assert error.lines() == SpecError(problems).lines()
