"""The README's examples run as written: every YAML block, every gen command and every output it shows."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from gen.spec.loader import load_clusters
from tests.conftest import PROJECT, make_fleet, write_spec
from tests.git_fixtures import GIT_ENV, commit_all, edit, gen, rendered_repo

README = (PROJECT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(README) if m.group(1) == lang]


def yaml_blocks(kind: str) -> list[str]:
    """The README's YAML blocks of one kind (a Kubernetes-style `kind:`, or `pre-commit`)."""
    out = []
    for text in blocks("yaml"):
        data = YAML(typ="safe").load(text)
        found = "pre-commit" if "repos" in data else data.get("kind")
        out += [text] if found == kind else []
    return out


def test_every_yaml_block_is_exercised_below() -> None:
    kinds = []
    for text in blocks("yaml"):
        data = YAML(typ="safe").load(text)  # and each one parses
        kinds.append("pre-commit" if "repos" in data else data.get("kind"))
    assert set(kinds) <= {"Cluster", "Defaults", "Fleet", "pre-commit"}, kinds


@pytest.mark.parametrize("text", yaml_blocks("Cluster"))
def test_a_cluster_spec_block_renders_and_checks(fleet: Path, text: str) -> None:
    name = YAML(typ="safe").load(text)["metadata"]["name"]
    write_spec(fleet, name, text)
    result = gen("render", name, "--root", str(fleet))
    assert result.exit_code == 0, result.output
    assert (fleet / "overlays" / name / "kustomization.yaml").is_file()


@pytest.mark.parametrize("text", yaml_blocks("Defaults"))
def test_a_defaults_block_renders_every_cluster(fleet: Path, text: str) -> None:
    # Under the tests' own examples: one cluster names its destination, the other its server.
    (fleet / "clusters" / "_defaults.yaml").write_text(text, encoding="utf-8")
    result = gen("render", "--all", "--root", str(fleet))
    assert result.exit_code == 0, result.output
    assert gen("check", "--root", str(fleet)).exit_code == 0


@pytest.mark.parametrize("text", yaml_blocks("Fleet"))
def test_a_fleet_block_renders_the_fleet(fleet: Path, text: str) -> None:
    (fleet / "fleet.yaml").write_text(text, encoding="utf-8")
    result = gen("render", "--all", "--root", str(fleet))
    assert result.exit_code == 0, result.output


def test_the_pre_commit_block_names_a_hook_the_repository_ships() -> None:
    shipped = {h["id"] for h in YAML(typ="safe").load((PROJECT / ".pre-commit-hooks.yaml").read_text())}
    [text] = yaml_blocks("pre-commit")
    named = {h["id"] for repo in YAML(typ="safe").load(text)["repos"] for h in repo["hooks"]}
    assert named and named <= shipped


# The README's placeholders, as a user would fill them in for the tests' fleet.
PLACEHOLDERS = {
    "NAME…": "lab-minimal",
    "NAME": "lab-minimal",
    "<name>": "lab-minimal",
    "[NAME…]": "lab-minimal",
    "[FIELD]": "spec.server.port",
    "REF": "HEAD",
    "HEAD^1": "HEAD",  # a pull request's base, in the workflow's merge commit
    "N": "2",
    "…": "list",
}


def scripts() -> list[str]:
    """The README's shell blocks that are a session to run whole (they start a fleet)."""
    return [b for b in blocks("sh") if "gen init" in b]


def readme_commands() -> list[str]:
    """Every gen command the README shows with its arguments: code spans and shell blocks, placeholders filled in."""
    spans = re.findall(r"`(gen [^`]*)`", README)
    lines = [line for block in blocks("sh") if block not in scripts() for line in block.splitlines()]
    spans += [part for line in lines for part in line.split("&&")]
    out = []
    for span in dict.fromkeys(s.split("#")[0].split(" | ")[0].strip() for s in spans):
        filled = re.sub(r"\[(--[^]]*)\]", r"\1", span.replace("origin/<base branch>", "REF").replace("\\|", "|"))
        words = [PLACEHOLDERS.get(w, w.split("|")[0]) for w in filled.split()]
        if words[:1] == ["gen"]:
            out.append(" ".join(words))
    return out


def test_the_readme_shows_the_main_commands() -> None:
    shown = {c.split()[1] for c in readme_commands() if not c.startswith("gen --")}
    assert {"render", "check", "diff", "validate", "list", "new", "explain", "schema"} <= shown


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return rendered_repo(make_fleet(tmp_path_factory.mktemp("readme") / "fleet"))


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_runs_as_written(committed: Path, tmp_path: Path, command: str) -> None:
    args = shlex.split(command)[1:]
    if len(args) == 1 and args[0] in COMMANDS_NEEDING_ARGUMENTS:
        # The command's name in a sentence: it exists.
        assert gen(args[0], "--help").exit_code == 0
        return
    repo = tmp_path / "fleet"
    shutil.copytree(committed, repo, symlinks=True)
    if args[:1] == ["init"]:
        args = ["init", str(tmp_path / "new-fleet"), "--repo-url", "https://github.com/acme/lab-fleet.git"]
    if args[:1] == ["new"]:
        args = [
            "new",
            "lab-east",
            "--address",
            "10.0.9.10",
            "--repo-url",
            "https://github.com/acme/profiling-gitops.git",
        ]
    result = gen(*args, "--root", str(repo))
    assert result.exit_code == 0, f"{command}: {result.output}"


