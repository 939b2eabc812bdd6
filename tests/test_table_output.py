"""The human table: fits COLUMNS (display width: CJK/emoji count 2), --wide cuts
nothing, violation messages and RFC sections are never cut, -t/-u time display."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wsanalyze.output.timefmt import TimeFormat

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FRAGMENTS = SAMPLES / "node-ws-fragments.pcap"
TABLES = ("connections", "messages", "frames", "violations")


def cells(line: str) -> int:
    """Terminal cells of ``line``, by the Unicode tables (not by wsanalyze's code)."""
    total = 0
    for c in line:
        if unicodedata.combining(c) or c in "\u200b\u200c\u200d\ufe0f":
            continue
        total += 2 if unicodedata.east_asian_width(c) in "WF" else 1
    return total


def run(*args: str, columns: int | None = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def rows(table: str, capture: Path) -> list[dict]:
    return [json.loads(line) for line in run(table, str(capture), "-F", "jsonl").stdout
            .splitlines()]


@pytest.fixture(scope="module")
def violating(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests import rulecases

    path = tmp_path_factory.mktemp("table") / "length-msb.pcap"
    rulecases.CASES["frame.length-msb"]().write(path)
    return path


@pytest.mark.parametrize("width", [80, 100, 200])
@pytest.mark.parametrize("table", TABLES)
def test_lines_fit_the_width(table: str, width: int, violating: Path,
                             wide_chars: Path) -> None:
    for capture in (FRAGMENTS, SAMPLES / "mixed.pcapng", SAMPLES / "ipv6-sll2.pcap",
                    violating, wide_chars):
        lines = run(table, str(capture), columns=width).stdout.splitlines()
        assert lines, capture
        assert max(cells(line) for line in lines) <= width, (capture, width)


@pytest.fixture(scope="module")
def wide_chars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A connection whose text messages are CJK and emoji (two cells per character)."""
    from tests import rulecases

    s = rulecases._open()
    s.text("c2s", ("漢字かな交じり文、中文测试 " * 8).encode())
    s.text("s2c", ("🚀🎉 emoji 😀 " * 10).encode())
    s.close()
    path = tmp_path_factory.mktemp("table") / "cjk.pcap"
    s.conv.write(path)
    return path


@pytest.mark.parametrize("width", [80, 100, 200])
def test_emoji_and_cjk_count_two_cells(width: int, wide_chars: Path) -> None:
    lines = run("messages", str(wide_chars), columns=width).stdout.splitlines()
    wide = [line for line in lines if "漢" in line or "😀" in line]
    assert len(wide) == 2
    for line in wide:
        # Cut by display width: fewer characters than cells, and never past the width.
        assert len(line) < cells(line) <= width
        whole = ("🚀🎉 emoji 😀 " * 10).rstrip()
        assert (cells(line) >= width - 1 and line.endswith("…")) or line.endswith(whole)
    assert max(cells(line) for line in lines) <= width


def test_wide_keeps_whole_text_payloads() -> None:
    text = run("messages", str(FRAGMENTS), "--wide", columns=80).stdout
    for r in rows("messages", FRAGMENTS):
        if r["type"] == "text" and "\n" not in r["text"]:
            assert r["text"].rstrip() in text  # lines carry no trailing blanks
        if r["type"] == "binary" and r["length"]:
            # Binary: the first 64 bytes in hex.
            assert "0x" + base64.b64decode(r["payload_b64"])[:64].hex() in text


def test_pings_show_text_and_frames_opcode_names() -> None:
    out = run("messages", str(FRAGMENTS), "--type", "ping", "--wide").stdout.splitlines()
    pings = [r for r in rows("messages", FRAGMENTS) if r["type"] == "ping"]
    assert len(out) == 1 + len(pings)
    for line, r in zip(out[1:], pings, strict=True):
        assert line.endswith(base64.b64decode(r["payload_b64"]).decode())
    frames = run("frames", str(FRAGMENTS), "--connection", "0").stdout.splitlines()
    header = frames[0].split()
    assert header[:6] == ["conn", "#", "dir", "time", "UTC", "packet"] or \
        header[5] == "packet"
    ops = [line.split()[header.index("opcode") - 1] for line in frames[1:]]
    expected = [{0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
                [r["opcode"]] for r in rows("frames", FRAGMENTS) if r["connection"] == 0]
    assert ops == expected


@pytest.mark.parametrize("width", [80, 200])
def test_violation_messages_and_sections_are_whole(width: int, violating: Path) -> None:
    out = run("violations", str(violating), columns=width).stdout
    flat = " ".join(out.split())  # continuation lines joined back
    full = rows("violations", violating)
    assert len(full) == 3
    for r in full:
        assert r["rule"] in out
        assert " ".join(r["message"].split()) in flat
        assert r["reference"] in out
        assert r["severity"] in out.split()


def test_time_display_modes() -> None:
    msgs = rows("messages", FRAGMENTS)
    first = msgs[0]["ts"]

    def column(*flags: str) -> list[str]:
        lines = run("messages", str(FRAGMENTS), *flags).stdout.splitlines()
        return [line.split()[3] for line in lines[1:]]

    assert column("-t", "e") == [f"{r['ts']:.6f}" for r in msgs]
    assert column("-t", "a", "-u") == [
        datetime.fromtimestamp(r["ts"], UTC).strftime("%H:%M:%S.%f")[:-3] for r in msgs]
    lines = run("messages", str(FRAGMENTS), "-t", "ad", "-u").stdout.splitlines()
    assert lines[0].split()[3:5] == ["time", "UTC"]
    assert [" ".join(line.split()[3:5]) for line in lines[1:]] == [
        datetime.fromtimestamp(r["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        for r in msgs]
    # Relative to the capture's first packet (the SYN, before the first message).
    import dpkt

    with open(FRAGMENTS, "rb") as f:
        t0 = float(next(iter(dpkt.pcap.Reader(f)))[0])
    assert t0 < first
    assert column("-t", "r") == [f"{r['ts'] - t0:.6f}" for r in msgs]
    assert column("-t", "d") == ["0.000000"] + [
        f"{b['ts'] - a['ts']:.6f}" for a, b in itertools.pairwise(msgs)]
    assert first > 1e9


def test_local_time_names_the_zone() -> None:
    env_zone = {**os.environ, "PYTHONPATH": str(ROOT), "TZ": "Asia/Tokyo", "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", "messages", str(FRAGMENTS)],
                          capture_output=True, text=True, timeout=120, env=env_zone)
    lines = proc.stdout.splitlines()
    assert lines[0].split()[3:5] == ["time", "JST"]
    ts = rows("messages", FRAGMENTS)[0]["ts"]
    from zoneinfo import ZoneInfo

    assert lines[1].split()[3] == \
        datetime.fromtimestamp(ts, ZoneInfo("Asia/Tokyo")).strftime("%H:%M:%S.%f")[:-3]


@pytest.mark.parametrize("value", [1e20, -1e20, float("inf"), 253402300800.0])
def test_out_of_range_timestamps_print_the_epoch(value: float) -> None:
    for mode in ("a", "ad"):
        assert TimeFormat(mode, utc=True).format(value) == f"epoch {value:.9g}"
    assert TimeFormat("e").format(1.5) == "1.500000"
    assert TimeFormat("a").format(None) == "-"
