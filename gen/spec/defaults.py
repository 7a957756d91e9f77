"""Fleet-wide defaults: `clusters/_defaults.yaml`, merged under every cluster's spec.

Mappings merge key by key; a list, a scalar or a one-of mapping (the Argo CD
destination) in the cluster replaces the default. Every merged value keeps the file and position it came from, so errors
and provenance point at the defaults file when a value is inherited.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from gen import yamlio
from gen.errors import Problem, SpecError
from gen.spec.cluster import API_VERSION, Model

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

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.doc.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    def gives(self, path: yamlio.Path, cluster: yamlio.Positioned) -> bool:
        """Whether the value at `path` (from "spec") is the defaults' in the merged spec of `cluster`."""
        replaced = any(path[1 : len(p) + 1] == p and ("spec", *p) in cluster.values for p in ONE_OF)
        return path in self.doc.values and not replaced


def load_defaults(root: Path) -> Defaults | None:
    """The fleet's defaults, or None when the repository has no defaults file."""
    from gen.spec.loader import validate_model

    path = root / DEFAULTS_FILE
    if not os.path.lexists(path):
        # Anything else there (a dangling link, a FIFO, a directory) is refused by
        # `read`: ignoring it would drop every default without a word.
        return None
    doc = yamlio.load(yamlio.read(path, DEFAULTS_FILE), DEFAULTS_FILE)
    _, problems = validate_model(_DefaultsFile, doc, DEFAULTS_FILE)
    if problems:
        raise SpecError(problems)
    spec = doc.data["spec"]
    if "metadata" in doc.data or any(k in spec for k in ("metadata", "name")):
        line, col = doc.where(("metadata",)) if "metadata" in doc.data else doc.where(("spec",))
        raise SpecError([Problem(DEFAULTS_FILE, line, col, "metadata", "defaults apply to spec only")])
    if doc.data.get("apiVersion") != API_VERSION:  # pragma: no cover - refused by the model
        raise SpecError([Problem(DEFAULTS_FILE, 1, 1, "apiVersion", f"must be {API_VERSION}")])
    return Defaults(DEFAULTS_FILE, doc)


def merge(default: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """`override` over `default`: mappings key by key, anything else (and a ONE_OF mapping) replaced whole."""
    if isinstance(default, dict) and isinstance(override, dict) and path not in ONE_OF:
        out = dict(default)
        for key, value in override.items():
            out[key] = merge(default[key], value, (*path, key)) if key in default else value
        return out
    return override
