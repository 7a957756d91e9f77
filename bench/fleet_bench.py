"""Fleet-scale benchmark of gen: generates N varied cluster specs in a temporary repository and times
the commands users run. Not a test: it prints a table (Markdown) for the README.

    python bench/fleet_bench.py [--clusters 1000] [--validate-clusters 100] [--repeat 3] [--kapitan]

With --kapitan, Kapitan 0.36.3 (installed once into its own virtual environment
under ~/.cache/gen-bench) compiles a comparable stack for the same fleet from
the Jinja templates in bench/kapitan/, so both tools are measured in one run.

User and system CPU are reported apart: creating a file costs about a millisecond of
kernel time on some machines, so from-scratch wall time is ruled by the file system.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    wall: float
    user: float
    sys: float
    maxrss_mib: float
    stdout: str


def spec(i: int) -> str:
    """A valid spec that differs from its neighbours in the ways real fleets differ."""
    extra = ""
    if i % 3 == 0:
        extra += f"  server:\n    port: {4040 + i % 50}\n    retention: {24 * (1 + i % 14)}h\n"
    if i % 5 == 0:
        extra += f"  ebpf:\n    sampleRate: {19 + i % 80}\n    privileged: {'false' if i % 10 == 0 else 'true'}\n"
    if i % 7 == 0:
        extra += "  grafana:\n    enabled: false\n"
    cassandra = f"    labels:\n      dc: dc{i % 4}\n      rack: rack{i % 3}\n"
    if i % 11 == 0:
        cassandra += "    profiler:\n      event: wall\n      lock: null\n"
    return f"""apiVersion: gen.profiling/v1alpha1
kind: Cluster
metadata:
  name: lab-{i:04d}
spec:
  platform: kubernetes
  namespace: profiling-{i % 10}
  controlNode:
    address: 10.{i // 250}.{i % 250}.10
{extra}  cassandra:
{cassandra}  argocd:
    repoURL: https://github.com/acme/profiling-gitops.git
    destination:
      name: k8s-{i:04d}
"""


# The fleet pins the agent jar once, for every cluster (any 64 hex digits: nothing is downloaded).
DEFAULTS = """apiVersion: gen.profiling/v1alpha1
kind: Defaults
spec:
  cassandra:
    agent:
      sha256: "cb6ff8f38c6d5d3b0d5d30f4c35bf30b8d9b6d0a55ab0e7a1cb6d4a6ad7f8bd0"
"""


def make_fleet(root: Path, n: int) -> None:
    shutil.copytree(PROJECT / "base", root / "base")
    shutil.copy(PROJECT / "fleet.yaml", root / "fleet.yaml")
    (root / "clusters").mkdir()
    (root / "clusters" / "_defaults.yaml").write_text(DEFAULTS)
    for i in range(n):
        (root / "clusters" / f"lab-{i:04d}.yaml").write_text(spec(i))
    subprocess.run(["git", "init", "-q", str(root)], check=True)


# gen as installed: its bytecode compiled once (pip does it on install), not on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def gen(root: Path, *args: str) -> Run:
    """Run gen in a fresh process and measure that child alone."""
    return measure([sys.executable, "-m", "gen", *args, "--root", str(root)])


def measure(argv: list[str], cwd: Path | None = None) -> Run:
    """Run a command in a fresh process and measure that child (and its children) alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *argv], capture_output=True, text=True, check=False, env=ENV, cwd=cwd
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    maxrss_kib = int(proc.stderr.strip().splitlines()[-1])
    return Run(wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime, maxrss_kib / 1024, proc.stdout)


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def tree_peak_mib(root: Path, *args: str) -> float:
    """Peak memory of gen and its worker processes together, sampled every few milliseconds.

    PSS, not RSS: the workers are forked and share their parent's pages, which a
    sum of RSS would count once per process.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "gen", *args, "--root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(_pss_kib(p) for p in _tree(proc.pid)))
        time.sleep(0.005)
    return peak / 1024


KAPITAN = "0.36.3"


def kapitan_bin() -> Path:
    """The kapitan command of its own virtual environment, installed on first use."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gen-bench" / f"kapitan-{KAPITAN}"
    exe = cache / "bin" / "kapitan"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        subprocess.run([str(cache / "bin" / "pip"), "install", "-q", f"kapitan=={KAPITAN}"], check=True)
    return exe


def target(i: int) -> str:
    """The Kapitan target for cluster i, with the values `spec(i)` gives gen."""
    server = f"  server:\n    port: {4040 + i % 50}\n    retention: {24 * (1 + i % 14)}h\n" if i % 3 == 0 else ""
    ebpf = f"  ebpf:\n    sample_rate: {19 + i % 80}\n" if i % 5 == 0 else ""
    return f"""classes:
  - stack
parameters:
  kapitan:
    vars:
      target: lab-{i:04d}
  cluster: lab-{i:04d}
  platform: kubernetes
  namespace: profiling-{i % 10}
  address: 10.{i // 250}.{i % 250}.10
{server}{ebpf}"""


