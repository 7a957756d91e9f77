"""`gen explain`: each field's effective value and where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gen import repofs, yamlio
from gen.errors import EXIT_OK, UsageError
from gen.output import Output
from gen.review.provenance import effective, origin_text
from gen.spec import units
from gen.spec.loader import LoadedCluster, load_clusters


def explain(item: LoadedCluster) -> list[tuple[str, Any, str]]:
    """(dotted field path, effective value, origin) for every leaf of the effective spec."""
    rows: list[tuple[str, Any, str]] = []

    def walk(value: Any, path: yamlio.Path) -> None:
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                walk(sub, (*path, key))
            return
        rows.append((".".join(str(p) for p in path), value, origin_text(item, path)))

    walk(effective(item), ())
    return rows


def run(root: Path, name: str, field: str | None, out: Output) -> int:
    repofs.guard_layout(root)
    (item,) = load_clusters(root, [name])
    rows = explain(item)
    if field:
        wanted = field if field.split(".")[0] in ("apiVersion", "kind", "metadata", "spec") else f"spec.{field}"
        chosen = [r for r in rows if r[0] == wanted or r[0].startswith(wanted + ".")]
        if not chosen:
            prefixes = {".".join(r[0].split(".")[:n]) for r in rows for n in range(1, r[0].count(".") + 2)}
            hint = units.close_match(wanted, sorted(prefixes))
            raise UsageError(f"no field {field!r} in the spec" + (f"; did you mean {hint!r}?" if hint else ""))
        rows = chosen
    if out.fmt == "json":
        out.line(json.dumps([{"field": f, "value": v, "from": w} for f, v, w in rows], indent=2))
        return EXIT_OK
    width = max(len(f) for f, _, _ in rows)
    for f, value, where in rows:
        out.line(f"{f.ljust(width)}  {json.dumps(value)}  ({where})")
    return EXIT_OK
