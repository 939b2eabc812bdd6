"""Every output form, field by field, against values known from how the capture was
crafted (tests/reference_capture.py), not from wsanalyze: the DataFrames, JSON Lines,
CSV (parsed with the csv module; booleans spelled ``true``/``false``, null empty),
Parquet (read with pyarrow) and the human table; the compression metrics and the
summary's numbers computed by hand from the payloads.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

import wsanalyze
from tests.pcaptools import read_capture
from tests.reference_capture import (
    BINARY,
    CLIENT,
    FRAGMENTED,
    SERVER,
    TEXT_C2S,
    TEXT_S2C,
    Reference,
    build,
)
from wsanalyze.cli import main
from wsanalyze.metrics import compression_table

TABLES = {"connections": "connections", "messages": "messages", "frames": "frames",
          "violations": "violations"}


@pytest.fixture(scope="module")
def ref(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return build(tmp_path_factory.mktemp("ref") / "reference.pcap")


def _seconds(value: Any) -> Any:
    """Timestamps as float seconds, whether the form holds floats or UTC datetimes."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
        return value.timestamp()
    if isinstance(value, pd.Timedelta | dt.timedelta):  # durations in DataFrames
        return value.total_seconds()
    return value


def _same(field: str, got: Any, want: Any) -> None:
    got = _seconds(got)
    if want is None:
        assert got is None or (not isinstance(got, list | bytes | str) and pd.isna(got)), \
            f"{field}: {got!r} is not null"
    elif isinstance(want, float):
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=0, abs_tol=2e-6), \
            f"{field}: {got!r} != {want!r}"
    elif isinstance(want, bool):
        assert got is want or (type(got).__name__ == "bool_" and bool(got) is want), \
            f"{field}: {got!r} != {want!r}"
    else:
        got = list(got) if want.__class__ is list else got
        assert got == want, f"{field}: {got!r} != {want!r}"


