"""Every bundled sample decodes to exactly what the applications logged sending.

The samples are captures of real implementations over loopback; each
``samples/<name>.truth.jsonl`` was written by the sending applications
(tools/make_samples.py).  Clean traffic between conforming peers: no error or
warning rows.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def _truth(capture: Path) -> list[dict]:
    path = capture.with_name(capture.name.rsplit(".", 1)[0] + ".truth.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def sample(request: pytest.FixtureRequest) -> tuple[Path, wsanalyze.AnalysisResult]:
    return request.param, wsanalyze.analyze(request.param)


def test_there_are_samples() -> None:
    assert len(CAPTURES) >= 6


def test_data_messages_byte_exact(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    expected: dict[tuple[int, str], list[tuple[str, bytes]]] = defaultdict(list)
    for row in _truth(capture):
        if row["type"] in ("text", "binary"):
            expected[(row["client_port"], row["direction"])].append(
                (row["type"], base64.b64decode(row["payload_b64"])))
    got: dict[tuple[int, str], list[tuple[str, bytes]]] = defaultdict(list)
    msgs = result.messages
    for row in msgs[msgs["type"].isin(["text", "binary"])].itertuples():
        got[(_port(row.client), row.direction)].append((row.type, row.payload))
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert len(got[key]) == len(want), key
        assert got[key] == want, key
    assert msgs["complete"].all()
    assert msgs["error"].isna().all()
    text = msgs[msgs["type"] == "text"]
    assert [t.encode() for t in text["text"]] == list(text["payload"])


def test_pings_and_closes(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    msgs = result.messages
    for row in _truth(capture):
        conn = msgs[(msgs["client"].map(_port) == row["client_port"])
                    & (msgs["direction"] == row["direction"])]
        if row["type"] == "ping":
            assert base64.b64decode(row["payload_b64"]) in set(
                conn[conn["type"] == "ping"]["payload"])
        elif row["type"] == "close":
            closes = conn[conn["type"] == "close"]
            assert len(closes) == 1
            assert closes.iloc[0]["close_code"] == row["close_code"]
            assert closes.iloc[0]["close_reason"] == (row["close_reason"] or "")


def test_no_errors_or_warnings(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    _, result = sample
    bad = result.violations[result.violations["severity"].isin(["error", "warning"])]
    assert bad.empty, bad[["rule", "message"]].to_string()
    assert result.warnings == []


def test_connections_match_meta(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    meta = json.loads(capture.with_name(capture.name.rsplit(".", 1)[0] + ".meta.json")
                      .read_text())
    ports = sorted({r["client_port"] for r in _truth(capture)})
    conns = result.connections
    ws = conns[conns["handshake"] == "ok"]
    assert sorted(ws["client"].map(_port)) == ports
    assert list(conns["connection"]) == list(range(len(conns)))
    assert conns["ts_start"].is_monotonic_increasing
    for row in ws.itertuples():
        assert pd.Timedelta(0) <= row.handshake_rtt < pd.Timedelta(seconds=1)
        assert row.end == "close-handshake"
    offered = {c["client_port"]: c["extensions"] for c in meta["connections"]}
    for row in ws.itertuples():
        # From what the peers negotiated (meta), not from the extensions column.
        negotiated = offered[_port(row.client)]
        assert row.deflate is bool(negotiated and negotiated.startswith("permessage-deflate"))
    assert meta["number_of_connections"] >= len(ws)
