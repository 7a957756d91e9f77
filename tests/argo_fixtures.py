"""Spec texts and helpers for the Argo CD tests: clusters written as YAML, loaded like real ones."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gen.render.rendering import argo_text
from gen.spec.loader import LoadedCluster, load_text

PROJECT = Path(__file__).resolve().parents[1]
CRDS = Path(__file__).resolve().parents[2] / "shared" / "crds" / "argo-cd-v3.6.0"
REPO = "https://github.com/acme/profiling-gitops.git"
IN_CLUSTER = "https://kubernetes.default.svc"


def spec_text(
    name: str,
    *,
    platform: str | None = "kubernetes",
    namespace: str | None = None,
    server: str | None = IN_CLUSTER,
    dest_name: str | None = None,
    repo: str = REPO,
    revision: str | None = None,
    project: str | None = None,
    automated: bool | None = None,
    grafana: bool | None = None,
    grafana_namespace: str | None = None,
    ebpf: bool | None = None,
) -> str:
    """A cluster spec as a user would write it: only what the test sets is in the file."""
    lines = [
        "apiVersion: gen.profiling/v1alpha1",
        "kind: Cluster",
        "metadata:",
        f"  name: {name}",
        "spec:",
    ]
    if namespace is not None:
        lines.append(f"  namespace: {namespace}")
    lines += ["  controlNode:", "    address: 10.0.1.10"]
    if grafana is not None or grafana_namespace is not None:
        lines.append("  grafana:")
        if grafana is not None:
            lines.append(f"    enabled: {str(grafana).lower()}")
        if grafana_namespace is not None:
            lines.append(f"    namespace: {grafana_namespace}")
    if ebpf is not None:
        lines += ["  ebpf:", f"    enabled: {str(ebpf).lower()}"]
    lines += ["  argocd:", f"    repoURL: {repo}"]
    if revision is not None:
        lines.append(f"    targetRevision: {revision}")
    if project is not None:
        lines.append(f"    project: {project}")
    lines.append("    destination:")
    if server is not None:
        lines.append(f"      server: {server}")
    if dest_name is not None:
        lines.append(f"      name: {dest_name}")
    if automated is not None:
        lines.append(f"    automated: {str(automated).lower()}")
    if platform is not None:
        # Last, so that the lines of the fields above do not depend on it.
        lines.append(f"  platform: {platform}")
    return "\n".join(lines) + "\n"


def write(root: Path, name: str, text: str) -> Path:
    path = root / "clusters" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(root: Path, name: str) -> LoadedCluster:
    """Load a spec written under root the way gen does (file name checked against metadata)."""
    path = root / "clusters" / f"{name}.yaml"
    return load_text(path.read_bytes(), f"clusters/{name}.yaml", name)


def write_documents(root: Path, documents: dict[str, list[dict[str, Any]]]) -> None:
    """Write rendered Argo CD documents as the render command would (gen's header, then the YAML)."""
    for rel, docs in documents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(argo_text(rel, docs), encoding="utf-8")


def expand_braces(pattern: str) -> list[str]:
    """A glob as Argo CD's include and exclude read it: one {a,b} group is enough to simulate here."""
    m = re.search(r"\{([^}]*)\}", pattern)
    if not m:
        return [pattern]
    return [pattern[: m.start()] + alt + pattern[m.end() :] for alt in m.group(1).split(",")]