def _compare(rows: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(rows) == len(expected)
    for i, (row, want) in enumerate(zip(rows, expected, strict=True)):
        for name, value in want.items():
            assert name in row, f"row {i}: no {name}"
            _same(f"row {i} {name}", row[name], value)


def _cli(ref: Reference, table: str, fmt: str, out: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert main([table, str(ref.path), "--format", fmt, "-o", str(out), "-q"]) == 0


def _expected(ref: Reference, table: str) -> list[dict[str, Any]]:
    return getattr(ref, table)


# ---- DataFrames ------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_dataframes(ref: Reference, table: str) -> None:
    df = getattr(wsanalyze.analyze(ref.path), table)
    rows = df.astype(object).where(df.notna(), None).to_dict("records")
    expected = [dict(e) for e in _expected(ref, table)]
    if table == "messages":
        for e, payload in zip(expected, ref.payloads, strict=True):
            del e["payload_b64"]
            e["payload"] = payload
    _compare(rows, expected)


# ---- JSON Lines --------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_jsonl(ref: Reference, table: str, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    _cli(ref, table, "jsonl", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    _compare(rows, _expected(ref, table))
    if table == "messages":
        assert [base64.b64decode(r["payload_b64"]) for r in rows] == ref.payloads


# ---- CSV ---------------------------------------------------------------------------------------


def _csv_text(value: Any) -> str:
    """The documented CSV spelling of an expected value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@pytest.mark.parametrize("table", list(TABLES))
def test_csv(ref: Reference, table: str, tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    _cli(ref, table, "csv", out)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = _expected(ref, table)
    assert len(rows) == len(expected)
    for i, (row, want) in enumerate(zip(rows, expected, strict=True)):
        for name, value in want.items():
            if isinstance(value, float):
                assert math.isclose(float(row[name]), value, rel_tol=0, abs_tol=2e-6), (i, name)
            else:
                assert row[name] == _csv_text(value), (i, name, row[name], value)


def test_csv_booleans_are_spelled_out(ref: Reference, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    _cli(ref, "frames", "csv", out)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["fin"], r["rsv1"], r["masked"]) for r in rows[:4]] == [
        ("true", "true", "true"), ("true", "true", "false"), ("true", "false", "false"),
        ("false", "true", "false")]


# ---- Parquet -----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_parquet(ref: Reference, table: str, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    _cli(ref, table, "parquet", out)
    rows = pq.read_table(out).to_pylist()
    expected = [dict(e) for e in _expected(ref, table)]
    if table == "messages" and rows and "payload" in rows[0]:
        for e, payload in zip(expected, ref.payloads, strict=True):
            del e["payload_b64"]
            e["payload"] = payload
    _compare(rows, expected)


def test_parquet_without_output_closes_the_capture(ref: Reference,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`messages X --format parquet` without -o: a usage error that leaves nothing open."""
    import gc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["messages", str(ref.path), "--format", "parquet"]) == 2
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    err = capsys.readouterr().err
    assert err == "wsanalyze: error: --format parquet needs -o FILE (Parquet is binary)\n"


# ---- the human table ---------------------------------------------------------------------------


def test_table_rows(ref: Reference, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["messages", str(ref.path), "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == len(ref.messages)
    for line, want in zip(lines, ref.messages, strict=True):
        cells = line.split()
        assert cells[:3] == ["0", str(want["index"]), want["direction"]]
        assert cells[4:7] == [str(want["packet"]), want["type"], str(want["length"])]
        # flags: Z compressed, T payload cut, ! incomplete (docs/columns.md)
        assert cells[7] == ("Z" if want["compressed"] else "-") + "--"


# ---- metrics and the summary, computed by hand -------------------------------------------------


def _deflated_bytes(ref: Reference, direction: str) -> tuple[int, int]:
    """(payload bytes as carried, inflated bytes) of a direction's data messages."""
    data = [m for m in ref.messages if m["direction"] == direction
            and m["type"] in ("text", "binary")]
    return sum(m["raw_length"] for m in data), sum(m["length"] for m in data)


def test_compression_table(ref: Reference) -> None:
    table = compression_table(wsanalyze.analyze(ref.path)).set_index("direction")
    # s2c data: compressed snapshot + compressed fragments + two plain binaries.
    inflated = len(TEXT_S2C.encode()) + len("".join(FRAGMENTED).encode()) + len(BINARY) + 20
    raw, check = _deflated_bytes(ref, "s2c")
    assert check == inflated
    row = table.loc["s2c"]
    assert (row.messages, row.compressed_messages) == (4, 2)
    assert (row.payload_bytes, row.inflated_bytes) == (raw, inflated)
    assert row.saved_bytes == inflated - raw
    assert row.saved_share == pytest.approx(1 - raw / inflated)
    assert row.ratio == pytest.approx(raw / inflated)
    assert row.compressed_share == pytest.approx(0.5)
    c_raw, c_inflated = _deflated_bytes(ref, "c2s")
    assert c_inflated == len(TEXT_C2S.encode()) + 5
    row = table.loc["c2s"]
    assert row.saved_share == pytest.approx((c_inflated - c_raw) / c_inflated)
    assert (row.window_bits, row.window_bytes, row.context_takeover) == (15, 32768, True)


def test_summary_numbers(ref: Reference, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(ref.path), "-q"]) == 0
    out = capsys.readouterr().out
    raw = sum(m["raw_length"] for m in ref.messages
              if m["type"] in ("text", "binary") and m["compressed"])
    inflated = sum(m["length"] for m in ref.messages
                   if m["type"] in ("text", "binary") and m["compressed"])
    assert raw < inflated
    # The capture's line (its ratio is computed apart from the connection's) ...
    assert (f"\ncompression: 3 messages compressed, {raw} → {inflated} bytes "
            f"(ratio {raw / inflated:.2f})\n") in out
    # ... and the connection's.
    assert (f"  compression: 3/6 data messages compressed, {raw} → {inflated} bytes "
            f"(ratio {raw / inflated:.2f})\n") in out
    conn = ref.connections[0]
    assert f"connection 0: {CLIENT} → {SERVER}  /feed?v=2" in out
    assert "; end close-handshake; close 1001 going away" in out
    handshake = re.search(r"handshake ok \(([\d.]+) ms\)", out)
    assert handshake and float(handshake.group(1)) == round(conn["handshake_rtt"] * 1000, 1)
    assert f"  c2s: 1 binary, 1 close, 1 ping, 1 text; {conn['bytes_c2s']} bytes on the wire" \
        in out
    assert f"  s2c: 2 binary, 1 close, 1 pong, 2 text; {conn['bytes_s2c']} bytes on the wire" \
        in out
    assert "  subprotocol feed.v2; extensions permessage-deflate" in out
    assert "violations: 1 error, 1 warning, 0 info" in out
    # by direction, then rule: the client's error, the server's warning
    assert "  violations: frame.reserved-bits ×1, frame.non-minimal-length ×1" in out
    records = read_capture(ref.path).records
    span = records[-1].ts - records[0].ts
    assert out.splitlines()[0] == (
        f"{ref.path}: {len(records)} packets, {span:.3f} s from 2023-11-14 22:13:20 UTC, "
        "1 WebSocket connection(s)")


# ---- --max-payload ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_max_payload_cuts_and_marks(ref: Reference, fmt: str, tmp_path: Path) -> None:
    """With --max-payload 5 each payload is its first 5 bytes, ``truncated`` is true
    exactly where the message is longer, and ``length`` stays the true length."""
    out = tmp_path / f"m.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        assert main(["messages", str(ref.path), "--format", fmt, "-o", str(out), "-q",
                     "--max-payload", "5"]) == 0
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    elif fmt == "csv":
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == len(ref.payloads)
    for row, want, payload in zip(rows, ref.messages, ref.payloads, strict=True):
        cut = len(payload) > 5
        # Parquet keeps payloads binary; the text forms carry base64.
        got = row["payload"] if fmt == "parquet" else base64.b64decode(row["payload_b64"])
        assert got == payload[:5]
        if fmt == "csv":
            assert (row["truncated"], row["length"]) == (_csv_text(cut), str(want["length"]))
        else:
            assert (row["truncated"], row["length"]) == (cut, want["length"])
