"""A new user's first hour, as the README tells it: a fleet of their own, then this repository with one more cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from gen import yamlio
from gen.commands import init as init_command
from tests.conftest import PROJECT
from tests.git_fixtures import GIT_ENV, commit_all, edit, gen, git, init

REPO_URL = "https://github.com/acme/lab-fleet.git"
# The tests that name the example clusters (lab-minimal, lab-tuned) or read the repository's own
# files: they must not depend on which clusters a user keeps in clusters/.
REPOSITORY_TESTS = [
    "tests/test_readme.py",
    "tests/test_check.py",
    "tests/test_cli.py",
    "tests/test_bounds.py",
    "tests/test_render_cache.py",
    "tests/test_fleet_features.py",
    "tests/test_security.py",
    "tests/test_package_layout.py",
]
FLEET_URL = "https://github.com/acme/profiling-gitops.git"  # this repository's fleet.yaml


def ok(*args: str) -> str:
    result = gen(*args)
    assert result.exit_code == 0, f"gen {' '.join(args)}: {result.output}"
    return result.stdout


def test_a_fleet_of_one_s_own_from_gen_init_to_a_reviewed_change(tmp_path: Path) -> None:
    root = tmp_path / "lab-fleet"
    ok("init", str(root), "--repo-url", REPO_URL)
    init(root)
    commit_all(root, "a new fleet")
    assert ok("check", "--root", str(root)) == ""

    ok("new", "lab-east", "--address", "10.0.1.10", "--root", str(root))  # the repository from fleet.yaml
    spec = root / "clusters/lab-east.yaml"
    edit(spec, "  # ebpf:\n", "  ebpf:\n    sampleRate: 97\n")
    ok("render", "lab-east", "--root", str(root))
    ok("check", "--root", str(root))
    ok("validate", "--root", str(root))
    commit_all(root, "lab-east")

    edit(spec, "sampleRate: 97", "sampleRate: 49")
    ok("render", "lab-east", "--root", str(root))
    ok("check", "--root", str(root))
    shown = ok("diff", "--base", "HEAD", "--root", str(root))
    assert "-  sample_rate      = 97" in shown
    assert "+  sample_rate      = 49" in shown
    assert "<- clusters/lab-east.yaml:" in shown
    commit_all(root, "sample less often")
    assert git(root, "status", "--porcelain") == ""


def test_this_repository_with_its_examples_replaced_stays_green(tmp_path: Path) -> None:
    clone = tmp_path / "gen"
    git(tmp_path, "clone", "-q", str(PROJECT), str(clone))
    # A user removes the shipped examples and adds a cluster of their own, the README's way.
    for example in (clone / "clusters").glob("lab-*.yaml"):
        example.unlink()
    ok("render", "--all", "--root", str(clone))
    ok(
        "new",
        "prod-east",
        "--address",
        "10.0.3.10",
        "--repo-url",
        FLEET_URL,
        "--destination-name",
        "prod-east",
        "--root",
        str(clone),
    )
    ok("render", "prod-east", "--root", str(clone))
    commit_all(clone, "the examples replaced by a cluster of our own")
    assert sorted(p.name for p in (clone / "clusters").glob("*.yaml")) == ["prod-east.yaml"]
    ok("check", "--root", str(clone))
    ok("validate", "--root", str(clone))
    # The tests that read the repository's own files (the README, the schema, the hooks, base/), run
    # from the clone as CI would; every other test builds its fleet from tests/fixtures/.
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *REPOSITORY_TESTS],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_gen_init_s_workflow_checks_validates_the_change_and_posts_the_diff(tmp_path: Path) -> None:
    ok("init", str(tmp_path / "fleet"), "--repo-url", REPO_URL)
    flow = yamlio.parse_plain((tmp_path / "fleet/.github/workflows/pull-request.yaml").read_text(encoding="utf-8"))
    assert "pull_request" in flow["on"]
    steps = flow["jobs"]["review"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "gen check --no-cache --format github" in runs
    assert "gen validate --changed-since " in runs
    assert "gen diff --base " in runs
    assert "--format markdown" in runs
    assert steps[0]["with"]["fetch-depth"] == 0


def test_gen_init_s_workflow_runs_actions_pinned_to_commits_and_keeps_no_token_in_git(tmp_path: Path) -> None:
    ok("init", str(tmp_path / "fleet"), "--repo-url", REPO_URL)
    text = (tmp_path / "fleet/.github/workflows/pull-request.yaml").read_text(encoding="utf-8")
    steps = yamlio.parse_plain(text)["jobs"]["review"]["steps"]
    used = [s["uses"] for s in steps if "uses" in s]
    assert {u.split("@")[0] for u in used} == {"actions/checkout", "actions/setup-python", "actions/github-script"}
    # A full commit SHA, the only reference that cannot be moved to other code; its release named beside it.
    for ref in used:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), ref
        assert re.search(rf"uses: {re.escape(ref)}  # v\d+\.\d+\.\d+\n", text), ref
    assert steps[0]["with"]["persist-credentials"] is False


def triggers(patterns: list[str], path: str) -> bool:
    """Whether a pull request changing path runs the workflow: GitHub's path filter (* within a folder, ** across)."""
    regexes = [re.escape(p).replace(r"\*\*", ".*").replace(r"\*", "[^/]*") for p in patterns]
    return any(re.fullmatch(r, path) for r in regexes)


