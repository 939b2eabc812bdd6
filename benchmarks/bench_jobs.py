"""``--jobs N``: the two engines against one process, measured and modelled.

Usage::

    python benchmarks/bench_jobs.py CAPTURE [--runs 3] [--command summary]
        [--jobs 2] [--model 2,4,8,16,32] [--json FILE]

1. Runs ``wsanalyze COMMAND CAPTURE`` in one process, then with ``--jobs N``
   for each engine (``WSANALYZE_JOBS_ENGINE=reader`` / ``replay``), alternating,
   ``--runs`` times each; reports the median wall time and CPU seconds (user +
   system of every process, from ``os.wait4``), and checks that the outputs are
   identical.  On a loaded machine the CPU seconds are the figure to compare.
   RSS is the largest single process's (``ru_maxrss``).
2. Measures per-packet CPU costs in this process: ``R`` reading + parsing +
   numbering (:meth:`Tracker.route`), ``S`` shipping a segment to a decoder and
   back out (pickle of the reader engine's batches, unpickle, segment rebuilt;
   pipe copies not included), ``D`` decoding (the whole tracker loop minus R),
   ``M`` the parent (the one-process command's CPU minus the tracker loop:
   sequencing, output, start-up).
3. Models N = 2..32 jobs on N cores (no other load)::

       one process   T1 = R + D + M
       replay  T(N) = max(R + D/N, M, (N·R + D + M)/N)
       reader  T(N) = max(R + S, (D + S)/N, M, (R + D + 2S + M)/N)

   (pipeline stages in parallel; the last term: the CPU of all processes shared
   by N cores), and prints the speed-ups T1 / T(N) and where each stops scaling.
"""

from __future__ import annotations

import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# benchmarks/ is not a package: compare.py is imported from its folder.
from compare import run_once, script_parser

from wsanalyze.config import Options
from wsanalyze.output.summary import Summary
from wsanalyze.parallel import ENGINE_ENV
from wsanalyze.pipeline import decode
from wsanalyze.shards import FLUSH_PER_JOB, segment_fields
from wsanalyze.sources.capture import open_capture
from wsanalyze.tcp.segment import TcpSegment
from wsanalyze.tracker import Tracker, shard_of

COMMAND_TABLES = {"summary": Summary.TABLES, "messages": frozenset({"message"}),
                  "frames": frozenset({"frame"})}
