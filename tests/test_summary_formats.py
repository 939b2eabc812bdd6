"""``wsanalyze summary``: the JSON document (docs/summary-json.md), Markdown, text that
scales to many connections and fits the terminal, and ``--fail-on`` exit codes on
summary, violations and report."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.reportcaptures import many_connections, rule_case
from wsanalyze.cli import main
from wsanalyze.rules import RULES

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
DEFLATE = SAMPLES / "websockets-deflate.pcap"
CHECKS = [r for r in RULES.values() if r.severity != "info"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def run_on_terminal(*args: str, columns: int) -> str:
    """What the command prints on a terminal ``columns`` wide (a pseudo-terminal)."""
    main_fd, sub_fd = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "wsanalyze", *args], stdout=sub_fd,
                            stderr=subprocess.DEVNULL, env=env)
    os.close(sub_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def summary_json(path: Path, tmp_path: Path) -> dict:
    out = tmp_path / "s.json"
    assert main(["summary", str(path), "--format", "json", "-o", str(out), "-q"]) == 0
    return json.loads(out.read_text())


def test_json_shape_against_the_truth(tmp_path: Path) -> None:
    doc = summary_json(DEFLATE, tmp_path)
    truth = [json.loads(line) for line in
             (SAMPLES / "websockets-deflate.truth.jsonl").read_text().splitlines()]
    meta = json.loads((SAMPLES / "websockets-deflate.meta.json").read_text())
    sent = Counter(t["client_port"] for t in truth
                   if t["direction"] == "c2s" and t["type"] in ("text", "binary"))
    received = Counter(t["client_port"] for t in truth
                       if t["direction"] == "s2c" and t["type"] in ("text", "binary"))
    assert doc["metrics"]["messagesSent"] == sum(sent.values())
    assert doc["metrics"]["messagesReceived"] == sum(received.values())
    assert doc["capture"]["websocketConnections"] == len(meta["connections"])
    assert doc["handshake"]["extensions"] == ["permessage-deflate"]
    assert doc["compliance"] == {
        "rfc6455": True, "checksApplied": len(CHECKS),
        "checksPassed": dict(Counter(r.id.split(".")[0] for r in CHECKS)),
        "checksFailed": {}, "rules": [],
        "bySeverity": {"error": 0, "warning": 0, "info": 0}, "byRule": {}}
    assert 0 < doc["metrics"]["compressionRatio"] < 1
    assert doc["metrics"]["avgLatencyMs"] > 0
    assert doc["metrics"]["pingRttMs"]["count"] == sum(
        1 for t in truth if t["type"] == "ping")
    assert [c["connection"] for c in doc["connections"]] == [0, 1, 2]
    for conn in doc["connections"]:
        port = int(conn["client"].rsplit(":", 1)[1])
        ours = meta["connections"][conn["connection"]]
        assert ours["client_port"] == port
        assert conn["metrics"]["messagesSent"] == sent[port]
        assert conn["metrics"]["messagesReceived"] == received[port]
        hs = conn["handshake"]
        assert hs["protocol"] is None
        assert isinstance(hs["extensions"], list) and len(hs["extensions"]) == 1
        assert hs["extensions"][0].startswith("permessage-deflate")
        assert conn["compliance"]["rfc6455"] is True
        texts = [t for t in truth if t["client_port"] == port and t["type"] == "text"]
        assert conn["metrics"]["messagesByType"]["c2s"]["text"] == sum(
            1 for t in texts if t["direction"] == "c2s")
        inflated = sum(len(base64.b64decode(t["payload_b64"])) for t in truth
                       if t["client_port"] == port and t["type"] in ("text", "binary"))
        assert conn["metrics"]["inflatedBytes"] == inflated


def test_json_compliance_of_a_violating_capture(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case("frame.client-unmasked", capture)
    doc = summary_json(capture, tmp_path)
    for part in (doc["compliance"], doc["connections"][0]["compliance"]):
        assert part["rfc6455"] is False
        assert part["rules"] == ["frame.client-unmasked"]
        assert part["checksFailed"] == {"frame": 1}
        assert part["checksPassed"]["frame"] == sum(
            1 for r in CHECKS if r.id.startswith("frame.")) - 1
    assert doc["compliance"]["byRule"] == {"frame.client-unmasked": {
        "severity": "error", "reference": "RFC 6455 §5.1", "count": 1}}
    assert doc["connections"][0]["client"] == "{}:{}".format(*case.conv.client)


def test_markdown(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    rule_case("frame.non-minimal-length", capture)
    proc = run("summary", str(capture), "--format", "md")
    assert proc.returncode == 0, proc.stderr
    md = proc.stdout
    assert md.startswith(f"### wsanalyze summary: `{capture}`")
    assert "| warning | `frame.non-minimal-length` | 1 | RFC 6455 §5.2 |" in md
    assert "<details><summary>1 connection(s)</summary>" in md


def test_text_scales_to_many_connections(tmp_path: Path) -> None:
    capture = tmp_path / "many.pcap"
    many_connections(capture, 25)
    text = run_on_terminal("summary", str(capture), columns=60)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 60
    # Connection i sent i + 1 messages each way: the top 5 are 24..20.
    assert "top by messages: #24 (50), #23 (48), #22 (46), #21 (44), #20 (42)" in \
        text.replace("\n    ", " ")
    assert "stream.example/feed: 25 conn, 650 msg" in text.replace("\n      ", " ")
    assert not any(line.startswith("connection ") for line in lines)
    assert "(25 connections: add --connections for one block each)" in text
    proc = run("summary", str(capture), "--connections")
    blocks = [line for line in proc.stdout.splitlines() if line.startswith("connection ")]
    assert len(blocks) == 25
    assert max(len(line) for line in proc.stdout.splitlines()) > 60  # a pipe: whole lines


# ------------------------------------------------------------------ --fail-on

LEVELS = ["error", "warning", "info", None]


def _codes(capture: Path, tmp_path: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for command in ("summary", "violations", "report"):
        codes = []
        for level in LEVELS:
            target = tmp_path / ("r.md" if command == "report" else "o.txt")
            args = [command, str(capture), "-o", str(target)]
            if command == "report":
                args += ["--no-plots", "-q"]
            else:
                args += ["-q"]
            if level:
                args += ["--fail-on", level]
            codes.append(main(args))
        out[command] = codes
    return out


@pytest.mark.parametrize(("which", "expected"), [
    ("clean", [0, 0, 0, 0]),
    ("warning", [0, 1, 1, 0]),
    ("error", [1, 1, 1, 0]),
    ("info-only", [0, 0, 1, 0]),
])
def test_fail_on_exit_codes(which: str, expected: list[int], tmp_path: Path) -> None:
    if which == "clean":
        capture = DEFLATE
    else:
        capture = tmp_path / "case.pcap"
        rule_case({"warning": "frame.non-minimal-length", "error": "frame.client-unmasked",
                   "info-only": "handshake.rejected"}[which], capture)
    assert _codes(capture, tmp_path) == {c: expected for c in ("summary", "violations",
                                                                 "report")}


def test_fail_on_usage_and_unreadable(tmp_path: Path) -> None:
    proc = run("summary", str(DEFLATE), "--fail-on", "fatal")
    assert proc.returncode == 2
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"")
    for command in ("summary", "violations"):
        proc = run(command, str(bad), "--fail-on", "error")
        assert proc.returncode == 1
        assert proc.stderr.startswith("wsanalyze: error: ") and proc.stderr.count("\n") == 1


def test_percentiles_are_nearest_rank() -> None:
    from wsanalyze.output.summary import percentiles

    p = percentiles([ms / 1000 for ms in range(100, 0, -1)])  # 1..100 ms, shuffled order
    assert p == {"count": 100, "mean": 50.5, "p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([0.002])["p99"] == 2.0
    assert percentiles([])["mean"] is None


def test_latency_is_measured_on_demand(tmp_path: Path) -> None:
    truth = [json.loads(line) for line in
             (SAMPLES / "websockets-deflate.truth.jsonl").read_text().splitlines()]
    pings = sum(1 for t in truth if t["type"] == "ping")
    fast = run("summary", str(DEFLATE)).stdout
    assert "ping → pong: not measured (--latency measures it)" in fast
    measured = run("summary", str(DEFLATE), "--latency").stdout
    assert re.search(rf"^ping → pong: p50 .* \(n={pings}\)$", measured, re.M)
    assert [line for line in fast.splitlines() if "ping → pong" not in line] == \
        [line for line in measured.splitlines() if "ping → pong" not in line]
    out = tmp_path / "n.json"
    assert main(["summary", str(DEFLATE), "-F", "json", "--no-latency", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["metrics"]["avgLatencyMs"] is None and doc["metrics"]["pingRttMs"] is None


def test_counts_agree_between_decoder_counters_and_message_rows(tmp_path: Path) -> None:
    """The CLI counts from the decoder's counters, the report from message rows."""
    from wsanalyze.report.model import ReportOptions, build

    for capture in (DEFLATE, SAMPLES / "mixed.pcapng", SAMPLES / "node-ws-fragments.pcap"):
        cli = summary_json(capture, tmp_path)
        rows = build(str(capture), ReportOptions(plots=False)).summary
        for key in ("capture", "metrics", "compliance", "handshake", "top", "servers"):
            assert cli[key] == rows[key], (capture.name, key)


