"""`gen render --all` skips the clusters whose inputs did not change, and is never different for it.

Every case is run twice from the same tree: in a git repository, where the
render cache is used, and in a copy without `.git`, where every cluster is
rendered. Files, stdout, stderr and exit code must be the same.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gen.render import cache as render_cache
from gen.render.cache import CACHE_NAME, open_cache
from gen.render.rendering import render_fleet
from gen.spec.loader import spec_files
from tests.conftest import snapshot, write_spec
from tests.git_fixtures import gen, init

DEFAULTS = """apiVersion: gen.profiling/v1alpha1
kind: Defaults
spec:
  cassandra:
    agent:
      sha256: "abababababababababababababababababababababababababababababababab"
"""


def spec(i: int, port: int = 4040, dc: str = "dc1", destination: int | None = None) -> str:
    # Every third cluster leaves its agent unpinned: a warning that must survive a reuse.
    agent = "    agent:\n      sha256: null\n" if i % 3 == 0 else ""
    return f"""apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: c{i:02d}
spec:
  platform: kubernetes
  namespace: profiling-{i % 2}
  controlNode:
    address: 10.0.{i}.10
  server:
    port: {port}
  grafana:
    enabled: {"false" if i % 4 == 0 else "true"}
  cassandra:
{agent}    labels:
      dc: {dc}
  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: k8s-{i if destination is None else destination:02d}
"""


@pytest.fixture
def repo(fleet: Path) -> Path:
    for path in (fleet / "clusters").glob("*.yaml"):
        path.unlink()
    (fleet / "clusters" / "_defaults.yaml").write_text(DEFAULTS)
    for i in range(12):
        write_spec(fleet, f"c{i:02d}", spec(i))
    init(fleet)
    return fleet


def _render_both(root: Path, tmp: Path) -> None:
    """Render root with its cache and a cache-less copy of it; both must end the same."""
    mirror = tmp / "mirror"
    shutil.rmtree(mirror, ignore_errors=True)
    shutil.copytree(root, mirror, ignore=shutil.ignore_patterns(".git", ".gen.lock"))
    cached = gen("render", "--all", "--root", str(root))
    plain = gen("render", "--all", "--root", str(mirror))
    assert (cached.exit_code, cached.stdout, cached.stderr) == (
        plain.exit_code,
        plain.stdout.replace(str(mirror), str(root)),
        plain.stderr.replace(str(mirror), str(root)),
    )
    ours = {k: v for k, v in snapshot(root).items() if not k.startswith(".git/")}
    # Outside git, the lock file lies in the root.
    assert ours == {k: v for k, v in snapshot(mirror).items() if k != ".gen.lock"}


def _overlay_file(root: Path, rng: random.Random) -> Path:
    overlay = rng.choice(sorted((root / "overlays").iterdir()))
    return rng.choice(sorted(overlay.iterdir()))


def _edit_keeping_times(path: Path, rng: random.Random) -> None:
    """A same-size edit with the old mtime put back: only the ctime tells."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    at = rng.randrange(len(data) - 1) + 1
    data[at] = ord("#") if data[at] != ord("#") else ord("x")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _operations(root: Path, rng: random.Random) -> list[Callable[[], None]]:
    def edit_spec() -> None:
        i = rng.randrange(12)
        if (root / "clusters" / f"c{i:02d}.yaml").exists():
            write_spec(root, f"c{i:02d}", spec(i, port=4100 + rng.randrange(50), dc=f"dc{rng.randrange(3)}"))

    def move_spec() -> None:
        # Onto another cluster's destination now and then: the AppProject changes, or two specs collide.
        i = rng.randrange(12)
        if (root / "clusters" / f"c{i:02d}.yaml").exists():
            write_spec(root, f"c{i:02d}", spec(i, destination=rng.choice([i, i, (i + 2) % 12, 20 + i])))

    def hand_edit_project() -> None:
        path = root / "argocd" / "project.yaml"
        path.write_text(path.read_text() + "# edited\n")

    def rewrite_same_spec() -> None:
        path = root / rng.choice(sorted(spec_files(root).values()))
        path.write_bytes(path.read_bytes())

    def edit_spec_hidden() -> None:
        i = rng.randrange(12)
        path = root / "clusters" / f"c{i:02d}.yaml"
        if path.exists():
            _edit_keeping_times(path, rng)

    def hand_edit() -> None:
        path = _overlay_file(root, rng)
        path.write_text(path.read_text() + "# edited\n")

    def hand_edit_hidden() -> None:
        _edit_keeping_times(_overlay_file(root, rng), rng)

    def delete_file() -> None:
        _overlay_file(root, rng).unlink()

    def add_file() -> None:
        overlay = rng.choice(sorted((root / "overlays").iterdir()))
        (overlay / "extra.yaml").write_text("kind: ConfigMap\n")

    def delete_application() -> None:
        rng.choice(sorted((root / "argocd" / "applications").iterdir())).unlink()

    def edit_defaults() -> None:
        pair = rng.choice(["ab", "cd", "ef"])
        (root / "clusters" / "_defaults.yaml").write_text(DEFAULTS.replace("abababab", pair * 4, 1))

    def remove_spec() -> None:
        path = root / rng.choice(sorted(spec_files(root).values()))
        path.unlink()

    def add_spec() -> None:
        i = rng.randrange(12)
        write_spec(root, f"c{i:02d}", spec(i, dc="dc9"))

    def break_spec() -> None:
        i = rng.randrange(12)
        path = root / "clusters" / f"c{i:02d}.yaml"
        if path.exists():
            path.write_text(path.read_text().replace("port:", "prot:"))

    def fix_specs() -> None:
        for rel in spec_files(root).values():
            path = root / rel
            path.write_text(path.read_text().replace("prot:", "port:"))

    return [
        edit_spec,
        move_spec,
        hand_edit_project,
        rewrite_same_spec,
        edit_spec_hidden,
        hand_edit,
        hand_edit_hidden,
        delete_file,
        add_file,
        delete_application,
        edit_defaults,
        remove_spec,
        add_spec,
        break_spec,
        fix_specs,
    ]


