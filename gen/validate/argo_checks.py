"""The checks `gen validate` runs on the rendered Argo CD objects; findings read `Kind/name: field.path: message`."""

from __future__ import annotations

import functools
import importlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from gen import yamlio
from gen.components.argocd import (
    APPLICATIONS_DIR,
    ARGOCD_DIR,
    CLUSTER_KINDS,
    PROJECT_FILE,
    RESOURCES_FINALIZER,
    SYNC_OPTIONS,
    app_name,
    application_file,
    target,
)
from gen.components.common import SYNC_WAVE
from gen.components.grafana import DATASOURCE_CONFIGMAP
from gen.errors import SpecError, UsageError
from gen.render import layout, writer
from gen.spec.cluster import ROOT_NAME, Cluster, Destination, GitURL, Model, Namespace, Pattern
from gen.spec.loader import issues
from gen.validate import secrets_scan
from gen.validate.objects import ident

Finding = str
KUSTOMIZATION = "kustomization.yaml"


def _dotted(path: Sequence[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ------------------------------------------------------------------ strict models
# Exactly what gen.components.argocd emits and nothing more: extra keys are refused, and
# values are held to what the builders can produce.

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DURATION = re.compile(r"^([0-9]+(h|m|s))+$")
_WAVE = re.compile(r"^-?[0-9]+$")
# After the fleet's folder in its repository, when it is not at the top.
_OVERLAY_OR_ROOT = re.compile(r"^([^/]+/)*(overlays/[a-z0-9]([-a-z0-9]*[a-z0-9])?|argocd)$")


def _finalizers(value: list[str] | None) -> list[str] | None:
    if value is not None and value != [RESOURCES_FINALIZER]:
        raise ValueError(f"gen sets only [{RESOURCES_FINALIZER}]")
    return value


def _annotations(value: dict[str, str] | None) -> dict[str, str] | None:
    # Never repeats what it refuses: an annotation may hold anything, a credential too.
    if value is not None and (list(value) != [SYNC_WAVE] or not _WAVE.fullmatch(value[SYNC_WAVE])):
        raise ValueError(f"gen sets only {SYNC_WAVE}, a number")
    return value


def _sync_options(value: list[str] | None) -> list[str] | None:
    unknown = [o for o in value or [] if o not in SYNC_OPTIONS]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a sync option gen sets ({', '.join(SYNC_OPTIONS)})")
    return value


class _Metadata(Model):
    name: Annotated[str, Field(max_length=253), Pattern(_DNS_SUBDOMAIN)]
    namespace: Namespace
    labels: dict[str, str]
    annotations: Annotated[dict[str, str] | None, AfterValidator(_annotations)] = None
    finalizers: Annotated[list[str] | None, AfterValidator(_finalizers)] = None


class _Directory(Model):
    recurse: Literal[True]
    include: Literal["{project.yaml,applications/*.yaml}"]
    exclude: Literal["{applications/.*,applications/*/*}"]


class _Source(Model):
    repo_url: GitURL = Field(alias="repoURL")
    target_revision: Annotated[str, Field(min_length=1)]
    path: Annotated[str, Pattern(_OVERLAY_OR_ROOT)]
    directory: _Directory | None = None


class _Destination(Destination):
    """Where an Application deploys, or where an AppProject lets one deploy: a spec's destination and namespace."""

    namespace: Namespace


class _Automated(Model):
    # pydantic takes 1 for True even when strict; check_crds refuses a number there.
    prune: Literal[True]
    self_heal: Literal[True]


class _Backoff(Model):
    duration: Annotated[str, Pattern(_DURATION)]
    factor: Annotated[int, Field(ge=1)]
    max_duration: Annotated[str, Pattern(_DURATION)]


class _Retry(Model):
    limit: Annotated[int, Field(ge=1)]
    backoff: _Backoff


class _SyncPolicy(Model):
    automated: _Automated | None = None
    sync_options: Annotated[list[str] | None, AfterValidator(_sync_options)] = None
    retry: _Retry


class _ApplicationSpec(Model):
    project: Annotated[str, Field(min_length=1)]
    source: _Source
    destination: _Destination
    sync_policy: _SyncPolicy


class StrictApplication(Model):
    """An Argo CD Application as gen renders it (cluster or root)."""

    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["Application"]
    metadata: _Metadata
    spec: _ApplicationSpec


class _ResourceKind(Model):
    group: str
    kind: Annotated[str, Pattern(r"^[A-Z][A-Za-z0-9]*$")]


class _AppProjectSpec(Model):
    description: str
    # Git URLs only: a wildcard would defeat the point of a least-privilege project.
    source_repos: Annotated[list[GitURL], Field(min_length=1)]
    destinations: list[_Destination]
    cluster_resource_whitelist: list[_ResourceKind]
    namespace_resource_whitelist: Annotated[list[_ResourceKind], Field(min_length=1)]


class StrictAppProject(Model):
    """An Argo CD AppProject as gen renders it (the fleet's or the bootstrap's)."""

    api_version: Literal["argoproj.io/v1alpha1"]
    kind: Literal["AppProject"]
    metadata: _Metadata
    spec: _AppProjectSpec


_STRICT: dict[str, type[Model]] = {"Application": StrictApplication, "AppProject": StrictAppProject}


def check_strict(obj: Mapping[str, Any]) -> list[Finding]:
    """Findings for one rendered Argo CD object against the strict model of its kind."""
    model = _STRICT.get(str(obj.get("kind")))
    if model is None:
        return [f"{ident(obj)}: kind: not an Argo CD object gen renders (expected one of {', '.join(sorted(_STRICT))})"]
    try:
        model.model_validate(dict(obj))
    except ValidationError as e:
        return [
            f"{ident(obj)}: {_dotted(i.loc) or 'object'}: "
            + ("unknown field (gen never emits it)" if i.kind == "unknown" else i.message)
            for i in issues(model, e)
        ]
    return []


# ------------------------------------------------------------------ CRD schemas

# The ObjectMeta fields a manifest may set: a CRD's schema says only `type: object`, and the API
# server drops any other key.
_OBJECT_META = {
    "type": "object",
    "properties": {
        k: {} for k in ("name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences")
    },
    "additionalProperties": False,
}


@functools.lru_cache(maxsize=8)
def _crd_validators(crd_dir: str) -> dict[tuple[str, str], Any]:
    # Parsing the three CRDs costs most of a second; `gen validate` and the tests
    # ask for the same folder many times. Imported here, so rendering never pays for it; it has no stubs.
    validators = importlib.import_module("jsonschema.validators")
    found = {}
    for path in sorted(Path(crd_dir).glob("*.y*ml")):
        for key, schema in _served_schemas(path):
            converted = _json_schema(schema)
            converted.setdefault("properties", {})["metadata"] = _OBJECT_META
            found[key] = validators.Draft7Validator(converted)
    return found


def _served_schemas(path: Path) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    """((apiVersion, kind), openAPIV3Schema) of each served version of the CRDs in a file.

    A file gen cannot use is a UsageError naming it: checking against part of the folder would pass
    objects that the missing schemas refuse.
    """
    try:
        # Not repofs: the folder is the user's, not a pull request's, and Argo CD's CRDs exceed a manifest's bound.
        docs = yamlio.parse_all_bytes(path.read_bytes(), path.name)
    except OSError as e:
        raise UsageError(f"{path.name}: cannot be read: {e.strerror or e}") from None
    except SpecError as e:
        p = e.problems[0]
        raise UsageError(f"{p.file}:{p.line}:{p.col}: {p.message}") from None
    found = []
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        names, versions = spec.get("names"), spec.get("versions")
        if not isinstance(names, dict) or not isinstance(names.get("kind"), str) or not isinstance(versions, list):
            raise UsageError(
                f"{path.name}: a CustomResourceDefinition without spec.names.kind or spec.versions; "
                "give the CRD files as Argo CD publishes them"
            )
        for version in (v for v in versions if isinstance(v, dict) and v.get("served")):
            schema = version.get("schema")
            schema = schema.get("openAPIV3Schema") if isinstance(schema, dict) else None
            if isinstance(schema, dict):
                found.append(((f"{spec.get('group')}/{version.get('name')}", names["kind"]), schema))
    return found


def _json_schema(node: Any) -> Any:
    # OpenAPI v3 is nearly JSON Schema: of the `x-kubernetes-*` keys only int-or-string needs
    # spelling out, as does `nullable`. Descriptions (most of the bulk) go; a property so named stays.
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "allOf", "oneOf") and isinstance(value, list):
            out[key] = [_json_schema(sub) for sub in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _json_schema(value)
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    # A key the schema does not declare is refused: the API server would silently drop (prune) it.
    keep = out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not keep:
        out["additionalProperties"] = False
    return out


def check_crds(objs: Sequence[Mapping[str, Any]], crd_dir: Path) -> list[Finding]:
    """Findings for objects against the served `openAPIV3Schema` of the CRDs in crd_dir, undeclared keys included."""
    if not crd_dir.is_dir():
        raise UsageError(f"--crds {crd_dir}: no such directory")
    try:
        validators = _crd_validators(str(crd_dir.resolve()))
    except UsageError as problem:
        raise UsageError(f"--crds {crd_dir}: {problem}") from None
    if not validators:
        raise UsageError(f"--crds {crd_dir}: holds no CustomResourceDefinition")
    findings: list[Finding] = []
    for obj in objs:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        validator = validators.get(key)
        if validator is None:
            findings.append(f"{ident(obj)}: apiVersion: no served CRD version for {key[0]} {key[1]} in {crd_dir}")
            continue
        errors = []
        for e in validator.iter_errors(obj):
            if e.validator != "additionalProperties":
                errors.append((_dotted(e.absolute_path), e.message))
                continue
            for name in (k for k in e.instance if k not in e.schema.get("properties", {})):
                where = _dotted((*e.absolute_path, name))
                errors.append((where, f"unknown field {where} (the API server would drop it)"))
        findings += [f"{ident(obj)}: {where or 'object'}: {message}" for where, message in sorted(errors)]
    return findings


# ------------------------------------------------------------------ destinations

# Kinds without a namespace among those the stack renders.
_CLUSTER_SCOPED = frozenset(kind for _, kind in CLUSTER_KINDS)


def _placement(app: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, str], str]]:
    """An Application's cluster, and where it deploys: (its `target`, namespace)."""
    meta, dest = app.get("metadata", {}), app.get("spec", {}).get("destination", {})
    cluster = (meta.get("labels") or {}).get("cluster") or meta.get("name")
    return str(cluster), (target(dest.get("server"), dest.get("name")), str(dest.get("namespace")))


