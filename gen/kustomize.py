"""Running kustomize: the `kustomize` binary when present, else `kubectl kustomize`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gen.errors import ToolError


def command() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    raise ToolError("neither `kustomize` nor `kubectl` (with kustomize built in) is on PATH")


def build(directory: Path, cmd: list[str] | None = None) -> str:
    """The fully built manifests of one kustomization directory."""
    argv = [*(cmd or command()), str(directory)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as e:
        raise ToolError(f"cannot run {argv[0]}: {e}", argv) from None
    if proc.returncode != 0:
        raise ToolError(f"kustomize build of {directory} failed", argv, proc.returncode, proc.stderr)
    return proc.stdout
