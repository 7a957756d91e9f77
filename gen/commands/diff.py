"""`gen diff [--base REF]`: what the fully built manifests change between REF and the working tree."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gen import repofs, yamlio
from gen.components.argocd import (
    APPLICATIONS_DIR,
    ARGOCD_DIR,
    BOOTSTRAP_FILE,
    OVERLAYS_DIR,
    PROJECT_FILE,
    application_file,
    deploys_to,
    overlay_dir,
    project_allows,
)
from gen.errors import EXIT_FINDINGS, EXIT_OK, GenError, SpecError, ToolError
from gen.output import Output
from gen.render import layout, workers, writer
from gen.render.rendering import default_jobs, render_fleet
from gen.review import diffing, diffview, gitrepo, grouping, impact, provenance
from gen.spec.defaults import DEFAULTS_FILE, Defaults, load_defaults
from gen.spec.fleet import FLEET_FILE
from gen.spec.loader import CLUSTERS_DIR, LoadedCluster, load_text, spec_files
from gen.validate import kustomize, secrets_scan
from gen.validate.builds import Builds

BASE_DIR = "base"
# What a fleet's built manifests depend on; nothing else is read at REF.
TREE = (BASE_DIR, OVERLAYS_DIR, ARGOCD_DIR, CLUSTERS_DIR, FLEET_FILE)
FLEET_SECTION = "argocd/ (fleet)"
WORKING_TREE = "working tree"


@dataclass(eq=False)  # used as a dict key, by identity
class Side:
    """One side of the diff: a directory laid out like the fleet repository."""

    root: Path
    label: str  # "working tree" or the ref

    def unsafe(self, names: list[str] | None) -> list[str]:
        """What diff reads of the named clusters (all when None) that is no regular file or directory in bounds."""
        # The YAML of what is built is checked by `kustomize.inspect`, for the clusters built;
        # the Argo CD files are parsed here.
        if names is None:
            trees, argo = [OVERLAYS_DIR], [ARGOCD_DIR]
        else:
            trees = [overlay_dir(n) for n in names]
            argo = [PROJECT_FILE, BOOTSTRAP_FILE, *(application_file(n) for n in names)]
        found = [f for rel in (BASE_DIR, *trees) for f in repofs.scan(self.root, rel, yaml_check=False)]
        found += [f for rel in argo for f in (repofs.scan if rel == ARGOCD_DIR else repofs.scan_file)(self.root, rel)]
        return found + list(repofs.scan_file(self.root, FLEET_FILE, yaml=False))

    def overlays(self) -> list[str]:
        folder = self.root / OVERLAYS_DIR
        if repofs.lkind(folder) is not None:
            return []
        return sorted(e.name for e in os.scandir(folder) if os.path.lexists(Path(e.path, "kustomization.yaml")))

    def applications(self) -> list[str]:
        """The Application files by name (path under argocd/applications/ without .yaml), hidden or nested too."""
        # A root Application bootstrapped before its exclude pattern syncs those as well.
        if repofs.lkind(self.root / APPLICATIONS_DIR) is not None:
            return []
        entries = writer.tree_entries(self.root / APPLICATIONS_DIR)
        return [e.removesuffix(".yaml") for e in entries if e.endswith(".yaml")]

    def files(self, rel: str) -> dict[str, bytes]:
        """Every file under rel by path, for telling unchanged inputs apart without a build."""
        return repofs.files_under(self.root, rel)

    def documents(self, *rels: str) -> list[dict[str, Any]]:
        # Named as git names a file at a revision, when it is the ref's.
        at = "" if self.label == WORKING_TREE else f"{self.label}:"
        files = (rel for rel in rels if (self.root / rel).is_file())
        return [d for rel in files for d in yamlio.parse_all_file(self.root / rel, at + rel) if isinstance(d, dict)]

    @functools.cached_property
    def projects(self) -> dict[str, dict[str, Any]]:
        """The AppProjects of argocd/project.yaml by name (read only for a cluster that leaves a namespace)."""
        docs = self.documents(PROJECT_FILE)
        return {str((d.get("metadata") or {}).get("name")): d for d in docs if d.get("kind") == "AppProject"}

    @functools.cached_property
    def _spec_inputs(self) -> tuple[dict[str, str], Defaults | None] | None:
        # Listed and parsed once a side: once a cluster, a defaults diff read clusters/ a fleet's worth of times.
        try:
            return spec_files(self.root), load_defaults(self.root)
        except GenError:
            return None

    def spec(self, name: str) -> LoadedCluster | None:
        """The cluster's spec with defaults applied, or None when it is absent or invalid here."""
        if self._spec_inputs is None or name not in self._spec_inputs[0]:
            return None
        rel = self._spec_inputs[0][name]
        try:
            return load_text(yamlio.read(self.root / rel, rel), rel, name, self._spec_inputs[1])
        except GenError:
            return None

    def build(self, name: str, cmd: list[str], builds: Builds) -> list[dict[str, Any]]:
        rel = overlay_dir(name)
        if not os.path.lexists(self.root / rel / "kustomization.yaml"):
            return []
        try:
            docs = builds.build(self.root, rel, cmd)
        except ToolError as e:
            raise ToolError(f"kustomize build of {rel} at {self.label} failed", e.command, e.code, e.stderr) from None
        return [d for d in docs if isinstance(d, dict)]


