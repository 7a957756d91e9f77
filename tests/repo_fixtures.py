"""Running gen on repositories whose files are not what they seem: a time limit, and every entry recorded."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

from click.testing import Result

from tests.git_fixtures import gen

# Everything here is refused before any slow work: a command past this is hung.
LIMIT_SECONDS = 20


class Hung(Exception):  # noqa: N818 - what the test reports
    pass


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_SECONDS) -> Iterator[None]:
    """Raise Hung in the main thread when the block runs past `seconds` (a blocked open() included)."""

    def fire(_signum: int, _frame: object) -> None:
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    with time_limit():
        return gen(*args, env=env)


def tree_state(top: Path) -> dict[str, tuple[str, bytes | str | None]]:
    """Every entry under top (links not followed): its kind and content, for before/after comparisons."""
    out: dict[str, tuple[str, bytes | str | None]] = {}
    for here, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(here, name)
            mode = path.lstat().st_mode
            rel = path.relative_to(top).as_posix()
            if stat.S_ISLNK(mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                out[rel] = ("file", path.read_bytes())
            else:
                out[rel] = ("dir" if stat.S_ISDIR(mode) else "other", None)
    return out


def replace(path: Path) -> None:
    """Take away whatever is at path, to put something else there."""
    if path.is_dir() and not path.is_symlink():
        for here, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(here, name))
            for name in dirs:
                p = os.path.join(here, name)
                os.unlink(p) if os.path.islink(p) else os.rmdir(p)
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()
