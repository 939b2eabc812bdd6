"""Per-connection decoding: packets → TCP streams → WebSocket decoder outputs.

A :class:`Tracker` owns the packet parser, the TCP reassembler and one
:class:`~wsanalyze.websocket.decoder.ConnectionDecoder` per connection.  It may
see only a shard of the connections (``--jobs``): every tracker reads every
packet (so packet numbers agree) but decodes only the connections of its shard.
Its output items (:data:`Item`: :class:`Started`, :class:`Decoded`, :class:`Ended`)
are what :class:`~wsanalyze.sequencer.Sequencer` puts in order; they are records
(native classes in the compiled build, see :mod:`wsanalyze.sources.rawpacket`),
cheap to pickle between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, final

from wsanalyze import rules as R
from wsanalyze import timestamps
from wsanalyze.config import TABLES, Options
from wsanalyze.sources import records
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
from wsanalyze.tcp.streams import StreamNumbers
from wsanalyze.timestamps import raw_epoch
from wsanalyze.tls.bridge import TlsBridge, starts_tls
from wsanalyze.tls.follower import TlsInfo
from wsanalyze.tls.session import TlsKeys
from wsanalyze.websocket.decoder import ConnectionDecoder, ConnectionInfo
from wsanalyze.websocket.events import DecoderEvent

__all__ = ["TABLES", "Decoded", "Ended", "Item", "Options", "Started", "Tracker"]

# Final copies of constants of modules mypyc does not compile: a Final name is a C
# static in compiled code, an imported one a dict lookup at every use.
_SECRETS_LINKTYPE: Final = records.SECRETS_LINKTYPE
_TS_MIN: Final = timestamps.TS_MIN
_TS_MAX: Final = timestamps.TS_MAX

_GAP_RULES: Final = {"lost": R.CAPTURE_GAP, "truncated": R.CAPTURE_TRUNCATED,
                     "limit": R.CAPTURE_LIMIT}
_GAP_WHAT: Final = {"lost": "were not captured",
                    "truncated": "were cut by the snapshot length",
                    "limit": "were dropped (out-of-order buffer limit)"}


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class ConnState:
    """What the sequencer needs to know of a decoder to order connections."""

    websocket: bool
    not_websocket: bool
    likely_plain_http: bool
    client_direction: int | None

    def __init__(self, websocket: bool, not_websocket: bool, likely_plain_http: bool,
                 client_direction: int | None) -> None:
        self.websocket = websocket
        self.not_websocket = not_websocket
        self.likely_plain_http = likely_plain_http
        self.client_direction = client_direction

    def __reduce__(self) -> tuple[object, ...]:
        return (ConnState, (self.websocket, self.not_websocket, self.likely_plain_http,
                            self.client_direction))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class TcpViolation:
    """A row about a TCP stream, made before its WebSocket direction may be known:
    its message is ``before``, the stream's direction (``c2s``, ``s2c`` or ``TCP
    direction N``), then ``after`` — or just ``before`` when ``tcp_direction`` is None."""

    rule: str
    ts: float
    packet: int
    tcp_direction: int | None
    before: str
    after: str = ""

    def __init__(self, rule: str, ts: float, packet: int, tcp_direction: int | None, before: str,
                 after: str = "") -> None:
        self.rule = rule
        self.ts = ts
        self.packet = packet
        self.tcp_direction = tcp_direction
        self.before = before
        self.after = after

    def __reduce__(self) -> tuple[object, ...]:
        return (TcpViolation, (self.rule, self.ts, self.packet, self.tcp_direction, self.before,
                               self.after))


ItemEvent = DecoderEvent | TcpViolation
"""What a connection's :class:`Decoded` item carries, in order."""


