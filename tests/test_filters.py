"""Record filters: for every flag, the filtered CLI output equals the unfiltered
output filtered here in Python (independent predicates over the JSONL rows)."""

from __future__ import annotations

import argparse
import base64
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import dpkt
import pytest

from tests import pcaptools as pt
from tests import rulecases
from wsanalyze.cli import main
from wsanalyze.filters import parse_time_bound
from wsanalyze.where import Expression, WhereError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAGMENTS = SAMPLES / "node-ws-fragments.pcap"
DEFLATE = SAMPLES / "websockets-deflate.pcap"
MIXED = SAMPLES / "mixed.pcapng"
Row = dict[str, Any]


@pytest.fixture(scope="module")
def violating(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture with error and info rows of three rules (a bad length, then resync)."""
    path = tmp_path_factory.mktemp("filters") / "length-msb.pcap"
    rulecases.CASES["frame.length-msb"]().write(path)
    return path


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("filters") / "cut.pcap"
    pt.cut_start(FRAGMENTS, path, 30)
    return path


def jsonl(capsys: pytest.CaptureFixture[str], *argv: str) -> list[Row]:
    assert main([*argv, "-F", "jsonl"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return [json.loads(line) for line in captured.out.splitlines()]


@cache
def _first_ts(path: Path) -> float:
    with open(path, "rb") as f:
        reader = dpkt.pcapng.Reader(f) if path.suffix == ".pcapng" else dpkt.pcap.Reader(f)
        for ts, _ in reader:
            return float(ts)
    raise AssertionError("empty capture")


def _payload(r: Row) -> bytes:
    return base64.b64decode(r["payload_b64"])


def _type(r: Row) -> str:
    if "opcode" in r:
        return {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping",
                10: "pong"}.get(r["opcode"], f"opcode-0x{r['opcode']:x}")
    return str(r["type"])


Case = tuple[str, Path, list[str], Callable[[Row], bool]]
T0 = _first_ts(FRAGMENTS)
CASES: list[Case] = [
    ("messages", FRAGMENTS, ["--connection", "1"], lambda r: r["connection"] == 1),
    ("messages", DEFLATE, ["--connection", "0,2"], lambda r: r["connection"] in (0, 2)),
    ("frames", DEFLATE, ["--conn", "2"], lambda r: r["connection"] == 2),
    ("connections", DEFLATE, ["--connection", "1"], lambda r: r["connection"] == 1),
    ("messages", FRAGMENTS, ["--direction", "s2c"], lambda r: r["direction"] == "s2c"),
    ("frames", FRAGMENTS, ["--direction", "c2s"], lambda r: r["direction"] == "c2s"),
    ("messages", FRAGMENTS, ["--type", "ping,pong"], lambda r: r["type"] in ("ping", "pong")),
    ("frames", FRAGMENTS, ["--type", "continuation"], lambda r: r["opcode"] == 0),
    ("frames", DEFLATE, ["--type", "binary,close"], lambda r: _type(r) in ("binary", "close")),
    ("messages", FRAGMENTS, ["--grep", r'"seq":[12],'],
     lambda r: r["text"] is not None and re.search(r'"seq":[12],', r["text"]) is not None),
    ("messages", FRAGMENTS, ["--grep", "^1122e7"],
     lambda r: r["text"] is None and _payload(r).hex().startswith("1122e7")),
    ("messages", FRAGMENTS, ["--grep", "ü"], lambda r: "ü" in (r["text"] or "")),
    ("connections", MIXED, ["--grep", "admin"], lambda r: "admin" in (r["path"] or "")),
    ("messages", FRAGMENTS, ["--since", "0.01", "--until", "0.015"],
     lambda r: T0 + 0.01 <= r["ts"] <= T0 + 0.015),
    ("messages", FRAGMENTS, ["--since", repr(T0 + 0.012)], lambda r: r["ts"] >= T0 + 0.012),
    ("frames", FRAGMENTS, ["--until", "0.005"], lambda r: r["ts"] <= T0 + 0.005),
    ("connections", FRAGMENTS, ["--since", "0.012"], lambda r: r["ts_end"] >= T0 + 0.012),
    ("messages", FRAGMENTS, ["--min-length", "2000"], lambda r: r["length"] >= 2000),
    ("frames", FRAGMENTS, ["--min-length", "1500"], lambda r: r["payload_length"] >= 1500),
    ("messages", DEFLATE, ["--where", "length > 1000 and compressed"],
     lambda r: r["length"] > 1000 and r["compressed"]),
    ("messages", DEFLATE, ["--where", "type == 'close' and close_code in (1000, 1001)"],
     lambda r: r["type"] == "close" and r["close_code"] in (1000, 1001)),
    ("messages", FRAGMENTS, ["--where", "'user' in text and len(text) < 3500"],
     lambda r: r["text"] is not None and "user" in r["text"] and len(r["text"]) < 3500),
    ("connections", DEFLATE, ["--where", "bytes_c2s + bytes_s2c > 17500 or not deflate"],
     lambda r: r["bytes_c2s"] + r["bytes_s2c"] > 17500 or not r["deflate"]),
    ("messages", FRAGMENTS, ["--connection", "0", "--direction", "c2s", "--type", "text"],
     lambda r: r["connection"] == 0 and r["direction"] == "c2s" and r["type"] == "text"),
]


@pytest.mark.parametrize(("command", "capture", "flags", "predicate"), CASES,
                         ids=[f"{c[0]}{' '.join(c[2])}" for c in CASES])
def test_filter_equals_python(command: str, capture: Path, flags: list[str],
                              predicate: Callable[[Row], bool],
                              capsys: pytest.CaptureFixture[str]) -> None:
    everything = jsonl(capsys, command, str(capture))
    expected = [r for r in everything if predicate(r)]
    assert 0 < len(expected) < len(everything), "the case must keep some rows, not all"
    assert jsonl(capsys, command, str(capture), *flags) == expected


@pytest.mark.parametrize(("flags", "predicate"), [
    (["--rule", "frame.length-msb"], lambda r: r["rule"] == "frame.length-msb"),
    (["--rule", "frame.un*,frame.length-msb"],
     lambda r: r["rule"] in ("frame.unparseable", "frame.length-msb")),
    (["--severity", "info"], lambda r: r["severity"] == "info"),
    (["--grep", "resynchron"], lambda r: "resynchron" in r["rule"] + r["message"]),
    (["--where", "severity == 'error' and packet > 0"],
     lambda r: r["severity"] == "error" and r["packet"] > 0),
])
def test_violation_filters(flags: list[str], predicate: Callable[[Row], bool],
                           violating: Path, capsys: pytest.CaptureFixture[str]) -> None:
    everything = jsonl(capsys, "violations", str(violating))
    assert {r["severity"] for r in everything} == {"error", "info"}
    expected = [r for r in everything if predicate(r)]
    assert 0 < len(expected) < len(everything)
    assert jsonl(capsys, "violations", str(violating), *flags) == expected


def test_direction_on_violations_and_rows_without_one(cut: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    everything = jsonl(capsys, "violations", str(cut))
    assert [r["direction"] for r in everything] == ["s2c", "c2s"]
    assert jsonl(capsys, "violations", str(cut), "--direction", "c2s") == everything[1:]


def test_filters_do_not_change_file_formats(capsys: pytest.CaptureFixture[str]) -> None:
    # The same rows in CSV: header plus the kept rows.
    assert main(["messages", str(FRAGMENTS), "-F", "csv", "--type", "pong"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pongs = [r for r in jsonl(capsys, "messages", str(FRAGMENTS)) if r["type"] == "pong"]
    assert len(pongs) > 0 and len(lines) == 1 + len(pongs)
    assert all(",pong," in line for line in lines[1:])


@pytest.mark.parametrize(("argv", "message"), [
    (["connections", "--type", "text"], "--type does not apply to the connections table"),
    (["frames", "--grep", "x"], "--grep does not apply to the frames table"),
    (["messages", "--severity", "error"], "--severity does not apply to the messages table"),
    (["messages", "--where", "rule == 'x'"], "has no column rule"),
    (["messages", "--where", "__import__('os').system('true')"], "is not allowed"),
    (["messages", "--type", "texty"], "choose from text, binary"),
    (["messages", "--grep", "("], "is not a regular expression"),
    (["messages", "--since", "yesterday"], "is not a time"),
    (["messages", "--connection", "0", "--stream", "1"], "not allowed with argument"),
])
def test_filter_usage_errors(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([argv[0], str(FRAGMENTS), *argv[1:]])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and f"usage: wsanalyze {argv[0]}" in err


def test_summary_takes_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(DEFLATE)]) == 0
    assert "3 WebSocket connection(s)" in capsys.readouterr().out
    assert main(["summary", str(DEFLATE), "--connection", "1"]) == 0
    assert "1 WebSocket connection(s)" in capsys.readouterr().out


def test_time_bounds_parse() -> None:
    assert parse_time_bound("2.5").offset == 2.5
    assert parse_time_bound("1700000000.25").epoch == 1700000000.25
    assert parse_time_bound("14:03:07.25").clock == (14, 3, 7, 250000)
    start = datetime(2026, 12, 2, 9, 0, 0).timestamp()
    # A time of day is on the day of the capture's first packet, local time.
    assert parse_time_bound("14:03:07.25").resolve(start, utc=False) == \
        datetime(2026, 12, 2, 14, 3, 7, 250000).timestamp()
    assert parse_time_bound("2026-12-02T14:03:07Z").resolve(None, utc=False) == \
        datetime.fromisoformat("2026-12-02T14:03:07+00:00").timestamp()
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time_bound("25:00")


def test_where_is_not_eval() -> None:
    for text in ("open('x')", "text.upper()", "().__class__", "[x for x in y]",
                 "lambda: 1", "a[0]", "b'x' == payload"):
        with pytest.raises(WhereError):
            Expression(text)
    e = Expression("close_code != 1000 and length >= 2 or null_column is None")
    assert e.names == {"close_code", "length", "null_column"}
    assert e.matches({"close_code": 1002, "length": 2})
    assert not e.matches({"close_code": 1000, "length": 2, "null_column": 3})
    # Comparisons with a missing value are false, not errors.
    assert not Expression("close_code > 1000").matches({"close_code": None})
    assert not Expression("length / 0 > 1").matches({"length": 5})
