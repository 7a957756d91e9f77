"""kustomize builds, parsed, kept in the git directory by the bytes of every file they read and the command that ran."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import shutil
import tempfile
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from gen import yamlio
from gen.components.argocd import OVERLAYS_DIR
from gen.render.writer import git_dir
from gen.validate import kustomize

CACHE_DIR = "gen-build-cache"
_FORMAT = b"2"
# Entries kept per overlay directory: its working tree's and its base ref's build, with room for a
# second base ref. The oldest used go first.
KEPT_PER_OVERLAY = 4
MIN_KEPT = 64


class Builds:
    """The builds of one command run; kept under the git directory that holds `repo` (none outside git)."""

    def __init__(
        self, repo: Path, inputs: dict[tuple[Path, str], bytes] | None = None, settled: Collection[Path] = ()
    ) -> None:
        git = git_dir(repo)
        self.dir = git / CACHE_DIR if git is not None else None
        self.repo = repo
        # (root, directory) → digest of what inspect read: given, when another process inspected.
        self.inputs = inputs if inputs is not None else {}
        self.settled = settled  # roots no one else writes (a revision gen exported): not read again after a build
        self._pruned = threading.Lock()
        self._identity = functools.cache(_identity)  # the kustomize of this run, looked up once

    def inspect(self, root: Path, directory: str) -> list[str]:
        """The findings of `kustomize.inspect`, remembering what the build of a safe directory reads."""
        findings, digest = kustomize.inspect(root, directory)
        if not findings:
            self.inputs[(root, directory)] = digest
        return findings

    def build(self, root: Path, directory: str, cmd: list[str]) -> list[Any]:
        """The documents kustomize builds of root/directory, or as stored for exactly the same files and command."""
        digest = self.inputs.get((root, directory))
        tool = self._identity(tuple(cmd))
        if self.dir is None or digest is None or tool is None:
            return yamlio.parse_all_plain(kustomize.build(root / directory, cmd))
        entry = self.dir / hashlib.blake2b(_FORMAT + tool + digest, digest_size=20).hexdigest()
        docs = _read(entry)
        if docs is not None:
            return docs
        docs = yamlio.parse_all_plain(kustomize.build(root / directory, cmd))
        # Stored only when the files did not change while kustomize read them.
        if root in self.settled or kustomize.inspect(root, directory)[1] == digest:
            # Parsed: loading marshal's plain data is many times faster than parsing the YAML again.
            self._store(entry, marshal.dumps(docs))
        return docs

    def _store(self, entry: Path, data: bytes) -> None:
        assert self.dir is not None
        tmp = None
        try:
            self.dir.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.blake2b(data, digest_size=20).digest() + data)
            os.replace(tmp, entry)
        except OSError:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            return  # a cache that cannot be written only costs time
        if self._pruned.acquire(blocking=False):  # once a run, by the first build stored
            self._prune()

    def _prune(self) -> None:
        assert self.dir is not None
        try:
            overlays = sum(1 for _ in os.scandir(self.repo / OVERLAYS_DIR))
        except OSError:
            overlays = 0
        with contextlib.suppress(OSError):
            entries = list(os.scandir(self.dir))
            keep = max(MIN_KEPT, KEPT_PER_OVERLAY * overlays)
            if len(entries) > keep:
                entries.sort(key=lambda e: e.stat().st_mtime_ns)
                for e in entries[: len(entries) - keep]:
                    Path(e.path).unlink(missing_ok=True)


def _read(entry: Path) -> list[Any] | None:
    """The stored documents, when the entry is there and whole."""
    try:
        data = entry.read_bytes()
    except OSError:
        return None
    if data[:20] != hashlib.blake2b(data[20:], digest_size=20).digest():
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # used now: pruned last
    docs: list[Any] = marshal.loads(data[20:])
    return docs


def _identity(cmd: tuple[str, ...]) -> bytes | None:
    """The command and the binary it runs, by path, size and mtime: another kustomize builds anew."""
    path = shutil.which(cmd[0])
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{' '.join(cmd)}\0{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode()
