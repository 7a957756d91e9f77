"""A new user's first hour, as the README tells it: a fleet of their own, then this repository with one more cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gen import yamlio
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
    assert 'gen validate --changed-since "origin/$BASE_REF"' in runs
    assert 'gen diff --base "origin/$BASE_REF" --format markdown' in runs
    assert steps[0]["with"]["fetch-depth"] == 0
    # The gen that wrote the repository, so that its gen check agrees with the committed files.
    assert flow["env"]["GEN_PACKAGE"].startswith("gen")
