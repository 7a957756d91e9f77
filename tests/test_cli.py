"""The command line as a user meets it: --root in either position, --quiet, completion, a directory that is no fleet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT, snapshot
from tests.git_fixtures import gen, rendered_repo

# Every command that reads a fleet, with arguments that make it succeed on the tests' examples.
COMMANDS = [
    ["render", "--all"],
    ["render", "lab-minimal"],
    ["check"],
    ["validate", "lab-minimal"],
    ["list"],
    ["explain", "lab-minimal", "server.port"],
    ["diff", "--base", "HEAD"],
    ["schema"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_root_works_before_and_after_the_command(fleet: Path, command: list[str]) -> None:
    root = rendered_repo(fleet)
    before = gen("--root", str(root), *command)
    after = gen(*command, "--root", str(root))
    assert before.exit_code == after.exit_code == 0, before.output + after.output
    assert before.stdout == after.stdout


def test_the_command_s_own_root_wins(fleet: Path, tmp_path: Path) -> None:
    root = rendered_repo(fleet)
    result = gen("--root", str(tmp_path), "list", "--root", str(root))
    assert result.exit_code == 0
    assert "lab-minimal" in result.stdout


@pytest.mark.parametrize("command", [["render", "lab-minimal"], ["new", "lab-x", "--address", "10.0.0.1"], ["check"]])
def test_a_directory_that_is_no_fleet_is_refused_and_left_alone(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "notes.txt").write_text("not a fleet\n")
    extra = ["--repo-url", "https://github.com/acme/x.git"] if command[0] == "new" else []
    result = gen(*command, *extra, "--root", str(tmp_path))
    assert result.exit_code == 2
    why = "not a fleet repository (no fleet.yaml, no clusters/)"
    assert result.stderr == f"error: {tmp_path}: {why}; start one with: gen init {tmp_path}\n"
    assert snapshot(tmp_path) == {"notes.txt": b"not a fleet\n"}


def test_quiet_keeps_results_and_problems_only(fleet: Path) -> None:
    loud = gen("render", "--all", "--root", str(fleet))
    assert "created overlays/lab-minimal/kustomization.yaml" in loud.stdout
    (fleet / "overlays").rename(fleet / "rendered-before")
    for args in (["-q", "render", "--all"], ["render", "--all", "--quiet"]):
        quiet = gen(*args, "--root", str(fleet))
        assert quiet.exit_code == 0
        assert quiet.stdout == ""
        # Warnings are problems: they stay.
        assert quiet.stderr == loud.stderr
    check = gen("check", "-q", "--root", str(fleet))
    assert (check.exit_code, check.stdout, check.stderr) == (0, "", "")
    (fleet / "overlays/lab-minimal/config.yaml").unlink()
    check = gen("check", "-q", "--root", str(fleet))
    assert check.exit_code == 1
    assert check.stdout.startswith("overlays/lab-minimal/config.yaml: missing:")
    assert check.stderr == ""


def test_completion_scripts_and_cluster_names(fleet: Path) -> None:
    for shell in ("bash", "zsh", "fish"):
        result = gen("completion", shell)
        assert result.exit_code == 0
        assert "_GEN_COMPLETE" in result.stdout
    # The shell passes the words typed so far in COMP_WORDS, and runs gen wherever it is: here, not in a fleet.
    for words in (f"gen --root {fleet} render lab-t", f"gen render --root {fleet} lab-t"):
        env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(words.split().index("lab-t"))}
        proc = subprocess.run(
            [sys.executable, "-m", "gen"],
            env={**env, "_GEN_COMPLETE": "bash_complete", "PYTHONPATH": str(PROJECT)},
            cwd=fleet.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.stdout.split() == ["plain,lab-tuned"], words
