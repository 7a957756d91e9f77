"""Shared fixtures: a throwaway fleet repository built from the project's own base/ and examples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
EXAMPLES = sorted(p.stem for p in (PROJECT / "clusters").glob("*.yaml") if not p.name.startswith("_"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite tests/golden/ from the current rendering instead of comparing.",
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fleet repository with the project's base/ and example specs, nothing rendered."""
    root = tmp_path / "fleet"
    root.mkdir()
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copytree(PROJECT / "clusters", root / "clusters")
    shutil.copy(PROJECT / "fleet.yaml", root / "fleet.yaml")
    return root


def write_spec(root: Path, name: str, text: str) -> Path:
    path = root / "clusters" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, for before/after comparisons."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
