"""What a render may take from the last one: the clusters whose inputs and files are as it left them,
and committed files already parsed."""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import astuple
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from gen import repofs, yamlio
from gen.components.argocd import Placement, application_file, overlay_dir
from gen.errors import Problem
from gen.render.workers import collector_paused
from gen.render.writer import git_dir, repo_prefix
from gen.spec.defaults import DEFAULTS_FILE
from gen.spec.fleet import FLEET_FILE

CACHE_NAME = "gen-render.cache"
T = TypeVar("T")
_FORMAT = 6


class Entry(NamedTuple):
    """What the last full render knew of one cluster, in plain data: as marshal stores and loads it."""

    spec: bytes  # digest of the spec file's bytes
    spec_stats: bytes  # the spec's stats when it was read: the same stats, the same bytes
    names: tuple[str, ...]  # the files of its overlay
    stats: bytes  # size, mtime, ctime and inode of each of `_paths`, packed
    warnings: tuple[tuple[Any, ...], ...]  # each Problem's fields
    placement: tuple[Any, ...]  # its Placement's fields

    @property
    def problems(self) -> list[Problem]:
        return [Problem(*w) for w in self.warnings]


class RenderCache:
    """The cache of one repository, as read at the start of a render."""

    def __init__(self, root: Path, path: Path, key: bytes, specs: Mapping[str, str]) -> None:
        self.root = root
        self.path = path
        self.key = key  # gen's code, fleet.yaml and the defaults: all clusters depend on them
        self.specs = specs  # clusters/NAME.yaml by name
        self.read: dict[str, tuple[bytes, bytes]] = {}  # digest and stats of the specs read before rendering
        self.entries: dict[str, Entry] = {}
        self.stamp = 0  # the cache file's mtime: files not older than it are not trusted
        self.project: str | None = None  # the AppProject's text, as the last full render made it

    def reusable(self) -> dict[str, Entry]:
        """The clusters whose files are known to be what a render would write, by name.

        A spec is known by its stats, as git knows a file in its index; one whose stats changed is
        read, and it is the same spec when its bytes are.
        """
        found = {}
        for name, rel in self.specs.items():
            entry = self.entries.get(name)
            paths = _paths(name, entry.names) if entry is not None else []
            # One call for the spec and every file: most often they are all as the last render left them.
            if entry is not None and _stats(self.root, [rel, *paths], self.stamp) == entry.spec_stats + entry.stats:
                found[name] = entry
                continue
            try:
                stats = _stats(self.root, [rel]) or b""  # taken before the read: a write after it changes them
                self.read[name] = (_digest(repofs.read(self.root / rel)), stats)
            except OSError:
                continue  # its render says what is wrong with it
            same = entry is not None and self.read[name][0] == entry.spec
            if same and entry is not None and _stats(self.root, paths, self.stamp) == entry.stats:
                found[name] = entry._replace(spec_stats=stats)  # the same bytes, touched
        return found

    def same_fleet(self, rendered: Mapping[str, Placement]) -> bool:
        """Whether every spec deploys where it did at the last full render (`rendered`: the ones rendered again).

        That render's AppProject then stands, and no two specs collide: it would not have been saved.
        """
        return (
            self.project is not None
            and self.entries.keys() == self.specs.keys()
            and all(tuple(p) == self.entries[n].placement for n, p in rendered.items())
        )

    def save(
        self, rendered: Mapping[str, tuple[Sequence[Problem], Placement]], reused: Mapping[str, Entry], project: str
    ) -> None:
        """Record, under the lock, the clusters just rendered and written, the reused and the AppProject's text.

        `rendered`: each cluster's warnings and placement, by name.
        """
        entries = dict(reused)
        if not rendered and entries == self.entries and project == self.project:
            return  # the cache says it all already: a render with nothing to do writes no file
        for name, (warnings, placement) in rendered.items():
            try:
                names = tuple(sorted(os.listdir(self.root / overlay_dir(name))))
            except OSError:
                continue
            stats = _stats(self.root, _paths(name, names))
            if name in self.read and stats is not None:
                # Repeated strings interned, so that marshal stores each once.
                fields = tuple(tuple(sys.intern(v) if isinstance(v, str) else v for v in astuple(w)) for w in warnings)
                names = tuple(map(sys.intern, names))
                entries[name] = Entry(*self.read[name], names, stats, fields, tuple(placement))
        _store(self.path, (_FORMAT, self.key, {n: tuple(e) for n, e in entries.items()}, project))


