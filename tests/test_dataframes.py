"""DataFrames as pandas users expect them (issue 17).

* every column of every table and metric table has the dtype its schema kind
  fixes, on the samples, an empty capture and the rule-case captures, in the three
  payload modes; empty tables have the same dtypes as full ones;
* timestamps are ``datetime64[ns, UTC]`` equal to the capture's times, ``t`` is
  seconds from the first packet, out-of-range pcapng timestamps become NaT;
* Parquet (``r.to_parquet`` and ``--format parquet``) reads back with the same
  dtypes, payloads as binary; JSON Lines keeps float epoch seconds;
* the result object: metrics computed once, ``violation_frame`` on every rule-case
  row, ``connection(N)``, ``repr`` and the HTML card;
* API hygiene: table names checked, ``dir(wsanalyze)``, ``CaptureError`` exported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import wsanalyze
from tests import rulecases
from tests._capture_writers import epb, idb, pcap_file, shb
from tests.pcaptools import Conversation, read_capture, write_conversations, ws_frame
from wsanalyze import metrics
from wsanalyze.metrics.compression import COMPRESSION_SPEC
from wsanalyze.metrics.latency import GAP_SPEC, LATENCY_SPEC, PING_SPEC, REQUEST_SPEC
from wsanalyze.output.dataframe import check, dtype
from wsanalyze.output.schema import COLUMNS, VOCABULARIES, dataframe_columns
from wsanalyze.rules import RULES
from wsanalyze.sources.records import CaptureError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))
TABLES = {"connections": "connection", "messages": "message", "frames": "frame",
          "violations": "violation"}
METRIC_SPECS = {"compression": COMPRESSION_SPEC, "latency": LATENCY_SPEC,
                "ping_pairs": PING_SPEC, "requests": REQUEST_SPEC, "idle_gaps": GAP_SPEC}
MASK = b"\x01\x02\x03\x04"
T0 = 1_700_000_000.0


def _dtype_problems(r: wsanalyze.AnalysisResult) -> dict[str, list[str]]:
    problems = {name: check(getattr(r, name), dataframe_columns(table))
                for name, table in TABLES.items()}
    problems.update({name: check(getattr(r, name), spec) for name, spec in METRIC_SPECS.items()})
    # No extra, untyped columns either.
    for name, table in TABLES.items():
        extra = set(getattr(r, name).columns) - {n for n, _ in dataframe_columns(table)}
        if extra:
            problems[name].append(f"unexpected columns {sorted(extra)}")
    return {k: v for k, v in problems.items() if v}


def _conversation(*, t0: float = T0) -> Conversation:
    conv = Conversation(t0=t0)
    conv.handshake()
    conv.ws_upgrade()
    conv.send("c2s", ws_frame(1, b"hello", mask=MASK))
    conv.send("s2c", ws_frame(1, b"world"))
    conv.send("c2s", ws_frame(9, b"p", mask=MASK))
    conv.send("s2c", ws_frame(10, b"p"))
    conv.send("c2s", ws_frame(8, b"\x03\xe8", mask=MASK))
    conv.send("s2c", ws_frame(8, b"\x03\xe8"))
    conv.close("s2c")
    return conv


@pytest.fixture(scope="module")
def empty_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("empty") / "empty.pcap"
    path.write_bytes(pcap_file([]))
    return path


@pytest.fixture(scope="module")
def rule_results(tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, wsanalyze.AnalysisResult]:
    """Every rule case, analysed once."""
    out = tmp_path_factory.mktemp("rulecases")
    results = {}
    for name, build in rulecases.CASES.items():
        case = build()
        path = out / (name.replace("/", "--") + ".pcap")
        case.write(path)
        results[name] = wsanalyze.analyze(path, limits=case.limits,
                                          max_buffered=case.max_buffered or 8 << 20)
    return results


# ---------------------------------------------------------------------------------------
# dtypes fixed by the schema
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("payloads", ["full", "preview", "none"])
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_sample_tables_follow_the_schema(capture: Path, payloads: str) -> None:
    r = wsanalyze.analyze(capture, payloads=payloads)  # type: ignore[arg-type]
    assert len(r.messages) > 0
    assert _dtype_problems(r) == {}


@pytest.mark.parametrize("payloads", ["full", "preview", "none"])
def test_empty_capture_has_the_same_dtypes(empty_capture: Path, payloads: str) -> None:
    r = wsanalyze.analyze(empty_capture, payloads=payloads)  # type: ignore[arg-type]
    assert [len(getattr(r, n)) for n in (*TABLES, *METRIC_SPECS)] == [0] * 9
    assert _dtype_problems(r) == {}
    full = wsanalyze.analyze(SAMPLES / "mixed.pcapng")
    for name in (*TABLES, *METRIC_SPECS):
        assert getattr(r, name).dtypes.to_dict() == getattr(full, name).dtypes.to_dict(), name


def test_rule_case_tables_follow_the_schema(
        rule_results: dict[str, wsanalyze.AnalysisResult]) -> None:
    problems = {name: p for name, r in rule_results.items() if (p := _dtype_problems(r))}
    assert problems == {}
    # The cases reach every nullable column with and without values, and the
    # vocabularies hold every value seen (no category was added on the fly).
    v = pd.concat([r.violations for r in rule_results.values()], ignore_index=True)
    assert v["rule"].dtype == dtype("enum:rule") and set(v["rule"]) <= set(RULES)
    assert v["direction"].isna().any() and v["frame"].isna().any() and v["frame"].notna().any()
    m = pd.concat([r.messages for r in rule_results.values()], ignore_index=True)
    assert m["type"].dtype == dtype("enum:type")
    assert set(m["type"].astype(str)) >= {"text", "close", "ping", "pong", "continuation"}
    assert m["close_code"].isna().any() and m["close_code"].notna().any()
    assert m["error"].notna().any() and set(m["error"].dropna()) <= set(RULES)


def test_vocabularies_are_the_documented_ones() -> None:
    assert VOCABULARIES["direction"] == ("c2s", "s2c")
    assert VOCABULARIES["severity"] == ("error", "warning", "info")
    assert VOCABULARIES["rule"] == tuple(RULES)
    assert set(VOCABULARIES["type"]) == {
        "text", "binary", "close", "ping", "pong", "continuation",
        *(f"opcode-0x{n:X}" for n in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15))}
    assert VOCABULARIES["end"] == ("close-handshake", "close-one-sided", "tcp-fin",
                                   "tcp-reset", "capture-ended")
    assert VOCABULARIES["handshake"] == ("ok", "rejected", "invalid", "not-captured")
    kinds = {kind for spec in COLUMNS.values() for _, kind in spec}
    assert {k for k in kinds if k.startswith("enum:")} == {
        "enum:direction", "enum:type", "enum:severity", "enum:rule", "enum:end",
        "enum:handshake"}
    # One string dtype in the tables and the metric tables; object only for bytes/lists.
    r = wsanalyze.analyze(SAMPLES / "mixed.pcapng")
    seen: dict[str, set[str]] = {}
    for name in (*TABLES, *METRIC_SPECS):
        df = getattr(r, name)
        for c in df.columns:
            if pd.api.types.is_string_dtype(df[c].dtype) or df[c].dtype == object:
                seen.setdefault(str(df[c].dtype), set()).add(c)
    assert seen["object"] == {"payload", "subprotocols_offered"}
    assert set(seen) == {"object", "string"}
    assert dtype("string") == pd.StringDtype("pyarrow")


def test_a_value_outside_a_vocabulary_is_kept() -> None:
    from wsanalyze.output.dataframe import column

    col = column("enum:direction", ["c2s", None, "sideways"])
    assert list(col.cat.categories) == ["c2s", "s2c", "sideways"]
    assert col.tolist()[0] == "c2s" and pd.isna(col.iloc[1]) and col.iloc[2] == "sideways"


# ---------------------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------------------


def test_timestamps_are_utc_datetimes_of_the_capture(tmp_path: Path) -> None:
    conv = _conversation()
    conv.write(tmp_path / "c.pcap")
    packets = conv.packets
    r = wsanalyze.analyze(tmp_path / "c.pcap")
    m = r.messages
    expect = [pd.Timestamp(packets[n - 1][0], unit="s", tz="UTC") for n in m["packet"]]
    got = list(m["ts"])
    assert all(abs(g - e) < pd.Timedelta(microseconds=1) for g, e in zip(got, expect,
                                                                         strict=True))
    assert r.first_ts == packets[0][0]
    assert m["t"].tolist() == pytest.approx([ts - packets[0][0] for ts, _ in
                                             (packets[n - 1] for n in m["packet"])], abs=1e-6)
    conn = r.connections.iloc[0]
    assert conn["ts_start"] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert isinstance(conn["handshake_rtt"], pd.Timedelta)
    assert pd.Timedelta(0) < conn["handshake_rtt"] < pd.Timedelta(seconds=1)
    assert r.frames["t"].min() >= 0 and r.violations["t"].dtype == "float64"


def test_jsonl_keeps_float_epoch_seconds(tmp_path: Path) -> None:
    capture = SAMPLES / "websockets-deflate.pcap"
    out = subprocess.run([sys.executable, "-m", "wsanalyze", "messages", str(capture),
                          "--format", "jsonl"], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=120)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    m = wsanalyze.analyze(capture).messages
    assert len(rows) == len(m)
    assert all(isinstance(row["ts"], float) for row in rows)
    back = pd.to_datetime([row["ts"] for row in rows], unit="s", utc=True)
    assert (abs(back - pd.DatetimeIndex(m["ts"])) < pd.Timedelta(microseconds=1)).all()


def test_out_of_range_pcapng_timestamp_becomes_nat(tmp_path: Path) -> None:
    """An EPB with ts_high=0xffffffff (about year 586 000 in microseconds) must not
    make the DataFrame conversion raise: that timestamp is NaT, the rest decode."""
    conv = _conversation()
    conv.write(tmp_path / "c.pcap")
    records = read_capture(tmp_path / "c.pcap").records
    hello = next(i for i, rec in enumerate(records) if b"\x81\x85" in rec.data)
    blocks = [shb(), idb(1, tsresol=6)]
    for i, rec in enumerate(records):
        units = (0xFFFFFFFF << 32) | 7 if i == hello else rec.ts_ns // 1000
        blocks.append(epb(0, units, rec.data))
    path = tmp_path / "far.pcapng"
    path.write_bytes(b"".join(blocks))
    r = wsanalyze.analyze(path)
    assert _dtype_problems(r) == {}
    m = r.messages
    row = m[m["packet"] == hello + 1].iloc[0]
    assert row["payload"] == b"hello" and pd.isna(row["ts"])
    others = m[m["packet"] != hello + 1]
    assert others["ts"].notna().all() and len(others) == 5
    assert repr(r).startswith("AnalysisResult(")
    assert "<svg" in r._repr_html_()


# ---------------------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", [SAMPLES / "mixed.pcapng",
                                     SAMPLES / "websockets-deflate.pcap"], ids=lambda p: p.name)
def test_to_parquet_round_trip_keeps_dtypes(capture: Path, tmp_path: Path) -> None:
    r = wsanalyze.analyze(capture)
    paths = r.to_parquet(tmp_path / "out")
    assert [Path(p).name for p in paths] == [f"{n}.parquet" for n in TABLES]
    full = [name for name in TABLES if not getattr(r, name).empty]
    assert len(full) >= 3  # empty tables: test_empty_table_parquet_keeps_non_categorical_dtypes
    for path, name in zip(paths, TABLES, strict=True):
        if name in full:
            back = pd.read_parquet(path)
            pd.testing.assert_frame_equal(back, getattr(r, name).reset_index(drop=True))
    schema = pq.read_schema(tmp_path / "out" / "messages.parquet")
    assert str(schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert str(schema.field("payload").type) == "binary"
    assert str(schema.field("direction").type).startswith("dictionary<values=string")
    assert str(pq.read_schema(tmp_path / "out" / "connections.parquet")
               .field("handshake_rtt").type) == "duration[ns]"


def test_cli_parquet_reads_back_like_analyze(tmp_path: Path) -> None:
    capture = SAMPLES / "mixed.pcapng"
    r = wsanalyze.analyze(capture)
    for name, table in TABLES.items():
        if getattr(r, name).empty:
            continue
        out = tmp_path / f"{name}.parquet"
        subprocess.run([sys.executable, "-m", "wsanalyze", name, str(capture), "--format",
                        "parquet", "-o", str(out)], check=True, cwd=ROOT, timeout=120,
                       capture_output=True)
        back = pd.read_parquet(out)
        want = getattr(r, name)[[n for n, _ in COLUMNS[table]]].reset_index(drop=True)
        pd.testing.assert_frame_equal(back, want, obj=name)


def test_cli_parquet_cuts_payloads_as_binary(tmp_path: Path) -> None:
    capture = SAMPLES / "node-ws-fragments.pcap"
    out = tmp_path / "m.parquet"
    subprocess.run([sys.executable, "-m", "wsanalyze", "messages", str(capture), "--format",
                    "parquet", "-o", str(out), "--max-payload", "4"], check=True, cwd=ROOT,
                   timeout=120, capture_output=True)
    back = pd.read_parquet(out)
    full = wsanalyze.analyze(capture).messages
    assert list(back["payload"]) == [p[:4] for p in full["payload"]]
    assert list(back["truncated"]) == [len(p) > 4 for p in full["payload"]]
    assert (full["length"] > 4).sum() >= 5


def test_empty_table_parquet_keeps_non_categorical_dtypes(empty_capture: Path,
                                                          tmp_path: Path) -> None:
    # Parquet stores a dictionary only with rows, so an empty categorical reads back
    # with no categories (README, "Parquet"); every other dtype is kept.
    r = wsanalyze.analyze(empty_capture)
    r.to_parquet(tmp_path)
    for name in TABLES:
        back = pd.read_parquet(tmp_path / f"{name}.parquet")
        want = getattr(r, name)
        assert list(back.columns) == list(want.columns)
        for col in want.columns:
            if isinstance(want[col].dtype, pd.CategoricalDtype):
                assert isinstance(back[col].dtype, pd.CategoricalDtype), (name, col)
            else:
                assert back[col].dtype == want[col].dtype, (name, col)


# ---------------------------------------------------------------------------------------
# the result object
# ---------------------------------------------------------------------------------------


def test_violation_frame_on_every_rule_case_row(
        rule_results: dict[str, wsanalyze.AnalysisResult]) -> None:
    seen = {"frame": 0, "none": 0}
    for name, r in rule_results.items():
        for i, row in r.violations.iterrows():
            got = r.violation_frame(i)
            assert got == r.violation_frame(row), name
            if pd.isna(row["frame"]):
                assert got is None, (name, row["rule"])
                seen["none"] += 1
            elif got is not None:
                assert (got["connection"], got["index"]) == (row["connection"], row["frame"])
                seen["frame"] += 1
    assert seen["frame"] >= 10 and seen["none"] >= 10, seen


def test_metric_tables_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {}

    def counting(name: str) -> Callable[..., pd.DataFrame]:
        real = getattr(metrics, name)

        def wrapper(*args: Any, **kwargs: Any) -> pd.DataFrame:
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)
        return wrapper

    names = ("compression_table", "latency_table", "ping_pairs", "request_pairs", "idle_gaps")
    for name in names:
        monkeypatch.setattr(metrics, name, counting(name))
    r = wsanalyze.analyze(SAMPLES / "websockets-nocontext.pcap")
    first = [r.compression, r.latency, r.ping_pairs, r.requests, r.idle_gaps]
    again = [r.compression, r.latency, r.ping_pairs, r.requests, r.idle_gaps,
             r.request_pairs()]
    assert calls == dict.fromkeys(names, 1)
    assert all(a is b for a, b in zip(first, again, strict=False))
    assert again[-1] is first[3]
    # A key function is an argument, so request_pairs(key) is computed per call.
    keyed = r.request_pairs(lambda row: row["length"] % 2)
    assert calls["request_pairs"] == 2 and set(keyed["method"]) <= {"key"}


def test_connection_view(tmp_path: Path) -> None:
    second = Conversation(client=("127.0.0.1", 50001), t0=T0 + 0.5)
    second.handshake()
    second.ws_upgrade(path="/second")
    second.send("c2s", ws_frame(2, b"\x00\x01", mask=MASK))
    second.close("c2s")
    write_conversations(tmp_path / "two.pcap", [_conversation(), second])
    r = wsanalyze.analyze(tmp_path / "two.pcap")
    assert list(r.connections["connection"]) == [0, 1]
    c = r.connection(1)
    assert isinstance(c, wsanalyze.ConnectionView) and c.id == 1
    for name in TABLES:
        assert set(getattr(c, name)["connection"]) <= {1}
    assert list(c.messages["payload"]) == [b"\x00\x01"]
    assert c.handshake["status"] == "ok" and c.handshake["path"] == "/second"
    assert c.first_ts == r.first_ts  # same time origin: t lines up with the capture
    assert c.messages["t"].iloc[0] == pytest.approx(0.5 + 0.003, abs=0.01)
    assert list(c.latency["connection"]) == [1]
    assert list(c.compression["connection"]) == [1, 1]
    assert list(r.select(0).messages["payload"][:2]) == [b"hello", b"world"]
    with pytest.raises(ValueError, match=r"no connection 7 \(connections: 0, 1\)"):
        r.connection(7)


def test_repr_is_a_short_summary(
        rule_results: dict[str, wsanalyze.AnalysisResult]) -> None:
    r = rule_results["close.invalid-code"]
    text = repr(r)
    assert len(text.splitlines()) <= 3
    assert text.startswith("AnalysisResult('") and "2023-11-14 22:13:20 UTC" in text
    n = len(r.messages)
    assert f"1 connection, {n} messages, {len(r.frames)} frames" in text
    errors = int((r.violations["severity"] == "error").sum())
    assert errors >= 1 and f"({errors} error" in text


def test_html_card_shows_counts_rules_and_timeline(
        rule_results: dict[str, wsanalyze.AnalysisResult]) -> None:
    r = rule_results["close.invalid-code"]
    card = r._repr_html_()
    assert card.count("<svg") == 1 and "<rect" in card
    assert f"<tr><td>messages</td><td>{len(r.messages)}</td></tr>" in card
    for rule in set(r.violations["rule"].astype(str)):
        assert f"<code>{rule}</code>" in card
    assert len(card) < 20_000
    empty_card = wsanalyze.analyze(SAMPLES / "aiohttp-plain.pcap")._repr_html_()
    assert "no violations" in empty_card


# ---------------------------------------------------------------------------------------
# API hygiene
# ---------------------------------------------------------------------------------------


def test_table_names_are_checked_and_plurals_accepted() -> None:
    capture = SAMPLES / "mixed.pcapng"
    r = wsanalyze.analyze(capture)
    for tables in ({"messages"}, {"message"}, "messages"):
        records = list(wsanalyze.iter_records(capture, tables=tables))
        assert {t for t, _ in records} == {"message"}
        assert len(records) == len(r.messages)
    with pytest.raises(ValueError, match=r"unknown table name.*'packets'.*valid names: "
                       r"connection, connections, frame, frames"):
        wsanalyze.iter_records(capture, tables={"messages", "packets"})
    with pytest.raises(ValueError, match="'violatons'"):
        wsanalyze.analyze(capture, tables=["violatons"])
    only = wsanalyze.analyze(capture, tables={"violations"})
    assert only.messages.empty and len(only.violations) == len(r.violations)
    assert _dtype_problems(only) == {}


def test_public_api_is_importable_and_completes() -> None:
    names = dir(wsanalyze)
    for name in ("analyze", "iter_records", "AnalysisResult", "ConnectionView", "CaptureError",
                 "DecoderLimits", "Options", "Tables", "__version__"):
        assert name in names
        assert getattr(wsanalyze, name) is not None
    assert "TYPE_CHECKING" not in names and "Any" not in names and "annotations" not in names
    assert wsanalyze.CaptureError is CaptureError
    assert set(wsanalyze.__all__) <= set(names)
    assert (ROOT / "wsanalyze" / "py.typed").exists()
    with pytest.raises(AttributeError, match="no attribute 'analyse'"):
        _ = wsanalyze.analyse  # type: ignore[attr-defined]


def test_capture_error_is_raised_for_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(wsanalyze.CaptureError):
        wsanalyze.analyze(bad)


def test_seconds_helper_round_trips_float_epochs() -> None:
    from wsanalyze.output.dataframe import seconds, timestamps

    values = [T0 + 0.123456, 1.5, None, 1e13]
    back = seconds(timestamps(values))
    assert back[:2].tolist() == pytest.approx([T0 + 0.123456, 1.5], abs=1e-6)
    assert np.isnan(back[2]) and np.isnan(back[3])
