"""Run one function over chunks of work, in forked worker processes or in this process."""

from __future__ import annotations

import ctypes
import gc
import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

R = TypeVar("R")

# The most worker processes (or kustomize builds) a command runs at once, whatever
# --jobs or the machine says: each is a forked gen of tens of megabytes, and past the
# number of cores more of them only add memory, not speed.
MAX_JOBS = 64
_PR_SET_PDEATHSIG = 1


def cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count), at most MAX_JOBS."""
    try:
        found = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        found = os.cpu_count() or 1
    return max(1, min(found, MAX_JOBS))


# Below this many clusters the work stays in this process: starting the workers and
# collecting their results costs about what splitting the work saves. Measured on 2
# cores (`gen check`, in sync): with workers, 20 clusters took 30% longer, 50 about
# the same, 100 a quarter less.
PARALLEL_MIN_CLUSTERS = 50
# Chunks per job: the progress bar moves as each is done, and no result is large.
CHUNKS_PER_JOB = 4


def chunked(names: Sequence[str], jobs: int) -> list[list[str]]:
    """`names` cut into contiguous runs for `jobs` workers, whose lengths differ by one at most (none empty)."""
    count = max(1, min(jobs * CHUNKS_PER_JOB if len(names) >= PARALLEL_MIN_CLUSTERS else 1, len(names)))
    size, extra = divmod(len(names), count)
    # Run k starts after k runs of `size` names, the first `extra` runs holding one more.
    starts = [k * size + min(k, extra) for k in range(count + 1)]
    return [list(names[a:b]) for a, b in itertools.pairwise(starts)]


class WorkerError(RuntimeError):
    """A worker process died (killed, or out of memory): never a user error."""


def map_chunks(
    work: Callable[..., R], chunks: Sequence[tuple[Any, ...]], jobs: int, done: Callable[[int], object]
) -> list[R]:
    """`work(*args)` for each chunk, in chunk order, in up to `jobs` forked processes; `done(k)` as chunk k ends.

    The first chunk (in order) that raised raises here, once every chunk is done.
    """
    if jobs <= 1 or len(chunks) <= 1:
        with collector_paused():
            out = []
            for k, args in enumerate(chunks):
                out.append(work(*args))
                done(k)
            return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # Forked, not spawned: a fork made after the imports costs milliseconds, a new
    # interpreter the whole start-up again. Nothing buffered may be written twice.
    sys.stdout.flush()
    sys.stderr.flush()
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(min(jobs, len(chunks)), context, initializer=_start_worker, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(work, *args): k for k, args in enumerate(chunks)}
        for future in as_completed(futures):
            done(futures[future])
        return [future.result() for future in futures]
    except BrokenProcessPool:
        raise WorkerError("a worker process ended abruptly (killed, or out of memory?); nothing was written") from None
    except BaseException:
        # Ctrl-C (which reaches only this process: see _start_worker) or a chunk's error:
        # what the other workers are doing is of no use any more.
        for process in multiprocessing.active_children():
            process.kill()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


def _start_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone answers it, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker waits on a queue whose writing end the other workers hold too: without
    # this, a parent killed outright would leave it waiting for ever (Linux only).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)
    gc.disable()  # see collector_paused; a worker lives for one command


@contextmanager
def collector_paused() -> Iterator[None]:
    # A render makes many long-lived objects and few cycles: the collector would walk the
    # loaded specs again and again, about a sixth of a render's time, for no memory won.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
