"""Review at fleet scale: how `render`, `diff` and `validate` grow with the fleet. Not a test: it prints
a table (Markdown) for the README.

    python bench/review_bench.py [--sizes 100,1000,3000] [--repeat 3] [--defaults-sizes 100,1000]

For each size, a fleet of that many clusters (fleet_bench.py's specs) is rendered and committed in a
temporary git repository; then each case changes it the way a pull request would and times one
command in a fresh process, the sizes taking turns run by run. A `_defaults.yaml` change touches
every cluster, so it is timed on the `--defaults-sizes` only: once with nothing cached, once again
with the base side built before.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from fleet_bench import DEFAULTS, ENV, PROJECT, Run, gen, make_fleet, median

GIT = {**ENV, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid"}
GIT |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, env=GIT, check=True, capture_output=True)


def fleet(tmp: Path, n: int) -> Path:
    """A rendered fleet of n clusters, committed, with no cache of any kind."""
    root = tmp / f"fleet-{n}"
    make_fleet(root, n)
    gen(root, "render", "--all")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "fleet")
    for cache in (root / ".git").glob("gen-*"):
        shutil.rmtree(cache) if cache.is_dir() else cache.unlink()
    os.sync()  # the fleet just written is on disk: no flush of it runs while gen is timed
    return root


def reset(root: Path) -> None:
    git(root, "reset", "-q", "--hard", "HEAD")
    git(root, "clean", "-qfd")


def edit_spec(root: Path, k: int) -> None:
    path = root / "clusters" / "lab-0007.yaml"
    path.write_text(re.sub(r"dc: dc\d+", f"dc: dc{100 + k}", path.read_text()))


def edit_defaults(root: Path, k: int) -> None:
    (root / "clusters" / "_defaults.yaml").write_text(DEFAULTS + f"  server:\n    retention: {48 + k}h\n")


def once(root: Path, change: Callable[[Path, int], None], k: int, render: bool, args: list[str]) -> Run:
    """`gen ARGS` on a fresh copy of the k-th change (rendered first when `render`)."""
    reset(root)
    change(root, k)
    if render:
        gen(root, "render", "--all")
    return gen(root, *args)


CASES = {
    "`gen render NAME` after its spec changed": (edit_spec, False, ["render", "lab-0007"]),
    "`gen render --all` after one spec changed": (edit_spec, False, ["render", "--all"]),
    "`gen diff`, one spec changed": (edit_spec, True, ["diff", "--base", "HEAD"]),
    "`gen validate --changed-since HEAD`, one spec changed": (edit_spec, True, ["validate", "--changed-since", "HEAD"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,3000")
    parser.add_argument("--defaults-sizes", default="100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    defaults_sizes = [int(s) for s in args.defaults_sizes.split(",") if s]
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "gen")], check=True, env=ENV)
    rows: dict[str, dict[int, Run]] = {}

    with tempfile.TemporaryDirectory(prefix="gen-review-bench-") as tmp:
        # Every fleet first, each kept until the end: deleting one makes the disk busy while another
        # is timed. A render fills its render cache, as a user's own render did.
        roots = {n: fleet(Path(tmp), n) for n in sizes}
        for root in roots.values():
            gen(root, "render", "--all")
        for name, (change, render, command) in CASES.items():
            # The sizes take turns, run by run: this machine's speed drifts over minutes, and the
            # growth from one size to the next must not be that drift.
            runs: dict[int, list[Run]] = {n: [] for n in sizes}
            for k in range(args.repeat):
                for n, root in roots.items():
                    runs[n].append(once(root, change, k, render, command))
            rows[name] = {n: median(r) for n, r in runs.items()}
        for n in defaults_sizes:
            root = roots[n]
            reset(root)
            edit_defaults(root, 0)
            gen(root, "render", "--all")
            rows.setdefault("`gen diff`, `_defaults.yaml` changed, cold", {})[n] = gen(root, "diff", "--base", "HEAD")
            again = median([gen(root, "diff", "--base", "HEAD") for _ in range(args.repeat)])
            rows.setdefault("`gen diff`, `_defaults.yaml` changed, run again", {})[n] = again
            markdown = gen(root, "diff", "--base", "HEAD", "--format", "markdown").stdout
            rows.setdefault("markdown comment of that diff, characters", {})[n] = Run(len(markdown), 0, 0, 0, "")
        for n, root in roots.items():
            reset(root)
            rows.setdefault("`gen validate --all`", {})[n] = (
                gen(root, "validate", "--all") if n <= 100 else Run(0, 0, 0, 0, "")
            )

    print(f"{os.cpu_count()} cores; wall seconds (user seconds), medians of {args.repeat} runs\n")
    print("| case | " + " | ".join(f"{n} clusters" for n in sizes) + " | growth |")
    print("|---|" + "---:|" * len(sizes) + "---:|")
    for name, by_size in rows.items():
        cells = []
        for n in sizes:
            r = by_size.get(n)
            cells.append(
                ""
                if r is None or r.wall == 0
                else f"{r.wall:.0f}"
                if "characters" in name
                else f"{r.wall:.2f} ({r.user:.2f})"
            )
        known = [by_size[n].wall for n in sizes if n in by_size and by_size[n].wall]
        growth = f"{known[-1] / known[0]:.1f} times" if len(known) > 1 else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {growth} |")


if __name__ == "__main__":
    main()
