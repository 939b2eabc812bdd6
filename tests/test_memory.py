"""Memory stays flat: nothing per ended connection outlives it.

Speed and memory figures are benchmarks (benchmarks/); these tests check the
mechanisms that keep memory flat, on real and crafted traffic.
"""

from __future__ import annotations

import gc
import io
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze
from tests import rulecases
from wsanalyze.analysis import CaptureRun
from wsanalyze.output.dataframe import check
from wsanalyze.output.schema import COLUMNS, dataframe_columns
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


def _render_summary(path: Path, spill: int) -> tuple[str, Summary]:
    """The summary text of ``path``, spilling ended connections past ``spill`` bytes."""
    run = CaptureRun(path, Options(tables=Summary.TABLES), 1)
    summary = Summary(spill=spill)
    for record in run:
        summary.add(record)
    out = io.StringIO()
    summary.write(out, path=str(path), packets=run.packets, first_ts=run.first_ts,
                  last_ts=run.last_ts, warnings=run.warnings)
    return out.getvalue(), summary


def test_summary_spills_ended_connections_to_disk() -> None:
    path = SAMPLES / "mixed.pcapng"
    in_memory, kept = _render_summary(path, 1 << 30)
    spilled, spilling = _render_summary(path, 0)
    assert kept.blocks._file is None
    assert spilling.blocks._file is not None
    assert spilled == in_memory
    ids = [int(m) for m in re.findall(r"^connection (\d+):", spilled, re.M)]
    assert len(ids) == len(kept.blocks) >= 2
    assert ids == sorted(ids)


def _check_schema(table: str, df: pd.DataFrame) -> None:
    # Dtypes come from the schema's kinds (test_dataframes checks them in depth).
    assert list(df.columns[:len(COLUMNS[table])]) == [n for n, _ in COLUMNS[table]]
    assert check(df, dataframe_columns(table)) == [], table
    for name, kind in COLUMNS[table]:
        if kind in ("binary", "list<string>"):
            want = {"binary": bytes, "list<string>": list}[kind]
            assert all(v is None or isinstance(v, want) for v in df[name]), (table, name)


@pytest.mark.parametrize("name", ["capture.gap", "close.invalid-code", "frame.reserved-bits",
                                  "deflate.context-takeover-violated"])
def test_analyze_tables_follow_the_schema(name: str, tmp_path: Path) -> None:
    # Crafted cases with gaps, close codes and absent values; the samples for the rest.
    matches = [k for k in rulecases.CASES if k.split("/")[0] == name]
    assert matches, name
    path = tmp_path / "case.pcap"
    rulecases.CASES[matches[0]]().write(path)
    for capture in (path, SAMPLES / "websockets-deflate.pcap", SAMPLES / "mixed.pcapng"):
        r = wsanalyze.analyze(capture)
        for table, df in (("connection", r.connections), ("message", r.messages),
                          ("frame", r.frames), ("violation", r.violations)):
            _check_schema(table, df)
    # The case really has absent values: a nullable integer column and a None string.
    m = wsanalyze.analyze(path).messages
    assert str(m["close_code"].dtype) == "Int64" and m["close_code"].isna().any()
    assert m["close_reason"].isna().any()


def test_payload_modes_keep_what_they_say() -> None:
    path = SAMPLES / "node-ws-fragments.pcap"
    full = wsanalyze.analyze(path).messages
    preview = wsanalyze.analyze(path, payloads="preview", preview_bytes=5).messages
    none = wsanalyze.analyze(path, payloads="none").messages
    assert (full["length"] > 5).sum() >= 5
    for mode, df, keep in (("preview", preview, 5), ("none", none, 0)):
        pd.testing.assert_frame_equal(
            df.drop(columns=["payload", "text", "truncated"]),
            full.drop(columns=["payload", "text", "truncated"]), obj=mode)
        assert list(df["payload"]) == [p[:keep] for p in full["payload"]]
        assert list(df["truncated"]) == [t or len(p) > keep
                                         for t, p in zip(full["truncated"], full["payload"],
                                                         strict=True)]
        texts = [None if pd.isna(t) else (t[:keep] if keep and len(p) > keep else
                                          (t if len(p) <= keep else None))
                 for t, p in zip(full["text"], full["payload"], strict=True)]
        assert [None if pd.isna(t) else t for t in df["text"]] == texts


class _FullDisk(io.BytesIO):
    """A temporary file on a disk that fills up after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(28, "No space left on device")
        return super().write(data)


@pytest.mark.parametrize("room", [None, 0, 900])
def test_summary_loses_nothing_without_a_usable_temporary_folder(
        room: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SAMPLES / "mixed.pcapng"
    expected, _ = _render_summary(path, 1 << 30)

    def temporary_file(*args: object, **kwargs: object) -> io.BytesIO:
        if room is None:
            raise PermissionError(13, "Permission denied", "/tmp")
        return _FullDisk(room)

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    assert _render_summary(path, 0)[0] == expected


def test_a_run_collects_garbage_less_often_and_restores_the_threshold() -> None:
    """The packet loop raises the gen-0 threshold (analysis.fewer_collections) and
    puts the caller's back at the end."""
    before = gc.get_threshold()
    run = CaptureRun(SAMPLES / "mixed.pcapng")
    seen = set()
    rows = 0
    for _table, _row in run:
        seen.add(gc.get_threshold())
        rows += 1
    assert rows > 0
    assert seen == {(10_000, *before[1:])}
    assert gc.get_threshold() == before


def test_interleaved_runs_restore_the_callers_threshold() -> None:
    """Two runs iterated in turn, the first ending first: the threshold stays
    raised until the second ends, then is the caller's again."""
    before = gc.get_threshold()
    first = iter(CaptureRun(SAMPLES / "mixed.pcapng"))
    second = iter(CaptureRun(SAMPLES / "websockets-deflate.pcap"))
    next(first)
    next(second)
    assert gc.get_threshold()[0] == 10_000
    assert sum(1 for _ in first) > 0
    assert gc.get_threshold()[0] == 10_000
    assert sum(1 for _ in second) > 0
    assert gc.get_threshold() == before
