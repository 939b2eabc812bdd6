"""The analysis pipeline: packets in, table records out.

:class:`Analyzer` is fed :class:`~wsanalyze.sources.RawPacket` records (by the
offline reader, the live sniffer or a test) and returns records of the four
tables of OUTPUTS.md as plain dicts, in a deterministic order.  It does no I/O.

Connection ids follow the order of each connection's first packet in the
capture; a connection's records are held back only while an earlier connection
is still undecided (it may yet turn out to carry WebSocket), within a bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wsanalyze.rules import ERROR, RULES
from wsanalyze.sources.records import RawPacket
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    Endpoint,
    StreamData,
    StreamGap,
    TcpNote,
)
from wsanalyze.tcp.packet import PacketParser
from wsanalyze.tcp.reassembly import TcpReassembler
from wsanalyze.websocket.decoder import ConnectionDecoder, DecoderLimits
from wsanalyze.websocket.events import (
    FrameEvent,
    MessageEvent,
    ViolationEvent,
    WebSocketDetected,
)

Record = tuple[str, dict[str, Any]]
"""(table name: ``"connection"``, ``"message"``, ``"frame"`` or ``"violation"``, row)."""

TABLES = ("connection", "message", "frame", "violation")
_DIR = "\x00dir\x00"
"""Placeholder for a direction not known yet when a TCP-level row is made."""
_GAP_RULES = {"lost": "capture.gap", "truncated": "capture.truncated", "limit": "capture.limit"}
_HOLD_LIMIT = 50_000
"""Records held back for id ordering before the oldest undecided connection is
given up on (it then gets the next id if it later turns out to be WebSocket)."""


@dataclass(slots=True)
class Options:
    """What to keep and the limits to apply (see README, Limits)."""

    limits: DecoderLimits = field(default_factory=DecoderLimits)
    tables: frozenset[str] = frozenset(TABLES)
    """Tables whose records are produced; the others are skipped (faster)."""
    max_buffered: int = 8 << 20
    """Out-of-order bytes buffered per TCP direction."""
    max_connections: int = 100_000


def format_endpoint(ep: Endpoint) -> str:
    """``ip:port``, IPv6 as ``[addr]:port`` (addresses already in RFC 5952 form)."""
    addr, port = ep
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


class _Conn:
    __slots__ = ("client", "decoder", "dropped", "ended", "held", "id", "initiator",
                 "responder", "server", "tcp", "ts_end", "ts_start", "violations")

    def __init__(self, ev: ConnectionStarted, limits: DecoderLimits, frames: bool) -> None:
        self.tcp = ev.conn
        self.initiator = ev.initiator
        self.responder = ev.responder
        self.ts_start = ev.ts
        self.ts_end = ev.ts
        self.decoder = ConnectionDecoder(syn_seen=ev.syn_seen, limits=limits, frames=frames)
        self.id: int | None = None
        self.held: list[tuple[Any, int | None]] = []
        self.client = ""
        self.server = ""
        self.ended: ConnectionEnded | None = None
        self.violations = 0
        self.dropped = False
        """Taken out of the id order without an id (not WebSocket so far)."""


class Analyzer:
    """Feed packets, get records; call :meth:`finish` at the end of the capture."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.parser = PacketParser()
        self.tcp = TcpReassembler(max_buffered=self.options.max_buffered,
                                  max_connections=self.options.max_connections)
        self._conns: dict[int, _Conn] = {}
        self._order: deque[_Conn] = deque()
        """Connections not yet given an id or ruled out, in order of first packet."""
        self._next_id = 0
        self._held = 0
        self._out: list[Record] = []
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    # ------------------------------------------------------------------ API
    def feed(self, pkt: RawPacket) -> list[Record]:
        self.packets += 1
        if self.first_ts is None:
            self.first_ts = pkt.ts
        self.last_ts = pkt.ts
        seg = self.parser.parse(pkt)
        if seg is None:
            return []
        for ev in self.tcp.feed(pkt.number, pkt.ts, seg):
            self._tcp_event(ev)
        if self._out:
            out = self._out
            self._out = []
            return out
        return []

    def finish(self) -> list[Record]:
        for ev in self.tcp.finish():
            self._tcp_event(ev)
        # Nothing is undecided any more.
        while self._order:
            self._decide_front(force=True)
        out = self._out
        self._out = []
        return out

    def notes(self) -> list[str]:
        """Capture-level remarks (skipped packets) for the user."""
        return self.parser.notes()

    # ------------------------------------------------------------ internals
    def _tcp_event(self, ev: object) -> None:
        if isinstance(ev, StreamData):
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = ev.ts
                self._decoded(conn, conn.decoder.data(ev.ts, ev.packet, ev.direction,
                                                      ev.offset, ev.data))
        elif isinstance(ev, ConnectionStarted):
            conn = _Conn(ev, self.options.limits, "frame" in self.options.tables)
            self._conns[ev.conn] = conn
            self._order.append(conn)
        elif isinstance(ev, StreamGap):
            conn = self._conns.get(ev.conn)
            if conn is not None:
                side_base = None
                rule = _GAP_RULES.get(ev.reason, "capture.gap")
                end = ev.offset + ev.length - 1
                what = {"lost": "were not captured", "truncated": "were cut by the snapshot "
                        "length", "limit": "were dropped (out-of-order buffer limit)"}.get(
                            ev.reason, "were not captured")
                text = (f"{ev.length} bytes of the {_DIR} stream (TCP stream offsets "
                        f"{ev.offset}–{end}) {what}; packet {ev.packet} "
                        f"{'follows the gap' if ev.reason == 'lost' else 'is affected'}")
                self._emit(conn, (ViolationEvent(rule, None, ev.ts, ev.packet, text, None,
                                                 side_base), ev.direction))
                self._decoded(conn, conn.decoder.gap(ev.ts, ev.packet, ev.direction,
                                                     ev.offset, ev.length, ev.reason))
        elif isinstance(ev, ConnectionEnded):
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = max(conn.ts_end, ev.ts)
                conn.ended = ev
                self._decoded(conn, conn.decoder.end(ev.ts, ev.packet, ev.how))
                self._emit(conn, ("connection-end", None))
                self._conns.pop(ev.conn, None)
                self._advance()
        elif isinstance(ev, TcpNote):
            conn = self._conns.get(ev.conn)
            if conn is not None:
                self._emit(conn, (ViolationEvent(ev.rule, None, ev.ts, ev.packet, ev.message),
                                  ev.direction))

    def _decoded(self, conn: _Conn, events: list) -> None:
        for ev in events:
            if isinstance(ev, WebSocketDetected):
                cd = ev.client_direction
                client, server = ((conn.initiator, conn.responder) if cd == 0
                                  else (conn.responder, conn.initiator))
                conn.client = format_endpoint(client)
                conn.server = format_endpoint(server)
                if conn.dropped:
                    # Ruled out earlier, WebSocket after all: it gets the next id now.
                    self._assign(conn)
                else:
                    self._advance()
            else:
                self._emit(conn, (ev, None))
        if self._order and self._order[0] is conn:
            self._advance()

    def _emit(self, conn: _Conn, item: tuple[Any, int | None]) -> None:
        if conn.id is not None:
            self._convert(conn, item)
            return
        conn.held.append(item)
        if conn.dropped:
            return
        self._held += 1
        if self._held > _HOLD_LIMIT:
            while self._held > _HOLD_LIMIT // 2 and self._order:
                self._decide_front(force=True)

    def _advance(self) -> None:
        """Give ids to (or rule out) connections at the front of the order."""
        while self._order and self._decide_front(force=False):
            pass

    def _decide_front(self, *, force: bool) -> bool:
        conn = self._order[0]
        dec = conn.decoder
        if dec.is_websocket and dec.info.client_direction is not None:
            self._order.popleft()
            self._assign(conn)
            return True
        if force or conn.ended is not None or dec.not_websocket or dec.likely_plain_http:
            self._order.popleft()
            if dec.is_websocket:
                self._assign(conn)
                return True
            self._held -= len(conn.held)
            conn.dropped = True
            if conn.ended is not None or dec.not_websocket:
                conn.held = []
            # else: it may still turn out to be WebSocket and then gets an id.
            return True
        return False

    def _assign(self, conn: _Conn) -> None:
        conn.id = self._next_id
        self._next_id += 1
        held = conn.held
        conn.held = []
        if not conn.dropped:
            self._held -= len(held)
        conn.dropped = False
        for item in held:
            self._convert(conn, item)

    def _convert(self, conn: _Conn, item: tuple[Any, int | None]) -> None:
        ev, tcp_dir = item
        tables = self.options.tables
        if isinstance(ev, MessageEvent):
            if "message" in tables:
                self._out.append(("message", message_record(conn, ev)))
        elif isinstance(ev, FrameEvent):
            if "frame" in tables:
                self._out.append(("frame", frame_record(conn, ev)))
        elif isinstance(ev, ViolationEvent):
            direction = ev.direction
            message = ev.message
            if tcp_dir is not None:
                cd = conn.decoder.info.client_direction
                direction = None if cd is None else ("c2s" if tcp_dir == cd else "s2c")
                message = message.replace(_DIR, direction or f"TCP direction {tcp_dir}")
            r = RULES[ev.rule]
            if r.severity == ERROR:
                conn.violations += 1
            if "violation" in tables:
                self._out.append(("violation", {
                    "connection": conn.id, "client": conn.client, "server": conn.server,
                    "direction": direction, "ts": ev.ts, "packet": ev.packet, "rule": ev.rule,
                    "severity": r.severity, "reference": r.reference, "message": message,
                    "frame": ev.frame, "stream_offset": ev.stream_offset,
                }))
        elif ev == "connection-end" and "connection" in tables:
            self._out.append(("connection", connection_record(conn)))


