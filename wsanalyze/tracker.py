"""Per-connection decoding: packets → TCP streams → WebSocket decoder outputs.

A :class:`Tracker` owns the packet parser, the TCP reassembler and one
:class:`~wsanalyze.websocket.decoder.ConnectionDecoder` per connection.  It may
see only a shard of the connections (``--jobs``): every tracker reads every
packet (so packet numbers agree) but decodes only the connections of its shard.
Its output items are what :class:`~wsanalyze.sequencer.Sequencer` puts in order;
they are plain tuples, cheap to pickle between processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from wsanalyze.sources.pcapng import SECRETS_LINKTYPE
from wsanalyze.sources.records import RawPacket
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    StreamData,
    StreamGap,
    TcpNote,
)
from wsanalyze.tcp.packet import PacketParser
from wsanalyze.tcp.reassembly import TcpReassembler
from wsanalyze.tls.bridge import TlsBridge, starts_tls
from wsanalyze.tls.keylog import KeyLog
from wsanalyze.tls.session import TlsKeys
from wsanalyze.websocket.decoder import ConnectionDecoder, DecoderLimits
from wsanalyze.websocket.events import ViolationEvent

TABLES = ("connection", "message", "frame", "violation")
"""The tables of OUTPUTS.md.  ``"connection-info"`` may be asked for too: with
each connection row, the decoder's ConnectionInfo (message counts by type and
compression totals), which is what ``wsanalyze summary`` needs."""

# Item kinds.
START = 0
"""(START, key, ConnectionStarted)"""
EVENTS = 1
"""(EVENTS, key, ConnState, [decoder events and TcpViolation])"""
END = 2
"""(END, key, ConnState, ConnectionEnded, ConnectionInfo, ts_end, TlsInfo | None)"""

DIR_PLACEHOLDER = "\x00dir\x00"
"""Stands for the WebSocket direction in TCP-level rows made before it is known."""
_GAP_RULES = {"lost": "capture.gap", "truncated": "capture.truncated", "limit": "capture.limit"}
_GAP_WHAT = {"lost": "were not captured", "truncated": "were cut by the snapshot length",
             "limit": "were dropped (out-of-order buffer limit)"}


@dataclass(slots=True)
class Options:
    """What to produce and the limits to apply (see README, Limits)."""

    limits: DecoderLimits = field(default_factory=DecoderLimits)
    tables: frozenset[str] = frozenset(TABLES)
    """Tables whose records are produced; the others are skipped (faster)."""
    max_buffered: int = 8 << 20
    """Out-of-order bytes buffered per TCP direction."""
    max_connections: int = 100_000
    tls_keylog: KeyLog | None = None
    """Secrets for TLS connections (``--tls-keylog``); pcapng blocks add more."""


class ConnState(NamedTuple):
    """What the sequencer needs to know of a decoder to order connections."""

    websocket: bool
    not_websocket: bool
    likely_plain_http: bool
    client_direction: int | None


class TcpViolation(NamedTuple):
    """A row about the TCP stream, whose WebSocket direction may not be known yet."""

    event: ViolationEvent
    tcp_direction: int | None


def shard_of(seg: Any, jobs: int) -> int:
    """The shard of a segment's connection: the same for both directions and in
    every process (Python's ``hash`` of bytes is salted per process)."""
    return (seg.sport + seg.dport + int.from_bytes(seg.src[-4:], "big")
            + int.from_bytes(seg.dst[-4:], "big")) % jobs


class _Conn:
    __slots__ = ("decoder", "fresh", "key", "stream", "tls", "ts_end")

    def __init__(self, key: int, decoder: ConnectionDecoder, ts: float) -> None:
        self.key = key
        self.decoder = decoder
        self.ts_end = ts
        self.fresh = True
        """No bytes seen yet: the first ones tell whether this is TLS."""
        self.tls: TlsBridge | None = None
        self.stream: ConnectionDecoder | TlsBridge = decoder
        """Where stream events go: the decoder, or the TLS bridge in front of it."""


class Tracker:
    """Feed packets, get items; call :meth:`finish` at the end of the capture."""

    def __init__(self, options: Options | None = None, *, shard: int = 0,
                 jobs: int = 1) -> None:
        self.options = options or Options()
        self.parser = PacketParser()
        self.tcp = TcpReassembler(max_buffered=self.options.max_buffered,
                                  max_connections=self.options.max_connections)
        self._conns: dict[int, _Conn] = {}
        self._frames = "frame" in self.options.tables
        self._messages = "message" in self.options.tables
        self._shard = shard
        self._jobs = jobs
        self._out: list[tuple] = []
        self.tls_keys = TlsKeys(self.options.tls_keylog)
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def feed(self, pkt: RawPacket) -> list[tuple]:
        if pkt.linktype == SECRETS_LINKTYPE:
            self.tls_keys.add_block(pkt.data)
            return []
        self.packets += 1
        if self.first_ts is None:
            self.first_ts = pkt.ts
        self.last_ts = pkt.ts
        seg = self.parser.parse(pkt)
        if seg is None or (self._jobs > 1 and shard_of(seg, self._jobs) != self._shard):
            return []
        for ev in self.tcp.feed(pkt.number, pkt.ts, seg):
            self._tcp_event(ev)
        out = self._out
        if out:
            self._out = []
        return out

    def finish(self) -> list[tuple]:
        for ev in self.tcp.finish():
            self._tcp_event(ev)
        out = self._out
        self._out = []
        return out

    def notes(self) -> list[str]:
        """Capture-level remarks (skipped packets) for the user."""
        keylog = self.tls_keys.log.summary()
        return self.parser.notes() + ([keylog] if keylog else [])

    def _tcp_event(self, ev: object) -> None:
        if type(ev) is StreamData:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = ev.ts
                if conn.fresh:
                    self._first_bytes(conn, ev)
                events = conn.stream.data(ev.ts, ev.packet, ev.direction, ev.offset, ev.data)
                if events:
                    self._out.append((EVENTS, conn.key, _state(conn), events))
        elif type(ev) is ConnectionStarted:
            dec = ConnectionDecoder(syn_seen=ev.syn_seen, limits=self.options.limits,
                                    frames=self._frames, messages=self._messages)
            self._conns[ev.conn] = _Conn(ev.packet, dec, ev.ts)
            self._out.append((START, ev.packet, ev))
        elif type(ev) is StreamGap:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                end = ev.offset + ev.length - 1
                text = (f"{ev.length} bytes of the {DIR_PLACEHOLDER} stream (TCP stream offsets "
                        f"{ev.offset}–{end}) {_GAP_WHAT.get(ev.reason, 'were not captured')}; "
                        f"packet {ev.packet} "
                        f"{'follows the gap' if ev.reason == 'lost' else 'is affected'}")
                row = TcpViolation(ViolationEvent(_GAP_RULES.get(ev.reason, "capture.gap"),
                                                  None, ev.ts, ev.packet, text), ev.direction)
                events = conn.stream.gap(ev.ts, ev.packet, ev.direction, ev.offset,
                                         ev.length, ev.reason)
                self._out.append((EVENTS, conn.key, _state(conn), [row, *events]))
        elif type(ev) is ConnectionEnded:
            conn = self._conns.pop(ev.conn, None)
            if conn is not None:
                events = conn.stream.end(ev.ts, ev.packet, ev.how)
                if events:
                    self._out.append((EVENTS, conn.key, _state(conn), events))
                self._out.append((END, conn.key, _state(conn), ev, conn.decoder.info,
                                  max(conn.ts_end, ev.ts),
                                  conn.tls.info if conn.tls is not None else None))
        elif type(ev) is TcpNote:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                # The WebSocket direction may not be known yet: the sequencer
                # fills it in when the row is written.
                text = (ev.message if ev.direction is None
                        else f"{DIR_PLACEHOLDER} stream: {ev.message}")
                row = TcpViolation(ViolationEvent(ev.rule, None, ev.ts, ev.packet, text),
                                   ev.direction)
                self._out.append((EVENTS, conn.key, _state(conn), [row]))

    def _first_bytes(self, conn: _Conn, ev: StreamData) -> None:
        conn.fresh = False
        tls = starts_tls(ev.data, ev.offset)
        if tls is not False:
            conn.tls = TlsBridge(conn.decoder, self.tls_keys, ev.direction,
                                 handshake_seen=bool(tls))
            conn.stream = conn.tls


def _state(conn: _Conn) -> ConnState:
    if conn.tls is not None:
        return ConnState(*conn.tls.state())
    dec = conn.decoder
    return ConnState(dec.is_websocket, dec.not_websocket, dec.likely_plain_http,
                     dec.info.client_direction)
