"""Events the TCP reassembler emits, in capture order: records (see
:mod:`wsanalyze.sources.rawpacket`), never changed once emitted.

Directions are numbered from the TCP point of view: 0 is initiator → responder,
1 is responder → initiator.  The initiator is the sender of the first SYN when
one was captured, otherwise the sender of the first packet seen.  The WebSocket
layer decides later which side is the WebSocket client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

Endpoint = tuple[str, int]
"""(address in RFC 5952 / dotted form, port)."""


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class ConnectionStarted:
    conn: int
    """Reassembler-wide id, increasing in order of the connection's first packet."""
    ts: float
    packet: int
    initiator: Endpoint
    responder: Endpoint
    syn_seen: bool
    """True when the connection's SYN was captured (its start is known)."""

    def __init__(self, conn: int, ts: float, packet: int, initiator: Endpoint, responder: Endpoint,
                 syn_seen: bool) -> None:
        self.conn = conn
        self.ts = ts
        self.packet = packet
        self.initiator = initiator
        self.responder = responder
        self.syn_seen = syn_seen

    def __reduce__(self) -> tuple[object, ...]:
        return (ConnectionStarted, (self.conn, self.ts, self.packet, self.initiator, self.responder,
                                    self.syn_seen))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class StreamData:
    """In-order payload bytes of one direction."""

    conn: int
    direction: int
    ts: float
    packet: int
    """Number of the packet these bytes came from (each event holds the bytes of
    a single packet, so the WebSocket layer can attribute frames to packets)."""
    offset: int
    """Offset of ``data[0]`` in this direction's byte stream: 0 is the byte after
    the SYN when the SYN was seen, otherwise the first byte captured."""
    data: bytes

    def __init__(self, conn: int, direction: int, ts: float, packet: int, offset: int,
                 data: bytes) -> None:
        self.conn = conn
        self.direction = direction
        self.ts = ts
        self.packet = packet
        self.offset = offset
        self.data = data

    def __reduce__(self) -> tuple[object, ...]:
        return (StreamData, (self.conn, self.direction, self.ts, self.packet, self.offset,
                             self.data))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class StreamGap:
    """Bytes of one direction that were never captured (or were cut by snaplen,
    or dropped because a buffer limit was hit)."""

    conn: int
    direction: int
    ts: float
    packet: int
    """The packet where the gap became known: for a lost segment, the first packet
    captured after the hole (what Wireshark flags 'previous segment not
    captured'); for snaplen truncation, the truncated packet itself."""
    offset: int
    length: int
    reason: str
    """``"lost"`` (capture.gap), ``"truncated"`` (capture.truncated) or
    ``"limit"`` (capture.limit)."""

    def __init__(self, conn: int, direction: int, ts: float, packet: int, offset: int, length: int,
                 reason: str) -> None:
        self.conn = conn
        self.direction = direction
        self.ts = ts
        self.packet = packet
        self.offset = offset
        self.length = length
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (StreamGap, (self.conn, self.direction, self.ts, self.packet, self.offset,
                            self.length, self.reason))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class ConnectionEnded:
    conn: int
    ts: float
    """Timestamp of the connection's last packet."""
    packet: int
    """Number of the connection's last packet."""
    how: str
    """``"tcp-fin"``, ``"tcp-reset"`` or ``"capture-ended"``."""
    connect_rtt: float | None = None
    """Seconds from the initiator's SYN to its ACK completing the 3-way handshake
    (RFC 9293 §3.5), when all three were captured."""

    def __init__(self, conn: int, ts: float, packet: int, how: str,
                 connect_rtt: float | None = None) -> None:
        self.conn = conn
        self.ts = ts
        self.packet = packet
        self.how = how
        self.connect_rtt = connect_rtt

    def __reduce__(self) -> tuple[object, ...]:
        return (ConnectionEnded, (self.conn, self.ts, self.packet, self.how, self.connect_rtt))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class TcpNote:
    """A fact about the capture worth a row (conflicting overlaps, limits hit)."""

    conn: int
    direction: int | None
    ts: float
    packet: int
    rule: str
    """A ``capture.*`` rule id of RULES.md."""
    message: str

    def __init__(self, conn: int, direction: int | None, ts: float, packet: int, rule: str,
                 message: str) -> None:
        self.conn = conn
        self.direction = direction
        self.ts = ts
        self.packet = packet
        self.rule = rule
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (TcpNote, (self.conn, self.direction, self.ts, self.packet, self.rule, self.message))


TcpEvent = ConnectionStarted | StreamData | StreamGap | ConnectionEnded | TcpNote
