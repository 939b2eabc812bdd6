"""Small events the WebSocket decoder emits: records (see
:mod:`wsanalyze.sources.rawpacket`), never changed once emitted.

Directions here are WebSocket directions, ``"c2s"`` or ``"s2c"``; the decoder
only emits frame and message events once it knows which side is the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

Direction = Literal["c2s", "s2c"]
"""A WebSocket direction: client to server, or server to client."""


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class FrameEvent:
    """One WebSocket frame (RFC 6455 §5.2), emitted with the message it belongs to."""

    direction: Direction
    index: int
    """0-based position of the frame within its connection."""
    ts: float
    packet: int
    """Packet carrying the frame's first byte."""
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask_key: bytes | None
    header_bytes: int
    payload_length: int
    stream_offset: int
    message: int
    """Index of the message row this frame belongs to."""

    def __init__(self, direction: Direction, index: int, ts: float, packet: int, fin: bool,
                 rsv1: bool, rsv2: bool, rsv3: bool, opcode: int, masked: bool,
                 mask_key: bytes | None, header_bytes: int, payload_length: int, stream_offset: int,
                 message: int) -> None:
        self.direction = direction
        self.index = index
        self.ts = ts
        self.packet = packet
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.masked = masked
        self.mask_key = mask_key
        self.header_bytes = header_bytes
        self.payload_length = payload_length
        self.stream_offset = stream_offset
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (FrameEvent, (self.direction, self.index, self.ts, self.packet, self.fin, self.rsv1,
                             self.rsv2, self.rsv3, self.opcode, self.masked, self.mask_key,
                             self.header_bytes, self.payload_length, self.stream_offset,
                             self.message))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class MessageEvent:
    """A data message (reassembled, unmasked, inflated) or a control frame."""

    direction: Direction
    index: int
    ts_start: float
    ts: float
    packet: int
    """Packet carrying the message's last byte."""
    type: str
    opcode: int
    frames: int
    compressed: bool
    wire_bytes: int
    raw_length: int
    length: int
    """Payload length after inflating, even when ``payload`` was cut by a limit."""
    payload: bytes
    truncated: bool
    """``payload`` holds fewer than ``length`` bytes (a size limit cut it)."""
    text: str | None
    close_code: int | None
    close_reason: str | None
    complete: bool
    error: str | None

    def __init__(self, direction: Direction, index: int, ts_start: float, ts: float, packet: int,
                 type: str, opcode: int, frames: int, compressed: bool, wire_bytes: int,
                 raw_length: int, length: int, payload: bytes, truncated: bool, text: str | None,
                 close_code: int | None, close_reason: str | None, complete: bool,
                 error: str | None) -> None:
        self.direction = direction
        self.index = index
        self.ts_start = ts_start
        self.ts = ts
        self.packet = packet
        self.type = type
        self.opcode = opcode
        self.frames = frames
        self.compressed = compressed
        self.wire_bytes = wire_bytes
        self.raw_length = raw_length
        self.length = length
        self.payload = payload
        self.truncated = truncated
        self.text = text
        self.close_code = close_code
        self.close_reason = close_reason
        self.complete = complete
        self.error = error

    def __reduce__(self) -> tuple[object, ...]:
        return (MessageEvent, (self.direction, self.index, self.ts_start, self.ts, self.packet,
                               self.type, self.opcode, self.frames, self.compressed,
                               self.wire_bytes, self.raw_length, self.length, self.payload,
                               self.truncated, self.text, self.close_code, self.close_reason,
                               self.complete, self.error))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class ViolationEvent:
    """A rule of :mod:`wsanalyze.rules` broken (or a capture property noted)."""

    rule: str
    direction: Direction | None
    ts: float
    packet: int | None
    message: str
    frame: int | None = None
    stream_offset: int | None = None

    def __init__(self, rule: str, direction: Direction | None, ts: float, packet: int | None,
                 message: str, frame: int | None = None, stream_offset: int | None = None) -> None:
        self.rule = rule
        self.direction = direction
        self.ts = ts
        self.packet = packet
        self.message = message
        self.frame = frame
        self.stream_offset = stream_offset

    def __reduce__(self) -> tuple[object, ...]:
        return (ViolationEvent, (self.rule, self.direction, self.ts, self.packet, self.message,
                                 self.frame, self.stream_offset))


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class WebSocketDetected:
    """The connection carries WebSocket: emitted once, before any frame or message,
    as soon as the decoder knows which TCP direction is the client's."""

    client_direction: int
    """The TCP direction (0 or 1) that carries client-to-server bytes."""
    how: str
    """``"handshake"`` or ``"mid-stream"``."""

    def __init__(self, client_direction: int, how: str) -> None:
        self.client_direction = client_direction
        self.how = how

    def __reduce__(self) -> tuple[object, ...]:
        return (WebSocketDetected, (self.client_direction, self.how))


DecoderEvent = FrameEvent | MessageEvent | ViolationEvent | WebSocketDetected
