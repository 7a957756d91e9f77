"""Argo CD objects of the fleet: one Application per cluster, an AppProject, a bootstrap (specs in, dicts out)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gen.components.common import PART_OF, SYNC_WAVE
from gen.errors import Problem, SpecError, UsageError
from gen.spec.cluster import APP_PREFIX, ROOT_NAME, Cluster
from gen.spec.fleet import DEFAULT_ARGOCD_NAMESPACE, FLEET_FILE, Fleet
from gen.spec.loader import LoadedCluster

API_VERSION = "argoproj.io/v1alpha1"
ARGOCD_DIR = "argocd"
APPLICATIONS_DIR = f"{ARGOCD_DIR}/applications"
PROJECT_FILE = f"{ARGOCD_DIR}/project.yaml"
BOOTSTRAP_FILE = f"{ARGOCD_DIR}/bootstrap.yaml"
OVERLAYS_DIR = "overlays"

IN_CLUSTER = "https://kubernetes.default.svc"
# Deleting an Application with this finalizer deletes what it deployed, so removing
# a spec (and so its Application) cleans the cluster instead of orphaning the stack.
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"

# Sync options of every cluster Application, sorted. Why each one:
# - CreateNamespace=true (platform kubernetes only): a fresh cluster has no
#   `spec.namespace` yet; on easy-db-lab the stack runs in `default`, which exists.
# - FailOnSharedResource=true: all clusters render the same object names, so an
#   Application that would take over another one's objects must fail, not fight.
# - No PruneLast: it would prune in a wave after the agents' DaemonSets, which Argo CD only reaches
#   once they are healthy; a DaemonSet with one pod that never becomes ready stays Progressing for
#   ever, so every sync that prunes would hang. Without it, Argo CD prunes in the removed objects'
#   own waves, in reverse order, and waits for each prune before the next wave: a server moved to
#   another namespace is gone before the new one wants its host ports. No ConfigMap is ever renamed
#   (they have no hash suffix), so no pod loses its config to an early prune.
# - PrunePropagationPolicy=foreground: a pruned DaemonSet's pods are gone before
#   the prune counts as done, so the next sync never sees half-deleted agents.
# ServerSideApply is left out on purpose: it would leave every field that another
# field manager set and gen does not (easy-db-lab's liveness probe and privileged
# flag on the objects taken over), which is why those objects carry Replace=true
# instead (gen.render.layout.TAKEOVER_SYNC_OPTIONS). Every other object has gen as its
# only writer, and client-side apply is Argo CD's default and most exercised path.
SYNC_OPTIONS = (
    "CreateNamespace=true",
    "FailOnSharedResource=true",
    "PrunePropagationPolicy=foreground",
)

# Kinds the stack creates (server, eBPF agent, Cassandra agent, Grafana datasource),
# as (group, kind), sorted. The AppProject allows these and nothing else.
CLUSTER_KINDS = (
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
)
NAMESPACED_KINDS = (
    ("", "ConfigMap"),
    ("", "Service"),
    ("", "ServiceAccount"),
    ("apps", "DaemonSet"),
    ("apps", "Deployment"),
    ("networking.k8s.io", "NetworkPolicy"),
)
# What the root Application may write: the rendered Applications and the AppProject.
ROOT_KINDS = (("argoproj.io", "AppProject"), ("argoproj.io", "Application"))
# The files under argocd/ the root syncs. Argo CD matches these globs against the path
# relative to argocd/ with no separator, so `*` also crosses `/`: the exclude keeps out
# hidden files (a render's temporary files among them) and anything in a subfolder, which
# gen never writes. What is left, `applications/<name>.yaml`, is what `gen check` and
# `gen validate` hold to the specs.
ROOT_INCLUDE = "{project.yaml,applications/*.yaml}"
ROOT_EXCLUDE = "{applications/.*,applications/*/*}"


def _retry() -> dict[str, Any]:
    # Fresh dicts per object: the emitter must never see one object shared twice.
    return {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}


def _kinds(kinds: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"group": g, "kind": k} for g, k in kinds]


def _argo_object(
    kind: str, name: str, fleet: Fleet, spec: dict[str, Any], cluster: str | None = None
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "gen", "app.kubernetes.io/part-of": PART_OF}
    metadata: dict[str, Any] = {"name": name, "namespace": fleet.argocd_namespace, "labels": labels}
    if cluster is not None:
        labels["cluster"] = cluster
        metadata["finalizers"] = [RESOURCES_FINALIZER]
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def app_name(cluster: str) -> str:
    """Name of a cluster's Application (unique in the Argo CD namespace)."""
    return APP_PREFIX + cluster


