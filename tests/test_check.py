"""`gen check`, the drift gate, in real git repositories; and `render --all` pruning what it generated."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.conftest import snapshot
from tests.fleet_fixtures import render
from tests.git_fixtures import commit_all, edit, gen, git, init, rendered_repo


def test_check_right_after_render_is_in_sync(fleet: Path) -> None:
    root = rendered_repo(fleet)
    result = gen("check", "--root", str(root))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    rendered = [p for d in ("overlays", "argocd", "schema", "base") for p in (root / d).rglob("*") if p.is_file()]
    clusters = len(list((root / "clusters").glob("*.yaml")))
    assert f"{clusters} cluster(s), {len(rendered)} file(s): in sync with the specs" in result.stderr


def test_check_compares_with_the_files_render_would_write(fleet: Path) -> None:
    # The same function behind both: every file render() returns is what check expects.
    root = rendered_repo(fleet)
    for rel, text in render(root).all_files().items():
        assert (root / rel).read_text(encoding="utf-8") == text


def test_hand_edit_of_an_overlay_is_drift_with_its_diff_and_fix(fleet: Path) -> None:
    root = rendered_repo(fleet)
    before = snapshot(root)
    edit(root / "overlays/lab-minimal/config.alloy", "sample_rate      = 97", "sample_rate      = 10")
    edited = snapshot(root)
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "overlays/lab-minimal/config.alloy: hand-edited: edited by hand (no spec changed); a render overwrites "
        "the edit: change the spec instead (run: gen render lab-minimal)"
    )
    assert "-  sample_rate      = 10" in lines
    assert "+  sample_rate      = 97" in lines
    assert "--- overlays/lab-minimal/config.alloy (in the repository)" in lines
    assert "fix: gen render lab-minimal" in result.stderr
    assert snapshot(root) == edited != before  # check writes nothing


def test_control_characters_of_a_committed_file_are_shown_escaped_in_its_diff(fleet: Path) -> None:
    root = rendered_repo(fleet)
    forged = "sample_rate      = 10\x1b]0;title\x07\x1b[31m\b\b"
    edit(root / "overlays/lab-minimal/config.alloy", "sample_rate      = 97", forged)
    for fmt in ("text", "github"):
        result = gen("check", "--format", fmt, "--root", str(root))
        assert result.exit_code == 1
        assert not re.search("[\x00-\x09\x0b-\x1f]", result.stdout)
        assert "-  sample_rate      = 10\\x1b]0;title\\x07\\x1b[31m\\x08\\x08" in result.stdout.splitlines()


def test_a_removed_header_is_hand_edited_even_outside_git(fleet: Path) -> None:
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    path = fleet / "overlays/lab-tuned/namespace.yaml"
    path.write_text(path.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    result = gen("check", "--root", str(fleet))
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "overlays/lab-tuned/namespace.yaml: hand-edited: gen's header line is gone; a render overwrites the file "
        "(run: gen render lab-tuned)\n"
    )


def test_a_spec_change_not_rendered_is_a_changed_file(fleet: Path) -> None:
    root = rendered_repo(fleet)
    edit(root / "clusters/lab-minimal.yaml", "    address: 10.0.1.10\n", "    address: 10.0.1.11\n")
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    found = [line for line in result.stdout.splitlines() if ": changed: " in line]
    assert (
        "overlays/lab-minimal/kustomization.yaml: changed: differs from what the spec renders "
        "(run: gen render lab-minimal)" in found
    )
    assert not any("hand-edited" in line for line in result.stdout.splitlines())
    assert gen("render", "lab-minimal", "--root", str(root)).exit_code == 0
    assert gen("check", "--root", str(root)).exit_code == 0


def test_deleted_spec_leaves_an_orphan_that_render_all_prunes(fleet: Path) -> None:
    root = rendered_repo(fleet)
    (root / "clusters/lab-tuned.yaml").unlink()
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    assert (
        "overlays/lab-tuned/kustomization.yaml: orphan: generated for clusters/lab-tuned.yaml, which is gone "
        "(run: gen render --all)" in result.stdout
    )
    assert (
        "argocd/applications/lab-tuned.yaml: orphan: generated for clusters/lab-tuned.yaml, which is gone "
        "(run: gen render --all)" in result.stdout
    )
    assert "fix: gen render --all" in result.stderr

    pruned = gen("render", "--all", "--root", str(root))
    assert pruned.exit_code == 0
    assert "removed overlays/lab-tuned" in pruned.stdout
    assert "removed argocd/applications/lab-tuned.yaml" in pruned.stdout
    assert not (root / "overlays/lab-tuned").exists()
    again = gen("check", "--root", str(root))
    assert again.exit_code == 0, again.output


def test_an_orphan_names_the_spec_its_header_names(fleet: Path) -> None:
    root = rendered_repo(fleet)
    shutil.copy(root / "argocd/applications/lab-tuned.yaml", root / "argocd/applications/lab-tuned.yaml.bak")
    (root / "clusters/lab-minimal.yaml").unlink()
    header = root / "overlays/lab-minimal/kustomization.yaml"
    header.write_text(header.read_text().replace("clusters/lab-minimal.yaml", "", 1))  # named nothing: its cluster
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    orphans = [line for line in result.stdout.splitlines() if ": orphan: " in line]
    assert orphans == [
        "argocd/applications/lab-minimal.yaml: orphan: generated for clusters/lab-minimal.yaml, which is gone "
        "(run: gen render --all)",
        "argocd/applications/lab-tuned.yaml.bak: orphan: generated for clusters/lab-tuned.yaml, which does not "
        "render it (run: gen render --all)",
        "overlays/lab-minimal/kustomization.yaml: orphan: generated for cluster lab-minimal, which is gone "
        "(run: gen render --all)",
    ]


def test_foreign_overlays_are_reported_and_left_alone_by_render_and_check(fleet: Path) -> None:
    root = rendered_repo(fleet)
    foreign = root / "overlays/hand-made"
    foreign.mkdir()
    (foreign / "kustomization.yaml").write_text("resources: []\n", encoding="utf-8")
    (root / "argocd/applications/hand-made.yaml").write_text("kind: Application\n", encoding="utf-8")
    rendered = gen("render", "--all", "--root", str(root))
    assert rendered.exit_code == 0
    assert "overlays/hand-made: no spec and not generated by gen; left alone" in rendered.stderr
    assert (foreign / "kustomization.yaml").is_file()
    assert (root / "argocd/applications/hand-made.yaml").is_file()
    checked = gen("check", "--root", str(root))
    assert "overlays/hand-made: no spec and not generated by gen; left alone" in checked.stderr
    # No Application reads a foreign overlay; the root Application syncs a foreign Application.
    assert checked.exit_code == 1, checked.output
    assert checked.stdout.startswith("argocd/applications/hand-made.yaml: unclaimed: ")
    (root / "argocd/applications/hand-made.yaml").unlink()
    assert gen("check", "--root", str(root)).exit_code == 0


def test_missing_and_unexpected_files(fleet: Path) -> None:
    root = rendered_repo(fleet)
    (root / "overlays/lab-minimal/config.alloy").unlink()
    (root / "overlays/lab-minimal/notes.txt").write_text("mine\n", encoding="utf-8")
    shutil.copy(root / "clusters/lab-minimal.yaml", root / "clusters/lab-new.yaml")
    edit(root / "clusters/lab-new.yaml", "name: lab-minimal", "name: lab-new")
    edit(root / "clusters/lab-new.yaml", "server: https://kubernetes.default.svc", "name: lab-new")
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    out = result.stdout
    assert "overlays/lab-minimal/config.alloy: missing: not rendered (run: gen render lab-minimal)" in out
    assert (
        "overlays/lab-minimal/notes.txt: unexpected: the spec does not render this file; a render deletes it "
        "(run: gen render lab-minimal)" in out
    )
    assert "overlays/lab-new: missing: the cluster's overlay was never rendered (run: gen render lab-new)" in out
    assert "argocd/applications/lab-new.yaml: missing: not rendered (run: gen render lab-new)" in out
    # lab-new's destination is new to the AppProject too: a full render rewrites it.
    assert "argocd/project.yaml: changed: differs from what the spec renders (run: gen render --all)" in out
    assert "5 file(s) out of sync with the specs; fix: gen render --all" in result.stderr


def test_github_format_prints_annotations(fleet: Path) -> None:
    root = rendered_repo(fleet)
    edit(root / "overlays/lab-minimal/config.yaml", "retention_period: 168h", "retention_period: 24h")
    result = gen("check", "--format", "github", "--root", str(root))
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    line = (root / "overlays/lab-minimal/config.yaml").read_text(encoding="utf-8").splitlines().index(
        "  retention_period: 24h"
    ) + 1
    assert first.startswith(f"::error file=overlays/lab-minimal/config.yaml,line={line}::hand-edited: ")
    assert first.endswith("(run: gen render lab-minimal)")


def test_drift_in_line_endings_alone_shows_in_the_diff_at_its_line(fleet: Path) -> None:
    root = rendered_repo(fleet)
    crlf = root / "overlays/lab-minimal/config.yaml"
    crlf.write_bytes(crlf.read_bytes().replace(b"retention_period: 168h\n", b"retention_period: 168h\r\n"))
    line = crlf.read_bytes().decode().split("\n").index("  retention_period: 168h\r") + 1
    unended = root / "overlays/lab-tuned/namespace.yaml"
    last = unended.read_text(encoding="utf-8").removesuffix("\n")
    unended.write_text(last, encoding="utf-8")
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [x for x in lines if x.endswith("retention_period: 168h") or x.endswith("retention_period: 168h\\r")] == [
        "-  retention_period: 168h\\r",
        "+  retention_period: 168h",
    ]
    end = lines.index("\\ No newline at end of file")
    assert lines[end - 1 : end + 2] == [
        f"-{last.splitlines()[-1]}",
        "\\ No newline at end of file",
        f"+{last.splitlines()[-1]}",
    ]
    github = gen("check", "--format", "github", "--root", str(root)).stdout.splitlines()
    assert f"::error file=overlays/lab-minimal/config.yaml,line={line}::" in "\n".join(github)
    assert f"::error file=overlays/lab-tuned/namespace.yaml,line={len(last.split(chr(10)))}::" in "\n".join(github)


def test_check_in_a_fleet_below_the_top_of_the_repository(fleet: Path) -> None:
    # The fleet is a folder of a larger repository: paths from git are relative to its top.
    top = fleet.parent
    init(top)
    assert gen("render", "--all", "--root", str(fleet)).exit_code == 0
    commit_all(top, "render")
    edit(fleet / "overlays/lab-tuned/config.alloy", "sample_rate      = 49", "sample_rate      = 50")
    result = gen("check", "--root", str(fleet))
    assert result.exit_code == 1
    assert result.stdout.startswith("overlays/lab-tuned/config.alloy: hand-edited: edited by hand")
    assert git(top, "status", "--porcelain").strip() == "M fleet/overlays/lab-tuned/config.alloy"
    # CI runs in the repository's top: GitHub attaches an annotation to the file named from there.
    github = gen("check", "--format", "github", "--root", str(fleet)).stdout
    assert github.startswith("::error file=fleet/overlays/lab-tuned/config.alloy,line=")
    warned = gen("render", "lab-tuned", "--format", "github", "--root", str(fleet)).stdout  # the jar is unpinned
    assert "::warning file=fleet/clusters/lab-tuned.yaml,line=" in warned


def test_the_pre_commit_hook_runs_check_once_per_commit() -> None:
    from gen import yamlio
    from gen.components.common import filled
    from tests.conftest import PROJECT

    [hook] = yamlio.parse_plain((PROJECT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "gen-check"
    assert hook["entry"] == "gen check"
    assert hook["pass_filenames"] is False
    # pre-commit matches a filter against staged files less the deleted ones: a commit that only
    # removes a spec, leaving its overlay behind, would skip a filtered hook.
    assert hook["always_run"] is True and "files" not in hook
    [local] = yamlio.parse_plain(filled({"GEN_PACKAGE": "", "REPO_URL": ""}, "init", "pre-commit-config.yaml"))["repos"]
    assert [(h["entry"], h["always_run"]) for h in local["hooks"]] == [("gen check", True)]


def test_base_is_gen_s_own_and_check_says_when_it_differs(fleet: Path) -> None:
    root = rendered_repo(fleet)
    edit(root / "base/server/service.yaml", "name: pyroscope", "name: pyroscope-old")
    (root / "base/ebpf/rbac.yaml").unlink()
    result = gen("check", "--root", str(root))
    assert result.exit_code == 1
    findings = [line for line in result.stdout.splitlines() if line.startswith("base/")]
    assert findings == [
        "base/ebpf/rbac.yaml: missing: not rendered (run: gen render --all)",
        "base/server/service.yaml: changed: differs from the base/ this gen ships (after an upgrade of gen, or an edit)"
        " (run: gen render --all)",
    ]
    assert gen("render", "--all", "--root", str(root)).exit_code == 0
    assert gen("check", "--root", str(root)).exit_code == 0
    assert git(root, "status", "--porcelain") == ""


def test_check_as_json(fleet: Path) -> None:
    root = rendered_repo(fleet)
    result = gen("check", "--format", "json", "--root", str(root))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "inSync": True,
        "clusters": 2,
        "files": 27,
        "drift": [],
        "untouched": [],
        "fix": None,
    }
    (root / "overlays/lab-tuned/config.yaml").unlink()
    result = gen("check", "--format", "json", "--root", str(root))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["drift"] == [
        {
            "path": "overlays/lab-tuned/config.yaml",
            "kind": "missing",
            "fix": "gen render lab-tuned",
            "why": "not rendered",
            "diff": [],
            "line": 1,
        }
    ]
    assert report["fix"] == "gen render lab-tuned"
