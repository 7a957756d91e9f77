"""Load cluster specs from a fleet repository: positioned YAML → validated models.

Every problem in every file is collected and reported together as
`clusters/x.yaml:LINE:COL: error: field.path: message`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gen import units, yamlio
from gen.errors import Problem, SpecError, UsageError
from gen.spec import API_VERSION, Cluster

CLUSTERS_DIR = "clusters"


@dataclass(frozen=True)
class LoadedCluster:
    """A validated spec, the file it came from, and where each of its values sits."""

    cluster: Cluster
    file: str  # relative to the repository root, with forward slashes
    positions: yamlio.Positioned

    @property
    def name(self) -> str:
        return self.cluster.name

    def origin(self, path: tuple[str | int, ...]) -> tuple[str, int, int] | None:
        """Where a field's value was written (file, line, column), or None for a built-in default.

        `path` uses the spec's own key names, e.g. ("spec", "server", "port").
        """
        if path in self.positions.values:
            line, col = self.positions.values[path]
            return self.file, line, col
        return None


def spec_files(root: Path) -> dict[str, Path]:
    """Every cluster spec of the repository by cluster name (files starting with `_` are not clusters)."""
    folder = root / CLUSTERS_DIR
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        if path.suffix in (".yaml", ".yml") and not path.name.startswith(("_", ".")) and path.is_file():
            found[path.stem] = path
    return dict(sorted(found.items()))


def load_clusters(root: Path, names: Iterable[str] | None = None) -> list[LoadedCluster]:
    """Load and validate the named clusters (all when None); raise one SpecError for all problems."""
    files = spec_files(root)
    if names is None:
        chosen = list(files)
    else:
        chosen = list(dict.fromkeys(names))
        unknown = [n for n in chosen if n not in files]
        if unknown:
            known = ", ".join(files) or "none"
            raise UsageError(f"unknown cluster(s): {', '.join(unknown)} (known: {known})")
    problems: list[Problem] = []
    loaded: list[LoadedCluster] = []
    for name in chosen:
        path = files[name]
        rel = path.relative_to(root).as_posix()
        try:
            loaded.append(load_text(path.read_bytes(), rel, name))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        raise SpecError(problems)
    return loaded


def load_text(raw: bytes, file: str, expected_name: str | None = None) -> LoadedCluster:
    """Parse and validate one spec; raise SpecError listing each of its problems."""
    doc = yamlio.load(raw, file)
    problems = _header_problems(doc, file)
    meta = doc.data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if expected_name is not None and isinstance(name, str) and name != expected_name:
        line, col = doc.where(("metadata", "name"))
        problems.append(
            Problem(file, line, col, "metadata.name", f"{name!r} must equal the file name {expected_name!r}")
        )
    cluster, found = validate_model(Cluster, doc, file)
    problems.extend(found)
    if problems or cluster is None:
        raise SpecError(problems)
    return LoadedCluster(cluster, file, doc)


M = TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], doc: yamlio.Positioned, file: str) -> tuple[M | None, list[Problem]]:
    """Validate positioned data against a model; problems carry file, line and column."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as e:
        return None, _problems(e, doc, file, model)


def _header_problems(doc: yamlio.Positioned, file: str) -> list[Problem]:
    # apiVersion gets its own message so that a spec of another version is named as such.
    value = doc.data.get("apiVersion")
    if isinstance(value, str) and value != API_VERSION and value.startswith("gen.profiling/"):
        line, col = doc.where(("apiVersion",))
        return [
            Problem(file, line, col, "apiVersion", f"version {value!r} is not supported (this gen reads {API_VERSION})")
        ]
    return []


def _problems(error: ValidationError, doc: yamlio.Positioned, file: str, root: type[BaseModel]) -> list[Problem]:
    out = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "literal_error" and loc == ("apiVersion",) and "gen.profiling/" in str(item.get("input", "")):
            continue  # reported by _header_problems
        field = ".".join(str(p) for p in loc)
        if kind == "extra_forbidden":
            line, col = doc.key_where(loc)
            out.append(Problem(file, line, col, field, _unknown_key(root, loc)))
            continue
        if kind == "missing":
            line, col = doc.where(loc)
            out.append(Problem(file, line, col, field, "required field is missing"))
            continue
        line, col = doc.where(loc)
        out.append(Problem(file, line, col, field, _message(item)))
    return out


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    allowed = _allowed_keys(root, loc[:-1])
    key = str(loc[-1])
    hint = units.close_match(key, allowed) if allowed else None
    msg = "unknown field"
    if hint:
        msg += f"; did you mean {hint!r}?"
    elif allowed:
        msg += f" (allowed: {', '.join(allowed)})"
    return msg


def _allowed_keys(model: Any, path: tuple[Any, ...]) -> list[str]:
    import typing

    current = model
    for part in path:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        if part not in fields:
            return []
        ann = fields[part].annotation
        candidates = [a for a in (ann, *typing.get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)]
        for a in typing.get_args(ann):
            candidates += [x for x in typing.get_args(a) if isinstance(x, type) and issubclass(x, BaseModel)]
        if not candidates:
            return []
        current = candidates[0]
    return [f.alias or n for n, f in current.model_fields.items()]


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "float_type": "a number",
}


def _message(item: Any) -> str:
    kind = item["type"]
    given = item.get("input")
    if kind in _TYPE_NAMES:
        hint = " (quote it)" if kind == "string_type" and isinstance(given, int | float | bool) else ""
        return f"expected {_TYPE_NAMES[kind]}, got {_describe(given)}{hint}"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, got {_describe(given)}"
    ctx = item.get("ctx", {})
    bounds = {
        "less_than_equal": "must be at most {le}",
        "greater_than_equal": "must be at least {ge}",
        "string_too_long": "must be at most {max_length} characters long",
        "string_too_short": "must be at least {min_length} character(s) long",
    }
    if kind in bounds:
        return bounds[kind].format(**ctx) + f", got {_describe(given)}"
    msg = str(item["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
