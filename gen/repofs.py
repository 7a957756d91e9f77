"""Reading what a pull request put in the repository: no symlink followed, no FIFO waited on, no byte past a bound."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from gen.errors import UsageError

# No Kubernetes object can hold more (etcd's request limit), nor can a spec.
MAX_FILE_BYTES = 1024 * 1024
# Entries gen walks in one tree (base/, overlays/, argocd/): a fleet of a thousand
# clusters holds about ten thousand; a walk of this many takes about a second.
MAX_TREE_ENTRIES = 200_000

# The folders gen reads and writes; none may be a symlink, wherever it points.
LAYOUT_DIRS = ("clusters", "overlays", "argocd", "argocd/applications", "schema", "base")


class NotAFile(OSError):  # noqa: N818 - an OSError, as open() would raise
    """A path that is there but is not a regular file gen may read."""

    def __init__(self, path: str | os.PathLike[str], why: str, too_large: bool = False) -> None:
        super().__init__(errno.EINVAL, why, os.fspath(path))
        self.why = why
        self.too_large = too_large


_KINDS = {
    stat.S_IFREG: "a file",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
}
# What os.open() with O_NOFOLLOW | O_NONBLOCK says about a path that is not a regular file.
_OPEN_REFUSALS = {
    errno.ELOOP: "a symbolic link",
    errno.ENXIO: "a socket",
    errno.ENOTDIR: "under a path that is not a directory",
}


def kind_of(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _open_regular(path: str | os.PathLike[str]) -> tuple[int, os.stat_result]:
    """An open descriptor of a regular file and its stat; FileNotFoundError when absent, NotAFile otherwise."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno in _OPEN_REFUSALS:
            raise NotAFile(path, _OPEN_REFUSALS[e.errno]) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotAFile(path, kind_of(st.st_mode))
    return fd, st


def read(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes: FileNotFoundError when absent, NotAFile when it is anything else or too large."""
    fd, st = _open_regular(path)
    with open(fd, "rb", buffering=0) as f:
        # One read as large as the file, unbuffered (a read of the whole bound would allocate the bound).
        data = f.read(st.st_size + 1) if st.st_size <= limit else b""
        if st.st_size < len(data) <= limit:  # it grew meanwhile: the rest, up to one byte past the bound
            data += f.read(limit + 1 - len(data))
    # The size is checked before a byte is read, and again after.
    if st.st_size > limit or len(data) > limit:
        raise NotAFile(path, f"larger than {limit} bytes", too_large=True)
    return data


def head(path: str | os.PathLike[str], size: int = 4096) -> bytes | None:
    """The first bytes of a regular file; None for anything else (a link, a FIFO, a device) or when unreadable."""
    try:
        fd, _ = _open_regular(path)
        with open(fd, "rb") as f:
            return f.read(size)
    except OSError:
        return None


def read_text(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    """`read`, decoded as UTF-8 (UnicodeDecodeError when it is not)."""
    return read(path, limit).decode("utf-8")


def lkind(path: str | os.PathLike[str]) -> str | None:
    """None for a real directory, else what the path is ("absent" when it is not there)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "absent"
    except NotADirectoryError:
        return "under a path that is not a directory"
    return None if stat.S_ISDIR(mode) else kind_of(mode)


def scan_file(root: Path, rel: str, *, yaml: bool = True) -> Iterator[str]:
    """Findings for one file, as `scan` gives them for each it finds: its kind, its size, (`yaml`) its YAML bounds."""
    try:
        st = os.lstat(root / rel)
    except (FileNotFoundError, NotADirectoryError):
        return
    yield from _entry_findings(root, rel, st, yaml)


def _entry_findings(root: Path, rel: str, st: os.stat_result, yaml: bool) -> Iterator[str]:
    """What is wrong with one entry that is not a directory: its kind, its size, (`yaml`) its YAML bounds."""
    from gen import yamlio

    if not stat.S_ISREG(st.st_mode):
        yield f"{rel}: {kind_of(st.st_mode)}, not a regular file; gen reads only regular files"
    elif st.st_size > MAX_FILE_BYTES:
        yield f"{rel}: larger than {MAX_FILE_BYTES} bytes; gen reads no file that large"
    elif yaml:
        try:
            problem = yamlio.check_bounds(read_text(root / rel))
        except (OSError, UnicodeDecodeError) as e:
            yield f"{rel}: cannot be read: {getattr(e, 'why', None) or e}"
            return
        if problem is not None:
            yield f"{rel}:{problem[0]}:{problem[1]}: {problem[2]}"


def files_under(root: Path, rel: str) -> dict[str, bytes]:
    """Every regular file under rel (or rel itself) by path from root, for a tree `scan` found nothing in."""
    top = root / rel
    what = lkind(top)
    if what == "absent":
        return {}
    if what is not None:
        return {rel: read(top)}
    # os.walk never goes into a symlinked directory.
    found = (Path(here, name) for here, _, names in os.walk(top) for name in names)
    return dict(sorted((path.relative_to(root).as_posix(), read(path)) for path in found))


def guard_layout(root: Path) -> None:
    """Refuse a directory that is no fleet, or whose gen folders are links or files: gen would write through them."""
    if not any(os.path.lexists(root / marker) for marker in ("fleet.yaml", "clusters")):
        raise UsageError(
            f"{root}: not a fleet repository (no fleet.yaml, no clusters/); start one with: gen init {root}"
        )
    for rel in LAYOUT_DIRS:
        what = lkind(root / rel)
        if what is None or what == "absent":
            continue
        if what == "a symbolic link":
            raise UsageError(
                f"{rel}: a symbolic link (to {os.readlink(root / rel)}); gen reads and writes only a real directory "
                "there: replace the link with the directory"
            )
        raise UsageError(f"{rel}: {what}, where gen expects a directory")


def scan(root: Path, rel: str, yaml_check: bool = True) -> Iterator[str]:
    """Findings under rel: what is no regular file or real directory, too large, or (`yaml_check`) past YAML bounds."""
    what = lkind(root / rel)
    if what == "absent":
        return
    if what is not None:
        yield f"{rel}: {what}, where a directory is expected"
        return
    seen = 0
    stack = [rel]
    while stack:
        here = stack.pop()
        try:
            entries = sorted(os.scandir(root / here), key=lambda e: e.name)
        except OSError as e:
            yield f"{here}: cannot be listed: {e.strerror or e}"
            continue
        for entry in entries:
            seen += 1
            path = f"{here}/{entry.name}"
            if seen > MAX_TREE_ENTRIES:
                yield f"{rel}: more than {MAX_TREE_ENTRIES} entries; gen reads no further"
                return
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)
            else:
                yaml = yaml_check and (entry.name.endswith((".yaml", ".yml")) or entry.name == "Kustomization")
                yield from _entry_findings(root, path, st, yaml)
