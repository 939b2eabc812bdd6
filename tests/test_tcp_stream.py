"""``connections.tcp_stream`` equals Wireshark's ``tcp.stream`` (tshark as oracle).

Wireshark numbers every TCP conversation of the capture, WebSocket or not, so a
capture with plain HTTP, a stray segment and a reused port before and between the
WebSocket connections shifts the numbers; wsanalyze must count the same way,
with one process and with ``--jobs 2`` (workers count before sharding).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pcaptools import OP_CLOSE, OP_TEXT, Conversation, write_conversations, ws_frame

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))
MASK = b"\x01\x02\x03\x04"


def tshark_streams(path: Path) -> dict[tuple[str, int, str, int], set[int]]:
    """(src, sport, dst, dport) of each TCP packet → the tcp.stream values tshark gives."""
    out = subprocess.run(
        ["tshark", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "tcp",
         "-T", "fields", "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e",
         "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport"],
        capture_output=True, text=True, check=True).stdout
    streams: dict[tuple[str, int, str, int], set[int]] = {}
    for line in out.splitlines():
        stream, src4, src6, sport, dst4, dst6, dport = line.split("\t")
        key = (src4 or src6, int(sport), dst4 or dst6, int(dport))
        streams.setdefault(key, set()).add(int(stream))
    return streams


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def wsanalyze_connections(path: Path, *extra: str) -> list[dict[str, object]]:
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", "connections", str(path),
                           "-F", "jsonl", "-q", *extra], capture_output=True, text=True,
                          check=True)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def check_against_tshark(path: Path, *extra: str) -> list[int]:
    streams = tshark_streams(path)
    rows = wsanalyze_connections(path, *extra)
    assert rows
    for row in rows:
        client, server = _endpoint(str(row["client"])), _endpoint(str(row["server"]))
        want = streams[(*client, *server)]
        assert row["tcp_stream"] in want, (row["client"], row["tcp_stream"], want)
    return [int(str(r["tcp_stream"])) for r in rows]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_agree_with_tshark(path: Path) -> None:
    check_against_tshark(path)


def _ws(port: int, t0: float, text: bytes, isn: int = 1000) -> Conversation:
    c = Conversation(client=("10.0.0.1", port), server=("10.0.0.2", 8765), t0=t0,
                     client_isn=isn)
    c.handshake()
    c.ws_upgrade()
    c.send("c2s", ws_frame(OP_TEXT, text, mask=MASK))
    c.send("s2c", ws_frame(OP_TEXT, text))
    c.send("c2s", ws_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
    c.send("s2c", ws_frame(OP_CLOSE, b"\x03\xe8"))
    c.close()
    return c


def _http(port: int, t0: float) -> Conversation:
    c = Conversation(client=("10.0.0.1", port), server=("10.0.0.3", 80), t0=t0)
    c.handshake()
    c.send("c2s", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    c.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    c.close()
    return c


def mixed_capture(path: Path) -> None:
    """Plain HTTP before and between WebSocket connections, a stray segment of a
    conversation whose start was not captured, and a port reused after FIN."""
    stray = Conversation(client=("10.0.0.9", 4444), server=("10.0.0.2", 9999), t0=99.0)
    stray.send("c2s", b"mid-stream bytes")
    convs = [
        _http(40000, 100.0),
        stray,
        _ws(40001, 101.0, b"first"),
        _http(40002, 102.0),
        _http(40003, 102.5),
        _ws(40004, 103.0, b"second"),
        # The first one's 4-tuple again, after its FIN, with a new initial sequence number.
        _ws(40001, 110.0, b"port reused after FIN", isn=3_000_000),
    ]
    write_conversations(path, convs)


def test_other_tcp_traffic_shifts_the_numbers_as_in_wireshark(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    mixed_capture(path)
    one = check_against_tshark(path)
    # Streams: 0 stray, 1 http, 2 ws, 3-4 http, 5 ws, 6 ws again on a reused port.
    assert one == [2, 5, 6]
    assert check_against_tshark(path, "--jobs", "2") == one


def test_stream_filter_selects_one_connection(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    mixed_capture(path)
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", "messages", str(path), "-F",
                           "jsonl", "-q", "--stream", "5"], capture_output=True, text=True,
                          check=True)
    texts = [json.loads(line)["text"] for line in proc.stdout.splitlines()]
    assert texts == ["second", "second", None, None]
