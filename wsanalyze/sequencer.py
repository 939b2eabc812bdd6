"""Ordering decoder outputs into table records.

The :class:`Sequencer` takes the items of one or several trackers, merged in
packet order, gives WebSocket connections their ids — in order of each
connection's first packet — and turns events into the rows of OUTPUTS.md.  A
connection's rows are held back only while an earlier connection is still
undecided (it may yet turn out to carry WebSocket), within a bound.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from wsanalyze.rules import ERROR, RULES
from wsanalyze.tcp.events import ConnectionEnded, ConnectionStarted, Endpoint
from wsanalyze.tracker import (
    TABLES,
    ConnState,
    Decoded,
    Ended,
    Item,
    ItemEvent,
    Started,
    TcpViolation,
)
from wsanalyze.websocket.decoder import ConnectionInfo
from wsanalyze.websocket.events import (
    FrameEvent,
    MessageEvent,
    ViolationEvent,
    WebSocketDetected,
)

if TYPE_CHECKING:
    from wsanalyze.tls.follower import TlsInfo

Row = dict[str, Any]
"""A row of one of the tables of OUTPUTS.md (``output/schema.py`` COLUMNS)."""


class ConnectionSummary(NamedTuple):
    """A connection's row with the counters ``wsanalyze summary`` shows: the record
    of the ``"summary"`` kind, produced when it is among the wanted tables."""

    row: Row
    types: Counter[tuple[str, str]]
    """Rows of the messages table by (direction, type)."""
    data_messages: int
    compressed: int
    """Compressed data messages, their bytes as carried and once inflated:"""
    compressed_raw: int
    compressed_inflated: int
    incomplete: int
    """Messages with bytes lost to the capture."""


SUMMARY = "summary"
"""Ask for it among the tables to get a :class:`ConnectionSummary` per connection."""

Record = tuple[str, Any]
"""(table name: ``"connection"``, ``"message"``, ``"frame"`` or ``"violation"``, a
:data:`Row`), or (``"summary"``, a :class:`ConnectionSummary`) when asked for.
(Typed ``Any`` so that consumers of the four tables index rows without casts.)"""

ROW_HOLD_LIMIT = 10_000
"""Connection rows held back for id order (beyond it, order yields to memory)."""

HOLD_LIMIT = 50_000
"""Records held back for id ordering before the oldest undecided connection is
given up on (it then gets the next id if it later turns out to be WebSocket)."""


class _End(NamedTuple):
    """Held in place of the connection's row until it has an id."""


_END = _End()
Held = ItemEvent | _End


def format_endpoint(ep: Endpoint) -> str:
    """``ip:port``, IPv6 as ``[addr]:port`` (addresses already in RFC 5952 form)."""
    addr, port = ep
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


