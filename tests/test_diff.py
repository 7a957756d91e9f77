"""`gen diff [--base REF]` in real git repositories, with the real kustomize; and its pure matching core."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from gen.commands import diff as diff_command
from gen.commands.diff import _terminal
from gen.components import server
from gen.output import Output
from gen.review import diffing
from gen.review.impact import (
    CASSANDRA_NEW,
    CASSANDRA_RESTART,
    CASSANDRA_SAME_PIN,
    CASSANDRA_UNINSTALL,
    CASSANDRA_UNSELECTED,
)
from tests.git_fixtures import commit_all, edit, gen, git, init, rendered_repo

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def _diff_json(root: Path, ref: str = "HEAD") -> dict[str, Any]:
    result = gen("diff", "--base", ref, "--format", "json", "--root", str(root))
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in doc["sections"] if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in doc["sections"]]
    return found[0]


def _render(root: Path, *names: str) -> None:
    args = ["render", *names] if names else ["render", "--all"]
    result = gen(*args, "--root", str(root))
    assert result.exit_code == 0, result.output


@pytest.fixture
def repo(fleet: Path) -> Path:
    return rendered_repo(fleet)


def test_a_spec_change_shows_exactly_its_objects_fields_impact_and_spec_line(repo: Path) -> None:
    spec = repo / "clusters/lab-minimal.yaml"
    edit(spec, "  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n")
    _render(repo, "lab-minimal")
    doc = _diff_json(repo)

    assert [s["name"] for s in doc["sections"]] == ["lab-minimal"]  # lab-tuned did not change
    section = doc["sections"][0]
    assert section["status"] == "changed"
    # The ConfigMap, and the checksum of it in the DaemonSet's pod template, which rolls its pods.
    assert section["counts"] == {"added": 0, "changed": 2, "removed": 0}
    obj, daemonset = section["objects"]
    assert (obj["kind"], obj["namespace"], obj["name"]) == ("ConfigMap", "default", "pyroscope-ebpf-config")
    assert obj["oldName"] == obj["newName"] == "pyroscope-ebpf-config"  # the exact name, no hash suffix
    [field] = obj["fields"]
    assert field["path"] == 'data["config.alloy"]'
    assert "-  sample_rate      = 97" in field["diff"]
    assert "+  sample_rate      = 49" in field["diff"]
    assert [x for x in field["diff"] if x[:1] in "+-"] == ["-  sample_rate      = 97", "+  sample_rate      = 49"]
    line = _line_of(spec, "    sampleRate: 49")
    assert field["source"] == f"clusters/lab-minimal.yaml:{line}"
    assert (daemonset["kind"], daemonset["name"]) == ("DaemonSet", "pyroscope-ebpf")
    [checksum] = daemonset["fields"]
    assert checksum["path"] == 'spec.template.metadata.annotations["checksum/config"]'
    restart = "DaemonSet/pyroscope-ebpf: pods restart (ConfigMap pyroscope-ebpf-config changes)"
    assert daemonset["impact"] == [restart]
    assert section["impact"] == [restart]

    text = gen("diff", "--base", "HEAD", "--root", str(repo))
    assert text.exit_code == 0
    out = text.stdout
    assert out.splitlines()[0].startswith("gen diff: HEAD (")
    assert "lab-tuned" not in out
    assert f'    data["config.alloy"]:  <- clusters/lab-minimal.yaml:{line}' in out
    assert "      +  sample_rate      = 49" in out
    assert "! DaemonSet/pyroscope-ebpf: pods restart (ConfigMap pyroscope-ebpf-config changes)" in out
    assert "\x1b[" not in out  # not a terminal: no colour


def _state(repo: Path) -> dict[str, Any]:
    """The index (bytes), the branch, HEAD, git's status and every working-tree file."""
    return {
        "index": (repo / ".git/index").read_bytes(),
        "branch": git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        "head": git(repo, "rev-parse", "HEAD"),
        # Without optional locks, so that taking the state does not refresh the index itself.
        "status": git(repo, "--no-optional-locks", "status", "--porcelain", "--untracked-files=all"),
        "files": {p: p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file() and ".git" not in p.parts},
    }