@dataclass
class Section:
    """One cluster (or the fleet-wide Argo CD files) whose objects differ."""

    name: str
    scope: str  # "cluster" or "fleet"
    status: diffing.Status
    comparison: diffing.Comparison
    impact: list[str] = field(default_factory=list)
    source: str | None = None  # the spec of an added cluster; the provenance of a group's change
    clusters: list[str] = field(default_factory=list)  # a group's (scope "group"), shown with the first one's values
    alike: str | None = field(default=None, repr=False)  # a changed cluster's change up to its name and address


@dataclass
class Report:
    """Everything `diff` found, ready for any output format."""

    ref: str
    label: str  # the ref, or how it was chosen when none was given
    commit: str
    sections: list[Section]
    stale: dict[str, str]  # the spec file by cluster, of overlays a render would change
    unrendered: dict[str, str]  # the spec file by cluster, of specs with no overlay: not in the diff

    @property
    def notes(self) -> list[str]:
        """What the diff leaves out or shows as committed, for stderr."""
        notes = [
            f"{spec} has no rendered overlay, so it is not in the diff (run: gen render {n})"
            for n, spec in self.unrendered.items()
        ]
        return notes + [
            f"{n}: {overlay_dir(n)} is stale against {spec}; the diff shows the committed overlay (run: gen render {n})"
            for n, spec in self.stale.items()
        ]


def run(root: Path, ref: str | None, fmt: str, out: Output, *, color: str = "auto", max_chars: int = 60_000) -> int:
    report = collect(root, ref, out)
    for note in report.notes:
        out.note(note)
    if fmt == "json":
        out.out.write(diffview.json_text(report))
    elif fmt == "markdown":
        out.out.write(diffview.markdown(report, max_chars=max_chars))
    else:
        out.out.write(diffview.text(report, color=color == "always" or (color == "auto" and _terminal(out))))
    return EXIT_OK


def _terminal(out: Output) -> bool:
    # https://no-color.org: any non-empty NO_COLOR turns colour off.
    return out.out.isatty() and not os.environ.get("NO_COLOR")


class UnsafeTreeError(GenError):
    """Files kustomize must not be given (a symlink, a FIFO, a remote resource): nothing is built."""

    exit_code = EXIT_FINDINGS

    def __init__(self, findings: list[str]) -> None:
        self.findings = findings
        super().__init__(f"{len(findings)} problem(s) in what gen would build")

    def lines(self) -> list[str]:
        return [f"error: {f}" for f in self.findings] + [f"error: {self}; nothing was built"]


