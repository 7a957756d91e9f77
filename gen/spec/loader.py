"""Load cluster specs from a fleet repository: positioned YAML → validated models, every problem reported together."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gen import repofs, yamlio
from gen.errors import Problem, SpecError, UsageError, short_repr
from gen.spec.cluster import API_VERSION, Cluster, FieldError
from gen.spec.defaults import DEFAULTS_FILE, Defaults, load_defaults, merge
from gen.spec.units import close_match

CLUSTERS_DIR = "clusters"
M = TypeVar("M", bound=BaseModel)


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
        """Where a field's value (spec key names) was written, in the cluster or the defaults; None for a built-in."""
        if path in self.positions.values:
            return (self.file, *self.positions.values[path])
        if self.defaults is not None and self.defaults.gives(path, self.positions):
            return (self.defaults.file, *self.defaults.doc.values[path])
        return None

    def problem(self, path: yamlio.Path, message: str) -> Problem:
        """A problem of a field, pointed at the best place for it (see `_locate`)."""
        return Problem(*_locate(self.file, self.positions, self.defaults, path), dotted(path), message)


def _locate(
    file: str, doc: yamlio.Positioned, defaults: Defaults | None, path: yamlio.Path, key: bool = False
) -> tuple[str, int, int]:
    """The position of a path (or its closest ancestor): in the defaults when the cluster inherits the value there.

    Anything else (a field missing, a value of the cluster's own) is the cluster's to mend: its own file, so that
    each cluster is named, where one line in the defaults serves every cluster that inherits a bad value.
    """
    if defaults is not None and path not in doc.values and defaults.gives(path, doc):
        file, doc = defaults.file, defaults.doc
    return (file, *((doc.keys.get(path) if key else None) or doc.where(path)))


def spec_files(root: Path) -> dict[str, str]:
    """Every cluster spec's path relative to root, by name (not `_*` files).

    SpecError for a non-regular file, or for x.yaml next to x.yml.
    """
    folder = root / CLUSTERS_DIR
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    found: dict[str, str] = {}
    problems = []
    for entry in entries:
        stem, dot, suffix = entry.name.rpartition(".")
        rel = f"{CLUSTERS_DIR}/{entry.name}"
        if entry.name == "_defaults.yml":  # read by nothing: its defaults would go unnoticed
            problems.append(Problem(rel, 1, 1, "", f"gen reads the fleet's defaults from {DEFAULTS_FILE}: rename it"))
        if not dot or suffix not in ("yaml", "yml") or entry.name.startswith(("_", ".")):
            continue
        # The directory listing's own file type first: a fleet's worth of lstat calls saved.
        if not entry.is_file(follow_symlinks=False):
            kind = repofs.kind_of(entry.stat(follow_symlinks=False).st_mode)
            problems.append(Problem(rel, 1, 1, "", f"{kind}; a cluster spec must be a regular file"))
        elif stem in found:
            why = f"{found[stem]} holds cluster {stem!r} too; keep one of the two files"
            problems.append(Problem(rel, 1, 1, "", why))
        else:
            found[stem] = rel
    if problems:
        raise SpecError(problems)
    return dict(sorted(found.items()))


def load_clusters(
    root: Path, names: Iterable[str] | None = None, files: Mapping[str, str] | None = None
) -> list[LoadedCluster]:
    """Load and validate the named clusters (all when None); raise one SpecError for all problems."""
    loaded, problems = load_each(root, names, files)
    if problems:
        raise SpecError(problems)
    return loaded


def load_each(
    root: Path, names: Iterable[str] | None = None, files: Mapping[str, str] | None = None
) -> tuple[list[LoadedCluster], list[Problem]]:
    """The named clusters (all when None) that load, and the problems of the others, each problem once.

    A defaults file that does not load is the only problem: every cluster is read over it, and without
    it each would report the fields it inherits as missing.
    """
    files = spec_files(root) if files is None else files
    try:
        defaults = load_defaults(root)
    except SpecError as e:
        return [], e.problems
    problems: list[Problem] = []
    loaded: list[LoadedCluster] = []
    for name in choose(files, names):
        rel = files[name]
        try:
            loaded.append(load_text(yamlio.read(root / rel, rel), rel, name, defaults))
        except SpecError as e:
            problems.extend(e.problems)
    # An error inherited from the defaults is the same line for every cluster.
    return loaded, list(dict.fromkeys(problems))


