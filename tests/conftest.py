"""Shared fixtures: a throwaway fleet repository built from the project's own base/ and examples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
# The tests' own example fleet: the repository's clusters/ is a user's fleet, which any test may not assume.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = sorted(p.stem for p in (FIXTURES / "clusters").glob("*.yaml"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite tests/golden/ from the current rendering instead of comparing.",
    )


def make_fleet(root: Path) -> Path:
    """A fleet repository at root with the project's base/ and the tests' example specs, nothing rendered."""
    root.mkdir(parents=True)
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copytree(FIXTURES / "clusters", root / "clusters")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    return root


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fleet repository with the project's base/ and the tests' example specs, nothing rendered."""
    return make_fleet(tmp_path / "fleet")


@pytest.fixture(scope="session")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' example fleet, rendered once for the whole session: read it, never change it."""
    from click.testing import CliRunner

    from gen.cli import cli

    root = make_fleet(tmp_path_factory.mktemp("examples") / "fleet")
    result = CliRunner().invoke(cli, ["render", "--all", "--root", str(root)])
    assert result.exit_code == 0, result.output
    return root


def write_spec(root: Path, name: str, text: str) -> Path:
    path = root / "clusters" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root by relative path, for before/after comparisons."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
