"""Strict, typed models of gen's input files: validation that reports every problem, and a JSON Schema.

A model is a frozen dataclass whose annotations say what each key may hold::

    class Server(Model):
        port: Annotated[int, Range(ge=1024, le=65535)] = 4040

A key is the camelCase form of its attribute (or the name an `Alias` gives),
unknown keys are refused, and types are checked strictly: there is no
coercion, so `"4040"` is not a port and `1` is not `true`. Each model is
compiled once, on first use, into plain closures.

gen's models need only this much. A general validation library costs about
0.15 s of import and model building at the start of every command, which at
fleet scale is more than rendering a hundred clusters.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, dataclass_transform

from gen.errors import GenError, short_repr

Loc = tuple[Any, ...]  # keys (as written) and list indexes from the document root


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where it is, what kind, and a message for a person."""

    loc: Loc
    kind: Literal["missing", "unknown", "invalid"]
    message: str


class InvalidError(GenError):
    """A document did not fit its model; `issues` lists every problem found, in document order.

    The loaders turn it into a SpecError that points at the lines of the file.
    """

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("; ".join(f"{dotted(i.loc)}: {i.message}" for i in issues))
        self.issues = issues


# ------------------------------------------------------------------ field metadata


@dataclass(frozen=True)
class Alias:
    """The key of a field when it is not the camelCase of the attribute (e.g. repoURL)."""

    key: str


@dataclass(frozen=True)
class Range:
    ge: int | None = None
    le: int | None = None


@dataclass(frozen=True)
class Length:
    """Bounds on the characters of a string or the items of a list."""

    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Pattern:
    """A regular expression the whole string must match; also written into the JSON Schema."""

    regex: str
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.regex))

    def matches(self, value: str) -> bool:
        compiled: re.Pattern[str] = self.__dict__["_compiled"]
        # fullmatch: `$` alone would let a trailing line break through.
        return compiled.fullmatch(value) is not None


@dataclass(frozen=True)
class Check:
    """A function run on the typed value: it returns the value to keep or raises ValueError(message)."""

    func: Callable[[Any], Any]


@dataclass(frozen=True)
class Before:
    """Like Check, but run on the raw value before its type is checked."""

    func: Callable[[Any], Any]


class FieldError(ValueError):
    """Raised by a whole-model check to blame one field (`loc`, relative to the model) rather than the model."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def after(method: Callable[[M], None]) -> Callable[[M], None]:
    """Mark a model method as a whole-model check, run once every field is valid; it raises ValueError."""
    method.__dict__["_gen_after"] = True
    return method


# ------------------------------------------------------------------ models


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field,))
class Model:
    """Base of every model: subclasses become frozen, keyword-only dataclasses."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)


M = TypeVar("M", bound=Model)


def parse(model: type[M], data: Any) -> M:
    """`data` as an instance of `model`; raise InvalidError listing every problem."""
    issues: list[Issue] = []
    value = _compiled(model).validate(data, (), issues)
    if issues:
        raise InvalidError(issues)
    return typing.cast(M, value)


def dump(value: Any, exclude_none: bool = False) -> Any:
    """A model as plain data under its document keys (the inverse of `parse`)."""
    if isinstance(value, Model):
        out = {}
        for f in _compiled(type(value)).fields:
            item = getattr(value, f.attr)
            if not (exclude_none and item is None):
                out[f.key] = dump(item, exclude_none)
        return out
    if isinstance(value, list):
        return [dump(v, exclude_none) for v in value]
    if isinstance(value, dict):
        return {k: dump(v, exclude_none) for k, v in value.items()}
    return value


def dotted(loc: Loc) -> str:
    """A location as the spec's own dotted path, e.g. `spec.cassandra.tolerations.0.key`."""
    # A key holding a line break or a control character is quoted, so that an error
    # stays one line whatever the document's keys are.
    return ".".join(str(p) if str(p).isprintable() else repr(p) for p in loc)


# ------------------------------------------------------------------ messages

_FAIL: Any = object()  # what a validator returns after recording an issue

_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
_JSON_TYPES: dict[type, str] = {str: "string", int: "integer", bool: "boolean", float: "number"}


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
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _expected(what: str, value: Any) -> str:
    hint = " (quote it)" if what == "a string" and isinstance(value, int | float | bool) else ""
    return f"expected {what}, got {_describe(value)}{hint}"


def _refused(error: ValueError, value: Any) -> str:
    message = str(error)
    if isinstance(value, str):
        # Checks quote the whole value; a huge one must not flood the output.
        message = message.replace(repr(value), short_repr(value))
    return message


def _one_of(choices: tuple[Any, ...]) -> str:
    shown = [str(c).lower() if isinstance(c, bool) else repr(c) for c in choices]
    return shown[0] if len(shown) == 1 else f"one of {', '.join(shown[:-1])} or {shown[-1]}"


# ------------------------------------------------------------------ compiling

Validator = Callable[[Any, Loc, list[Issue]], Any]


