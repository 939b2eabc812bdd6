"""The builds side by side: pure Python, compiled (mypyc), compiled + zlib-ng/orjson.

Runs ``wsanalyze summary CAPTURE -q`` and ``wsanalyze messages CAPTURE --format
jsonl`` (every payload) under each build, alternating (the order rotates each
round), in separate processes, from this tree: the compiled build must be in
place (``make build`` or ``pip install -e .``).  The builds are chosen with
``WSANALYZE_NO_EXTENSIONS`` and ``WSANALYZE_NO_SPEEDUPS``.  ``--main TREE``
adds another checkout's pure build (e.g. main) to show that the fallback is no
slower.  Every build's output must be byte-identical (sha256 of stdout).

    python benchmarks/bench_build.py /work/data/100m.pcap [--runs 3] [--main ../main]

Prints median wall and CPU time (user + system), MB/s of CPU time, peak RSS
(``ru_maxrss``) and the CPU-time speed-up over pure, and the load average before
and after (``os.getloadavg``): on a busy machine wall time mostly measures the
wait for a core, so compare CPU times there (benchmarks/README.md says which).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import warm_cache  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
OFF = {"WSANALYZE_NO_EXTENSIONS": "1", "WSANALYZE_NO_SPEEDUPS": "1"}
BUILDS: dict[str, tuple[Path, dict[str, str]]] = {
    "pure": (ROOT, OFF),
    "compiled": (ROOT, {"WSANALYZE_NO_EXTENSIONS": "0", "WSANALYZE_NO_SPEEDUPS": "1"}),
    "compiled+fast": (ROOT, {"WSANALYZE_NO_EXTENSIONS": "0", "WSANALYZE_NO_SPEEDUPS": "0"}),
}
COMMANDS = {"summary": ["summary", "-q"], "jsonl": ["messages", "--format", "jsonl"]}


Run = tuple[float, float, float, str]


def run_once(tree: Path, env: dict[str, str], args: list[str]) -> Run:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB) and sha256 of
    standard output of one run.  CPU time is what to compare on a busy machine:
    wall time there includes waiting for a core."""
    full = {**os.environ, **env, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "wsanalyze", *args], cwd=tree, env=full,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None
    digest = hashlib.sha256()
    while chunk := proc.stdout.read(1 << 20):
        digest.update(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status:
        sys.exit(f"{args[0]} failed under {env} in {tree} (status {status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, digest.hexdigest()


def describe(tree: Path, env: dict[str, str]) -> str:
    full = {**os.environ, **env, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "wsanalyze", "--version"], cwd=tree,
                          env=full, capture_output=True, text=True).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--main", type=Path, help="another tree whose pure build is compared")
    ap.add_argument("--commands", default="summary,jsonl")
    args = ap.parse_args()
    capture = args.capture.resolve()
    builds = dict(BUILDS)
    if args.main:
        builds = {"main": (args.main.resolve(), OFF), **builds}
    for name, (tree, env) in builds.items():
        print(f"{name:<14} {describe(tree, env)}")
    if "compiled" not in describe(ROOT, BUILDS["compiled"][1]):
        sys.exit("the compiled build is not in place: run `make build` (or pip install -e .)")
    size = capture.stat().st_size
    warm_cache(capture)
    print(f"{capture.name}: {size / 1e6:.0f} MB, {args.runs} runs each, alternating; "
          f"load before {os.getloadavg()[0]:.2f}")
    failed = False
    for command in args.commands.split(","):
        results: dict[str, list[Run]] = {k: [] for k in builds}
        for i in range(args.runs):
            order = list(builds)[i % len(builds):] + list(builds)[:i % len(builds)]
            for name in order:
                tree, env = builds[name]
                results[name].append(run_once(tree, env, [COMMANDS[command][0], str(capture),
                                                          *COMMANDS[command][1:]]))
        base = statistics.median(c for _, c, _, _ in results["pure"])
        print(f"\n{command}: {' '.join(COMMANDS[command])}")
        print(f"{'build':<14} {'median wall':>11} {'median CPU':>10} {'MB/s (CPU)':>10} "
              f"{'peak RSS':>10} {'vs pure (CPU)':>13}")
        for name, runs in results.items():
            wall = statistics.median(w for w, _, _, _ in runs)
            cpu = statistics.median(c for _, c, _, _ in runs)
            rss = max(r for _, _, r, _ in runs)
            print(f"{name:<14} {wall:>10.2f}s {cpu:>9.2f}s {size / 1e6 / cpu:>10.1f} "
                  f"{rss:>6.1f} MiB {base / cpu:>12.2f}×")
        same = len({d for runs in results.values() for _, _, _, d in runs}) == 1
        failed |= not same
        print("outputs identical" if same else "OUTPUTS DIFFER")
    print(f"\nload after {os.getloadavg()[0]:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
