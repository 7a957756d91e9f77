"""`gen new`: scaffold a cluster spec with the required fields and the common options."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gen import repofs
from gen.components import argocd
from gen.components.common import filled
from gen.errors import EXIT_OK, SpecError, UsageError
from gen.output import Output
from gen.render.rendering import neighbours
from gen.spec import units
from gen.spec.cluster import API_VERSION, MAX_NAME, Cassandra, Ebpf, Grafana, Profiler, Server
from gen.spec.defaults import load_defaults
from gen.spec.fleet import FLEET_FILE, load_fleet
from gen.spec.loader import CLUSTERS_DIR, load_text, spec_files
from gen.spec.schema import SCHEMA_FILE


def scaffold(name: str, *, address: str, repo_url: str, server: str | None, cluster_name: str | None) -> str:
    """The text of a new spec: required fields set, common optional ones commented with their defaults."""
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever the user typed
    # A cluster registered in Argo CD under the lab's own name: no other spec deploys there.
    destination = f"server: {q(server)}" if server else f"name: {q(cluster_name or name)}"
    values = {"SCHEMA_FILE": SCHEMA_FILE, "API_VERSION": API_VERSION, "NAME": name, "ADDRESS": q(address)}
    values |= {"REPO_URL": q(repo_url), "DESTINATION": destination}
    # Every commented option shows its default (@MODEL_FIELD@), as the models give it and YAML writes it.
    for model in (Server, Ebpf, Grafana, Cassandra, Profiler):
        for k, v in model().model_dump(mode="json").items():
            values[f"{model.__name__.upper()}_{k.upper()}"] = json.dumps(v) if isinstance(v, bool) else str(v)
    return filled(values, "new-cluster.yaml")


def run(
    root: Path,
    name: str,
    *,
    address: str,
    repo_url: str | None,
    server: str | None,
    cluster_name: str | None,
    out: Output,
) -> int:
    if server and cluster_name:
        raise UsageError("give --destination-server or --destination-name, not both")
    if not units.DNS1123_LABEL.fullmatch(name) or len(name) > MAX_NAME:
        raise UsageError(f"{name!r} is not a cluster name: a DNS-1123 label of at most {MAX_NAME} characters")
    repofs.guard_layout(root)
    path = root / CLUSTERS_DIR / f"{name}.yaml"
    rel = path.relative_to(root).as_posix()
    for taken in (path, path.with_suffix(".yml")):
        if os.path.lexists(taken):  # a dangling symlink too: nothing is written through it
            raise UsageError(f"{taken.relative_to(root).as_posix()} already exists")
    fleet = load_fleet(root)
    if repo_url is None:
        if fleet is None:
            raise UsageError(f"give --repo-url: there is no {FLEET_FILE} to take the fleet's repository from")
        repo_url = fleet.repo_url
    text = scaffold(name, address=address, repo_url=repo_url, server=server, cluster_name=cluster_name)
    # Refuse what would not load or render, with the same error lines as any spec.
    item = load_text(text.encode(), rel, name, load_defaults(root))
    problems = argocd.fleet_problems(item, fleet)
    if problems:
        raise SpecError(problems)
    mine = argocd.placement(item)
    clashes = argocd.clashes({mine, *neighbours(root, spec_files(root), {name}, [mine.where[1]])}, [rel])
    if clashes:
        clash = clashes[0]
        other = clash.first if clash.later is mine else clash.later
        raise UsageError(
            f"{rel} would deploy to the same destination ({' '.join(mine.where)}) as {other.file}, and both would "
            f"own {clash.owns}: pick another with --destination-name or --destination-server"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8", newline="") as f:
        f.write(text)
    out.detail(f"created {rel}")
    out.note(f"next: gen render {name}")
    return EXIT_OK
