"""Run the steps of per-chunk work in forked worker processes, or in this process.

A fleet's clusters are split into contiguous chunks, one per worker. Each
worker holds a *session*: an object made in the parent before the fork, whose
methods do one step of the work on its chunk and keep what later steps need in
the worker's memory. The parent asks every session to run the same step and
gets back one result per chunk, in chunk order, so that what it puts together
is what one session over all clusters would give.

Why forked processes rather than threads or a `multiprocessing` pool: the work
is pure Python (threads would share one core), and a fork made after the
imports costs a few milliseconds where a spawned interpreter costs the whole
start-up again. Only a step's argument and result cross between processes,
pickled, so sessions return small plain data; a step may also yield its
results one by one, which then cross in parts as they come.

`Local` runs the same sessions in this process: a small fleet or one job is
not worth a fork, and both go through the very same session code.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import selectors
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Tick = Callable[[int], None]  # n more clusters of the step are done

# The most worker processes (or kustomize builds) a command runs at once, whatever
# --jobs or the machine says: each is a forked gen of tens of megabytes, and past the
# number of cores more of them only add memory, not speed.
MAX_JOBS = 64


def cores() -> int:
    """The cores this process may run on: the default number of parallel jobs.

    The affinity mask, not the machine's count: a container or `taskset` may
    allow fewer cores than the machine has.
    """
    try:
        found = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        found = os.cpu_count() or 1
    return max(1, min(found, MAX_JOBS))


class WorkerError(RuntimeError):
    """A worker process died, or sent back what cannot be read: a bug, never a user error."""


class Failure:
    """An exception from a worker, for the parent to raise when its turn comes.

    Sent for a step that raised; a step returns one itself when another chunk's
    outcome may take precedence (a spec problem elsewhere comes before a failed
    render here). It crosses processes pickled, with the worker's traceback as
    a note (shown with --debug).
    """

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getstate__(self) -> bytes:
        return _pickled_error(self.error)

    def __setstate__(self, state: bytes) -> None:
        self.error = pickle.loads(state)


class Local:
    """The sessions run one after the other in this process, when their results are asked for."""

    def __init__(self, sessions: Sequence[object]) -> None:
        self.sessions = list(sessions)
        self._steps: list[tuple[str, Any]] = []

    def start(self, step: str, arg: Any) -> None:
        self._steps.append((step, arg))

    def results(self, progress: Tick | None = None) -> list[Any]:
        """The results of the earliest step started and not yet collected; see `Forked.results`."""
        step, arg = self._steps.pop(0)
        with _collector_paused():
            return [_whole(getattr(s, step)(arg, progress or _ignore)) for s in self.sessions]

    def finish(self) -> None:
        pass

    def close(self, kill: bool = False) -> None:
        pass


# A frame is a kind byte, then an 8-byte unsigned length, then that many bytes of payload
# (a tick frame carries its count in the length and has no payload). A step that yields
# its results sends them as parts (pickled lists), then an end frame.
_HEADER = struct.Struct("!cQ")
_STEP, _TICK, _RESULT, _FAILED, _PART, _END = b"s", b"t", b"r", b"x", b"p", b"e"
# Results per part: a part of a render from scratch is about 2 MB of file texts, so
# neither side ever holds a whole worker's result pickled.
_PART_ITEMS = 64
# Ticks are sent at most this often: the bar moves smoothly, the parent wakes up rarely.
_TICK_SECONDS = 0.05
_PR_SET_PDEATHSIG = 1


class Forked:
    """One forked worker process per session; each runs the steps it is asked for on its session.

    Workers are forked when this is made, so sessions (and everything they
    reference) are inherited, never pickled. `close` ends and reaps them all,
    however the caller got there.
    """

    def __init__(self, sessions: Sequence[object]) -> None:
        self.pids: list[int] = []
        self._commands: list[int] = []  # parent → worker k
        self._results: list[int] = []  # worker k → parent
        sys.stdout.flush()  # nothing buffered may be written twice
        sys.stderr.flush()
        try:
            for session in sessions:
                self._fork(session)
        except BaseException:
            self.close(kill=True)
            raise

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

    def start(self, step: str, arg: Any) -> None:
        """Ask every worker to run `step` next; the parent is free until it asks for the results.

        Steps queue up: a worker starts the next as soon as it is done with the last.
        """
        command = pickle.dumps((step, arg), protocol=pickle.HIGHEST_PROTOCOL)
        for index, fd in enumerate(self._commands):
            try:
                _write_frame(fd, _STEP, command)
            except BrokenPipeError:
                raise WorkerError(self._death(index)) from None

    def results(self, progress: Tick | None = None) -> list[Any]:
        """The results of the earliest step started and not yet collected, in worker order.

        Ticks go to `progress` as they come. A step that raised in a worker is
        raised here, the first worker's first.
        """
        out = []
        for kind, value in self._collect(progress or _ignore):
            if kind == _FAILED:
                raise value.error
            out.append(value)
        return out

    def finish(self) -> None:
        """No more steps: each worker exits on its own (reaped by close) while the parent goes on."""
        for fd in self._commands:
            os.close(fd)
        self._commands = []

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

    def _collect(self, progress: Tick) -> list[tuple[bytes, Any]]:
        incoming = {fd: _Incoming(fd) for fd in self._results}
        parts: dict[int, list[Any]] = {fd: [] for fd in self._results}
        done: dict[int, tuple[bytes, Any]] = {}
        with selectors.DefaultSelector() as selector:  # not select(): any number of workers
            for fd in self._results:
                selector.register(fd, selectors.EVENT_READ)
            while len(done) < len(incoming):
                for key, _ in selector.select():
                    fd = int(key.fd)
                    self._receive(fd, incoming[fd], parts[fd], done, progress)
                    if fd in done:
                        selector.unregister(fd)
        return [done[fd] for fd in self._results]

    def _receive(
        self, fd: int, incoming: _Incoming, parts: list[Any], done: dict[int, tuple[bytes, Any]], progress: Tick
    ) -> None:
        """One read from a worker; a complete result (or failure) goes into done."""
        try:
            frame = incoming.read(progress)
        except EOFError:
            raise WorkerError(self._death(self._results.index(fd))) from None
        if frame is None:
            return
        kind, payload = frame
        if kind == _END:
            done[fd] = (_RESULT, parts)  # the worker's next frames belong to its next step
            return
        try:
            # Read now, so that at most one part or result is held pickled.
            value = pickle.loads(payload)
        except Exception as e:
            pid = self.pids[self._results.index(fd)]
            raise WorkerError(f"the result of render worker {pid} cannot be read: {e}") from e
        if kind == _PART:
            parts.extend(value)
        else:
            done[fd] = (kind, value)

    def _death(self, index: int) -> str:
        pid = self.pids[index]
        _, status = os.waitpid(pid, 0)
        self.pids[index] = 0  # reaped
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        return f"render worker {pid} {how} before it finished its step"


def _ignore(_n: int) -> None:
    pass


def _whole(result: Any) -> Any:
    """A step's result, a list if the step yields its results one by one."""
    return list(result) if isinstance(result, Iterator) else result


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection during a step, as in a worker (see `_serve`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Incoming:
    """The frames coming from one worker, read as they arrive, each payload straight into its own buffer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.header = bytearray()
        self.kind = b""
        self.payload: bytearray | None = None
        self.filled = 0

    def read(self, progress: Tick) -> tuple[bytes, bytearray] | None:
        """One read of what is there: the next frame other than a tick once it is complete, else None.

        Never reads past the end of a frame: the frames after it may belong to the next step.
        """
        if self.payload is None:
            chunk = os.read(self.fd, _HEADER.size - len(self.header))
            if not chunk:
                raise EOFError
            self.header += chunk
            if len(self.header) < _HEADER.size:
                return None
            kind, size = _HEADER.unpack(self.header)
            self.header.clear()
            if kind == _TICK:
                progress(size)
                return None
            self.kind, self.payload, self.filled = kind, bytearray(size), 0
        elif self.filled < len(self.payload):
            got = os.readv(self.fd, [memoryview(self.payload)[self.filled :]])
            if not got:
                raise EOFError
            self.filled += got
        if self.filled < len(self.payload):
            return None
        frame, self.payload = (self.kind, self.payload), None
        return frame


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
    # A render makes few reference cycles but many long-lived objects (the loaded specs),
    # which the cyclic collector would walk again and again: about a sixth of a worker's
    # time, for no memory won (measured). A worker lives for one render.
    gc.disable()
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
            result = getattr(session, step)(arg, tick)
            if isinstance(result, Iterator):
                _send_parts(results, result)
                kind, payload = _END, b""
            else:
                kind, payload = _RESULT, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:
            kind, payload = _FAILED, pickle.dumps(Failure(e), protocol=pickle.HIGHEST_PROTOCOL)
        if pending:
            _write_frame(results, _TICK, b"", pending)
        _write_frame(results, kind, payload)


def _send_parts(fd: int, results: Iterator[Any]) -> None:
    part = []
    for item in results:
        part.append(item)
        if len(part) == _PART_ITEMS:
            _write_frame(fd, _PART, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
            part = []
    if part:
        _write_frame(fd, _PART, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))


def _pickled_error(error: Exception) -> bytes:
    """The exception pickled, with this worker's traceback as a note; a WorkerError if it cannot cross."""
    where = "".join(traceback.format_exception(error)).rstrip()
    note = f"raised in render worker {os.getpid()}:\n{where}"
    try:
        error.add_note(note)
        payload = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)  # some exceptions pickle but cannot be rebuilt from their args
        return payload
    except Exception:
        substitute = WorkerError(f"{type(error).__name__}: {error}")
        substitute.add_note(note)
        return pickle.dumps(substitute, protocol=pickle.HIGHEST_PROTOCOL)


def _write_frame(fd: int, kind: bytes, payload: bytes, count: int | None = None) -> None:
    for data in (_HEADER.pack(kind, len(payload) if count is None else count), payload):
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
