"""Where commands print: results on stdout, warnings and notes on stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from gen.errors import Problem


class Output:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, fmt: str = "text") -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.fmt = fmt

    def line(self, text: str) -> None:
        print(text, file=self.out)

    def note(self, text: str) -> None:
        print(f"gen: {text}", file=self.err)

    def warn(self, problem: Problem) -> None:
        if self.fmt == "github":
            print(problem.github().replace("::error", "::warning", 1), file=self.out)
            return
        print(str(problem).replace(": error: ", ": warning: ", 1), file=self.err)
