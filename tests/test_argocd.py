"""Argo CD delivery: Applications from specs, the app-of-apps bootstrap, the AppProject, checks."""

from __future__ import annotations

import copy
import re
import shutil
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from argo_fixtures import CRDS, IN_CLUSTER, PROJECT, REPO, expand_braces, load, spec_text, write, write_documents

from gen import yamlio
from gen.components import argocd as argo
from gen.errors import SpecError, UsageError
from gen.render import layout
from gen.spec.cluster import ROOT_NAME
from gen.spec.fleet import Fleet, load_fleet, load_fleet_text
from gen.spec.loader import LoadedCluster, load_text
from gen.validate import kustomize
from gen.validate.argo_checks import (
    check_crds,
    check_destinations,
    check_repository,
    check_sources,
    check_strict,
)
from tests.conftest import EXAMPLES, FIXTURES
from tests.git_fixtures import gen

needs_crds = pytest.mark.skipif(
    not CRDS.is_dir(),
    reason=f"Argo CD CRDs not found at {CRDS} (../shared/crds is absent from a fresh clone)",
)

FLEET = Fleet.model_validate({"repoURL": REPO})


def _loaded(tmp_path: Path, **specs: str) -> list[LoadedCluster]:
    for name, text in specs.items():
        write(tmp_path, name, text)
    return [load(tmp_path, name) for name in sorted(specs)]


def _documents(specs: list[LoadedCluster], fleet: Fleet) -> dict[str, list[dict[str, Any]]]:
    """Every Argo CD file for these specs, by path, sorted, as a full render writes them."""
    docs = {
        argo.BOOTSTRAP_FILE: argo.bootstrap(fleet),
        argo.PROJECT_FILE: [argo.project(map(argo.placement, specs), fleet)],
    }
    docs.update((argo.application_file(lc.name), [argo.application(lc.cluster, fleet)]) for lc in specs)
    return dict(sorted(docs.items()))


def _resolve_fleet(fleet: Fleet | None, clusters: list[LoadedCluster]) -> Fleet:
    return argo.resolve_sources(fleet, [argo.source(lc) for lc in clusters])


def _all_objects(documents: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [obj for docs in documents.values() for obj in docs]


def _kustomize_paths(objs: list[dict[str, Any]]) -> list[str]:
    """The source paths Argo CD builds with kustomize: every Application's but the directory source's."""
    sources = [o["spec"]["source"] for o in objs if o["kind"] == "Application"]
    return sorted({s["path"] for s in sources if "directory" not in s})


# ------------------------------------------------------------------ Application fields


def test_application_fields_come_from_the_spec(tmp_path: Path) -> None:
    text = spec_text(
        "lab-west",
        namespace="prof",
        server=None,
        dest_name="west-k8s",
        repo="git@github.com:acme/fleet.git",
        revision="release-1",
        project="profiling",
        automated=False,
    )
    (lc,) = _loaded(tmp_path, **{"lab-west": text})
    app = argo.application(lc.cluster, FLEET)

    assert list(app) == ["apiVersion", "kind", "metadata", "spec"]
    assert app["metadata"] == {
        "name": "profiling-lab-west",
        "namespace": "argocd",
        "labels": {
            "app.kubernetes.io/managed-by": "gen",
            "app.kubernetes.io/part-of": "pyroscope-profiling",
            "cluster": "lab-west",
        },
        "finalizers": ["resources-finalizer.argocd.argoproj.io"],
    }
    spec = app["spec"]
    assert spec["project"] == "profiling"
    assert spec["source"] == {
        "repoURL": "git@github.com:acme/fleet.git",
        "targetRevision": "release-1",
        "path": "overlays/lab-west",
    }
    assert spec["destination"] == {"name": "west-k8s", "namespace": "prof"}
    assert "automated" not in spec["syncPolicy"]
    # Manual sync still creates the namespace and retries.
    assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]
    assert spec["syncPolicy"]["retry"] == {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}}