def test_gen_init_s_workflow_runs_on_every_change_that_gen_check_or_the_diff_reads(tmp_path: Path) -> None:
    ok("init", str(tmp_path / "fleet"), "--repo-url", REPO_URL)
    flow = yamlio.parse_plain((tmp_path / "fleet/.github/workflows/pull-request.yaml").read_text(encoding="utf-8"))
    patterns = flow["on"]["pull_request"]["paths"]
    for path in [
        "clusters/lab-east.yaml",
        "clusters/_defaults.yaml",
        "overlays/lab-east/config.alloy",
        "argocd/applications/lab-east.yaml",
        "base/server/service.yaml",
        "schema/cluster.schema.json",
        "fleet.yaml",
        # An upgrade of gen changes GEN_PACKAGE: gen check then runs with the new gen before it is merged.
        ".github/workflows/pull-request.yaml",
    ]:
        assert triggers(patterns, path), path
    assert not triggers(patterns, "README.md")


def run_step(flow: dict[str, Any], name: str, root: Path, runner: Path) -> subprocess.CompletedProcess[str]:
    """A step's script as GitHub's runner runs it (bash -e), in a pull request into main."""
    [step] = [s for s in flow["jobs"]["review"]["steps"] if s.get("name") == name]
    context = {"${{ github.base_ref }}": "main"}  # the only expression a step's environment may use
    env = {**flow.get("env", {}), **step.get("env", {})}
    env = {k: context.get(v, v) for k, v in env.items()}
    assert not any("${{" in v for v in env.values()), env
    shim = runner / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "gen").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gen "$@"\n', encoding="utf-8")
    (shim / "gen").chmod(0o755)
    env |= {
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT),
        "RUNNER_TEMP": str(runner),
        "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
    }
    return subprocess.run(
        [shutil.which("bash") or "bash", "-e", "-c", step["run"]],
        cwd=root,
        env={**os.environ, **GIT_ENV, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_workflow_s_diff_is_the_pull_request_s_even_after_its_base_branch_moved_on(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    ok("init", str(root), "--repo-url", REPO_URL)
    init(root)
    for name, address in (("lab-east", "10.0.1.10"), ("lab-west", "10.0.1.11")):
        ok("new", name, "--address", address, "--root", str(root))
        ok("render", name, "--root", str(root))
    base = commit_all(root, "two clusters")

    def sample_less_often(name: str) -> None:
        edit(root / f"clusters/{name}.yaml", "  # ebpf:\n", "  ebpf:\n    sampleRate: 49\n")
        ok("render", name, "--root", str(root))
        commit_all(root, f"{name}: sample less often")

    git(root, "checkout", "-q", "-b", "east")
    sample_less_often("lab-east")
    git(root, "checkout", "-q", "main")
    sample_less_often("lab-west")  # merged into main after GitHub made the pull request's merge commit
    # What actions/checkout leaves for a pull request: GitHub's merge commit (github.sha) checked out,
    # and, with fetch-depth 0, every branch as it is when the job runs.
    git(root, "checkout", "-q", "--detach", base)
    git(root, "merge", "-q", "--no-ff", "--no-edit", "east")
    git(root, "update-ref", "refs/remotes/origin/main", "main")

    flow = yamlio.parse_plain((root / ".github/workflows/pull-request.yaml").read_text(encoding="utf-8"))
    runner = tmp_path / "runner"
    runner.mkdir()
    diffed = run_step(flow, "gen diff", root, runner)
    assert diffed.returncode == 0, diffed.stderr
    comment = (runner / "gen-diff.md").read_text(encoding="utf-8")
    assert comment.startswith("<!-- gen-diff -->\n")
    assert "lab-east" in comment
    assert "lab-west" not in comment  # main's own change, not undone by this pull request
    assert (runner / "summary.md").read_text(encoding="utf-8") == comment
    validated = run_step(flow, "gen validate", root, runner)
    assert validated.returncode == 0, validated.stderr
    assert "1 of 2 cluster(s) validated (lab-east)" in validated.stderr


class _Installed:
    """A gen distribution as pip recorded where it came from (PEP 610's direct_url.json, or none)."""

    version = "0.1.0"

    def __init__(self, direct_url: dict[str, object] | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url else None


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("origin", "package"),
    [
        (
            {"url": "https://github.com/acme/gen.git", "vcs_info": {"vcs": "git", "commit_id": COMMIT}},
            f"gen @ git+https://github.com/acme/gen.git@{COMMIT}",
        ),
        # pip install -e . in a clone, pip install ./gen-0.1.0-py3-none-any.whl, a clone by path: not on the runner.
        ({"url": "file:///home/me/gen", "dir_info": {"editable": True}}, ""),
        ({"url": "file:///home/me/gen-0.1.0-py3-none-any.whl", "archive_info": {}}, ""),
        ({"url": "file:///home/me/gen", "vcs_info": {"vcs": "git", "commit_id": COMMIT}}, ""),
        # From an index: PyPI's "gen" is another project, so gen==0.1.0 would install someone else's package.
        (None, ""),
    ],
)
def test_gen_init_s_workflow_installs_this_gen_or_says_that_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, origin: dict[str, object] | None, package: str
) -> None:
    monkeypatch.setattr(metadata, "distribution", lambda name: _Installed(origin))
    init_command.gen_package.cache_clear()
    try:
        result = gen("init", str(tmp_path / "fleet"), "--repo-url", REPO_URL)
    finally:
        init_command.gen_package.cache_clear()
    assert result.exit_code == 0, result.output
    workflow = tmp_path / "fleet/.github/workflows/pull-request.yaml"
    flow = yamlio.parse_plain(workflow.read_text(encoding="utf-8"))
    assert flow["env"]["GEN_PACKAGE"] == package
    warned = [line for line in result.stderr.splitlines() if "GEN_PACKAGE" in line]
    if package:
        assert warned == []
        return
    [warning] = warned
    assert warning.startswith(".github/workflows/pull-request.yaml:")
    assert "warning: env.GEN_PACKAGE: empty" in warning
    # CI stops at its first step with a line saying what to set, before pip is asked for anything.
    [install] = [s for s in flow["jobs"]["review"]["steps"] if s.get("name") == "Install gen"]
    proc = subprocess.run(
        [shutil.which("bash") or "bash", "-e", "-c", install["run"]],
        env={**os.environ, "GEN_PACKAGE": flow["env"]["GEN_PACKAGE"], "PATH": "/nonexistent"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith("::error file=.github/workflows/pull-request.yaml::GEN_PACKAGE is empty")


def test_after_an_upgrade_of_gen_render_and_check_say_that_ci_still_installs_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def installed(commit: str) -> None:
        origin = {"url": "https://github.com/acme/gen.git", "vcs_info": {"vcs": "git", "commit_id": commit}}
        monkeypatch.setattr(metadata, "distribution", lambda name: _Installed(origin))
        init_command.gen_package.cache_clear()

    root = tmp_path / "fleet"
    newer = "fedcba9876543210fedcba9876543210fedcba98"
    try:
        installed(COMMIT)
        assert gen("init", str(root), "--repo-url", REPO_URL).exit_code == 0
        assert "GEN_PACKAGE" not in gen("render", "--all", "--root", str(root)).stderr
        installed(newer)  # pipx upgrade gen
        workflow = root / ".github/workflows/pull-request.yaml"
        line = next(n for n, t in enumerate(workflow.read_text().splitlines(), 1) if "GEN_PACKAGE:" in t)
        # CI would check what this gen renders (base/ too) with the old gen: the workflow must install this one.
        for command in (["render", "--all"], ["check"]):
            result = gen(*command, "--root", str(root))
            [warning] = [w for w in result.stderr.splitlines() if "GEN_PACKAGE" in w]
            assert warning == (
                f".github/workflows/pull-request.yaml:{line}:3: warning: env.GEN_PACKAGE: CI installs "
                f"'gen @ git+https://github.com/acme/gen.git@{COMMIT}', not this gen "
                f"('gen @ git+https://github.com/acme/gen.git@{newer}'): set it to this one in the commit that "
                "holds what this gen renders (base/ included), or CI's gen check compares the files with what the "
                "other gen renders"
            )
        edit(workflow, COMMIT, newer)
        assert "GEN_PACKAGE" not in gen("check", "--root", str(root)).stderr
    finally:
        init_command.gen_package.cache_clear()
