"""Memory stays flat: nothing per ended connection outlives it.

Speed and memory figures are benchmarks (benchmarks/); these tests check the
mechanisms that keep memory flat, on real and crafted traffic.
"""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import rulecases
from wsanalyze.analysis import CaptureRun
from wsanalyze.output.summary import Summary
from wsanalyze.pipeline import Options

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture
def no_cycle_gc() -> Iterator[None]:
    """Run with the cyclic GC off, and collect what it would have freed."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _cyclic_garbage() -> list[str]:
    """Names of wsanalyze objects that only the cyclic GC could free."""
    gc.garbage.clear()
    gc.collect()
    return sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                   if type(o).__module__.startswith("wsanalyze")})


def _captures(tmp_path: Path) -> list[Path]:
    """Every sample plus every crafted rule case (violations, gaps, limits)."""
    out = list(CAPTURES)
    for name, build in {**rulecases.CASES, **rulecases.NEAR_MISSES}.items():
        path = tmp_path / f"{re.sub(r'[^A-Za-z0-9.-]', '_', name)}.pcap"
        build().write(path)
        out.append(path)
    return out


def test_decoding_leaves_no_reference_cycles(tmp_path: Path, no_cycle_gc: None) -> None:
    # A long capture rarely triggers a full collection, so an ended connection
    # caught in a reference cycle stays in memory to the end: memory then grows
    # with the number of connections seen, not the number open.
    captures = _captures(tmp_path)
    assert len(captures) > 90
    rows = 0
    for path in captures:
        for _record in CaptureRun(path, Options(), 1):
            rows += 1
        assert _cyclic_garbage() == [], path.name
    assert rows > 1000


def test_summary_spills_ended_connections_to_disk() -> None:
    path = SAMPLES / "mixed.pcapng"

    def render(spill: int) -> tuple[str, Summary]:
        run = CaptureRun(path, Options(tables=Summary.TABLES), 1)
        summary = Summary(spill=spill)
        for record in run:
            summary.add(record)
        out = io.StringIO()
        summary.write(out, path=str(path), packets=run.packets, first_ts=run.first_ts,
                      last_ts=run.last_ts, warnings=run.warnings)
        return out.getvalue(), summary

    in_memory, kept = render(1 << 30)
    spilled, spilling = render(0)
    assert kept.blocks._file is None
    assert spilling.blocks._file is not None
    assert spilled == in_memory
    ids = [int(m) for m in re.findall(r"^connection (\d+):", spilled, re.M)]
    assert len(ids) == len(kept.blocks) >= 2
    assert ids == sorted(ids)
