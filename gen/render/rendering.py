"""Render a fleet and compare it with the disk: the one render behind `render`, `check` and `list`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from gen import repofs, yamlio
from gen.components import argocd, server
from gen.components.argocd import OVERLAYS_DIR, Placement, overlay_dir
from gen.errors import Problem, SpecError, UsageError
from gen.output import Output
from gen.render import layout, workers, writer
from gen.render.cache import Entry, RenderCache, open_cache, remembered
from gen.render.shipped_base import BASE_DIR, base_files
from gen.spec.defaults import load_defaults
from gen.spec.fleet import FLEET_FILE, Fleet, load_fleet
from gen.spec.loader import LoadedCluster, choose, load_each, load_text, spec_files
from gen.spec.schema import SCHEMA_FILE, schema_text


@dataclass(frozen=True)
class Difference:
    """One way the disk differs from what a cluster renders."""

    path: str  # relative to the repository root
    kind: str  # missing, changed, hand-edited, unexpected, not-a-file
    why: str


@dataclass
class ClusterRender:
    """One cluster's render, compared with the disk: what a command needs of it, small when in sync."""

    name: str
    warnings: list[Problem]  # settings that are valid but unsafe
    placement: argocd.Placement  # where it deploys: what the AppProject must admit for it
    rendered: int  # how many files it renders
    differences: list[Difference]  # empty: in sync
    overlay: dict[str, str] | None  # file name → text, when its overlay directory differs (or was not compared)
    files: dict[str, str]  # its Application by path, when it differs (or was not compared)
    overwrite_warnings: list[Problem]  # what writing this overlay does that the spec alone does not show

    @property
    def in_sync(self) -> bool:
        return not self.differences


@dataclass
class RenderedFleet:
    """The clusters rendered (in the order asked for) and the fleet-wide files."""

    clusters: list[ClusterRender]
    files: dict[str, str]  # the AppProject and the bootstrap (and the schema and base/ for a full render), by path
    warnings: list[Problem]
    reused: dict[str, Entry]  # clusters left out by the render cache (their files are current), by name, sorted
    specs: list[LoadedCluster]  # when asked for, one per rendered cluster
    cache: RenderCache | None = None

    @cached_property
    def all_names(self) -> list[str]:
        """Every cluster of the fleet this render stands for, the ones left out included."""
        return sorted([*(c.name for c in self.clusters), *self.reused])

    @cached_property
    def argo_files(self) -> set[str]:
        """The Argo CD files this render claims: what `orphan_files` must not call orphaned."""
        return {*self.files, *(argocd.application_file(n) for n in self.all_names)}

    def remember(self) -> None:
        """Record in the cache what was rendered, once it is written (under the repository's lock)."""
        if self.cache is not None:
            rendered = {c.name: (c.warnings, c.placement) for c in self.clusters}
            self.cache.save(rendered, self.reused, self.files[argocd.PROJECT_FILE])