"""The tables each command asks the pipeline for (summary_command, table_command)."""


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def measure_runs(capture: str, command: str, jobs: int, runs: int) -> dict[str, Any]:
    """Wall and CPU of one process and of both engines; outputs must be identical."""
    base = [sys.executable, "-m", "wsanalyze", command, capture]
    if command != "summary":
        base += ["--format", "jsonl"]
    variants = {"one process": (base, None), **{
        f"{engine} --jobs {jobs}": ([*base, "--jobs", str(jobs)], engine)
        for engine in ("reader", "replay")}}
    out: dict[str, Any] = {name: {"wall": [], "cpu": [], "rss_mb": 0.0} for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        outputs: dict[str, bytes] = {}
        for round_ in range(runs):
            for name, (argv, engine) in variants.items():
                env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
                env.pop(ENGINE_ENV, None)
                if engine:
                    env[ENGINE_ENV] = engine
                path = os.path.join(tmp, "out")
                run, stderr = run_once(argv, path, None, env)
                if run.returncode != 0:
                    raise SystemExit(f"bench_jobs.py: {name} failed: {stderr.strip()}")
                out[name]["wall"].append(run.wall)
                out[name]["cpu"].append(run.user + run.system)
                out[name]["rss_mb"] = max(out[name]["rss_mb"], run.maxrss_mb)
                if round_ == 0:
                    outputs[name] = Path(path).read_bytes()
        first = next(iter(outputs.values()))
        for name, data in outputs.items():
            out[name]["identical"] = data == first
    return {name: {"wall_s": statistics.median(v["wall"]), "cpu_s": statistics.median(v["cpu"]),
                   "max_rss_mb": v["rss_mb"], "identical": v["identical"]}
            for name, v in out.items()}


def measure_costs(capture: str, tables: frozenset[str], jobs: int) -> dict[str, float]:
    """Per-packet CPU seconds of R, S and R + D, measured in this process."""
    options = Options(tables=tables)
    tracker = Tracker(options)
    route = tracker.route
    shipped: list[list[list[Any]]] = []
    batches: list[list[Any]] = [[] for _ in range(jobs)]
    start = _cpu()
    for pkt in open_capture(capture):
        routed = route(pkt)
        if routed is not None:
            seg, stream = routed
            batches[shard_of(seg, jobs)].append((pkt.number, pkt.ts, stream,
                                                 segment_fields(seg)))
        if pkt.number % (FLUSH_PER_JOB * jobs) == 0:
            shipped.append(batches)
            batches = [[] for _ in range(jobs)]
    read = _cpu() - start
    packets = tracker.packets
    shipped.append(batches)
    start = _cpu()
    blobs = [pickle.dumps((0, b), pickle.HIGHEST_PROTOCOL) for group in shipped for b in group]
    for blob in blobs:
        for entry in pickle.loads(blob)[1]:
            TcpSegment(*entry[3])
    ship = _cpu() - start
    del shipped, blobs
    start = _cpu()
    for _ in decode(open_capture(capture), Tracker(options)):
        pass
    full = _cpu() - start
    return {"packets": packets, "R": read / packets, "S": ship / packets,
            "D": max(full - read, 0.0) / packets, "RD": full / packets}


def model(costs: dict[str, float], ns: list[int]) -> list[dict[str, float]]:
    r, s, d, m = costs["R"], costs["S"], costs["D"], costs["M"]
    one = r + d + m
    rows = []
    for n in ns:
        replay = max(r + d / n, m, (n * r + d + m) / n)
        reader = max(r + s, (d + s) / n, m, (r + d + 2 * s + m) / n)
        rows.append({"jobs": n, "replay": one / replay, "reader": one / reader,
                     "replay_brief": (r + d) / (r + d / n),
                     "reader_brief": (r + d) / max(r + s, (d + s) / n)})
    return rows


def render(runs: dict[str, Any], costs: dict[str, float], rows: list[dict[str, float]]) -> str:
    lines = [f"{'run':<18} {'wall s':>7} {'CPU s':>7} {'RSS MiB':>8} identical"]
    for name, v in runs.items():
        lines.append(f"{name:<18} {v['wall_s']:7.2f} {v['cpu_s']:7.2f} "
                     f"{v['max_rss_mb']:8.0f} {'yes' if v['identical'] else 'NO'}")
    us = {k: costs[k] * 1e6 for k in ("R", "S", "D", "M")}
    lines.append(f"per packet ({costs['packets']:,} packets): R {us['R']:.2f} µs, "
                 f"S {us['S']:.2f} µs, D {us['D']:.2f} µs, M {us['M']:.2f} µs")
    lines.append(f"{'jobs':>4} {'replay':>7} {'reader':>7}   (brief's formulas, no M: "
                 f"replay, reader)")
    for row in rows:
        lines.append(f"{row['jobs']:>4} {row['replay']:6.2f}× {row['reader']:6.2f}×   "
                     f"{row['replay_brief']:6.2f}× {row['reader_brief']:6.2f}×")
    r, s, d, m = (costs[k] for k in ("R", "S", "D", "M"))
    lines.append(f"limits: replay → (R+D+M)/max(R, M) = {(r + d + m) / max(r, m):.2f}× as N "
                 f"grows; reader → (R+D+M)/max(R+S, M) = {(r + d + m) / max(r + s, m):.2f}×, "
                 f"reached at N = (D+S)/(R+S) = {(d + s) / (r + s):.1f}")
    lines.append(f"load average {os.getloadavg()[0]:.2f}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("capture", metavar="CAPTURE")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--command", choices=sorted(COMMAND_TABLES), default="summary")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--model", default="2,4,8,16,32", help="N for the model (default %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    ns = [int(n) for n in args.model.split(",") if n.strip()]
    if args.runs < 1 or args.jobs < 2 or not ns or min(ns) < 1:
        ap.error("--runs must be at least 1, --jobs at least 2, --model whole numbers ≥ 1")
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = os.getloadavg()
    runs = measure_runs(args.capture, args.command, args.jobs, args.runs)
    costs = measure_costs(args.capture, COMMAND_TABLES[args.command], args.jobs)
    costs["M"] = max(runs["one process"]["cpu_s"] / costs["packets"] - costs["RD"], 0.0)
    rows = model(costs, ns)
    sys.stdout.write(render(runs, costs, rows))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "capture": args.capture, "command": args.command, "date": started,
            "load_before": load, "load_after": os.getloadavg(), "runs": runs,
            "costs_s_per_packet": costs, "model": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
