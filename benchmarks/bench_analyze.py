"""What ``wsanalyze.analyze()`` costs in memory and time, per payload mode.

Each mode runs in its own process (peak RSS from ``os.wait4``), one after the
other:

    python benchmarks/bench_analyze.py benchmarks/data/100m.pcap [--modes full,preview,none]

Prints, per mode: wall time, peak RSS, the rows of each table, and the deep
memory of the resulting DataFrames (what stays alive in a notebook).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

_CHILD = """
import json, sys
import wsanalyze
r = wsanalyze.analyze(sys.argv[1], payloads=sys.argv[2])
tables = {"connections": r.connections, "messages": r.messages, "frames": r.frames,
          "violations": r.violations}
print(json.dumps({
    "rows": {k: len(v) for k, v in tables.items()},
    "frame_mib": {k: int(v.memory_usage(deep=True).sum()) / 2**20 for k, v in tables.items()},
    "payload_mib": int(r.messages["payload"].map(len).sum()) / 2**20,
}))
"""


def run(capture: Path, mode: str) -> dict[str, object]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(capture), mode],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        sys.exit(f"analyze(payloads={mode!r}) failed (status {status})")
    return {"mode": mode, "wall_s": time.perf_counter() - started,
            "peak_rss_mib": usage.ru_maxrss / 1024, **json.loads(out)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--modes", default="full,preview,none")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    size = args.capture.stat().st_size
    results = [run(args.capture, m) for m in args.modes.split(",")]
    print(f"{args.capture.name}: {size / 1e6:.0f} MB")
    print(f"{'payloads':<9} {'wall':>7} {'peak RSS':>10} {'messages':>9} {'frames':>9} "
          f"{'DataFrames':>11} {'payloads':>9}")
    for r in results:
        rows = r["rows"]
        frames = r["frame_mib"]
        assert isinstance(rows, dict) and isinstance(frames, dict)
        print(f"{r['mode']:<9} {r['wall_s']:>6.1f}s {r['peak_rss_mib']:>6.0f} MiB "
              f"{rows['messages']:>9,} {rows['frames']:>9,} {sum(frames.values()):>7.0f} MiB "
              f"{r['payload_mib']:>5.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