def test_application_defaults_automated_sync(tmp_path: Path) -> None:
    (lc,) = _loaded(tmp_path, a=spec_text("a"))
    setting = Fleet.model_validate({"repoURL": REPO, "argocdNamespace": "gitops"})
    spec = argo.application(lc.cluster, setting)["spec"]

    # The fleet's own least-privilege AppProject, never Argo CD's built-in `default`.
    assert spec["project"] == setting.project
    assert spec["source"]["targetRevision"] == "main"
    assert spec["destination"] == {"server": IN_CLUSTER, "namespace": "profiling"}
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert spec["syncPolicy"]["syncOptions"] == sorted(spec["syncPolicy"]["syncOptions"])
    assert {"CreateNamespace=true", "PrunePropagationPolicy=foreground"} <= set(spec["syncPolicy"]["syncOptions"])
    # PruneLast would prune in a wave after the DaemonSets, reached only once they are healthy: a DaemonSet
    # with one pod that never becomes ready is Progressing for ever, and every sync that prunes would hang.
    assert not any(o.startswith("PruneLast") for o in spec["syncPolicy"]["syncOptions"])
    assert argo.application(lc.cluster, setting)["metadata"]["namespace"] == "gitops"


def _options(obj: dict[str, Any], annotation: str) -> set[str]:
    """The options in one of Argo CD's annotations, read as Argo CD reads them: comma-separated, trimmed."""
    value = (obj["metadata"].get("annotations") or {}).get(annotation, "")
    return {o.strip() for o in value.split(",")} - {""}


def test_a_stack_namespace_no_longer_rendered_is_neither_pruned_nor_deleted(tmp_path: Path) -> None:
    def namespaces(lc: LoadedCluster) -> dict[str, dict[str, Any]]:
        text = layout.render_cluster(lc.cluster).get(f"overlays/{lc.name}/{layout.NAMESPACE_FILE}", "")
        return {o["metadata"]["name"]: o for o in yamlio.parse_all_plain(text) if isinstance(o, dict)}

    (before,) = _loaded(tmp_path, a=spec_text("a", namespace="prof-old"))
    (after,) = _loaded(tmp_path, a=spec_text("a", namespace="prof-new"))
    old = namespaces(before)["prof-old"]
    # After the change Argo CD finds prof-old live, tracked by the Application and no longer in git:
    # with prune on, only Prune=false keeps it (and whatever else it holds), and only IgnoreExtraneous
    # keeps the Application Synced rather than OutOfSync (and self-healing) for ever after.
    assert "prof-old" not in namespaces(after)
    assert {"Delete=false", "Prune=false"} <= _options(old, "argocd.argoproj.io/sync-options")
    assert "IgnoreExtraneous" in _options(old, "argocd.argoproj.io/compare-options")


# ------------------------------------------------------------------ bootstrap (app-of-apps)