@pytest.mark.parametrize("seed", range(3))
def test_cached_render_equals_a_full_one_after_any_change(repo: Path, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    _render_both(repo, tmp_path)
    operations = _operations(repo, rng)
    for _ in range(14):
        # Past the clock tick of the last render, so that its files can be trusted.
        time.sleep(0.02)
        rng.choice(operations)()
        _render_both(repo, tmp_path)


def _render_twice(repo: Path) -> None:
    """A full render, then another past the clock tick of its cache: the cache trusts what the first wrote."""
    for _ in range(2):
        assert gen("render", "--all", "--root", str(repo)).exit_code == 0
        time.sleep(0.02)


def test_an_unchanged_fleet_is_not_rendered_again(repo: Path) -> None:
    _render_twice(repo)
    write_spec(repo, "c05", spec(5, port=4200))
    again = render_fleet(repo, cached=True)
    assert [c.name for c in again.clusters] == ["c05"]
    assert len(again.reused) == 11
    assert [w.file for w in again.warnings] == [f"clusters/c{i:02d}.yaml" for i in (0, 3, 6, 9)]


def test_a_spec_that_moves_is_checked_against_the_whole_fleet_again(repo: Path) -> None:
    _render_twice(repo)
    write_spec(repo, "c05", spec(5, destination=30))  # a cluster of its own: the AppProject admits it
    assert gen("render", "--all", "--root", str(repo)).exit_code == 0
    assert "name: k8s-30\n    namespace: profiling-1" in (repo / "argocd" / "project.yaml").read_text()
    time.sleep(0.02)
    write_spec(repo, "c05", spec(5, destination=3))  # c03's cluster, in the same namespace: a collision
    result = gen("render", "--all", "--root", str(repo))
    assert result.exit_code == 2
    assert "clusters/c05.yaml" in result.stderr and "as clusters/c03.yaml" in result.stderr


def test_specs_are_known_by_their_stats_and_a_touched_one_by_its_bytes(repo: Path) -> None:
    _render_twice(repo)
    cache = open_cache(repo, spec_files(repo))
    assert cache is not None
    assert (len(cache.reusable()), cache.read) == (12, {}), "no spec read"
    for path in (repo / rel for rel in spec_files(repo).values()):
        path.write_bytes(path.read_bytes())  # a checkout: new times, the same bytes
    time.sleep(0.02)
    result = gen("render", "--all", "--root", str(repo))
    assert (result.exit_code, result.stdout) == (0, "12 cluster(s) up to date\n")
    time.sleep(0.02)
    cache = open_cache(repo, spec_files(repo))
    assert cache is not None
    assert (len(cache.reusable()), cache.read) == (12, {}), "the new times were kept"


def test_check_trusts_the_cache_only_for_untouched_files(repo: Path) -> None:
    _render_twice(repo)
    # The same answer, with the same counts, from the cache as from a full render.
    answers = {(r.exit_code, r.stderr) for r in (gen("check", *a, "--root", str(repo)) for a in ([], ["--no-cache"]))}
    assert answers == {(0, "gen: 12 cluster(s), 104 file(s): in sync with the specs\n")}
    _edit_keeping_times(repo / "overlays" / "c03" / "config.yaml", random.Random(3))
    result = gen("check", "--root", str(repo))
    assert result.exit_code == 1
    assert result.stdout.startswith("overlays/c03/config.yaml: ")


def test_a_file_edited_within_the_tick_of_the_last_render_is_not_trusted(repo: Path) -> None:
    _render_twice(repo)
    cache = open_cache(repo, spec_files(repo))
    assert cache is not None
    assert len(cache.reusable()) == 12
    # As if every file had been written in the same clock tick as the cache.
    cache.stamp = 0
    assert cache.reusable() == {}


def test_a_cache_that_does_not_read_means_a_full_render(repo: Path) -> None:
    assert gen("render", "--all", "--root", str(repo)).exit_code == 0
    before = snapshot(repo / "overlays")
    (repo / ".git" / CACHE_NAME).write_bytes(b"\x00garbage")
    result = gen("render", "--all", "--root", str(repo))
    assert (result.exit_code, result.stdout) == (0, "12 cluster(s) up to date\n")
    assert snapshot(repo / "overlays") == before


def test_no_cache_outside_git_or_without_fleet_yaml(repo: Path) -> None:
    assert open_cache(repo, spec_files(repo)) is not None
    (repo / "fleet.yaml").unlink()
    assert open_cache(repo, spec_files(repo)) is None
    shutil.rmtree(repo / ".git")
    assert open_cache(repo, spec_files(repo)) is None


def test_no_cache_renders_every_cluster_and_leaves_the_cache_alone(repo: Path) -> None:
    assert gen("render", "--all", "--root", str(repo)).exit_code == 0
    cache = repo / ".git" / CACHE_NAME
    before = cache.read_bytes()
    time.sleep(0.02)
    result = gen("render", "--all", "--no-cache", "--root", str(repo))
    assert (result.exit_code, result.stdout) == (0, "12 cluster(s) up to date\n")
    assert cache.read_bytes() == before


def test_a_render_with_nothing_to_do_writes_no_file_at_all(repo: Path) -> None:
    _render_twice(repo)
    before = {p: p.stat().st_mtime_ns for p in repo.rglob("*") if p.is_file()}
    assert gen("render", "--all", "--root", str(repo)).stdout == "12 cluster(s) up to date\n"
    assert {p: p.stat().st_mtime_ns for p in repo.rglob("*") if p.is_file()} == before


def test_the_cache_key_covers_the_text_gen_renders_from(tmp_path: Path) -> None:
    """A new installer or template in gen/resources/ re-renders every cluster, as new code does."""
    resource = Path(render_cache.__file__).parents[1] / "resources" / "config.alloy.template"
    st = resource.stat()
    before = render_cache._key(tmp_path)
    try:
        os.utime(resource, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        render_cache._code.cache_clear()  # read once a process: as the next run of gen reads it
        assert render_cache._key(tmp_path) != before
    finally:
        os.utime(resource, ns=(st.st_atime_ns, st.st_mtime_ns))
        render_cache._code.cache_clear()
