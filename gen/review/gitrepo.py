"""Git plumbing for `diff`, `check` and `validate`: read a revision's files, never write to the repository."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from gen import repofs
from gen.errors import EXIT_USAGE, ToolError

# What `gen diff` reads of a revision (base/, overlays/, argocd/, clusters/ and fleet.yaml), at most.
MAX_EXPORT_BYTES = 256 * 1024 * 1024
# Optional locks off: `git status` would otherwise refresh (write) the index.
_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}


class RevisionError(ToolError):
    """A revision git does not know: bad input (exit 2), shown with git's own words."""

    exit_code = EXIT_USAGE


def git(root: Path, *args: str) -> bytes:
    """Run git in root and return its stdout; a missing git or a failure is a ToolError."""
    argv = ["git", *args]
    if shutil.which("git") is None:
        raise ToolError("git is not on PATH", argv)
    try:
        proc = subprocess.run(argv, cwd=root, capture_output=True, env={**os.environ, **_ENV}, check=False)
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
    with _refused(f"{root} is not in a git repository"):
        prefix(root)
    with _refused(f"unknown revision {ref!r}"):
        return git(root, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").decode().strip()


def default_base(root: Path) -> tuple[str, str]:
    """`gen diff`'s default base and how it was chosen: the merge base with upstream (as a pull request), else HEAD."""
    upstream = _answer(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    if upstream is None:
        return "HEAD", "HEAD"  # no upstream, a detached HEAD or no repository: `resolve` says which
    with _refused(f"HEAD and {upstream} have no commit in common: give --base"):
        return git(root, "merge-base", "HEAD", "@{upstream}").decode().strip(), f"merge base with {upstream}"


def _answer(root: Path, *args: str) -> str | None:
    """git's output, stripped; None when git ran and refused (a git that cannot run stays a ToolError)."""
    try:
        return git(root, *args).decode().strip()
    except ToolError as e:
        if e.code is None:
            raise
        return None


@contextlib.contextmanager
def _refused(message: str) -> Iterator[None]:
    """git's refusal (it ran and failed) as a RevisionError; a git that cannot run stays a ToolError."""
    try:
        yield
    except ToolError as e:
        if e.code is None:
            raise
        raise RevisionError(message, e.command, e.code, e.stderr) from None


def require_work_tree(root: Path) -> None:
    """Refuse a bare repository (or a git directory): it has no working tree to compare a revision with."""
    if git(root, "rev-parse", "--is-inside-work-tree").decode().strip() != "true":
        raise RevisionError(f"{root} has no work tree (a bare repository or a git directory): run gen in a clone")


def prefix(root: Path) -> str:
    """Where root sits inside its repository ("" at the top, else "sub/dir/")."""
    return git(root, "rev-parse", "--show-prefix").decode().strip()


def export(root: Path, commit: str, names: Sequence[str], dest: Path) -> list[str]:
    """Write the named entries of root (paths from it) as they are at commit into dest; what was refused.

    Only regular files within `repofs.MAX_FILE_BYTES` are written: anything else is a finding, one line
    each. The files are read one at a time, so a huge tree is never held in memory.
    """
    top = prefix(root)
    if top and _answer(root, "cat-file", "-t", f"{commit}:{top.rstrip('/')}") != "tree":
        return []  # the fleet's directory did not exist yet: everything in it is new since
    # --full-tree: the names are paths in the fleet's tree; git would read them from the current
    # directory instead, and match nothing in a fleet below the top of its repository.
    listing = git(root, "ls-tree", "-r", "-z", "-l", "--full-tree", f"{commit}:{top}", "--", *names)
    findings: list[str] = []
    blobs: list[tuple[Path, str]] = []
    total = 0
    for entry in filter(None, listing.decode("utf-8", "surrogateescape").split("\0")):
        meta, name = entry.split("\t", 1)
        mode, _, oid, size = meta.split()
        parts = name.split("/")
        if ".." in parts:
            findings.append(f"{name}: a path outside the tree")
        elif mode == "160000":  # a submodule: its files are another repository's
            dest.joinpath(*parts).mkdir(parents=True, exist_ok=True)
        elif mode not in {"100644", "100755"}:
            what = "a symbolic link" if mode == "120000" else "not a regular file"
            findings.append(f"{name}: {what}; gen reads only regular files")
        elif int(size) > repofs.MAX_FILE_BYTES:
            findings.append(f"{name}: larger than {repofs.MAX_FILE_BYTES} bytes; gen reads no file that large")
        else:
            total += int(size)
            if total > MAX_EXPORT_BYTES:
                findings.append(f"more than {MAX_EXPORT_BYTES} bytes in the tree; gen reads no further")
                break
            blobs.append((dest.joinpath(*parts), oid))
    _write_blobs(root, blobs)
    return findings


def _write_blobs(root: Path, blobs: list[tuple[Path, str]]) -> None:
    """Write each object's bytes to its path, as committed.

    `git cat-file`, not `git archive`: the archive honours the revision's .gitattributes, whose
    export-ignore would hide files and export-subst or a filter would change them.
    """
    if not blobs:
        return
    argv = ["git", "cat-file", "--batch"]
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                argv, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env={**os.environ, **_ENV}
            )
        except OSError as e:
            raise ToolError(f"cannot run git: {e}", argv) from None
        assert proc.stdin is not None and proc.stdout is not None
        answered = True
        try:
            for target, oid in blobs:
                data = _blob(proc.stdin, proc.stdout, oid)
                if data is None:
                    answered = False
                    break
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as f:
                    f.write(data)
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()  # git ends at the end of its input
            code = proc.wait()
            proc.stdout.close()
        if not answered:
            err.seek(0)
            raise ToolError(f"git cat-file failed in {root}", argv, code, err.read().decode("utf-8", "replace"))


def _blob(ask: IO[bytes], answer: IO[bytes], oid: str) -> bytes | None:
    """One object's bytes from `git cat-file --batch`; None when git did not give them."""
    # One object asked for, then read whole: git flushes each answer, so neither side waits on the other.
    try:
        ask.write(oid.encode() + b"\n")
        ask.flush()
    except BrokenPipeError:
        return None
    header = answer.readline().split()  # <oid> blob <size>
    if len(header) != 3 or header[1] != b"blob":
        return None
    size = int(header[2])
    data = answer.read(size + 1)  # each object ends with a newline
    return data[:size] if len(data) == size + 1 else None


def changed_since(root: Path, commit: str, names: Iterable[str]) -> set[str]:
    """Paths under the named entries of root (relative to it) whose working tree differs from commit.

    Committed, staged and unstaged changes, and untracked files, ignored ones too: a build would read them.
    """
    paths = ["--", *names]
    out = git(root, "diff", "--name-only", "-z", "--no-renames", "--relative", commit, *paths)
    out += git(root, "ls-files", "-z", "--others", *paths)
    return set(out.decode("utf-8", "surrogateescape").split("\0")) - {""}


def dirty(root: Path) -> set[str] | None:
    """Paths (relative to root) that differ from HEAD, untracked ones included; None outside git."""
    # Used only to tell a hand edit from a stale rendering: any git trouble means "unknown".
    try:
        out = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", ".")
        top = prefix(root)
    except ToolError:
        return None
    # Porcelain paths are relative to the top of the repository.
    return {e[3:].removeprefix(top) for e in out.decode("utf-8", "surrogateescape").split("\0") if len(e) > 3}