def overlay_dir(cluster: str) -> str:
    """A cluster's overlay directory, relative to the repository root."""
    return f"{OVERLAYS_DIR}/{cluster}"


def application_file(cluster: str) -> str:
    """Where a cluster's Application is written, relative to the repository root."""
    return f"{APPLICATIONS_DIR}/{cluster}.yaml"


def target(server: object, name: object) -> tuple[str, str]:
    """A destination's cluster as written: ("server", url), else ("name", its name)."""
    return ("server", str(server)) if server is not None else ("name", str(name))


def deploys_to(app: Mapping[str, Any] | None) -> tuple[str, str]:
    """The cluster an Application read back from a file deploys to, as `target` names it, whatever the file holds."""
    spec = (app or {}).get("spec")
    dest = spec.get("destination") if isinstance(spec, Mapping) else None
    dest = dest if isinstance(dest, Mapping) else {}
    return target(dest.get("server"), dest.get("name"))


def application(cluster: Cluster, fleet: Fleet, prefix: str = "") -> dict[str, Any]:
    """The Argo CD Application that syncs `overlays/<name>` to the cluster.

    `prefix`: where the fleet sits in its git repository (`infra/fleet/`), as Argo CD reads paths from its top.
    """
    argo = cluster.spec.argocd
    # The spec guarantees exactly one of server and name.
    field, value = target(argo.destination.server, argo.destination.name)
    automated = {"automated": {"prune": True, "selfHeal": True}} if argo.automated else {}
    options = [o for o in SYNC_OPTIONS if o != "CreateNamespace=true" or not cluster.spec.takes_over_easy_db_lab]
    spec = {
        "project": argo.project or fleet.project,
        "source": {
            "repoURL": argo.repo_url,
            "targetRevision": argo.target_revision,
            "path": prefix + overlay_dir(cluster.name),
        },
        "destination": {field: value, "namespace": cluster.spec.stack_namespace},
        "syncPolicy": {**automated, "syncOptions": options, "retry": _retry()},
    }
    return _argo_object("Application", app_name(cluster.name), fleet, spec, cluster.name)


class Placement(NamedTuple):
    """Where one spec deploys and what it would own there that another spec could own too.

    A tuple: the render cache keeps it as one, and a fleet's worth of them are made again at each render.
    """

    file: str
    at: tuple[str, int, int]  # where its spec.argocd.destination is written (the defaults file when inherited)
    where: tuple[str, str]  # ("server", url) or ("name", cluster), as written
    namespace: str
    ebpf: bool
    grafana: str | None  # its Grafana ConfigMaps' namespace, when it renders them


DESTINATION = ("spec", "argocd", "destination")
# The cluster-scoped objects of the eBPF agent (gen/resources/base/ebpf/rbac.yaml); the stack's
# only other one, its Namespace, is owned with everything in the namespace.
EBPF_RBAC = "pyroscope-ebpf"


def placement(lc: LoadedCluster) -> Placement:
    spec = lc.cluster.spec
    dest = spec.argocd.destination
    at = lc.problem(DESTINATION, "")
    where = target(dest.server, dest.name)
    grafana = spec.grafana.namespace if spec.grafana.enabled else None
    return Placement(lc.file, (at.file, at.line, at.col), where, spec.stack_namespace, spec.ebpf.enabled, grafana)


def _claims(p: Placement) -> list[tuple[str, str]]:
    """What a spec owns on its destination that two Applications cannot share, as keys of `_CLAIMED`."""
    keys = [("namespace", p.namespace)]
    if p.ebpf:
        keys.append(("ebpf", EBPF_RBAC))
    if p.grafana is not None:
        keys.append(("grafana", p.grafana))
    return keys


# A claim's kind → (what two specs would both own, how to avoid it), said only when they do.
_CLAIMED = {
    "namespace": ("every object in namespace {}", "another namespace"),
    "ebpf": ("ClusterRole/ClusterRoleBinding {}", "ebpf.enabled: false on one of them"),
    "grafana": ("the Grafana ConfigMaps in namespace {}", "another grafana.namespace"),
}


