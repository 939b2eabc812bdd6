"""Where a TCP stream starts: data in the SYN (TCP Fast Open), a SYN not captured, and
the connect RTT measured from the SYN.

TCP Fast Open (RFC 7413): the HTTP Upgrade request travels in the SYN.

The SYN's data occupies sequence numbers ISN+1.. and the SYN/ACK acknowledges
ISN+1+len; it is one connection (tshark agrees: one ``tcp.stream``), its handshake
is seen, and the messages after it decode.  The SYN/ACK and the client ACK are
also shuffled around a retransmitted SYN to check nothing restarts the stream.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze
from tests.pcaptools import (
    OP_CLOSE,
    OP_TEXT,
    TH_ACK,
    TH_FIN,
    TH_SYN,
    Conversation,
    upgrade_request,
    upgrade_response,
    ws_close_payload,
    ws_frame,
    ws_key,
)
from tests.rulecases import Session

CLIENT = ("192.0.2.10", 50712)
SERVER = ("198.51.100.20", 8080)


def _fast_open(path: Path, *, retransmit_syn: bool = False) -> dict[str, int]:
    """Write a Fast Open WebSocket connection; return the packet numbers that matter."""
    conv = Conversation(client=CLIENT, server=SERVER, client_isn=7_000_000)
    key = ws_key(7413)
    request = upgrade_request("tfo.example", "/chat", key)
    syn = conv.segment("c2s", TH_SYN, request, options=conv._syn_options())
    if retransmit_syn:
        conv.segment("c2s", TH_SYN, request, seq=7_000_000, options=conv._syn_options())
    synack = conv.segment("s2c", TH_SYN | TH_ACK, options=conv._syn_options())
    conv.segment("c2s", TH_ACK)
    resp = conv.send("s2c", upgrade_response(key))
    hello = conv.send("s2c", ws_frame(OP_TEXT, b"hello over fast open"))
    hi = conv.send("c2s", ws_frame(OP_TEXT, "héllo".encode(), mask=b"\x01\x02\x03\x04"))
    conv.send("c2s", ws_frame(OP_CLOSE, ws_close_payload(1000, "done"), mask=b"abcd"))
    conv.send("s2c", ws_frame(OP_CLOSE, ws_close_payload(1000, "done")))
    conv.close("s2c")
    conv.write(path)
    assert conv.next_seq("c2s") > 7_000_001 + len(request)  # SYN, request, close, FIN
    return {"syn": syn, "synack": synack, "response": resp[-1], "hello": hello[-1],
            "hi": hi[-1]}


def _tshark_streams(path: Path) -> list[tuple[int, int, int]]:
    """(tcp.stream, tcp.seq relative, tcp.len) per packet, as tshark reads them."""
    tshark = shutil.which("tshark")
    assert tshark, "tshark must be installed (.ci/run installs it)"
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "tcp.stream",
                          "-e", "tcp.seq", "-e", "tcp.len"],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(int(x) for x in line.split("\t")) for line in out.splitlines()]  # type: ignore[misc]


def _check(path: Path, packets: dict[str, int]) -> None:
    tshark = _tshark_streams(path)
    assert {row[0] for row in tshark} == {0}, "tshark sees one TCP stream"
    request_len = len(upgrade_request("tfo.example", "/chat", ws_key(7413)))
    assert tshark[packets["syn"] - 1] == (0, 0, request_len)

    result = wsanalyze.analyze(path)
    conns = result.connections
    assert len(conns) == 1
    conn = conns.iloc[0]
    assert (conn.client, conn.server) == ("192.0.2.10:50712", "198.51.100.20:8080")
    assert conn.handshake == "ok"
    assert conn.path == "/chat" and conn.host == "tfo.example"
    assert conn.end == "close-handshake"
    assert (conn.close_code, conn.close_reason) == (1000, "done")
    msgs = result.messages
    assert list(zip(msgs.direction, msgs.type, msgs.payload, msgs.packet, strict=True)) == [
        ("s2c", "text", b"hello over fast open", packets["hello"]),
        ("c2s", "text", "héllo".encode(), packets["hi"]),
        ("c2s", "close", ws_close_payload(1000, "done"), packets["hi"] + 2),
        ("s2c", "close", ws_close_payload(1000, "done"), packets["hi"] + 4),
    ]
    assert result.violations.empty


def test_request_in_the_syn_is_one_connection(tmp_path: Path) -> None:
    path = tmp_path / "tfo.pcap"
    _check(path, _fast_open(path))


def test_retransmitted_fast_open_syn_is_not_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "tfo-retransmit.pcap"
    _check(path, _fast_open(path, retransmit_syn=True))


def test_syn_not_captured_starts_the_stream_at_the_synack_ack(tmp_path: Path) -> None:
    """The SYN/ACK acknowledges ISN+1 (RFC 9293 §3.4): the client's first byte is the
    one at that sequence number, so the Upgrade request is read whole."""
    s = Session()
    s.upgrade()
    hello = s.text("c2s", b"hello")
    s.close()
    del s.conv.frames[0]  # the SYN; every packet number below moves down by one
    path = tmp_path / "no-syn.pcap"
    s.conv.write(path)
    result = wsanalyze.analyze(path)
    conn = result.connections.iloc[0]
    assert (conn.handshake, conn.host, conn.path) == ("ok", "stream.example", "/feed?v=2")
    assert conn.client == "192.0.2.10:50712"
    assert pd.isna(conn.tcp_connect_rtt)  # no SYN, no connect time
    assert list(zip(result.messages.type, result.messages.payload, result.messages.packet,
                    strict=True)) == [("text", b"hello", hello.last - 1),
                                      ("close", ws_close_payload(1000, "bye"), hello.last + 1),
                                      ("close", ws_close_payload(1000, "bye"), hello.last + 3)]
    assert result.violations.empty


def test_connect_rtt_is_syn_to_the_ack_completing_the_handshake(tmp_path: Path) -> None:
    """tcp_connect_rtt: SYN at t0, SYN/ACK at t0+25 ms, ACK at t0+50 ms -> 0.050 s; the
    WebSocket handshake takes 3 ms (request's last byte -> response's last byte)."""
    conv = Conversation(client=CLIENT, server=SERVER)
    conv.handshake(dt=0.025)
    key = ws_key(9)
    conv.send("c2s", upgrade_request("rtt.example", "/", key), dt=0.001)
    conv.wait(0.001)
    conv.send("s2c", upgrade_response(key), dt=0.001)
    conv.close("c2s")
    path = tmp_path / "rtt.pcap"
    conv.write(path)
    conn = wsanalyze.analyze(path).connections.iloc[0]
    # Durations are timedelta64 in DataFrames.
    assert conn.tcp_connect_rtt.total_seconds() == pytest.approx(0.050, abs=1e-6)
    assert conn.handshake_rtt.total_seconds() == pytest.approx(0.003, abs=1e-6)


@pytest.mark.parametrize("reordered", [False, True], ids=["in-order", "fin-first"])
def test_fin_carrying_the_close_frame(tmp_path: Path, reordered: bool) -> None:
    """The server's last segment carries its Close frame and the FIN (the FIN's sequence
    number follows the data, RFC 9293 §3.4); captured before the segment ahead of it,
    the data in between must still be read."""
    s = Session()
    s.upgrade()
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1001, "leaving")))
    tick = s.frame("s2c", OP_TEXT, b'{"tick": 99}' * 20)
    close = s.frame("s2c", OP_CLOSE, ws_close_payload(1001, "leaving"))
    data = s.conv.segment("s2c", TH_ACK, tick)
    fin = s.conv.segment("s2c", TH_FIN | TH_ACK, close)
    s.conv.segment("c2s", TH_FIN | TH_ACK)
    s.conv.segment("s2c", TH_ACK)
    if reordered:
        frames = s.conv.frames
        frames[data - 1], frames[fin - 1] = frames[fin - 1], frames[data - 1]
    path = tmp_path / "fin-data.pcap"
    s.conv.write(path)
    tshark = _tshark_streams(path)
    assert {row[0] for row in tshark} == {0}
    result = wsanalyze.analyze(path)
    msgs = result.messages
    last = data if reordered else fin  # the packet holding the FIN segment
    assert list(zip(msgs.direction, msgs.type, msgs.payload, msgs.packet, strict=True)) == [
        ("c2s", "close", ws_close_payload(1001, "leaving"), data - 2),
        ("s2c", "text", b'{"tick": 99}' * 20, data if not reordered else fin),
        ("s2c", "close", ws_close_payload(1001, "leaving"), last),
    ]
    conn = result.connections.iloc[0]
    assert (conn.end, conn.bytes_s2c) == ("close-handshake", len(tick) + len(close))
    assert result.violations.empty