def render_fleet(
    root: Path,
    names: Iterable[str] | None = None,
    *,
    jobs: int = 1,
    cached: bool = False,
    compare: bool = True,
    specs: bool = False,
    out: Output | None = None,
    label: str = "rendering",
    collisions: bool = True,
) -> RenderedFleet:
    """Render the named clusters (every one when None), each compared with the disk where it was rendered.

    Raises one SpecError for every problem in the specs. Rendering every cluster
    gives the complete fleet (what `gen check` compares with). Rendering some
    reads their specs and those of the other clusters on the destinations they deploy to (or
    deployed to): the committed AppProject gains their destinations and loses those no spec
    deploys to any more, as a full render has it; no other cluster's Application is cut off.
    With `cached` (a full render only), the clusters whose files are current
    are left out. `specs`: also return the loaded specs; `out`: show progress;
    `collisions`: refuse specs that would own the same objects.
    """
    every = names is None
    files = spec_files(root)
    chosen = choose(files, names)  # unknown names are refused before any spec is read
    cache = open_cache(root, files) if cached and every else None
    reused = cache.reusable() if cache is not None else {}
    todo = [n for n in chosen if n not in reused]
    # A problem in fleet.yaml is reported only when the specs have none, as it always was.
    fleet_error: Exception | None = None
    try:
        given = load_fleet(root)
    except Exception as e:
        given, fleet_error = None, e

    chunks = workers.chunked(todo, jobs)
    prefix = writer.repo_prefix(root)
    with (out or Output(quiet=True)).progress(len(todo), label) as bar:
        results = workers.map_chunks(
            render_chunk,
            [(root, {n: files[n] for n in chunk}, given, compare, specs, prefix) for chunk in chunks],
            jobs,
            lambda k: bar.update(len(chunks[k])),
        )
    # What one process would have raised first: a spec problem anywhere, then fleet.yaml.
    problems = [p for r in results for p in r.problems]
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))  # an error in the defaults: one line, not one per cluster
    clusters = [c for r in results for c in r.clusters]
    # The fleet-wide work, as large as the fleet, is left out when no spec moved since the last full render.
    kept = cache.project if cache is not None and cache.same_fleet({c.name: c.placement for c in clusters}) else None
    mine = set() if kept else {c.placement for c in clusters} | {Placement._make(e.placement) for e in reused.values()}
    # A render of some clusters knows every spec on the destinations they deploy to, or deployed to before.
    left = set() if every else _left_destinations(root, clusters)
    touched = {p.where for p in mine} | left
    others = set() if every else neighbours(root, files, set(chosen), {v for _, v in touched})
    clashes = argocd.clashes(mine | others, None if every else {p.file for p in mine}) if collisions else []
    if clashes:
        raise SpecError([c.problem() for c in clashes])
    if fleet_error is not None:
        raise fleet_error
    sources = [s for r in results for s in r.sources]
    if given is None and not every:
        # Without fleet.yaml every spec must agree on the repository, the rendered ones with the others:
        # else one spec's render would point the bootstrap at its own. One that does not load is left out.
        unrendered, _ = load_each(root, [n for n in files if n not in chosen], files)
        order = {rel: i for i, rel in enumerate(files.values())}  # as a full render has them
        sources = sorted([*sources, *map(argocd.source, unrendered)], key=lambda s: order[s.file])
    fleet = argocd.resolve_sources(given, sources)

    by_name = {name: e.problems for name, e in reused.items() if e.warnings}
    by_name.update((c.name, c.warnings) for c in clusters)
    # In the order the clusters were asked for (a full render's sorted), each once: a value inherited
    # from the defaults is warned about on its line there, however many clusters inherit it.
    warnings = list(dict.fromkeys(w for name in (sorted(by_name) if every else todo) for w in by_name.get(name, [])))
    fleet_files = {SCHEMA_FILE: schema_text(), **base_files()} if every else {}
    fleet_files.update(_bootstrap_and_project(root, fleet, mine, kept, every, prefix, (mine | others, touched)))
    loaded = [item for r in results for item in r.specs]
    return RenderedFleet(clusters, written_order(fleet_files), warnings, reused, loaded, cache)


def _bootstrap_and_project(  # noqa: PLR0917 - what render_fleet settled
    root: Path,
    fleet: Fleet,
    placements: set[Placement],
    kept: str | None,
    every: bool,
    prefix: str,
    nearby: tuple[set[Placement], set[tuple[str, str]]],
) -> dict[str, str]:
    """The bootstrap's text and the AppProject's: `kept`, else made, and for some clusters only when it changes.

    `nearby`, for a render of some clusters: every spec on the destinations they touch, and those destinations.
    """
    files = {argocd.BOOTSTRAP_FILE: argo_text(argocd.BOOTSTRAP_FILE, argocd.bootstrap(fleet, prefix))}
    if kept:
        return {**files, argocd.PROJECT_FILE: kept}
    project = [argocd.project(placements, fleet)]
    committed = [] if every else _committed_docs(root, argocd.PROJECT_FILE)
    if committed:
        known, touched = nearby
        needed = argocd.project(known, fleet)["spec"]["destinations"]
        project = [_widen_project(project[0], committed[0], needed, {argocd.project_target(w) for w in touched})]
        if project == committed:
            return files  # it admits these clusters already: not emitted again
    # It grows with the fleet: emitted once for each version of its documents.
    text = remembered(root, "emitted-project", repr(project).encode(), partial(argo_text, argocd.PROJECT_FILE, project))
    return {**files, argocd.PROJECT_FILE: text}


@dataclass
class _Chunk:
    """What a run of clusters gave, for the parent: small plain data."""

    problems: list[Problem] = field(default_factory=list)
    sources: list[argocd.Source] = field(default_factory=list)  # only when there is no fleet.yaml
    clusters: list[ClusterRender] = field(default_factory=list)
    specs: list[LoadedCluster] = field(default_factory=list)


