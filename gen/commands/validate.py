"""`gen validate`: build each overlay with kustomize and validate every object it yields."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gen import repofs
from gen.components.argocd import ARGOCD_DIR, OVERLAYS_DIR, app_name, application_file, overlay_dir
from gen.errors import EXIT_FINDINGS, EXIT_OK, UsageError, printable
from gen.output import Output
from gen.render.rendering import compare_file, default_jobs, render_fleet
from gen.render.shipped_base import BASE_DIR, base_files
from gen.review import gitrepo
from gen.spec.fleet import FLEET_FILE
from gen.spec.loader import choose, spec_files
from gen.validate import argo_checks, k8s_limits, k8s_schema, kustomize, secrets_scan
from gen.validate.builds import Builds
from gen.validate.objects import ident


def run(
    root: Path,
    names: Sequence[str],
    kubernetes_version: str,
    jobs: int | None,
    out: Output,
    *,
    crds: Path | None = None,
    all_clusters: bool = False,
    changed_since: str | None = None,
) -> int:
    if names and all_clusters:
        raise UsageError("give cluster names or --all, not both")
    if changed_since is not None and (names or all_clusters):
        raise UsageError("--changed-since chooses the clusters: give no cluster names nor --all")
    if crds is not None and names:
        raise UsageError("--crds checks the Argo CD objects, which concern the whole fleet: give no cluster names")
    repofs.guard_layout(root)
    chosen = choose(spec_files(root), names or None)
    # The Argo CD objects concern the whole fleet: checked when every cluster is.
    chosen, fleet_wide = (chosen, not names) if changed_since is None else _changed(root, changed_since, chosen, out)
    version = _version(kubernetes_version)
    cmd = kustomize.command()
    builds = Builds(root)
    # What the specs render now, compared with the disk: the same answer as `gen check`.
    rendered = render_fleet(root, None if fleet_wide else chosen, jobs=default_jobs(jobs), specs=True)
    stale = {
        c.name: [f"{overlay_dir(c.name)}: stale: differs from what {item.file} renders (run: gen render {c.name})"]
        for item, c in zip(rendered.specs, rendered.clusters, strict=True)
        if not c.in_sync
    }

    # Every overlay is built against base/: one that is not this gen's would fail each build its own way.
    base = [
        f"{d.path}: {d.kind}: {d.why} (run: gen render --all)"
        for rel, text in base_files().items()
        if (d := compare_file(root, rel, text))
    ]
    if not os.path.lexists(root / BASE_DIR):
        base = [f"{BASE_DIR}/: missing: the overlays are built against it (run: gen render --all)"]
    built: dict[str, list[Any]] = {}

    def one(name: str) -> list[str]:
        rel = overlay_dir(name)
        if not os.path.lexists(root / rel / "kustomization.yaml"):
            return [f"{rel}: not rendered (run: gen render {name})"]
        # Nothing kustomize would read that gen has not checked: no remote resource, no symlink.
        # Such an overlay is not built, and that is its finding, whether or not a spec renders it so.
        unsafe = builds.inspect(root, rel)
        if unsafe:
            return stale.get(name, []) + unsafe
        try:
            built[name] = builds.build(root, rel, cmd)
        except kustomize.BuildError as e:
            # This overlay's finding, in kustomize's words: the other clusters are validated all the same.
            why = [printable(line) for line in e.stderr.splitlines() if line.strip()] or [f"exit code {e.code}"]
            return stale.get(name, []) + [f"{rel}: kustomize build failed: {line}" for line in why]
        # Valid is not enough: no secret value may be committed in what an overlay builds.
        problems = validate_objects(built[name], version) + secrets_scan.scan_objects(built[name])
        # A stale overlay is validated all the same: it is what Argo CD applies until it is rendered.
        return stale.get(name, []) + [f"{rel}: {f}" for f in problems]

    results = [base]
    if not base:
        # No more builds at once than there are overlays: each thread runs a kustomize.
        threads = max(1, min(default_jobs(jobs), len(chosen)))
        with out.progress(len(chosen), "validating") as bar, ThreadPoolExecutor(threads) as pool:
            results = []
            for found in pool.map(one, chosen):  # the bar moves in this thread, as the overlays finish in order
                results.append(found)
                bar.update()
    # A problem in base/ shows once, not once per cluster that reaches it.
    findings = list(dict.fromkeys(f for r in results for f in r))
    clusters = [item.cluster for item in rendered.specs]
    validated = set(chosen)
    if fleet_wide:
        # Read only when every file there is a regular one within gen's bounds.
        unsafe = list(repofs.scan(root, ARGOCD_DIR))
        findings += unsafe or argo_checks.check_repository(root, clusters, crds, objects=built)
    # Nothing here can see the destination cluster: say what it must hold.
    notes = [
        f"{overlay_dir(c.name)}: namespace {c.spec.grafana.namespace} (grafana.namespace) must exist "
        f"on the destination cluster: Argo CD creates only {c.spec.stack_namespace}; without it the Grafana "
        "ConfigMaps alone fail (they sync last, after the stack) and so does the sync, which Argo CD, once its "
        f"retries are spent, never tries again for that revision by itself: argocd app sync {app_name(c.name)}"
        for c in clusters
        if c.spec.grafana.enabled and c.name in validated
    ]
    if out.fmt == "json":
        report = {"kubernetesVersion": version, "overlays": len(built), "problems": findings, "notes": notes}
        out.line(json.dumps(report, indent=2))
    else:
        for line in findings:
            out.line(line)
        for note in notes:
            out.note(note)
        out.note(f"{len(built)} overlay(s) built and validated for Kubernetes {version}: {len(findings)} problem(s)")
    return EXIT_FINDINGS if findings else EXIT_OK


def _changed(root: Path, ref: str, names: list[str], out: Output) -> tuple[list[str], bool]:
    """The clusters whose overlay, Application or base/ differ from ref; whether argocd/ or fleet.yaml do."""
    commit = gitrepo.resolve(root, ref)
    gitrepo.require_work_tree(root)
    paths = gitrepo.changed_since(root, commit, (BASE_DIR, OVERLAYS_DIR, ARGOCD_DIR, FLEET_FILE))
    tops = {p.split("/", 1)[0] for p in paths}
    dirs = {"/".join(p.split("/", 2)[:2]) for p in paths}
    chosen = [n for n in names if BASE_DIR in tops or overlay_dir(n) in dirs or application_file(n) in paths]
    fleet_wide = ARGOCD_DIR in tops or FLEET_FILE in tops
    which = f"every one, {BASE_DIR}/ changed" if BASE_DIR in tops else ", ".join(chosen) or "none"
    argo = "changed: checked" if fleet_wide else "unchanged: not checked"
    out.note(f"changed since {ref}: {len(chosen)} of {len(names)} cluster(s) validated ({which}); Argo CD files {argo}")
    return chosen, fleet_wide


def validate_objects(objects: list[Any], version: str) -> list[str]:
    """Strict schema validation of core Kubernetes objects, and the sizes the API server refuses, by object."""
    return [
        f"{ident(obj)}: {problem}"
        for obj in objects
        for problem in [*k8s_schema.validate(obj, version), *k8s_limits.problems(obj)]
    ]


def _version(text: str) -> str:
    from kubernetes_validate.utils import all_versions

    full = text if text.count(".") == 2 else f"{text}.0"
    available = sorted(set(all_versions()), key=lambda v: tuple(int(x) for x in v.split(".")))
    if full not in available:
        raise UsageError(f"Kubernetes {text} is not known to kubernetes-validate (known: {', '.join(available)})")
    return full
