"""`gen list`: every cluster with its status, enabled components and destination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gen import repofs
from gen.errors import EXIT_OK
from gen.output import Output
from gen.render.rendering import default_jobs, orphan_overlays, render_fleet


def rows(root: Path, jobs: int | None = None) -> list[dict[str, Any]]:
    repofs.guard_layout(root)
    rendered = render_fleet(root, jobs=default_jobs(jobs), specs=True)
    out: list[dict[str, Any]] = []
    for item, cluster in zip(rendered.specs, rendered.clusters, strict=True):
        spec = item.cluster.spec
        enabled = {"ebpf": spec.ebpf.enabled, "grafana": spec.grafana.enabled, "cassandra": spec.cassandra.enabled}
        dest = spec.argocd.destination
        out.append(
            {
                "name": item.name,
                "status": "in sync" if cluster.in_sync else "stale",
                "components": ["server"] + [name for name, on in enabled.items() if on],
                "destination": {"server": dest.server} if dest.server else {"name": dest.name},
                "namespace": spec.stack_namespace,
            }
        )
    ours, foreign = orphan_overlays(root, rendered.all_names())
    out += [
        {"name": rel.rsplit("/", 1)[1], "status": "orphan", "components": [], "destination": None, "namespace": None}
        for rel in ours + foreign
    ]
    return sorted(out, key=lambda r: r["name"])


def run(root: Path, fmt: str, out: Output) -> int:
    table = rows(root)
    if fmt == "json":
        out.line(json.dumps(table, indent=2))
        return EXIT_OK
    header = ("CLUSTER", "STATUS", "COMPONENTS", "DESTINATION")
    lines = [header] + [
        (
            r["name"],
            r["status"],
            ",".join(r["components"]) or "-",
            "-" if r["destination"] is None else f"{next(iter(r['destination'].values()))} / {r['namespace']}",
        )
        for r in table
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.line("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    return EXIT_OK
