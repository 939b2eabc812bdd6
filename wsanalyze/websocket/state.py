"""The state the decoder keeps: per connection, per TCP direction, per message.

Plain slots classes (no behaviour beyond small helpers) so the modules that
act on them — :mod:`~wsanalyze.websocket.http1`, :mod:`.upgrade`,
:mod:`.framing`, :mod:`.messages`, :mod:`.resync` — share one picture, and a
compiled build can type them.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import final

from wsanalyze.websocket.deflate import MessageInflater
from wsanalyze.websocket.events import Direction, FrameEvent
from wsanalyze.websocket.frames import FrameHeader
from wsanalyze.websocket.handshake import DeflateParams
from wsanalyze.websocket.http1 import HttpHead
from wsanalyze.websocket.modes import Mode
from wsanalyze.websocket.pings import PingLedger
from wsanalyze.websocket.scan import Scanner


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class FrameRef:
    """A frame of a message, as the frames table needs it."""

    number: int
    """The frame's index in the connection (the frames table's ``index``)."""
    ts: float
    packet: int
    header: FrameHeader
    offset: int
    """Stream offset of the frame's first byte (TCP stream, not WebSocket)."""

    def __init__(self, number: int, ts: float, packet: int, header: FrameHeader,
                 offset: int) -> None:
        self.number = number
        self.ts = ts
        self.packet = packet
        self.header = header
        self.offset = offset

    def __reduce__(self) -> tuple[object, ...]:
        return (FrameRef, (self.number, self.ts, self.packet, self.header, self.offset))


