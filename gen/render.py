"""Render a fleet in memory: the one function behind `render`, `check` and `diff`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen import layout, yamlio
from gen.build import argocd
from gen.errors import Problem
from gen.fleet import FLEET_FILE, load_fleet
from gen.loader import LoadedCluster, load_clusters, spec_files
from gen.render_cache import Entry, RenderCache
from gen.schema import SCHEMA_FILE, schema_text


@dataclass
class Rendered:
    """Everything gen generates for the chosen clusters, by path relative to the repository root."""

    clusters: list[LoadedCluster]
    overlays: dict[str, dict[str, str]] = field(default_factory=dict)  # dir → {file name: text}
    files: dict[str, str] = field(default_factory=dict)  # single files outside overlays/
    by_cluster: dict[str, list[Problem]] = field(default_factory=dict)  # warnings
    # Clusters left out because their files are known to be current (see gen.render_cache).
    reused: dict[str, Entry] = field(default_factory=dict)

    @property
    def warnings(self) -> list[Problem]:
        return [w for name in sorted(self.by_cluster) for w in self.by_cluster[name]]

    @property
    def names(self) -> list[str]:
        """Every cluster of the render, the reused ones included."""
        return sorted([*(c.name for c in self.clusters), *self.reused])

    def all_files(self) -> dict[str, str]:
        out = dict(self.files)
        for directory, files in self.overlays.items():
            for name, text in files.items():
                out[f"{directory}/{name}"] = text
        return dict(sorted(out.items()))


def render(
    root: Path,
    names: Iterable[str] | None = None,
    progress: Callable[[], None] | None = None,
    cache: RenderCache | None = None,
) -> Rendered:
    """Render the overlays and Argo CD files of the named clusters, or of every cluster when None.

    Rendering every cluster gives the complete fleet (what `gen check` compares
    with). Rendering some clusters reads only their specs: their Applications are
    rendered, and the committed AppProject gains their destinations and repository
    (it loses nothing until the next full render, so no Application is cut off).
    With a cache, a full render leaves out the clusters whose files are current.
    """
    full = names is None
    reused = cache.reusable() if cache is not None and full else {}
    loaded = load_clusters(root, [n for n in spec_files(root) if n not in reused] if reused else names)
    fleet = argocd.resolve_fleet(load_fleet(root), loaded)
    out = Rendered(clusters=loaded, reused=reused)
    for name, entry in reused.items():
        out.by_cluster[name] = list(entry.warnings)
        if progress is not None:
            progress()
    for item in loaded:
        directory = layout.overlay_dir(item.name)
        files = layout.render_cluster(item.cluster)
        out.overlays[directory] = {p.rsplit("/", 1)[1]: t for p, t in files.items()}
        out.by_cluster[item.name] = spec_warnings(item)
        if progress is not None:
            progress()
    documents = argocd.documents([c.cluster for c in loaded], fleet, [e.reach for e in reused.values()])
    if not full:
        committed = _committed_docs(root / argocd.PROJECT_FILE)
        if committed:
            documents[argocd.PROJECT_FILE] = [_widen_project(documents[argocd.PROJECT_FILE][0], committed[0])]
    else:
        out.files[SCHEMA_FILE] = schema_text()
    for rel, docs in documents.items():
        source = f"clusters/{rel.rsplit('/', 1)[1]}" if rel.startswith(argocd.APPLICATIONS_DIR) else ARGO_SOURCES
        out.files[rel] = f"# {layout.HEADER_PREFIX}{source}. Do not edit.\n" + yamlio.dump_all(docs)
    return out


def remember(cache: RenderCache, rendered: Rendered) -> None:
    """Record a full render in the cache once its files are written."""
    done = {c.name: (rendered.by_cluster[c.name], argocd.reach(c.cluster)) for c in rendered.clusters}
    cache.save(done, rendered.reused)


def _committed_docs(path: Path) -> list[Any]:
    try:
        return yamlio.parse_all_plain(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return []


def _widen_project(fresh: dict[str, Any], committed: Any) -> dict[str, Any]:
    """The fresh AppProject with the committed one's destinations and repositories added."""
    try:
        old_spec = committed["spec"]
        old_repos = [str(r) for r in old_spec.get("sourceRepos", [])]
        old_dests = [dict(d) for d in old_spec.get("destinations", [])]
    except (TypeError, KeyError, AttributeError):
        return fresh

    def key(dest: dict[str, Any]) -> tuple[str, str, str]:
        field = "server" if "server" in dest else "name"
        return (field, str(dest.get(field)), str(dest.get("namespace")))

    spec = fresh["spec"]
    destinations = {key(d): d for d in [*old_dests, *spec["destinations"]]}
    spec["sourceRepos"] = sorted({*old_repos, *spec["sourceRepos"]})
    spec["destinations"] = [destinations[k] for k in sorted(destinations)]
    return fresh


ARGO_SOURCES = f"{FLEET_FILE} and clusters/"


def spec_warnings(item: LoadedCluster) -> list[Problem]:
    """Settings that are valid but leave something unsafe; reported, not refused."""
    c = item.cluster.spec.cassandra
    found = []
    if c.enabled and c.state == "present" and c.agent.sha256 is None:
        path = ("spec", "cassandra", "agent", "sha256")
        found.append(
            Problem(
                *item.locate(path),
                "spec.cassandra.agent.sha256",
                "not set: the agent jar will be installed unverified; pin its SHA-256",
            )
        )
    return found


def orphan_overlays(root: Path, known: Iterable[str]) -> tuple[list[str], list[str]]:
    """Overlay directories with no spec: (ones gen generated, ones it did not)."""
    return _orphans(root, layout.OVERLAYS_DIR, set(known), True)


def orphan_files(root: Path, rendered: Rendered) -> tuple[list[str], list[str]]:
    """Argo CD files with no spec behind them: (ones gen generated, ones it did not)."""
    prefix = argocd.APPLICATIONS_DIR + "/"
    claimed = {rel.removeprefix(prefix) for rel in rendered.files if rel.startswith(prefix)}
    claimed.update(argocd.application_file(n).removeprefix(prefix) for n in rendered.reused)
    return _orphans(root, argocd.APPLICATIONS_DIR, claimed, False)


def _orphans(root: Path, folder: str, claimed: set[str], directories: bool) -> tuple[list[str], list[str]]:
    """Unclaimed directories (or files) of a folder, split by whether gen's header marks them as its own."""
    try:
        entries = sorted(os.scandir(root / folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    ours: list[str] = []
    foreign: list[str] = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name in claimed:
            continue
        if not (entry.is_dir() if directories else entry.is_file()):
            continue
        header_file = os.path.join(entry.path, "kustomization.yaml") if directories else entry.path
        try:
            with open(header_file, encoding="utf-8") as f:
                generated = layout.is_generated(f.readline())
        except (OSError, UnicodeDecodeError):
            generated = False
        (ours if generated else foreign).append(f"{folder}/{entry.name}")
    return ours, foreign
