"""`gen diff` of a fleet-wide change: one group for the clusters that change alike, the others apart.

kustomize is a stand-in on PATH that turns each generated file of an overlay into one ConfigMap: grouping
does not depend on what kustomize makes, and 400 real builds would take most of a minute.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest

from gen.commands import diff
from gen.review import diffview
from tests.conftest import FIXTURES, PROJECT, write_spec
from tests.git_fixtures import commit_all, edit, gen, init

CLUSTERS = 200
NAMES = [f"lab-{i:03d}" for i in range(CLUSTERS)]
OWN = NAMES[::5]  # these also change on their own, each in its own way
GROUPED = [n for n in NAMES if n not in OWN]
OBJECTS = 1 + 2 * len(OWN)  # the group's one, and each of the others' two
CAPS = (2000, 8000)  # the summary table cut, then the sections

STAND_IN = r"""#!/bin/sh
for f in "$2"/*; do
  case $f in */kustomization.yaml) continue ;; esac
  printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\ndata:\n  text: |2\n' "${f##*/}"
  sed 's/^/    /' "$f"
  echo
done
"""


def _spec(i: int) -> str:
    name = f"lab-{i:03d}"
    return f"""apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: {name}
spec:
  controlNode:
    address: 10.1.{i // 250}.{i % 250 + 1}
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: {name}
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """gen diff's stdout by format after a defaults change (and lab-007's own), from one repository."""
    tmp = tmp_path_factory.mktemp("diff-fleet")
    root, bin_dir = tmp / "fleet", tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "kustomize").write_text(STAND_IN)
    (bin_dir / "kustomize").chmod(0o755)
    root.mkdir()
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(FIXTURES / "fleet.yaml", root / "fleet.yaml")
    for i in range(CLUSTERS):
        write_spec(root, f"lab-{i:03d}", _spec(i))
    defaults = root / "clusters/_defaults.yaml"
    defaults.write_text("apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  server:\n    retention: 72h\n")
    init(root)
    assert gen("render", "--all", "-q", "--root", str(root)).exit_code == 0
    commit_all(root, "the fleet")
    edit(defaults, "72h", "96h")
    for i, name in enumerate(OWN):
        edit(root / f"clusters/{name}.yaml", "  argocd:\n", f"  ebpf:\n    sampleRate: {50 + i}\n  argocd:\n")
    assert gen("render", "--all", "-q", "--root", str(root)).exit_code == 0
    # One diff, printed in every format as `gen diff --format …` prints it: each diff costs seconds.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        report = diff.collect(root, "HEAD")
    return {
        "text": diffview.text(report),
        "markdown": diffview.markdown(report),
        **{f"capped at {cap}": diffview.markdown(report, max_chars=cap) for cap in CAPS},
        "json": diffview.json_text(report),
    }


def test_json_has_one_group_of_the_clusters_that_changed_alike_and_sections_for_the_others(
    outputs: dict[str, str],
) -> None:
    doc: dict[str, Any] = json.loads(outputs["json"])
    [group] = doc["groups"]
    assert (group["name"], group["scope"], group["clusters"]) == ("group 1", "group", GROUPED)
    assert group["source"] == "clusters/_defaults.yaml:5"
    [config] = group["objects"]
    assert (config["kind"], config["name"]) == ("ConfigMap", "config.yaml")
    [field] = config["fields"]
    assert [x for x in field["diff"] if x[:1] in "+-"] == [
        "-  retention_period: 72h",
        "-  max_query_lookback: 72h",
        "+  retention_period: 96h",
        "+  max_query_lookback: 96h",
    ]
    assert field["source"] == "clusters/_defaults.yaml:5"
    # A cluster that also changed on its own is a section with everything it changes.
    assert [s["name"] for s in doc["sections"]] == OWN
    own = doc["sections"][1]
    assert [(o["name"], o["fields"][0]["source"]) for o in own["objects"]] == [
        ("config.alloy", f"clusters/{OWN[1]}.yaml:9"),
        ("config.yaml", "clusters/_defaults.yaml:5"),
    ]
    assert "+  sample_rate      = 51" in own["objects"][0]["fields"][0]["diff"]
    # The summary has a row for every cluster that changed.
    assert [(r["name"], r["group"]) for r in doc["summary"]] == [(n, None if n in OWN else "group 1") for n in NAMES]


def test_text_shows_the_change_once_with_its_clusters_and_source(outputs: dict[str, str]) -> None:
    lines = outputs["text"].splitlines()
    assert lines[2:5] == [
        "cluster                status     added changed removed",
        "group 1: 160 clusters  changed        0       1       0",
        "lab-000                changed        0       2       0",
    ]
    assert lines[4 + len(OWN)] == f"total                                 0     {len(GROUPED) + 2 * len(OWN)}       0"
    assert lines[6 + len(OWN) : 9 + len(OWN)] == [
        "=== group 1: 160 clusters (changed: 1 changed) ===",
        f"  {', '.join(GROUPED[:10])} and 150 more; shown as in lab-001"
        " (each with its own name, address and namespace)",
        "  from clusters/_defaults.yaml:5",
    ]
    assert lines.count("~ ConfigMap config.yaml") == 1 + len(OWN)
    assert [x for x in lines if x.startswith("=== lab-")] == [f"=== {n} (changed: 2 changed) ===" for n in OWN]


def _shown(markdown: str, label: str) -> int:
    """How many object changes of a section the markdown shows."""
    _, found, rest = markdown.partition(f"<summary><b>{label}</b>")
    return rest.split("</details>")[0].count("**~ ConfigMap**") if found else 0


def test_markdown_shows_the_group_once_and_stays_under_its_cap_saying_what_it_left_out(
    outputs: dict[str, str],
) -> None:
    full = outputs["markdown"]
    assert "Truncated" not in full
    assert "| `group 1: 160 clusters` | changed | 0 | 1 | 0 |" in full
    assert "<summary><b>group 1: 160 clusters</b> (changed: 1 changed)</summary>" in full
    assert "From `clusters/_defaults.yaml:5`." in full
    assert full.count("<details>") == 1 + len(OWN)
    labels = ["group 1: 160 clusters", *OWN]
    sizes = dict(zip(labels, [1] + [2] * len(OWN), strict=True))

    for cap in CAPS:
        capped = outputs[f"capped at {cap}"]
        assert len(capped) <= cap < len(full)
        body, _, notice = capped.rpartition("> [!WARNING]\n")
        assert full.startswith(body.rsplit("<details>", 1)[0].rstrip("\n"))  # the same text, up to where it stops
        assert capped.count("<details>") == capped.count("</details>")
        assert capped.count("```") % 2 == 0
        shown = {label: _shown(capped, label) for label in labels}
        cut = [label for label in labels if shown[label] < sizes[label]]
        rows = sum(f"| `{label}` |" in capped for label in labels)
        names = ", ".join(f"`{label}`" for label in cut)
        nor = f"; nor are {len(labels) - rows} summary row(s)" if rows < len(labels) else ""
        assert notice == (
            f"> Truncated at {cap:,} characters (GitHub comments hold at most 65,536): "
            f"{OBJECTS - sum(shown.values())} object change(s) are not shown (of {names}){nor}. "
            "The full diff: `gen diff --base HEAD`\n"
        )
    assert "summary row" in outputs["capped at 2000"]
    assert "summary row" not in outputs["capped at 8000"]