def collect(root: Path, ref: str | None, out: Output | None = None) -> Report:
    """Build both sides of every cluster whose inputs differ and compare them object by object."""
    ref, label = (ref, ref) if ref is not None else gitrepo.default_base(root)
    commit = gitrepo.resolve(root, ref)
    gitrepo.require_work_tree(root)
    repofs.guard_layout(root)
    # What git says differs since the commit picks the clusters: the cost is the change's, not the fleet's.
    changed = gitrepo.changed_since(root, commit, TREE)
    base_changed = any(p.startswith(BASE_DIR + "/") for p in changed)
    names = None if base_changed else _clusters_in(changed)  # base/ feeds every build
    with tempfile.TemporaryDirectory(prefix="gen-diff-") as tmp:
        old = Side(Path(tmp), label)
        refused = gitrepo.export(root, commit, TREE if names is None else _inputs(names), old.root)
        # The working tree's files are built as they are, not re-rendered: what Argo CD applies once
        # merged (`gen check` is the gate that they match the specs).
        new = Side(root, WORKING_TREE)
        # Both sides come from a pull request's point of view: neither is read through a
        # symlink nor built with anything kustomize would fetch.
        unsafe = [f"{f} (at {label})" for f in [*refused, *old.unsafe(names)]] + new.unsafe(names)
        if unsafe:
            raise UnsafeTreeError(unsafe)
        rendering = {DEFAULTS_FILE, FLEET_FILE} & changed  # every spec renders anew
        stale_names = None if rendering else sorted({*(names or []), *_specs_in(changed)})
        return _compare_sides(old, new, ref, commit, out, names, base_changed, stale_names)


def _clusters_in(paths: set[str]) -> list[str]:
    """The clusters whose overlay or Application is among the paths."""
    found = {p.split("/")[1] for p in paths if p.startswith(OVERLAYS_DIR + "/")}
    apps = (p.removeprefix(APPLICATIONS_DIR + "/") for p in paths if p.startswith(APPLICATIONS_DIR + "/"))
    return sorted(found | {a.removesuffix(".yaml") for a in apps})


def _specs_in(paths: set[str]) -> list[str]:
    """The clusters whose spec is among the paths (clusters/_defaults.yaml is none)."""
    files = [p.removeprefix(CLUSTERS_DIR + "/") for p in paths if p.startswith(CLUSTERS_DIR + "/")]
    return [f.rsplit(".", 1)[0] for f in files if "/" not in f and not f.startswith("_")]


def _inputs(names: list[str]) -> list[str]:
    """The paths of the fleet a diff of these clusters reads at the base revision."""
    each = [
        p
        for n in names
        for p in (overlay_dir(n), application_file(n), f"{CLUSTERS_DIR}/{n}.yaml", f"{CLUSTERS_DIR}/{n}.yml")
    ]
    return [BASE_DIR, FLEET_FILE, PROJECT_FILE, BOOTSTRAP_FILE, DEFAULTS_FILE, *each]


def _compare_sides(  # noqa: PLR0917 - the choices collect made
    old: Side,
    new: Side,
    ref: str,
    commit: str,
    out: Output | None,
    chosen: list[str] | None,
    base_changed: bool,
    stale_names: list[str] | None,
) -> Report:
    overlays = {side: set(side.overlays()) for side in (old, new)}
    every = sorted(overlays[old] | overlays[new] | set(old.applications()) | set(new.applications()))

    def inputs(side: Side, name: str) -> dict[str, bytes]:
        return {**side.files(overlay_dir(name)), **side.files(application_file(name))}

    # Same overlay, same Application and same base/: the same objects, no build needed.
    names = every if chosen is None else chosen
    todo = [n for n in names if base_changed or inputs(old, n) != inputs(new, n)]
    jobs = workers.cores()
    chunks = workers.chunked(todo, jobs)
    with (out or Output()).progress(2 * len(todo), "diffing") as bar:

        def advance(k: int) -> None:
            bar.update(len(chunks[k]))

        # Everything kustomize would read, on both sides, is checked before anything is built.
        checked = workers.map_chunks(_inspect, [(old, new, ref, c, overlays) for c in chunks], jobs, advance)
        unsafe = [f for findings, _ in checked for f in findings]
        if unsafe:
            raise UnsafeTreeError(list(dict.fromkeys(unsafe)))
        cmd = kustomize.command() if todo else []
        args = [(old, new, c, digests, cmd, base_changed) for c, (_, digests) in zip(chunks, checked, strict=True)]
        sections = [s for found in workers.map_chunks(_sections, args, jobs, advance) for s in found]
    sections = grouping.grouped(sections)
    # The AppProject is as large as the fleet: parsed only when its bytes (or the bootstrap's) changed.
    argo = (PROJECT_FILE, BOOTSTRAP_FILE)
    same = all(old.files(rel) == new.files(rel) for rel in argo)
    fleet = diffing.compare([], []) if same else diffing.compare(old.documents(*argo), new.documents(*argo))
    if fleet.changes:
        before, after = old.files(FLEET_FILE).get(FLEET_FILE), new.files(FLEET_FILE).get(FLEET_FILE)
        # The fleet-wide Argo CD objects are made from fleet.yaml.
        provenance.annotate(fleet.changes, provenance.document_changes(before, after, FLEET_FILE), False)
        notes = impact.assess(fleet, [])
        # The root Application syncs project.yaml and the Applications, never the bootstrap it comes from.
        by_hand = {key for side in (old, new) for key in diffing.index(side.documents(BOOTSTRAP_FILE))[0]}
        impact.applied_by_hand(fleet.changes, by_hand, BOOTSTRAP_FILE, notes)
        sections.append(Section(FLEET_SECTION, "fleet", "changed", fleet, notes))

    try:
        specs = spec_files(new.root)
    except SpecError:
        specs = {}  # no note about specs that do not load; `gen render` says what is wrong with them
    unrendered = {n: specs[n] for n in sorted(set(specs) - overlays[new])}
    stale = {n: specs[n] for n in _stale(new.root, stale_names, specs) if n in overlays[new]}
    return Report(ref, old.label, commit, sections, stale, unrendered)


