"""Render a fleet in memory: the one render behind `render`, `check` and `list`.

Each cluster is loaded, validated and rendered (its overlay by
`layout.render_cluster`, its Argo CD Application), then handed whole to a
*keep* function that the command chooses: `render` keeps what differs from
the disk, `check` keeps the drift it finds, `list` and the tests keep it all.
The fleet-wide files (AppProject, bootstrap, schema) are rendered once.

A large fleet is split into contiguous chunks of clusters, each rendered by a
forked worker process (`gen.workers`) that also runs the keep function, so
that only what is kept crosses back to the parent. One job, or a fleet too
small to gain from it, runs the same steps in this process.

`gen render --all` also leaves out the clusters whose files are known to be
current (`gen.render_cache`): they are neither loaded nor rendered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from gen import layout, repofs, workers, writer, yamlio
from gen.build import argocd
from gen.errors import Problem, SpecError
from gen.fleet import FLEET_FILE, Fleet, load_fleet
from gen.loader import LoadedCluster, load_clusters, spec_files
from gen.render_cache import Entry, RenderCache, open_cache
from gen.schema import SCHEMA_FILE, schema_text

T = TypeVar("T")

# Below this many clusters a render stays in this process: starting the workers and
# collecting their results costs about what splitting the work saves. Measured on 2
# cores (`gen check`, in sync): with workers, 20 clusters took 30% longer, 50 about
# the same, 100 a quarter less.
PARALLEL_MIN_CLUSTERS = 50


@dataclass(frozen=True)
class ClusterFiles:
    """Every file gen renders for one cluster: its overlay directory and its Argo CD Application."""

    item: LoadedCluster
    overlay: dict[str, str]  # file name → text, for overlays/<name>/
    files: dict[str, str]  # path relative to the repository root → text: the Application

    @property
    def directory(self) -> str:
        return layout.overlay_dir(self.item.name)


# Runs where the cluster was rendered: in a worker process, its result is pickled
# back to the parent, so it should be small plain data.
Keep = Callable[[ClusterFiles], T]


@dataclass
class Kept(Generic[T]):
    """A rendered fleet: what the keep function returned for each cluster, and the fleet-wide files."""

    names: list[str]  # the clusters, in the order they were asked for
    kept: list[T]  # one per cluster, in the same order
    files: dict[str, str]  # the AppProject and the bootstrap (and the schema for a full render), by path
    warnings: list[Problem]
    reused: list[str] = field(default_factory=list)  # clusters left out: their files are current

    def all_names(self) -> list[str]:
        """Every cluster of the fleet this render stands for, the ones left out included."""
        return sorted([*self.names, *self.reused])

    def argo_files(self) -> set[str]:
        """The Argo CD files this render claims: what `orphan_files` must not call orphaned."""
        return {*self.files, *(argocd.application_file(n) for n in self.all_names())}


@dataclass
class Rendered:
    """Everything gen generates for the chosen clusters, by path relative to the repository root."""

    clusters: list[LoadedCluster]
    overlays: dict[str, dict[str, str]] = field(default_factory=dict)  # dir → {file name: text}
    files: dict[str, str] = field(default_factory=dict)  # single files outside overlays/
    warnings: list[Problem] = field(default_factory=list)

    def all_files(self) -> dict[str, str]:
        out = dict(self.files)
        for directory, files in self.overlays.items():
            for name, text in files.items():
                out[f"{directory}/{name}"] = text
        return dict(sorted(out.items()))


def render(root: Path, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> Rendered:
    """Render the overlays and Argo CD files of the named clusters, or of every cluster when None.

    In this process, every file kept: see `Rendering` for what a render reads and yields.
    """
    kept = render_kept(root, names, _whole, progress=progress)
    out = Rendered([c.item for c in kept.kept], warnings=kept.warnings)
    for c in kept.kept:
        out.overlays[c.directory] = c.overlay
    out.files = written_order({**kept.files, **{rel: t for c in kept.kept for rel, t in c.files.items()}})
    return out


def _whole(cluster: ClusterFiles) -> ClusterFiles:
    return cluster


def render_kept(
    root: Path,
    names: Iterable[str] | None,
    keep: Keep[T],
    *,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Kept[T]:
    """Both steps of a `Rendering` at once, for commands that need nothing in between."""
    with Rendering(root, names, keep, jobs=jobs, pause=False) as rendering:
        rendering.load(progress)
        return rendering.finish()


class Rendering(Generic[T]):
    """A render in two steps, with the workers (if any) holding the rendered clusters in between.

    `load` loads, validates and renders every cluster's overlay, and raises one
    SpecError for every problem; `finish` renders the Argo CD files and runs the
    keep function on each cluster. `gen render` takes the repository's lock
    between the two (`pause`), so that what it compares with the disk is what it
    writes over; otherwise the workers go on to the second step without waiting
    for the parent, when fleet.yaml already gave the fleet setting. Use as a
    context manager: leaving it ends the workers.

    Rendering every cluster gives the complete fleet (what `gen check` compares
    with). Rendering some clusters reads only their specs: their Applications are
    rendered, and the committed AppProject gains their destinations and repository
    (it loses nothing until the next full render, so no Application is cut off).
    """

    def __init__(
        self,
        root: Path,
        names: Iterable[str] | None,
        keep: Keep[T],
        *,
        jobs: int = 1,
        pause: bool = True,
        cached: bool = False,
    ) -> None:
        self.root = root
        self.every = names is None
        files = spec_files(root)
        self.names = list(files) if names is None else list(dict.fromkeys(names))
        unknown = [n for n in self.names if n not in files]
        if unknown:
            # Refused by load_clusters before it reads any spec, in its own words.
            load_clusters(root, unknown, files)
        # With `cached` (a full render only), the clusters whose files are current are left out.
        self.cache: RenderCache | None = open_cache(root, files) if cached and self.every else None
        self._files = files
        self.reused: dict[str, Entry] = self.cache.reusable() if self.cache is not None else {}
        self.names = [n for n in self.names if n not in self.reused]
        self.facts: dict[str, tuple[list[Problem], argocd.Scope]] = {}  # of each cluster rendered
        self.keep = keep
        self.jobs = jobs
        self.pause = pause
        # Read before the workers start, so that they inherit it; a problem in it is
        # reported only when the specs have none, as it always was.
        self._fleet_error: Exception | None = None
        try:
            self.fleet: Fleet | None = load_fleet(root)
        except Exception as e:
            self.fleet, self._fleet_error = None, e
        self.warnings: list[Problem] = []
        self._scope = argocd.Scope()
        self._first: argocd.Source | None = None  # without fleet.yaml, the spec the setting comes from
        self._pool: workers.Local | workers.Forked | None = None
        self._finishing = False

    def __enter__(self) -> Rendering[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close(kill=exc[0] is not None)

    def load(self, progress: Callable[[int], None] | None = None) -> list[Problem]:
        """Load, validate and render each cluster's overlay (progress: once per cluster); the warnings."""
        given = self.fleet
        chunks = _chunks(self.names, self.jobs if len(self.names) >= PARALLEL_MIN_CLUSTERS else 1)
        sessions = [_Chunk(self.root, {n: self._files[n] for n in chunk}, self.keep, given) for chunk in chunks]
        self._pool = workers.Local(sessions)
        # When no more processes are allowed, the same chunks run one after the other here.
        if len(sessions) > 1:
            with contextlib.suppress(OSError):
                self._pool = workers.Forked(sessions)
        self._pool.start("load", None)
        if not self.pause and given is not None:
            # Nothing the parent learns from the first step changes the second one (an
            # error ends both): the workers need not wait for it.
            self._pool.start("finish", None)
            self._finishing = True
        loaded: list[_Loaded] = self._pool.results(progress)
        # What one process would have raised first: a spec problem anywhere, then
        # fleet.yaml, then a failed render (an unexpected error in loading a spec
        # has already been raised, as it ends the loading at once).
        problems = [p for r in loaded for p in r.problems]
        if problems:
            # An error inherited from the defaults is the same line for every cluster.
            raise SpecError(list(dict.fromkeys(problems)))
        if self._fleet_error is not None:
            raise self._fleet_error
        self.fleet = argocd.resolve_sources(given, [s for r in loaded for s in r.sources])
        for r in loaded:
            if r.failure is not None:
                raise r.failure.error
        if given is None:
            self._first = loaded[0].sources[0]
        self.facts = {name: facts for r in loaded for name, facts in r.facts.items()}
        warnings = {name: list(e.warnings) for name, e in self.reused.items()}
        warnings.update((name, w) for name, (w, _) in self.facts.items())
        # In the order the clusters were asked for; a full render's are sorted.
        order = sorted(warnings) if self.every else self.names
        self.warnings = [w for name in order for w in warnings.get(name, [])]
        for _, scope in self.facts.values():
            self._scope |= scope
        for entry in self.reused.values():
            self._scope |= entry.scope
        return self.warnings

    def finish(self) -> Kept[T]:
        """Render the Argo CD files and keep what the keep function takes from each cluster."""
        assert self._pool is not None and self.fleet is not None, "load() first"
        if not self._finishing:
            # A worker derives the same setting from the first spec's source (or has fleet.yaml's).
            self._pool.start("finish", self._first)
        # The fleet-wide files are rendered here meanwhile.
        documents = {
            argocd.BOOTSTRAP_FILE: argocd.bootstrap(self.fleet),
            argocd.PROJECT_FILE: [argocd.project(self._scope, self.fleet)],
        }
        if not self.every:
            committed = _committed_docs(self.root / argocd.PROJECT_FILE)
            if committed:
                documents[argocd.PROJECT_FILE] = [_widen_project(documents[argocd.PROJECT_FILE][0], committed[0])]
        files = {SCHEMA_FILE: schema_text()} if self.every else {}
        files.update((rel, argo_text(rel, docs)) for rel, docs in documents.items())
        kept: list[list[T]] = self._pool.results()
        self._pool.finish()
        chosen = [k for chunk in kept for k in chunk]
        return Kept(self.names, chosen, written_order(files), self.warnings, sorted(self.reused))

    def remember(self) -> None:
        """Record in the cache what was rendered, once it is written (under the repository's lock)."""
        if self.cache is not None:
            self.cache.save(self.facts, self.reused)


