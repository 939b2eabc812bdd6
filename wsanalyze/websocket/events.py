"""Small immutable events the WebSocket decoder emits.

Directions here are WebSocket directions, ``"c2s"`` or ``"s2c"``; the decoder
only emits frame and message events once it knows which side is the client.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Direction = Literal["c2s", "s2c"]
"""A WebSocket direction: client to server, or server to client."""


class FrameEvent(NamedTuple):
    """One WebSocket frame (RFC 6455 §5.2), emitted with the message it belongs to."""

    direction: Direction
    index: int  # type: ignore[assignment]
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


class MessageEvent(NamedTuple):
    """A data message (reassembled, unmasked, inflated) or a control frame."""

    direction: Direction
    index: int  # type: ignore[assignment]
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


class ViolationEvent(NamedTuple):
    """A rule of :mod:`wsanalyze.rules` broken (or a capture property noted)."""

    rule: str
    direction: Direction | None
    ts: float
    packet: int | None
    message: str
    frame: int | None = None
    stream_offset: int | None = None


class WebSocketDetected(NamedTuple):
    """The connection carries WebSocket: emitted once, before any frame or message,
    as soon as the decoder knows which TCP direction is the client's."""

    client_direction: int
    """The TCP direction (0 or 1) that carries client-to-server bytes."""
    how: str
    """``"handshake"`` or ``"mid-stream"``."""


DecoderEvent = FrameEvent | MessageEvent | ViolationEvent | WebSocketDetected
