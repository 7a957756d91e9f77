"""What Argo CD deploys: only what the specs render, from the repositories fleet.yaml allows.

A cluster cannot take the root Application's name; a file under
argocd/applications/ that no spec renders fails `check` and `validate` and is
shown by `diff`; the AppProject's repositories are fleet.yaml's; no URL carries
credentials; no rendered Namespace is a shared one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from argo_fixtures import CRDS, IN_CLUSTER, PROJECT, REPO, load, spec_text, write

from gen import yamlio
from gen.components import argocd as argo
from gen.errors import SpecError
from gen.render import layout
from gen.spec.cluster import ROOT_NAME, SHARED_NAMESPACES
from gen.spec.fleet import load_fleet_text
from gen.spec.loader import load_text
from gen.validate import kustomize, secrets_scan
from gen.validate.argo_checks import check_repository
from tests.conftest import snapshot
from tests.git_fixtures import commit_all, gen, init

OTHER_REPO = "https://github.com/acme/other-gitops.git"
EVIL = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: miner
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/mallory/miner.git
    targetRevision: HEAD
    path: deploy
  destination:
    server: https://kubernetes.default.svc
    namespace: kube-system
"""


def _fleet_text(*extra: str) -> str:
    return "\n".join(["apiVersion: gen.profiling/v1alpha1", "kind: Fleet", "spec:", f"  repoURL: {REPO}", *extra, ""])


def _repo(tmp_path: Path, fleet: str | None = None, **specs: str) -> Path:
    """A fleet repository of its own: base/, fleet.yaml and the given specs, nothing rendered."""
    root = tmp_path / "fleet"
    root.mkdir()
    shutil.copytree(PROJECT / "base", root / "base")
    (root / "fleet.yaml").write_text(fleet or _fleet_text(), encoding="utf-8")
    for name, text in (specs or {"a": spec_text("a")}).items():
        write(root, name, text)
    return root


def _render(root: Path) -> None:
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 0, result.output


def _errors(result: Any) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": error: " in line]


# ------------------------------------------------------------------ names gen reserves


def test_a_cluster_whose_application_would_be_the_root_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    write(root, "fleet", spec_text("fleet"))
    before = snapshot(root)
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 2
    assert _errors(result) == [
        f"clusters/fleet.yaml:4:9: error: metadata.name: 'fleet' is reserved: its Application would be named "
        f"{ROOT_NAME!r}, the name of the bootstrap's root Application, and replace it; pick another name"
    ]
    assert snapshot(root) == before


# ------------------------------------------------------------------ files no spec renders


def _unclaimed(root: Path) -> list[str]:
    folder = root / argo.APPLICATIONS_DIR
    (folder / "miner.yaml").write_text(EVIL, encoding="utf-8")
    (folder / ".hidden.yaml").write_text(EVIL.replace("name: miner", "name: hidden"), encoding="utf-8")
    (folder / "nested").mkdir()
    (folder / "nested" / "deep.yaml").write_text(EVIL.replace("name: miner", "name: deep"), encoding="utf-8")
    return [
        "argocd/applications/.hidden.yaml",
        "argocd/applications/miner.yaml",
        "argocd/applications/nested/deep.yaml",
    ]


