"""The only module that writes to the repository: atomic, minimal, and serialised by a lock."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gen import repofs
from gen.errors import LockError, UsageError

TMP_PREFIX = ".gen-tmp-"
# Where the two-rename fallback of _exchange parks the old directory. The dot cannot
# occur in a cluster name, so this never collides with the temporary directory of a
# cluster whose name starts with "old-".
PARKED_PREFIX = TMP_PREFIX + "old."
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass
class WriteReport:
    """What a write did, by path relative to the repository root."""

    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        return bool(self.created or self.changed or self.removed)


@contextlib.contextmanager
def repo_lock(root: Path, wait: bool = True) -> Iterator[None]:
    """Hold the repository's write lock; a second gen waits (or fails when wait is False)."""
    path = lock_path(root)
    # Outside git the fleet directory itself is locked: no file appears in the user's tree,
    # not even when a render refuses a spec (the lock is taken before the specs are read).
    flags = os.O_RDONLY | os.O_DIRECTORY if path == root else os.O_RDWR | os.O_CREAT
    fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockError(f"another gen is writing to {root} (lock {path})") from None
            print(f"gen: waiting for another gen writing to {root}", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lock_path(root: Path) -> Path:
    """Where the lock of root's files lives: in its git directory, which `git status` never shows; else root."""
    git = git_dir(root)
    return git / "gen.lock" if git is not None else root


def git_dir(root: Path) -> Path | None:
    """The git directory of the work tree that holds root, found as git finds it; None outside git."""
    top = _work_tree_top(root.resolve())
    if top is None:
        return None
    dot_git = top / ".git"
    if dot_git.is_dir():
        return dot_git
    try:  # a worktree's or a submodule's file, naming the git directory
        first = dot_git.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return None
    found = top / first.removeprefix("gitdir:").strip()  # an absolute path replaces top
    return found if first.startswith("gitdir:") and found.is_dir() else None


def repo_prefix(root: Path) -> str:
    """Where root sits in the git work tree that holds it (`infra/fleet/`), as Argo CD names paths from the
    repository's top; "" at the top, and outside git. What `git rev-parse --show-prefix` says, without git:
    a render needs none."""
    start = root.resolve()
    top = _work_tree_top(start)
    return "" if top is None or top == start else start.relative_to(top).as_posix() + "/"


def _work_tree_top(start: Path) -> Path | None:
    """The first of start and its parents that holds a `.git` (a directory, or a worktree's or a submodule's file)."""
    return next((d for d in (start, *start.parents) if (d / ".git").is_dir() or (d / ".git").is_file()), None)


def tree_entries(directory: Path) -> list[str]:
    """Every entry below a directory that is not one (a symlink counts as one entry), by relative path, sorted."""
    out: list[str] = []
    for top, dirs, files in os.walk(directory, followlinks=False):
        base = os.path.relpath(top, directory)
        prefix = "" if base == "." else base.replace(os.sep, "/") + "/"
        out += [prefix + name for name in files]
        out += [prefix + name for name in dirs if os.path.islink(os.path.join(top, name))]
    return sorted(out)


def read_tree(directory: Path) -> dict[str, str | None] | None:
    """The entries directly in a directory by name (a regular file's text, else None), or None when it is absent."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return None
    out: dict[str, str | None] = {}
    for e in entries:
        try:
            out[e.name] = repofs.read(e.path).decode("utf-8", errors="surrogateescape")
        except repofs.NotAFile:
            out[e.name] = None
    return out


def refuse_unwritable(root: Path, dirs: Iterable[str], files: Iterable[str]) -> None:
    """Refuse, before any write, what stands where a render writes an overlay directory or a file."""
    for rel, directory in [*((d, True) for d in sorted(dirs)), *((f, False) for f in sorted(files))]:
        if found := obstacle(root, rel, directory):
            raise UsageError(f"{found[0]}: {found[1]}; remove it, then render again")


def obstacle(root: Path, rel: str, directory: bool) -> tuple[str, str] | None:
    """What a render would not write over at rel (an overlay directory when `directory`, else a file):
    (the path of what is in the way, what it is and where), or None when the write can go ahead.

    The one answer behind render's refusal and the fix `check` gives for it.
    """
    parts = rel.split("/")
    for n in range(1, len(parts)):
        here = "/".join(parts[:n])
        # A parent linked to a directory is written into, as the render always did; anything
        # else there (a file, a dangling link) fails the mkdir after other files were written.
        if os.path.isdir(root / here):
            continue
        if not os.path.lexists(root / here):
            return None
        return here, f"{repofs.lkind(root / here)} where gen writes a directory"
    what = repofs.lkind(root / rel)
    if directory and what not in (None, "absent"):
        return rel, f"{what} where gen writes an overlay directory"
    if not directory and what is None:
        return rel, "a directory where gen writes a file"
    return None


def write_dirs(root: Path, dirs: Mapping[str, Mapping[str, str]]) -> WriteReport:
    """Make each directory (relative path → {file name: text}) hold exactly those files."""
    report = WriteReport()
    for parent in sorted({(root / rel).parent for rel in dirs}):
        parent.mkdir(parents=True, exist_ok=True)
    for rel, files in sorted(dirs.items()):
        _write_dir(root, rel, files, report)
    return report


def remove_dir(root: Path, rel: str, report: WriteReport) -> None:
    target = root / rel
    parked = target.with_name(TMP_PREFIX + target.name)
    _clear(parked)
    os.rename(target, parked)  # one step: the overlay is there, or gone
    try:
        shutil.rmtree(parked)
    except BaseException:
        _discard(parked)  # interrupted: leave nothing behind to be committed
        raise
    report.removed.append(rel)


def remove_file(root: Path, rel: str, report: WriteReport) -> None:
    (root / rel).unlink()
    report.removed.append(rel)


def clean_leftovers(parent: Path) -> None:
    """Remove temporary directories that an interrupted run left behind."""
    for entry in _leftovers(parent):
        original = entry.with_name(entry.name.removeprefix(PARKED_PREFIX))
        if entry.name.startswith(PARKED_PREFIX) and not original.exists():
            # Killed between the two renames of the fallback exchange: the old
            # directory is parked and nothing is in its place; put it back.
            os.rename(entry, original)
        else:
            _clear(entry)


def write_files(root: Path, files: Mapping[str, str], report: WriteReport, folders: Iterable[str] = ()) -> None:
    """Write single files (relative path → text) atomically when they change; clean `folders` of leftovers too."""
    for directory in sorted({(root / rel).parent for rel in files} | {root / f for f in folders}):
        # Left by a run killed here. Nothing else removes them: the orphan check skips dot
        # files, and every run writes every Argo CD file, so each of their folders passes here.
        for entry in _leftovers(directory):
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        _write_file(root, rel, text, report)


def same_text(raw: bytes, text: str) -> bool:
    """Whether a file's bytes read back (as UTF-8, undecodable bytes escaped, newlines kept) as text."""
    try:
        return raw == text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the decoded bytes can equal it
        return raw.decode("utf-8", errors="surrogateescape") == text


def _write_file(root: Path, rel: str, text: str, report: WriteReport) -> None:
    path = root / rel
    try:
        old: str | None = repofs.read_text(path)
    except (FileNotFoundError, repofs.NotAFile, UnicodeDecodeError):
        old = None
    if old == text:
        return
    existed = old is not None or os.path.lexists(path)  # a symlink or a FIFO gen replaces
    tmp = path.with_name(TMP_PREFIX + path.name)
    try:
        _create(os.fspath(tmp), text)
        os.rename(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    (report.changed if existed else report.created).append(rel)


def _leftovers(directory: Path) -> list[Path]:
    """The temporary entries of a directory, sorted; os.scandir, not a glob: a fleet's folders hold thousands."""
    try:
        return sorted(Path(e.path) for e in os.scandir(directory) if e.name.startswith(TMP_PREFIX))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _write_dir(root: Path, rel: str, files: Mapping[str, str], report: WriteReport) -> None:
    target = root / rel
    old = read_tree(target)
    if old == dict(files):
        return
    tmp = target.with_name(TMP_PREFIX + target.name)
    _clear(tmp)
    tmp.mkdir()
    # Until the exchange, tmp holds the new files; after it, the old ones. Either way it
    # goes, also when the disk is full or Ctrl-C comes: `git add -A` must not find it.
    try:
        for name, text in files.items():
            if old is not None and old.get(name) == text:
                os.link(target / name, tmp / name)  # unchanged: no new bytes written
                continue
            _create(os.path.join(tmp, name), text)
            (report.changed if old is not None and name in old else report.created).append(f"{rel}/{name}")
        if old is not None:
            report.removed.extend(f"{rel}/{n}" for n in sorted(set(old) - set(files)))
            _exchange(tmp, target)
        else:
            os.rename(tmp, target)
    finally:
        _discard(tmp)


def _create(path: str, text: str) -> None:
    # Through os calls: a text-mode open costs more than the write of a small file. A failed
    # write names the file (os.write alone would not: "No space left on device", but where?).
    data = memoryview(text.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    finally:
        os.close(fd)


def _discard(path: Path) -> None:
    # A file-system error is ignored (this runs while another error does). Ctrl-C is raised once
    # the removal is done: a half-removed directory would be committed by `git add -A`.
    interrupted: KeyboardInterrupt | None = None
    for _ in range(3):
        try:
            _clear(path, ignore_errors=True)
            break
        except KeyboardInterrupt as e:
            interrupted = e
        except OSError:
            break
    if interrupted is not None:
        raise interrupted


def _clear(path: Path, ignore_errors: bool = False) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=ignore_errors)
    elif path.exists() or path.is_symlink():
        path.unlink()


_libc: ctypes.CDLL | None = None


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step; fall back to two renames where that is impossible."""
    global _libc  # noqa: PLW0603 - loaded once per process
    if sys.platform.startswith("linux"):
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fn = getattr(_libc, "renameat2", None)
        if fn is not None:
            rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
            if rc == 0:
                return
            err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), str(b))
    parked = b.with_name(PARKED_PREFIX + b.name)
    _clear(parked)
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)
