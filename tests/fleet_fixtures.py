"""Fleets of numbered clusters, rendered in memory, and a check that files on disk are all old or all new."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from gen.components.argocd import overlay_dir
from gen.render import writer
from gen.render.rendering import render_fleet, written_order
from gen.spec.loader import LoadedCluster

Files = dict[str, str]


@dataclass
class Rendered:
    """Everything gen renders for a fleet, in memory: what `gen render --all` writes, by path."""

    clusters: list[LoadedCluster]
    overlays: dict[str, Files]  # directory → {file name: text}
    files: Files  # the files outside overlays/

    def all_files(self) -> Files:
        out = dict(self.files)
        out.update((f"{d}/{name}", text) for d, files in self.overlays.items() for name, text in files.items())
        return dict(sorted(out.items()))


def render(root: Path) -> Rendered:
    """Every file of the fleet at root, rendered in this process by the function `gen render` writes with."""
    fleet = render_fleet(root, compare=False, specs=True)
    overlays = {overlay_dir(c.name): dict(c.overlay or {}) for c in fleet.clusters}
    files = written_order({**fleet.files, **{rel: text for c in fleet.clusters for rel, text in c.files.items()}})
    return Rendered(fleet.specs, overlays, files)


def numbered_spec(index: int, version: int) -> str:
    """A valid spec that differs per cluster and, in every overlay, per version."""
    rng = random.Random(index * 7919 + version)
    name = f"lab-{index:03d}"
    # Each its own destination: specs on one destination would collide.
    destination = f"name: {name}" if rng.random() < 0.5 else f"server: https://{name}.example.internal:6443"
    labels = f"{{dc: us-east-1, rack: r{rng.randrange(4)}}}" if rng.random() < 0.5 else "{}"
    return f"""apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: {name}
spec:
  platform: kubernetes
  namespace: profiling-{index % 7}
  controlNode:
    address: 10.{index // 250}.{index % 250}.{version % 250 + 1}
  server:
    image: grafana/pyroscope:{rng.choice(["1.21.1", "2.2.1"])}
    port: {rng.randrange(4040, 4090)}
    retention: {24 + index}h{version}m
  ebpf:
    enabled: {str(rng.random() < 0.8).lower()}
    sampleRate: {rng.randrange(1, 1001)}
    privileged: {str(rng.random() < 0.5).lower()}
  grafana:
    enabled: {str(rng.random() < 0.5).lower()}
  cassandra:
    enabled: {str(rng.random() < 0.8).lower()}
    state: {rng.choice(["present", "absent"])}
    profiler:
      event: {rng.choice(["cpu", "itimer", "wall"])}
    labels: {labels}
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    automated: {str(rng.random() < 0.5).lower()}
    destination:
      {destination}
"""


def write_specs(root: Path, members: list[int], version: int) -> tuple[dict[str, Files], Files]:
    """Make clusters/ hold exactly these clusters at this version; return their rendering."""
    folder = root / "clusters"
    wanted = {f"lab-{i:03d}.yaml": numbered_spec(i, version) for i in members}
    for path in folder.iterdir():
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        (folder / name).write_text(text, encoding="utf-8")
    rendered = render(root)
    return {d: dict(f) for d, f in rendered.overlays.items()}, dict(rendered.files)


def is_leftover(name: str) -> bool:
    return name.startswith(writer.TMP_PREFIX)


def check_old_or_new(
    root: Path, old: tuple[dict[str, Files], Files], new: tuple[dict[str, Files], Files]
) -> tuple[dict[str, Files], Files]:
    """Assert every overlay and Argo CD file is entirely old or entirely new; return what is there."""
    (old_dirs, old_files), (new_dirs, new_files) = old, new
    overlays = root / "overlays"
    present = {f"overlays/{e.name}" for e in overlays.iterdir() if not is_leftover(e.name)}
    assert present <= old_dirs.keys() | new_dirs.keys(), present - old_dirs.keys() - new_dirs.keys()
    now_dirs: dict[str, Files] = {}
    for rel in sorted(old_dirs.keys() | new_dirs.keys()):
        actual = writer.read_tree(root / rel)
        assert actual in (old_dirs.get(rel), new_dirs.get(rel)), f"{rel} is neither its old nor its new version"
        if actual is not None:
            now_dirs[rel] = actual
    now_files: Files = {}
    for rel in sorted(old_files.keys() | new_files.keys()):
        path = root / rel
        text = path.read_text(encoding="utf-8") if path.exists() else None
        assert text in (old_files.get(rel), new_files.get(rel)), f"{rel} is neither its old nor its new version"
        if text is not None:
            now_files[rel] = text
    for folder in (root / "argocd", root / "argocd" / "applications"):
        for entry in folder.iterdir():
            rel = entry.relative_to(root).as_posix()
            assert entry.is_dir() or rel in now_files or is_leftover(entry.name), f"unexpected {rel}"
    return now_dirs, now_files
