"""TCP Fast Open (RFC 7413): the HTTP Upgrade request travels in the SYN.

The SYN's data occupies sequence numbers ISN+1.. and the SYN/ACK acknowledges
ISN+1+len; it is one connection (tshark agrees: one ``tcp.stream``), its handshake
is seen, and the messages after it decode.  The SYN/ACK and the client ACK are
also shuffled around a retransmitted SYN to check nothing restarts the stream.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import wsanalyze
from tests.pcaptools import (
    OP_CLOSE,
    OP_TEXT,
    TH_ACK,
    TH_SYN,
    Conversation,
    upgrade_request,
    upgrade_response,
    ws_close_payload,
    ws_frame,
    ws_key,
)

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
