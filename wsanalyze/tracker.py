"""Per-connection decoding: packets → TCP streams → WebSocket decoder outputs.

A :class:`Tracker` owns the packet parser, the TCP reassembler and one
:class:`~wsanalyze.websocket.decoder.ConnectionDecoder` per connection.  It may
see only a shard of the connections (``--jobs``): every tracker reads every
packet (so packet numbers agree) but decodes only the connections of its shard.
Its output items are what :class:`~wsanalyze.sequencer.Sequencer` puts in order;
they are plain tuples, cheap to pickle between processes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from wsanalyze.config import TABLES, Options
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
from wsanalyze.websocket.decoder import ConnectionDecoder
from wsanalyze.websocket.events import ViolationEvent

# Item kinds.
START = 0
"""(START, key, ConnectionStarted)"""
EVENTS = 1
"""(EVENTS, key, ConnState, [decoder events and TcpViolation])"""
END = 2
"""(END, key, ConnState, ConnectionEnded, ConnectionInfo, ts_end)"""

DIR_PLACEHOLDER = "\x00dir\x00"
"""Stands for the WebSocket direction in TCP-level rows made before it is known."""
__all__ = ["TABLES", "Options", "Tracker"]

_GAP_RULES = {"lost": "capture.gap", "truncated": "capture.truncated", "limit": "capture.limit"}
_GAP_WHAT = {"lost": "were not captured", "truncated": "were cut by the snapshot length",
             "limit": "were dropped (out-of-order buffer limit)"}


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
    __slots__ = ("decoder", "key", "ts_end")

    def __init__(self, key: int, decoder: ConnectionDecoder, ts: float) -> None:
        self.key = key
        self.decoder = decoder
        self.ts_end = ts


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
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def feed(self, pkt: RawPacket) -> list[tuple]:
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
        return self.parser.notes()

    def _tcp_event(self, ev: object) -> None:
        if type(ev) is StreamData:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = ev.ts
                dec = conn.decoder
                events = dec.data(ev.ts, ev.packet, ev.direction, ev.offset, ev.data)
                if events:
                    self._out.append((EVENTS, conn.key, _state(dec), events))
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
                dec = conn.decoder
                events = dec.gap(ev.ts, ev.packet, ev.direction, ev.offset, ev.length,
                                 ev.reason)
                self._out.append((EVENTS, conn.key, _state(dec), [row, *events]))
        elif type(ev) is ConnectionEnded:
            conn = self._conns.pop(ev.conn, None)
            if conn is not None:
                dec = conn.decoder
                events = dec.end(ev.ts, ev.packet, ev.how)
                if events:
                    self._out.append((EVENTS, conn.key, _state(dec), events))
                self._out.append((END, conn.key, _state(dec), ev, dec.info,
                                  max(conn.ts_end, ev.ts)))
        elif type(ev) is TcpNote:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                # The WebSocket direction may not be known yet: the sequencer
                # fills it in when the row is written.
                text = (ev.message if ev.direction is None
                        else f"{DIR_PLACEHOLDER} stream: {ev.message}")
                row = TcpViolation(ViolationEvent(ev.rule, None, ev.ts, ev.packet, text),
                                   ev.direction)
                self._out.append((EVENTS, conn.key, _state(conn.decoder), [row]))


def _state(dec: ConnectionDecoder) -> ConnState:
    return ConnState(dec.is_websocket, dec.not_websocket, dec.likely_plain_http,
                     dec.info.client_direction)
