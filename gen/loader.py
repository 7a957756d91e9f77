"""Load cluster specs from a fleet repository: positioned YAML → validated models.

Every problem in every file is collected and reported together as
`clusters/x.yaml:LINE:COL: error: field.path: message`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gen import units, yamlio
from gen.defaults import Defaults, load_defaults, merge
from gen.errors import Problem, SpecError, UsageError
from gen.spec import API_VERSION, Cluster

CLUSTERS_DIR = "clusters"


@dataclass(frozen=True)
class LoadedCluster:
    """A validated spec, the file it came from, and where each of its values sits."""

    cluster: Cluster
    file: str  # relative to the repository root, with forward slashes
    positions: yamlio.Positioned
    defaults: Defaults | None = None

    @property
    def name(self) -> str:
        return self.cluster.name

    def origin(self, path: yamlio.Path) -> tuple[str, int, int] | None:
        """Where a field's value was written (file, line, column), or None for a built-in default.

        `path` uses the spec's own key names, e.g. ("spec", "server", "port"). A value
        inherited from clusters/_defaults.yaml points at that file.
        """
        if path in self.positions.values:
            line, col = self.positions.values[path]
            return self.file, line, col
        if self.defaults is not None and path in self.defaults.doc.values:
            line, col = self.defaults.doc.values[path]
            return self.defaults.file, line, col
        return None

    def locate(self, path: yamlio.Path) -> tuple[str, int, int]:
        """The best place to point at for a path: see `_locate`."""
        return _locate(self.file, self.positions, self.defaults, path)


def _locate(
    file: str, doc: yamlio.Positioned, defaults: Defaults | None, path: yamlio.Path, key: bool = False
) -> tuple[str, int, int]:
    """The file and position of a path, or of its closest ancestor, in the cluster or the defaults.

    The file that holds the longer part of the path wins, so an error in a value
    inherited from the defaults points at the defaults file.
    """

    def depth(values: dict[yamlio.Path, tuple[int, int]]) -> int:
        return next((n for n in range(len(path), -1, -1) if path[:n] in values), -1)

    if defaults is not None and depth(defaults.doc.values) > depth(doc.values):
        file, doc = defaults.file, defaults.doc
    return (file, *(doc.key_where(path) if key else doc.where(path)))


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
    try:
        defaults = load_defaults(root)
    except SpecError as e:
        problems.extend(e.problems)
        defaults = None
    for name in chosen:
        path = files[name]
        rel = path.relative_to(root).as_posix()
        try:
            loaded.append(load_text(yamlio.read(path, rel), rel, name, defaults))
        except SpecError as e:
            problems.extend(e.problems)
    if problems:
        # An error inherited from the defaults is the same line for every cluster.
        raise SpecError(list(dict.fromkeys(problems)))
    return loaded


def load_text(
    raw: bytes, file: str, expected_name: str | None = None, defaults: Defaults | None = None
) -> LoadedCluster:
    """Parse and validate one spec (over the fleet's defaults); raise SpecError listing each problem."""
    doc = yamlio.load(raw, file)
    problems = _header_problems(doc, file)
    meta = doc.data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if expected_name is not None and isinstance(name, str) and name != expected_name:
        line, col = doc.where(("metadata", "name"))
        problems.append(
            Problem(file, line, col, "metadata.name", f"{name!r} must equal the file name {expected_name!r}")
        )
    merged = doc
    if defaults is not None and isinstance(doc.data.get("spec", {}), dict):
        data = {**doc.data, "spec": merge(defaults.spec, doc.data.get("spec", {}))}
        merged = yamlio.Positioned(data, doc.values, doc.keys)

    def locate(path: yamlio.Path, key: bool) -> tuple[str, int, int]:
        return _locate(file, doc, defaults, path, key)

    cluster, found = validate_model(Cluster, merged, file, locate)
    problems.extend(found)
    if problems or cluster is None:
        raise SpecError(problems)
    return LoadedCluster(cluster, file, doc, defaults)


M = TypeVar("M", bound=BaseModel)


# (field path, whether to point at its key rather than its value) → (file, line, column)
Locate = Callable[[yamlio.Path, bool], tuple[str, int, int]]


def validate_model(
    model: type[M], doc: yamlio.Positioned, file: str, locate: Locate | None = None
) -> tuple[M | None, list[Problem]]:
    """Validate positioned data against a model; problems carry file, line and column.

    `locate` maps a field path to the file and position to report (default: `doc` in `file`).
    """
    try:
        return model.model_validate(doc.data), []
    except ValidationError as e:
        return None, _problems(e, locate or (lambda p, key: _locate(file, doc, None, p, key)), model)


def _header_problems(doc: yamlio.Positioned, file: str) -> list[Problem]:
    # apiVersion gets its own message so that a spec of another version is named as such.
    value = doc.data.get("apiVersion")
    if isinstance(value, str) and value != API_VERSION and value.startswith("gen.profiling/"):
        line, col = doc.where(("apiVersion",))
        return [
            Problem(file, line, col, "apiVersion", f"version {value!r} is not supported (this gen reads {API_VERSION})")
        ]
    return []


def _problems(error: ValidationError, locate: Locate, root: type[BaseModel]) -> list[Problem]:
    out = []
    for item in error.errors():
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "literal_error" and loc == ("apiVersion",) and "gen.profiling/" in str(item.get("input", "")):
            continue  # reported by _header_problems
        # A key holding a line break or a control character is quoted, so that the
        # problem stays one line whatever the spec's keys are.
        field = ".".join(str(p) if str(p).isprintable() else repr(p) for p in loc)
        if kind == "extra_forbidden":
            out.append(Problem(*locate(loc, True), field, _unknown_key(root, loc)))
        elif kind == "missing":
            out.append(Problem(*locate(loc, False), field, "required field is missing"))
        else:
            out.append(Problem(*locate(loc, False), field, _message(item)))
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
    if isinstance(given, str):
        # Validators quote the whole value; a huge one must not flood the output.
        msg = msg.replace(repr(given), yamlio.short_repr(given))
    return msg


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {yamlio.short_repr(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