def test_diff_leaves_working_tree_index_and_branch_unchanged(repo: Path) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "retention: 72h", "retention: 96h")
    _render(repo, "lab-tuned")
    git(repo, "add", "clusters")  # a partly staged change: the index must stay exactly so
    git(repo, "checkout", "-q", "-b", "feature")
    before = _state(repo)
    result = gen("diff", "--base", "main", "--root", str(repo))
    assert result.exit_code == 0
    assert "retention_period: 96h" in result.stdout
    assert _state(repo) == before


def test_server_and_cassandra_restarts_are_named(repo: Path) -> None:
    spec = repo / "clusters/lab-minimal.yaml"
    added = "  server:\n    retention: 24h\n  cassandra:\n    agent:\n      version: 2.10.0\n"
    edit(spec, "  argocd:\n", added + "  argocd:\n")
    _render(repo, "lab-minimal")
    section = _section(_diff_json(repo), "lab-minimal")
    impact = section["impact"]
    assert "Deployment/pyroscope: pods restart (ConfigMap pyroscope-config changes)" in impact
    assert "the Pyroscope server restarts with strategy Recreate: ingestion pauses until the new pod is ready" in impact
    assert any(note.startswith("Cassandra must be restarted node by node") for note in impact)
    cm = next(o for o in section["objects"] if o["name"] == "pyroscope-cassandra-agent")
    url = next(f for f in cm["fields"] if f["path"] == "data.AGENT_URL")
    assert url["old"].endswith("/2.9.1/agent-2.9.1.jar") and url["new"].endswith("/2.10.0/agent-2.10.0.jar")
    assert url["source"] == f"clusters/lab-minimal.yaml:{_line_of(spec, '      version: 2.10.0')}"
    config = next(o for o in section["objects"] if o["name"] == "pyroscope-config")
    assert config["fields"][0]["source"] == f"clusters/lab-minimal.yaml:{_line_of(spec, '    retention: 24h')}"


def test_a_value_back_to_its_default_is_attributed_to_the_built_in_default(repo: Path) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "    sampleRate: 49\n", "")
    _render(repo, "lab-tuned")
    obj, _checksum = _section(_diff_json(repo), "lab-tuned")["objects"]
    assert obj["fields"][0]["source"] == "built-in default"


def test_a_base_change_is_attributed_to_base(repo: Path) -> None:
    edit(repo / "base/server/deployment.yaml", "revisionHistoryLimit: 3", "revisionHistoryLimit: 5")
    doc = _diff_json(repo)
    assert [s["name"] for s in doc["sections"]] == ["lab-minimal", "lab-tuned"]
    for section in doc["sections"]:
        [obj] = section["objects"]
        assert obj["kind"] == "Deployment"
        assert obj["fields"] == [
            {"path": "spec.revisionHistoryLimit", "op": "changed", "old": 3, "new": 5, "diff": None, "source": "base/"}
        ]
        assert section["impact"] == []  # not a pod template change: nothing restarts


def test_choices_found_by_table_and_fleet_settings_have_their_line(repo: Path) -> None:
    spec = repo / "clusters/lab-tuned.yaml"
    edit(spec, "  cassandra:\n    enabled: true\n", "  cassandra:\n    enabled: true\n    state: absent\n")
    edit(repo / "fleet.yaml", "targetRevision: main", "targetRevision: prod")
    _render(repo)
    doc = _diff_json(repo)
    # The dashboard drops the Java agent's panels too.
    dashboard, agent = _section(doc, "lab-tuned")["objects"]
    assert (dashboard["kind"], dashboard["name"]) == ("ConfigMap", "pyroscope-dashboard")
    [args] = agent["fields"]
    assert (args["path"], args["old"], args["new"]) == (
        "spec.template.spec.initContainers[name=install].args[0]",
        "install",
        "uninstall",
    )
    assert args["source"] == f"clusters/lab-tuned.yaml:{_line_of(spec, '    state: absent')}"
    assert CASSANDRA_UNINSTALL in agent["impact"]
    [bootstrap] = _section(doc, "argocd/ (fleet)")["objects"]
    [revision] = bootstrap["fields"]
    assert revision["path"] == "spec.source.targetRevision"
    assert revision["source"] == f"fleet.yaml:{_line_of(repo / 'fleet.yaml', '  targetRevision: prod')}"


