"""Events the TCP reassembler emits, in capture order.

Directions are numbered from the TCP point of view: 0 is initiator → responder,
1 is responder → initiator.  The initiator is the sender of the first SYN when
one was captured, otherwise the sender of the first packet seen.  The WebSocket
layer decides later which side is the WebSocket client.
"""

from __future__ import annotations

from typing import NamedTuple

Endpoint = tuple[str, int]
"""(address in RFC 5952 / dotted form, port)."""


class ConnectionStarted(NamedTuple):
    conn: int
    """Reassembler-wide id, increasing in order of the connection's first packet."""
    ts: float
    packet: int
    initiator: Endpoint
    responder: Endpoint
    syn_seen: bool
    """True when the connection's SYN was captured (its start is known)."""


class StreamData(NamedTuple):
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


class StreamGap(NamedTuple):
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


class ConnectionEnded(NamedTuple):
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


class TcpNote(NamedTuple):
    """A fact about the capture worth a row (conflicting overlaps, limits hit)."""

    conn: int
    direction: int | None
    ts: float
    packet: int
    rule: str
    """A ``capture.*`` rule id of RULES.md."""
    message: str


TcpEvent = ConnectionStarted | StreamData | StreamGap | ConnectionEnded | TcpNote
