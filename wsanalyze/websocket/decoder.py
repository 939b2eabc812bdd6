"""The sans-IO decoder of one WebSocket connection: the coordinator.

Fed the reassembled byte streams of one TCP connection — ``data`` and ``gap``
calls per TCP direction, in capture order, then ``end`` — it follows the HTTP
opening handshake (RFC 6455 §4), then frames (§5), messages (§5.4, §5.6) and
permessage-deflate (RFC 7692), and returns :mod:`wsanalyze.websocket.events`.

It behaves like a lenient peer: a violation is reported and decoding goes on.
After a gap the message the gap touched is marked incomplete and decoding
resumes at the next frame boundary it can find.

Each TCP direction (a :class:`~wsanalyze.websocket.state.Side`) is in one
:class:`~wsanalyze.websocket.modes.Mode`; ``READERS`` names the function that
reads its bytes in that mode.  Where the rest lives:

==================  =====================================================
``http1.py``        HTTP/1 heads and bodies before the Upgrade
``upgrade.py``      pairing the Upgrade request and response, 101 → frames
``handshake.py``    pure handshake checks and the negotiated parameters
``framing.py``      frame headers and payloads (slow path and fast path)
``checks.py``       every frame-header rule, once
``messages.py``     finished messages: inflate, UTF-8, Close, Ping/Pong, end
``resync.py``       gaps, garbage and mid-stream starts
``state.py``        the state all of them act on
==================  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable

from wsanalyze.config import DecoderLimits
from wsanalyze.websocket import framing, http1, messages, resync, upgrade
from wsanalyze.websocket.events import (
    DecoderEvent,
    Direction,
    ViolationEvent,
    WebSocketDetected,
)
from wsanalyze.websocket.http1 import HttpHead
from wsanalyze.websocket.modes import Mode
from wsanalyze.websocket.state import ConnectionInfo, Side

__all__ = ["ConnectionDecoder", "ConnectionInfo", "DecoderLimits"]

# Hot-path compromise: ``Mode.WS`` costs ~200 ns per lookup on Python 3.11 (enum
# members are descriptors); data() runs per packet, so it compares to these.
_WS = Mode.WS
_DEAD = Mode.DEAD


class ConnectionDecoder:
    """Decode one TCP connection; see the module docstring."""

    def __init__(self, *, syn_seen: bool, limits: DecoderLimits | None = None,
                 frames: bool = True, messages: bool = True) -> None:
        self.limits = limits or DecoderLimits()
        self.want_frames = frames
        """Emit FrameEvents (skipped when nobody wants the frames table)."""
        self.want_messages = messages
        """Emit MessageEvents (the connection's counts are kept either way)."""
        self.syn_seen = syn_seen
        self.info = ConnectionInfo()
        self.sides = (Side(0), Side(1))
        self.events: list[DecoderEvent] = []
        self.frame_count = 0
        self.message_count = 0
        self._ended = False
        self.likely_plain_http = False
        """A whole HTTP exchange without an Upgrade was seen: probably not WebSocket."""
        self.not_websocket = False
        """The bytes are neither HTTP nor WebSocket frames."""
        self.request_problems = False
        """The Upgrade request broke a rule (the handshake is then ``invalid``)."""

    @property
    def is_websocket(self) -> bool:
        return self.info.detected is not None or self.info.handshake != "not-captured"

    # ----------------------------------------------------------------- feeding
    def data(self, ts: float, packet: int, direction: int, offset: int,
             data: bytes) -> list[DecoderEvent]:
        """In-order bytes of TCP direction ``direction`` starting at stream ``offset``."""
        side = self.sides[direction]
        if side.mode == _DEAD or not data:
            return self._take()
        if not side.buf and not side.chunks:
            side.buf_off = offset
        chunk = (offset, offset + len(data), packet, ts)
        if side.mode == _WS and not side.buf:
            # The common case: parse straight from the packet's bytes, no copy; every
            # byte of them is in this packet.  Its place in ``chunks`` is needed only
            # if a frame goes on into later packets.
            # Compiler compromise: a bool, not ``if side.hdr is not None`` — mypy keeps
            # ``side.hdr`` narrowed to None across parse_frames, and mypyc would
            # compile the test below away.
            mid_frame = side.hdr is not None
            if mid_frame:
                side.chunks.append(chunk)
                framing.parse_frames(self, side, data, (packet, ts))
            else:
                framing.parse_frames(self, side, data, (packet, ts))
                if side.buf or side.hdr is not None:
                    side.chunks.append(chunk)
        else:
            side.chunks.append(chunk)
            side.buf += data
            self.pump(side)
        return self._take()

    def gap(self, ts: float, packet: int, direction: int, offset: int, length: int,
            reason: str) -> list[DecoderEvent]:
        """``length`` bytes at ``offset`` of direction ``direction`` were not captured."""
        side = self.sides[direction]
        side.gaps += 1
        mode = side.mode
        if mode == Mode.DEAD or length <= 0:
            return self._take()
        if mode == Mode.WS:
            resync.gap_in_frames(self, side, ts, packet, length)
        elif mode == Mode.SCAN:
            side.drop_buffer()
            side.buf_off = offset + length
        elif mode == Mode.BODY and not side.buf and length <= side.body_left:
            side.body_left -= length
            side.buf_off = offset + length
        else:
            # A gap inside HTTP: the head or body framing is lost; look for frames.
            side.drop_buffer()
            side.buf_off = offset + length
            if self.is_websocket and side.ws_dir is not None:
                side.enter_scan("gap")
            else:
                side.mode = Mode.SCAN
                side.scan_reason = "gap"
        return self._take()

    def end(self, ts: float, packet: int, how: str) -> list[DecoderEvent]:
        """The TCP connection ended (``tcp-fin``, ``tcp-reset`` or ``capture-ended``)."""
        if self._ended:
            return self._take()
        self._ended = True
        for side in self.sides:
            if side.mode == Mode.SCAN and side.buf:
                resync.scan(self, side, final=True)
        for side in self.sides:
            if side.mode in (Mode.WS, Mode.SCAN):
                framing.flush(self, side, ts, packet)
            messages.release_held_frames(self, side)
        if self.is_websocket:
            messages.end_of_connection(self, ts, packet, how)
        else:
            self.info.end = how
        return self._take()

    # --------------------------------------------- for the modules it composes
    def violation(self, rule: str, direction: Direction | None, ts: float, packet: int | None,
                  message: str, frame: int | None = None,
                  stream_offset: int | None = None) -> None:
        self.events.append(ViolationEvent(rule, direction, ts, packet, message, frame,
                                          stream_offset))

    def ws_sides(self) -> tuple[Side | None, Side | None]:
        """(client side, server side), once known."""
        cd = self.info.client_direction
        if cd is None:
            return None, None
        return self.sides[cd], self.sides[1 - cd]

    def set_client(self, client_dir: int, how: str) -> None:
        """TCP direction ``client_dir`` is the client's (learnt ``how``)."""
        if self.info.client_direction is not None:
            return
        self.info.client_direction = client_dir
        self.info.detected = how
        self.sides[client_dir].ws_dir = "c2s"
        self.sides[1 - client_dir].ws_dir = "s2c"
        self.events.append(WebSocketDetected(client_dir, how))

    def pump(self, side: Side) -> None:
        """Process ``side``'s buffer as far as its mode allows."""
        readers = READERS
        while readers[side.mode](self, side):
            pass

    def on_head(self, side: Side, head: HttpHead, ts: float, packet: int) -> None:
        """An HTTP head was read (its last byte in ``packet``)."""
        if head.is_request:
            upgrade.on_request(self, side, head, ts, packet)
        else:
            upgrade.on_response(self, side, head, ts, packet)

    def not_handshake(self, side: Side) -> None:
        """The first bytes of a direction are not HTTP.  If the stream's start was
        captured (SYN seen), this is not WebSocket: RFC 6455 §4 starts every
        connection with the HTTP handshake.  Otherwise look for frames."""
        if self.syn_seen and side.buf_off == 0 and not self.is_websocket:
            side.mode = Mode.DEAD
            self.not_websocket = True
            side.drop_buffer()
            return
        side.mode = Mode.SCAN
        side.scan_reason = "mid-stream"

    def _take(self) -> list[DecoderEvent]:
        events = self.events
        self.events = []
        return events


def _read_frames(dec: ConnectionDecoder, side: Side) -> bool:
    framing.parse_frames(dec, side, side.buf)
    return False


def _read_nothing(dec: ConnectionDecoder, side: Side) -> bool:
    side.drop_buffer()
    return False


Reader = Callable[[ConnectionDecoder, Side], bool]

READERS: tuple[Reader, ...] = (
    http1.read_start,       # START
    http1.read_head,        # HTTP
    http1.read_body,        # BODY
    http1.read_chunk_line,  # CHUNKED
    http1.read_body,        # CHUNK_DATA
    http1.read_held,        # AWAIT
    _read_frames,           # WS
    resync.read_scan,       # SCAN
    _read_nothing,          # DEAD
)
"""The reader of each :class:`Mode`, indexed by it: it returns True when it made
progress (the mode may have changed: call again), False when it needs bytes."""
assert len(READERS) == len(Mode)
