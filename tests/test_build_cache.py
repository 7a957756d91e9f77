"""Built manifests kept by content in the git directory, and `gen validate --changed-since`, counting kustomize runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.git_fixtures import edit, gen, git, rendered_repo

CACHE = ".git/gen-build-cache"
SUMMARY = "gen: {} overlay(s) built and validated for Kubernetes 1.33.0: 0 problem(s)"


@pytest.fixture
def repo(fleet: Path) -> Path:
    return rendered_repo(fleet)


@pytest.fixture
def builds(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a kustomize that logs each build and runs the real one (or `kubectl kustomize`); its log."""
    log = tmp_path / "builds.log"
    log.touch()
    real = shutil.which("kustomize")
    kubectl = shutil.which("kubectl")
    if real is None and kubectl is None:
        pytest.skip("neither kustomize nor kubectl is on PATH")
    run = f'exec {real} "$@"' if real else f'shift\nexec {kubectl} kustomize "$@"'
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kustomize").write_text(f'#!/bin/sh\necho "$@" >> {log}\n{run}\n')
    (bin_dir / "kustomize").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def _built(log: Path, repo: Path) -> list[str]:
    """The overlays built since the last call, by name, "(ref)" after those built from a revision."""
    lines = log.read_text().splitlines()
    log.write_text("")
    return sorted(Path(x.split()[-1]).name + ("" if x.split()[-1].startswith(str(repo)) else " (ref)") for x in lines)


def _validate(repo: Path, env: dict[str, str], *args: str) -> tuple[int, str, list[str]]:
    result = gen("validate", *args, "--root", str(repo), env=env)
    notes = [x for x in result.stderr.splitlines() if "must exist on the destination" not in x]
    return result.exit_code, result.stdout, notes


def _change_sample_rate(repo: Path, rate: int) -> None:
    spec = repo / "clusters/lab-minimal.yaml"
    edit(spec, "  argocd:\n", f"  ebpf:\n    sampleRate: {rate}\n  argocd:\n")
    assert gen("render", "lab-minimal", "--root", str(repo)).exit_code == 0


def test_a_second_validate_builds_nothing_and_a_deleted_or_damaged_cache_only_costs_builds(
    repo: Path, builds: tuple[dict[str, str], Path]
) -> None:
    env, log = builds
    first = _validate(repo, env)
    assert first == (0, "", [SUMMARY.format(2)])
    assert _built(log, repo) == ["lab-minimal", "lab-tuned"]
    assert len(os.listdir(repo / CACHE)) == 2

    assert _validate(repo, env) == first
    assert _built(log, repo) == []

    shutil.rmtree(repo / CACHE)
    assert _validate(repo, env) == first
    assert _built(log, repo) == ["lab-minimal", "lab-tuned"]

    for entry in (repo / CACHE).iterdir():
        entry.write_bytes(entry.read_bytes()[:-10])  # cut short: not trusted
    assert _validate(repo, env) == first
    assert _built(log, repo) == ["lab-minimal", "lab-tuned"]


def test_an_overlay_edit_is_built_again_and_its_findings_are_those_of_the_edit(
    repo: Path, builds: tuple[dict[str, str], Path]
) -> None:
    env, log = builds
    assert _validate(repo, env)[0] == 0
    _built(log, repo)
    patch = repo / "overlays/lab-minimal/kustomization.yaml"
    original = patch.read_text()
    patch.write_text(original.replace("components:", "namePrefix: x-\ncomponents:"))
    code, _, _ = _validate(repo, env, "lab-minimal")
    assert code == 1  # stale against its spec, and built as it is
    assert _built(log, repo) == ["lab-minimal"]
    patch.write_text(original)
    assert _validate(repo, env, "lab-minimal") == (0, "", [SUMMARY.format(1)])
    assert _built(log, repo) == []  # the same files as the first build