def _synced_by_root(root: Path, bootstrap_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects the root Application would sync from a checkout at root."""
    (app,) = [d for d in bootstrap_docs if d["kind"] == "Application"]
    source = app["spec"]["source"]
    base = root / source["path"]
    patterns = expand_braces(source["directory"]["include"])
    found = []
    files = base.rglob("*.yaml") if source["directory"]["recurse"] else base.glob("*.yaml")
    for path in sorted(files):
        rel = path.relative_to(base).as_posix()
        if any(fnmatchcase(rel, p) for p in patterns):
            found += yamlio.parse_all_plain(path.read_text(encoding="utf-8"))
    return found


def test_bootstrap_yields_one_application_per_spec(tmp_path: Path) -> None:
    clusters = _loaded(
        tmp_path,
        a=spec_text("a", namespace="ns-a"),
        b=spec_text("b", namespace="ns-b"),
        c=spec_text("c", server=None, dest_name="c"),
    )
    setting = _resolve_fleet(None, clusters)
    repo = tmp_path / "repo"
    docs = _documents(clusters, setting)
    write_documents(repo, docs)

    synced = _synced_by_root(repo, docs[argo.BOOTSTRAP_FILE])
    apps = sorted(o["metadata"]["name"] for o in synced if o["kind"] == "Application")
    assert apps == ["profiling-a", "profiling-b", "profiling-c"]
    assert [o["metadata"]["name"] for o in synced if o["kind"] == "AppProject"] == ["profiling"]
    # The root never manages the file the user applied by hand.
    assert ROOT_NAME not in apps

    # Spec b is removed: its Application is no longer rendered, so the root prunes it.
    shutil.rmtree(repo)
    kept = [lc for lc in clusters if lc.name != "b"]
    docs = _documents(kept, setting)
    assert sorted(p for p in docs if p.startswith(argo.APPLICATIONS_DIR + "/")) == [
        "argocd/applications/a.yaml",
        "argocd/applications/c.yaml",
    ]
    write_documents(repo, docs)
    synced = _synced_by_root(repo, docs[argo.BOOTSTRAP_FILE])
    assert sorted(o["metadata"]["name"] for o in synced if o["kind"] == "Application") == ["profiling-a", "profiling-c"]


def _wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def test_the_project_syncs_after_the_applications_so_a_removed_cluster_is_deleted_while_allowed(
    tmp_path: Path,
) -> None:
    # Removing spec b prunes its Application and drops its destination from the project in one root
    # sync. Argo CD waits for a pruned object's finalizer before the next wave, and that finalizer
    # deletes only what the project still allows: the project must come in a later wave.
    clusters = _loaded(tmp_path, a=spec_text("a", namespace="ns-a"), b=spec_text("b", namespace="ns-b"))
    docs = _documents(clusters, _resolve_fleet(None, clusters))
    write_documents(tmp_path / "repo", docs)
    synced = _synced_by_root(tmp_path / "repo", docs[argo.BOOTSTRAP_FILE])
    (project,) = [o for o in synced if o["kind"] == "AppProject"]
    assert {_wave(o) for o in synced if o["kind"] == "Application"} == {0}
    assert _wave(project) > 0


def test_bootstrap_root_application() -> None:
    setting = Fleet.model_validate(
        {"repoURL": REPO, "targetRevision": "prod", "argocdNamespace": "gitops", "project": "lab"}
    )
    project, root = argo.bootstrap(setting)

    assert (project["kind"], project["metadata"]["name"]) == ("AppProject", "profiling-fleet")
    assert project["spec"]["sourceRepos"] == [REPO]
    assert project["spec"]["clusterResourceWhitelist"] == []
    assert project["spec"]["destinations"] == [{"server": IN_CLUSTER, "namespace": "gitops"}]
    assert (root["kind"], root["metadata"]["name"]) == ("Application", "profiling-fleet")
    assert root["metadata"]["namespace"] == "gitops"
    # Deleting the root must not cascade into every cluster's stack.
    assert "finalizers" not in root["metadata"]
    assert root["spec"]["project"] == "profiling-fleet"
    assert root["spec"]["source"]["repoURL"] == REPO
    assert root["spec"]["source"]["targetRevision"] == "prod"
    assert root["spec"]["source"]["path"] == "argocd"
    assert root["spec"]["destination"] == {"server": IN_CLUSTER, "namespace": "gitops"}
    assert root["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


# ------------------------------------------------------------------ AppProject


def test_app_project_is_least_privilege(tmp_path: Path) -> None:
    clusters = _loaded(
        tmp_path,
        a=spec_text("a"),
        b=spec_text(
            "b",
            namespace="prof-b",
            server=None,
            dest_name="remote",
            repo="git@github.com:acme/profiling-gitops.git",
            grafana_namespace="grafana",
        ),
        c=spec_text("c", namespace="prof-c", server="https://10.0.0.1:6443", grafana=False),
    )
    ssh = "git@github.com:acme/profiling-gitops.git"
    allowing = Fleet.model_validate({"repoURL": REPO, "sourceRepos": [ssh]})
    project = argo.project(map(argo.placement, reversed(clusters)), allowing)

    assert project["metadata"] == {
        "name": "profiling",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/managed-by": "gen", "app.kubernetes.io/part-of": "pyroscope-profiling"},
        "annotations": {"argocd.argoproj.io/sync-wave": "1"},
    }
    spec = project["spec"]
    # fleet.yaml's repositories: a spec names one of them, never widens them.
    assert spec["sourceRepos"] == [ssh, REPO]
    assert argo.project(map(argo.placement, clusters), FLEET)["spec"]["sourceRepos"] == [REPO]
    assert spec["destinations"] == [
        {"name": "remote", "namespace": "grafana"},
        {"name": "remote", "namespace": "prof-b"},
        {"server": "https://10.0.0.1:6443", "namespace": "prof-c"},
        {"server": IN_CLUSTER, "namespace": "monitoring"},
        {"server": IN_CLUSTER, "namespace": "profiling"},
    ]
    assert spec["clusterResourceWhitelist"] == [
        {"group": "", "kind": "Namespace"},
        {"group": "rbac.authorization.k8s.io", "kind": "ClusterRole"},
        {"group": "rbac.authorization.k8s.io", "kind": "ClusterRoleBinding"},
    ]
    kinds = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    assert kinds == {
        ("", "ConfigMap"),
        ("", "Service"),
        ("", "ServiceAccount"),
        ("apps", "DaemonSet"),
        ("apps", "Deployment"),
        ("networking.k8s.io", "NetworkPolicy"),
    }
    assert ("", "Secret") not in kinds


def _glob_matches(pattern: str, text: str) -> bool:
    """Whether Argo CD's glob (gobwas/glob, no separators) matches: `\\` escapes, `*`, `?` and `[...]`."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
            out += re.escape(pattern[i])
        elif c == "*":
            out += ".*"
        elif c == "?":
            out += "."
        elif c == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            negated = body.startswith("!")
            out += "[" + "^" * negated + re.sub(r"([\\^\[\]])", r"\\\1", body[negated:]) + "]"
            i = end
        else:
            assert c not in "{}", "no braces in a destination"
            out += re.escape(c)
        i += 1
    return re.fullmatch(out, text, re.DOTALL) is not None


def test_each_application_destination_is_one_its_project_allows(tmp_path: Path) -> None:
    ipv6 = "https://[fd00::1]:6443"
    clusters = _loaded(
        tmp_path,
        a=spec_text("a"),
        b=spec_text("b", namespace="prof-b", server=ipv6),
        c=spec_text("c", namespace="prof-c", server=None, dest_name="lab-c"),
    )
    project = argo.project(map(argo.placement, clusters), FLEET)
    assert check_strict(project) == []
    allowed = project["spec"]["destinations"]
    for lc in clusters:
        dest = argo.application(lc.cluster, FLEET)["spec"]["destination"]
        (field,) = {"server", "name"} & set(dest)
        # Argo CD refuses to sync an Application whose destination no project destination matches.
        assert any(
            field in d and _glob_matches(d[field], dest[field]) and _glob_matches(d["namespace"], dest["namespace"])
            for d in allowed
        ), dest
    # ...and the IPv6 server's brackets are no character class: they allow that server alone.
    assert not any(_glob_matches(d.get("server", ""), "https://f:6443") for d in allowed)


def test_documents_are_deterministic(tmp_path: Path) -> None:
    clusters = _loaded(tmp_path, a=spec_text("a"), b=spec_text("b", namespace="x", grafana_namespace="g"))
    once = {p: yamlio.dump_all(d) for p, d in _documents(clusters, FLEET).items()}
    backwards = _documents(list(reversed(clusters)), FLEET)
    again = {p: yamlio.dump_all(d) for p, d in backwards.items()}
    assert once == again
    assert list(once) == sorted(once)


# ------------------------------------------------------------------ fleet setting


def test_resolve_fleet_prefers_fleet_yaml(tmp_path: Path) -> None:
    clusters = _loaded(tmp_path, a=spec_text("a", revision="x"), b=spec_text("b", revision="y"))
    assert _resolve_fleet(FLEET, clusters) is FLEET


def test_resolve_fleet_derives_when_specs_agree(tmp_path: Path) -> None:
    clusters = _loaded(tmp_path, a=spec_text("a", revision="v2"), b=spec_text("b", revision="v2"))
    derived = _resolve_fleet(None, clusters)
    assert (derived.repo_url, derived.target_revision) == (REPO, "v2")
    assert (derived.argocd_namespace, derived.project) == ("argocd", "profiling")


def test_resolve_fleet_refuses_disagreeing_specs(tmp_path: Path) -> None:
    clusters = _loaded(
        tmp_path, a=spec_text("a"), b=spec_text("b", repo="git@github.com:acme/other.git", revision="dev")
    )
    with pytest.raises(SpecError) as info:
        _resolve_fleet(None, clusters)
    assert info.value.lines() == [
        "clusters/b.yaml:9:14: error: spec.argocd.repoURL: 'git@github.com:acme/other.git' differs "
        f"from '{REPO}' in clusters/a.yaml; without fleet.yaml all clusters must agree on it: "
        "write fleet.yaml to say which one the Argo CD bootstrap uses",
        "clusters/b.yaml:10:21: error: spec.argocd.targetRevision: 'dev' differs from 'main' in "
        "clusters/a.yaml; without fleet.yaml all clusters must agree on it: write fleet.yaml to "
        "say which one the Argo CD bootstrap uses",
    ]


def test_resolve_fleet_without_anything() -> None:
    with pytest.raises(UsageError, match=r"write fleet\.yaml"):
        _resolve_fleet(None, [])


def test_load_fleet(tmp_path: Path) -> None:
    assert load_fleet(tmp_path) is None
    (tmp_path / "fleet.yaml").write_text(
        f"apiVersion: gen.profiling/v1alpha1\nkind: Fleet\nspec:\n  repoURL: {REPO}\n  targetRevision: prod\n",
        encoding="utf-8",
    )
    got = load_fleet(tmp_path)
    assert got == Fleet.model_validate({"repoURL": REPO, "targetRevision": "prod"})


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            "  repoURL: ftp://x\n",
            "fleet.yaml:4:12: error: spec.repoURL: 'ftp://x' is not a git URL "
            "(https://host/org/repo.git or git@host:org/repo.git)",
        ),
        ("  targetRevision: main\n", "fleet.yaml:3:1: error: spec.repoURL: required field is missing"),
        (
            f"  repoURL: {REPO}\n  argocdNamespce: x\n",
            "fleet.yaml:5:3: error: spec.argocdNamespce: unknown field; did you mean 'argocdNamespace'?",
        ),
        (
            f"  repoURL: {REPO}\n  project: default\n",
            "fleet.yaml:5:12: error: spec.project: must not be 'default': gen renders this AppProject "
            "and would replace Argo CD's built-in project",
        ),
        (
            f"  repoURL: {REPO}\n  targetRevision: 'a b'\n",
            "fleet.yaml:5:19: error: spec.targetRevision: must be a branch, tag or commit",
        ),
    ],
)
def test_fleet_errors_are_positioned(body: str, line: str) -> None:
    text = "apiVersion: gen.profiling/v1alpha1\nkind: Fleet\nspec:\n" + body
    with pytest.raises(SpecError) as info:
        load_fleet_text(text.encode())
    assert info.value.lines() == [line]


