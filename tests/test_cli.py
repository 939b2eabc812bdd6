"""The wsanalyze command: formats, exit codes and messages for bad input."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze
from tests.truth import decoded_rows, expected_pongs, port, truth_rows
from wsanalyze.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEFLATE = SAMPLES / "websockets-deflate.pcap"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=120)


def test_jsonl_messages_are_what_was_sent() -> None:
    proc = run("messages", str(DEFLATE), "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    frame = pd.DataFrame({"client": [r["client"] for r in rows],
                          "direction": [r["direction"] for r in rows],
                          "type": [r["type"] for r in rows],
                          "payload": [base64.b64decode(r["payload_b64"]) for r in rows],
                          "complete": [r["complete"] for r in rows],
                          "error": [r["error"] for r in rows]})
    sent, pongs = decoded_rows(frame)
    assert sent == truth_rows(DEFLATE)  # the applications' logs, not the library call
    assert pongs == expected_pongs(DEFLATE)
    assert [r["index"] for r in rows if r["connection"] == 0] == \
        list(range(sum(r["connection"] == 0 for r in rows)))
    assert all(r["truncated"] is False for r in rows)
    assert list(rows[0]) == ["connection", "client", "server", "direction", "index",
                             "ts_start", "ts", "packet", "type", "frames", "compressed",
                             "wire_bytes", "raw_length", "length", "payload_b64", "truncated",
                             "text", "close_code", "close_reason", "complete", "error"]


def test_max_payload_cuts_and_marks_truncated(tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl"
    proc = run("messages", str(DEFLATE), "--format", "jsonl", "--max-payload", "10",
               "-o", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    long_rows = [r for r in rows if r["length"] > 10]
    assert long_rows
    for r in long_rows:
        assert len(base64.b64decode(r["payload_b64"])) == 10 and r["truncated"]
        if r["text"] is not None:
            assert len(r["text"].encode()) <= 10


@pytest.mark.parametrize("table", ["connections", "messages", "frames", "violations"])
def test_every_table_in_every_format(table: str, tmp_path: Path) -> None:
    capture = SAMPLES / "mixed.pcapng"
    jsonl = run(table, str(capture), "--format", "jsonl")
    csv_out = run(table, str(capture), "--format", "csv")
    pq = tmp_path / "t.parquet"
    parquet = run(table, str(capture), "--format", "parquet", "-o", str(pq))
    text = run(table, str(capture))
    for proc in (jsonl, csv_out, parquet, text):
        assert proc.returncode == 0, proc.stderr
    n = len(jsonl.stdout.splitlines())
    assert n > 0
    assert len(csv_out.stdout.splitlines()) == n + 1
    assert len(pd.read_parquet(pq)) == n
    lines = text.stdout.splitlines()
    # A violation's message wraps onto continuation lines (blank connection cell).
    assert len([line for line in lines if line[:4].strip()]) == n + 1
    assert max(len(line) for line in lines) <= 100


def test_summary_names_connections_and_compression() -> None:
    proc = run("summary", str(DEFLATE))
    assert proc.returncode == 0
    assert "WebSocket connection(s)" in proc.stdout
    assert "permessage-deflate" in proc.stdout and "ratio" in proc.stdout
    assert "violations: 0 error, 0 warning" in proc.stdout


@pytest.mark.parametrize(("content", "expect"), [
    (b"", "empty"),
    (b"this is not a capture at all, just text\n" * 3, "not a pcap or pcapng"),
    (bytes(range(256)), "not a pcap or pcapng"),
])
def test_bad_files_give_one_line(content: bytes, expect: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    proc = run("summary", str(path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert expect in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["summary", "messages", "violations"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_header_without_a_readable_packet_is_an_error(command: str, jobs: str,
                                                      tmp_path: Path) -> None:
    header = DEFLATE.read_bytes()[:24]
    # The first record claims 4 GiB of captured bytes: nothing can be read.
    record = (1).to_bytes(4, "little") * 2 + (0xFFFFFFF0).to_bytes(4, "little") \
        + (60).to_bytes(4, "little") + bytes(60)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(header + record)
    proc = run(command, str(bad), "--jobs", jobs)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"wsanalyze: error: {bad}: capture corrupt: packet 1 at byte offset 24 claims "
        "4294967280 captured bytes, more than the 262144-byte maximum; no packet was read"]
    # A capture with no packets at all is not an error.
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(header)
    proc = run(command, str(empty), "--jobs", jobs)
    assert proc.returncode == 0 and proc.stderr == ""


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for target in (tmp_path / "nope.pcap", tmp_path):
        proc = run("messages", str(target))
        assert proc.returncode == 1
        assert len(proc.stderr.strip().splitlines()) == 1
        assert str(target) in proc.stderr


def test_truncated_file_keeps_what_came_before(tmp_path: Path) -> None:
    data = DEFLATE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    sent = truth_rows(DEFLATE)
    proc = run("messages", str(cut), "--format", "jsonl")
    assert proc.returncode == 0
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert 0 < len(rows) < sum(map(len, sent.values()))
    # Every message completed before the cut is there, byte for byte, in send order.
    position: dict[tuple[int, str], int] = {}
    for row in rows:
        if row["type"] == "pong":
            continue
        key = (port(row["client"]), row["direction"])
        i = position[key] = position.get(key, -1) + 1
        if row["complete"]:
            assert (row["type"], base64.b64decode(row["payload_b64"])) == sent[key][i]
    warning = proc.stderr.strip().splitlines()
    assert len(warning) == 1 and "warning" in warning[0] and "packet" in warning[0]
    assert "offset" in warning[0]


def test_gzip_capture_opens_transparently(tmp_path: Path) -> None:
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress(DEFLATE.read_bytes()))
    rows, pongs = decoded_rows(wsanalyze.analyze(gz).messages)
    assert rows == truth_rows(DEFLATE)
    assert pongs == expected_pongs(DEFLATE)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["messages", str(DEFLATE), "--format", "xml"])
    assert exc.value.code == 2
    assert main(["messages", str(DEFLATE), "--format", "parquet"]) == 2
    assert "needs -o" in capsys.readouterr().err


def test_rules_lists_the_catalog() -> None:
    proc = run("rules", "--format", "jsonl")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    ids = {r["id"] for r in rows}
    assert {"frame.client-unmasked", "deflate.window-bits-exceeded", "capture.gap"} <= ids
    assert all(r["reference"].startswith(("RFC", "pcap", "wsanalyze")) for r in rows)


def test_help_teaches() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("summary", "messages", "violations", "examples", "--format jsonl"):
        assert word in proc.stdout
    sub = run("messages", "--help")
    assert "--max-payload" in sub.stdout and "parquet" in sub.stdout


@pytest.mark.parametrize("table", ["messages", "frames", "violations", "connections"])
def test_jobs_give_identical_output(table: str, tmp_path: Path) -> None:
    # Several connections, a gap and a mid-stream start: every ordering rule is used.
    from tests import pcaptools as pt

    capture = tmp_path / "mixed.pcap"
    pt.to_pcap(SAMPLES / "mixed.pcapng", capture)
    cut = tmp_path / "cut.pcap"
    pt.cut_start(SAMPLES / "node-ws-fragments.pcap", cut, 30)
    for path in (capture, cut, DEFLATE, SAMPLES / "aiohttp-plain.pcap"):
        one = run(table, str(path), "--format", "jsonl")
        for jobs in ("2", "3"):
            many = run(table, str(path), "--format", "jsonl", "--jobs", jobs)
            assert many.returncode == 0, many.stderr
            assert many.stdout == one.stdout
        # Clean samples have no violation rows; the cut one has mid-stream rows.
        assert one.stdout or (table == "violations" and path != cut)


def test_jobs_summary_identical() -> None:
    one = run("summary", str(DEFLATE))
    two = run("summary", str(DEFLATE), "-j", "2")
    assert one.stdout == two.stdout and "3 WebSocket connection(s)" in one.stdout