class _Conn:
    __slots__ = ("client", "dropped", "ended", "held", "id", "info", "initiator", "responder",
                 "server", "state", "tcp_stream", "tls", "ts_end", "ts_start", "violations")

    def __init__(self, ev: ConnectionStarted, tcp_stream: int = -1) -> None:
        self.tcp_stream = tcp_stream
        self.initiator = ev.initiator
        self.responder = ev.responder
        self.ts_start = ev.ts
        self.ts_end = ev.ts
        self.state = ConnState(False, False, False, None)
        self.info: ConnectionInfo | None = None
        self.tls: TlsInfo | None = None
        """The TLS facts of a ``wss://`` connection, from its :class:`Ended` item."""
        self.id: int | None = None
        self.held: list[Held] = []
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
        self._rows_waiting: dict[int, list[Record]] = {}
        """Connection rows of ended connections waiting for lower ids' rows."""
        self._next_row = 0
        self.streams: dict[int, int] = {}
        """Connection id → Wireshark's tcp.stream, as ids are given (for --stream
        filters on rows that do not carry the column)."""
        self._held = 0
        self._out: list[Record] = []

    def feed(self, items: list[Item]) -> list[Record]:
        for item in items:
            if type(item) is Decoded:
                conn = self._conns[item.key]
                conn.state = item.state
                self._events(conn, item.events)
            elif type(item) is Started:
                conn = _Conn(item.event, item.tcp_stream)
                self._conns[item.key] = conn
                self._order.append(conn)
            elif type(item) is Ended:
                conn = self._conns.pop(item.key)
                conn.state = item.state
                conn.ended = item.event
                conn.info = item.info
                conn.ts_end = item.ts_end
                conn.tls = item.tls
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
        for conn_id in sorted(self._rows_waiting):
            self._out.extend(self._rows_waiting.pop(conn_id))
        out = self._out
        self._out = []
        return out

    # ------------------------------------------------------------ internals
    def _events(self, conn: _Conn, events: Sequence[ItemEvent]) -> None:
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

    def _emit(self, conn: _Conn, item: Held) -> None:
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
        self.streams[conn.id] = conn.tcp_stream
        held = conn.held
        conn.held = []
        if not conn.dropped:
            self._held -= len(held)
        conn.dropped = False
        for item in held:
            self._convert(conn, item)

    def _convert(self, conn: _Conn, ev: Held) -> None:
        tables = self.tables
        out = self._out
        if type(ev) is MessageEvent:
            if "message" in tables:
                out.append(("message", message_record(conn, ev)))
        elif type(ev) is FrameEvent:
            if "frame" in tables:
                out.append(("frame", frame_record(conn, ev)))
        elif type(ev) is ViolationEvent:
            self._violation(conn, ev.rule, ev.direction, ev.ts, ev.packet, ev.message,
                            ev.frame, ev.stream_offset)
        elif type(ev) is TcpViolation:
            direction: str | None = None
            cd = conn.state.client_direction
            tcp_dir = ev.tcp_direction
            message = ev.before
            if tcp_dir is not None:
                if cd is not None:
                    direction = "c2s" if tcp_dir == cd else "s2c"
                message += (direction or f"TCP direction {tcp_dir}") + ev.after
            self._violation(conn, ev.rule, direction, ev.ts, ev.packet, message)
        elif type(ev) is _End:
            row = connection_record(conn)
            ended: list[Record] = []
            if "connection" in tables:
                ended.append(("connection", row))
            if SUMMARY in tables:
                ended.append((SUMMARY, connection_summary(row, conn.info)))
            self._connection_rows(conn.id, ended)

    def _connection_rows(self, conn_id: int | None, records: list[Record]) -> None:
        """Connections end in any order; their rows go out in id order (OUTPUTS.md),
        each held until the rows of every lower id are out, within ROW_HOLD_LIMIT."""
        assert conn_id is not None
        waiting = self._rows_waiting
        waiting[conn_id] = records
        if len(waiting) > ROW_HOLD_LIMIT:
            # A very long connection holds back too many: let the next one pass.
            self._next_row = min(waiting)
        while self._next_row in waiting:
            self._out.extend(waiting.pop(self._next_row))
            self._next_row += 1

    def _violation(self, conn: _Conn, rule: str, direction: str | None, ts: float,
                   packet: int | None, message: str, frame: int | None = None,
                   stream_offset: int | None = None) -> None:
        r = RULES[rule]
        if r.severity == ERROR:
            conn.violations += 1
        if "violation" in self.tables:
            self._out.append(("violation", {
                "connection": conn.id, "client": conn.client, "server": conn.server,
                "direction": direction, "ts": ts, "packet": packet, "rule": rule,
                "severity": r.severity, "reference": r.reference, "message": message,
                "frame": frame, "stream_offset": stream_offset,
            }))


def connection_summary(row: Row, info: ConnectionInfo | None) -> ConnectionSummary:
    info = info or ConnectionInfo()
    return ConnectionSummary(row, info.types, sum(info.messages.values()), info.compressed,
                             info.compressed_raw, info.compressed_inflated, info.incomplete)


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
    params = info.deflate_params
    return {
        "connection": conn.id, "tcp_stream": conn.tcp_stream,
        "client": conn.client, "server": conn.server,
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
        "deflate_client_max_window_bits": params.client_max_window_bits if params else None,
        "deflate_server_max_window_bits": params.server_max_window_bits if params else None,
        "deflate_client_no_context_takeover": bool(params and params.client_no_context_takeover),
        "deflate_server_no_context_takeover": bool(params and params.server_no_context_takeover),
        **_tls_columns(conn.tls),
    }


def _tls_columns(tls: TlsInfo | None) -> dict[str, Any]:
    if tls is None:
        return _NO_TLS
    return {"tls_version": tls.version, "tls_cipher": tls.cipher, "sni": tls.sni,
            "alpn": tls.alpn, "decrypted": tls.decrypted}


_NO_TLS: dict[str, Any] = {"tls_version": None, "tls_cipher": None, "sni": None, "alpn": None,
                           "decrypted": None}