# ------------------------------------------------------------------ spec-load negatives


def test_destination_with_both_server_and_name() -> None:
    with pytest.raises(SpecError) as info:
        load_text(spec_text("x", dest_name="lab").encode(), "clusters/x.yaml", "x")
    assert info.value.lines() == [
        "clusters/x.yaml:11:7: error: spec.argocd.destination: give exactly one of server or name"
    ]


def test_destination_with_neither() -> None:
    text = spec_text("x").replace(
        "    destination:\n      server: https://kubernetes.default.svc\n", "    destination: {}\n"
    )
    with pytest.raises(SpecError) as info:
        load_text(text.encode(), "clusters/x.yaml", "x")
    assert info.value.lines() == [
        "clusters/x.yaml:10:18: error: spec.argocd.destination: give exactly one of server or name"
    ]


def test_destination_empty_or_missing() -> None:
    empty = spec_text("x", server=None)
    with pytest.raises(SpecError) as info:
        load_text(empty.encode(), "clusters/x.yaml", "x")
    (line,) = info.value.lines()
    assert line.startswith("clusters/x.yaml:10:17: error: spec.argocd.destination: ")
    missing = empty.replace("    destination:\n", "")
    with pytest.raises(SpecError) as info:
        load_text(missing.encode(), "clusters/x.yaml", "x")
    assert info.value.lines() == ["clusters/x.yaml:8:3: error: spec.argocd.destination: required field is missing"]