def message_record(conn: _Conn, ev: MessageEvent) -> dict[str, Any]:
    return {
        "connection": conn.id, "client": conn.client, "server": conn.server,
        "direction": ev.direction, "index": ev.index, "ts_start": ev.ts_start, "ts": ev.ts,
        "packet": ev.packet, "type": ev.type, "frames": ev.frames, "compressed": ev.compressed,
        "wire_bytes": ev.wire_bytes, "raw_length": ev.raw_length, "length": ev.length,
        "payload": ev.payload, "truncated": ev.truncated, "text": ev.text,
        "close_code": ev.close_code, "close_reason": ev.close_reason,
        "complete": ev.complete, "error": ev.error,
    }


def frame_record(conn: _Conn, ev: FrameEvent) -> dict[str, Any]:
    return {
        "connection": conn.id, "client": conn.client, "server": conn.server,
        "direction": ev.direction, "index": ev.index, "ts": ev.ts, "fin": ev.fin,
        "rsv1": ev.rsv1, "rsv2": ev.rsv2, "rsv3": ev.rsv3, "opcode": ev.opcode,
        "masked": ev.masked, "mask_key": ev.mask_key.hex() if ev.mask_key else None,
        "header_bytes": ev.header_bytes, "packet": ev.packet,
        "payload_length": ev.payload_length, "stream_offset": ev.stream_offset,
        "message": ev.message,
    }