def test_key_order_and_quoting_alone_show_nothing(repo: Path) -> None:
    path = repo / "base/server/service.yaml"
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("kind: Service\n")
    # Move apiVersion below kind and quote a scalar: the same objects, other bytes.
    path.write_text("kind: Service\n" + head.replace("apiVersion: v1", 'apiVersion: "v1"') + rest, encoding="utf-8")
    assert git(repo, "status", "--porcelain") == " M base/server/service.yaml\n"
    result = gen("diff", "--base", "HEAD", "--root", str(repo))
    assert result.exit_code == 0
    assert "no change to the built manifests between HEAD and the working tree" in result.stdout
    assert _diff_json(repo)["sections"] == []


def test_removed_and_added_clusters(repo: Path) -> None:
    (repo / "clusters/lab-tuned.yaml").unlink()
    shutil.copy(repo / "clusters/lab-minimal.yaml", repo / "clusters/lab-new.yaml")
    edit(repo / "clusters/lab-new.yaml", "name: lab-minimal", "name: lab-new")
    edit(repo / "clusters/lab-new.yaml", "server: https://kubernetes.default.svc", "name: lab-new")
    _render(repo)
    doc = _diff_json(repo)
    assert [(s["name"], s["status"]) for s in doc["sections"]] == [
        ("lab-new", "added"),
        ("lab-tuned", "removed"),
        ("argocd/ (fleet)", "changed"),  # the AppProject's destinations follow the clusters
    ]
    new = _section(doc, "lab-new")
    assert new["source"] == "clusters/lab-new.yaml"
    assert new["counts"]["added"] == len(new["objects"]) > 5
    assert any(note.startswith("Cassandra loads the agent only when restarted") for note in new["impact"])
    gone = _section(doc, "lab-tuned")
    assert gone["counts"]["removed"] == len(gone["objects"])
    assert "Application profiling-lab-tuned is deleted: Argo CD prunes every resource it deployed" in gone["impact"]
    assert any(note.startswith("the Java agent stays installed on the Cassandra hosts") for note in gone["impact"])


def test_an_overlay_no_application_deploys_says_so(repo: Path) -> None:
    # A copy of an overlay, with no spec and no Application: Argo CD would apply none of it.
    shutil.copytree(repo / "overlays/lab-minimal", repo / "overlays/lab-copy")
    copy = _section(_diff_json(repo), "lab-copy")
    assert copy["status"] == "added"
    assert copy["impact"][0] == "no Application deploys overlays/lab-copy: Argo CD applies none of this"


def test_markdown_has_summary_first_one_details_per_cluster_and_a_size_cap(repo: Path) -> None:
    for name, old, new in (("lab-minimal", "10.0.1.10", "10.0.1.20"), ("lab-tuned", "retention: 72h", "retention: 1h")):
        edit(repo / f"clusters/{name}.yaml", old, new)
    _render(repo)
    full = gen("diff", "--base", "HEAD", "--format", "markdown", "--root", str(repo)).stdout
    assert full.startswith("### gen diff: `HEAD` (")
    table = full.index("| cluster | status | added | changed | removed |")
    assert table < full.index("<details>")
    assert "| `lab-minimal` | changed | 0 |" in full
    assert full.count("<details>") == full.count("</details>") == 2
    assert "```diff" in full
    assert "Truncated" not in full

    cap = max(2000, len(full) // 2)
    assert len(full) > cap
    capped = gen("diff", "--base", "HEAD", "--format", "markdown", "--max-chars", str(cap), "--root", str(repo))
    assert capped.exit_code == 0
    out = capped.stdout
    assert len(out) <= cap
    assert out.count("<details>") == out.count("</details>")
    assert out.count("```") % 2 == 0
    assert re.search(rf"Truncated at {cap:,} characters .*: \d+ object change\(s\) are not shown", out)
    assert "The full diff: `gen diff --base HEAD`" in out


def test_colour_only_on_request_or_a_terminal_without_no_color(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "retention: 72h", "retention: 1h")
    _render(repo, "lab-tuned")
    coloured = gen("diff", "--base", "HEAD", "--color", "always", "--root", str(repo)).stdout
    assert "\x1b[32m" in coloured
    plain = gen("diff", "--base", "HEAD", "--color", "never", "--root", str(repo)).stdout
    assert ANSI.sub("", coloured) == plain

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _terminal(Output(out=Tty()))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not _terminal(Output(out=Tty()))


def test_without_base_the_merge_base_with_the_upstream_branch_is_the_base(repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "fetch", "-q", "origin")
    git(repo, "checkout", "-q", "-b", "feature", "--track", "origin/main")
    fork = git(repo, "rev-parse", "HEAD").strip()
    edit(repo / "clusters/lab-tuned.yaml", "retention: 72h", "retention: 96h")
    _render(repo, "lab-tuned")
    commit_all(repo, "longer retention")
    # The upstream branch moves on after the fork: its change is not this branch's.
    git(repo, "checkout", "-q", "main")
    edit(repo / "clusters/lab-minimal.yaml", "  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n")
    _render(repo, "lab-minimal")
    commit_all(repo, "lower sample rate")
    git(repo, "push", "-q", "origin", "main")
    git(repo, "checkout", "-q", "feature")

    result = gen("diff", "--root", str(repo))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"gen diff: merge base with origin/main ({fork[:12]}) → working tree"
    doc = json.loads(gen("diff", "--format", "json", "--root", str(repo)).stdout)
    assert doc["base"] == {"ref": fork, "commit": fork}
    assert [s["name"] for s in doc["sections"]] == ["lab-tuned"]


def test_without_base_or_upstream_the_working_tree_is_compared_with_head(repo: Path) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "retention: 72h", "retention: 96h")
    _render(repo, "lab-tuned")
    commit_all(repo, "longer retention")
    head = git(repo, "rev-parse", "HEAD").strip()
    edit(repo / "clusters/lab-minimal.yaml", "  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n")
    _render(repo, "lab-minimal")

    result = gen("diff", "--root", str(repo))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"gen diff: HEAD ({head[:12]}) → working tree"
    doc = json.loads(gen("diff", "--format", "json", "--root", str(repo)).stdout)
    assert doc["base"] == {"ref": "HEAD", "commit": head}
    assert [s["name"] for s in doc["sections"]] == ["lab-minimal"]  # the committed change is not in it


