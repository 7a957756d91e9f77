"""The `base/` this gen renders against: shipped in the package, written into the fleet by a full render."""

from __future__ import annotations

from functools import cache
from importlib import resources

BASE_DIR = "base"


@cache
def base_files() -> dict[str, str]:
    """Every file of base/ by path relative to the repository root."""
    top = resources.files("gen") / "resources" / BASE_DIR
    return {
        f"{BASE_DIR}/{component.name}/{entry.name}": entry.read_text(encoding="utf-8")
        for component in sorted(top.iterdir(), key=lambda c: c.name)
        if component.is_dir()
        for entry in sorted(component.iterdir(), key=lambda e: e.name)
        if entry.is_file()
    }
