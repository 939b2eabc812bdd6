"""The TCP segment record the packet parser hands to the reassembler."""

from __future__ import annotations

from typing import NamedTuple

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


class TcpSegment(NamedTuple):
    src: bytes
    """Source IP address, packed (4 or 16 bytes)."""
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    """TCP flag bits (FIN, SYN, RST, PSH, ACK above)."""
    payload: bytes
    """The captured TCP payload."""
    missing: int = 0
    """Payload bytes on the wire that the snapshot length cut off (they follow
    ``payload``)."""