@pytest.mark.parametrize("url", ["ftp://example.com/r.git", "github.com/acme/r", "not a url"])
def test_repo_url_must_be_git(url: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(spec_text("x", repo=f"'{url}'").encode(), "clusters/x.yaml", "x")
    assert info.value.lines() == [
        f"clusters/x.yaml:9:14: error: spec.argocd.repoURL: {url!r} is not a git URL "
        "(https://host/org/repo.git or git@host:org/repo.git)"
    ]


# ------------------------------------------------------------------ strict model


def _rendered(tmp_path: Path) -> list[dict[str, Any]]:
    clusters = _loaded(
        tmp_path, a=spec_text("a"), b=spec_text("b", namespace="x", server=None, dest_name="k", automated=False)
    )
    return _all_objects(_documents(clusters, FLEET))


def test_strict_model_accepts_everything_rendered(tmp_path: Path) -> None:
    objs = _rendered(tmp_path)
    assert {o["kind"] for o in objs} == {"Application", "AppProject"}
    assert [f for o in objs for f in check_strict(o)] == []


def test_strict_model_bites(tmp_path: Path) -> None:
    app = next(o for o in _rendered(tmp_path) if o["metadata"]["name"] == "profiling-a")
    bad = copy.deepcopy(app)
    bad["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    bad["spec"]["syncPolicy"]["syncOptions"].append("Replace=true")
    bad["spec"]["source"]["chart"] = "pyroscope"
    assert check_strict(bad) == [
        "Application/profiling-a: spec.source.chart: unknown field (gen never emits it)",
        "Application/profiling-a: spec.syncPolicy.automated.prune: must be true, got string 'yes'",
        "Application/profiling-a: spec.syncPolicy.syncOptions: Replace=true: not a sync option "
        "gen sets (CreateNamespace=true, FailOnSharedResource=true, PrunePropagationPolicy=foreground)",
    ]
    elsewhere = copy.deepcopy(app)
    elsewhere["spec"]["destination"]["server"] = "http://10.0.0.1:6443"  # no spec can name it
    assert check_strict(elsewhere) == [
        "Application/profiling-a: spec.destination.server: must be the https:// URL of a Kubernetes API server"
    ]
    assert check_strict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}) == [
        "ConfigMap/x: kind: not an Argo CD object gen renders (expected one of AppProject, Application)"
    ]