@dataclass(frozen=True)
class _Field:
    attr: str
    key: str
    type: Any
    validate: Validator
    required: bool
    default: Any
    factory: Callable[[], Any] | None


@dataclass
class _Compiled:
    model: type[Model]
    fields: list[_Field] = dataclasses.field(default_factory=list)
    by_key: dict[str, _Field] = dataclasses.field(default_factory=dict)
    checks: list[Callable[[Any], None]] = dataclasses.field(default_factory=list)

    def validate(self, value: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(value, dict):
            issues.append(Issue(loc, "invalid", _expected("a mapping", value)))
            return _FAIL
        before = len(issues)
        values: dict[str, Any] = {}
        for f in self.fields:
            if f.key in value:
                values[f.attr] = f.validate(value[f.key], (*loc, f.key), issues)
            elif f.required:
                issues.append(Issue((*loc, f.key), "missing", "required field is missing"))
            else:
                values[f.attr] = f.factory() if f.factory is not None else f.default
        for key in value:
            if key not in self.by_key:
                issues.append(Issue((*loc, key), "unknown", self._unknown(key)))
        if len(issues) > before:
            return _FAIL
        # Every value is checked: build the frozen instance without re-running __init__.
        obj = object.__new__(self.model)
        obj.__dict__.update(values)
        for check in self.checks:
            try:
                check(obj)
            except FieldError as e:
                issues.append(Issue((*loc, *e.loc), "invalid", str(e)))
                return _FAIL
            except ValueError as e:
                issues.append(Issue(loc, "invalid", str(e)))
                return _FAIL
        return obj

    def _unknown(self, key: Any) -> str:
        from gen.units import close_match

        allowed = list(self.by_key)
        hint = close_match(str(key), allowed)
        if hint:
            return f"unknown field; did you mean {hint!r}?"
        return f"unknown field (allowed: {', '.join(allowed)})"


_CACHE: dict[type[Model], _Compiled] = {}


def _compiled(model: type[Model]) -> _Compiled:
    found = _CACHE.get(model)
    if found is None:
        # Registered before its fields are compiled, so that a model may refer to itself.
        found = _CACHE[model] = _Compiled(model)
        hints = typing.get_type_hints(model, include_extras=True)
        for f in dataclasses.fields(typing.cast(Any, model)):
            tp = hints[f.name]
            alias = next((m.key for m in _metadata(tp) if isinstance(m, Alias)), None)
            factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
            required = f.default is dataclasses.MISSING and factory is None
            field = _Field(f.name, alias or _camel(f.name), tp, _validator(tp), required, f.default, factory)
            found.fields.append(field)
            found.by_key[field.key] = field
        found.checks = [m for m in _members(model) if getattr(m, "_gen_after", False)]
    return found


def _members(model: type[Model]) -> Iterator[Callable[[Any], None]]:
    seen: set[str] = set()
    for klass in reversed(model.__mro__):
        for name, member in vars(klass).items():
            if callable(member) and name not in seen:
                seen.add(name)
                yield member


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


def _metadata(tp: Any) -> list[Any]:
    return list(tp.__metadata__) if typing.get_origin(tp) is typing.Annotated else []


def _optional(tp: Any) -> Any | None:
    """X for `X | None`, else None."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
        raise TypeError(f"unions other than X | None are not supported: {tp}")
    return None


def _validator(tp: Any) -> Validator:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _annotated(typing.get_args(tp)[0], tp.__metadata__)
    inner = _optional(tp)
    if inner is not None:
        check = _validator(inner)
        return lambda v, loc, issues: None if v is None else check(v, loc, issues)
    if tp is Any:
        return lambda v, loc, issues: v
    if origin is Literal:
        return _literal(typing.get_args(tp))
    if origin is list:
        return _list(_validator(typing.get_args(tp)[0]))
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        if key_type is not str:
            raise TypeError(f"mapping keys must be strings: {tp}")
        return _dict(_validator(value_type))
    if isinstance(tp, type) and issubclass(tp, Model):
        return lambda v, loc, issues: _compiled(tp).validate(v, loc, issues)
    if tp in _TYPE_NAMES:
        return _scalar(tp)
    raise TypeError(f"no validator for {tp!r}")


def _scalar(tp: type) -> Validator:
    what = _TYPE_NAMES[tp]
    # bool is an int in Python, but never in a spec.
    if tp is int:
        ok: Callable[[Any], bool] = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    elif tp is float:
        ok = lambda v: isinstance(v, int | float) and not isinstance(v, bool)  # noqa: E731
    else:
        ok = lambda v: isinstance(v, tp)  # noqa: E731

    def validate(v: Any, loc: Loc, issues: list[Issue]) -> Any:
        if ok(v):
            return v
        issues.append(Issue(loc, "invalid", _expected(what, v)))
        return _FAIL

    return validate


def _literal(choices: tuple[Any, ...]) -> Validator:
    allowed = {(type(c), c) for c in choices}
    shown = _one_of(choices)

    def validate(v: Any, loc: Loc, issues: list[Issue]) -> Any:
        try:
            if (type(v), v) in allowed:
                return v
        except TypeError:  # an unhashable value (a list or a mapping)
            pass
        issues.append(Issue(loc, "invalid", f"must be {shown}, got {_describe(v)}"))
        return _FAIL

    return validate


def _list(item: Validator) -> Validator:
    def validate(v: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(v, list):
            issues.append(Issue(loc, "invalid", _expected("a list", v)))
            return _FAIL
        return [item(x, (*loc, i), issues) for i, x in enumerate(v)]

    return validate


def _dict(value: Validator) -> Validator:
    def validate(v: Any, loc: Loc, issues: list[Issue]) -> Any:
        if not isinstance(v, dict):
            issues.append(Issue(loc, "invalid", _expected("a mapping", v)))
            return _FAIL
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                issues.append(Issue((*loc, k), "invalid", f"keys must be strings, got {_describe(k)} (quote it)"))
                continue
            out[k] = value(x, (*loc, k), issues)
        return out

    return validate


def _annotated(base: Any, metadata: tuple[Any, ...]) -> Validator:
    inner = _validator(base)
    befores = [m.func for m in metadata if isinstance(m, Before)]
    steps = [m for m in metadata if isinstance(m, Range | Length | Pattern | Check)]

    def validate(v: Any, loc: Loc, issues: list[Issue]) -> Any:
        for func in befores:
            try:
                v = func(v)
            except ValueError as e:
                issues.append(Issue(loc, "invalid", _refused(e, v)))
                return _FAIL
        mark = len(issues)
        v = inner(v, loc, issues)
        if v is _FAIL or len(issues) > mark:
            return _FAIL
        for step in steps:
            message = None
            if isinstance(step, Check):
                try:
                    v = step.func(v)
                except ValueError as e:
                    message = _refused(e, v)
            elif v is not None:
                message = _bounds(step, v)
            if message is not None:
                issues.append(Issue(loc, "invalid", message))
                return _FAIL
        return v

    return validate


def _bounds(step: Range | Length | Pattern, v: Any) -> str | None:
    if isinstance(step, Range):
        if step.ge is not None and v < step.ge:
            return f"must be at least {step.ge}, got {_describe(v)}"
        if step.le is not None and v > step.le:
            return f"must be at most {step.le}, got {_describe(v)}"
    elif isinstance(step, Length):
        unit = "characters long" if isinstance(v, str) else "entries" if isinstance(v, dict) else "items"
        got = _describe(v) if isinstance(v, str) else f"{len(v)}"
        if step.min is not None and len(v) < step.min:
            return f"must be at least {step.min} {unit}, got {got}"
        if step.max is not None and len(v) > step.max:
            return f"must be at most {step.max} {unit}, got {got}"
    elif not step.matches(v):
        return step.message or f"must match {step.regex}, got {_describe(v)}"
    return None


# ------------------------------------------------------------------ JSON Schema


def json_schema(model: type[Model]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a model, its nested models under `$defs`."""
    defs: dict[str, Any] = {}
    root = _object_schema(model, defs)
    defs.pop(model.__name__, None)
    return {**root, "$defs": defs} if defs else root


def _object_schema(model: type[Model], defs: dict[str, Any]) -> dict[str, Any]:
    compiled = _compiled(model)
    properties = {}
    for f in compiled.fields:
        prop = _type_schema(f.type, defs)
        if not f.required:
            prop["default"] = dump(f.factory() if f.factory is not None else f.default)
        properties[f.key] = prop
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    required = [f.key for f in compiled.fields if f.required]
    if required:
        out["required"] = required
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(f"{model.__name__}("):  # not dataclass's generated signature
        out["description"] = " ".join(doc.split("\n\n")[0].split())
    return out


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        out = _type_schema(typing.get_args(tp)[0], defs)
        target = out["anyOf"][0] if "anyOf" in out else out
        for m in tp.__metadata__:
            if isinstance(m, Range):
                target.update({k: v for k, v in (("minimum", m.ge), ("maximum", m.le)) if v is not None})
            elif isinstance(m, Length):
                names = {
                    "string": ("minLength", "maxLength"),
                    "object": ("minProperties", "maxProperties"),
                }.get(str(target.get("type")), ("minItems", "maxItems"))
                target.update({k: v for k, v in zip(names, (m.min, m.max), strict=True) if v is not None})
            elif isinstance(m, Pattern):
                target["pattern"] = m.regex
        return out
    inner = _optional(tp)
    if inner is not None:
        return {"anyOf": [_type_schema(inner, defs), {"type": "null"}]}
    if tp is Any:
        return {}
    if origin is Literal:
        choices = list(typing.get_args(tp))
        return {"const": choices[0]} if len(choices) == 1 else {"enum": choices}
    if origin is list:
        return {"type": "array", "items": _type_schema(typing.get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(typing.get_args(tp)[1], defs)}
    if isinstance(tp, type) and issubclass(tp, Model):
        if tp.__name__ not in defs:
            defs[tp.__name__] = {}  # a placeholder first: a model may refer to itself
            defs[tp.__name__] = _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    return {"type": _JSON_TYPES[tp]}