# The items a tracker emits, in packet order; cheap to pickle between processes.
@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class Started:
    """A TCP connection began (``key``: its first packet, unique per tracker)."""

    key: int
    event: ConnectionStarted
    tcp_stream: int = -1
    """Wireshark's ``tcp.stream`` index of the connection (tcp/streams.py)."""

    def __init__(self, key: int, event: ConnectionStarted, tcp_stream: int = -1) -> None:
        self.key = key
        self.event = event
        self.tcp_stream = tcp_stream

    def __reduce__(self) -> tuple[object, ...]:
        return (Started, (self.key, self.event, self.tcp_stream))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class Decoded:
    """Events of a connection, with its decoder's state after them."""

    key: int
    state: ConnState
    events: Sequence[ItemEvent]

    def __init__(self, key: int, state: ConnState, events: Sequence[ItemEvent]) -> None:
        self.key = key
        self.state = state
        self.events = events

    def __reduce__(self) -> tuple[object, ...]:
        return (Decoded, (self.key, self.state, self.events))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class Ended:
    """A connection ended: what its connections row needs."""

    key: int
    state: ConnState
    event: ConnectionEnded
    info: ConnectionInfo
    ts_end: float
    tls: TlsInfo | None = None
    """The TLS facts of a ``wss://`` connection (version, cipher, SNI, ALPN, decrypted)."""

    def __init__(self, key: int, state: ConnState, event: ConnectionEnded, info: ConnectionInfo,
                 ts_end: float, tls: TlsInfo | None = None) -> None:
        self.key = key
        self.state = state
        self.event = event
        self.info = info
        self.ts_end = ts_end
        self.tls = tls

    def __reduce__(self) -> tuple[object, ...]:
        return (Ended, (self.key, self.state, self.event, self.info, self.ts_end, self.tls))


Item = Started | Decoded | Ended


def shard_of(seg: TcpSegment, jobs: int) -> int:
    """The shard of a segment's connection: the same for both directions and in
    every process (Python's ``hash`` of bytes is salted per process)."""
    return (seg.sport + seg.dport + int.from_bytes(seg.src[-4:], "big")
            + int.from_bytes(seg.dst[-4:], "big")) % jobs


