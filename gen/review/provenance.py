"""Where a changed value of the built manifests comes from: a spec line, a default, or base/."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gen import yamlio
from gen.components import cassandra
from gen.errors import GenError
from gen.review.diffing import MISSING, FieldChange, ObjectChange, field_changes, scalar_text
from gen.spec.loader import LoadedCluster

BUILT_IN = "built-in default"
BASE = "base/"
SpecPath = tuple[str | int, ...]


@dataclass(frozen=True)
class SpecChange:
    """One spec leaf whose effective value differs between the two sides."""

    path: SpecPath
    old: Any
    new: Any
    source: str  # `clusters/x.yaml:12`, or "built-in default"


def effective(item: LoadedCluster) -> dict[str, Any]:
    """The spec as gen uses it: every field, defaults included, under the spec's own key names."""
    return item.cluster.model_dump(by_alias=True)


def spec_changes(old: LoadedCluster | None, new: LoadedCluster | None) -> list[SpecChange]:
    """The leaves of the effective spec that changed; sources are taken from the new side."""
    if new is None:
        return []
    before = effective(old) if old is not None else {}
    after = effective(new)
    changes = field_changes(before, after, leaves=True)
    return [SpecChange(c.path, c.old, c.new, _source(new, after, c.path)) for c in changes]


def _source(item: LoadedCluster, data: Any, path: SpecPath) -> str:
    # A key that is gone (a removed label) is named by its closest surviving parent.
    found = 0
    for part in path:
        keys = data if isinstance(data, Mapping) else range(len(data)) if isinstance(data, list) else ()
        if part not in keys:
            break
        data = data[part]
        found += 1
    return origin_text(item, path[:found]) if found else BUILT_IN


def origin_text(item: LoadedCluster, path: SpecPath) -> str:
    """Where a field's value is written, as `file:line`, or "built-in default"."""
    where = item.origin(path)
    return f"{where[0]}:{where[1]}" if where else BUILT_IN


def _appears(value: Any, text: str) -> bool:
    """Whether a scalar shows in text as a whole token (`4100` in `http://host:4100`)."""
    if not text or value is MISSING or value is None or isinstance(value, Mapping | list):
        return False
    token = scalar_text(value)
    return bool(token.strip()) and whole_token(token).search(text) is not None


def whole_token(token: str) -> re.Pattern[str]:
    """token where no letter or digit touches it: `lab-1` in `http://lab-1:4100`, not in `lab-10`."""
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![A-Za-z0-9])")


def explain(change: FieldChange, specs: Sequence[SpecChange]) -> list[SpecChange]:
    """The changed spec fields whose new value appears in one changed output value as a whole token."""
    added, removed = change.side_text("+"), change.side_text("-")
    strict = [s for s in specs if _appears(s.new, added) and (not removed or _appears(s.old, removed))]
    # A value that only disappeared is explained by the old spec value it showed.
    return strict or [s for s in specs if _appears(s.new, added) or (not added and _appears(s.old, removed))]


def document_changes(old: bytes | None, new: bytes | None, file: str) -> list[SpecChange]:
    """The changed leaves of a settings file without a model (fleet.yaml), positioned in its new text."""
    # Invalid or absent text counts as empty: provenance is a help, never a reason to fail.
    before, after = _parse(old, file), _parse(new, file)
    if after is None:
        return []
    return [
        SpecChange(c.path, c.old, c.new, f"{file}:{after.values[c.path][0]}" if c.path in after.values else BUILT_IN)
        for c in field_changes(before.data if before else {}, after.data, leaves=True)
    ]


def _parse(raw: bytes | None, file: str) -> yamlio.Positioned | None:
    try:
        return yamlio.load(raw, file) if raw is not None else None
    except GenError:
        return None


# Spec fields whose effect cannot be found by value (a boolean or a choice that
# becomes other words in the output), by the object and the part of it they shape.
KNOWN_EFFECTS: dict[SpecPath, tuple[str, str, tuple[str, ...]]] = {
    ("spec", "cassandra", "state"): ("DaemonSet", cassandra.DAEMONSET, ("spec", "template")),
    ("spec", "ebpf", "privileged"): ("DaemonSet", "pyroscope-ebpf", ("spec", "template")),  # base/ebpf's name
}


def _known(obj: ObjectChange, f: FieldChange, specs: Sequence[SpecChange]) -> list[SpecChange]:
    effects = [(s, KNOWN_EFFECTS.get(s.path)) for s in specs]
    return [s for s, e in effects if e and (obj.key.kind, obj.key.name) == e[:2] and f.path[: len(e[2])] == e[2]]


def annotate(changes: Sequence[ObjectChange], specs: Sequence[SpecChange], base_changed: bool) -> None:
    """Set `source` on each changed field, and on each object added or removed as a whole."""
    # A whole object appears or disappears when a component is switched on or off, or base/ changes.
    toggles = [s.source for s in specs if s.path and s.path[-1] in ("enabled", "state")]
    whole = ", ".join(dict.fromkeys(toggles)) or (BASE if base_changed else None)
    for obj in changes:
        if obj.status != "changed":
            obj.source = whole
        for f in obj.fields:
            found = explain(f, specs) or _known(obj, f, specs)
            if found:
                f.source = ", ".join(dict.fromkeys(s.source for s in found))
            elif base_changed:  # otherwise left unattributed rather than guessed
                f.source = BASE
