"""Benchmark of ``wsanalyze batch`` on Dask: files vs shards, 1 vs 2 workers,
Dask's per-task overhead, and the cost model behind the projection to more workers.

Inputs (make them with generate.py, see benchmarks/README.md)::

    for i in $(seq 1 20); do python benchmarks/generate.py \\
        benchmarks/data/batch/rot$(printf %02d $i).pcap --size 10M --seed $i --no-fragments; done
    python benchmarks/generate.py benchmarks/data/batch/big200m.pcap --size 200M --seed 99 \\
        --no-fragments
    PYTHONPATH=. python benchmarks/bench_batch.py benchmarks/data/batch/rot*.pcap \\
        --big benchmarks/data/batch/big200m.pcap

Quick mode (about 2 minutes on 2 idle cores, inputs generated on first use into
benchmarks/data/batch-quick/: 20 files of 5 MB and one of 50 MB)::

    PYTHONPATH=. python benchmarks/bench_batch.py --quick

Measured (wall, ``time.perf_counter``, cluster start-up excluded and reported apart):

- ``files``: all small files, one task each, on a LocalCluster of 1 and of 2 workers;
- ``big``: the big file as 1 task on 1 worker, and as 2 shards on 2 workers;
- ``overhead``: Dask's cost per task (a no-op task, and a tiny capture's task run
  through Dask against the same task called in this process);
- ``model``: C, the CPU cost of decoding the big file in one task, and R, the part
  of it every shard pays again (reading and parsing every packet), from one task
  of 16 shards: t(1/16) = R + (C - R)/16.  Tasks record their CPU time in the
  manifest (``cpu_s``), so the projection does not depend on the machine's load.

It then prints the projection for 8, 32 and 128 workers (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsanalyze.batch.run import batch
from wsanalyze.batch.tasks import TaskSpec, run_task

TABLES = ("connection", "message", "frame", "violation")
HERE = Path(__file__).resolve().parent


def _cluster(workers: int) -> tuple[Any, Any, float]:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
    )
    client = Client(cluster)
    client.wait_for_workers(workers)
    return cluster, client, time.perf_counter() - start


def _noop(x: int) -> int:
    return x


def _timed_batch(paths: list[str], client: Any, scratch: Path, **kw: Any) -> tuple[float, Any]:
    out = scratch / f"ds-{time.monotonic_ns()}"
    start = time.perf_counter()
    ds = batch(paths, out, client=client, **kw)
    wall = time.perf_counter() - start
    assert not ds.failed, ds.failed
    shutil.rmtree(out)
    return wall, ds


def _warm(client: Any, tiny: str, scratch: Path) -> None:
    """Import the pipeline in every worker first (a cold worker pays ~1 s once)."""
    _timed_batch([tiny], client, scratch, shards=len(client.scheduler_info()["workers"]))


def _task(path: str, shard: int, shards: int, out: Path) -> float:
    spec = TaskSpec(f"bench-{shard}of{shards}", ((0, path),), shard, shards, str(out), TABLES)
    start = time.process_time()  # CPU: the machine is shared, wall time is noisy
    run_task(spec)
    return time.process_time() - start


def quick_inputs(folder: Path, files: int, file_mb: int, big_mb: int) -> tuple[list[str], str]:
    """The quick mode's captures, generated (deterministically) when missing."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [(folder / f"rot{i:02d}-{file_mb}m.pcap", file_mb, i) for i in range(1, files + 1)]
    wanted.append((folder / f"big-{big_mb}m.pcap", big_mb, 99))
    for path, mb, seed in wanted:
        if not path.exists():
            subprocess.run([sys.executable, str(HERE / "generate.py"), str(path), "--size",
                            f"{mb}M", "--seed", str(seed), "--no-fragments"],
                           check=True, capture_output=True)
    return [str(p) for p, _, _ in wanted[:-1]], str(wanted[-1][0])