@dataclass(slots=True)
class ConnectionInfo:
    """What the connections table reports, filled in as the decoder learns it."""

    client_direction: int | None = None
    host: str | None = None
    path: str | None = None
    origin: str | None = None
    user_agent: str | None = None
    subprotocols_offered: list[str] = field(default_factory=list)
    subprotocol: str | None = None
    extensions_offered: str | None = None
    extensions: str | None = None
    handshake: str = "not-captured"
    handshake_rtt: float | None = None
    deflate: bool = False
    deflate_params: DeflateParams | None = None
    """The negotiated permessage-deflate parameters (None when inferred mid-stream)."""
    close_code: int | None = None
    close_reason: str | None = None
    end: str = "capture-ended"
    messages: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    bytes: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    types: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Rows of the messages table by (direction, type)."""
    compressed: int = 0
    """Compressed data messages, their bytes as carried and once inflated:"""
    compressed_raw: int = 0
    compressed_inflated: int = 0
    incomplete: int = 0
    """Messages with bytes lost to the capture."""
    detected: str | None = None
    """``"handshake"`` or ``"mid-stream"`` once WebSocket traffic is recognised."""
    failed: bool = False
    """The client had to fail the connection (RFC 6455 §4.1: a 101 it must reject)."""


class Message:
    """A message being reassembled (or a control frame)."""

    __slots__ = ("complete", "compressed", "error", "frames", "inflate_broken", "inflated",
                 "kept", "last_packet", "last_ts", "opcode", "parts", "raw_length", "ts_start",
                 "type", "wire_bytes")

    def __init__(self, opcode: int, type: str, ts_start: float, compressed: bool) -> None:
        self.opcode = opcode
        self.type = type
        self.ts_start = ts_start
        self.compressed = compressed
        self.frames: list[FrameRef] = []
        self.wire_bytes = 0
        self.raw_length = 0
        self.parts: list[bytes] = []
        self.kept = 0
        self.complete = True
        self.error: str | None = None
        self.inflate_broken = False
        self.inflated: bytes | None = None
        self.last_ts = 0.0
        self.last_packet = 0


class Ping:
    """A Ping waiting for its Pong."""

    __slots__ = ("frames_then", "mismatch", "packet", "payload", "ts")

    def __init__(self, payload: bytes, ts: float, packet: int, frames_then: int) -> None:
        self.payload = payload
        self.ts = ts
        self.packet = packet
        self.frames_then = frames_then
        """Frames the other side had sent when the Ping was decoded."""
        self.mismatch: PongSeen | None = None
        """The first complete Pong after it that echoed no pending Ping."""


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class PongSeen:
    """Where a Pong was: what a ``pong.payload-mismatch`` row points at."""

    payload: bytes
    ts: float
    packet: int
    frame: int | None
    stream_offset: int | None

    def __init__(self, payload: bytes, ts: float, packet: int, frame: int | None,
                 stream_offset: int | None) -> None:
        self.payload = payload
        self.ts = ts
        self.packet = packet
        self.frame = frame
        self.stream_offset = stream_offset

    def __reduce__(self) -> tuple[object, ...]:
        return (PongSeen, (self.payload, self.ts, self.packet, self.frame, self.stream_offset))


class Side:
    """State of one TCP direction, grouped by the module that acts on it."""

    __slots__ = (
        "body_left", "buf", "buf_off", "chunks", "close_sent", "early_pongs", "f_complete",
        "f_done", "f_index", "f_left", "f_off", "f_packet", "f_ts", "frames_sent", "gaps", "hdr",
        "held_frames",
        "inflater", "late_response", "masked", "mode", "msg", "pings", "requests",
        "scan_reason", "scanner", "skipped", "synced", "target", "tcp_dir", "upgrade",
        "upgrade_ts", "ws_base", "ws_dir",
    )

    def __init__(self, tcp_dir: int) -> None:
        self.tcp_dir = tcp_dir
        self.ws_dir: Direction | None = None
        self.mode = Mode.START
        # Stream buffer (all modes)
        self.buf = bytearray()
        self.buf_off = 0
        """Stream offset of ``buf[0]``."""
        self.chunks: deque[tuple[int, int, int, float]] = deque()
        """(start offset, end offset, packet, ts) of the captured pieces in ``buf``
        and beyond (oldest first) — to name the packet carrying a byte."""
        self.ws_base: int | None = None
        """Stream offset of the first WebSocket byte (frames' ``stream_offset`` 0)."""
        self.gaps = 0
        # HTTP (http1.py, upgrade.py)
        self.body_left = 0
        self.requests: deque[HttpHead] = deque()
        self.upgrade: HttpHead | None = None
        self.upgrade_ts = 0.0
        self.late_response: tuple[HttpHead, float, int] | None = None
        """A 101 seen before its request (this is the client side)."""
        # The frame being read (framing.py): its header, index, stream offset, first
        # packet and ts, payload bytes left and done, and whether all were captured.
        self.hdr: FrameHeader | None = None
        self.f_index = 0
        self.f_off = 0
        self.f_packet = 0
        self.f_ts = 0.0
        self.f_left = 0
        self.f_done = 0
        self.f_complete = True
        self.masked: bool | None = None
        """The MASK bit this direction's frames must carry (§5.1)."""
        # Messages (messages.py)
        self.target: Message | None = None
        """Where the current frame's payload goes: ``msg``, or a control frame."""
        self.msg: Message | None = None
        """The data message in progress (possibly fragmented)."""
        self.inflater: MessageInflater | None = None
        self.close_sent = False
        self.frames_sent = 0
        self.pings: PingLedger[Ping] = PingLedger()
        """Pings this side sent that the other side has not answered yet."""
        self.held_frames: list[FrameEvent] = []
        """Rows of control frames sent between the fragments of ``msg``: they wait
        for its frames so the frames table stays in wire order."""
        self.early_pongs: deque[bytes] = deque(maxlen=8)
        """Pongs this side sent that answered no Ping seen so far."""
        # Resynchronisation (resync.py)
        self.scanner = Scanner()
        self.skipped = 0
        self.scan_reason = ""
        self.synced = False
        """Frame boundaries and message state are known (no scan since the last data
        message started): only then are fragmentation rules checked."""

    def enter_scan(self, reason: str) -> None:
        """Frame boundaries are lost (``reason``: gap, garbage): look for the next."""
        self.scanner.reset()
        self.mode = Mode.SCAN
        self.synced = False
        self.scan_reason = reason
        self.hdr = None
        if self.inflater is not None:
            self.inflater.lose_history()

    # ------------------------------------------------------------ the buffer
    def locate(self, offset: int) -> tuple[int, float]:
        """(packet, ts) of the captured piece holding stream ``offset``.

        Lookups come in increasing offset order, so pieces before ``offset`` are
        dropped as we go.
        """
        chunks = self.chunks
        while len(chunks) > 1 and chunks[0][1] <= offset:
            chunks.popleft()
        if chunks:
            _, _, packet, ts = chunks[0]
            return packet, ts
        return 0, 0.0

    def drop_buffer(self) -> None:
        self.buf_off += len(self.buf)
        self.buf.clear()
        self.chunks.clear()

    def consume(self, n: int) -> None:
        if n:
            del self.buf[:n]
            self.buf_off += n
            self.prune_chunks()

    def prune_chunks(self) -> None:
        """Forget pieces wholly consumed, except the frame's first packet is kept
        in the frame state already; keeps memory flat on long bodies and frames."""
        chunks = self.chunks
        off = self.buf_off
        while len(chunks) > 1 and chunks[0][1] <= off:
            chunks.popleft()