def test_an_upstream_with_no_commit_in_common_asks_for_a_base(repo: Path) -> None:
    git(repo, "checkout", "-q", "--orphan", "other")
    commit_all(repo, "unrelated")
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "--set-upstream-to", "other")
    result = gen("diff", "--root", str(repo))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: HEAD and other have no commit in common: give --base"


def test_a_bad_ref_is_a_usage_error_with_gits_words(repo: Path) -> None:
    result = gen("diff", "--base", "no-such-branch", "--root", str(repo))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: unknown revision 'no-such-branch'"
    assert lines[1].startswith("  command: git rev-parse --verify")
    assert lines[2] == "  exit code: 128"


def test_missing_git_is_a_tool_error(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = gen("diff", "--base", "HEAD", "--root", str(repo), env={"PATH": str(empty)})
    assert result.exit_code == 3
    assert result.stderr.startswith("error: git is not on PATH")


def test_fleet_below_the_top_of_the_repository_reads_its_base_revision_with_or_without_argocd(fleet: Path) -> None:
    top = fleet.parent
    init(top)
    commit_all(top, "specs only, nothing rendered")  # at this ref there is no overlays/ and no argocd/
    _render(fleet)
    doc = _diff_json(fleet)
    assert [(s["name"], s["status"]) for s in doc["sections"]] == [
        ("lab-minimal", "added"),
        ("lab-tuned", "added"),
        ("argocd/ (fleet)", "changed"),
    ]
    # A change once everything is committed: the base side is read from the fleet's own directory.
    commit_all(top, "rendered")
    _one_cluster_changes_alone(fleet)


def test_files_the_revision_marks_export_ignore_are_still_read_at_it(repo: Path) -> None:
    (repo / ".gitattributes").write_text("overlays/** export-ignore\nargocd/** export-ignore\n", encoding="utf-8")
    commit_all(repo, "attributes for release archives")
    _one_cluster_changes_alone(repo)


# ------------------------------------------------------------------ the pure core


def _cm(name: str, data: dict[str, str], ns: str = "profiling") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def _ds(config: str, image: str = "alloy:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "profiling"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "alloy", "image": image}],
                    "volumes": [{"name": "config", "configMap": {"name": config}}],
                }
            }
        },
    }


def _one_cluster_changes_alone(root: Path) -> None:
    """A sample rate changed in lab-minimal's spec diffs as its ConfigMap and its DaemonSet's checksum, nothing else."""
    edit(root / "clusters/lab-minimal.yaml", "  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n")
    _render(root, "lab-minimal")
    doc = _diff_json(root)
    assert [(s["name"], s["status"], s["counts"]) for s in doc["sections"]] == [
        ("lab-minimal", "changed", {"added": 0, "changed": 2, "removed": 0})
    ]


