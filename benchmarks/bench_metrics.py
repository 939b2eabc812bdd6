"""What the metric tables of an analysis cost, and what caching them saves.

    python benchmarks/bench_metrics.py benchmarks/data/20m.pcap

Prints the CPU time (``time.process_time``, steadier than wall time on a shared
machine) of ``analyze()``, of each metric function of :mod:`wsanalyze.metrics`
called directly, and of the first and second access to the result's cached
properties.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import wsanalyze
from wsanalyze import metrics


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    args = parser.parse_args()
    start = time.process_time()
    r = wsanalyze.analyze(args.capture)
    print(f"analyze: {time.process_time() - start:.2f} s CPU, {len(r.messages):,} messages, "
          f"{len(r.connections):,} connections")
    for name in ("compression_table", "ping_pairs", "request_pairs", "idle_gaps",
                 "latency_table"):
        print(f"metrics.{name}: {_cpu(lambda n=name: getattr(metrics, n)(r)):.2f} s")
    for name in ("compression", "latency"):
        first = _cpu(lambda n=name: getattr(r, n))
        second = _cpu(lambda n=name: getattr(r, n))
        print(f"r.{name}: first access {first:.2f} s, second {second * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