def render_chunk(  # noqa: PLR0917 - one chunk's arguments
    root: Path, files: dict[str, str], fleet: Fleet | None, compare: bool, specs: bool, prefix: str
) -> _Chunk:
    """Load, validate and render a run of clusters, each compared with the disk when `compare` (`prefix`: the
    fleet's folder in its repository).

    Every problem of every cluster is found: one cluster's does not hide another's.
    """
    loaded, problems = load_each(root, list(files), files)
    problems += [p for item in loaded for p in argocd.fleet_problems(item, fleet)]
    # Without fleet.yaml the setting comes from the specs, which must all agree (the
    # parent checks): this chunk's first spec gives the same one as the fleet's first.
    sources = [argocd.source(item) for item in loaded] if fleet is None else []
    setting = fleet if fleet is not None or not sources else argocd.derived_fleet(sources[0])
    clusters = []
    for item in loaded:
        try:
            paths = layout.render_cluster(item.cluster)
        except layout.ConfigMapTooLargeError as e:
            # A spec problem: its values made the ConfigMap too large.
            problems.append(item.problem(("spec",), str(e)))
            continue
        if problems:
            continue  # none of this chunk's files is used: only the other clusters' problems are looked for
        assert setting is not None
        overlay = {p.rsplit("/", 1)[1]: t for p, t in paths.items()}
        rel = argocd.application_file(item.name)
        app = {rel: argo_text(rel, [argocd.application(item.cluster, setting, prefix)])}
        clusters.append(_compared(root, item, overlay, app) if compare else _whole(item, overlay, app))
    if problems:
        return _Chunk(problems=problems)
    return _Chunk(sources=sources, clusters=clusters, specs=loaded if specs else [])


def neighbours(
    root: Path, files: Mapping[str, str], chosen: set[str], destinations: Iterable[str]
) -> set[argocd.Placement]:
    """The placements of the specs not rendered that may deploy to one of the destinations (server or name).

    Only a spec whose text (or the defaults' text) holds one of those destinations is loaded; one
    that does not load is left out, as its own render reports it.
    """
    needles = {d.encode() for d in destinations}
    try:
        defaults = load_defaults(root)
        everyone = defaults is not None and any(n in repofs.read(root / defaults.file) for n in needles)
    except (OSError, SpecError):
        return set()
    found = set()
    for name, rel in files.items():
        if name in chosen:
            continue
        try:
            raw = repofs.read(root / rel)
            if everyone or any(n in raw for n in needles):
                found.add(argocd.placement(load_text(raw, rel, name, defaults)))
        except (OSError, SpecError):
            continue
    return found


def _left_destinations(root: Path, clusters: Iterable[ClusterRender]) -> set[tuple[str, str]]:
    """The destinations the rendered clusters' committed Applications deploy to that they no longer do."""
    left = set()
    for c in clusters:
        if not c.files:
            continue  # its Application is unchanged
        rel = argocd.application_file(c.name)
        try:
            data = repofs.read(root / rel)
            if yamlio.check_bounds(data.decode("utf-8")) is not None:
                continue
            [app] = yamlio.parse_all_bytes(data, rel)
            dest = app["spec"]["destination"]
            where = argocd.target(dest.get("server"), dest.get("name"))
        except (OSError, ValueError, TypeError, KeyError, AttributeError, SpecError):
            continue  # none, or not gen's: what it deployed to is not known
        if where != c.placement.where:
            left.add(where)
    return left


def _whole(item: LoadedCluster, overlay: dict[str, str], app: dict[str, str]) -> ClusterRender:
    place = argocd.placement(item)
    return ClusterRender(item.name, spec_warnings(item), place, len(overlay) + len(app), [], overlay, app, [])


def _compared(root: Path, item: LoadedCluster, overlay: dict[str, str], app: dict[str, str]) -> ClusterRender:
    """The cluster's render with only what differs from the disk kept."""
    out = _whole(item, overlay, app)
    directory = overlay_dir(item.name)
    out.differences = differences(root, directory, overlay, app)
    paths = {d.path for d in out.differences}
    if not any(p == directory or p.startswith(directory + "/") for p in paths):
        out.overlay = None
    else:
        out.overwrite_warnings = _storage_migration(root, item, overlay)
    out.files = {rel: text for rel, text in app.items() if rel in paths}
    return out


def differences(root: Path, directory: str, overlay: Mapping[str, str], files: Mapping[str, str]) -> list[Difference]:
    """How the disk differs from one cluster's render (its overlay directory, its other files): empty when in sync.

    The one answer to "is this cluster in sync" behind `render` (what it writes),
    `check` (its drift) and `list` (the status).
    """
    found = []
    what = repofs.lkind(root / directory)
    if what == "absent":
        found.append(Difference(directory, "missing", "the cluster's overlay was never rendered"))
    elif what is not None:
        why = f"{what} where the spec renders the overlay directory; gen does not write through it: remove it"
        found.append(Difference(directory, "not-a-file", why))
    else:
        found += [d for name, text in overlay.items() if (d := compare_file(root, f"{directory}/{name}", text))]
        # Every entry, not only regular files: a render deletes a symlink or a FIFO there too.
        for name in sorted(set(os.listdir(root / directory)) - overlay.keys()):
            why = "the spec does not render this file; a render deletes it"
            found.append(Difference(f"{directory}/{name}", "unexpected", why))
    found += [d for rel, text in files.items() if (d := compare_file(root, rel, text))]
    return found