@dataclass(frozen=True)
class Clash:
    """A spec that would own objects an earlier spec on its destination owns."""

    later: Placement
    first: Placement
    owns: str  # what both would own
    fixes: str  # besides another destination, how to avoid it

    def problem(self) -> Problem:
        """The clash as an error on the later spec's destination."""
        p = self.later
        for_whom = "" if p.at[0] == p.file else f"{p.file} "
        return Problem(
            *p.at,
            ".".join(DESTINATION),
            f"{for_whom}deploys to the same destination ({' '.join(p.where)}) as {self.first.file}, and both would "
            f"own {self.owns}; give it another destination, or {self.fixes}",
        )


def clashes(placements: Iterable[Placement], only: Iterable[str] | None = None) -> list[Clash]:
    """Specs on one destination that would own the same objects: one clash per later spec and earlier owner.

    Each object goes to the first spec (by file) that claims it; each later claimant clashes with that
    first one alone. `only`: just the clashes that involve these files.
    """
    wanted = None if only is None else set(only)
    owner: dict[tuple[Any, ...], Placement] = {}
    found = []
    for p in sorted(placements):  # by file: one spec a file
        shared: dict[Placement, list[tuple[str, str]]] = {}
        for key in _claims(p):
            first = owner.setdefault((p.where, *key), p)
            if first is not p:
                shared.setdefault(first, []).append(key)
        for first, keys in shared.items():
            if wanted is not None and not {p.file, first.file} & wanted:
                continue
            # Grafana's ConfigMaps in the namespace both stacks share are among its every object.
            kept = [(kind, v) for kind, v in keys if kind != "grafana" or ("namespace", v) not in keys]
            owns = ", ".join(_CLAIMED[kind][0].format(v) for kind, v in kept)
            found.append(Clash(p, first, owns, " and ".join(_CLAIMED[kind][1] for kind, _ in kept)))
    return found


# Argo CD reads an AppProject destination's server and name as globs (gobwas/glob), where these
# characters are special: an IPv6 API server, https://[fd00::1]:6443, would otherwise match no cluster.
_GLOB_SPECIAL = re.compile(r"([*?\\\[\]{}])")


def _literal(value: str) -> str:
    """A destination's server or name as a glob that matches exactly itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", value)


def project_target(where: tuple[str, str]) -> tuple[str, str]:
    """A destination's cluster as an AppProject gen renders lists it: ("server" or "name", its literal glob)."""
    return where[0], _literal(where[1])


def project_allows(project: Mapping[str, Any], field: str, value: str, namespace: str) -> bool:
    """Whether an AppProject as gen renders it (each destination a literal glob) lists this destination."""
    destinations = (project.get("spec") or {}).get("destinations") or []
    wanted = (_literal(value), namespace)
    return any(isinstance(d, dict) and (d.get(field), d.get("namespace")) == wanted for d in destinations)


def project(placements: Iterable[Placement], fleet: Fleet) -> dict[str, Any]:
    """The fleet's least-privilege AppProject: fleet.yaml's repositories, the specs' destinations, the stack's kinds.

    The destinations are those of all specs, not only of those in this project: moving a cluster
    into it is then a one-line change to its spec.
    """
    allowed = {
        (p.where[0], _literal(p.where[1]), ns) for p in placements for ns in (p.namespace, p.grafana) if ns is not None
    }
    spec = {
        "description": "Profiling stack rendered by gen: only the fleet repository, the "
        "clusters and namespaces of the specs, and the kinds the stack creates",
        "sourceRepos": fleet.repos,
        "destinations": [{field: value, "namespace": ns} for field, value, ns in sorted(allowed)],
        "clusterResourceWhitelist": _kinds(CLUSTER_KINDS),
        "namespaceResourceWhitelist": _kinds(NAMESPACED_KINDS),
    }
    out = _argo_object("AppProject", fleet.project, fleet, spec)
    # After the Applications: the root waits for a pruned Application's finalizer, which deletes only
    # what the project still allows, before a removed spec's destination leaves the project.
    out["metadata"]["annotations"] = {SYNC_WAVE: "1"}
    return out


