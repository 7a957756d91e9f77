"""`gen list`, `gen check` and `gen render` give one answer to "is this cluster in sync", whatever was edited."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import write_spec
from tests.git_fixtures import edit, gen, rendered_repo


def _cluster_of(path: str) -> str | None:
    parts = path.split("/")
    if parts[0] == "overlays":
        return parts[1]
    if path.startswith("argocd/applications/"):
        return Path(path).stem
    return None  # a fleet-wide file


def _listed_stale(root: Path) -> set[str]:
    result = gen("list", "--format", "json", "--root", str(root))
    assert result.exit_code == 0, result.output
    return {row["name"] for row in json.loads(result.stdout) if row["status"] != "in sync"}


def _checked_stale(root: Path) -> set[str]:
    result = gen("check", "--root", str(root))
    assert result.exit_code in {0, 1}, result.output
    return {name for name in re.findall(r"\(run: gen render (\S+)\)$", result.stdout, re.MULTILINE)} - {"--all"}


def _rendered(root: Path) -> set[str]:
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 0, result.output
    written = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if " cluster(s) up to date" not in line]
    return {name for path in written if (name := _cluster_of(path)) is not None}


def _append(path: Path) -> None:
    path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")


DEFAULTS = "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  server:\n    retention: 48h\n"
EDITS: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "an Application": (lambda root: _append(root / "argocd/applications/lab-minimal.yaml"), {"lab-minimal"}),
    "an overlay file": (lambda root: _append(root / "overlays/lab-tuned/kustomization.yaml"), {"lab-tuned"}),
    "a file added to an overlay": (
        lambda root: (root / "overlays/lab-third/notes.txt").write_text("mine\n", encoding="utf-8"),
        {"lab-third"},
    ),
    # lab-tuned sets its own retention: only the other two inherit the new one.
    "the defaults": (lambda root: write_spec(root, "_defaults", DEFAULTS), {"lab-minimal", "lab-third"}),
    "a spec": (lambda root: edit(root / "clusters/lab-tuned.yaml", "port: 4100", "port: 4101"), {"lab-tuned"}),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_list_check_and_render_agree_on_every_cluster(fleet: Path, what: str) -> None:
    minimal = (fleet / "clusters/lab-minimal.yaml").read_text(encoding="utf-8")
    write_spec(
        fleet,
        "lab-third",
        minimal.replace("lab-minimal", "lab-third")
        .replace("10.0.1.10", "10.0.1.30")
        .replace("server: https://kubernetes.default.svc", "name: lab-third"),
    )
    root = rendered_repo(fleet)
    assert _listed_stale(root) == _checked_stale(root) == set()

    change, expected = EDITS[what]
    change(root)
    assert _listed_stale(root) == expected
    assert _checked_stale(root) == expected
    assert _rendered(root) == expected
    # Once rendered, all three say in sync.
    assert _listed_stale(root) == _checked_stale(root) == _rendered(root) == set()