def _inspect(
    old: Side, new: Side, ref: str, names: list[str], overlays: dict[Side, set[str]]
) -> tuple[list[str], dict[tuple[Path, str], bytes]]:
    """What keeps the clusters' overlays from being built, on either side; the digest of what each build reads."""
    builds = Builds(new.root)
    findings = [
        f + ("" if side is new else f" (at {ref})")
        for n in names
        for side in (old, new)
        if n in overlays[side]
        for f in builds.inspect(side.root, overlay_dir(n))
    ]
    return findings, builds.inputs


def _sections(  # noqa: PLR0917 - one chunk's arguments
    old: Side, new: Side, names: list[str], inputs: dict[tuple[Path, str], bytes], cmd: list[str], base_changed: bool
) -> list[Section]:
    """The clusters built on both sides and compared: one section for each that differs."""
    builds = Builds(new.root, inputs, settled={old.root})
    found = []
    for n in names:
        built = (old.build(n, cmd, builds), new.build(n, cmd, builds))
        if section := _cluster_section(old, new, n, built, base_changed):
            found.append(section)
    return found


def _stale(root: Path, names: list[str] | None, specs: Mapping[str, str]) -> list[str]:
    """Of the named clusters (all when None), those whose overlay or Application is not what their spec renders now."""
    chosen = None if names is None else [n for n in names if n in specs]  # a removed cluster has nothing to render
    if chosen == []:
        return []
    try:
        # The render cache's clusters are current: what a full render would leave out is not stale.
        rendered = render_fleet(root, chosen, jobs=default_jobs(None), cached=True, collisions=False)
    except GenError:
        return []  # specs that do not render: `gen render` says why
    return [c.name for c in rendered.clusters if not c.in_sync]


def _cluster_section(
    old: Side, new: Side, name: str, built: tuple[list[dict[str, Any]], list[dict[str, Any]]], base_changed: bool
) -> Section | None:
    """The cluster's overlay objects and Application compared, or None when they are the same."""
    app = application_file(name)
    old_apps, new_apps = old.documents(app), new.documents(app)
    old_objs, new_objs = built[0] + old_apps, built[1] + new_apps
    comparison = diffing.compare(old_objs, new_objs)
    if not comparison.changes:
        return None
    status: diffing.Status = "added" if not old_objs else "removed" if not new_objs else "changed"
    section = Section(name, "cluster", status, comparison)
    unseen = _unseen_namespaces(new, old_apps, new_apps, comparison)
    section.impact = [*_unclaimed(new, app, new_apps), *impact.assess(comparison, new_objs, unseen)]
    if built[1] and not new_apps:  # an overlay is deployed by its Application alone
        section.impact.insert(0, f"no Application deploys {overlay_dir(name)}: Argo CD applies none of this")
    spec = new.spec(name)
    if status == "added" and spec is not None:
        section.source = spec.file
    elif status == "changed":
        # Name the spec line (or default, or base/) behind each changed value.
        specs = provenance.spec_changes(old.spec(name), spec)
        # base/ feeds the overlay only; an Application's unexplained change is not put down to it.
        app_keys = set(diffing.index(new_apps)[0])
        for change in comparison.changes:
            provenance.annotate([change], specs, base_changed and change.key not in app_keys)
        # A cluster's own name, address and namespace: a fleet-wide change reads the same in each.
        cluster = spec.cluster.spec if spec is not None else None
        own = [name] if cluster is None else [name, cluster.control_node.address, cluster.stack_namespace]
        section.alike = grouping.signature(section, own)
    return section