def compare_file(root: Path, rel: str, text: str) -> Difference | None:
    """How a file differs from its rendered text, or None when it holds exactly that."""
    try:
        # Never followed through a symlink, waited on as a FIFO or read past the bound.
        raw = repofs.read(root / rel)
    except FileNotFoundError:
        return Difference(rel, "missing", "not rendered")
    except repofs.NotAFile as e:
        if e.too_large:
            return Difference(rel, "changed", f"{e.why}: not what the spec renders")
        if e.why == "a directory" and not rel.startswith(OVERLAYS_DIR + "/"):
            return Difference(rel, "not-a-file", "a directory where the spec renders a file: remove it")
        return Difference(rel, "not-a-file", f"{e.why} where the spec renders a regular file; a render replaces it")
    if writer.same_text(raw, text):
        return None
    if rel.startswith(BASE_DIR + "/"):
        return Difference(rel, "changed", "differs from the base/ this gen ships (after an upgrade of gen, or an edit)")
    if not layout.is_generated(raw.decode("utf-8", errors="surrogateescape")):
        return Difference(rel, "hand-edited", "gen's header line is gone; a render overwrites the file")
    return Difference(rel, "changed", "differs from what the spec renders")


def _storage_migration(root: Path, item: LoadedCluster, overlay: Mapping[str, str]) -> list[Problem]:
    """A warning when the committed overlay ran a 1.x server and the new one runs 2.x."""
    rel = f"{overlay_dir(item.name)}/kustomization.yaml"
    try:
        old = yamlio.load(repofs.read(root / rel), rel).data
    except (OSError, SpecError):
        return []  # no overlay yet, or not one gen can read: nothing was stored by it
    new = yamlio.parse_plain(overlay["kustomization.yaml"])
    if not server.crosses_to_v2(server.image_of(old), server.image_of(new)):
        return []
    return [item.problem(("spec", "server", "image"), server.STORAGE_NOT_MIGRATED)]


def default_jobs(jobs: int | None) -> int:
    """The number of worker processes for --jobs: one per core unless given, never more than MAX_JOBS."""
    return min(jobs or workers.cores(), workers.MAX_JOBS)


def argo_text(rel: str, docs: list[Any]) -> str:
    """The text of an Argo CD file: gen's header, naming what it was rendered from, then the documents."""
    source = f"{FLEET_FILE} and clusters/"
    if rel.startswith(argocd.APPLICATIONS_DIR):
        source = f"clusters/{rel.rsplit('/', 1)[1]}"
    return f"# {layout.HEADER_PREFIX}{source}. Do not edit.\n" + yamlio.dump_all(docs)


def written_order(files: Mapping[str, str]) -> dict[str, str]:
    """Single files in the order a render writes (and reports) them: the schema, then by path."""
    return dict(sorted(files.items(), key=lambda item: (item[0] != SCHEMA_FILE, item[0])))


# Why a render of some clusters refuses a committed AppProject it cannot widen: made from only those
# clusters, it would cut every other cluster's Application off.
_REMADE = "a render of some clusters keeps its destinations; run gen render --all, which makes it anew from every spec"


def _committed_docs(root: Path, rel: str) -> list[Any]:
    """The documents of a committed file ([] when there is none); UsageError when it cannot be read."""

    def parse() -> list[Any]:
        text = raw.decode("utf-8")
        problem = yamlio.check_bounds(text)
        if problem is not None:
            raise ValueError(f"line {problem[0]}: {problem[2]}")
        return yamlio.parse_all_plain(text)

    try:
        raw = repofs.read(root / rel)
        return remembered(root, f"parsed-{rel.replace('/', '-')}", raw, parse)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise UsageError(f"{rel}: cannot be read ({getattr(e, 'why', None) or e}); {_REMADE}") from None


