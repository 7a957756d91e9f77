"""Running kustomize (the binary, else `kubectl kustomize`) on what `inspect` found local and within bounds."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gen import repofs, yamlio
from gen.errors import ToolError, UsageError

TIMEOUT_ENV = "GEN_KUSTOMIZE_TIMEOUT"
# A fleet's overlay builds in a fraction of a second; a build still running after
# this long is not going to finish usefully (CI would otherwise wait for hours).
DEFAULT_TIMEOUT = 60.0
# The built manifests of an overlay are tens of kilobytes.
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
MAX_STDERR_BYTES = 64 * 1024
# What one build may read: kustomizations reached, and bytes of the files they name.
MAX_KUSTOMIZATIONS = 64
MAX_BUILD_BYTES = 8 * 1024 * 1024

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# What kustomize would fetch rather than read: a URL, an scp-like git address, a
# go-getter style host path, a ref or version query. Anything else that is not in
# the repository is refused too (kustomize tries the network for it).
_REMOTE = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*://|^[^/]*@[^/]*:|[?&](?:ref|version|submodules|timeout)="
    r"|^(?:github\.com|gitlab\.com|bitbucket\.org|ssh\.dev\.azure\.com)/"
)
LOCAL_ONLY = "gen builds only what the repository holds"


class BuildError(ToolError):
    """kustomize ran and refused the overlay (its stderr says why): a problem of that overlay, not of the tool."""


def command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise ToolError("neither `kustomize` nor `kubectl` (with kustomize built in) is on PATH")


def timeout() -> float:
    """Seconds one build may take: GEN_KUSTOMIZE_TIMEOUT, else the default."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e6:
        raise UsageError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds")
    return value


# How kustomize's Go runtime runs, unless the environment says otherwise: gen runs one build per
# core itself, and a build's heap stays far below the limit, so no collection runs in a build that
# does not need one. Measured on 2 cores: a quarter less time per overlay than Go's defaults.
_GO_RUNTIME = {"GOMAXPROCS": "1", "GOGC": "off", "GOMEMLIMIT": "256MiB"}