def open_cache(root: Path, spec_files: Mapping[str, str]) -> RenderCache | None:
    """The repository's render cache (empty when there is none yet), or None when it cannot be used."""
    git = git_dir(root)  # a worktree's or a submodule's too
    if git is None or not (root / FLEET_FILE).is_file():
        # Without fleet.yaml the fleet setting is derived from every spec, so every spec is read anyway.
        return None
    try:
        key = _key(root)
    except OSError:
        return None
    cache = RenderCache(root, git / CACHE_NAME, key, spec_files)
    try:
        # Tens of thousands of small objects, none in a cycle: the collector would walk them again and again.
        with open(cache.path, "rb") as f, collector_paused():
            stamp = os.fstat(f.fileno()).st_mtime_ns
            # One read: marshal.load on a file asks it for every object it reads.
            fmt, stored_key, entries, project = marshal.loads(f.read())
            if fmt == _FORMAT and stored_key == key:
                cache.entries = {n: Entry._make(e) for n, e in entries.items()}
                cache.stamp, cache.project = stamp, project
    except (OSError, EOFError, ValueError, TypeError):
        pass  # no cache yet, or one this gen cannot read: a full render
    return cache


def _key(root: Path) -> bytes:
    """Everything besides its spec that a cluster's files depend on: gen, fleet.yaml, the defaults, where it sits."""
    h = hashlib.blake2b(_code() + repo_prefix(root).encode(), digest_size=16)
    for rel in (FLEET_FILE, DEFAULTS_FILE):
        try:
            # Not followed through a symlink, nor waited on as a FIFO: the load refuses those.
            h.update(_digest(repofs.read(root / rel)))
        except FileNotFoundError:
            h.update(b"-")
    return h.digest()


@functools.cache
def _code() -> bytes:
    """This gen's identity: its code and the text it renders from (gen/resources/), Python and the YAML library."""
    h = hashlib.blake2b(f"{_FORMAT} {sys.version} {yamlio.library_identity()}\0".encode(), digest_size=16)
    package = Path(__file__).resolve().parents[1]  # the whole of gen, not this subpackage; not the bytecode
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        st = path.stat()
        h.update(f"{path.relative_to(package)} {st.st_size} {st.st_mtime_ns}\0".encode())
    return h.digest()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _paths(name: str, names: tuple[str, ...]) -> list[str]:
    directory = overlay_dir(name)
    # The directory itself too: a file added to or removed from it changes its times.
    return [directory, *(f"{directory}/{n}" for n in names), application_file(name)]


def _stats(root: Path, paths: list[str], stamp: int | None = None) -> bytes | None:
    """The packed stats of the paths; None when one is missing or, given the cache's stamp, not older."""
    prefix = os.fspath(root) + "/"
    values: list[int] = []
    for rel in paths:
        try:
            st = os.lstat(prefix + rel)
        except OSError:
            return None
        if stamp is not None and (st.st_mtime_ns >= stamp or st.st_ctime_ns >= stamp):
            return None  # racily clean: it could have changed within the clock tick it was written in
        values += (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return struct.pack(f"<{len(values)}q", *values)


def remembered(root: Path, name: str, source: bytes, make: Callable[[], T]) -> T:
    """make(), a pure function of `source` and of gen, kept in the git directory under `name`: work
    as large as the fleet (the AppProject, parsed or emitted) is done once for each version of it.
    """
    git = git_dir(root)
    if git is None:
        return make()
    memo, digest = git / f"gen-{name}", _digest(_code() + source)
    try:
        stored, value = marshal.loads(memo.read_bytes())
        if stored == digest:
            return cast(T, value)
    except (OSError, EOFError, ValueError, TypeError):
        pass  # none yet, or one this gen cannot read
    value = make()
    _store(memo, (digest, value))
    return value


def _store(path: Path, data: Any) -> None:
    """Write plain data with marshal, through a temporary file and a rename: never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(marshal.dumps(data))
        os.replace(tmp, path)
    except (OSError, ValueError):
        tmp.unlink(missing_ok=True)  # a cache that cannot be written only costs time
