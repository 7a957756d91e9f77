"""A fleet repository under git, for `check` and `diff`: real commits with a fixed author and date."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from click.testing import CliRunner, Result

from gen.cli import cli

# Fixed identity and clock, and no user or system git configuration, so every
# run makes the same commits whatever the machine.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Fleet Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "Fleet Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def init(repo: Path) -> None:
    git(repo, "init", "-q", "-b", "main")


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def gen(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the gen CLI in-process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def rendered_repo(fleet: Path) -> Path:
    """Render every example, make it the first commit, and return the repository root."""
    init(fleet)
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    commit_all(fleet, "render the examples")
    return fleet


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
