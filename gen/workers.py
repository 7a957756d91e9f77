"""Run the steps of per-chunk work in forked worker processes, or in this process.

A fleet's clusters are split into contiguous chunks, one per worker. Each
worker holds a *session*: an object made in the parent before the fork, whose
methods do one step of the work on its chunk and keep what later steps need in
the worker's memory. The parent asks every session to run the same step and
gets back one result per chunk, in chunk order, so what it puts together is
the same as one session over all clusters would give.

Why forked processes rather than threads or a `multiprocessing` pool: the work
is pure Python (threads would share one core), and a fork started after the
imports costs a few milliseconds where a spawned interpreter costs the whole
start-up again. Only a step's arguments and results cross between processes,
pickled, so sessions should return small plain data.

`Local` runs the same sessions in this process: a small fleet or one job is
not worth a fork, and both take the very same code path through the sessions.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Tick = Callable[[int], None]  # n more clusters of the step are done


class Step(Protocol):
    """One step of a session: (argument from the parent, progress callback) → plain result."""

    def __call__(self, arg: Any, tick: Tick, /) -> Any: ...


class WorkerError(RuntimeError):
    """A worker process died, or sent back what cannot be read: a bug, never a user error."""


class Local:
    """The sessions run one after the other in this process, when their results are asked for."""

    def __init__(self, sessions: Sequence[object]) -> None:
        self.sessions = list(sessions)
        self._step: tuple[str, Any] | None = None

    def run(self, step: str, arg: Any, progress: Callable[[int], None] | None = None) -> list[Any]:
        self.start(step, arg)
        return self.results(progress)

    def start(self, step: str, arg: Any) -> None:
        self._step = (step, arg)

    def results(self, progress: Callable[[int], None] | None = None) -> list[Any]:
        assert self._step is not None, "start() first"
        (step, arg), self._step = self._step, None
        tick = progress or _ignore
        return [getattr(s, step)(arg, tick) for s in self.sessions]

    def finish(self) -> None:
        pass

    def close(self, kill: bool = False) -> None:
        pass


# A frame is a kind byte, then a 4-byte unsigned length, then that many bytes of payload
# (a tick frame carries its count in the length and has no payload).
_HEADER = struct.Struct("!cI")
_TICK, _RESULT, _FAILED = b"t", b"r", b"x"
# Ticks are sent at most this often: the bar moves smoothly, the parent wakes up rarely.
_TICK_SECONDS = 0.05
_READ = 1 << 20
_PR_SET_PDEATHSIG = 1


class Forked:
    """One forked worker process per session; each runs the steps it is asked for on its session.

    Workers are forked when this is made, so sessions (and everything they
    reference) are inherited, never pickled. Use as a context manager: leaving
    it ends every worker and reaps it, however the block is left.
    """

    def __init__(self, sessions: Sequence[object]) -> None:
        self.pids: list[int] = []
        self._commands: list[int] = []  # parent → worker k
        self._results: list[int] = []  # worker k → parent
        sys.stdout.flush()
        sys.stderr.flush()
        # The workers inherit the parent's whole heap copy-on-write. Frozen objects are
        # never visited by a worker's garbage collector, which would otherwise write to
        # (and so copy) every page of it; the parent unfreezes its own right away.
        gc.freeze()
        try:
            for session in sessions:
                self._fork(session)
        except BaseException:
            self.close(kill=True)
            raise
        finally:
            gc.unfreeze()

    def _fork(self, session: object) -> None:
        command_r, command_w = os.pipe()
        result_r, result_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller's stack
            code = 1
            try:
                # Ends this worker's copies of the other workers' pipes: a worker that
                # kept one open would hide the end of the other from the parent.
                for fd in (*self._commands, *self._results, command_w, result_r):
                    os.close(fd)
                _die_with(parent)
                # Ctrl-C reaches the whole process group: the parent alone answers it (and
                # ends the workers), so that it is reported once, as without workers.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _serve(session, command_r, result_w)
                code = 0
            finally:
                os._exit(code)
        os.close(command_r)
        os.close(result_w)
        self.pids.append(pid)
        self._commands.append(command_w)
        self._results.append(result_r)

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def run(self, step: str, arg: Any, progress: Callable[[int], None] | None = None) -> list[Any]:
        """Every worker runs `step` on its session; their results in worker order.

        A step that raised in a worker is raised here, the first worker's first.
        """
        self.start(step, arg)
        return self.results(progress)

    def start(self, step: str, arg: Any) -> None:
        """Ask every worker to run `step`; the parent is free until it asks for the results."""
        command = pickle.dumps((step, arg), protocol=pickle.HIGHEST_PROTOCOL)
        for index, fd in enumerate(self._commands):
            try:
                _write_frame(fd, _RESULT, command)
            except BrokenPipeError:
                raise WorkerError(self._death(index)) from None

    def results(self, progress: Callable[[int], None] | None = None) -> list[Any]:
        """Wait for the step every worker was asked to run; see `run`."""
        frames = self._collect(progress or _ignore)
        out = []
        for pid, (kind, payload) in zip(self.pids, frames, strict=True):
            try:
                value = pickle.loads(payload)
            except Exception as e:
                raise WorkerError(f"the result of worker {pid} cannot be read: {e}") from e
            if kind == _FAILED:
                raise value
            out.append(value)
        return out

    def finish(self) -> None:
        """No more steps: each worker exits on its own (reaped by close), while the parent goes on."""
        for fd in self._commands:
            os.close(fd)
        self._commands = []

    def _collect(self, progress: Callable[[int], None]) -> list[tuple[bytes, bytes]]:
        buffers = {fd: bytearray() for fd in self._results}
        done: dict[int, tuple[bytes, bytes]] = {}
        waiting = set(self._results)
        while waiting:
            ready, _, _ = select.select(list(waiting), [], [])
            for fd in ready:
                chunk = os.read(fd, _READ)
                if not chunk:
                    raise WorkerError(self._death(self._results.index(fd)))
                buf = buffers[fd]
                buf += chunk
                while len(buf) >= _HEADER.size:
                    kind, size = _HEADER.unpack_from(buf)
                    if kind == _TICK:
                        del buf[: _HEADER.size]
                        progress(size)
                        continue
                    if len(buf) < _HEADER.size + size:
                        break
                    done[fd] = (kind, bytes(buf[_HEADER.size : _HEADER.size + size]))
                    del buf[: _HEADER.size + size]
                    waiting.discard(fd)
                    break  # a worker sends nothing after its result until asked again
        return [done[fd] for fd in self._results]

    def _death(self, index: int) -> str:
        pid = self.pids[index]
        _, status = os.waitpid(pid, 0)
        self.pids[index] = 0  # reaped
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        return f"render worker {pid} {how} before it finished its step"

    def close(self, kill: bool = False) -> None:
        """End the workers (at once when kill) and reap every one: no process outlives this."""
        self.finish()
        for fd in self._results:
            os.close(fd)
        self._results = []
        for pid in self.pids:
            if not pid:
                continue
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self.pids = []


def _ignore(_n: int) -> None:
    pass


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when the parent dies (Linux), so none outlives a killed gen.

    Elsewhere a worker still ends soon: at its next read (end of file) or write
    (broken pipe) on the pipes to the dead parent.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _serve(session: object, commands: int, results: int) -> None:
    """The worker's loop: run each step the parent asks for until the parent closes the pipe."""
    while True:
        frame = _read_frame(commands)
        if frame is None:
            return
        step, arg = pickle.loads(frame)
        pending = 0
        last = time.monotonic()

        def tick(n: int) -> None:
            nonlocal pending, last
            pending += n
            now = time.monotonic()
            if now - last >= _TICK_SECONDS:
                _write_frame(results, _TICK, b"", pending)
                pending, last = 0, now

        try:
            kind, payload = _RESULT, pickle.dumps(getattr(session, step)(arg, tick), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            kind, payload = _FAILED, _pickled_error(e)
        if pending:
            _write_frame(results, _TICK, b"", pending)
        _write_frame(results, kind, payload)


def _pickled_error(error: Exception) -> bytes:
    """The exception for the parent to raise, with this worker's traceback as a note (seen with --debug)."""
    where = "".join(traceback.format_exception(error)).rstrip()
    error.add_note(f"raised in render worker {os.getpid()}:\n{where}")
    try:
        payload = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)  # some exceptions pickle but cannot be rebuilt from their args
        return payload
    except Exception:
        substitute = WorkerError(f"{type(error).__name__}: {error}")
        substitute.add_note(f"raised in render worker {os.getpid()}:\n{where}")
        return pickle.dumps(substitute, protocol=pickle.HIGHEST_PROTOCOL)


def _write_frame(fd: int, kind: bytes, payload: bytes, count: int | None = None) -> None:
    data = _HEADER.pack(kind, len(payload) if count is None else count) + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_frame(fd: int) -> bytes | None:
    """The payload of the next frame, or None at the end of the pipe."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    _, size = _HEADER.unpack(header)
    return _read_exactly(fd, size) if size else b""


def _read_exactly(fd: int, size: int) -> bytes | None:
    parts = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)
