"""The one error family of gen, and the exit codes it maps to."""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FINDINGS = 1  # drift, or invalid output found
EXIT_USAGE = 2  # bad input or usage
EXIT_TOOL = 3  # an external tool is missing or failed
EXIT_UNEXPECTED = 4  # a bug in gen: one line, and --debug for the traceback
EXIT_ENVIRONMENT = 5  # the file system refused (read-only, full, a file where a directory must be)
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports a process ended by SIGINT

# Control characters (and Unicode line breaks) in a printed line would let a file name
# start a line of its own, such as a forged CI annotation: they are shown escaped.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Text for one output line: every control character and line break escaped as in a Python literal."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


def github_data(text: str) -> str:
    """The message of a GitHub workflow command, escaped as the runner decodes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_command(kind: str, message: str, **properties: object) -> str:
    """`::kind prop=value,...::message`, every part escaped: no value can end the line or the command."""
    # A property value (file=, line=) also escapes the separators of the property list.
    props = ",".join(
        f"{k}={github_data(str(v)).replace(':', '%3A').replace(',', '%2C')}" for k, v in properties.items()
    )
    return f"::{kind} {props}::{github_data(message)}" if props else f"::{kind}::{github_data(message)}"


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
        return printable(f"{self.file}:{self.line}:{self.col}: error: {where}{self.message}")

    def github(self, kind: str = "error") -> str:
        """The problem as a GitHub annotation (`kind`: error or warning)."""
        message = f"{self.field + ': ' if self.field else ''}{self.message}"
        return github_command(kind, message, file=self.file, line=self.line, col=self.col)


def short_repr(value: str, limit: int = 60) -> str:
    """repr() of a value for an error line, cut short so that a huge value cannot flood the output."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


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


def describe_os_error(error: OSError) -> str:
    """`path: cause` for a refusal of the file system, in words a user can act on."""
    cause = error.strerror or str(error)
    if error.errno == errno.EISDIR:
        cause = "a directory where a file is expected"
    if error.filename is None:
        return printable(cause)
    where = os.fsdecode(error.filename)
    if error.errno == errno.ENOTDIR:
        # The path named is below the culprit: name the file that stands where a directory must be.
        here, parent = where, os.path.dirname(where)
        while parent and parent != here and not os.path.isdir(parent):
            if os.path.lexists(parent):
                return printable(f"{parent}: is a file where a directory is expected")
            here, parent = parent, os.path.dirname(parent)
        cause = "a file where a directory is expected"
    if error.filename2 is not None:
        where += f" -> {os.fsdecode(error.filename2)}"
    return printable(f"{where}: {cause}")


class LockError(GenError):
    """Another gen process is writing to the same repository."""