class _Conn:
    __slots__ = ("decoder", "fresh", "key", "state", "stream", "tls", "ts_end")

    def __init__(self, key: int, decoder: ConnectionDecoder, ts: float) -> None:
        self.key = key
        self.decoder = decoder
        self.ts_end = ts
        self.fresh = True
        """No bytes seen yet: the first ones tell whether this is TLS."""
        self.tls: TlsBridge | None = None
        self.stream: ConnectionDecoder | TlsBridge = decoder
        """Where stream events go: the decoder, or the TLS bridge in front of it."""
        self.state: ConnState | None = None
        """The latest state handed out (see _state)."""


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
        self.streams = StreamNumbers()
        self._stream = -1
        """tcp.stream of the packet being fed (a connection starts on one of its packets)."""
        self.tls_keys = TlsKeys(self.options.tls_keylog)
        self.packets = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self._bad_ts_packet: int | None = None
        self._bad_ts = 0.0
        self._bad_ts_conns: set[int] = set()

    def feed(self, pkt: RawPacket) -> list[Item]:
        # route() inlined: no (segment, stream) tuple per packet.
        seg = self._parse(pkt)
        if seg is None:
            return []
        ts = pkt.ts
        stream = self.streams.number(seg, ts)
        if self._jobs > 1 and shard_of(seg, self._jobs) != self._shard:
            return []
        return self.feed_segment(pkt.number, ts, seg, stream)

    def route(self, pkt: RawPacket) -> tuple[TcpSegment, int] | None:
        """The work every packet needs whatever its shard: count it, parse its
        headers, number its conversation (tcp.stream).  Returns the segment and its
        tcp.stream, or None when the packet holds no TCP segment.  The ``--jobs``
        reader process calls this alone and ships the segment to its shard."""
        seg = self._parse(pkt)
        if seg is None:
            return None
        # Numbered before sharding: every --jobs shard counts every conversation.
        return seg, self.streams.number(seg, pkt.ts)

    def _parse(self, pkt: RawPacket) -> TcpSegment | None:
        """Count ``pkt`` and parse its headers: its TCP segment, or None."""
        if pkt.linktype == _SECRETS_LINKTYPE:
            self.tls_keys.add_block(pkt.data)
            return None
        ts = pkt.ts
        self.packets += 1
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        seg = self.parser.parse(pkt)
        if not _TS_MIN <= ts <= _TS_MAX and self._bad_ts_packet is None:
            self._bad_ts_packet, self._bad_ts = pkt.number, ts
        return seg

    def feed_segment(self, number: int, ts: float, seg: TcpSegment,
                     stream: int) -> list[Item]:
        """Decode one segment of this tracker's shard (``stream``: its tcp.stream)."""
        self._stream = stream
        for ev in self.tcp.feed(number, ts, seg):
            self._tcp_event(ev)
        if not _TS_MIN <= ts <= _TS_MAX:
            self._report_bad_timestamp(number, ts, seg)
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
        """Capture-level remarks (skipped packets, impossible times, key log
        problems) for the user."""
        notes = self.parser.notes()
        if self._bad_ts_packet is not None:
            notes.append(f"packet {self._bad_ts_packet} has a timestamp outside the calendar "
                         f"({raw_epoch(self._bad_ts)}); such times are shown as epoch numbers")
        keylog = self.tls_keys.log.summary()
        if keylog:
            notes.append(keylog)
        return notes

    def _report_bad_timestamp(self, number: int, ts: float, seg: TcpSegment) -> None:
        """The first packet of each connection whose time no calendar holds
        (timestamps.py) is a ``capture.bad-timestamp`` row, made once the packet
        has been fed (so a connection it opens exists)."""
        cid = self.tcp.connection_of(seg)
        if cid is None or cid in self._bad_ts_conns:
            return
        conn = self._conns.get(cid)
        if conn is None:
            return
        self._bad_ts_conns.add(cid)
        text = (f"packet {number} has a timestamp outside the calendar "
                f"({raw_epoch(ts)}); its time is shown as an epoch number")
        row = TcpViolation(R.CAPTURE_BAD_TIMESTAMP, ts, number, None, text)
        self._out.append(Decoded(conn.key, _state(conn), [row]))

    def _tcp_event(self, ev: TcpEvent) -> None:
        if type(ev) is StreamData:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                conn.ts_end = ev.ts
                if conn.fresh:
                    self._first_bytes(conn, ev)
                events = conn.stream.data(ev.ts, ev.packet, ev.direction, ev.offset, ev.data)
                if events:
                    self._out.append(Decoded(conn.key, _state(conn), list(events)))
        elif type(ev) is ConnectionStarted:
            dec = ConnectionDecoder(syn_seen=ev.syn_seen, limits=self.options.limits,
                                    frames=self._frames, messages=self._messages)
            self._conns[ev.conn] = _Conn(ev.packet, dec, ev.ts)
            self._out.append(Started(ev.packet, ev, self._stream))
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
                events = conn.stream.gap(ev.ts, ev.packet, ev.direction, ev.offset,
                                         ev.length, ev.reason)
                self._out.append(Decoded(conn.key, _state(conn), [row, *events]))
        elif type(ev) is ConnectionEnded:
            conn = self._conns.pop(ev.conn, None)
            if conn is not None:
                events = conn.stream.end(ev.ts, ev.packet, ev.how)
                if events:
                    self._out.append(Decoded(conn.key, _state(conn), list(events)))
                self._out.append(Ended(conn.key, _state(conn), ev, conn.decoder.info,
                                       max(conn.ts_end, ev.ts),
                                       conn.tls.info if conn.tls is not None else None))
        elif type(ev) is TcpNote:
            conn = self._conns.get(ev.conn)
            if conn is not None:
                # The WebSocket direction may not be known yet: the sequencer
                # fills it in when the row is written.
                row = TcpViolation(ev.rule, ev.ts, ev.packet, ev.direction,
                                   ev.message if ev.direction is None else "",
                                   "" if ev.direction is None else f" stream: {ev.message}")
                self._out.append(Decoded(conn.key, _state(conn), [row]))

    def _first_bytes(self, conn: _Conn, ev: StreamData) -> None:
        conn.fresh = False
        tls = starts_tls(ev.data, ev.offset)
        if tls is not False:
            conn.tls = TlsBridge(conn.decoder, self.tls_keys, ev.direction,
                                 handshake_seen=bool(tls))
            conn.stream = conn.tls


def _state(conn: _Conn) -> ConnState:
    """The decoder's state for an item.  It changes a few times per connection but
    is asked for with every item (about once per message), so the last one is
    handed out again while equal: the items only read it."""
    if conn.tls is not None:
        websocket, not_websocket, plain_http, client = conn.tls.state()
    else:
        dec = conn.decoder
        websocket, not_websocket = dec.is_websocket, dec.not_websocket
        plain_http, client = dec.likely_plain_http, dec.info.client_direction
    last = conn.state
    if (last is None or last.websocket != websocket or last.not_websocket != not_websocket
            or last.likely_plain_http != plain_http or last.client_direction != client):
        last = conn.state = ConnState(websocket, not_websocket, plain_http, client)
    return last