def bootstrap(fleet: Fleet, prefix: str = "") -> list[dict[str, Any]]:
    """The documents of `argocd/bootstrap.yaml`: the root's AppProject, then the root Application (`prefix`:
    as for `application`)."""
    # Its own AppProject: the root writes Applications and an AppProject into Argo CD's namespace,
    # a right the fleet project must not have (an overlay could grant itself anything), and
    # `default` is wide open or locked down depending on the installation.
    project = {
        "description": "Root of the profiling fleet: syncs the Applications and the "
        "AppProject rendered by gen, nothing else",
        "sourceRepos": [fleet.repo_url],
        "destinations": [{"server": IN_CLUSTER, "namespace": fleet.argocd_namespace}],
        "clusterResourceWhitelist": [],
        "namespaceResourceWhitelist": _kinds(ROOT_KINDS),
    }
    # No resources finalizer: deleting the root must never cascade into every cluster's stack.
    root = {
        "project": ROOT_NAME,
        "source": {
            "repoURL": fleet.repo_url,
            "targetRevision": fleet.target_revision,
            "path": prefix + ARGOCD_DIR,
            "directory": {"recurse": True, "include": ROOT_INCLUDE, "exclude": ROOT_EXCLUDE},
        },
        "destination": {"server": IN_CLUSTER, "namespace": fleet.argocd_namespace},
        # prune: a spec removed in git takes its Application with it.
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "retry": _retry()},
    }
    return [_argo_object("AppProject", ROOT_NAME, fleet, project), _argo_object("Application", ROOT_NAME, fleet, root)]


def fleet_problems(lc: LoadedCluster, fleet: Fleet | None) -> list[Problem]:
    """What a spec may not ask of the fleet (fleet.yaml's setting, None when it is derived from the specs).

    Its repository must be one the fleet allows, and neither of its namespaces Argo CD's own: the
    AppProject would let every cluster's Application write there (the stack's is privileged, too).
    """
    spec = lc.cluster.spec
    found = []
    if fleet is not None and spec.argocd.repo_url not in fleet.repos:
        why = (
            f"{spec.argocd.repo_url!r} is not among the repositories {FLEET_FILE} allows "
            f"({', '.join(fleet.repos)}), the only ones the fleet's AppProject lets Argo CD deploy from; "
            f"to allow it, add it to spec.sourceRepos in {FLEET_FILE}"
        )
        found.append(lc.problem(("spec", "argocd", "repoURL"), why))
    argocd_ns = fleet.argocd_namespace if fleet is not None else DEFAULT_ARGOCD_NAMESPACE
    namespaces: list[tuple[tuple[str, ...], str]] = [(("spec", "namespace"), spec.stack_namespace)]
    if spec.grafana.enabled:
        namespaces.append((("spec", "grafana", "namespace"), spec.grafana.namespace))
    why = (
        f"is the fleet's Argo CD namespace ({FLEET_FILE}'s argocdNamespace): the fleet's "
        "AppProject would let every cluster's Application write into it; use another namespace"
    )
    found += [lc.problem(path, f"{ns!r} {why}") for path, ns in namespaces if ns == argocd_ns]
    return found


@dataclass(frozen=True)
class Source:
    """Where one spec says its overlay is read from, and where that is written (the spec, or the defaults)."""

    file: str
    fields: dict[str, tuple[str, tuple[str, int, int]]]  # repoURL, targetRevision → (value, (file, line, column))


def source(lc: LoadedCluster) -> Source:
    argo = lc.cluster.spec.argocd
    values = {"repoURL": argo.repo_url, "targetRevision": argo.target_revision}
    where = {f: lc.problem(("spec", "argocd", f), "") for f in values}
    return Source(lc.file, {f: (v, (where[f].file, where[f].line, where[f].col)) for f, v in values.items()})


def resolve_sources(fleet: Fleet | None, sources: Sequence[Source]) -> Fleet:
    """The fleet setting: fleet.yaml when present, else the repository and revision all the specs name."""
    if fleet is not None:
        return fleet
    if not sources:
        raise UsageError(
            f"no {FLEET_FILE} and no cluster specs: write {FLEET_FILE} with "
            "spec.repoURL so the Argo CD bootstrap knows where the fleet lives"
        )
    first = sources[0]
    problems = [
        Problem(
            *other.fields[field][1],
            f"spec.argocd.{field}",
            f"{other.fields[field][0]!r} differs from {value!r} in {where[0]}; without {FLEET_FILE} "
            f"all clusters must agree on it: write {FLEET_FILE} to say which one the Argo CD bootstrap uses",
        )
        for field, (value, where) in first.fields.items()
        for other in sources[1:]
        if other.fields[field][0] != value
    ]
    if problems:
        raise SpecError(problems)
    return derived_fleet(first)


def derived_fleet(first: Source) -> Fleet:
    """The setting derived from the first spec, once all are known to agree with it."""
    return Fleet.model_validate({field: value for field, (value, _) in first.fields.items()})