def test_hash_rename_is_one_changed_object_and_pod_references_are_no_change() -> None:
    old = [_cm("cfg-2b4mt8d9kc", {"a": "1"}), _ds("cfg-2b4mt8d9kc")]
    new = [_cm("cfg-hh7gf65dbm", {"a": "2"}), _ds("cfg-hh7gf65dbm")]
    result = diffing.compare(old, new)
    [change] = result.changes
    assert (change.key.kind, change.key.name, change.status) == ("ConfigMap", "cfg", "changed")
    assert (change.old_name, change.new_name) == ("cfg-2b4mt8d9kc", "cfg-hh7gf65dbm")
    assert [(f.path_text(), f.old, f.new) for f in change.fields] == [("data.a", "1", "2")]


def test_same_content_under_reordered_keys_is_no_change() -> None:
    a = _ds("cfg")
    b = json.loads(json.dumps(a))
    b["spec"]["template"]["spec"] = dict(reversed(list(b["spec"]["template"]["spec"].items())))
    b = dict(reversed(list(b.items())))
    assert diffing.compare([a], [b]).changes == []


def test_a_value_that_changes_type_only_is_a_change() -> None:
    # 1, 1.0 and true are equal to Python: `replicas: 1` → `replicas: true` is still a change.
    a = _ds("cfg")
    for value in (True, 1.0):
        b = json.loads(json.dumps(a))
        a["spec"]["replicas"], b["spec"]["replicas"] = 1, value
        [change] = diffing.compare([a], [b]).changes
        assert [(f.path_text(), f.old, f.new) for f in change.fields] == [("spec.replicas", 1, value)]


def test_named_list_entries_are_matched_by_name() -> None:
    a = _ds("cfg")
    b = json.loads(json.dumps(a))
    volumes = b["spec"]["template"]["spec"]["volumes"]
    volumes.insert(0, {"name": "tracefs", "hostPath": {"path": "/sys/kernel/tracing"}})
    [change] = diffing.compare([a], [b]).changes
    [f] = change.fields
    assert f.path_text() == "spec.template.spec.volumes[name=tracefs]"
    assert f.op == "added"


def test_names_that_only_look_hashed_are_kept() -> None:
    # Only ConfigMaps and Secrets carry a hash, and only in kustomize's alphabet.
    assert diffing.unhashed("ConfigMap", "pyroscope-datasource") == "pyroscope-datasource"
    assert diffing.unhashed("Deployment", "web-2b4mt8d9kc") == "web-2b4mt8d9kc"
    assert diffing.unhashed("Secret", "creds-2b4mt8d9kc") == "creds"


def test_a_change_in_the_defaults_file_is_attributed_to_it(repo: Path) -> None:
    defaults = repo / "clusters/_defaults.yaml"
    defaults.write_text("apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  ebpf:\n    sampleRate: 49\n")
    _render(repo)
    doc = _diff_json(repo)
    # lab-tuned sets its own sample rate: only lab-minimal inherits the new default.
    assert [s["name"] for s in doc["sections"]] == ["lab-minimal"]
    obj, _checksum = _section(doc, "lab-minimal")["objects"]
    [field] = obj["fields"]
    assert field["source"] == "clusters/_defaults.yaml:5"


def test_a_server_moving_from_1x_to_2x_is_flagged_at_render_and_in_the_diff(fleet: Path) -> None:
    spec = fleet / "clusters" / "lab-upgrade.yaml"
    spec.write_text(
        (fleet / "clusters" / "lab-minimal.yaml")
        .read_text()
        .replace("lab-minimal", "lab-upgrade")
        .replace("server: https://kubernetes.default.svc", "name: lab-upgrade")
        .replace("  argocd:\n", "  server:\n    image: grafana/pyroscope:1.21.1\n  argocd:\n")
    )
    repo = rendered_repo(fleet)
    edit(spec, "grafana/pyroscope:1.21.1", "grafana/pyroscope:2.2.1")
    rendered = gen("render", "lab-upgrade", "--root", str(repo))
    assert rendered.exit_code == 0
    line = _line_of(spec, "    image: grafana/pyroscope:2.2.1")
    warning = f"clusters/lab-upgrade.yaml:{line}:12: warning: spec.server.image: {server.STORAGE_NOT_MIGRATED}"
    assert warning in rendered.stderr.splitlines()
    # Once written, the next render has nothing to say.
    assert "not migrated" not in gen("render", "lab-upgrade", "--root", str(repo)).stderr
    assert server.STORAGE_NOT_MIGRATED in _section(_diff_json(repo), "lab-upgrade")["impact"]


