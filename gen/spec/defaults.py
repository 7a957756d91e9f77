"""Fleet-wide defaults: `clusters/_defaults.yaml`, merged under every cluster's spec."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gen import yamlio
from gen.errors import Problem, SpecError
from gen.spec.cluster import Model

DEFAULTS_FILE = "clusters/_defaults.yaml"
# Mappings whose keys are alternatives ("exactly one of server or name"): the cluster's
# replaces the default's whole, or a cluster naming its destination would inherit a server too.
ONE_OF = {("argocd", "destination")}


class _DefaultsFile(Model):
    """The defaults file's envelope; its spec is checked when merged into each cluster."""

    api_version: Literal["gen.profiling/v1alpha1"] = Field(description="The spec's version.")
    kind: Literal["Defaults"] = Field(description="Always Defaults.")
    spec: dict[str, Any] = Field(description="Spec fields every cluster inherits unless it sets them.")


@dataclass(frozen=True)
class Defaults:
    file: str
    doc: yamlio.Positioned
    spec: dict[str, Any]

    def gives(self, path: yamlio.Path, cluster: yamlio.Positioned) -> bool:
        """Whether the value at `path` (from "spec") is the defaults' in the merged spec of `cluster`."""
        replaced = any(path[1 : len(p) + 1] == p and ("spec", *p) in cluster.values for p in ONE_OF)
        return path in self.doc.values and not replaced


def load_defaults(root: Path) -> Defaults | None:
    """The fleet's defaults, or None when the repository has no defaults file."""
    from gen.spec.loader import validate_model

    path = root / DEFAULTS_FILE
    # Anything else there (a dangling link, a FIFO, a directory) is refused by `read`:
    # ignoring it would drop every default without a word.
    if not os.path.lexists(path):
        return None
    doc = yamlio.load(yamlio.read(path, DEFAULTS_FILE), DEFAULTS_FILE)
    _, problems = validate_model(_DefaultsFile, doc, DEFAULTS_FILE)
    if problems:
        raise SpecError(problems)
    spec = doc.data["spec"]
    if "metadata" in spec or "name" in spec:  # a top-level metadata is an unknown field of the model
        raise SpecError([Problem(DEFAULTS_FILE, *doc.where(("spec",)), "metadata", "defaults apply to spec only")])
    return Defaults(DEFAULTS_FILE, doc, spec)


def merge(default: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """`override` over `default`: mappings key by key, anything else (and a ONE_OF mapping) replaced whole."""
    if isinstance(default, dict) and isinstance(override, dict) and path not in ONE_OF:
        return {**default, **{k: merge(default.get(k), value, (*path, k)) for k, value in override.items()}}
    return override
