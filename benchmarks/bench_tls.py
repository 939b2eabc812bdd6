"""Decryption cost: the same pipeline over a plain capture and a TLS 1.3 one.

Usage (from the repository root; make the captures first)::

    python benchmarks/generate.py benchmarks/data/100m.pcap --size 100M --no-fragments
    python benchmarks/generate_tls.py benchmarks/data/100m-tls.pcap --size 100M --no-fragments
    python benchmarks/bench_tls.py benchmarks/data/100m.pcap benchmarks/data/100m-tls.pcap

Runs ``iter_records`` over all four tables on each capture, alternately, ``--runs``
times, and reports the best CPU time (process time: on a shared machine wall
time mostly measures the neighbours) as MB/s, and the TLS/plain ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsanalyze.analysis import iter_records


def cpu_seconds(path: str, keylog: str | None) -> tuple[float, int]:
    start = time.process_time()
    n = 0
    for _ in iter_records(path, tls_keylog=keylog):
        n += 1
    return time.process_time() - start, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plain")
    ap.add_argument("tls")
    ap.add_argument("--keylog", help="default: TLS + .keys.txt")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    keylog = args.keylog or args.tls + ".keys.txt"
    best = {"plain": float("inf"), "tls": float("inf")}
    records = {}
    for _ in range(args.runs):
        for name, path, keys in (("plain", args.plain, None), ("tls", args.tls, keylog)):
            seconds, records[name] = cpu_seconds(path, keys)
            best[name] = min(best[name], seconds)
    rate = {}
    for name, path in (("plain", args.plain), ("tls", args.tls)):
        mb = os.path.getsize(path) / 1e6
        rate[name] = mb / best[name]
        print(f"{name}: {mb:.1f} MB, {records[name]:,} records, best CPU {best[name]:.2f} s, "
              f"{rate[name]:.1f} MB/s")
    print(f"TLS throughput is {rate['tls'] / rate['plain'] * 100:.0f} % of plain "
          f"(decryption costs {(1 - rate['tls'] / rate['plain']) * 100:.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