# ------------------------------------------------------------------ CRD schemas


@needs_crds
def test_crd_validation_passes_for_every_rendered_object(tmp_path: Path) -> None:
    objs = _rendered(tmp_path)
    # Checked as written to and read back from disk, the way `gen validate` sees them.
    reread = yamlio.parse_all_plain(yamlio.dump_all(objs))
    assert check_crds(reread, CRDS) == []


@needs_crds
def test_crd_validation_bites(tmp_path: Path) -> None:
    app = next(o for o in _rendered(tmp_path) if o["metadata"]["name"] == "profiling-a")
    bad = copy.deepcopy(app)
    bad["spec"]["syncPolicy"]["automated"]["prune"] = "yes"
    bad["spec"]["syncPolicy"]["retry"]["backof"] = bad["spec"]["syncPolicy"]["retry"].pop("backoff")
    bad["metadata"]["label"] = {"a": "b"}
    assert check_crds([bad], CRDS) == [
        "Application/profiling-a: metadata.label: unknown field metadata.label (the API server would drop it)",
        "Application/profiling-a: spec.syncPolicy.automated.prune: 'yes' is not of type 'boolean'",
        "Application/profiling-a: spec.syncPolicy.retry.backof: unknown field "
        "spec.syncPolicy.retry.backof (the API server would drop it)",
    ]
    project = next(o for o in _rendered(tmp_path) if o["metadata"]["name"] == "profiling")
    broken = copy.deepcopy(project)
    del broken["spec"]["clusterResourceWhitelist"][0]["group"]
    assert check_crds([broken], CRDS) == [
        "AppProject/profiling: spec.clusterResourceWhitelist[0]: 'group' is a required property"
    ]


@needs_crds
def test_crd_validation_needs_a_served_version() -> None:
    obj = {"apiVersion": "argoproj.io/v1beta9", "kind": "Application", "metadata": {"name": "x"}}
    (finding,) = check_crds([obj], CRDS)
    assert finding.startswith("Application/x: apiVersion: no served CRD version for argoproj.io/v1beta9 Application")


def test_crd_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        check_crds([], tmp_path / "absent")
    with pytest.raises(UsageError, match="no CustomResourceDefinition"):
        check_crds([], tmp_path)