def make_inventory(root: Path, n: int) -> None:
    shutil.copytree(PROJECT / "bench" / "kapitan" / "templates", root / "templates")
    shutil.copytree(PROJECT / "bench" / "kapitan" / "classes", root / "inventory" / "classes")
    (root / "inventory" / "targets").mkdir(parents=True)
    for i in range(n):
        (root / "inventory" / "targets" / f"lab-{i:04d}.yml").write_text(target(i))


def kapitan_rows(tmp: Path, n: int, repeat: int) -> list[tuple[str, Run, str]]:
    exe = kapitan_bin()
    root = tmp / "kapitan"
    make_inventory(root, n)
    scratch = []
    for _ in range(repeat):
        shutil.rmtree(root / "compiled", ignore_errors=True)
        scratch.append(measure([str(exe), "compile"], cwd=root))
    files = sum(1 for p in (root / "compiled").rglob("*") if p.is_file())
    one = median([measure([str(exe), "compile", "-t", "lab-0042"], cwd=root) for _ in range(repeat)])
    return [
        (f"Kapitan {KAPITAN} `compile`, {n} targets, from scratch", median(scratch), f"{files} files"),
        (f"Kapitan {KAPITAN} `compile -t`, one target of {n}", one, ""),
    ]


def median(runs: list[Run]) -> Run:
    runs = sorted(runs, key=lambda r: r.wall)
    pick = runs[len(runs) // 2]
    return Run(
        statistics.median(r.wall for r in runs),
        statistics.median(r.user for r in runs),
        statistics.median(r.sys for r in runs),
        max(r.maxrss_mib for r in runs),
        pick.stdout,
    )


def files_written(stdout: str) -> int:
    return sum(1 for line in stdout.splitlines() if line.split(" ", 1)[0] in ("created", "changed", "removed"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--validate-clusters", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kapitan", action="store_true", help="Also time Kapitan on a comparable stack.")
    args = parser.parse_args()
    n, rows = args.clusters, []
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(PROJECT / "gen")], check=True, env=ENV)

    with tempfile.TemporaryDirectory(prefix="gen-bench-") as tmp:
        scratch = []
        for k in range(args.repeat):
            root = Path(tmp) / f"scratch{k}"
            make_fleet(root, n)
            scratch.append(gen(root, "render", "--all"))
        r = median(scratch)
        rows.append((f"`gen render --all`, {n} clusters, from scratch", r, f"{files_written(r.stdout)} files"))
        root = Path(tmp) / "scratch0"

        for check, note in (("check", "the render cache of the render before"), ("check --no-cache", "CI: none")):
            r = median([gen(root, *check.split()) for _ in range(args.repeat)])
            rows.append((f"`gen {check}`, {n} clusters, in sync", r, note))

        def after_edit(name: str, first_dc: int, *command: str) -> Run:
            """Median of runs of a command, each after a one-line change to the spec of `name`."""
            runs = []
            for k in range(args.repeat):
                path = root / "clusters" / f"{name}.yaml"
                path.write_text(re.sub(r"dc: dc\d+", f"dc: dc{first_dc + k}", path.read_text()))
                runs.append(gen(root, *command))
            return median(runs)

        r = after_edit("lab-0007", 10, "render", "--all")
        rows.append(
            (f"`gen render --all` after one spec changed, {n} clusters", r, f"{files_written(r.stdout)} files written")
        )

        r = median([gen(root, "render", "--all") for _ in range(args.repeat)])
        rows.append(("`gen render --all` with nothing changed", r, f"{files_written(r.stdout)} files written"))

        r = median([gen(root, "render", "lab-0042") for _ in range(args.repeat)])
        rows.append((f"`gen render NAME`, one cluster of {n}, cold process", r, ""))

        r = after_edit("lab-0042", 20, "render", "lab-0042")
        rows.append(
            (f"`gen render NAME` after its spec changed, one of {n}", r, f"{files_written(r.stdout)} files written")
        )

        if args.kapitan:
            rows += kapitan_rows(Path(tmp), n, args.repeat)

        fresh = Path(tmp) / "memory"
        make_fleet(fresh, n)
        scratch_mib = tree_peak_mib(fresh, "render", "--all")
        check_mib = tree_peak_mib(fresh, "check", "--no-cache")

        vroot = Path(tmp) / "validate"
        make_fleet(vroot, args.validate_clusters)
        gen(vroot, "render", "--all")
        r = gen(vroot, "validate", "--all")
        cores = (r.user + r.sys) / r.wall
        rows.append(
            (
                f"`gen validate --all`, {args.validate_clusters} clusters",
                r,
                f"{cores:.1f} cores busy of {os.cpu_count()}",
            )
        )

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}\n"
    )
    print("| case | wall s | user s | sys s | peak MiB | note |")
    print("|---|---:|---:|---:|---:|---|")
    for name, run, note in rows:
        print(f"| {name} | {run.wall:.2f} | {run.user:.2f} | {run.sys:.2f} | {run.maxrss_mib:.0f} | {note} |")
    print(
        f"\nPeak MiB above is the largest single process. All processes together (PSS, sampled): "
        f"`render --all` from scratch {scratch_mib:.0f} MiB, `check` {check_mib:.0f} MiB."
    )


if __name__ == "__main__":
    main()