@dataclass
class _Loaded:
    problems: list[Problem] = field(default_factory=list)
    sources: list[argocd.Source] = field(default_factory=list)  # only when there is no fleet.yaml
    # Each cluster's warnings, and what the AppProject must admit for it.
    facts: dict[str, tuple[list[Problem], argocd.Scope]] = field(default_factory=dict)
    failure: workers.Failure | None = None  # a render that raised, once the specs loaded


class _Chunk(Generic[T]):
    """A contiguous run of clusters, rendered step by step in one worker (or in this process).

    What a step returns crosses to the parent: plain data only. What the next
    step needs (the loaded specs, the rendered overlays) stays here.
    """

    def __init__(self, root: Path, files: dict[str, Path], keep: Keep[T], fleet: Fleet | None) -> None:
        self.root, self.files, self.keep, self.fleet = root, files, keep, fleet
        self.loaded: list[LoadedCluster] = []
        self.overlays: list[dict[str, str]] = []

    def load(self, _arg: None, tick: workers.Tick) -> _Loaded:
        try:
            self.loaded = load_clusters(self.root, list(self.files), self.files)
        except SpecError as e:
            return _Loaded(problems=e.problems)
        problems = [p for item in self.loaded for p in argocd.fleet_problems(item, self.fleet)]
        if problems:
            self.loaded = []
            return _Loaded(problems=problems)
        # Without fleet.yaml, the setting comes from the specs, which must agree.
        sources = [argocd.source(item) for item in self.loaded] if self.fleet is None else []
        facts = {}
        too_large = []
        try:
            for item in self.loaded:
                try:
                    files = layout.render_cluster(item.cluster)
                except layout.ConfigMapTooLargeError as e:
                    # A spec problem: its values made the ConfigMap too large.
                    too_large.append(Problem(*item.locate(("spec",)), "spec", str(e)))
                    continue
                self.overlays.append({p.rsplit("/", 1)[1]: t for p, t in files.items()})
                facts[item.name] = (spec_warnings(item), argocd.scope([item.cluster]))
                tick(1)
        except Exception as e:
            self.loaded, self.overlays = [], []  # nothing for the next step to do
            return _Loaded(sources=sources, failure=workers.Failure(e))
        if too_large:
            self.loaded, self.overlays = [], []
            return _Loaded(problems=too_large)
        return _Loaded(sources=sources, facts=facts)

    def finish(self, first: argocd.Source | None, _tick: workers.Tick) -> Iterator[T]:
        """What the keep function takes from each cluster, as it comes: sent on in parts."""
        # Let go of each cluster once it is kept: a render from scratch keeps every file.
        loaded, self.loaded, overlays, self.overlays = self.loaded, [], self.overlays, []
        if not loaded:
            return  # no cluster here, or the first step failed (the parent raises that)
        fleet = self.fleet if first is None else argocd.derived_fleet(first)
        assert fleet is not None, "fleet.yaml's setting, or else the first spec's source"
        for item, overlay in zip(loaded, overlays, strict=True):
            rel = argocd.application_file(item.name)
            app = argo_text(rel, [argocd.application(item.cluster, fleet)])
            yield self.keep(ClusterFiles(item, overlay, {rel: app}))


