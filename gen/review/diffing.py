"""Compare two sets of built Kubernetes objects: pure data in, changes out."""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from gen import yamlio

# kustomize's hash suffix: 10 characters of hex with 0, 1, 3, a, e replaced by
# g, h, k, m, t (so a suffix never spells a word); other names are left alone.
HASH_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<hash>[2456789bcdfghkmt]{10})$")
HASHED_KINDS = frozenset({"ConfigMap", "Secret"})
WORKLOAD_KINDS = frozenset({"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "CronJob", "Pod"})

Status = Literal["added", "removed", "changed"]
STATUSES: tuple[Status, ...] = ("added", "changed", "removed")  # the order of every count shown
PathPart = str | int


class _Missing:
    """The value of a field that does not exist on one side."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, order=True)
class Key:
    """How an object is identified across the two sides (the name without a hash suffix)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Key:
        """The key of an object under its full name (hash suffix included)."""
        meta = obj.get("metadata") or {}
        api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        return cls(api, kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def label(self) -> str:
        """`Kind namespace/name` (or `Kind name` for cluster-scoped objects)."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass
class FieldChange:
    """One changed leaf (or a whole added/removed subtree) of an object."""

    path: tuple[PathPart, ...]
    old: Any
    new: Any
    source: str | None = None  # where the new value comes from (gen.review.provenance)

    @property
    def op(self) -> Status:
        return "added" if self.old is MISSING else "removed" if self.new is MISSING else "changed"

    @property
    def multiline(self) -> bool:
        return any(isinstance(v, str) and "\n" in v for v in (self.old, self.new))

    def path_text(self) -> str:
        """`spec.template.spec.containers[name=alloy].image`, `data["config.alloy"]`, `args[0]`."""
        out = ""
        for part in self.path:
            if isinstance(part, int) or part.startswith("name="):
                out += f"[{part}]"
            elif _PLAIN_KEY.match(part):
                out += f".{part}" if out else part
            else:
                out += f'["{part}"]'
        return out

    def line_diff(self) -> list[str]:
        """The unified diff of a multi-line string value, without file headers."""
        old = self.old if isinstance(self.old, str) else ""
        new = self.new if isinstance(self.new, str) else ""
        lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2)
        return [line for line in lines if not line.startswith(("---", "+++"))]

    def side_text(self, sign: Literal["-", "+"]) -> str:
        """The old ("-") or new ("+") side as text (only the changed lines of a multi-line value)."""
        if self.multiline:
            return "\n".join(x[1:] for x in self.line_diff() if x.startswith(sign))
        value = self.old if sign == "-" else self.new
        return "" if value is MISSING else scalar_text(value)


@dataclass
class ObjectChange:
    """An object added, removed or changed between the two sides."""

    key: Key
    status: Status
    old_name: str | None = None  # the real names, hash suffix included
    new_name: str | None = None
    old: dict[str, Any] | None = None  # the normalised objects
    new: dict[str, Any] | None = None
    fields: list[FieldChange] = field(default_factory=list)
    impact: list[str] = field(default_factory=list)
    source: str | None = None  # why an object appears or disappears as a whole (gen.review.provenance)

    @property
    def renamed(self) -> bool:
        return self.old_name is not None and self.new_name is not None and self.old_name != self.new_name


@dataclass
class Comparison:
    """The objects that differ between the two sides."""

    changes: list[ObjectChange]

    def counts(self) -> dict[Status, int]:
        return {s: sum(c.status == s for c in self.changes) for s in STATUSES}


def unhashed(kind: str, name: str) -> str:
    """The name without kustomize's hash suffix (only ConfigMaps and Secrets carry one)."""
    m = HASH_SUFFIX.match(name) if kind in HASHED_KINDS else None
    return m["base"] if m else name


def index(objects: Iterable[Mapping[str, Any]]) -> tuple[dict[Key, dict[str, Any]], dict[str, str]]:
    """Objects by key, and the hashed names they use (hashed → unhashed)."""
    by_key: dict[Key, list[dict[str, Any]]] = {}
    for obj in objects:
        full = Key.of(obj)
        by_key.setdefault(replace(full, name=unhashed(full.kind, full.name)), []).append(dict(obj))
    out: dict[Key, dict[str, Any]] = {}
    hashed: dict[str, str] = {}
    for key, found in by_key.items():
        if len(found) > 1:  # objects that share a key once unhashed keep their full names: none merge
            out.update((Key.of(obj), obj) for obj in found)
        else:
            out[key] = found[0]
            if (name := Key.of(found[0]).name) != key.name:
                hashed[name] = key.name
    return out, hashed


def normalise(data: Any, hashed: Mapping[str, str]) -> Any:
    """A copy of data with every string equal to a hashed name replaced by the unhashed name."""
    # So a new config is one changed ConfigMap, and the pods that mount it show no change of
    # their own: the restart it causes is an impact note, not noise in the diff.
    if isinstance(data, str):
        return hashed.get(data, data)
    if isinstance(data, Mapping):
        return {k: normalise(v, hashed) for k, v in data.items()}
    if isinstance(data, list):
        return [normalise(v, hashed) for v in data]
    return data


def references(obj: Any, names: Collection[str]) -> bool:
    """Whether any string in obj is one of names (a pod referencing a hashed ConfigMap)."""
    if isinstance(obj, str):
        return obj in names
    values = obj.values() if isinstance(obj, Mapping) else obj if isinstance(obj, list) else ()
    return any(references(v, names) for v in values)


def compare(old_objects: Iterable[Mapping[str, Any]], new_objects: Iterable[Mapping[str, Any]]) -> Comparison:
    """Every object that was added, removed or changed, in key order."""
    old, old_hashed = index(old_objects)
    new, new_hashed = index(new_objects)
    changes: list[ObjectChange] = []
    for key in sorted(set(old) | set(new), key=lambda k: (k.kind, k.namespace, k.name, k.api_version)):
        a, b = old.get(key), new.get(key)
        # Named as built (hash suffix included), compared normalised.
        a_name, na = (Key.of(a).name, normalise(a, old_hashed) if old_hashed else a) if a is not None else (None, None)
        b_name, nb = (Key.of(b).name, normalise(b, new_hashed) if new_hashed else b) if b is not None else (None, None)
        if na is None:
            changes.append(ObjectChange(key, "added", new_name=b_name, new=nb))
        elif nb is None:
            changes.append(ObjectChange(key, "removed", old_name=a_name, old=na))
        elif fields := field_changes(na, nb):
            changes.append(ObjectChange(key, "changed", a_name, b_name, na, nb, fields))
    return Comparison(changes)


def field_changes(old: Any, new: Any, path: tuple[PathPart, ...] = (), *, leaves: bool = False) -> list[FieldChange]:
    """The leaves that differ between two values, as paths with old and new values.

    `leaves`: a subtree on one side only is walked against an empty one, so that
    each of its leaves is a change of its own, and lists are compared position
    by position (the fields of a spec, matched to output values one by one).
    """
    if leaves:
        old, new = _or_empty(old, new), _or_empty(new, old)
    # Equal in value and in type (== takes 1, 1.0 and true for one another): nothing below differs.
    # A fleet-wide change leaves most of each object alone, and the C comparison skips it whole.
    if old == new and repr(old) == repr(new):
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[FieldChange] = []
        for k in sorted(set(old) | set(new), key=str):
            out += field_changes(old.get(k, MISSING), new.get(k, MISSING), (*path, k), leaves=leaves)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if not leaves:
            return _list_changes(old, new, path)
        pairs = enumerate(itertools.zip_longest(old, new, fillvalue=MISSING))
        return [c for i, (a, b) in pairs for c in field_changes(a, b, (*path, i), leaves=True)]
    if type(old) is type(new) and old == new:
        return []
    return [FieldChange(path, old, new)]


def _or_empty(value: Any, other: Any) -> Any:
    """An empty container in place of a side that is missing where the other holds one."""
    if value is MISSING and isinstance(other, Mapping | list):
        return {} if isinstance(other, Mapping) else []
    return value


def _named(items: list[Any]) -> dict[str, Any] | None:
    # Containers, volumes, env, ports: matched by name, so inserting one is one added entry.
    names = [i.get("name") if isinstance(i, Mapping) else None for i in items]
    if not items or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return dict(zip(names, items, strict=True))  # type: ignore[arg-type]


def _list_changes(old: list[Any], new: list[Any], path: tuple[PathPart, ...]) -> list[FieldChange]:
    a, b = _named(old), _named(new)
    if a is not None and b is not None:
        return [c for n in a | b for c in field_changes(a.get(n, MISSING), b.get(n, MISSING), (*path, f"name={n}"))]
    # Unnamed entries: line them up like a text diff, so that dropping the first of
    # three entries reads as one removal rather than three changed positions.
    out: list[FieldChange] = []
    matcher = difflib.SequenceMatcher(None, [_canonical(x) for x in old], [_canonical(x) for x in new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            out += field_changes(old[i1 + k], new[j1 + k], (*path, j1 + k))
        out += [FieldChange((*path, i), old[i], MISSING) for i in range(i1 + paired, i2)]
        out += [FieldChange((*path, j), MISSING, new[j]) for j in range(j1 + paired, j2)]
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def scalar_text(value: Any) -> str:
    """A value as it would read in YAML: strings bare, null/true/false, numbers as written."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str | int | float):
        return str(value)
    return yamlio.dump(value).rstrip("\n")
