"""Measure what compiling the hot path with mypyc would buy (an experiment).

wsanalyze ships as pure Python.  This script answers "how much faster would a
compiled hot path be?" without changing that: it copies the ``wsanalyze``
package to a temporary folder, compiles the per-packet modules there with
mypyc (from a throwaway venv that pip-installs mypy), then runs ``wsanalyze
summary CAPTURE -q`` from the pure tree and from the compiled copy, alternating,
and checks that both print the same summary.

    python benchmarks/try_mypyc.py benchmarks/data/100m.pcap [--runs 3] [--keep]

Needs gcc, the Python headers and PyPI access (for mypy).  Results and the
decision not to ship compiled modules are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import warm_cache  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
HOT = [
    "sources/pcap.py", "sources/records.py", "tcp/packet.py", "tcp/segment.py",
    "tcp/events.py", "tcp/reassembly.py", "websocket/frames.py", "websocket/deflate.py",
    "websocket/scan.py", "websocket/decoder.py", "websocket/events.py", "tracker.py",
    "websocket/framing.py", "websocket/messages.py", "websocket/checks.py",
    "websocket/state.py", "websocket/modes.py",
]
"""The modules every packet or message goes through (by cProfile)."""


def build(work: Path) -> Path:
    """Copy the package to ``work/compiled`` and compile HOT there; return it."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "mypy", "setuptools"],
                   check=True)
    tree = work / "compiled"
    shutil.copytree(ROOT / "wsanalyze", tree / "wsanalyze",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    started = time.perf_counter()
    log = work / "mypyc.log"
    with log.open("w") as out:
        proc = subprocess.run([str(venv / "bin" / "mypyc"), "--ignore-missing-imports",
                               *(f"wsanalyze/{m}" for m in HOT)],
                              cwd=tree, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"mypyc failed, see {log}:\n" + log.read_text()[-3000:])
    print(f"compiled {len(HOT)} modules in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return tree


def run_once(tree: Path, capture: Path, cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and output digest of one summary run."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "wsanalyze", "summary", str(capture), "-q"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    digest = hashlib.sha256(proc.stdout.read()).hexdigest()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status:
        sys.exit(f"summary failed in {tree} (status {status})")
    return wall, usage.ru_maxrss / 1024, digest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    capture = args.capture.resolve()
    work = Path(tempfile.mkdtemp(prefix="wsanalyze-mypyc-"))
    try:
        compiled = build(work)
        trees = {"pure": ROOT, "mypyc": compiled}
        # Check that the compiled copy really loads the extension modules.
        probe = subprocess.run(
            [sys.executable, "-c", "import wsanalyze.tcp.reassembly as m; print(m.__file__)"],
            cwd=work, env={**os.environ, "PYTHONPATH": str(compiled)},
            capture_output=True, text=True, check=True).stdout.strip()
        if not probe.endswith(".so"):
            sys.exit(f"the compiled tree loads {probe}, not an extension module")
        results: dict[str, list[tuple[float, float, str]]] = {k: [] for k in trees}
        warm_cache(capture)
        for i in range(args.runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for name in order:
                results[name].append(run_once(trees[name], capture, work))
        digests = {d for runs in results.values() for _, _, d in runs}
        size = capture.stat().st_size
        base = statistics.median(w for w, _, _ in results["pure"])
        print(f"{capture.name}: {size / 1e6:.0f} MB, {args.runs} runs each, alternating")
        print(f"{'build':<6} {'median wall':>11} {'MB/s':>6} {'peak RSS':>9} {'speed-up':>8}")
        for name, runs in results.items():
            wall = statistics.median(w for w, _, _ in runs)
            rss = max(r for _, r, _ in runs)
            print(f"{name:<6} {wall:>10.2f}s {size / 1e6 / wall:>6.1f} {rss:>6.1f} MiB "
                  f"{base / wall:>7.2f}×")
        print("outputs identical" if len(digests) == 1 else "OUTPUTS DIFFER")
        return 0 if len(digests) == 1 else 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