def _notes(notes: list[str], *starts: str) -> list[str]:
    return [note for note in notes if note.startswith(starts)]


CASSANDRA_NOTES = ("Cassandra ", "the Java agent stays installed", "hosts the new cassandra.nodeSelector")


def test_a_stack_moved_to_another_namespace_asks_nothing_of_cassandra_unless_its_settings_change(repo: Path) -> None:
    spec = repo / "clusters/lab-tuned.yaml"
    edit(spec, "namespace: profiling-lab", "namespace: profiling-moved")
    _render(repo, "lab-tuned")
    # The DaemonSet in the new namespace installs the same agent with the same settings: the hosts keep
    # it, and a running JVM has nothing new to load.
    assert _notes(_section(_diff_json(repo), "lab-tuned")["impact"], *CASSANDRA_NOTES) == []
    edit(spec, "event: wall", "event: itimer")
    _render(repo, "lab-tuned")
    notes = _section(_diff_json(repo), "lab-tuned")["impact"]
    assert _notes(notes, *CASSANDRA_NOTES) == [CASSANDRA_RESTART]


def test_an_agent_installed_again_asks_for_a_cassandra_restart(fleet: Path) -> None:
    spec = fleet / "clusters/lab-minimal.yaml"
    edit(spec, "  argocd:\n", "  cassandra:\n    state: absent\n  argocd:\n")
    repo = rendered_repo(fleet)
    edit(spec, "state: absent", "state: present")
    _render(repo, "lab-minimal")
    notes = _section(_diff_json(repo), "lab-minimal")["impact"]
    assert _notes(notes, *CASSANDRA_NOTES) == [CASSANDRA_NEW]


def test_a_new_agent_version_under_the_old_pin_says_the_hosts_keep_the_old_jar_or_refuse_the_new(
    fleet: Path,
) -> None:
    spec = fleet / "clusters/lab-minimal.yaml"
    pin = "ab" * 32
    edit(spec, "  argocd:\n", f"  cassandra:\n    agent:\n      version: 2.9.1\n      sha256: {pin}\n  argocd:\n")
    repo = rendered_repo(fleet)
    edit(spec, "version: 2.9.1", "version: 2.10.0")
    _render(repo, "lab-minimal")
    # A host whose jar matches the pin keeps it (nothing is downloaded); any other refuses the new jar.
    notes = _section(_diff_json(repo), "lab-minimal")["impact"]
    assert _notes(notes, *CASSANDRA_NOTES, "the agent's URL") == [CASSANDRA_SAME_PIN]
    # Pinned anew, the hosts get the new jar, which a running JVM loads only at its restart.
    edit(spec, f"sha256: {pin}", f"sha256: {'cd' * 32}")
    _render(repo, "lab-minimal")
    notes = _section(_diff_json(repo), "lab-minimal")["impact"]
    assert _notes(notes, *CASSANDRA_NOTES, "the agent's URL") == [CASSANDRA_RESTART]


def test_a_narrower_cassandra_node_selector_says_the_hosts_it_leaves_keep_the_agent(repo: Path) -> None:
    spec = repo / "clusters/lab-tuned.yaml"
    edit(
        spec,
        "    nodeSelector:\n      type: db\n    tolerations:",
        "    nodeSelector:\n      type: db\n      rack: r1\n    tolerations:",
    )
    _render(repo, "lab-tuned")
    assert _notes(_section(_diff_json(repo), "lab-tuned")["impact"], *CASSANDRA_NOTES) == [CASSANDRA_UNSELECTED]
    # Back to the wider selector: every host it adds gets the agent from the installer, and none is left.
    commit_all(repo, "narrow")
    edit(spec, "      rack: r1\n", "")
    _render(repo, "lab-tuned")
    assert _notes(_section(_diff_json(repo), "lab-tuned")["impact"], *CASSANDRA_NOTES) == []


def _stack_moved(repo: Path) -> dict[str, Any]:
    """The diff section of lab-tuned once its stack moved from namespace profiling-lab to profiling-moved."""
    edit(repo / "clusters/lab-tuned.yaml", "namespace: profiling-lab", "namespace: profiling-moved")
    _render(repo, "lab-tuned")
    return _section(_diff_json(repo), "lab-tuned")


