"""Timestamps no calendar can hold (pcapng ``if_tsresol``/``if_tsoffset``).

A 92-byte pcapng with one empty packet at ``ts_high = 0xffffffff`` used to crash
``summary`` and the human tables with a traceback; a whole sample re-timed by
an ``if_tsoffset`` of ±2^63 must still decode every message, report
``capture.bad-timestamp`` on the first such packet of each connection, and show
the raw epoch number where a date cannot be printed.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from pathlib import Path

import pytest

import wsanalyze
from tests._capture_writers import IDB, block, epb, idb, options, shb
from tests.pcaptools import read_capture
from wsanalyze.cli import main
from wsanalyze.timestamps import TS_MAX, format_time, to_datetime

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DEFLATE = SAMPLES / "websockets-deflate.pcap"
TRUTH = SAMPLES / "websockets-deflate.truth.jsonl"
LINKTYPE_ETHERNET = 1


def tiny_pcapng(path: Path) -> Path:
    """The reported 92-byte file: SHB, an IDB with if_tsresol=3, one empty EPB
    whose timestamp is 0xffffffff_00000000 milliseconds (~585 million years)."""
    iface = block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 0) + options([(9, b"\x03")]))
    data = shb() + iface + epb(0, 0xFFFFFFFF << 32, b"")
    path.write_bytes(data)
    return path


def retimed_sample(path: Path, *, tsoffset: int) -> Path:
    """samples/websockets-deflate.pcap as pcapng with its packets' times kept
    relative to the first (microseconds) but moved by ``tsoffset`` seconds."""
    cap = read_capture(DEFLATE)
    t0 = cap.records[0].ts_ns
    out = [shb(), idb(cap.interfaces[0].linktype, tsresol=6, tsoffset=tsoffset)]
    out.extend(epb(0, (rec.ts_ns - t0) // 1000, rec.data) for rec in cap.records)
    path.write_bytes(b"".join(out))
    return path


COMMANDS = ["summary", "connections", "messages", "frames", "violations"]
FORMATS = ["table", "jsonl", "csv", "parquet"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_tiny_pcapng_is_92_bytes_and_every_command_survives(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tiny_pcapng(tmp_path / "t.pcapng")
    assert path.stat().st_size == 92
    code, out, err = run_cli(["summary", str(path), "-q"], capsys)
    assert code == 0
    # 0xffffffff00000000 ms = 18446744069414584.32 s: the epoch number, not a date.
    assert "epoch 1.84467441e+16" in out
    assert "Traceback" not in err
    assert "packet 1 has a timestamp outside the calendar" in out + err
    for command in COMMANDS[1:]:
        for fmt in FORMATS:
            extra = ["-o", str(tmp_path / f"{command}.parquet")] if fmt == "parquet" else []
            code, out, err = run_cli([command, str(path), "--format", fmt, "-q", *extra], capsys)
            assert code == 0, (command, fmt, err)
            assert "Traceback" not in err
            lines = err.splitlines()
            assert all(line.startswith("wsanalyze: warning: ") for line in lines)
            assert any("packet 1 has a timestamp outside the calendar" in line for line in lines)


def test_far_future_sample_decodes_every_message(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # 2^40 s is year ~36,800: outside every calendar, yet a float still resolves
    # 0.1 ms there, so the capture's timing (and decoding) is unchanged.
    path = retimed_sample(tmp_path / "far.pcapng", tsoffset=2**40)
    truth = [json.loads(line) for line in TRUTH.read_text().splitlines()]
    r = wsanalyze.analyze(path)
    data = r.messages[r.messages["type"].isin(["text", "binary"])]
    assert sorted(base64.b64encode(p).decode() for p in data["payload"]) == \
        sorted(t["payload_b64"] for t in truth if t["type"] in ("text", "binary"))
    # DataFrames: a time no datetime64[ns] holds is NaT (JSON Lines keep the float).
    assert r.messages["ts"].isna().all() and r.connections["ts_start"].isna().all()
    bad = r.violations[r.violations["rule"] == "capture.bad-timestamp"]
    # One row per connection, on its first packet (packet 1 opens connection 0).
    assert sorted(bad["connection"]) == sorted(r.connections["connection"])
    assert bad.iloc[0]["packet"] == 1
    assert (bad["severity"] == "info").all()
    assert any("packet 1 has a timestamp outside the calendar" in w for w in r.warnings)

    code, out, _ = run_cli(["messages", str(path), "-q"], capsys)
    assert code == 0
    assert " epoch 1.09" in out.splitlines()[1]
    code, out, _ = run_cli(["messages", str(path), "--format", "jsonl", "-q"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    # Sorting by the raw times keeps packet order; relative times are the sample's.
    assert [m["packet"] for m in sorted(rows, key=lambda m: (m["ts"], m["packet"]))] == \
        sorted(m["packet"] for m in rows)
    first = read_capture(DEFLATE).records[0].ts
    plain = [row["ts"] for table, row in wsanalyze.iter_records(DEFLATE, tables={"message"})]
    # A float resolves 2^-12 s at 2^40 s.
    assert len(rows) == len(plain)
    assert all(abs((m["ts"] - 2**40) - (t - first)) < 2e-3 for m, t in
               zip(rows, plain, strict=True))
    code, out, _ = run_cli(["summary", str(path), "-q"], capsys)
    assert code == 0 and "from epoch 1.09951163e+12" in out


@pytest.mark.parametrize("tsoffset", [2**63 - 1, -(2**63)])
def test_offset_extremes_every_command(tmp_path: Path, tsoffset: int,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """At ±2^63 s a float resolves only 2048 s, so timing-based TCP state may differ
    from the sample's; what must hold is that every command answers and the
    handshake and first messages still decode."""
    path = retimed_sample(tmp_path / "edge.pcapng", tsoffset=tsoffset)
    r = wsanalyze.analyze(path)
    assert (r.connections["handshake"] == "ok").all()
    assert len(r.messages) > 0
    assert (r.violations["rule"] == "capture.bad-timestamp").sum() == len(r.connections)
    for command in COMMANDS:
        for fmt in FORMATS if command != "summary" else ["text"]:
            args = [command, str(path), "-q"]
            if command != "summary":
                args += ["--format", fmt]
            if fmt == "parquet":
                args += ["-o", str(tmp_path / "out.parquet")]
            code, out, err = run_cli(args, capsys)
            assert code == 0, (command, fmt, err)
            if fmt == "jsonl":
                assert all(json.loads(line) for line in out.splitlines())


def test_format_time_never_raises() -> None:
    for ts in (1e300, -1e300, math.nan, math.inf, -math.inf, TS_MAX + 1, 2.0**63):
        assert to_datetime(ts) is None
        assert format_time(ts, "%Y").startswith("epoch ")
    assert format_time(0.0, "%Y-%m-%d") == "1970-01-01"
    assert format_time(None, "%Y") == "-"
    # The last second inside the range still prints as a date.
    assert format_time(TS_MAX, "%Y") == "2262"


def test_bad_timestamp_rule_is_registered() -> None:
    from wsanalyze.rules import RULES

    rule = RULES["capture.bad-timestamp"]
    assert rule.severity == "info"


def test_ts_high_field_is_the_high_word(tmp_path: Path) -> None:
    # Guard the crafted file itself: the EPB carries 0xffffffff in ts_high.
    data = tiny_pcapng(tmp_path / "t.pcapng").read_bytes()
    epb_body = data[-32:]
    assert struct.unpack("<I", epb_body[12:16])[0] == 0xFFFFFFFF