def _unseen_namespaces(
    new: Side, old_apps: list[dict[str, Any]], new_apps: list[dict[str, Any]], comparison: diffing.Comparison
) -> set[str]:
    """The namespaces a cluster leaves objects in, on the same destination, that its AppProject no longer allows.

    Argo CD leaves out of an Application the live objects its project does not allow: those are never
    pruned. Moving the stack to another namespace takes the old one out of the fleet's AppProject.
    """
    if len(old_apps) != 1 or len(new_apps) != 1:
        return set()
    field, value = deploys_to(new_apps[0])
    if (field, value) != deploys_to(old_apps[0]):
        return set()  # another cluster: what is left there is a note of its own
    left = {c.key.namespace for c in comparison.changes if c.status == "removed" and c.key.namespace}
    project = new.projects.get(str(_as(dict, new_apps[0].get("spec")).get("project"))) if left else None
    if project is None:
        return set()  # another AppProject than gen's: what it allows is not known here
    return {ns for ns in left if not project_allows(project, field, value, ns)}


def _unclaimed(side: Side, rel: str, documents: list[dict[str, Any]]) -> list[str]:
    """For a file under argocd/applications/ that gen did not render: what the root Application would deploy."""
    if not documents:
        return []
    if not (side.root / CLUSTERS_DIR / Path(rel).name).is_file() or "/" in rel.removeprefix(APPLICATIONS_DIR + "/"):
        why = "no spec renders this file"
    elif layout.generated_file(side.root / rel):
        return []
    else:
        why = "gen's header line is gone"
    return [
        f"{rel}: {why} (gen check fails on it), yet Argo CD's root Application syncs it: {_deploys(d)}"
        for d in documents
    ]


def _deploys(doc: dict[str, Any]) -> str:
    """What one object the root would sync deploys, in words; its values shown only in a safe alphabet."""
    meta = _as(dict, doc.get("metadata"))
    kind = _safe(doc.get("kind"))
    what = f"{kind} {_safe(meta.get('namespace'))}/{_safe(meta.get('name'))}"
    spec = _as(dict, doc.get("spec"))
    if kind == "AppProject":
        repos = ", ".join(_safe(r) for r in _as(list, spec.get("sourceRepos"))) or "none"
        dests = ", ".join(_where(d) for d in _as(list, spec.get("destinations"))) or "none"
        return f"{what} allows repositories {repos} and destinations {dests}"
    if kind != "Application":
        return f"{what}, which is not an Application"
    sources = [_as(dict, x) for x in _as(list, spec.get("sources"))] or [_as(dict, spec.get("source"))]
    origin = "; ".join(
        f"{_safe(x.get('repoURL'))} "
        + (f"chart {_safe(x.get('chart'))}" if "chart" in x else f"path {_safe(x.get('path'))}")
        + f" at {_safe(x.get('targetRevision'))}"
        for x in sources
    )
    return f"{what} (project {_safe(spec.get('project'))}) deploys {origin} to {_where(spec.get('destination'))}"


def _where(value: Any) -> str:
    dest = _as(dict, value)
    target = f"server {_safe(dest.get('server'))}" if "server" in dest else f"name {_safe(dest.get('name'))}"
    return f"{target} namespace {_safe(dest.get('namespace'))}"


def _as(kind: type, value: Any) -> Any:
    """value when it is of kind, else an empty one: the file is anybody's."""
    return value if isinstance(value, kind) else kind()


_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+~=,-]")


def _safe(value: Any) -> str:
    # The file is anybody's: no markup, no line break and no credential reaches the report.
    text = secrets_scan.redact_url(str(value), "REDACTED") if value is not None else "(none)"
    return _UNSAFE.sub("?", text)[:200]