def test_no_cache_outside_git(fleet: Path, builds: tuple[dict[str, str], Path]) -> None:
    env, log = builds
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    for _ in range(2):
        assert _validate(fleet, env)[0] == 0
        assert _built(log, fleet) == ["lab-minimal", "lab-tuned"]
    assert not (fleet / ".git").exists()


def test_a_side_built_before_is_not_built_again_by_diff(repo: Path, builds: tuple[dict[str, str], Path]) -> None:
    env, log = builds
    assert _validate(repo, env)[0] == 0  # what CI runs on the base branch
    _built(log, repo)
    _change_sample_rate(repo, 49)

    first = gen("diff", "--base", "HEAD", "--root", str(repo), env=env)
    assert first.exit_code == 0, first.output
    assert "+  sample_rate      = 49" in first.stdout
    assert _built(log, repo) == ["lab-minimal"]  # the working tree's; HEAD's was built by validate

    again = gen("diff", "--base", "HEAD", "--root", str(repo), env=env)
    assert (again.exit_code, again.stdout) == (0, first.stdout)
    assert _built(log, repo) == []

    git(repo, "stash", "-q")
    _change_sample_rate(repo, 53)  # the working tree changes again: its side only is built
    third = gen("diff", "--base", "HEAD", "--root", str(repo), env=env)
    assert "+  sample_rate      = 53" in third.stdout
    assert _built(log, repo) == ["lab-minimal"]


def test_validate_changed_since_builds_only_the_clusters_whose_built_inputs_changed(
    repo: Path, builds: tuple[dict[str, str], Path]
) -> None:
    env, log = builds
    nothing = "gen: changed since HEAD: 0 of 2 cluster(s) validated (none); Argo CD files unchanged: not checked"
    assert _validate(repo, env, "--changed-since", "HEAD") == (0, "", [nothing, SUMMARY.format(0)])
    assert _built(log, repo) == []

    _change_sample_rate(repo, 49)
    one = "gen: changed since HEAD: 1 of 2 cluster(s) validated (lab-minimal); Argo CD files unchanged: not checked"
    assert _validate(repo, env, "--changed-since", "HEAD") == (0, "", [one, SUMMARY.format(1)])
    assert _built(log, repo) == ["lab-minimal"]

    # Every overlay reads base/: a file added there (untracked) is a change to all of them.
    (repo / "base/NOTES.md").write_text("notes\n")
    every = (
        "gen: changed since HEAD: 2 of 2 cluster(s) validated (every one, base/ changed); "
        "Argo CD files unchanged: not checked"
    )
    shutil.rmtree(repo / CACHE)
    assert _validate(repo, env, "--changed-since", "HEAD") == (0, "", [every, SUMMARY.format(2)])
    assert _built(log, repo) == ["lab-minimal", "lab-tuned"]


def test_validate_changed_since_checks_the_argo_cd_files_only_when_they_changed(
    repo: Path, builds: tuple[dict[str, str], Path]
) -> None:
    env, log = builds
    stray = repo / "argocd/applications/stray.yaml"
    stray.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n")
    code, stdout, notes = _validate(repo, env, "--changed-since", "HEAD")
    assert code == 1
    assert "argocd/applications/stray.yaml: ConfigMap/stray: kind: not an Argo CD object gen renders" in stdout
    assert notes[0] == ("gen: changed since HEAD: 0 of 2 cluster(s) validated (none); Argo CD files changed: checked")
    assert _built(log, repo) == []


def test_validate_changed_since_refuses_names_and_unknown_revisions(repo: Path) -> None:
    both = gen("validate", "lab-minimal", "--changed-since", "HEAD", "--root", str(repo))
    assert (both.exit_code, both.stderr) == (
        2,
        "error: --changed-since chooses the clusters: give no cluster names nor --all\n",
    )
    unknown = gen("validate", "--changed-since", "nope", "--root", str(repo))
    assert unknown.exit_code == 2
    assert unknown.stderr.splitlines()[0] == "error: unknown revision 'nope'"