def test_a_server_moved_to_another_namespace_needs_the_old_one_gone_first(repo: Path) -> None:
    section = _stack_moved(repo)
    # The new server's pod wants the old one's host ports on the control node, and the fleet's
    # AppProject no longer allows the old namespace: Argo CD never prunes the old one.
    [note] = _notes(section["impact"], "Deployment profiling-moved/pyroscope cannot start its pods")
    assert "while Deployment profiling-lab/pyroscope holds host ports 4100/TCP," in note
    assert "delete Deployment profiling-lab/pyroscope by hand" in note
    added = next(o for o in section["objects"] if o["kind"] == "Deployment" and o["namespace"] == "profiling-moved")
    assert note in added["impact"]
    # The eBPF agent binds no host port: its two DaemonSets run side by side.
    assert _notes(section["impact"], "DaemonSet") == []
    # Under another AppProject than the fleet's, which may still allow the old namespace, Argo CD
    # prunes the old server in an earlier wave than the new one's or its own, and waits for it to be
    # gone before the next: the host ports are handed over with nothing to do by hand.
    edit(repo / "clusters/lab-tuned.yaml", "project: profiling", "project: lab-projects")
    _render(repo, "lab-tuned")
    assert _notes(_section(_diff_json(repo), "lab-tuned")["impact"], "Deployment profiling-moved/pyroscope") == []


def test_a_stack_moved_out_of_a_namespace_its_appproject_drops_is_never_pruned(repo: Path) -> None:
    section = _stack_moved(repo)
    # As gen check asks: the AppProject no longer allows profiling-lab on lab-tuned.
    assert "namespace: profiling-lab\n" not in (repo / "argocd/project.yaml").read_text()
    # Argo CD leaves the live objects its project does not allow out of the Application: no prune
    # ever reaches the old namespace, and its eBPF agent keeps sending next to the new one.
    [note] = _notes(section["impact"], "the AppProject no longer allows namespace profiling-lab on this destination")
    assert "never prunes them: they stay (the old eBPF agent profiles every node a second time)" in note
    assert note.endswith(
        "kubectl -n profiling-lab delete configmap,daemonset,deployment,networkpolicy,service,serviceaccount"
        " -l cluster=lab-tuned"
    )
    [app] = [o for o in section["objects"] if o["kind"] == "Application"]
    assert note in app["impact"]
    [stall] = _notes(section["impact"], "Deployment profiling-moved/pyroscope cannot start its pods")
    assert "Argo CD never prunes it (the AppProject no longer allows namespace profiling-lab)" in stall
    assert "PruneLast" not in stall


def test_an_application_moved_to_another_destination_leaves_the_old_stack_running(repo: Path) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "      name: lab-tuned", "      name: lab-tuned-2")
    _render(repo, "lab-tuned")
    section = _section(_diff_json(repo), "lab-tuned")
    [note] = _notes(section["impact"], "Application profiling-lab-tuned now deploys to name lab-tuned-2")
    assert "instead of name lab-tuned: if that is another cluster, Argo CD leaves everything it deployed" in note
    [app] = section["objects"]
    assert app["impact"] == [note]


def test_a_new_selector_is_flagged_as_a_failing_sync(repo: Path) -> None:
    selector = "  selector:\n    matchLabels:\n      app.kubernetes.io/name: pyroscope-ebpf\n"
    edit(repo / "base/ebpf/daemonset.yaml", selector, selector + "      app.kubernetes.io/component: ebpf-agent\n")
    for section in _diff_json(repo)["sections"]:
        assert _notes(section["impact"], "DaemonSet/pyroscope-ebpf: its spec.selector cannot change in place") != []
    # The pod template's labels alone are no selector.
    git(repo, "checkout", "--", "base")
    edit(repo / "base/ebpf/daemonset.yaml", "        app.kubernetes.io/component: ebpf-agent\n", "")
    for section in _diff_json(repo)["sections"]:
        assert _notes(section["impact"], "DaemonSet/pyroscope-ebpf: its spec.selector") == []


def test_a_config_whose_checksum_did_not_follow_restarts_nothing(repo: Path) -> None:
    # A hand edit: the ConfigMap changes, the checksum in the pod template does not, so no pod rolls.
    edit(repo / "overlays/lab-minimal/config.alloy", "sample_rate      = 97", "sample_rate      = 49")
    section = _section(_diff_json(repo), "lab-minimal")
    assert [o["kind"] for o in section["objects"]] == ["ConfigMap"]
    assert section["impact"] == [
        "DaemonSet/pyroscope-ebpf do not restart by themselves: "
        "their checksum/config annotation does not change with the ConfigMap"
    ]


