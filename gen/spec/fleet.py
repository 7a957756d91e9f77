"""The fleet-level setting, `fleet.yaml` at the repository root (optional: see README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from gen import yamlio
from gen.errors import SpecError
from gen.spec import loader
from gen.spec.cluster import ROOT_NAME, GitURL, Model, Name, Namespace, Revision, refused

FLEET_FILE = "fleet.yaml"
DEFAULT_ARGOCD_NAMESPACE = "argocd"


class Fleet(Model):
    """Where the bootstrap and the Applications are read from, and where they live."""

    repo_url: GitURL = Field(alias="repoURL", description="Git repository of the bootstrap and the Applications.")
    target_revision: Revision = Field("main", description="Branch, tag or commit of that repository.")
    argocd_namespace: Namespace = Field(DEFAULT_ARGOCD_NAMESPACE, description="Namespace Argo CD runs in.")
    project: Annotated[
        Name,
        Field(max_length=63),
        # A least-privilege `default` would break every other Application that relies on Argo CD's built-in one.
        refused(
            "default", "must not be 'default': gen renders this AppProject and would replace Argo CD's built-in project"
        ),
        refused(ROOT_NAME, f"must not be {ROOT_NAME!r}: the bootstrap's own project has that name"),
    ] = Field("profiling", description="Name of the fleet's least-privilege AppProject.")
    source_repos: Annotated[list[GitURL], Field(max_length=64)] = Field(
        [], description="Repositories besides repoURL that a spec's argocd.repoURL may name."
    )

    @property
    def repos(self) -> list[str]:
        """Every repository the fleet's Applications may read from, sorted: repoURL and sourceRepos."""
        return sorted({self.repo_url, *self.source_repos})


class FleetFile(Model):
    """The document in fleet.yaml: a header around the `Fleet` setting."""

    api_version: Literal["gen.profiling/v1alpha1"] = Field(description="The file's version.")
    kind: Literal["Fleet"] = Field(description="Always Fleet.")
    spec: Fleet = Field(description="The fleet's setting.")


def load_fleet(root: Path) -> Fleet | None:
    """Read `fleet.yaml` under root; None when the file is absent, SpecError when it is invalid."""
    path = root / FLEET_FILE
    if not os.path.lexists(path):
        return None
    return load_fleet_text(yamlio.read(path, FLEET_FILE))


def load_fleet_text(raw: bytes) -> Fleet:
    """Parse and validate the text of a fleet file (split out so tests need no disk)."""
    found, problems = loader.validate_model(FleetFile, yamlio.load(raw, FLEET_FILE), FLEET_FILE)
    if found is None:
        raise SpecError(problems)
    return found.spec