_NOT_A_CRD = (
    "zz.yaml: a CustomResourceDefinition without spec.names.kind or spec.versions; "
    "give the CRD files as Argo CD publishes them"
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"a: [\n", "zz.yaml:2:1: invalid YAML: while parsing a flow node did not find expected node content"),
        (b"kind: \xff\n", "zz.yaml:1:1: not valid UTF-8 (byte 0xff)"),
        (b"kind: CustomResourceDefinition\nspec: null\n", _NOT_A_CRD),
        (
            b"kind: CustomResourceDefinition\nspec:\n  group: argoproj.io\n  versions:\n  - name: v1\n"
            b"    served: true\n    schema: {openAPIV3Schema: {type: object}}\n",
            _NOT_A_CRD,
        ),
    ],
)
def test_a_crd_file_gen_cannot_use_is_a_usage_error_naming_it(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "zz.yaml").write_bytes(content)
    with pytest.raises(UsageError) as caught:
        check_crds([], tmp_path)
    assert caught.value.lines() == [f"error: --crds {tmp_path}: {problem}"]


@needs_crds
def test_validate_with_a_broken_crd_file_exits_2_naming_it(examples: Path, tmp_path: Path) -> None:
    crds = tmp_path / "crds"
    shutil.copytree(CRDS, crds)
    (crds / "zz.yaml").write_bytes(b"kind: CustomResourceDefinition\nspec: null\n")
    result = gen("validate", "--crds", str(crds), "--root", str(examples))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: --crds {crds}: {_NOT_A_CRD}"]


def test_validate_refuses_crds_with_cluster_names(examples: Path) -> None:
    # The Argo CD objects are checked for the whole fleet only: --crds would do nothing.
    result = gen("validate", "lab-minimal", "--crds", str(examples), "--root", str(examples))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: --crds checks the Argo CD objects, which concern the whole fleet: give no cluster names\n",
    )


# ------------------------------------------------------------------ destinations


def test_two_clusters_on_one_destination_namespace_are_reported(tmp_path: Path) -> None:
    clusters = _loaded(
        tmp_path, a=spec_text("a"), b=spec_text("b"), c=spec_text("c", namespace="other", grafana_namespace="grafana-c")
    )
    apps = [argo.application(lc.cluster, FLEET) for lc in clusters]
    assert check_destinations(apps, [lc.cluster for lc in clusters]) == [
        f"clusters a, b: all deploy to server {IN_CLUSTER} namespace profiling and would manage "
        "the same objects; give each its own namespace or destination",
        "clusters a, b: all put their Grafana datasource (ConfigMap pyroscope-datasource) into "
        f"namespace monitoring on server {IN_CLUSTER}; give each cluster its own "
        "grafana.namespace or destination",
    ]


def test_distinct_destinations_are_fine(tmp_path: Path) -> None:
    clusters = _loaded(
        tmp_path,
        a=spec_text("a"),
        b=spec_text("b", server="https://10.0.0.2:6443"),
        c=spec_text("c", server=None, dest_name="c-k8s"),
        d=spec_text("d", namespace="prof-d", grafana=False),
    )
    apps = [argo.application(lc.cluster, FLEET) for lc in clusters]
    assert check_destinations(apps, [lc.cluster for lc in clusters]) == []


def test_shared_cluster_scoped_objects_are_reported(tmp_path: Path) -> None:
    clusters = _loaded(tmp_path, a=spec_text("a"), b=spec_text("b", namespace="prof-b", grafana=False))
    apps = [argo.application(lc.cluster, FLEET) for lc in clusters]

    def built(ns: str) -> list[dict[str, Any]]:
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "pyroscope-ebpf"},
            },
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "pyroscope-ebpf", "namespace": ns}},
        ]

    assert check_destinations(apps, objects={"a": built("profiling"), "b": built("prof-b")}) == [
        f"clusters a, b: all deploy ClusterRole/pyroscope-ebpf (cluster scope) to server "
        f"{IN_CLUSTER}; only one Application can own it"
    ]


# ------------------------------------------------------------------ sources