def test_check_fails_on_a_file_the_root_would_sync_that_no_spec_renders(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    paths = _unclaimed(root)
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1, result.output
    for rel in paths:
        assert (
            f"{rel}: unclaimed: no spec renders this file, yet Argo CD's root Application syncs the files "
            f"under argocd/applications/; remove it (run: git rm {rel})"
        ) in result.stdout.splitlines()
    assert "3 file(s) out of sync with the specs; fix: git rm" in result.stderr
    # Render leaves it alone (it never deletes what it did not write), and says why check fails.
    rendered = gen("render", "--all", "--root", str(root))
    assert rendered.exit_code == 0
    assert (root / paths[1]).is_file()
    note = "no spec renders this file, yet Argo CD's root Application syncs it: gen check fails until it is removed"
    assert f"{paths[1]}: {note}" in rendered.stderr


def test_a_claimed_file_without_the_header_or_with_another_application_is_drift(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    app = root / argo.application_file("a")
    app.write_text(app.read_text(encoding="utf-8") + "---\n" + EVIL, encoding="utf-8")
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    assert result.stdout.startswith("argocd/applications/a.yaml: changed: ")


def test_validate_fails_on_files_no_spec_renders(tmp_path: Path) -> None:
    root = _repo(
        tmp_path, b=spec_text("b", namespace="prof-b", grafana=False, server=None, dest_name="b-k8s"), a=spec_text("a")
    )
    _render(root)
    clusters = [load(root, n).cluster for n in ("a", "b")]
    crds = CRDS if CRDS.is_dir() else None
    assert check_repository(root, clusters, crds) == []

    paths = _unclaimed(root)
    app = root / argo.application_file("b")
    app.write_text(app.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    findings = check_repository(root, clusters)
    for rel in paths:
        assert (
            f"{rel}: no spec renders this file, and Argo CD's root Application would sync it: remove it"
        ) in findings
    assert "argocd/applications/b.yaml: gen's header line is gone: only files gen renders may be here" in findings

    # A file gen renders, with one more object: the root would sync that too.
    for rel in ("argocd/applications/a.yaml", argo.PROJECT_FILE):
        with open(root / rel, "a", encoding="utf-8") as f:
            f.write("---\n" + EVIL)
    findings = check_repository(root, clusters)
    assert (
        "argocd/applications/a.yaml: holds Application/profiling-a, Application/miner; gen renders only "
        "Application/profiling-a here"
    ) in findings
    assert (
        "argocd/project.yaml: holds AppProject/profiling, Application/miner; gen renders exactly one AppProject here"
    ) in findings


def test_validate_fails_on_an_application_outside_the_fleets_repositories(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    (lc,) = [load(root, "a")]
    app = root / argo.application_file("a")
    app.write_text(app.read_text(encoding="utf-8").replace(REPO, OTHER_REPO), encoding="utf-8")
    findings = check_repository(root, [lc.cluster])
    assert (
        f"argocd/applications/a.yaml: Application/profiling-a: spec.source.repoURL: {OTHER_REPO} is not "
        "among the AppProject's sourceRepos (argocd/project.yaml)"
    ) in findings


def test_validate_command_fails_on_an_unclaimed_application(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    assert gen("validate", "--root", str(root)).exit_code == 0
    (root / argo.APPLICATIONS_DIR / "miner.yaml").write_text(EVIL, encoding="utf-8")
    result = gen("validate", "--root", str(root))
    assert result.exit_code == 1
    assert (
        "argocd/applications/miner.yaml: no spec renders this file, and Argo CD's root Application would sync it: "
        "remove it"
    ) in result.stdout


def test_diff_shows_what_an_unclaimed_application_deploys(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    init(root)
    _render(root)
    commit_all(root, "render")
    (root / argo.APPLICATIONS_DIR / "miner.yaml").write_text(EVIL, encoding="utf-8")
    # Hidden, with markup in its name and a token in its URL: shown, but neither of those.
    sneaky = EVIL.replace("name: miner", "name: <img src=x>").replace("https://github", "https://ghp_abc@github")
    (root / argo.APPLICATIONS_DIR / ".sneaky.yaml").write_text(sneaky, encoding="utf-8")
    result = gen("diff", "--base", "HEAD", "--format", "json", "--root", str(root))
    assert result.exit_code == 0, result.output
    hidden, section = json.loads(result.stdout)["sections"]
    assert hidden["name"] == ".sneaky"
    assert (
        "Application argocd/?img?src=x? (project default) deploys https://REDACTED@github.com" in (hidden["impact"][0])
    )
    assert section["name"] == "miner"
    assert section["impact"][0] == (
        "argocd/applications/miner.yaml: no spec renders this file (gen check fails on it), yet Argo CD's root "
        "Application syncs it: Application argocd/miner (project default) deploys "
        "https://github.com/mallory/miner.git path deploy at HEAD to server https://kubernetes.default.svc "
        "namespace kube-system"
    )
    text = gen("diff", "--base", "HEAD", "--root", str(root)).stdout
    assert "https://github.com/mallory/miner.git path deploy at HEAD" in text


def _synced(root: Path, app: dict[str, Any]) -> list[str]:
    """The files under the root Application's path that Argo CD takes: `*` crosses `/` (no separators)."""
    from fnmatch import fnmatchcase

    from argo_fixtures import expand_braces

    directory = app["spec"]["source"]["directory"]
    base = root / app["spec"]["source"]["path"]
    out = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if not path.is_file() or not rel.endswith((".yaml", ".yml", ".json")):
            continue
        if any(fnmatchcase(rel, p) for p in expand_braces(directory.get("exclude", ""))):
            continue
        if any(fnmatchcase(rel, p) for p in expand_braces(directory["include"])):
            out.append(rel)
    return out


def test_the_root_application_takes_no_hidden_or_nested_file(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    _unclaimed(root)
    (root_app,) = [d for d in argo.bootstrap(load_fleet_text(_fleet_text().encode())) if d["kind"] == "Application"]
    assert _synced(root, root_app) == ["applications/a.yaml", "applications/miner.yaml", "project.yaml"]


# ------------------------------------------------------------------ repositories


def test_a_spec_naming_a_repository_fleet_yaml_does_not_allow_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path, a=spec_text("a", repo=OTHER_REPO))
    before = snapshot(root)
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 2
    assert _errors(result) == [
        f"clusters/a.yaml:9:14: error: spec.argocd.repoURL: {OTHER_REPO!r} is not among the repositories "
        f"fleet.yaml allows ({REPO}), the only ones the fleet's AppProject lets Argo CD deploy from; to allow it, "
        "add it to spec.sourceRepos in fleet.yaml"
    ]
    assert snapshot(root) == before


def test_the_app_project_holds_the_fleets_repositories_and_no_other(tmp_path: Path) -> None:
    fleet = _fleet_text("  sourceRepos:", f"    - {OTHER_REPO}")
    root = _repo(
        tmp_path, fleet=fleet, a=spec_text("a", repo=OTHER_REPO), b=spec_text("b", server=None, dest_name="b-k8s")
    )
    _render(root)
    (project,) = yamlio.parse_all_plain((root / argo.PROJECT_FILE).read_text(encoding="utf-8"))
    assert project["spec"]["sourceRepos"] == [OTHER_REPO, REPO]
    # The root reads only the fleet's own repository.
    bootstrap = yamlio.parse_all_plain((root / argo.BOOTSTRAP_FILE).read_text(encoding="utf-8"))
    assert [d["spec"]["sourceRepos"] for d in bootstrap if d["kind"] == "AppProject"] == [[REPO]]

    # A committed AppProject widened by hand is not carried over by a render of some clusters.
    path = root / argo.PROJECT_FILE
    path.write_text(path.read_text(encoding="utf-8").replace(f"- {REPO}", f"- {REPO}\n  - '*'"), encoding="utf-8")
    result = gen("render", "b", "--root", str(root))
    assert result.exit_code == 0, result.output
    (project,) = yamlio.parse_all_plain(path.read_text(encoding="utf-8"))
    assert project["spec"]["sourceRepos"] == [OTHER_REPO, REPO]


def test_fleet_source_repos_are_git_urls() -> None:
    with pytest.raises(SpecError) as info:
        load_fleet_text(_fleet_text("  sourceRepos: ['*']").encode())
    assert info.value.lines() == [
        "fleet.yaml:5:17: error: spec.sourceRepos.0: '*' is not a git URL "
        "(https://host/org/repo.git or git@host:org/repo.git)"
    ]


# ------------------------------------------------------------------ credentials in URLs

CREDENTIALS = "must not carry credentials (user:password@ or token@): they would be committed to git"


@pytest.mark.parametrize(
    "url",
    [
        "https://x-access-token:ghp_abc123@github.com/acme/profiling-gitops.git",
        "https://ghp_abc123@github.com/acme/profiling-gitops.git",
        "ssh://git:hunter2@github.com/acme/profiling-gitops.git",
    ],
)
def test_credentials_in_the_repository_url_are_refused(url: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(spec_text("x", repo=url).encode(), "clusters/x.yaml", "x")
    (line,) = info.value.lines()
    assert line.startswith(f"clusters/x.yaml:9:14: error: spec.argocd.repoURL: {CREDENTIALS}")
    assert "hunter2" not in line and "ghp_" not in line
    with pytest.raises(SpecError) as info:
        load_fleet_text(_fleet_text().replace(REPO, url).encode())
    (line,) = info.value.lines()
    assert line.startswith(f"fleet.yaml:4:12: error: spec.repoURL: {CREDENTIALS}")
    with pytest.raises(SpecError) as info:
        load_fleet_text(_fleet_text("  sourceRepos:", f"    - {url}").encode())
    (line,) = info.value.lines()
    assert line.startswith(f"fleet.yaml:6:7: error: spec.sourceRepos.0: {CREDENTIALS}")


@pytest.mark.parametrize("server", ["https://admin:hunter2@10.0.0.1:6443", "https://eyJhbGciOi@10.0.0.1:6443"])
def test_credentials_in_the_destination_server_are_refused(server: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(spec_text("x", server=server).encode(), "clusters/x.yaml", "x")
    (line,) = info.value.lines()
    assert line.startswith(f"clusters/x.yaml:11:15: error: spec.argocd.destination.server: {CREDENTIALS}")


def test_credentials_in_the_agent_url_are_refused() -> None:
    text = spec_text("x").replace(
        "  argocd:\n", "  cassandra:\n    agent:\n      url: https://u:hunter2@repo.example/agent.jar\n  argocd:\n"
    )
    with pytest.raises(SpecError) as info:
        load_text(text.encode(), "clusters/x.yaml", "x")
    (line,) = info.value.lines()
    assert line.startswith(f"clusters/x.yaml:10:12: error: spec.cassandra.agent.url: {CREDENTIALS}")


@pytest.mark.parametrize(
    "url", ["git@github.com:acme/profiling-gitops.git", "ssh://git@github.com/acme/profiling-gitops.git"]
)
def test_an_ssh_user_is_no_credential(url: str) -> None:
    assert load_text(spec_text("x", repo=url).encode(), "clusters/x.yaml", "x").cluster.spec.argocd.repo_url == url


def test_the_secret_scan_finds_a_token_before_the_host() -> None:
    assert secrets_scan.scan_text("repoURL: https://ghp_abc123@github.com/acme/x.git\n") == [
        (1, "a URL with credentials in it")
    ]
    assert secrets_scan.scan_text("repoURL: git@github.com:acme/x.git\n") == []


def test_validate_scans_the_argo_cd_files_for_secrets(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    _render(root)
    (lc,) = [load(root, "a")]
    app = root / argo.application_file("a")
    leak = "https://ghp_abc123@github.com/acme/profiling-gitops.git"
    app.write_text(app.read_text(encoding="utf-8").replace(REPO, leak), encoding="utf-8")
    bootstrap = root / argo.BOOTSTRAP_FILE
    bootstrap.write_text(
        bootstrap.read_text(encoding="utf-8").replace(
            "  labels:\n", "  annotations:\n    token: hunter2\n  labels:\n", 1
        ),
        encoding="utf-8",
    )
    findings = check_repository(root, [lc.cluster])
    assert (
        "argocd/applications/a.yaml: Application/profiling-a: spec.source.repoURL: a URL with credentials in it"
    ) in findings
    assert (
        "argocd/bootstrap.yaml: AppProject/profiling-fleet: metadata.annotations.token: a literal value under a "
        "credential's name (token)"
    ) in findings
    assert not any("hunter2" in f or "ghp_" in f for f in findings)


# ------------------------------------------------------------------ namespaces


def _namespaces_and_labels(root: Path, name: str) -> tuple[list[str], list[dict[str, Any]]]:
    built = yamlio.parse_all_plain(kustomize.build(root / layout.overlay_dir(name)))
    return [o["metadata"]["name"] for o in built if o["kind"] == "Namespace"], built


@pytest.mark.parametrize("shared", sorted(SHARED_NAMESPACES))
def test_no_rendered_namespace_is_a_shared_one(tmp_path: Path, shared: str) -> None:
    # As the stack's namespace: refused on kubernetes (easy-db-lab renders no Namespace).
    with pytest.raises(SpecError) as info:
        load_text(spec_text("x", namespace=shared).encode(), "clusters/x.yaml", "x")
    assert f"spec.namespace: {shared!r} is shared" in info.value.lines()[0]
    # As Grafana's namespace: gen puts its ConfigMaps there but never creates or labels it.
    root = _repo(
        tmp_path,
        k8s=spec_text("k8s", grafana_namespace=shared),
        edl=spec_text("edl", platform="easy-db-lab", grafana=False, server=None, dest_name="edl-k8s"),
    )
    _render(root)
    for name, stack in (("k8s", "profiling"), ("edl", None)):
        namespaces, built = _namespaces_and_labels(root, name)
        assert namespaces == ([stack] if stack else [])
        assert not set(namespaces) & SHARED_NAMESPACES
        (app,) = yamlio.parse_all_plain((root / argo.application_file(name)).read_text(encoding="utf-8"))
        # Argo CD creates the destination namespace only where the stack's own one is.
        creates = "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
        assert creates == (stack is not None)
        assert "managedNamespaceMetadata" not in app["spec"]["syncPolicy"]
        if creates:
            assert app["spec"]["destination"]["namespace"] not in SHARED_NAMESPACES
        for obj in built:
            # No object patches or labels a namespace: only pods' own namespaceSelectors name one.
            assert obj["kind"] != "Namespace" or obj["metadata"]["name"] == stack


@pytest.mark.parametrize("field", ["namespace", "grafana_namespace"])
def test_the_argo_cd_namespace_is_no_stack_or_grafana_namespace(tmp_path: Path, field: str) -> None:
    root = _repo(tmp_path, a=spec_text("a", **{field: "argocd"}))
    result = gen("render", "--all", "--root", str(root))
    assert result.exit_code == 2
    (line,) = _errors(result)
    where = "spec.namespace" if field == "namespace" else "spec.grafana.namespace"
    assert f"error: {where}: 'argocd' is the fleet's Argo CD namespace (fleet.yaml's argocdNamespace)" in line


# ------------------------------------------------------------------ what a render of some clusters keeps


def test_without_fleet_yaml_one_cluster_s_render_cannot_point_the_bootstrap_elsewhere(tmp_path: Path) -> None:
    root = _repo(
        tmp_path, a=spec_text("a", namespace="ns-a"), b=spec_text("b", namespace="ns-b", server=None, dest_name="lab-b")
    )
    (root / "fleet.yaml").unlink()
    _render(root)
    before = snapshot(root)
    write(root, "b", spec_text("b", namespace="ns-b", server=None, dest_name="lab-b", repo=OTHER_REPO))
    result = gen("render", "b", "--root", str(root))
    # As `gen check` says: every spec must name the repository the bootstrap reads.
    assert result.exit_code == 2
    assert _errors(result) == [
        f"clusters/b.yaml:{_line(root, 'b', 'repoURL')}:14: error: spec.argocd.repoURL: {OTHER_REPO!r} differs "
        f"from {REPO!r} in clusters/a.yaml; without fleet.yaml all clusters must agree on it: write fleet.yaml "
        "to say which one the Argo CD bootstrap uses"
    ]
    assert _errors(gen("check", "--root", str(root))) == _errors(result)
    assert snapshot(root) == {**before, "clusters/b.yaml": (root / "clusters/b.yaml").read_bytes()}


@pytest.mark.parametrize(
    ("name", "moved"),
    [
        ("a", {"namespace": "ns-moved"}),  # to another namespace of its destination
        ("b", {"dest_name": "lab-b2"}),  # to another destination
    ],
)
def test_a_render_of_the_cluster_that_moved_drops_where_it_was_from_the_appproject(
    tmp_path: Path, name: str, moved: dict[str, str]
) -> None:
    specs: dict[str, dict[str, Any]] = {
        "a": {"namespace": "ns-a"},
        "b": {"namespace": "ns-b", "server": None, "dest_name": "lab-b"},
        "c": {"namespace": "ns-c", "server": None, "dest_name": "lab-c"},  # untouched
        # Beside b where b was: known only from its spec, which the render of b alone must read.
        "d": {"namespace": "ns-d", "server": None, "dest_name": "lab-b", "ebpf": False, "grafana": False},
    }
    root = _repo(tmp_path, **{n: spec_text(n, **kw) for n, kw in specs.items()})
    _render(root)
    write(root, name, spec_text(name, **{**specs[name], **moved}))
    result = gen("render", name, "--root", str(root))
    assert result.exit_code == 0, result.output
    # The workflow's `gen render NAME`, then commit: what gen check (and so CI) asks of the AppProject.
    check = gen("check", "--no-cache", "--root", str(root))
    assert check.exit_code == 0, check.output
    (project,) = yamlio.parse_all_plain((root / argo.PROJECT_FILE).read_text(encoding="utf-8"))
    where = {(d.get("server") or d["name"], d["namespace"]) for d in project["spec"]["destinations"]}
    before = {(kw.get("dest_name") or IN_CLUSTER, kw["namespace"]) for n, kw in specs.items() if n != name}
    assert before <= where  # no other cluster's Application is cut off


def _line(root: Path, name: str, key: str) -> int:
    lines = (root / "clusters" / f"{name}.yaml").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:"))


@pytest.mark.parametrize(
    ("edited", "why"),
    [
        # Two pull requests that each added a cluster, merged with the conflict left in the file.
        ("conflict", "cannot be read (line "),
        ("string", "its destinations are not a list of mappings"),
    ],
)
def test_a_render_of_some_clusters_refuses_an_appproject_it_cannot_widen(tmp_path: Path, edited: str, why: str) -> None:
    root = _repo(
        tmp_path, a=spec_text("a", namespace="ns-a"), b=spec_text("b", namespace="ns-b", server=None, dest_name="lab-b")
    )
    _render(root)
    project = root / "argocd" / "project.yaml"
    text = project.read_text()
    if edited == "conflict":
        text = text.replace("  destinations:\n", "  destinations:\n<<<<<<< HEAD\n", 1) + ">>>>>>> other\n"
    else:
        text = text.replace("  destinations:\n", '  destinations:\n  - "ab"\n', 1)
    project.write_text(text)
    before = snapshot(root)
    result = gen("render", "b", "--root", str(root))
    # Made from cluster b alone, it would cut a's Application off: refused, nothing written.
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: argocd/project.yaml: {why}")
    assert line.endswith("; run gen render --all, which makes it anew from every spec")
    assert snapshot(root) == before
    _render(root)


def test_a_fleet_below_the_top_of_its_repository_names_argo_cd_paths_from_the_top(tmp_path: Path) -> None:
    (tmp_path / "mono" / "infra").mkdir(parents=True)
    init(tmp_path / "mono")
    root = _repo(tmp_path / "mono" / "infra")
    _render(root)
    # Argo CD reads a path from the top of the repository: the fleet's folder comes first.
    (app,) = yamlio.parse_all_plain((root / argo.application_file("a")).read_text())
    assert app["spec"]["source"]["path"] == "infra/fleet/overlays/a"
    root_app = yamlio.parse_all_plain((root / argo.BOOTSTRAP_FILE).read_text())[1]
    assert root_app["spec"]["source"]["path"] == "infra/fleet/argocd"
    assert gen("check", "--root", str(root)).exit_code == 0
    crds = CRDS if CRDS.is_dir() else None
    assert check_repository(root, [load(root, "a").cluster], crds) == []
    # A path that leaves the fleet's folder is a finding, as one that does not exist is.
    app["spec"]["source"]["path"] = "overlays/a"
    (root / argo.application_file("a")).write_text("# " + layout.HEADER_PREFIX + "x\n" + yamlio.dump(app))
    assert check_repository(root, [load(root, "a").cluster]) == [
        "Application/profiling-a: spec.source.path: overlays/a is outside the fleet's folder in its repository "
        "(infra/fleet/)"
    ]