def _widen_project(
    fresh: dict[str, Any], committed: Any, needed: list[dict[str, Any]], touched: set[tuple[str, str]]
) -> dict[str, Any]:
    """The fresh AppProject with the committed one's destinations added, but for those no spec deploys to.

    On the `touched` destinations (as the project writes them) every spec is known, so only the
    `needed` ones stay there: a cluster moved to another namespace or destination leaves the project
    as a full render has it. Its repositories stay fleet.yaml's alone: one added to the committed
    file by hand is not carried over.
    """
    try:
        old_dests = [dict(d) for d in committed["spec"].get("destinations", [])]
    except (TypeError, KeyError, AttributeError, ValueError):  # edited by hand into something else
        raise UsageError(f"{argocd.PROJECT_FILE}: its destinations are not a list of mappings; {_REMADE}") from None

    def key(dest: dict[str, Any]) -> tuple[str, str, str]:
        field = "server" if "server" in dest else "name"
        return (field, str(dest.get(field)), str(dest.get("namespace")))

    spec = fresh["spec"]
    keep = {key(d) for d in needed}
    destinations = {
        key(d): d for d in [*old_dests, *spec["destinations"]] if key(d)[:2] not in touched or key(d) in keep
    }
    spec["destinations"] = [destinations[k] for k in sorted(destinations)]
    return fresh


# Where easy-db-lab's own Grafana datasource looks for the server.
EASY_DB_LAB_SERVER_PORT = 4040


def spec_warnings(item: LoadedCluster) -> list[Problem]:
    """Settings that are valid but leave something unsafe; reported, not refused."""
    spec = item.cluster.spec
    c = spec.cassandra
    found = []
    if spec.takes_over_easy_db_lab and spec.server.port != EASY_DB_LAB_SERVER_PORT:
        why = (
            f"easy-db-lab's Grafana keeps its datasource at http://localhost:{EASY_DB_LAB_SERVER_PORT}, "
            f"which gen leaves alone: it finds no server on port {spec.server.port}, and easy-db-lab's other "
            f"agents (its Cassandra sidecar, Spark, Presto and Trino) send to port {EASY_DB_LAB_SERVER_PORT} too; and "
            f"easy-db-lab's next up fails on the Service, adding its own port {EASY_DB_LAB_SERVER_PORT} named http "
            "beside this one"
        )
        found.append(item.problem(("spec", "server", "port"), why))
    if c.enabled and c.state == "present" and c.agent.sha256 is None:
        why = "not set: the agent jar will be installed unverified; pin its SHA-256"
        found.append(item.problem(("spec", "cassandra", "agent", "sha256"), why))
    for key in [k for k in c.labels if "." in k and c.enabled]:
        why = (
            f"label key {key} holds '.': a 2.x server lists it only to clients that ask for UTF-8 label names "
            f"(older Grafana shows no such label), and a 1.x server stores it as {key.replace('.', '_')}; "
            "'_' reads the same everywhere"
        )
        found.append(item.problem(("spec", "cassandra", "labels", key), why))
    return found


def orphan_overlays(root: Path, known: Iterable[str]) -> tuple[list[str], list[str]]:
    """Overlay directories with no spec: (ones gen generated, ones it did not)."""
    keep = set(known)
    try:
        # os.scandir, not pathlib: a fleet's folders hold a thousand entries, of which
        # only the unclaimed ones are read.
        entries = sorted(os.scandir(root / OVERLAYS_DIR), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    ours: list[str] = []
    foreign: list[str] = []
    for entry in entries:
        # A symlink is listed (as not gen's), never followed.
        if entry.name.startswith(".") or entry.name in keep or not (entry.is_dir() or entry.is_symlink()):
            continue
        # Only a real directory (read without following a link) can be gen's.
        generated = not entry.is_symlink() and layout.generated_file(f"{entry.path}/kustomization.yaml")
        (ours if generated else foreign).append(f"{OVERLAYS_DIR}/{entry.name}")
    return ours, foreign


UNCLAIMED_NOTE = (
    "no spec renders this file, yet Argo CD's root Application syncs it: gen check fails until it is removed"
)


def orphan_files(root: Path, rendered: set[str]) -> tuple[list[str], list[str]]:
    """Entries under argocd/applications/ that no render claims (`rendered`: the paths it wrote).

    Returns (the files gen generated for specs now gone, every other entry). The
    others count whatever they are, hidden, in a subfolder or a link: Argo CD's
    root Application syncs the files there (a bootstrap applied before its exclude
    pattern, any `*.yaml` at all), so no file may be there that gen does not render.
    """
    folder = argocd.APPLICATIONS_DIR
    ours: list[str] = []
    others: list[str] = []
    for name in writer.tree_entries(root / folder):
        rel = f"{folder}/{name}"
        if rel in rendered:
            continue
        generated = "/" not in name and not name.startswith(".") and layout.generated_file(root / rel)
        (ours if generated else others).append(rel)
    return ours, others