def test_sources_must_exist_and_be_kustomizations(tmp_path: Path) -> None:
    clusters = _loaded(tmp_path, a=spec_text("a"), b=spec_text("b", namespace="b"), c=spec_text("c", namespace="c"))
    setting = _resolve_fleet(None, clusters)
    docs = _documents(clusters, setting)
    write_documents(tmp_path, docs)
    (tmp_path / "overlays" / "a").mkdir(parents=True)
    (tmp_path / "overlays" / "a" / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "overlays" / "b").mkdir()
    apps = _all_objects(docs)

    assert _kustomize_paths(apps) == ["overlays/a", "overlays/b", "overlays/c"]
    assert check_sources(apps, tmp_path) == [
        "Application/profiling-b: spec.source.path: overlays/b holds no kustomization.yaml",
        "Application/profiling-c: spec.source.path: overlays/c does not exist in the repository",
    ]
    (tmp_path / "argocd" / "kustomization.yaml").write_text("resources: []\n")
    assert (
        "Application/profiling-fleet: spec.source.path: argocd holds a kustomization.yaml, "
        "which a directory source cannot render"
    ) in check_sources(apps, tmp_path)
    escaping = copy.deepcopy(apps[0])
    escaping["spec"]["source"]["path"] = "../elsewhere"
    assert check_sources([escaping], tmp_path) == [
        "Application/profiling-a: spec.source.path: '../elsewhere' must be a folder inside the repository"
    ]


# ------------------------------------------------------------------ the example fleet


def test_example_clusters(tmp_path: Path) -> None:
    clusters = [
        load_text((FIXTURES / "clusters" / f"{n}.yaml").read_bytes(), f"clusters/{n}.yaml", n) for n in EXAMPLES
    ]
    docs = _documents(clusters, FLEET)
    objs = _all_objects(docs)
    for lc in clusters:
        app = docs[argo.application_file(lc.name)][0]
        argocd = lc.cluster.spec.argocd
        assert app["spec"]["source"] == {
            "repoURL": argocd.repo_url,
            "targetRevision": argocd.target_revision,
            "path": f"overlays/{lc.name}",
        }
        assert app["spec"]["project"] == (argocd.project or FLEET.project)
        assert app["spec"]["destination"]["namespace"] == lc.cluster.spec.namespace
        assert ("automated" in app["spec"]["syncPolicy"]) is argocd.automated
        for rel, text in layout.render_cluster(lc.cluster).items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    write_documents(tmp_path, docs)
    apps = [o for o in objs if o["kind"] == "Application"]
    assert check_sources(apps, tmp_path) == []
    assert check_destinations(apps, [lc.cluster for lc in clusters]) == []
    assert [f for o in objs for f in check_strict(o)] == []
    if CRDS.is_dir():
        assert check_crds(objs, CRDS) == []
    if shutil.which("kustomize") or shutil.which("kubectl"):
        # Argo CD builds each source path with kustomize: so must it build here.
        shutil.copytree(PROJECT / "base", tmp_path / "base")
        built = {path: yamlio.parse_all_plain(kustomize.build(tmp_path / path)) for path in _kustomize_paths(apps)}
        assert all(built.values())
        by_cluster = {p.removeprefix("overlays/"): objs for p, objs in built.items()}
        assert check_destinations(apps, objects=by_cluster) == []


def test_check_repository(tmp_path: Path) -> None:
    assert check_repository(tmp_path, []) == ["argocd/: nothing rendered (run: gen render --all)"]
    specs = _loaded(tmp_path, a=spec_text("a"), b=spec_text("b", server=None, dest_name="b-k8s"))
    clusters = [lc.cluster for lc in specs]
    write_documents(tmp_path, _documents(specs, FLEET))
    for c in clusters:
        for rel, text in layout.render_cluster(c).items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text, encoding="utf-8")
    crds = CRDS if CRDS.is_dir() else None
    assert check_repository(tmp_path, clusters, crds) == []

    app = tmp_path / "argocd" / "applications" / "a.yaml"
    app.write_text(app.read_text().replace("selfHeal: true", "selfHeal: 'true'"))
    shutil.rmtree(tmp_path / "overlays" / "b")
    findings = check_repository(tmp_path, clusters, crds)
    assert (
        "argocd/applications/a.yaml: Application/profiling-a: spec.syncPolicy.automated.selfHeal: "
        "must be true, got string 'true'"
    ) in findings
    assert ("Application/profiling-b: spec.source.path: overlays/b does not exist in the repository") in findings