def test_a_new_storage_path_says_the_stored_profiles_stay_behind(repo: Path) -> None:
    edit(repo / "clusters/lab-tuned.yaml", "storagePath: /var/lib/pyroscope", "storagePath: /srv/pyroscope")
    _render(repo, "lab-tuned")
    impact = _section(_diff_json(repo), "lab-tuned")["impact"]
    [note] = _notes(impact, "the server's data directory changes from /var/lib/pyroscope to /srv/pyroscope")
    assert "which stay in /var/lib/pyroscope on the host, no longer served" in note


def test_a_bootstrap_change_says_it_waits_for_a_hand_and_an_appproject_change_does_not(repo: Path) -> None:
    edit(repo / "fleet.yaml", "targetRevision: main", "targetRevision: prod")
    edit(repo / "clusters/lab-tuned.yaml", "      name: lab-tuned", "      name: lab-tuned-2")
    _render(repo)
    section = _section(_diff_json(repo), "argocd/ (fleet)")
    by_hand = {(o["kind"], o["name"]): o["impact"] for o in section["objects"]}
    # The root Application syncs argocd/project.yaml and the Applications, not the bootstrap it comes from.
    assert by_hand == {
        ("AppProject", "profiling"): [],
        ("Application", "profiling-fleet"): [
            "Application profiling-fleet comes from argocd/bootstrap.yaml, which Argo CD does not sync: "
            "the change takes effect only once applied by hand (kubectl apply -f argocd/bootstrap.yaml)"
        ],
    }
    assert section["impact"] == by_hand[("Application", "profiling-fleet")]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clusters_that_change_alike_are_one_group_shown_with_progress_on_a_terminal(fleet: Path) -> None:
    for name, address in (("lab-two", "10.0.2.10"), ("lab-three", "10.0.3.10"), ("lab-four", "10.0.4.10")):
        text = (fleet / "clusters/lab-minimal.yaml").read_text().replace("lab-minimal", name)
        text = text.replace("10.0.1.10", address).replace("server: https://kubernetes.default.svc", f"name: {name}")
        if name != "lab-four":  # a namespace of its own, which the grouping sets aside like the name
            text = text.replace("spec:\n", f"spec:\n  platform: kubernetes\n  namespace: ns-{name}\n", 1)
        (fleet / f"clusters/{name}.yaml").write_text(text)
    repo = rendered_repo(fleet)
    # Every cluster without a sample rate of its own gets the new default; lab-four also its own retention.
    (repo / "clusters/_defaults.yaml").write_text(
        "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  ebpf:\n    sampleRate: 49\n"
    )
    edit(repo / "clusters/lab-four.yaml", "  argocd:\n", "  server:\n    retention: 1h\n  argocd:\n")
    _render(repo)
    out, err = io.StringIO(), _Terminal()
    assert diff_command.run(repo, "HEAD", "json", Output(out=out, err=err)) == 0
    # Four clusters inspected on both sides, then built and compared.
    assert re.fullmatch(r"\rdiffing:   0%\|[^\n]*\| 0/8 \[[^\n]*\r +\r", err.getvalue()), "shown, then cleared"
    doc = json.loads(out.getvalue())
    [group] = doc["groups"]
    assert group["clusters"] == ["lab-minimal", "lab-three", "lab-two"]
    assert group["source"] == "clusters/_defaults.yaml:5"
    # Each cluster's config names it and its server's address, and its checksum differs: the change is the same.
    config, daemonset = group["objects"]
    assert (config["name"], daemonset["name"]) == ("pyroscope-ebpf-config", "pyroscope-ebpf")
    assert group["impact"] == ["DaemonSet/pyroscope-ebpf: pods restart (ConfigMap pyroscope-ebpf-config changes)"]
    assert [s["name"] for s in doc["sections"]] == ["lab-four"]
    assert _section(doc, "lab-four")["counts"]["changed"] == 4  # its server's config and Deployment too
    quiet = io.StringIO()
    assert diff_command.run(repo, "HEAD", "text", Output(out=io.StringIO(), err=quiet, quiet=True)) == 0
    assert quiet.getvalue() == ""
