"""The TCP segment record the packet parser hands to the reassembler (a record: see
:mod:`wsanalyze.sources.rawpacket`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class TcpSegment:
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

    def __init__(self, src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int,
                 flags: int, payload: bytes, missing: int = 0) -> None:
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.missing = missing

    def __reduce__(self) -> tuple[object, ...]:
        return (TcpSegment, (self.src, self.sport, self.dst, self.dport, self.seq, self.ack,
                             self.flags, self.payload, self.missing))
