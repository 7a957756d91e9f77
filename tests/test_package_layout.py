"""The package follows the pipeline: each stage imports only the stages before it, and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT

PACKAGE = PROJECT / "gen"
# The stages in pipeline order; a stage may import the shared modules and the stages before it.
STAGES = ["spec", "components", "render", "validate", "review", "commands"]
SHARED = {"gen.errors", "gen.output", "gen.yamlio", "gen.repofs"}


def _module(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the gen modules it imports at module level (imports inside functions are deferred on purpose)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gen":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in STAGES else None


def test_no_import_cycle() -> None:
    graph = _imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            assert state.get(dep) != 1, " -> ".join([*path, module, dep])
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_each_stage_imports_only_the_stages_before_it() -> None:
    for module, deps in _imports().items():
        stage = _stage(module)
        if stage is None:
            continue
        allowed = set(STAGES[: STAGES.index(stage) + 1])
        for dep in deps:
            dep_stage = _stage(dep)
            assert dep_stage in allowed or dep in SHARED or dep == "gen", f"{module} imports {dep}"