def build(directory: Path, cmd: list[str] | None = None) -> str:
    """The fully built manifests of one kustomization directory (checked by `inspect` first)."""
    argv = [*(cmd or command()), str(directory)]
    limit = timeout()
    try:
        # A session of its own: a stopped build takes whatever it started with it.
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=_GO_RUNTIME | os.environ
        )
    except OSError as e:
        raise ToolError(f"cannot run {argv[0]}: {e}", argv) from None
    out, err = bytearray(), bytearray()
    overflow = threading.Event()
    pumps = [
        threading.Thread(target=_pump, args=(proc, proc.stdout, out, MAX_OUTPUT_BYTES, overflow), daemon=True),
        threading.Thread(target=_pump, args=(proc, proc.stderr, err, MAX_STDERR_BYTES, None), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise ToolError(
            f"kustomize build of {directory} did not finish within {limit:g} s ({TIMEOUT_ENV}); stopped", argv
        ) from None
    except BaseException:
        _kill(proc)
        raise
    finally:
        for t in pumps:
            t.join()
    stderr = err.decode("utf-8", "replace")
    if overflow.is_set():
        raise ToolError(f"kustomize build of {directory} printed more than {MAX_OUTPUT_BYTES} bytes; stopped", argv)
    if code != 0:
        raise BuildError(f"kustomize build of {directory} failed", argv, code, stderr)
    return out.decode("utf-8", "replace")


def _pump(
    proc: subprocess.Popen[bytes], stream: IO[bytes] | None, buf: bytearray, cap: int, overflow: threading.Event | None
) -> None:
    """Read a pipe to its end, keeping at most cap bytes; past it, stop the build when `overflow` is given."""
    assert stream is not None
    with stream:
        while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
            room = cap - len(buf)
            buf += chunk[: max(room, 0)]
            if len(chunk) > room and overflow is not None:
                overflow.set()
                _kill(proc)
                return


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# ------------------------------------------------------------ before a build


def inspect(root: Path, directory: str) -> tuple[list[str], bytes]:
    """What keeps kustomize from building `directory` (relative to root), one line per file and entry; and a
    digest of the path and bytes of every file the build reads, in order.

    A pull request decides what kustomize reads: every path of every kustomization the build would load
    must be a regular file or real directory in the repository, reached through no symlink, within bounds.
    """
    walk = _Walk(root)
    return walk.run(directory), walk.digest.digest()


class _RefusedError(Exception):
    """One finding, which ends the check of the entry (or kustomization) it is about."""


@functools.lru_cache(maxsize=256)
def _kustomization_docs(text: str) -> list[Any]:
    # Every overlay reaches the same base/ kustomizations: each text is parsed once (and only read).
    return yamlio.parse_all_plain(text)


class _Walk:
    def __init__(self, root: Path) -> None:
        self.root = os.fspath(root) + "/"  # paths joined as text: a walk makes thousands
        self.kinds: dict[str, str | None] = {}  # what each path on the way is, looked up once a walk
        self.findings: list[str] = []
        self.read = 0  # bytes of the files named so far
        self.digest = hashlib.blake2b(digest_size=20)

    @contextlib.contextmanager
    def _noting(self) -> Iterator[None]:
        try:
            yield
        except _RefusedError as e:
            self.findings.append(str(e))

    def run(self, directory: str) -> list[str]:
        queue: list[str] = []
        with self._noting():
            queue.append(self._local(directory, ".", directory))
        seen = set()
        while queue and len(self.findings) < 50:
            here = queue.pop(0)
            if here in seen:
                continue
            seen.add(here)
            if len(seen) > MAX_KUSTOMIZATIONS:
                self.findings.append(f"{directory}: reaches more than {MAX_KUSTOMIZATIONS} kustomizations")
                break
            with self._noting():
                queue += self._kustomization(here)
        return self.findings

    def _kustomization(self, here: str) -> list[str]:
        """Check one kustomization directory; the directories it names, to check next."""
        names = [n for n in KUSTOMIZATION_FILES if os.path.lexists(f"{self.root}{here}/{n}")]
        if not names:
            raise _RefusedError(f"{here}: holds no kustomization.yaml")
        if len(names) > 1:
            raise _RefusedError(f"{here}: holds both {names[0]} and {names[1]}; kustomize reads one")
        rel = f"{here}/{names[0]}"
        text = self._file(rel, rel, parsed=True)
        try:
            docs = _kustomization_docs(text)
        except Exception as e:  # any value the plain loader cannot take (a 100-digit number) is a finding here
            raise _RefusedError(f"{rel}: cannot be read: {e}") from None
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise _RefusedError(f"{rel}: not one kustomization mapping")
        dirs = []
        for field, value, how in _references(docs[0]):
            where = f"{rel}: {field}"
            with self._noting():
                if how == "inline":
                    if (problem := yamlio.check_bounds(value)) is not None:
                        raise _RefusedError(f"{where}: line {problem[0]}: {problem[2]}")
                elif how == "refused":
                    raise _RefusedError(f"{where}: helm charts are downloaded; {LOCAL_ONLY}")
                elif self.kinds[target := self._local(where, here, value)] is not None:
                    self._file(where, target, parsed=how != "file")
                elif how == "any":
                    dirs.append(target)
                else:
                    raise _RefusedError(f"{where}: {value!r} is a directory; a file is expected")
        return dirs

    def _local(self, where: str, here: str, value: Any) -> str:
        """The path (relative to root) an entry names, when it is a local one reached through no symlink."""
        if not isinstance(value, str) or not value:
            raise _RefusedError(f"{where}: {value!r} is not a path")
        if _REMOTE.search(value):
            raise _RefusedError(f"{where}: {value!r} is a remote resource; {LOCAL_ONLY}")
        if os.path.isabs(value):
            raise _RefusedError(f"{where}: {value!r} is an absolute path; paths stay inside the repository")
        target = os.path.normpath(os.path.join(here, value))
        if target == ".." or target.startswith("../"):
            raise _RefusedError(f"{where}: {value!r} leads out of the repository")
        parts = target.split("/")
        for n in range(1, len(parts) + 1):
            prefix = "/".join(parts[:n])
            if prefix not in self.kinds:
                self.kinds[prefix] = repofs.lkind(self.root + prefix)
            what = self.kinds[prefix]
            if what in {"absent", "under a path that is not a directory"}:
                raise _RefusedError(
                    f"{where}: {value!r} is not in the repository (kustomize would try to fetch it); {LOCAL_ONLY}"
                )
            if what == "a symbolic link":
                how = "is" if n == len(parts) else f"goes through {prefix},"
                raise _RefusedError(f"{where}: {value!r} {how} a symbolic link; gen follows none")
            if what is not None and n < len(parts):
                raise _RefusedError(f"{where}: {value!r} goes through {prefix}, {what}")
        return target

    def _file(self, where: str, rel: str, *, parsed: bool) -> str:
        """Read a file kustomize would read; its text when it is within bounds."""
        try:
            raw = repofs.read(self.root + rel)
        except repofs.NotAFile as e:
            raise _RefusedError(f"{where}: {rel} is {e.why}; gen builds only regular files within its bounds") from None
        except OSError as e:
            raise _RefusedError(f"{where}: {rel} cannot be read: {e.strerror or e}") from None
        self.read += len(raw)
        self.digest.update(f"{len(rel)}:{rel}{len(raw)}:".encode(errors="surrogateescape") + raw)
        if self.read > MAX_BUILD_BYTES:
            raise _RefusedError(f"{where}: the build would read more than {MAX_BUILD_BYTES} bytes; refused")
        text = raw.decode("utf-8", "replace")
        problem = yamlio.check_bounds(text) if parsed else None
        if problem is not None:
            raise _RefusedError(f"{rel}:{problem[0]}:{problem[1]}: {problem[2]}")
        return text


def _references(doc: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(field, value, how) for every path or inline document a kustomization holds.

    how: "any" (a file or a kustomization directory), "yaml" (a file kustomize
    parses), "file" (read as bytes), "inline" (a YAML text), "refused".
    """

    def items(key: str) -> Iterator[tuple[str, Any]]:
        value = doc.get(key)
        if isinstance(value, list):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value))
        elif value is not None:
            yield key, value

    for key in ("resources", "bases", "components", "crds", "configurations"):
        how = "yaml" if key in ("crds", "configurations") else "any"
        yield from ((field, value, how) for field, value in items(key))
    for key in ("generators", "transformers", "validators", "patchesStrategicMerge"):
        for field, value in items(key):
            if isinstance(value, str):
                yield field, value, "inline" if "\n" in value else ("yaml" if key == "patchesStrategicMerge" else "any")
    for key in ("patches", "patchesJson6902", "replacements"):
        for field, value in items(key):
            if isinstance(value, dict):
                if "path" in value:
                    yield f"{field}.path", value["path"], "yaml"
                if isinstance(value.get("patch"), str):
                    yield f"{field}.patch", value["patch"], "inline"
    for key in ("configMapGenerator", "secretGenerator"):
        for field, value in items(key):
            if not isinstance(value, dict):
                continue
            for i, entry in enumerate(value.get("files") or []):
                path = entry.split("=", 1)[-1] if isinstance(entry, str) else entry
                yield f"{field}.files[{i}]", path, "file"
            for i, entry in enumerate(value.get("envs") or []):
                yield f"{field}.envs[{i}]", entry, "file"
            if "env" in value:
                yield f"{field}.env", value["env"], "file"
    openapi = doc.get("openapi")
    if isinstance(openapi, dict) and "path" in openapi:
        yield "openapi.path", openapi["path"], "file"
    for key in ("helmCharts", "helmChartInflationGenerator", "helmGlobals"):
        if key in doc:
            yield key, doc[key], "refused"
