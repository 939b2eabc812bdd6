"""The samples' metadata, asserted connection by connection.

``samples/<name>.meta.json`` was written by tools/make_samples.py from what the
peers negotiated and sent: per connection the path, the 101's extensions verbatim,
the subprotocol, the messages of each type per direction and the number of WebSocket
frames.  Every ping the applications sent (``*.truth.jsonl``) must be answered by
exactly one pong from the other side echoing it (RFC 6455 §5.5.3; the peers are
conforming libraries), and every pong must answer a ping.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import wsanalyze

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))
OTHER = {"c2s": "s2c", "s2c": "c2s"}


def _stem(capture: Path) -> str:
    return capture.name.rsplit(".", 1)[0]


def _meta(capture: Path) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{_stem(capture)}.meta.json").read_text())


def _truth(capture: Path) -> list[dict[str, Any]]:
    text = (SAMPLES / f"{_stem(capture)}.truth.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture(scope="module", params=CAPTURES, ids=lambda p: p.name)
def sample(request: pytest.FixtureRequest) -> tuple[Path, wsanalyze.AnalysisResult]:
    return request.param, wsanalyze.analyze(request.param)


def test_connection_metadata(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    meta = _meta(capture)
    conns = result.connections
    ok = conns[conns["handshake"] == "ok"]
    assert len(ok) == meta["number_of_connections"] == len(meta["connections"])
    by_port = {_port(c): row for c, row in zip(ok["client"], ok.itertuples(), strict=True)}
    for want in meta["connections"]:
        row = by_port[want["client_port"]]
        assert _port(row.server) == meta["server"]["port"]
        assert row.path.split("?")[0] == want["path"]
        # Missing strings are pd.NA in the typed DataFrames.
        assert (None if pd.isna(row.extensions) else row.extensions) == want["extensions"]
        assert (None if pd.isna(row.subprotocol) else row.subprotocol) == want["subprotocol"]
        assert row.deflate is (want["extensions"] is not None
                               and want["extensions"].startswith("permessage-deflate"))
        counts = want["truth_counts"]
        assert row.messages_c2s == sum(n for t, n in counts["c2s"].items()
                                       if t in ("text", "binary"))
        assert row.messages_s2c == sum(n for t, n in counts["s2c"].items()
                                       if t in ("text", "binary"))


def test_message_types_and_frames_per_connection(
        sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    msgs, frames = result.messages, result.frames
    for want in _meta(capture)["connections"]:
        port = want["client_port"]
        mine = msgs[msgs["client"].map(_port) == port]
        got = Counter(zip(mine["direction"], mine["type"], strict=True))
        expected: Counter[tuple[str, str]] = Counter()
        for direction, types in want["truth_counts"].items():
            for kind, n in types.items():
                expected[(direction, kind)] += n
                if kind == "ping":  # answered by the peer
                    expected[(OTHER[direction], "pong")] += n
        assert got == expected, port
        assert int((frames["client"].map(_port) == port).sum()) == want["expected_ws_frames"]


def test_every_ping_has_its_pong(sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    capture, result = sample
    msgs = result.messages
    pings: Counter[tuple[int, str, bytes]] = Counter()
    for row in _truth(capture):
        if row["type"] == "ping":
            pings[(row["client_port"], row["direction"], base64.b64decode(row["payload_b64"]))] \
                += 1
    assert pings, "every sample pings"
    seen_pings: Counter[tuple[int, str, bytes]] = Counter()
    pongs: Counter[tuple[int, str, bytes]] = Counter()
    for row in msgs[msgs["type"].isin(["ping", "pong"])].itertuples():
        key = (_port(row.client), row.direction, row.payload)
        if row.type == "ping":
            seen_pings[key] += 1
        else:
            pongs[(key[0], OTHER[row.direction], row.payload)] += 1
    assert seen_pings == pings
    assert pongs == pings


def _first_closes(capture: Path, server_port: int) -> dict[int, str]:
    """client port -> direction of the connection's first Close frame, as tshark reads it."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark must be installed (.ci/run installs it)"
    out = subprocess.run([tshark, "-r", str(capture), "-Y", "websocket.opcode == 8", "-T",
                          "fields", "-e", "tcp.srcport", "-e", "tcp.dstport"],
                         capture_output=True, text=True, check=True).stdout
    first: dict[int, str] = {}
    for line in out.splitlines():
        src, dst = (int(x) for x in line.split("\t"))
        client, direction = (dst, "s2c") if src == server_port else (src, "c2s")
        first.setdefault(client, direction)
    return first


def test_close_code_and_reason_per_connection(
        sample: tuple[Path, wsanalyze.AnalysisResult]) -> None:
    """The connection's close_code/close_reason come from its first Close frame (which
    side sent it: tshark; what it said: the sender's log)."""
    capture, result = sample
    meta = _meta(capture)
    first = _first_closes(capture, meta["server"]["port"])
    assert sorted(first) == sorted(c["client_port"] for c in meta["connections"])
    said = {(row["client_port"], row["direction"]): (row["close_code"], row["close_reason"])
            for row in _truth(capture) if row["type"] == "close"}
    conns = result.connections
    for port, direction in first.items():
        row = conns[conns["client"].map(_port) == port].iloc[0]
        code, reason = said[(port, direction)]
        assert (int(row.close_code), row.close_reason or "") == (code, reason or "")
