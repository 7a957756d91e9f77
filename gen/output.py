"""Where commands print: results on stdout, warnings and notes on stderr."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from gen.errors import Problem, printable


class Output:
    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, fmt: str = "text", *, quiet: bool = False
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.fmt = fmt
        self.quiet = quiet  # results and problems only

    def line(self, text: str) -> None:
        """A result: a finding, a table row, a diff."""
        print(text, file=self.out)

    def detail(self, text: str) -> None:
        """What a command did (a file written), on stdout unless quiet."""
        if not self.quiet:
            print(text, file=self.out)

    def note(self, text: str) -> None:
        """A summary or a remark, on stderr unless quiet."""
        if not self.quiet:
            print(f"gen: {printable(text)}", file=self.err)

    def progress(self, total: int, label: str) -> Progress:
        return Progress(self.err, 0 if self.quiet else total, label)

    def warn(self, problem: Problem) -> None:
        if self.fmt == "github":
            print(problem.github("warning"), file=self.out)
            return
        print(str(problem).replace(": error: ", ": warning: ", 1), file=self.err)


class Progress:
    """A one-line progress bar on stderr for long fleet operations; silent when stderr is not a terminal."""

    WIDTH = 30

    def __init__(self, err: TextIO, total: int, label: str) -> None:
        self.err, self.total, self.label = err, total, label
        self.done = 0
        self.enabled = total > 1 and err.isatty()
        self._shown = -1
        self._lock = threading.Lock()  # validate advances it from worker threads

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if not self.enabled:
                return
            filled = self.WIDTH * self.done // self.total
            if filled == self._shown and self.done < self.total:
                return  # redraw only when the bar moves
            self._shown = filled
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.err.write(f"\r{self.label} [{bar}] {self.done}/{self.total}")
            self.err.flush()

    def close(self) -> None:
        if self.enabled and self._shown >= 0:
            self.err.write("\r\x1b[2K")
            self.err.flush()
