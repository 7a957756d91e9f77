"""An overlay stale against its spec: `gen diff` and `gen validate` say so, in real git repositories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.git_fixtures import edit, gen, rendered_repo

SAMPLE_RATE = ("  argocd:\n", "  ebpf:\n    sampleRate: 49\n  argocd:\n")
NOTE = (
    "gen: lab-minimal: overlays/lab-minimal is stale against clusters/lab-minimal.yaml; "
    "the diff shows the committed overlay (run: gen render lab-minimal)"
)
FINDING = (
    "overlays/lab-minimal: stale: differs from what clusters/lab-minimal.yaml renders (run: gen render lab-minimal)"
)
SUMMARY = "gen: 1 overlay(s) built and validated for Kubernetes 1.33.0: {} problem(s)"


@pytest.fixture
def repo(fleet: Path) -> Path:
    return rendered_repo(fleet)


def test_diff_of_a_spec_edited_without_a_render_says_the_overlay_is_stale(repo: Path) -> None:
    edit(repo / "clusters/lab-minimal.yaml", *SAMPLE_RATE)
    text = gen("diff", "--root", str(repo))
    assert text.exit_code == 0
    assert text.stdout.splitlines()[1] == "no change to the built manifests between HEAD and the working tree"
    assert text.stderr.splitlines() == [NOTE]

    as_json = gen("diff", "--format", "json", "--root", str(repo))
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["stale"] == [{"name": "lab-minimal", "spec": "clusters/lab-minimal.yaml"}]
    assert as_json.stderr.splitlines() == [NOTE]

    markdown = gen("diff", "--format", "markdown", "--root", str(repo))
    assert markdown.exit_code == 0
    assert markdown.stdout.splitlines()[2] == (
        "- ⚠️ `overlays/lab-minimal` is stale against `clusters/lab-minimal.yaml`: "
        "this diff shows the committed overlay (run: `gen render lab-minimal`)"
    )


def test_diff_names_a_spec_with_no_rendered_overlay_in_every_format(repo: Path) -> None:
    spec = (repo / "clusters/lab-minimal.yaml").read_text(encoding="utf-8")
    (repo / "clusters/lab-new.yaml").write_text(spec.replace("name: lab-minimal", "name: lab-new"), encoding="utf-8")
    note = "gen: clusters/lab-new.yaml has no rendered overlay, so it is not in the diff (run: gen render lab-new)"
    as_json = gen("diff", "--format", "json", "--root", str(repo))
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["unrendered"] == [{"name": "lab-new", "spec": "clusters/lab-new.yaml"}]
    assert as_json.stderr.splitlines() == [note]
    markdown = gen("diff", "--format", "markdown", "--root", str(repo))
    assert markdown.exit_code == 0
    assert markdown.stdout.splitlines()[2] == (
        "- ⚠️ `clusters/lab-new.yaml` has no rendered overlay, so it is not in this diff (run: `gen render lab-new`)"
    )
    assert markdown.stderr.splitlines() == [note]


def test_validate_fails_on_a_stale_overlay_and_still_validates_what_is_committed(repo: Path) -> None:
    edit(repo / "clusters/lab-minimal.yaml", *SAMPLE_RATE)
    # The committed overlay's own problem is found too: it was built and validated.
    edit(
        repo / "overlays/lab-minimal/kustomization.yaml",
        "  - CLUSTER_NAME=",
        "  - API_TOKEN=s3cr3tvalue\n  - CLUSTER_NAME=",
    )
    result = gen("validate", "lab-minimal", "--root", str(repo))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        FINDING,
        "overlays/lab-minimal: ConfigMap/pyroscope-cassandra-agent: data.API_TOKEN: "
        "a literal value under a credential's name (API_TOKEN)",
    ]
    assert result.stderr.splitlines()[-1] == SUMMARY.format(2)
    assert gen("validate", "lab-tuned", "--root", str(repo)).exit_code == 0


def test_a_hand_edited_application_is_stale_too(repo: Path) -> None:
    edit(repo / "argocd/applications/lab-minimal.yaml", "selfHeal: true", "selfHeal: false")
    result = gen("validate", "lab-minimal", "--root", str(repo))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [FINDING]


def test_no_hint_when_the_overlays_are_rendered(repo: Path) -> None:
    edit(repo / "clusters/lab-minimal.yaml", *SAMPLE_RATE)
    assert gen("render", "lab-minimal", "--root", str(repo)).exit_code == 0
    text = gen("diff", "--root", str(repo))
    assert text.exit_code == 0
    assert "=== lab-minimal (changed: 2 changed) ===" in text.stdout
    assert "stale" not in text.stderr
    as_json = gen("diff", "--format", "json", "--root", str(repo))
    assert json.loads(as_json.stdout)["stale"] == []
    result = gen("validate", "lab-minimal", "--root", str(repo))
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.splitlines()[-1] == SUMMARY.format(0)


def test_validate_as_json_and_a_base_that_is_not_this_gen_s(repo: Path) -> None:
    edit(repo / "clusters/lab-minimal.yaml", *SAMPLE_RATE)
    result = gen("validate", "lab-minimal", "--format", "json", "--root", str(repo))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "kubernetesVersion": "1.33.0",
        "overlays": 1,
        "problems": [FINDING],
        "notes": [],
    }
    edit(repo / "base/server/service.yaml", "name: pyroscope", "name: pyroscope-old")
    result = gen("validate", "lab-minimal", "--root", str(repo))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "base/server/service.yaml: changed: differs from the base/ this gen ships (after an upgrade of gen, or an edit)"
        " (run: gen render --all)"
    ]
    shutil.rmtree(repo / "base")
    result = gen("validate", "--root", str(repo))
    assert result.stdout.splitlines()[0] == "base/: missing: the overlays are built against it (run: gen render --all)"