def connection_record(conn: _Conn) -> dict[str, Any]:
    info = conn.decoder.info
    return {
        "connection": conn.id, "client": conn.client, "server": conn.server,
        "ts_start": conn.ts_start, "ts_end": conn.ts_end,
        "host": info.host, "path": info.path, "origin": info.origin,
        "user_agent": info.user_agent, "subprotocols_offered": list(info.subprotocols_offered),
        "subprotocol": info.subprotocol, "extensions_offered": info.extensions_offered,
        "extensions": info.extensions, "handshake": info.handshake,
        "handshake_rtt": info.handshake_rtt, "deflate": info.deflate,
        "close_code": info.close_code, "close_reason": info.close_reason, "end": info.end,
        "messages_c2s": info.messages["c2s"], "messages_s2c": info.messages["s2c"],
        "bytes_c2s": info.bytes["c2s"], "bytes_s2c": info.bytes["s2c"],
        "violations": conn.violations,
    }


def run(packets: Iterator[RawPacket], options: Options | None = None) -> Iterator[Record]:
    """Drive an :class:`Analyzer` over ``packets``, yielding records as they complete."""
    analyzer = Analyzer(options)
    feed = analyzer.feed
    for pkt in packets:
        out = feed(pkt)
        if out:
            yield from out
    yield from analyzer.finish()
