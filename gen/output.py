"""Where commands print: results on stdout, warnings and notes on stderr."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Protocol, TextIO

from gen.errors import Problem, printable


class Output:
    def __init__(
        self, out: TextIO | None = None, err: TextIO | None = None, fmt: str = "text", *, quiet: bool = False
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.fmt = fmt
        self.quiet = quiet  # results and problems only
        # Where the fleet sits in its git repository (`infra/fleet/`), set for github annotations: GitHub names
        # an annotation's file from the repository's top.
        self.prefix = ""

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

    def progress(self, total: int, label: str) -> Bar:
        """A one-line progress bar on stderr for a long fleet operation (a context manager; `update(n)` advances it).

        Shown only on a terminal, for more than one step and unless quiet; it clears its line when done.
        """
        if self.quiet or total <= 1 or not self.err.isatty():
            return _SILENT
        from tqdm import tqdm  # imported for a terminal only: no other command pays for it

        bar: Bar = tqdm(total=total, desc=label, file=self.err, leave=False)
        return bar

    def warn(self, problem: Problem) -> None:
        if self.fmt == "github":
            print(replace(problem, file=self.prefix + problem.file).github("warning"), file=self.out)
            return
        print(str(problem).replace(": error: ", ": warning: ", 1), file=self.err)


class Bar(Protocol):
    """What `Output.progress` gives: tqdm's bar, or one that shows nothing."""

    def __enter__(self) -> Bar: ...
    def __exit__(self, *exc: object) -> object: ...
    def update(self, n: int = 1) -> object: ...


class _Silent:
    """The bar where none is shown: the same calls, doing nothing."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


_SILENT = _Silent()
