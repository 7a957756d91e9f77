"""`gen init`: start a fleet repository that the installed gen renders and checks."""

from __future__ import annotations

import json
from functools import cache
from importlib import metadata
from pathlib import Path

from gen import repofs, yamlio
from gen.components.common import filled
from gen.errors import EXIT_OK, Problem, SpecError, UsageError
from gen.output import Output
from gen.render import writer
from gen.spec.fleet import FLEET_FILE, load_fleet_text
from gen.spec.loader import CLUSTERS_DIR

WORKFLOW = ".github/workflows/pull-request.yaml"
# Each file gen init writes, by path in the new repository, from its template in gen/resources/init/.
TEMPLATES = {
    FLEET_FILE: "fleet.yaml",
    f"{CLUSTERS_DIR}/_defaults.yaml": "_defaults.yaml",
    ".gitignore": "gitignore",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    WORKFLOW: "pull-request.yaml",
}


def run(directory: Path, repo_url: str | None, out: Output) -> int:
    """Write the fleet's files into `directory` (created when absent), then render it."""
    from gen.commands import render

    if repo_url is None:
        raise UsageError("--repo-url is required: the git URL Argo CD reads the new repository from")
    taken = [rel for rel in (FLEET_FILE, CLUSTERS_DIR, *TEMPLATES) if (directory / rel).exists()]
    if taken:
        raise UsageError(
            f"{directory}: already holds {', '.join(dict.fromkeys(taken))}; gen init starts a new fleet only "
            "(after an upgrade of gen, `gen render --all` brings base/ current)"
        )
    package = gen_package()
    # A JSON string is a YAML scalar whatever the user typed.
    values = {"REPO_URL": json.dumps(repo_url), "GEN_PACKAGE": json.dumps(package or "")[1:-1]}
    files = {rel: filled(values, "init", name) for rel, name in TEMPLATES.items()}
    load_fleet_text(files[FLEET_FILE].encode())  # the URL as fleet.yaml takes it, or one clear line
    directory.mkdir(parents=True, exist_ok=True)
    report = writer.WriteReport()
    writer.write_files(directory, files, report)
    for rel in report.created:
        out.detail(f"created {rel}")
    if package is None:
        out.warn(
            _package_problem(
                files[WORKFLOW],
                "empty: this gen was not installed from a git URL, so CI cannot install it; set it to where it is "
                "hosted, at the commit that rendered this repository (gen @ git+https://HOST/OWNER/gen.git@COMMIT)",
            )
        )
    render.run(directory, [], True, out)
    out.note(
        f"a fleet in {directory}: add a cluster with `gen new NAME --address ADDR`, then `gen render NAME`, "
        "and commit everything; `pre-commit install` runs gen check before each commit"
    )
    return EXIT_OK


def ci_package_warning(root: Path) -> Problem | None:
    """When the fleet's workflow installs another gen than this one (after an upgrade of gen): what to set."""
    try:
        text = repofs.read_text(root / WORKFLOW)
        if yamlio.check_bounds(text) is not None:
            return None
        theirs = yamlio.parse_all_bytes(text.encode(), WORKFLOW)[0]["env"]["GEN_PACKAGE"]
    except (OSError, ValueError, LookupError, TypeError, SpecError):
        return None  # none, moved or rewritten: not the file gen init wrote
    # Asked only when the workflow names a gen: every check and full render comes here.
    mine = gen_package() if isinstance(theirs, str) and theirs else None
    if mine is None or theirs == mine:
        return None  # no workflow's gen to compare, or not installed from git: nothing to compare with
    return _package_problem(
        text,
        f"CI installs {theirs!r}, not this gen ({mine!r}): set it to this one in the commit that holds what this gen "
        "renders (base/ included), or CI's gen check compares the files with what the other gen renders",
    )


def _package_problem(workflow: str, message: str) -> Problem:
    """A problem on the GEN_PACKAGE line of the workflow's text."""
    line = next((n for n, t in enumerate(workflow.splitlines(), 1) if t.lstrip().startswith("GEN_PACKAGE:")), 1)
    return Problem(WORKFLOW, line, 3, "env.GEN_PACKAGE", message)


@cache
def gen_package() -> str | None:
    """How CI installs this very gen: the git URL and commit it came from; None when it came from elsewhere."""
    # Never `gen==VERSION`: the project "gen" on PyPI is another one, which pip would install instead.
    # A local path (an editable install, a checkout, a wheel file) is not on the runner either.
    dist = metadata.distribution("gen")
    try:
        origin = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        origin = {}
    vcs = origin.get("vcs_info", {})
    url = origin.get("url", "")
    if vcs.get("vcs") == "git" and vcs.get("commit_id") and not url.startswith("file:"):
        return f"gen @ git+{url}@{vcs['commit_id']}"
    return None