def test_filters_choose_connections_and_the_violations_counted(tmp_path: Path) -> None:
    """The shared filters (issue 13) on the summary: a connection left out takes its
    violations with it; --severity/--rule narrow the violations counted; --fail-on
    judges what is left."""
    from tests.pcaptools import write_conversations
    from tests.reportcaptures import WS_T0, clean_session
    from tests.rulecases import CASES

    capture = tmp_path / "two.pcap"
    write_conversations(capture, [clean_session(40001, WS_T0 - 100),
                                  CASES["frame.client-unmasked"]().conv])

    def doc(*extra: str) -> dict:
        out = tmp_path / "s.json"
        assert main(["summary", str(capture), "-o", str(out), "-q", *extra]) == 0
        return json.loads(out.read_text())  # -o FILE.json: the format from the extension

    every = doc()
    assert every["capture"]["websocketConnections"] == 2
    assert every["compliance"]["bySeverity"]["error"] >= 1
    clean = doc("--connection", "0")
    assert clean["capture"]["websocketConnections"] == 1
    assert [c["connection"] for c in clean["connections"]] == [0]
    assert clean["compliance"]["bySeverity"].get("error", 0) == 0
    assert clean["compliance"]["rfc6455"] is True
    assert main(["summary", str(capture), "--connection", "0", "--fail-on", "error",
                 "-q"]) == 0
    assert main(["summary", str(capture), "--connection", "1", "--fail-on", "error",
                 "-q"]) == 1
    infos = doc("--severity", "info")
    assert infos["compliance"]["bySeverity"].get("error", 0) == 0
    assert infos["capture"]["websocketConnections"] == 2
    assert main(["violations", str(capture), "--rule", "frame.client-unmasked", "-F", "csv",
                 "--fail-on", "error", "-q"]) == 1
    assert main(["violations", str(capture), "--connection", "0", "-F", "csv",
                 "--fail-on", "error", "-q"]) == 0
