"""Ordering decoder outputs into table records.

The :class:`Sequencer` takes the items of one or several trackers, merged in
packet order, gives WebSocket connections their ids — in order of each
connection's first packet — and turns events into the rows of OUTPUTS.md.  A
connection's rows are held back only while an earlier connection is still
undecided (it may yet turn out to carry WebSocket), within a bound.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from wsanalyze.rules import ERROR, RULES
from wsanalyze.tcp.events import ConnectionEnded, ConnectionStarted, Endpoint
from wsanalyze.tracker import (
    DIR_PLACEHOLDER,
    END,
    EVENTS,
    START,
    TABLES,
    ConnState,
    TcpViolation,
)
from wsanalyze.websocket.decoder import ConnectionInfo
from wsanalyze.websocket.events import (
    FrameEvent,
    MessageEvent,
    ViolationEvent,
    WebSocketDetected,
)

Record = tuple[str, dict[str, Any]]
"""(table name: ``"connection"``, ``"message"``, ``"frame"`` or ``"violation"``, row)."""

HOLD_LIMIT = 50_000
"""Records held back for id ordering before the oldest undecided connection is
given up on (it then gets the next id if it later turns out to be WebSocket)."""
_END = "connection-end"


def format_endpoint(ep: Endpoint) -> str:
    """``ip:port``, IPv6 as ``[addr]:port`` (addresses already in RFC 5952 form)."""
    addr, port = ep
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


class _Conn:
    __slots__ = ("client", "dropped", "ended", "held", "id", "info", "initiator", "responder",
                 "server", "state", "tls", "ts_end", "ts_start", "violations")

    def __init__(self, ev: ConnectionStarted) -> None:
        self.initiator = ev.initiator
        self.responder = ev.responder
        self.ts_start = ev.ts
        self.ts_end = ev.ts
        self.state = ConnState(False, False, False, None)
        self.info: ConnectionInfo | None = None
        self.tls: Any = None
        """The TlsInfo of a TLS connection (wsanalyze.tls.follower)."""
        self.id: int | None = None
        self.held: list[Any] = []
        self.client = ""
        self.server = ""
        self.ended: ConnectionEnded | None = None
        self.violations = 0
        self.dropped = False
        """Taken out of the id order without an id (not WebSocket so far)."""


class Sequencer:
    """Feed tracker items in packet order; get records."""

    def __init__(self, tables: frozenset[str] = frozenset(TABLES)) -> None:
        self.tables = tables
        self._conns: dict[int, _Conn] = {}
        self._order: deque[_Conn] = deque()
        """Connections not yet given an id or ruled out, in order of first packet."""
        self._next_id = 0
        self._held = 0
        self._out: list[Record] = []

    def feed(self, items: list[tuple]) -> list[Record]:
        for item in items:
            kind = item[0]
            if kind == EVENTS:
                conn = self._conns[item[1]]
                conn.state = item[2]
                self._events(conn, item[3])
            elif kind == START:
                conn = _Conn(item[2])
                self._conns[item[1]] = conn
                self._order.append(conn)
            elif kind == END:
                conn = self._conns.pop(item[1])
                conn.state = item[2]
                conn.ended = item[3]
                conn.info = item[4]
                conn.ts_end = item[5]
                conn.tls = item[6] if len(item) > 6 else None
                self._emit(conn, _END)
                self._advance()
        out = self._out
        if out:
            self._out = []
        return out

    def finish(self) -> list[Record]:
        # Nothing is undecided any more.
        while self._order:
            self._decide_front(force=True)
        out = self._out
        self._out = []
        return out

    # ------------------------------------------------------------ internals
    def _events(self, conn: _Conn, events: list) -> None:
        for ev in events:
            if type(ev) is WebSocketDetected:
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
                self._emit(conn, ev)
        if self._order and self._order[0] is conn:
            self._advance()

    def _emit(self, conn: _Conn, item: Any) -> None:
        if conn.id is not None:
            self._convert(conn, item)
            return
        conn.held.append(item)
        if conn.dropped:
            return
        self._held += 1
        if self._held > HOLD_LIMIT:
            while self._held > HOLD_LIMIT // 2 and self._order:
                self._decide_front(force=True)

    def _advance(self) -> None:
        """Give ids to (or rule out) connections at the front of the order."""
        while self._order and self._decide_front(force=False):
            pass

    def _decide_front(self, *, force: bool) -> bool:
        conn = self._order[0]
        st = conn.state
        if st.websocket and st.client_direction is not None:
            self._order.popleft()
            self._assign(conn)
            return True
        if force or conn.ended is not None or st.not_websocket or st.likely_plain_http:
            self._order.popleft()
            if st.websocket:
                self._assign(conn)
                return True
            self._held -= len(conn.held)
            conn.dropped = True
            if conn.ended is not None or st.not_websocket:
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

    def _convert(self, conn: _Conn, ev: Any) -> None:
        tables = self.tables
        kind = type(ev)
        if kind is MessageEvent:
            if "message" in tables:
                self._out.append(("message", message_record(conn, ev)))
        elif kind is FrameEvent:
            if "frame" in tables:
                self._out.append(("frame", frame_record(conn, ev)))
        elif kind is ViolationEvent or kind is TcpViolation:
            direction = None
            if kind is TcpViolation:
                tcp_dir = ev.tcp_direction
                ev = ev.event
                cd = conn.state.client_direction
                if tcp_dir is not None and cd is not None:
                    direction = "c2s" if tcp_dir == cd else "s2c"
                message = ev.message.replace(DIR_PLACEHOLDER,
                                             direction or f"TCP direction {tcp_dir}")
            else:
                direction = ev.direction
                message = ev.message
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
        elif ev == _END:
            if "connection" in tables:
                self._out.append(("connection", connection_record(conn)))
            if "connection-info" in tables:
                self._out.append(("connection-info", {"row": connection_record(conn),
                                                      "info": conn.info}))


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
    info = conn.info or ConnectionInfo()
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
        "tcp_connect_rtt": conn.ended.connect_rtt if conn.ended else None,
        **_tls_columns(conn.tls),
    }


def _tls_columns(tls: Any) -> dict[str, Any]:
    if tls is None:
        return _NO_TLS
    return {"tls_version": tls.version, "tls_cipher": tls.cipher, "sni": tls.sni,
            "alpn": tls.alpn, "decrypted": tls.decrypted}


_NO_TLS: dict[str, Any] = {"tls_version": None, "tls_cipher": None, "sni": None, "alpn": None,
                           "decrypted": None}
