"""Message completion (websocket/messages.py) and the Ping→Pong rule (websocket/pings.py)."""

from __future__ import annotations

from tests.pcaptools import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    upgrade_request,
    upgrade_response,
    ws_close_payload,
    ws_frame,
    ws_key,
)
from wsanalyze import rules as R
from wsanalyze.websocket.decoder import ConnectionDecoder
from wsanalyze.websocket.events import DecoderEvent, MessageEvent, ViolationEvent
from wsanalyze.websocket.pings import PingLedger

MASK = b"\x01\x02\x03\x04"


def test_ledger_answers_the_latest_ping_and_older_ones() -> None:
    ledger: PingLedger[str] = PingLedger()
    for name in ("A", "B", "C"):
        ledger.add(name.encode(), f"ping {name}")
    assert ledger.answer(b"B") == ["ping A", "ping B"]
    assert list(ledger) == ["ping C"]
    assert ledger.answer(b"zzz") is None  # unsolicited: answers nothing
    assert len(ledger) == 1
    ledger.add(b"C", "ping C again")
    assert ledger.answer(b"C") == ["ping C", "ping C again"]
    assert len(ledger) == 0


class Conn:
    """A decoder past a valid handshake; ``send`` feeds one direction's frame."""

    def __init__(self) -> None:
        key = ws_key(3)
        self.dec = ConnectionDecoder(syn_seen=True)
        self.off = [0, 0]
        self.packet = 0
        self.events: list[DecoderEvent] = []
        self._feed(0, upgrade_request("example.test", "/", key))
        self._feed(1, upgrade_response(key))

    def _feed(self, direction: int, data: bytes) -> int:
        self.packet += 1
        self.events += self.dec.data(float(self.packet), self.packet, direction,
                                     self.off[direction], data)
        self.off[direction] += len(data)
        return self.packet

    def send(self, direction: str, opcode: int, payload: bytes) -> int:
        c2s = direction == "c2s"
        return self._feed(0 if c2s else 1, ws_frame(opcode, payload, mask=MASK if c2s else None))

    def end(self) -> list[tuple[str, str | None, int | None]]:
        self.events += self.dec.end(99.0, 99, "tcp-fin")
        return [(e.rule, e.direction, e.packet) for e in self.events
                if isinstance(e, ViolationEvent)]

    def messages(self) -> list[MessageEvent]:
        return [e for e in self.events if isinstance(e, MessageEvent)]


def close_both(c: Conn, code: int = 1000) -> None:
    c.send("c2s", OP_CLOSE, ws_close_payload(code, "x"))
    c.send("s2c", OP_CLOSE, ws_close_payload(code, "x"))


def test_text_close_and_pong_rows() -> None:
    c = Conn()
    c.send("c2s", OP_TEXT, "ünïcode".encode())
    bad = c.send("s2c", OP_TEXT, b"\xff\xfe")
    c.send("c2s", OP_PING, b"hb")
    c.send("s2c", OP_PONG, b"hb")
    close_both(c, 1001)
    assert c.end() == [(R.TEXT_INVALID_UTF8, "s2c", bad)]
    m = c.messages()
    assert [(e.type, e.text) for e in m[:2]] == [("text", "ünïcode"), ("text", None)]
    assert (m[4].close_code, m[4].close_reason) == (1001, "x")
    assert c.dec.info.end == "close-handshake"


def test_unanswered_ping_mismatch_and_failing_close() -> None:
    c = Conn()
    c.send("c2s", OP_PING, b"one")
    wrong = c.send("s2c", OP_PONG, b"two")  # echoes no Ping: reported only at the end
    close_both(c)
    assert c.end() == [(R.PONG_PAYLOAD_MISMATCH, "s2c", wrong)]

    c = Conn()
    c.send("c2s", OP_PING, b"one")
    c.send("s2c", OP_TEXT, b"busy")
    close_both(c)
    assert c.end() == [(R.PING_UNANSWERED, "s2c", 99)]

    c = Conn()
    c.send("c2s", OP_PING, b"one")
    c.send("s2c", OP_CLOSE, ws_close_payload(1009, "too big"))  # fails the connection
    c.send("c2s", OP_CLOSE, ws_close_payload(1009, ""))
    assert c.end() == []


def test_invalid_close_codes() -> None:
    c = Conn()
    sent = c.send("c2s", OP_CLOSE, ws_close_payload(1005, ""))
    c.send("s2c", OP_CLOSE, ws_close_payload(1000, ""))
    assert c.end() == [(R.CLOSE_INVALID_CODE, "c2s", sent)]
