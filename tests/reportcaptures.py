"""Crafted captures shared by the report, export and summary tests.

Built with :mod:`tests.pcaptools` and :mod:`tests.rulecases`: rule cases written
alone, plain HTTP connections placed before a WebSocket one, and many clean
WebSocket connections for the summary's scaling.
"""

from __future__ import annotations

from pathlib import Path

from tests.pcaptools import OP_TEXT, Conversation, write_conversations
from tests.rulecases import CASES, FrameOracle, RuleCase, Session

WS_T0 = 1_700_000_000.0
"""Default start of a rulecases connection."""


def rule_case(name: str, path: Path) -> RuleCase:
    """Write the rule case ``name`` to ``path`` and return it."""
    case = CASES[name]()
    case.write(path)
    return case


def offending_frame(case: RuleCase) -> bytes:
    """The offending frame's bytes and all that follow in its direction, from what
    the case sent (the oracle's ``clean`` prefix ends just before it)."""
    row = case.rows[0]
    for o in case.oracles:
        if isinstance(o, FrameOracle) and o.sender == row.direction and o.clean is not None:
            return o.data[o.clean:]
    raise AssertionError(f"case {case.name} has no oracle locating its frame")


def plain_http(port: int, t0: float, path: str = "/index.html") -> Conversation:
    """A plain HTTP/1.1 request and response on its own TCP connection."""
    conv = Conversation(client=("192.0.2.10", port), server=("198.51.100.20", 8080), t0=t0)
    conv.handshake()
    conv.send("c2s", f"GET {path} HTTP/1.1\r\nHost: stream.example\r\n\r\n".encode())
    conv.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain"
                     b"\r\n\r\nhello")
    conv.close("c2s")
    return conv


def http_then_websocket(name: str, path: Path) -> tuple[RuleCase, list[list[int]]]:
    """Two plain HTTP connections, then the rule case's WebSocket connection; returns
    the case and the packet renumbering of write_conversations."""
    case = CASES[name]()
    convs = [plain_http(50001, WS_T0 - 20), plain_http(50002, WS_T0 - 10), case.conv]
    return case, write_conversations(path, convs)


def clean_session(port: int, t0: float, messages: int = 2) -> Conversation:
    """A clean WebSocket connection: upgrade, ``messages`` texts each way, close."""
    s = Session(port=port)
    # Session starts its conversation at the default time: start a fresh one at t0.
    s.conv = Conversation(client=s.conv.client, server=s.conv.server, t0=t0)
    s.conv.handshake()
    s.upgrade()
    for i in range(messages):
        s.send("c2s", s.frame("c2s", OP_TEXT, b'{"n": %d}' % i))
        s.send("s2c", s.frame("s2c", OP_TEXT, b'{"ack": %d}' % i))
    s.close()
    return s.conv


def many_connections(path: Path, n: int) -> None:
    """``n`` clean WebSocket connections one after the other, connection i sending
    i + 1 messages each way."""
    write_conversations(path, [clean_session(40000 + i, WS_T0 + 10 * i, i + 1)
                               for i in range(n)])
