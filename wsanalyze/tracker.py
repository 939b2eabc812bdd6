"""Per-connection decoding: packets → TCP streams → WebSocket decoder outputs.

A :class:`Tracker` owns the packet parser, the TCP reassembler and one
:class:`~wsanalyze.websocket.decoder.ConnectionDecoder` per connection.  It may
see only a shard of the connections (``--jobs``): every tracker reads every
packet (so packet numbers agree) but decodes only the connections of its shard.
Its output items (:data:`Item`: :class:`Started`, :class:`Decoded`, :class:`Ended`)
are what :class:`~wsanalyze.sequencer.Sequencer` puts in order; they are
NamedTuples, cheap to pickle between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from wsanalyze import rules as R
from wsanalyze.config import TABLES, Options
from wsanalyze.sources.records import RawPacket
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    StreamData,
    StreamGap,
    TcpEvent,
    TcpNote,
)
from wsanalyze.tcp.packet import PacketParser
from wsanalyze.tcp.reassembly import TcpReassembler
from wsanalyze.tcp.segment import TcpSegment
from wsanalyze.websocket.decoder import ConnectionDecoder, ConnectionInfo
from wsanalyze.websocket.events import DecoderEvent

__all__ = ["TABLES", "Decoded", "Ended", "Item", "Options", "Started", "Tracker"]

_GAP_RULES = {"lost": R.CAPTURE_GAP, "truncated": R.CAPTURE_TRUNCATED,
              "limit": R.CAPTURE_LIMIT}
_GAP_WHAT = {"lost": "were not captured", "truncated": "were cut by the snapshot length",
             "limit": "were dropped (out-of-order buffer limit)"}


class ConnState(NamedTuple):
    """What the sequencer needs to know of a decoder to order connections."""

    websocket: bool
    not_websocket: bool
    likely_plain_http: bool
    client_direction: int | None


class TcpViolation(NamedTuple):
    """A row about a TCP stream, made before its WebSocket direction may be known:
    its message is ``before``, the stream's direction (``c2s``, ``s2c`` or ``TCP
    direction N``), then ``after`` — or just ``before`` when ``tcp_direction`` is None."""

    rule: str
    ts: float
    packet: int
    tcp_direction: int | None
    before: str
    after: str = ""


ItemEvent = DecoderEvent | TcpViolation
"""What a connection's :class:`Decoded` item carries, in order."""


# The items a tracker emits, in packet order; cheap to pickle between processes.
class Started(NamedTuple):
    """A TCP connection began (``key``: its first packet, unique per tracker)."""

    key: int
    event: ConnectionStarted


class Decoded(NamedTuple):
    """Events of a connection, with its decoder's state after them."""

    key: int
    state: ConnState
    events: Sequence[ItemEvent]


class Ended(NamedTuple):
    """A connection ended: what its connections row needs."""

    key: int
    state: ConnState
    event: ConnectionEnded
    info: ConnectionInfo
    ts_end: float


Item = Started | Decoded | Ended


def shard_of(seg: TcpSegment, jobs: int) -> int:
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
        self._out: list[Item] = []
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None

    def feed(self, pkt: RawPacket) -> list[Item]:
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

    def finish(self) -> list[Item]:
        for ev in self.tcp.finish():
            self._tcp_event(ev)
        out = self._out
        self._out = []
        return out

    def notes(self) -> list[str]:
        """Capture-level remarks (skipped packets) for the user."""
        return self.parser.notes()

    def _tcp_event(self, ev: TcpEvent) -> None:
        if type(ev) is StreamData:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = ev.ts
                dec = conn.decoder
                events = dec.data(ev.ts, ev.packet, ev.direction, ev.offset, ev.data)
                if events:
                    self._out.append(Decoded(conn.key, _state(dec), events))
        elif type(ev) is ConnectionStarted:
            dec = ConnectionDecoder(syn_seen=ev.syn_seen, limits=self.options.limits,
                                    frames=self._frames, messages=self._messages)
            self._conns[ev.conn] = _Conn(ev.packet, dec, ev.ts)
            self._out.append(Started(ev.packet, ev))
        elif type(ev) is StreamGap:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                end = ev.offset + ev.length - 1
                row = TcpViolation(
                    _GAP_RULES.get(ev.reason, R.CAPTURE_GAP), ev.ts, ev.packet, ev.direction,
                    f"{ev.length} bytes of the ",
                    f" stream (TCP stream offsets {ev.offset}–{end}) "
                    f"{_GAP_WHAT.get(ev.reason, 'were not captured')}; packet {ev.packet} "
                    f"{'follows the gap' if ev.reason == 'lost' else 'is affected'}")
                dec = conn.decoder
                events = dec.gap(ev.ts, ev.packet, ev.direction, ev.offset, ev.length,
                                 ev.reason)
                self._out.append(Decoded(conn.key, _state(dec), [row, *events]))
        elif type(ev) is ConnectionEnded:
            conn = self._conns.pop(ev.conn, None)
            if conn is not None:
                dec = conn.decoder
                events = dec.end(ev.ts, ev.packet, ev.how)
                if events:
                    self._out.append(Decoded(conn.key, _state(dec), events))
                self._out.append(Ended(conn.key, _state(dec), ev, dec.info,
                                       max(conn.ts_end, ev.ts)))
        elif type(ev) is TcpNote:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                # The WebSocket direction may not be known yet: the sequencer
                # fills it in when the row is written.
                row = TcpViolation(ev.rule, ev.ts, ev.packet, ev.direction,
                                   ev.message if ev.direction is None else "",
                                   "" if ev.direction is None else f" stream: {ev.message}")
                self._out.append(Decoded(conn.key, _state(conn.decoder), [row]))


def _state(dec: ConnectionDecoder) -> ConnState:
    return ConnState(dec.is_websocket, dec.not_websocket, dec.likely_plain_http,
                     dec.info.client_direction)