def measure(files: list[str], big: str, tiny: str, scratch: Path) -> dict[str, Any]:
    res: dict[str, Any] = {
        "files": len(files),
        "files_mb": sum(os.path.getsize(f) for f in files) / 1e6,
        "big_mb": os.path.getsize(big) / 1e6,
        "runs": {},
        "cpu": {},
        "task_cpu": {},
        "load": {"start": os.getloadavg()[0]},
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for workers in (1, 2):
        cluster, client, startup = _cluster(workers)
        try:
            res[f"startup_{workers}w"] = startup
            _warm(client, tiny, scratch)
            res["runs"][f"files_{workers}w"], ds = _timed_batch(files, client, scratch, shards=1)
            res["cpu"][f"files_{workers}w"] = sum(t["cpu_s"] for t in ds.tasks)
            res["task_cpu"][f"files_{workers}w"] = [t["cpu_s"] for t in ds.tasks]
            res["messages_files"] = ds.rows["messages"]
            res["runs"][f"big_{workers}w"], ds = _timed_batch(
                [big], client, scratch, shards=workers
            )
            res["cpu"][f"big_{workers}w"] = sum(t["cpu_s"] for t in ds.tasks)
            res["task_cpu"][f"big_{workers}w"] = [t["cpu_s"] for t in ds.tasks]
            res["messages_big"] = ds.rows["messages"]
            res["load"][f"{workers}w"] = os.getloadavg()[0]
            print(json.dumps(res), file=sys.stderr, flush=True)  # partial figures
            if workers == 2:
                res["overhead"] = _overhead(client, tiny, scratch)
        finally:
            client.close()
            cluster.close()
    # The cost model, in this process (no Dask): C and R of the big file.
    res["C"] = _task(big, 0, 1, scratch / "model")
    res["t_1of16"] = _task(big, 0, 16, scratch / "model")
    res["R"] = max(0.0, (16 * res["t_1of16"] - res["C"]) / 15)
    shutil.rmtree(scratch / "model")
    res["load"]["end"] = os.getloadavg()[0]
    return res


def _overhead(client: Any, tiny: str, scratch: Path) -> dict[str, float]:
    n = 200
    start = time.perf_counter()
    client.gather(client.map(_noop, range(n), pure=False))
    noop = (time.perf_counter() - start) / n
    # A tiny capture as 40 tasks through Dask (2 workers) vs the same tasks here.
    shards = 40
    dask_wall, _ = _timed_batch([tiny], client, scratch, shards=shards)
    local = sum(_task(tiny, s, shards, scratch / "local") for s in range(shards))
    shutil.rmtree(scratch / "local")
    return {
        "noop_task_s": noop,
        "tiny_task_dask_s": dask_wall * 2 / shards,
        "tiny_task_local_s": local / shards,
    }


def makespan(costs: list[float], workers: int) -> float:
    """Finish time of tasks of these CPU costs on dedicated workers, each task to
    the first free worker in the order given (as Dask runs a map on idle workers)."""
    free = [0.0] * workers
    for cost in costs:
        i = free.index(min(free))
        free[i] += cost
    return max(free)


def cpu_speedup(res: dict[str, Any], name: str) -> float | None:
    """1 vs 2 workers as two idle cores would run them: the tasks' CPU times of the
    1-worker run over the makespan of the 2-worker run's tasks on 2 workers."""
    tasks = res.get("task_cpu", {})
    if f"{name}_2w" not in tasks:
        return None  # an older --json
    return sum(tasks[f"{name}_1w"]) / makespan(tasks[f"{name}_2w"], 2)


def projection(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Wall time predicted for W dedicated workers from the model's CPU costs:
    r (re-read by every shard) and d (split between shards) per MB, o per task."""
    r = res["R"] / res["big_mb"]
    d = (res["C"] - res["R"]) / res["big_mb"]
    o = max(0.0, res["overhead"]["tiny_task_dask_s"] - res["overhead"]["tiny_task_local_s"])
    s_star = d / r if r else math.inf
    rows = []
    for workers in (1, 2, 8, 32, 128):
        # 20 files of 50 MB: one task per file, or, with workers to spare, shards.
        files, mb = 20, 50.0
        whole = math.ceil(files / workers) * ((r + d) * mb + o)
        best, shards = whole, 1
        if workers >= 2 * files:
            shards = min(workers // files, max(1, math.floor(s_star)))
            best = r * mb + d * mb / shards + o
        # One 1 GB file in W shards, and in at most S* shards.
        big = r * 1000 + d * 1000 / workers + o
        capped = min(workers, max(1, math.floor(s_star)))
        rows.append(
            {
                "workers": workers,
                "20x50MB_by_file_s": whole,
                "20x50MB_best_s": best,
                "20x50MB_shards": shards,
                "1GB_sharded_s": big,
                "1GB_speedup": (r + d) * 1000 / big,
                "1GB_efficiency": (r + d) * 1000 / (workers * big),
                "1GB_at_S*_s": r * 1000 + d * 1000 / capped + o,
            }
        )
    return rows


def report(res: dict[str, Any]) -> None:
    runs = res["runs"]
    print(
        f"{res['files']} files, {res['files_mb']:.0f} MB, {res['messages_files']} messages; "
        f"big file {res['big_mb']:.0f} MB, {res['messages_big']} messages"
    )
    print(
        f"cluster start-up: 1 worker {res['startup_1w']:.1f} s, 2 workers {res['startup_2w']:.1f} s"
    )
    load = ", ".join(f"{k} {v:.1f}" for k, v in res["load"].items())
    print(f"{res.get('date', '?')}, {res.get('cores', '?')} cores; load average (1 min) at: "
          f"{load}")
    print(
        "| input | 1 worker | 2 workers | speed-up | task CPU 1 / 2 workers | speed-up "
        "from task CPU |\n|---|---|---|---|---|---|"
    )
    for name, label in (
        ("files", f"{res['files']} files (1 task each)"),
        ("big", "big file (1 task / 2 shards)"),
    ):
        one, two = runs[f"{name}_1w"], runs[f"{name}_2w"]
        mb = res["files_mb"] if name == "files" else res["big_mb"]
        print(
            f"| {label} | {one:.1f} s ({mb / one:.1f} MB/s) | {two:.1f} s "
            f"({mb / two:.1f} MB/s) | {one / two:.2f}x | {res['cpu'][f'{name}_1w']:.1f} s / "
            f"{res['cpu'][f'{name}_2w']:.1f} s | {_x(cpu_speedup(res, name))} |"
        )
    ov = res["overhead"]
    print(
        f"per-task overhead: no-op task {ov['noop_task_s'] * 1e3:.1f} ms; tiny capture task "
        f"{ov['tiny_task_dask_s'] * 1e3:.0f} ms on Dask vs {ov['tiny_task_local_s'] * 1e3:.0f}"
        " ms in-process"
    )
    c, r = res["C"], res["R"]
    print(
        f"model (big file, one process, CPU): C = {c:.1f} s, t(1/16) = {res['t_1of16']:.1f} s,"
        f" R = {r:.1f} s, D = {c - r:.1f} s; one file's speed-up is capped at C/R = "
        f"{c / max(r, 1e-9):.1f}x; S* = D/R = {(c - r) / max(r, 1e-9):.1f} shards"
    )
    print(
        "| workers | 20 x 50 MB by file | 20 x 50 MB best (shards) | 1 GB in W shards "
        "(speed-up, efficiency) | 1 GB in min(W, S*) shards |\n|---|---|---|---|---|"
    )
    for row in res["projection"]:
        print(
            f"| {row['workers']} | {row['20x50MB_by_file_s']:.1f} s | "
            f"{row['20x50MB_best_s']:.1f} s ({row['20x50MB_shards']}) | "
            f"{row['1GB_sharded_s']:.1f} s ({row['1GB_speedup']:.1f}x, "
            f"{row['1GB_efficiency']:.0%}) | {row['1GB_at_S*_s']:.1f} s |"
        )


def _x(ratio: float | None) -> str:
    return "?" if ratio is None else f"{ratio:.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="*", help="the many small captures")
    ap.add_argument("--big", help="the one big capture")
    ap.add_argument(
        "--tiny",
        default=str(HERE.parent / "samples" / "websockets-deflate.pcap"),
    )
    ap.add_argument(
        "--from-json",
        metavar="FILE",
        help="print the figures (and projection) of an earlier --json run",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--quick", action="store_true",
                    help="generate (once) and use 20 files of --quick-mb MB and one of "
                         "--quick-big-mb MB in benchmarks/data/batch-quick/")
    ap.add_argument("--quick-mb", type=int, default=5, metavar="MB")
    ap.add_argument("--quick-big-mb", type=int, default=50, metavar="MB")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        res["projection"] = projection(res)
        report(res)
        return 0
    if args.quick:
        args.files, args.big = quick_inputs(HERE / "data" / "batch-quick", 20, args.quick_mb,
                                            args.quick_big_mb)
    if not args.files or not args.big:
        ap.error("give the small captures and --big (or --quick, or --from-json)")
    scratch = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        res = measure(args.files, args.big, args.tiny, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    res["projection"] = projection(res)
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