def choose(files: Mapping[str, str], names: Iterable[str] | None) -> list[str]:
    """The named clusters (every one when None), each once; a name without a spec is a UsageError."""
    chosen = list(files) if names is None else list(dict.fromkeys(names))
    unknown = [n for n in chosen if n not in files]
    if not unknown:
        return chosen
    # Cluster names share their prefixes ("lab-"): only a near miss is a suggestion.
    named = [n + (f" (did you mean {m}?)" if (m := close_match(n, list(files), 0.8)) else "") for n in unknown]
    known = ", ".join(files) if len(files) <= MAX_NAMES_LISTED else f"{len(files)} clusters, see gen list"
    raise UsageError(f"unknown cluster(s): {', '.join(named)} (known: {known or 'none'})")


# Past this many, an unknown name's message names no clusters: `gen list` does.
MAX_NAMES_LISTED = 12


def load_text(
    raw: bytes, file: str, expected_name: str | None = None, defaults: Defaults | None = None
) -> LoadedCluster:
    """Parse and validate one spec (over the fleet's defaults); raise SpecError listing each problem."""
    doc = yamlio.load(raw, file)
    problems = []
    meta = doc.data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if expected_name is not None and isinstance(name, str) and name != expected_name:
        message = f"{name!r} must equal the file name {expected_name!r}"
        problems.append(Problem(file, *doc.where(("metadata", "name")), "metadata.name", message))
    data = doc.data if defaults is None else {**doc.data, "spec": merge(defaults.spec, doc.data.get("spec", {}))}
    cluster, found = validate_model(Cluster, yamlio.Positioned(data, doc.values, doc.keys), file, defaults)
    problems.extend(found)
    if problems or cluster is None:
        raise SpecError(problems)
    return LoadedCluster(cluster, file, doc, defaults)


def validate_model(
    model: type[M], doc: yamlio.Positioned, file: str, defaults: Defaults | None = None
) -> tuple[M | None, list[Problem]]:
    """Validate positioned data against a model; problems point into `file` (or the defaults, see `_locate`)."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as e:
        # A document of another gen version is named as such, rather than as a value the apiVersion field refuses.
        version = doc.data.get("apiVersion")
        other = isinstance(version, str) and version != API_VERSION and version.startswith("gen.profiling/")
        found = [
            Problem(*_locate(file, doc, defaults, i.loc, i.kind == "unknown"), dotted(i.loc), i.message)
            for i in issues(model, e)
            if not (other and i.loc == ("apiVersion",))
        ]
    if other:
        message = f"version {version!r} is not supported (this gen reads {API_VERSION})"
        found.insert(0, Problem(file, *doc.where(("apiVersion",)), "apiVersion", message))
    return None, found


class Issue(NamedTuple):
    """One problem in a document: where (keys as written, list indexes), what kind, and gen's message."""

    loc: tuple[Any, ...]
    kind: Literal["missing", "unknown", "invalid"]
    message: str


def dotted(loc: tuple[Any, ...]) -> str:
    """A location as the spec's own dotted path, e.g. `spec.cassandra.tolerations.0.key`."""
    # A key holding a line break or a control character is quoted, so that an error
    # stays one line whatever the document's keys are.
    return ".".join(str(p) if str(p).isprintable() else repr(p) for p in loc)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