COMMANDS_NEEDING_ARGUMENTS = {"render", "new", "explain", "init"}


LAB_EAST = """\
apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: lab-east
spec:
  controlNode:
    address: 10.0.1.10
  server:
    port: 4040
  ebpf:
    sampleRate: 97
  cassandra:
    profiler:
      uploadInterval: 10s
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: lab-east
"""


def shown(block: str, output: str) -> bool:
    """Whether the README block is an excerpt of output, whole lines, a line `…` standing for any lines."""
    pattern = "".join(r"(?:.*\n)*?" if line == "…" else re.escape(line) + r"\n" for line in block.splitlines())
    return re.search("(?m)^" + pattern, output) is not None


def output_block(first: str) -> str:
    [block] = [b for b in blocks("") if b.startswith(first)]
    return block


def test_the_spec_errors_shown_are_gen_s(fleet: Path) -> None:
    text = LAB_EAST.replace("  server:", "  sever:").replace("uploadInterval: 10s", "uploadInterval: 1m")
    write_spec(fleet, "lab-east", text)
    result = gen("render", "lab-east", "--root", str(fleet))
    assert result.exit_code == 2
    assert shown(output_block("clusters/lab-east.yaml:8:3"), result.stderr)


def test_the_port_clash_shown_is_gen_s(fleet: Path) -> None:
    write_spec(fleet, "lab-east", LAB_EAST.replace("port: 4040", "port: 3000"))
    result = gen("render", "lab-east", "--root", str(fleet))
    assert result.exit_code == 2
    assert shown(output_block("clusters/lab-east.yaml:9:11"), result.stderr)


def test_the_hand_edit_shown_is_gen_check_s(fleet: Path) -> None:
    write_spec(fleet, "lab-east", LAB_EAST)
    repo = rendered_repo(fleet)
    edit(repo / "overlays/lab-east/config.alloy", "sample_rate      = 97", "sample_rate      = 49")
    result = gen("check", "--root", str(repo))
    assert result.exit_code == 1
    assert shown(output_block("overlays/lab-east/config.alloy: hand-edited"), result.stdout + result.stderr)


def test_the_diff_shown_is_gen_diff_s(fleet: Path) -> None:
    write_spec(fleet, "lab-east", LAB_EAST)
    repo = rendered_repo(fleet)
    edit(repo / "clusters/lab-east.yaml", "sampleRate: 97", "sampleRate: 49")
    assert gen("render", "lab-east", "--root", str(repo)).exit_code == 0
    commit_all(repo, "sample less often")
    result = gen("diff", "--base", "HEAD~1", "--root", str(repo))
    assert shown(output_block("=== lab-east"), result.stdout)


def test_the_grouped_diff_shown_is_gen_diff_s(fleet: Path) -> None:
    (fleet / "clusters/lab-minimal.yaml").unlink()
    for i, name in enumerate(("lab-east", "lab-north", "lab-south", "lab-west"), 1):
        own = LAB_EAST.replace("lab-east", name).replace("10.0.1.10", f"10.0.{i}.10")
        write_spec(fleet, name, own.replace("  ebpf:\n    sampleRate: 97\n", ""))
    repo = rendered_repo(fleet)
    defaults = "apiVersion: gen.profiling/v1alpha1\nkind: Defaults\nspec:\n  ebpf:\n    sampleRate: 49\n"
    (repo / "clusters/_defaults.yaml").write_text(defaults)
    assert gen("render", "--all", "--root", str(repo)).exit_code == 0
    result = gen("diff", "--base", "HEAD", "--root", str(repo))
    assert shown(output_block("=== group 1"), result.stdout)


def test_the_firewall_example_names_the_ports_the_server_binds(fleet: Path) -> None:
    [block] = [b for b in blocks("sh") if "iptables" in b]
    named = {int(p) for ports in re.findall(r"--dports? ([\d,]+)", block) for p in ports.split(",")}
    write_spec(fleet, "lab-east", LAB_EAST)
    [loaded] = load_clusters(fleet, ["lab-east"])
    assert named == set(loaded.cluster.spec.server.node_ports.values())


@pytest.mark.parametrize("script", scripts())
def test_a_readme_session_runs_as_written(tmp_path: Path, script: str) -> None:
    # In a shell, with the gen this test runs on PATH, as a user would type it.
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
