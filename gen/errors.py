"""The one error family of gen, and the exit codes it maps to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FINDINGS = 1  # drift, or invalid output found
EXIT_USAGE = 2  # bad input or usage
EXIT_TOOL = 3  # an external tool is missing or failed
EXIT_UNEXPECTED = 4  # a bug in gen: one line, and --debug for the traceback


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one input file, printed as `file:line:col: error: field: message`."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.file}:{self.line}:{self.col}: error: {where}{self.message}"

    def github(self) -> str:
        return (
            f"::error file={self.file},line={self.line},col={self.col}::"
            f"{self.field + ': ' if self.field else ''}{self.message}"
        )


def short_repr(value: str, limit: int = 60) -> str:
    """repr() of a value for an error line, cut short so that a huge value cannot flood the output."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


class GenError(Exception):
    """Root of every error gen reports to its user."""

    exit_code = EXIT_USAGE

    def lines(self) -> list[str]:
        return [f"error: {self}"]


class SpecError(GenError):
    """One or more problems in the input files; all of them, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the cluster specs")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def __reduce__(self) -> tuple[type[SpecError], tuple[list[Problem]], dict[str, object]]:
        # Pickled (from a render worker) by its problems: the default would rebuild it
        # from its message, as if the message were the list of problems.
        return (SpecError, (self.problems,), self.__dict__)


class UsageError(GenError):
    """The command line asks for something that cannot be done."""


class ToolError(GenError):
    """An external program is missing or failed."""

    exit_code = EXIT_TOOL

    def __init__(self, message: str, command: Sequence[str] = (), code: int | None = None, stderr: str = "") -> None:
        self.command = list(command)
        self.code = code
        self.stderr = stderr
        super().__init__(message)

    def lines(self) -> list[str]:
        out = [f"error: {self}"]
        if self.command:
            out.append(f"  command: {' '.join(self.command)}")
        if self.code is not None:
            out.append(f"  exit code: {self.code}")
        out.extend(f"  {line}" for line in self.stderr.rstrip().splitlines())
        return out


class LockError(GenError):
    """Another gen process is writing to the same repository."""