def issues(model: type[BaseModel], error: ValidationError) -> list[Issue]:
    """pydantic's errors in gen's words (the messages the negative corpus pins)."""
    out = []
    for e in error.errors(include_url=False):
        loc, kind, value, ctx = tuple(e["loc"]), e["type"], e["input"], e.get("ctx", {})
        if kind == "missing":
            out.append(Issue(loc, "missing", "required field is missing"))
        elif kind == "extra_forbidden":
            out.append(Issue(loc, "unknown", _unknown(model, loc)))
        elif loc[-1:] == ("[key]",):
            out.append(Issue(loc[:-1], "invalid", f"keys must be strings, got {_describe(value)} (quote it)"))
        elif kind in _EXPECTED:
            hint = " (quote it)" if kind == "string_type" and isinstance(value, int | float | bool) else ""
            hint = " (remove the quotes)" if _reads_unquoted(kind, value) else hint
            out.append(Issue(loc, "invalid", f"expected {_EXPECTED[kind]}, got {_describe(value)}{hint}"))
        elif kind == "value_error":
            cause = ctx["error"]
            message = str(cause)
            if isinstance(value, str):  # checks quote the whole value; a huge one must not flood the output
                message = message.replace(repr(value), short_repr(value))
            out.append(Issue((*loc, *cause.loc) if isinstance(cause, FieldError) else loc, "invalid", message))
        else:
            out.append(Issue(loc, "invalid", _bound(kind, ctx, value) or e["msg"]))
    return out


def _bound(kind: str, ctx: dict[str, Any], value: Any) -> str | None:
    """gen's message for a literal, a range or a length; None for any other kind of error."""
    if kind == "literal_error":
        expected = {"True": "true", "False": "false"}.get(ctx["expected"], ctx["expected"])
        return f"must be {'one of ' if ' or ' in expected else ''}{expected}, got {_describe(value)}"
    limit = {"greater_than_equal": ("least", "ge"), "less_than_equal": ("most", "le")}.get(kind)
    if limit:
        return f"must be at {limit[0]} {ctx[limit[1]]}, got {_describe(value)}"
    least = kind.endswith("too_short")
    if least or kind.endswith("too_long"):
        bound = f"must be at {'least' if least else 'most'} {ctx['min_length' if least else 'max_length']}"
        if isinstance(value, str):
            return f"{bound} characters long, got {_describe(value)}"
        return f"{bound} {'entries' if isinstance(value, dict) else 'items'}, got {len(value)}"
    return None


def _reads_unquoted(kind: str, value: Any) -> bool:
    """Whether a quoted string is what was expected once its quotes are gone ("49" for a number)."""
    if not isinstance(value, str) or kind not in ("int_type", "float_type", "bool_type"):
        return False
    if kind == "bool_type":
        return value in ("true", "false")
    try:
        (int if kind == "int_type" else float)(value)
    except ValueError:
        return False
    return True


def _describe(value: Any) -> str:
    """A value as an error message names it, e.g. `number 5` or `string 'x'`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {short_repr(value)}"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _unknown(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    allowed = _keys_at(model, loc[:-1])
    hint = close_match(str(loc[-1]), allowed)
    if hint:
        return f"unknown field; did you mean {hint!r}?"
    # A key indented a level or two too far is a field of a mapping further up its path.
    for depth in range(len(loc) - 2, max(len(loc) - 4, -1), -1):
        try:
            above = _keys_at(model, loc[:depth])
        except (AttributeError, StopIteration):  # a list or a free mapping on the way: no fields
            continue
        if loc[-1] in above:
            where = dotted(loc[:depth]) or "the top level"
            return f"unknown field here; {loc[-1]!r} belongs in {where} (indented too far?)"
    return f"unknown field (allowed: {', '.join(allowed)})"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys of the model that `loc` (a path of keys and list indexes) leads to."""
    tp: Any = model
    for part in (*loc, None):
        while get_origin(tp) in (Annotated, Union, UnionType):  # `X | None` and constrained types: X
            tp = next(a for a in get_args(tp) if a is not NoneType)
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            tp = next(f.annotation for f in tp.model_fields.values() if f.alias == part)
        else:  # a list's item or a mapping's value
            tp = get_args(tp)[-1]
    return [f.alias or name for name, f in tp.model_fields.items()]
