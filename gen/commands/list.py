"""`gen list`: every cluster with its status, enabled components and destination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gen import repofs
from gen.components import argocd
from gen.errors import EXIT_OK, Problem, SpecError
from gen.output import Output
from gen.render.rendering import default_jobs, orphan_overlays, render_fleet
from gen.spec.loader import spec_files


def rows(root: Path, jobs: int | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """One row per cluster (and orphaned overlay), and the problems of the specs that could not be listed."""
    repofs.guard_layout(root)
    files = spec_files(root)
    try:
        rendered, problems = render_fleet(root, jobs=default_jobs(jobs), specs=True, collisions=False), []
    except SpecError as e:
        # The other clusters are still listed; an invalid spec is a row of its own.
        problems = e.problems
        invalid = {Path(p.file).stem for p in problems if Path(p.file).stem in files}
        if len(invalid) != len({p.file for p in problems}):  # a problem outside the specs: nothing renders
            invalid = set(files)
        chosen = [n for n in files if n not in invalid]
        rendered = render_fleet(root, chosen, jobs=default_jobs(jobs), specs=True, collisions=False)
    # Specs that would own the same objects are listed, as colliding, and their errors follow.
    clashes = argocd.clashes(c.placement for c in rendered.clusters)
    problems += [c.problem() for c in clashes]
    colliding = {Path(c.later.file).stem for c in clashes}
    blank: dict[str, Any] = {"components": [], "destination": None, "namespace": None}
    listed = set(rendered.all_names)
    out: list[dict[str, Any]] = [{"name": n, "status": "invalid", **blank} for n in files if n not in listed]
    for item, cluster in zip(rendered.specs, rendered.clusters, strict=True):
        spec = item.cluster.spec
        enabled = {"ebpf": spec.ebpf.enabled, "grafana": spec.grafana.enabled, "cassandra": spec.cassandra.enabled}
        dest = spec.argocd.destination
        out.append(
            {
                "name": item.name,
                "status": "collides" if item.name in colliding else "in sync" if cluster.in_sync else "stale",
                "components": ["server"] + [name for name, on in enabled.items() if on],
                "destination": {"server": dest.server} if dest.server else {"name": dest.name},
                "namespace": spec.stack_namespace,
            }
        )
    ours, foreign = orphan_overlays(root, files)  # a spec's overlay is no orphan, though the spec is invalid
    out += [{"name": rel.rsplit("/", 1)[1], "status": "orphan", **blank} for rel in ours + foreign]
    return sorted(out, key=lambda r: r["name"]), problems


def run(root: Path, out: Output) -> int:
    table, problems = rows(root)
    if out.fmt == "json":
        out.line(json.dumps(table, indent=2))
    else:
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
        widths = [max(map(len, column)) for column in zip(*lines, strict=True)]
        for line in lines:
            out.line("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if problems:
        raise SpecError(problems)
    return EXIT_OK