def _chunks(names: Sequence[str], count: int) -> list[list[str]]:
    """`names` cut into `count` contiguous runs whose lengths differ by one at most (none empty)."""
    count = max(1, min(count, len(names)))
    size, extra = divmod(len(names), count)
    out, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        out.append(list(names[start:end]))
        start = end
    return out


def default_jobs(jobs: int | None) -> int:
    """The number of worker processes for --jobs: one per core unless given, never more than MAX_JOBS."""
    return min(jobs or workers.cores(), workers.MAX_JOBS)


def argo_text(rel: str, docs: list[Any]) -> str:
    """The text of an Argo CD file: gen's header, naming what it was rendered from, then the documents."""
    source = f"clusters/{rel.rsplit('/', 1)[1]}" if rel.startswith(argocd.APPLICATIONS_DIR) else ARGO_SOURCES
    return f"# {layout.HEADER_PREFIX}{source}. Do not edit.\n" + yamlio.dump_all(docs)


def written_order(files: Mapping[str, str]) -> dict[str, str]:
    """Single files in the order a render writes (and reports) them: the schema, then by path."""
    return dict(sorted(files.items(), key=lambda item: (item[0] != SCHEMA_FILE, item[0])))


def _committed_docs(path: Path) -> list[Any]:
    try:
        text = repofs.read_text(path)
        if yamlio.check_bounds(text) is not None:
            return []
        return yamlio.parse_all_plain(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return []


def _widen_project(fresh: dict[str, Any], committed: Any) -> dict[str, Any]:
    """The fresh AppProject with the committed one's destinations added.

    Its repositories stay fleet.yaml's alone: one added to the committed file by
    hand is not carried over.
    """
    try:
        old_dests = [dict(d) for d in committed["spec"].get("destinations", [])]
    except (TypeError, KeyError, AttributeError):
        return fresh

    def key(dest: dict[str, Any]) -> tuple[str, str, str]:
        field = "server" if "server" in dest else "name"
        return (field, str(dest.get(field)), str(dest.get("namespace")))

    spec = fresh["spec"]
    destinations = {key(d): d for d in [*old_dests, *spec["destinations"]]}
    spec["destinations"] = [destinations[k] for k in sorted(destinations)]
    return fresh


ARGO_SOURCES = f"{FLEET_FILE} and clusters/"


# Where easy-db-lab's own Grafana datasource looks for the server.
EASY_DB_LAB_SERVER_PORT = 4040


def spec_warnings(item: LoadedCluster) -> list[Problem]:
    """Settings that are valid but leave something unsafe; reported, not refused."""
    spec = item.cluster.spec
    c = spec.cassandra
    found = []
    if spec.takes_over_easy_db_lab and spec.server.port != EASY_DB_LAB_SERVER_PORT:
        found.append(
            Problem(
                *item.locate(("spec", "server", "port")),
                "spec.server.port",
                f"easy-db-lab's Grafana keeps its datasource at http://localhost:{EASY_DB_LAB_SERVER_PORT}, "
                f"which gen leaves alone: it finds no server on port {spec.server.port}",
            )
        )
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
    keep = set(known)
    # A symlink is listed (as not gen's), never followed.
    return _orphans(
        root,
        layout.OVERLAYS_DIR,
        lambda e: (e.is_dir() or e.is_symlink()) and e.name not in keep,
        lambda e: f"{e.path}/kustomization.yaml",
    )


UNCLAIMED_NOTE = (
    "no spec renders this file, yet Argo CD's root Application syncs it: gen check fails until it is removed"
)


def orphan_files(root: Path, rendered: Iterable[str]) -> tuple[list[str], list[str]]:
    """Entries under argocd/applications/ that no render claims (`rendered`: the paths it wrote).

    Returns (the files gen generated for specs now gone, every other entry). The
    others count whatever they are, hidden, in a subfolder or a link: Argo CD's
    root Application syncs the files there (a bootstrap applied before its exclude
    pattern, any `*.yaml` at all), so no file may be there that gen does not render.
    """
    claimed = set(rendered)
    folder = argocd.APPLICATIONS_DIR
    ours: list[str] = []
    others: list[str] = []
    for name in writer.tree_entries(root / folder):
        rel = f"{folder}/{name}"
        if rel in claimed:
            continue
        raw = writer.head(root / rel) if "/" not in name and not name.startswith(".") else None
        generated = raw is not None and layout.is_generated(raw.decode("utf-8", errors="replace"))
        (ours if generated else others).append(rel)
    return ours, others


def _orphans(
    root: Path,
    folder: str,
    unclaimed: Callable[[os.DirEntry[str]], bool],
    header_file: Callable[[os.DirEntry[str]], str],
) -> tuple[list[str], list[str]]:
    """Unclaimed entries of a folder, split by whether gen's header marks them as its own."""
    try:
        # os.scandir, not pathlib: a fleet's folders hold a thousand entries, of which
        # only the unclaimed ones are read.
        entries = sorted(os.scandir(root / folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    ours: list[str] = []
    foreign: list[str] = []
    for entry in entries:
        if entry.name.startswith(".") or not unclaimed(entry):
            continue
        try:
            # Only a real directory or a regular file (read without following a link) can be gen's.
            generated = not entry.is_symlink() and layout.is_generated(repofs.read_text(header_file(entry)))
        except (OSError, UnicodeDecodeError):
            generated = False
        (ours if generated else foreign).append(f"{folder}/{entry.name}")
    return ours, foreign