def _shared(owners: Iterable[tuple[str, Any]]) -> list[tuple[Any, str]]:
    """(key, the clusters' names) for each key more than one cluster holds, sorted by key."""
    by_key: dict[Any, list[str]] = defaultdict(list)
    for cluster, key in owners:
        by_key[key].append(cluster)
    return [(key, ", ".join(sorted(names))) for key, names in sorted(by_key.items()) if len(names) > 1]


def check_destinations(
    apps: Sequence[Mapping[str, Any]],
    clusters: Sequence[Cluster] = (),
    objects: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[Finding]:
    """Findings for Applications that would deploy the same objects.

    Every cluster renders the same object names, so two Applications with the same destination and
    namespace overlap. With `clusters`, two Grafana datasources in one namespace on one destination
    are reported too; with `objects` (each cluster's built manifests, by cluster name), any object two
    Applications on one destination would both own. A destination given by `server` in one spec and by
    `name` in another cannot be matched here: Argo CD alone knows that they are the same cluster.
    """
    placed = [
        _placement(app)
        for app in apps
        if app.get("kind") == "Application" and app.get("metadata", {}).get("name") != ROOT_NAME
    ]
    dest_of = dict(placed)
    findings = [
        f"clusters {names}: all deploy to {where[0]} {where[1]} namespace {ns} and would manage the same objects; "
        "give each its own namespace or destination"
        for (where, ns), names in _shared(placed)
    ]
    grafana = [
        (c.name, (dest_of[c.name][0], c.spec.grafana.namespace))
        for c in clusters
        if c.spec.grafana.enabled and c.name in dest_of
    ]
    findings += [
        f"clusters {names}: all put their Grafana datasource (ConfigMap {DATASOURCE_CONFIGMAP}) into namespace "
        f"{ns} on {where[0]} {where[1]}; give each cluster its own grafana.namespace or destination"
        for (where, ns), names in _shared(grafana)
    ]
    owned = set()  # a set: a cluster deploying one object twice does not share it with itself
    for cluster, objs in (objects or {}).items():
        if cluster not in dest_of:
            continue
        where, default_ns = dest_of[cluster]
        for obj in objs:
            meta = obj.get("metadata") or {}
            kind = str(obj.get("kind"))
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            ns = "" if kind in _CLUSTER_SCOPED else str(meta.get("namespace") or default_ns)
            owned.add((cluster, (where, group, kind, ns, str(meta.get("name")))))
    for (where, _group, kind, ns, name), names in _shared(owned):
        scope = f"namespace {ns}" if ns else "cluster scope"
        findings.append(
            f"clusters {names}: all deploy {kind}/{name} ({scope}) to {where[0]} {where[1]}; "
            "only one Application can own it"
        )
    return findings


# ------------------------------------------------------------------ sources


def check_sources(apps: Sequence[Mapping[str, Any]], root: Path) -> list[Finding]:
    """Findings for Applications whose source.path is not what Argo CD will need.

    A Kustomize source must be a folder of the repository holding a kustomization.yaml; a directory
    source (the bootstrap's root) must be a folder that holds none, or Argo CD refuses to render it.
    Argo CD reads the paths from the top of the repository, where the fleet may sit in a folder.
    """
    prefix = writer.repo_prefix(root)
    findings = []
    for app in apps:
        if app.get("kind") != "Application":
            continue
        source = app.get("spec", {}).get("source") or {}
        path = source.get("path")
        where = f"{ident(app)}: spec.source.path"
        if not isinstance(path, str):
            findings.append(f"{where}: missing")
            continue
        pure = PurePosixPath(path)
        if pure.is_absolute() or ".." in pure.parts or path in ("", "."):
            findings.append(f"{where}: {path!r} must be a folder inside the repository")
            continue
        if not path.startswith(prefix):
            findings.append(f"{where}: {path} is outside the fleet's folder in its repository ({prefix})")
            continue
        folder = root / path.removeprefix(prefix)
        if not folder.is_dir():
            findings.append(f"{where}: {path} does not exist in the repository")
        elif "directory" in source:
            if (folder / KUSTOMIZATION).exists():
                findings.append(f"{where}: {path} holds a {KUSTOMIZATION}, which a directory source cannot render")
        elif not (folder / KUSTOMIZATION).is_file():
            findings.append(f"{where}: {path} holds no {KUSTOMIZATION}")
    return findings


# ------------------------------------------------------------------ what the root syncs


def check_claimed(
    root: Path, files: Mapping[str, Sequence[Mapping[str, Any]]], clusters: Sequence[Cluster]
) -> list[Finding]:
    """Findings for what the root Application would sync that gen does not render.

    Every entry under argocd/applications/ must be a spec's Application file, with gen's header and that
    one Application, reading from a repository the one AppProject in project.yaml allows. `files`: the
    parsed Argo CD files by path.
    """
    findings: list[Finding] = []
    claimed = {application_file(c.name): app_name(c.name) for c in clusters}
    for name in writer.tree_entries(root / APPLICATIONS_DIR):
        rel = f"{APPLICATIONS_DIR}/{name}"
        if rel not in claimed:
            findings.append(
                f"{rel}: no spec renders this file, and Argo CD's root Application would sync it: remove it"
            )
            continue
        if not layout.generated_file(root / rel):
            findings.append(f"{rel}: gen's header line is gone: only files gen renders may be here")
        objects = [ident(d) for d in files.get(rel, [])]
        if objects != [f"Application/{claimed[rel]}"]:
            findings.append(
                f"{rel}: holds {', '.join(objects) or 'nothing'}; gen renders only Application/{claimed[rel]} here"
            )
    projects = files.get(PROJECT_FILE, [])
    if [d.get("kind") for d in projects] != ["AppProject"]:
        held = ", ".join(ident(d) for d in projects) or "nothing"
        findings.append(f"{PROJECT_FILE}: holds {held}; gen renders exactly one AppProject here")
        return findings
    spec = projects[0].get("spec") or {}
    repos = spec.get("sourceRepos") if isinstance(spec, Mapping) else None
    allowed = {str(r) for r in repos} if isinstance(repos, list) else set()
    for rel, docs in files.items():
        if not rel.startswith(APPLICATIONS_DIR + "/"):
            continue
        for app in docs:
            source = (app.get("spec") or {}).get("source") or {}
            repo = source.get("repoURL") if isinstance(source, Mapping) else None
            if app.get("kind") == "Application" and repo not in allowed:
                findings.append(
                    f"{rel}: {ident(app)}: spec.source.repoURL: {secrets_scan.redact_url(str(repo))} is not "
                    f"among the AppProject's sourceRepos ({PROJECT_FILE})"
                )
    return findings


# ------------------------------------------------------------------ all of it


def check_repository(
    root: Path,
    clusters: Sequence[Cluster],
    crd_dir: Path | None = None,
    objects: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> list[Finding]:
    """Every Argo CD check on the files committed under root: what `gen validate` runs.

    Findings about one object are prefixed with its file. `objects` are the built
    manifests by cluster name, when the caller has already run kustomize.
    """
    rels = [path.relative_to(root).as_posix() for path in sorted((root / ARGOCD_DIR).rglob("*.yaml"))]
    files = {rel: [d for d in yamlio.parse_all_file(root / rel, rel) if isinstance(d, dict)] for rel in rels}
    if not files:
        return [f"{ARGOCD_DIR}/: nothing rendered (run: gen render --all)"]
    findings: list[Finding] = []
    for rel, docs in files.items():
        findings += [f"{rel}: {f}" for obj in docs for f in check_strict(obj)]
        if crd_dir is not None:
            findings += [f"{rel}: {f}" for f in check_crds(docs, crd_dir)]
        # No credential in git, in what Argo CD reads as much as in the overlays.
        findings += [f"{rel}: {f}" for f in secrets_scan.scan_objects(docs)]
    findings += check_claimed(root, files, clusters)
    apps = [o for docs in files.values() for o in docs if o.get("kind") == "Application"]
    findings += check_sources(apps, root)
    findings += check_destinations(apps, clusters, objects)
    return findings
