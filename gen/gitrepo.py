"""Git plumbing for `diff` and `check`: read a revision's files, never write to the repository.

Only read-only plumbing is used (`rev-parse`, `ls-tree`, `archive`, `status`
with optional locks off), so the working tree, the index and the current
branch are exactly as they were, whatever happens.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

from gen.errors import EXIT_USAGE, GenError, ToolError


class RevisionError(ToolError):
    """A revision git does not know: bad input (exit 2), shown with git's own words."""

    exit_code = EXIT_USAGE


def git(root: Path, *args: str) -> bytes:
    """Run git in root and return its stdout; a missing git or a failure is a ToolError."""
    argv = ["git", *args]
    if shutil.which("git") is None:
        raise ToolError("git is not on PATH", argv)
    # Optional locks off: `git status` would otherwise refresh (write) the index.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(argv, cwd=root, capture_output=True, env=env, check=False)
    except OSError as e:
        raise ToolError(f"cannot run git: {e}", argv) from None
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        raise ToolError(f"git {args[0]} failed in {root}", argv, proc.returncode, stderr)
    return proc.stdout


def resolve(root: Path, ref: str) -> str:
    """The full commit id of ref; an unknown ref is a RevisionError naming git's command and stderr."""
    if ref.startswith("-"):
        raise RevisionError(f"{ref!r} is not a revision")
    try:
        prefix(root)
    except ToolError as e:
        if e.code is None:
            raise
        raise RevisionError(f"{root} is not in a git repository", e.command, e.code, e.stderr) from None
    try:
        return git(root, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").decode().strip()
    except ToolError as e:
        if e.code is None:
            raise
        raise RevisionError(f"unknown revision {ref!r}", e.command, e.code, e.stderr) from None


def require_work_tree(root: Path) -> None:
    """Refuse a bare repository (or a git directory): it has no working tree to compare a revision with."""
    inside = git(root, "rev-parse", "--is-inside-work-tree").decode().strip()
    if inside != "true":
        raise RevisionError(f"{root} has no work tree (a bare repository or a git directory): run gen in a clone")


class UnsafeTreeError(GenError):
    """A revision holds what gen will not extract (a link out of the tree, a device file): bad input."""


def prefix(root: Path) -> str:
    """Where root sits inside its repository ("" at the top, else "sub/dir/")."""
    return git(root, "rev-parse", "--show-prefix").decode().strip()


def export(root: Path, commit: str, names: Iterable[str], dest: Path) -> list[str]:
    """Extract the named top-level entries of root as they are at commit into dest.

    Entries missing at that commit are skipped; the ones extracted are returned.
    Nothing in the repository is read or written but its object database.
    """
    top = prefix(root)
    tree = f"{commit}:{top}"
    if top and not _is_tree(root, f"{commit}:{top.rstrip('/')}"):
        return []  # the fleet's directory did not exist yet: everything in it is new since
    listing = git(root, "ls-tree", "-z", "--name-only", tree).decode("utf-8", "surrogateescape")
    present = set(listing.split("\0"))
    wanted = [n for n in names if n in present]
    if not wanted:
        return []
    data = git(root, "archive", "--format=tar", tree, "--", *wanted)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        # The "data" filter refuses absolute paths, links out of dest and device files.
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as e:
            raise UnsafeTreeError(f"revision {commit[:12]}: {e}; gen reads nothing through it") from None
    return wanted


def _is_tree(root: Path, spec: str) -> bool:
    try:
        return git(root, "cat-file", "-t", spec).decode().strip() == "tree"
    except ToolError as e:
        if e.code is None:
            raise
        return False


def dirty(root: Path) -> set[str] | None:
    """Paths (relative to root) that differ from HEAD, untracked ones included; None outside git.

    Used only to tell a hand edit from a stale rendering, so any git trouble
    means "unknown" rather than an error.
    """
    try:
        out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", ".")
        top = prefix(root)
    except ToolError:
        return None
    found = set()
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if len(entry) > 3:
            path = entry[3:]
            # Porcelain paths are relative to the top of the repository.
            found.add(path.removeprefix(top) if top and path.startswith(top) else path)
    return found
