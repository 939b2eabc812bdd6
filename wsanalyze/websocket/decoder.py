"""The sans-IO decoder of one WebSocket connection.

Fed the reassembled byte streams of one TCP connection — ``data`` and ``gap``
calls per TCP direction, in capture order, then ``end`` — it follows the HTTP
opening handshake (RFC 6455 §4), then frames (§5), messages (§5.4, §5.6) and
permessage-deflate (RFC 7692), and returns :mod:`wsanalyze.websocket.events`.

It behaves like a lenient peer: a violation is reported and decoding goes on.
After a gap the message the gap touched is marked incomplete and decoding
resumes at the next frame boundary it can find.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections import Counter, deque
from dataclasses import dataclass, field

from wsanalyze.websocket.checks import header_findings, is_clean
from wsanalyze.websocket.deflate import MessageInflater
from wsanalyze.websocket.events import (
    DecoderEvent,
    FrameEvent,
    MessageEvent,
    ViolationEvent,
    WebSocketDetected,
)
from wsanalyze.websocket.frames import (
    KNOWN_OPCODES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameHeader,
    opcode_name,
    parse_header,
    unmask,
)
from wsanalyze.websocket.handshake import (
    MAX_HEAD,
    DeflateParams,
    HttpHead,
    HttpParseError,
    accept_for_key,
    deflate_params,
    find_head_end,
    parse_extensions,
    parse_head,
)
from wsanalyze.websocket.scan import Scanner, ScanResult

# Per-direction parser modes.
_START = "start"  # nothing seen yet
_HTTP = "http"  # HTTP/1.x heads and bodies
_BODY = "body"  # skipping a Content-Length body
_CHUNKED = "chunked"  # skipping a chunked body
_CHUNK_DATA = "chunk-data"  # skipping one chunk's data, then back to chunked
_AWAIT = "await"  # client bytes after an Upgrade request, held until the response
_WS = "ws"  # WebSocket frames
_SCAN = "scan"  # looking for a frame boundary (mid-stream start or after a gap)
_DEAD = "dead"  # not WebSocket; bytes are ignored

_METHOD_PREFIXES = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ",
                    b"CONNECT ", b"TRACE ")
_CLOSE_CODES_RESERVED = frozenset((1004, 1005, 1006, 1015))
_MAX_FRAME = 1 << 48
"""A declared frame length this large (256 TiB) means the bytes are not a frame
header: the stream is resynchronised instead of waiting for the payload."""
_HELD_LIMIT = 1 << 20
"""Client bytes held while waiting for the answer to an Upgrade request."""


@dataclass(slots=True)
class DecoderLimits:
    """Resource limits of one connection's decoder (see README, Limits)."""

    max_payload: int = 64 << 20
    """Payload bytes kept per message; beyond it the payload is cut (``truncated``)
    and a ``message.too-big`` row is written."""
    max_inflate: int = 1 << 30
    """Inflated bytes per message after which inflating stops (decompression bombs);
    later messages of that direction may then lack compression history."""
    max_http_head: int = MAX_HEAD
    max_scan_buffer: int = 1 << 20


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


class _Message:
    """A message being reassembled (or a control frame)."""

    __slots__ = ("complete", "compressed", "error", "frames", "inflate_broken", "inflated",
                 "kept", "last_packet", "last_ts", "opcode", "parts", "raw_length", "ts_start",
                 "type", "wire_bytes")

    def __init__(self, opcode: int, type: str, ts_start: float, compressed: bool) -> None:
        self.opcode = opcode
        self.type = type
        self.ts_start = ts_start
        self.compressed = compressed
        self.frames: list[tuple[int, float, int, FrameHeader, int]] = []
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


class _Side:
    """Parser state of one TCP direction."""

    def __init__(self, tcp_dir: int) -> None:
        self.tcp_dir = tcp_dir
        self.ws_dir: str | None = None
        self.mode = _START
        self.buf = bytearray()
        self.buf_off = 0
        """Stream offset of ``buf[0]``."""
        self.chunks: deque[tuple[int, int, int, float]] = deque()
        """(start offset, end offset, packet, ts) of the captured pieces in ``buf``
        and beyond (oldest first) — to name the packet carrying a byte."""
        self.ws_base: int | None = None
        self.gaps = 0
        # HTTP
        self.body_left = 0
        self.requests: deque[HttpHead] = deque()
        self.upgrade: HttpHead | None = None
        self.upgrade_ts = 0.0
        # Frames
        self.hdr: FrameHeader | None = None
        self.f_index = 0
        self.f_off = 0
        self.f_packet = 0
        self.f_ts = 0.0
        self.f_left = 0
        self.f_done = 0
        self.f_complete = True
        self.target: _Message | None = None
        self.msg: _Message | None = None
        """The data message in progress (possibly fragmented)."""
        self.inflater: MessageInflater | None = None
        self.close_sent = False
        self.pings: list[tuple[bytes, float, int, int]] = []
        """Pings this side sent that the other side has not answered yet."""
        self.masked: bool | None = None
        self.skipped = 0
        self.scan_reason = ""
        self.late_response: tuple[HttpHead, float, int] | None = None
        """A 101 seen before its request (this is the client side)."""
        self.scanner = Scanner()
        self.synced = False
        """Frame boundaries and message state are known (no scan since the last data
        message started): only then are fragmentation rules checked."""
        self.frames_sent = 0
        self.early_pongs: deque[bytes] = deque(maxlen=8)
        """Pongs this side sent that answered no Ping seen so far."""


class ConnectionDecoder:
    """Decode one TCP connection; see the module docstring."""

    def __init__(self, *, syn_seen: bool, limits: DecoderLimits | None = None,
                 frames: bool = True, messages: bool = True) -> None:
        self.limits = limits or DecoderLimits()
        self.want_frames = frames
        self.want_messages = messages
        """Emit MessageEvents (the connection's counts are kept either way)."""
        """Emit FrameEvents (skipped when nobody wants the frames table)."""
        self.syn_seen = syn_seen
        self.info = ConnectionInfo()
        self._sides = (_Side(0), _Side(1))
        self._events: list[DecoderEvent] = []
        self._frame_count = 0
        self._message_count = 0
        self._ended = False
        self.likely_plain_http = False
        """A whole HTTP exchange without an Upgrade was seen: probably not WebSocket."""
        self.not_websocket = False
        """The bytes are neither HTTP nor WebSocket frames."""
        self._request_problems = False

    # ----------------------------------------------------------------- feeding
    @property
    def is_websocket(self) -> bool:
        return self.info.detected is not None or self.info.handshake != "not-captured"

    def data(self, ts: float, packet: int, direction: int, offset: int,
             data: bytes) -> list[DecoderEvent]:
        """In-order bytes of TCP direction ``direction`` starting at stream ``offset``."""
        side = self._sides[direction]
        if side.mode == _DEAD or not data:
            return self._take()
        if not side.buf and not side.chunks:
            side.buf_off = offset
        chunk = (offset, offset + len(data), packet, ts)
        if side.mode == _WS and not side.buf:
            # The common case: parse straight from the packet's bytes, no copy; every
            # byte of them is in this packet.  Its place in ``chunks`` is needed only
            # if a frame goes on into later packets.
            # (A bool, not ``if side.hdr is not None``: mypy would keep ``side.hdr``
            # narrowed to None across _parse_frames, and mypyc would check that.)
            mid_frame = side.hdr is not None
            if mid_frame:
                side.chunks.append(chunk)
                self._parse_frames(side, data, (packet, ts))
            else:
                self._parse_frames(side, data, (packet, ts))
                if side.buf or side.hdr is not None:
                    side.chunks.append(chunk)
        else:
            side.chunks.append(chunk)
            side.buf += data
            self._pump(side)
        return self._take()

    def gap(self, ts: float, packet: int, direction: int, offset: int, length: int,
            reason: str) -> list[DecoderEvent]:
        """``length`` bytes at ``offset`` of direction ``direction`` were not captured."""
        side = self._sides[direction]
        side.gaps += 1
        if side.mode in (_DEAD,) or length <= 0:
            return self._take()
        if side.mode == _WS:
            self._gap_in_frames(side, ts, packet, length)
        elif side.mode == _SCAN:
            self._drop_buffer(side)
            side.buf_off = offset + length
        elif side.mode in (_BODY,) and not side.buf and length <= side.body_left:
            side.body_left -= length
            side.buf_off = offset + length
        else:
            # A gap inside HTTP: the head or body framing is lost; look for frames.
            self._drop_buffer(side)
            side.buf_off = offset + length
            if self.is_websocket and side.ws_dir is not None:
                self._enter_scan(side, "gap")
            else:
                side.mode = _SCAN
                side.scan_reason = "gap"
        return self._take()

    def end(self, ts: float, packet: int, how: str) -> list[DecoderEvent]:
        """The TCP connection ended (``tcp-fin``, ``tcp-reset`` or ``capture-ended``)."""
        if self._ended:
            return self._take()
        self._ended = True
        for side in self._sides:
            if side.mode == _SCAN and side.buf:
                self._scan(side, final=True)
        for side in self._sides:
            if side.mode in (_WS, _SCAN):
                self._flush_side(side, ts, packet)
        info = self.info
        if self.is_websocket:
            c2s, s2c = self._ws_sides()
            closed = [s for s in (c2s, s2c) if s is not None and s.close_sent]
            if len(closed) == 2:
                info.end = "close-handshake"
            elif closed:
                info.end = "close-one-sided"
            else:
                info.end = how
            # A gap may have swallowed a Close: then nothing is reported.
            if info.detected is not None and how != "capture-ended" and len(closed) < 2 and \
                    info.handshake != "rejected" and not any(s.gaps for s in self._sides):
                who = "neither side" if not closed else f"only the {closed[0].ws_dir} side"
                # With one Close sent, the side that never answered it is at fault.
                offender = None if not closed else \
                    self._sides[1 - closed[0].tcp_dir].ws_dir
                self._violation("close.no-close-handshake", offender, ts, packet,
                                f"the TCP connection ended ({how}, packet {packet}) after "
                                f"{who} sent a Close frame")
            if how != "capture-ended":
                for pside in (c2s, s2c):
                    if pside is None:
                        continue
                    other = self._sides[1 - pside.tcp_dir]
                    for payload, _pts, ppacket, frames_then in pside.pings:
                        if other.gaps or other.frames_sent == frames_then:
                            # Only a peer that kept sending frames yet never answered is
                            # reported (a gap may have swallowed the Pong).
                            continue
                        self._violation(
                            "ping.unanswered", other.ws_dir, ts, packet,
                            f"Ping {_preview(payload)} sent by the {pside.ws_dir} side in packet "
                            f"{ppacket} was never answered with a Pong before the connection "
                            f"ended (packet {packet})")
        else:
            info.end = how
        return self._take()

    # ------------------------------------------------------------ internals
    def _take(self) -> list[DecoderEvent]:
        events = self._events
        self._events = []
        return events

    def _violation(self, rule: str, direction: str | None, ts: float, packet: int | None,
                   message: str, frame: int | None = None,
                   stream_offset: int | None = None) -> None:
        self._events.append(ViolationEvent(rule, direction, ts, packet, message, frame,
                                           stream_offset))

    def _ws_sides(self) -> tuple[_Side | None, _Side | None]:
        cd = self.info.client_direction
        if cd is None:
            return None, None
        return self._sides[cd], self._sides[1 - cd]

    def _locate(self, side: _Side, offset: int) -> tuple[int, float]:
        """(packet, ts) of the captured piece holding stream ``offset``.

        Lookups come in increasing offset order, so pieces before ``offset`` are
        dropped as we go.
        """
        chunks = side.chunks
        while len(chunks) > 1 and chunks[0][1] <= offset:
            chunks.popleft()
        if chunks:
            _, _, packet, ts = chunks[0]
            return packet, ts
        return 0, 0.0

    def _drop_buffer(self, side: _Side) -> None:
        side.buf_off += len(side.buf)
        side.buf.clear()
        side.chunks.clear()

    def _consume(self, side: _Side, n: int) -> None:
        if n:
            del side.buf[:n]
            side.buf_off += n
            self._prune_chunks(side)

    @staticmethod
    def _prune_chunks(side: _Side) -> None:
        """Forget pieces wholly consumed, except the frame's first packet is kept
        in the frame state already; keeps memory flat on long bodies and frames."""
        chunks = side.chunks
        off = side.buf_off
        while len(chunks) > 1 and chunks[0][1] <= off:
            chunks.popleft()

    def _set_client(self, client_dir: int, how: str) -> None:
        if self.info.client_direction is not None:
            return
        self.info.client_direction = client_dir
        self.info.detected = how
        self._sides[client_dir].ws_dir = "c2s"
        self._sides[1 - client_dir].ws_dir = "s2c"
        self._events.append(WebSocketDetected(client_dir, how))

    def _pump(self, side: _Side) -> None:
        """Process ``side``'s buffer as far as its mode allows."""
        while True:
            mode = side.mode
            if mode == _WS:
                self._parse_frames(side, side.buf)
                return
            if mode == _START:
                if not self._classify(side):
                    return
                continue
            if mode == _HTTP:
                if not self._parse_http(side):
                    return
                continue
            if mode == _BODY:
                take = min(side.body_left, len(side.buf))
                self._consume(side, take)
                side.body_left -= take
                if side.body_left:
                    return
                side.mode = _HTTP
                continue
            if mode == _CHUNK_DATA:
                take = min(side.body_left, len(side.buf))
                self._consume(side, take)
                side.body_left -= take
                if side.body_left:
                    return
                side.mode = _CHUNKED
                continue
            if mode == _CHUNKED:
                if not self._skip_chunked(side):
                    return
                continue
            if mode == _SCAN:
                self._scan(side, final=False)
                if side.mode == _SCAN:
                    return
                continue
            if mode == _AWAIT:
                if len(side.buf) > _HELD_LIMIT:
                    # The answer never came: treat what follows as frames anyway.
                    side.mode = _SCAN
                    continue
                return
            if mode == _DEAD:
                self._drop_buffer(side)
                return
            return

    def _classify(self, side: _Side) -> bool:
        """Decide from a direction's first bytes whether they are HTTP or frames."""
        buf = side.buf
        head = bytes(buf[:8])
        if len(head) < 8:
            if any(p.startswith(head) or head.startswith(p)
                   for p in (*_METHOD_PREFIXES, b"HTTP/1.")):
                return False  # may still become an HTTP start line
            self._not_handshake(side)
            return True
        if head.startswith(_METHOD_PREFIXES) or head.startswith(b"HTTP/1."):
            side.mode = _HTTP
        elif head[:2] in (b"\x16\x03", b"\x17\x03", b"\x15\x03") or head.startswith(b"PRI * HT"):
            # TLS records or HTTP/2: not WebSocket over cleartext TCP.
            side.mode = _DEAD
            self.not_websocket = True
        else:
            self._not_handshake(side)
        return True

    def _not_handshake(self, side: _Side) -> None:
        """The first bytes of a direction are not HTTP.  If the stream's start was
        captured (SYN seen), this is not WebSocket: RFC 6455 §4 starts every
        connection with the HTTP handshake.  Otherwise look for frames."""
        if self.syn_seen and side.buf_off == 0 and not self.is_websocket:
            side.mode = _DEAD
            self.not_websocket = True
            self._drop_buffer(side)
            return
        side.mode = _SCAN
        side.scan_reason = "mid-stream"

    # ---------------------------------------------------------------- HTTP
    def _parse_http(self, side: _Side) -> bool:
        buf = side.buf
        end = find_head_end(buf)
        if end < 0 or end > self.limits.max_http_head:
            if end > 0 or len(buf) > self.limits.max_http_head:
                packet, ts = self._locate(side, side.buf_off)
                self._violation("capture.limit", side.ws_dir, ts, packet,
                                f"an HTTP head starting in packet {packet} is longer than "
                                f"{self.limits.max_http_head} bytes (--limit-http-head); it is "
                                "not followed")
                self._not_http(side)
                side.scan_reason = "limit"
                return True
            return False
        raw = bytes(buf[:end])
        try:
            head = parse_head(raw)
        except HttpParseError:
            self._not_http(side)
            return True
        last_packet, last_ts = self._locate(side, side.buf_off + end - 1)
        self._consume(side, end)
        if head.is_request:
            self._on_request(side, head, last_ts, last_packet)
        else:
            self._on_response(side, head, last_ts, last_packet)
        return True

    def _not_http(self, side: _Side) -> None:
        side.mode = _SCAN
        side.scan_reason = "mid-stream"

    def _body_mode(self, side: _Side, head: HttpHead, *, response_to: str | None) -> None:
        """Skip the message body (RFC 9112 §6.3)."""
        status = head.status
        if head.is_request:
            has_body = head.get("content-length") is not None or head.get(
                "transfer-encoding") is not None
        else:
            has_body = not (response_to == "HEAD" or status in (204, 304) or
                            (status is not None and 100 <= status < 200))
        if not has_body:
            side.mode = _HTTP
            return
        if "chunked" in head.tokens("transfer-encoding"):
            side.mode = _CHUNKED
            return
        length = head.get_all("content-length")
        if length and length[0].strip().isdigit():
            side.body_left = int(length[0].strip())
            side.mode = _BODY if side.body_left else _HTTP
            return
        if head.is_request:
            side.mode = _HTTP
        else:
            # The body runs to the end of the connection: nothing else follows.
            side.mode = _DEAD
            self._drop_buffer(side)

    def _skip_chunked(self, side: _Side) -> bool:
        buf = side.buf
        line_end = buf.find(b"\r\n")
        if line_end < 0:
            if len(buf) > 1024:
                self._not_http(side)
                return True
            return False
        size_text = bytes(buf[:line_end]).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            self._not_http(side)
            return True
        if size == 0:
            # Last chunk, then optional trailer fields and an empty line.
            end = buf.find(b"\r\n\r\n", line_end)
            if end < 0:
                if len(buf) > self.limits.max_http_head:
                    self._not_http(side)
                    return True
                return False
            self._consume(side, end + 4)
            side.mode = _HTTP
            return True
        self._consume(side, line_end + 2)
        side.body_left = size + 2  # the chunk's data and its CRLF
        side.mode = _CHUNK_DATA
        return True

    def _on_request(self, side: _Side, head: HttpHead, ts: float, packet: int) -> None:
        upgrade = "websocket" in head.tokens("upgrade")
        if not upgrade:
            side.requests.append(head)
            self._body_mode(side, head, response_to=None)
            return
        late = side.late_response
        if late is not None:
            # The 101 was captured before this request (see _start_ws).
            side.late_response = None
            self._record_request(side, head, ts, packet)
            response, rts, rpacket = late
            ok = self._validate_response(response, head, rts, rpacket)
            self.info.handshake = "ok" if ok and not self._request_problems else "invalid"
            side.mode = _WS
            side.ws_base = side.buf_off
            side.synced = True
            return
        side.requests.append(head)
        side.upgrade = head
        side.upgrade_ts = ts
        side.mode = _AWAIT
        self._record_request(side, head, ts, packet)

    def _record_request(self, side: _Side, head: HttpHead, ts: float, packet: int) -> None:
        info = self.info
        info.handshake = "invalid"  # until a valid 101 arrives
        info.host = head.get("host")
        info.path = head.target
        info.origin = head.get("origin") or head.get("sec-websocket-origin")
        info.user_agent = head.get("user-agent")
        info.subprotocols_offered = [t.strip() for v in head.get_all("sec-websocket-protocol")
                                     for t in v.split(",") if t.strip()]
        info.extensions_offered = head.get("sec-websocket-extensions")
        self._validate_request(side, head, ts, packet)

    def _validate_request(self, side: _Side, head: HttpHead, ts: float, packet: int) -> None:
        problems = []
        if head.method != "GET":
            problems.append(f"method is {head.method}, not GET")
        try:
            major, minor = (int(x) for x in head.version.split("."))
            if (major, minor) < (1, 1):
                problems.append(f"HTTP version is {head.version}, below 1.1")
        except ValueError:
            problems.append(f"HTTP version {head.version!r} is not valid")
        if not head.get("host"):
            problems.append("Host is missing")
        if "upgrade" not in head.tokens("connection"):
            problems.append("Connection does not list Upgrade")
        client = "c2s"
        n_before = len(self._events)
        if problems:
            self._violation("handshake.request-invalid", client, ts, packet,
                            f"Upgrade request in packet {packet}: " + "; ".join(problems))
        key = head.get_all("sec-websocket-key")
        try:
            ok = len(key) == 1 and len(base64.b64decode(key[0].strip(), validate=True)) == 16
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            shown = key[0] if key else "missing"
            self._violation("handshake.bad-key", client, ts, packet,
                            f"Sec-WebSocket-Key {shown!r} in packet {packet} is not the base64 "
                            "of 16 bytes" if key else
                            f"Sec-WebSocket-Key is missing from the request in packet {packet}")
        version = head.get("sec-websocket-version")
        if version is None or version.strip() != "13":
            self._violation("handshake.bad-version", client, ts, packet,
                            f"Sec-WebSocket-Version is {version!r}, not 13 (packet {packet})")
        self._request_problems = len(self._events) > n_before

    def _on_response(self, side: _Side, head: HttpHead, ts: float, packet: int) -> None:
        status = head.status or 0
        other = self._sides[1 - side.tcp_dir]
        if 100 <= status < 200 and status != 101:
            side.mode = _HTTP  # interim response; the final one follows
            return
        request = other.requests.popleft() if other.requests else None
        if request is None or request is not other.upgrade:
            if status == 101 and request is None and other.upgrade is None:
                # The request was not captured; the 101 still starts WebSocket.
                self._start_ws(client=other, server=side, head=head, request=None,
                               ts=ts, packet=packet)
                return
            if request is not None and not other.requests and other.mode != _AWAIT:
                self.likely_plain_http = True
            self._body_mode(side, head,
                            response_to=request.method if request is not None else None)
            return
        if status != 101:
            self.info.handshake = "rejected"
            self._set_client(other.tcp_dir, "handshake")
            self._violation("handshake.rejected", "s2c", ts, packet,
                            f"the server answered the Upgrade request with {status} "
                            f"{head.reason} (packet {packet})")
            other.upgrade = None
            other.mode = _HTTP
            self._body_mode(side, head, response_to="GET")
            self._pump(other)
            return
        self._start_ws(client=other, server=side, head=head, request=request, ts=ts,
                       packet=packet)

    def _start_ws(self, *, client: _Side, server: _Side, head: HttpHead,
                  request: HttpHead | None, ts: float, packet: int) -> None:
        info = self.info
        self._set_client(client.tcp_dir, "handshake")
        if request is not None:
            info.handshake_rtt = max(0.0, ts - client.upgrade_ts)
        info.handshake = "ok" if request is not None else "not-captured"
        info.extensions = head.get("sec-websocket-extensions")
        protocols = head.get_all("sec-websocket-protocol")
        info.subprotocol = ", ".join(p.strip() for p in protocols) if protocols else None
        if request is not None and not self._validate_response(head, request, ts, packet):
            info.handshake = "invalid"
        if request is not None and info.handshake == "ok" and self._request_problems:
            info.handshake = "invalid"
        for name, params in parse_extensions(head.get_all("sec-websocket-extensions")):
            if name == "permessage-deflate" and not info.deflate:
                info.deflate = True
                agreed, problems = deflate_params(params)
                info.deflate_params = agreed
                if problems:
                    self._violation("deflate.bad-negotiation", "s2c", ts, packet,
                                    "permessage-deflate response in packet "
                                    f"{packet}: " + "; ".join(problems))
        client.upgrade = None
        dparams = info.deflate_params or DeflateParams()
        for side in (client, server):
            side.masked = side is client
            if side is client and client.mode == _SCAN:
                # The client's bytes could not be followed (e.g. a head over the
                # limit): find its first frame.
                continue
            if side is client and request is None and client.mode in (_START, _HTTP) and \
                    (not client.buf or _may_be_request(client.buf)):
                # The request may still come: the capture can hold packets of the
                # two directions out of order.  Until then, wait and see.
                client.late_response = (head, ts, packet)
                client.mode = _START
            else:
                side.mode = _WS
                side.ws_base = side.buf_off
                side.synced = True  # framing is known from the first byte
            if info.deflate:
                is_client = side is client
                side.inflater = MessageInflater(
                    self.limits.max_payload, max_inflate=self.limits.max_inflate,
                    no_context_takeover=dparams.no_context_takeover(is_client),
                    window_bits=dparams.window_bits(is_client))
        self._pump(server)
        self._pump(client)

    def _validate_response(self, head: HttpHead, request: HttpHead, ts: float,
                           packet: int) -> bool:
        ok = True
        problems = []
        if "websocket" not in head.tokens("upgrade"):
            problems.append("Upgrade is not websocket")
        if "upgrade" not in head.tokens("connection"):
            problems.append("Connection does not list Upgrade")
        if problems:
            ok = False
            self._violation("handshake.response-invalid", "s2c", ts, packet,
                            f"101 response in packet {packet}: " + "; ".join(problems))
        key = request.get("sec-websocket-key")
        accept = head.get("sec-websocket-accept")
        if key is not None:
            expected = accept_for_key(key)
            if accept is None or accept.strip() != expected:
                ok = False
                self._violation("handshake.bad-accept", "s2c", ts, packet,
                                f"Sec-WebSocket-Accept is {accept!r} in packet {packet}, "
                                f"expected {expected!r} for key {key.strip()!r}")
        offered = set(self.info.subprotocols_offered)
        if self.info.subprotocol is not None and self.info.subprotocol not in offered:
            ok = False
            self._violation("handshake.unrequested-subprotocol", "s2c", ts, packet,
                            f"the server selected subprotocol {self.info.subprotocol!r} "
                            f"(packet {packet}); the client offered "
                            f"{sorted(offered) or 'none'}")
        offers = parse_extensions(request.get_all("sec-websocket-extensions"))
        offered_names = {name for name, _ in offers}
        for name, params in parse_extensions(head.get_all("sec-websocket-extensions")):
            if name not in offered_names:
                ok = False
                self._violation("handshake.unrequested-extension", "s2c", ts, packet,
                                f"the server accepted extension {name!r} (packet {packet}) "
                                "that the client did not offer")
                continue
            if name == "permessage-deflate":
                offered_params = {p for n, ps in offers if n == name for p, _ in ps}
                self._check_server_window(offers, params, ts, packet)
                if any(p == "client_max_window_bits" for p, _ in params) and \
                        "client_max_window_bits" not in offered_params:
                    ok = False
                    self._violation("handshake.unrequested-extension", "s2c", ts, packet,
                                    "the server sent client_max_window_bits (packet "
                                    f"{packet}) but the client did not offer it "
                                    "(RFC 7692 §7.1.2.2)")
        return ok

    def _check_server_window(self, offers: list, params: list, ts: float, packet: int) -> None:
        """RFC 7692 §7.1.2.1: a server accepts server_max_window_bits "with the same
        or smaller value as the offer"."""
        answered = [v for p, v in params if p == "server_max_window_bits"]
        if not answered or not answered[0] or not answered[0].isdigit():
            return
        limits = []
        for name, ps in offers:
            if name != "permessage-deflate":
                continue
            values = [v for p, v in ps if p == "server_max_window_bits"]
            if not values:
                return  # an offer without the parameter allows any value
            if values[0] and values[0].isdigit():
                limits.append(int(values[0]))
        if limits and int(answered[0]) > max(limits):
            self._violation("deflate.bad-negotiation", "s2c", ts, packet,
                            f"server_max_window_bits={answered[0]} in the response (packet "
                            f"{packet}) is larger than the {max(limits)} the client offered")

    # ------------------------------------------------------------- frames
    def _enter_scan(self, side: _Side, reason: str) -> None:
        side.scanner.reset()
        side.mode = _SCAN
        side.synced = False
        side.scan_reason = reason
        side.hdr = None
        if side.inflater is not None:
            side.inflater.lose_history()

    def _scan(self, side: _Side, *, final: bool) -> None:
        """Look for the next frame boundary in a direction whose framing is unknown."""
        if not side.buf:
            return
        known_masked = side.masked
        if known_masked is None and self.info.client_direction is not None:
            known_masked = side.ws_dir == "c2s"
        rsv1_ok = self.info.deflate or self.info.detected is None or \
            self.info.handshake == "not-captured"
        base = side.buf_off
        starts = frozenset(s - base for s, _, _, _ in side.chunks if s >= base)
        ends = frozenset(e - base for _, e, _, _ in side.chunks if e > base)
        result = side.scanner.scan(side.buf, base, masked=known_masked, rsv1_ok=rsv1_ok,
                                   starts=starts, ends=ends, final=final)
        if result is not None:
            self._start_frames_at(side, result, result.offset)
            return
        # Drop what can no longer start a frame; bound what is kept.
        first = side.scanner.first_pending(base)
        drop = len(side.buf) if first is None else first - base
        if len(side.buf) - drop > self.limits.max_scan_buffer:
            drop = len(side.buf) - self.limits.max_scan_buffer
        side.skipped += drop
        self._consume(side, drop)
        if not self.is_websocket and (final or side.skipped > self.limits.max_scan_buffer):
            side.mode = _DEAD
            self.not_websocket = all(s.mode == _DEAD or (s.mode == _START and not s.buf)
                                     for s in self._sides)
            self._drop_buffer(side)

    def _start_frames_at(self, side: _Side, result: ScanResult, skipped: int) -> None:
        offset = side.buf_off + skipped
        packet, ts = self._locate(side, offset)
        if self.info.client_direction is None:
            client = side.tcp_dir if result.masked else 1 - side.tcp_dir
            self._set_client(client, "mid-stream")
            for s in self._sides:
                s.masked = s.ws_dir == "c2s"
        total_skipped = side.skipped + skipped
        reason = side.scan_reason
        self._consume(side, skipped)
        side.skipped = 0
        if side.ws_base is None:
            # No handshake seen: offsets count from the first byte captured.
            side.ws_base = 0
        if reason == "mid-stream":
            note = (f"the connection began before the capture; the {side.ws_dir} stream is "
                    f"decoded from the first whole frame in packet {packet}")
            if total_skipped:
                note += f", after {total_skipped} bytes of a frame whose start was not captured"
            self._violation("capture.mid-stream", side.ws_dir, ts, packet, note,
                            stream_offset=offset - side.ws_base)
            if side.inflater is None and self.info.deflate:
                side.inflater = MessageInflater(self.limits.max_payload,
                                                max_inflate=self.limits.max_inflate)
                side.inflater.lose_history()
        elif reason == "garbage":
            self._violation("frame.resynchronised", side.ws_dir, ts, packet,
                            f"decoding of the {side.ws_dir} stream resumed at packet {packet} "
                            f"after skipping {total_skipped + 1} bytes",
                            stream_offset=offset - side.ws_base)
        elif total_skipped:
            self._violation("capture.undecodable", side.ws_dir, ts, packet,
                            f"{total_skipped} bytes of the {side.ws_dir} stream after a gap "
                            f"could not be framed; decoding resumed at packet {packet}",
                            stream_offset=offset - side.ws_base)
        side.mode = _WS
        self._parse_frames(side, side.buf)

    def _gap_in_frames(self, side: _Side, ts: float, packet: int, length: int) -> None:
        """A gap while following frames: finish what it touched, resume after it."""
        if side.hdr is not None and not side.buf and side.f_left > 0:
            # The gap falls in a frame's payload whose header we saw.
            take = min(length, side.f_left)
            side.f_left -= take
            side.f_done += take
            side.f_complete = False
            target = side.target
            if target is not None:
                target.complete = False
                target.raw_length += take
                if target.compressed and not target.inflate_broken and side.inflater:
                    target.inflated = side.inflater.abandon()
                    target.inflate_broken = True
            side.buf_off += take
            length -= take
            if side.f_left == 0:
                self._frame_done(side, ts, packet)
            if length == 0:
                return
        # The gap swallowed a frame header: the framing must be found again.
        if side.hdr is not None:
            # The gap is inside a frame header plus... finish the frame as incomplete.
            side.f_complete = False
            if side.target is not None:
                side.target.complete = False
            side.f_left = 0
            self._frame_done(side, ts, packet)
        msg = side.msg
        if msg is not None:
            msg.complete = False
            if msg.compressed and side.inflater and not msg.inflate_broken:
                msg.inflated = side.inflater.abandon()
                msg.inflate_broken = True
        side.buf_off += len(side.buf) + length
        side.buf.clear()
        side.chunks.clear()
        self._enter_scan(side, "gap")

    def _parse_frames(self, side: _Side, buf: bytes | bytearray,
                      here: tuple[int, float] | None = None) -> None:
        """Frames from ``buf`` (``side.buf``, or a packet's bytes when that is empty,
        then ``here`` is that packet's number and timestamp); what is left, an
        incomplete header, stays in ``side.buf``."""
        pos = 0
        size = len(buf)
        locate = self._locate
        while True:
            if side.hdr is None:
                h = parse_header(buf, pos)
                if h is None:
                    break
                if h.length >= _MAX_FRAME or (h.opcode not in KNOWN_OPCODES and
                                              (h.rsv2 or h.rsv3)):
                    if buf is not side.buf:
                        side.buf += buf
                        if here is not None and (not side.chunks or
                                                 side.chunks[-1][2] != here[0]):
                            side.chunks.append((side.buf_off, side.buf_off + size, *here))
                    self._lost_framing(side, h, pos)
                    return
                end = pos + h.header_length + h.length
                if here is not None and end <= size and h.fin and self._is_plain(side, h):
                    # The common case: a whole message or control frame in this packet.
                    self._whole_message(side, h, buf, pos, end, here)
                    pos = end
                    continue
                self._frame_start(side, h, side.buf_off + pos, here)
                pos += h.header_length
                if h.length == 0:
                    packet, ts = here or locate(side, side.buf_off + pos - 1)
                    self._frame_done(side, ts, packet)
                    continue
            take = size - pos
            if take <= 0:
                break
            if take > side.f_left:
                take = side.f_left
            piece = bytes(buf[pos:pos + take]) if take != size else bytes(buf)
            pos += take
            self._payload(side, piece)
            if side.f_left == 0:
                packet, ts = here or locate(side, side.buf_off + pos - 1)
                self._frame_done(side, ts, packet)
        if buf is side.buf:
            if pos:
                del buf[:pos]
        elif pos < size:
            side.buf += buf[pos:]
        if pos:
            side.buf_off += pos
            self._prune_chunks(side)

    def _is_plain(self, side: _Side, h: FrameHeader) -> bool:
        """A final frame that breaks no rule and needs no reassembly: a text or
        binary message when none is in progress, or a control frame."""
        return h.fin and h.opcode != OP_CONTINUATION and h.length <= self.limits.max_payload \
            and is_clean(
            h, side.masked, self.info.deflate, side.msg is not None, side.close_sent)

    def _whole_message(self, side: _Side, h: FrameHeader, buf: bytes | bytearray, pos: int,
                       end: int, here: tuple[int, float]) -> None:
        """Decode a frame that is a whole message, as _frame_start, _payload and
        _frame_done would, without their per-piece bookkeeping."""
        packet, ts = here
        op = h.opcode
        index = self._frame_count
        self._frame_count = index + 1
        side.frames_sent += 1
        self.info.bytes[side.ws_dir] += end - pos  # type: ignore[index]
        payload = bytes(buf[pos + h.header_length:end])
        if h.mask_key is not None:
            payload = unmask(payload, h.mask_key)
        inflater = side.inflater
        compressed = h.rsv1 and inflater is not None
        msg = _Message(op, opcode_name(op), ts, h.rsv1)
        msg.frames.append((index, ts, packet, h, side.buf_off + pos))
        msg.wire_bytes = end - pos
        msg.raw_length = h.length
        msg.last_ts = ts
        msg.last_packet = packet
        if op <= OP_BINARY:
            side.synced = True
        if compressed:
            inflater.whole(payload)  # type: ignore[union-attr]
        elif not h.rsv1:
            msg.parts.append(payload)
            msg.kept = h.length
        self._emit_message(side, msg, ts, packet)

    def _lost_framing(self, side: _Side, h: FrameHeader, pos: int) -> None:
        """The bytes at ``pos`` cannot be a frame a peer meant: report the header's
        violations, then look for the next plausible frame after it."""
        offset = side.buf_off + pos
        packet, ts = self._locate(side, offset)
        self._check_header(side, h, ts, packet, offset, framed=False)
        self._violation("frame.unparseable", side.ws_dir, ts, packet,
                        f"the {side.ws_dir} stream cannot be followed at stream offset "
                        f"{offset - (side.ws_base or 0)} (packet {packet}): header "
                        f"{bytes(side.buf[pos:pos + h.header_length]).hex()} declares opcode "
                        f"0x{h.opcode:X} and length {h.length}", None,
                        offset - (side.ws_base or 0))
        msg = side.msg
        if msg is not None:
            msg.complete = False
        self._consume(side, pos + 1)
        self._enter_scan(side, "garbage")
        self._pump(side)

    def _frame_start(self, side: _Side, h: FrameHeader, offset: int,
                     here: tuple[int, float] | None = None) -> None:
        packet, ts = here or self._locate(side, offset)
        side.hdr = h
        side.f_index = self._frame_count
        self._frame_count += 1
        side.f_off = offset
        side.f_packet = packet
        side.f_ts = ts
        side.f_left = h.length
        side.f_done = 0
        side.f_complete = True
        side.frames_sent += 1
        direction = side.ws_dir
        info = self.info
        info.bytes[direction] += h.header_length + h.length  # type: ignore[index]
        op = h.opcode
        # Most frames break no rule: the cheap predicate first.
        if not is_clean(h, side.masked, info.deflate, side.msg is not None, side.close_sent):
            self._check_header(side, h, ts, packet, offset)
        if op >= 8 or op not in KNOWN_OPCODES:
            # Control frames (and reserved opcodes) stand alone, even between fragments.
            side.target = _Message(op, opcode_name(op), ts, False)
            return
        msg = side.msg
        if op == OP_CONTINUATION:
            if msg is None:
                # The message's first frame was not seen (gap) or never sent.
                msg = side.msg = _Message(op, "continuation", ts, False)
                msg.complete = False
        else:
            if msg is not None:
                # A new message while one was in progress: fragment.interleaved, or
                # after a gap the end of the old one was lost.
                msg.complete = False
                if side.synced:
                    msg.error = "fragment.interleaved"
                self._emit_message(side, msg, msg.last_ts or ts, msg.last_packet or packet)
            side.synced = True
            compressed = h.rsv1 and info.deflate
            msg = side.msg = _Message(op, opcode_name(op), ts, compressed)
            if compressed and side.inflater is not None:
                side.inflater.begin()
        side.target = msg

    def _check_header(self, side: _Side, h: FrameHeader, ts: float, packet: int,
                      offset: int, *, framed: bool = True) -> None:
        """Report the rules ``h`` breaks (:mod:`wsanalyze.websocket.checks`)."""
        if h.rsv1 and not h.rsv2 and not h.rsv3 and not self.info.deflate:
            self._infer_deflate(side, h)
        findings = header_findings(h, side.ws_dir, deflate=self.info.deflate,
                                   message_type=side.msg.type if side.msg else None,
                                   synced=side.synced, close_sent=side.close_sent)
        if not findings:
            return
        idx = side.f_index if framed else None
        so = offset - (side.ws_base or 0)
        where = f"(frame {idx}, packet {packet})" if framed else \
            f"(stream offset {so}, packet {packet})"
        for rule, text in findings:
            self._violation(rule, side.ws_dir, ts, packet, f"{text} {where}", idx, so)

    def _infer_deflate(self, side: _Side, h: FrameHeader) -> bool:
        """Mid-stream: RSV1 on a data frame means permessage-deflate is in use."""
        info = self.info
        if info.detected != "mid-stream" or info.handshake != "not-captured":
            return False
        if h.opcode not in (OP_TEXT, OP_BINARY):
            return False
        info.deflate = True
        for s in self._sides:
            if s.inflater is None:
                s.inflater = MessageInflater(self.limits.max_payload,
                                             max_inflate=self.limits.max_inflate)
                s.inflater.lose_history()
        return True

    def _payload(self, side: _Side, piece: bytes) -> None:
        h = side.hdr
        assert h is not None
        if h.mask_key is not None:
            piece = unmask(piece, h.mask_key, side.f_done & 3)
        side.f_done += len(piece)
        side.f_left -= len(piece)
        msg = side.target
        if msg is None:
            return
        if msg.compressed:
            if not msg.inflate_broken and side.inflater is not None:
                side.inflater.feed(piece)
            msg.raw_length += len(piece)
            return
        msg.raw_length += len(piece)
        room = self.limits.max_payload - msg.kept
        if room > 0 and msg.complete:
            # After a gap only the prefix before it is kept: later bytes would
            # sit at the wrong offsets.
            if len(piece) > room:
                piece = piece[:room]
            msg.parts.append(piece)
            msg.kept += len(piece)

    def _frame_done(self, side: _Side, ts: float, packet: int) -> None:
        h = side.hdr
        assert h is not None
        side.hdr = None
        msg = side.target
        side.target = None
        if msg is None:
            return
        msg.frames.append((side.f_index, side.f_ts, side.f_packet, h, side.f_off))
        msg.wire_bytes += h.header_length + h.length
        if not side.f_complete:
            msg.complete = False
            msg.raw_length += h.length - side.f_done
        msg.last_ts = ts
        msg.last_packet = packet
        if h.opcode >= 8 or h.opcode not in KNOWN_OPCODES:
            self._emit_message(side, msg, ts, packet)
        elif h.fin:
            side.msg = None
            self._emit_message(side, msg, ts, packet)

    def _flush_side(self, side: _Side, ts: float, packet: int) -> None:
        """The capture or connection ended inside a frame or message."""
        if side.hdr is not None:
            side.f_complete = False
            if side.target is not None:
                side.target.complete = False
            h = side.hdr
            msg = side.target
            side.hdr = None
            side.target = None
            if msg is not None:
                msg.frames.append((side.f_index, side.f_ts, side.f_packet, h, side.f_off))
                msg.wire_bytes += h.header_length + h.length
                msg.raw_length += h.length - side.f_done
                if msg is not side.msg:
                    self._emit_message(side, msg, msg.last_ts or side.f_ts,
                                       msg.last_packet or side.f_packet)
        msg = side.msg
        if msg is not None:
            side.msg = None
            msg.complete = False
            if msg.compressed and side.inflater and not msg.inflate_broken:
                msg.inflated = side.inflater.abandon()
                msg.inflate_broken = True
            if msg.frames:
                self._emit_message(side, msg, msg.last_ts or ts, msg.last_packet or packet)

    def _emit_message(self, side: _Side, msg: _Message, ts: float, packet: int) -> None:
        direction = side.ws_dir or "c2s"
        index = self._message_count
        self._message_count += 1
        error = msg.error
        length = msg.raw_length
        if msg.compressed:
            inflater = side.inflater
            if msg.inflate_broken or inflater is None:
                payload = msg.inflated or b""
                length = len(payload)
            else:
                payload = inflater.end()
                length = inflater.total
                if inflater.violation is not None:
                    rule, detail = inflater.violation
                    self._violation(rule, direction, ts, packet,
                                    f"compressed {msg.type} message in packet {packet}: {detail}",
                                    msg.frames[0][0], msg.frames[0][4] - (side.ws_base or 0))
                if inflater.error is not None:
                    error = inflater.error
                    self._violation(
                        inflater.error, direction,
                        ts, packet,
                        (f"compressed {msg.type} message in packet {packet} does not inflate: "
                         f"{inflater.error_detail}") if error.startswith("deflate") else
                        (f"compressed {msg.type} message in packet {packet} refers to "
                         "compression history lost to the capture; its payload is unknown"),
                        msg.frames[0][0], msg.frames[0][4] - (side.ws_base or 0))
                    payload = b""
                    length = 0
        else:
            payload = msg.parts[0] if len(msg.parts) == 1 else b"".join(msg.parts)
        truncated = len(payload) < length
        capped = msg.compressed and side.inflater is not None and side.inflater.capped
        if length > self.limits.max_payload or capped:
            if capped:
                used = max(1, side.inflater.consumed)  # type: ignore[union-attr]
                vtext = (f"compressed {msg.type} message ending in packet {packet}: inflating "
                         f"stopped at the {self.limits.max_inflate}-byte cap after {used} of its "
                         f"{msg.raw_length} compressed bytes (ratio {length / used:.0f}:1, a "
                         "decompression bomb?); its stored payload is cut")
            else:
                ratio = (f", inflated from {msg.raw_length} bytes (ratio "
                         f"{length / max(1, msg.raw_length):.0f}:1)") if msg.compressed else ""
                vtext = (f"{msg.type} message ending in packet {packet} is {length} bytes"
                         f"{ratio}, over the {self.limits.max_payload}-byte limit; its stored "
                         "payload is cut")
            self._violation("message.too-big", direction, ts, packet, vtext,
                            msg.frames[0][0] if msg.frames else None,
                            msg.frames[0][4] - (side.ws_base or 0) if msg.frames else None)
        opcode = msg.opcode
        text = None
        close_code = close_reason = None
        if opcode == OP_TEXT and error is None:
            text = self._check_text(side, msg, payload, truncated, ts, packet)
        elif opcode == OP_CLOSE:
            close_code, close_reason = self._on_close(side, msg, payload, ts, packet)
        elif opcode == OP_PING:
            other = self._sides[1 - side.tcp_dir]
            if payload in other.early_pongs:
                # Its Pong was decoded first: the capture holds the two directions'
                # packets slightly out of order.
                other.early_pongs.remove(payload)
            elif not side.close_sent and not other.close_sent:
                # After a Close no Pong is owed (RFC 6455 §5.5.2).
                side.pings.append((payload, ts, packet, other.frames_sent))
        elif opcode == OP_PONG:
            self._on_pong(side, msg, payload, ts, packet)
        info = self.info
        info.types[(direction, msg.type)] += 1
        if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION) or 3 <= opcode <= 7:
            info.messages[direction] += 1
            if msg.compressed:
                info.compressed += 1
                info.compressed_raw += msg.raw_length
                info.compressed_inflated += length
        if not msg.complete:
            info.incomplete += 1
        first = msg.frames[0] if msg.frames else None
        if self.want_frames:
            base = side.ws_base or 0
            for f_index, f_ts, f_packet, h, f_off in msg.frames:
                self._events.append(FrameEvent(
                    direction, f_index, f_ts, f_packet, h.fin, h.rsv1, h.rsv2, h.rsv3,
                    h.opcode, h.masked, h.mask_key, h.header_length, h.length, f_off - base,
                    index))
        if not self.want_messages:
            return
        self._events.append(MessageEvent(
            direction, index, first[1] if first else msg.ts_start, ts, packet, msg.type, opcode,
            len(msg.frames), msg.compressed, msg.wire_bytes, msg.raw_length, length, payload,
            truncated, text, close_code, close_reason, msg.complete, error))

    def _check_text(self, side: _Side, msg: _Message, payload: bytes, truncated: bool,
                    ts: float, packet: int) -> str | None:
        try:
            if truncated or not msg.complete:
                # Only a prefix is known: a character cut at its end is not an error.
                return codecs.getincrementaldecoder("utf-8")().decode(payload, final=False)
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            f_index = msg.frames[0][0] if msg.frames else None
            self._violation("text.invalid-utf8", side.ws_dir, ts, packet,
                            f"text message ending in packet {packet} is not valid UTF-8: "
                            f"{exc.reason} at byte {exc.start}", f_index,
                            msg.frames[0][4] - (side.ws_base or 0) if msg.frames else None)
            return None

    def _on_close(self, side: _Side, msg: _Message, payload: bytes, ts: float,
                  packet: int) -> tuple[int | None, str | None]:
        code = reason = None
        d = side.ws_dir
        f_index = msg.frames[0][0] if msg.frames else None
        so = msg.frames[0][4] - (side.ws_base or 0) if msg.frames else None
        if len(payload) == 1:
            self._violation("close.one-byte-payload", d, ts, packet,
                            f"Close frame with a 1-byte payload {payload.hex()} in packet "
                            f"{packet}", f_index, so)
        elif len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            if code < 1000 or code in _CLOSE_CODES_RESERVED or 1016 <= code <= 2999 or \
                    code >= 5000:
                self._violation("close.invalid-code", d, ts, packet,
                                f"close code {code} may not be sent on the wire (sent by the "
                                f"{'client' if d == 'c2s' else 'server'} in packet {packet})",
                                f_index, so)
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                reason = payload[2:].decode("utf-8", "replace")
                self._violation("close.invalid-reason-utf8", d, ts, packet,
                                f"close reason {payload[2:]!r} in packet {packet} is not "
                                "valid UTF-8", f_index, so)
        if self.info.close_code is None and not any(s.close_sent for s in self._sides):
            self.info.close_code = code
            self.info.close_reason = reason
        side.close_sent = True
        return code, reason

    def _on_pong(self, side: _Side, msg: _Message, payload: bytes, ts: float,
                 packet: int) -> None:
        other = self._sides[1 - side.tcp_dir]
        pings = other.pings
        if not pings:
            # An unsolicited Pong is a legal heartbeat (RFC 6455 §5.5.3) — or the
            # answer to a Ping the capture shows later.
            side.early_pongs.append(payload)
            return
        for i in range(len(pings) - 1, -1, -1):
            if pings[i][0] == payload:
                del pings[: i + 1]
                return
        if msg.complete:
            latest = pings[-1]
            f_index = msg.frames[0][0] if msg.frames else None
            self._violation("pong.payload-mismatch", side.ws_dir, ts, packet,
                            f"Pong {_preview(payload)} in packet {packet} does not echo the Ping "
                            f"{_preview(latest[0])} of packet {latest[2]}", f_index,
                            msg.frames[0][4] - (side.ws_base or 0) if msg.frames else None)
        pings.clear()



def _may_be_request(buf: bytes | bytearray) -> bool:
    """The bytes start (or could start) an HTTP request line."""
    head = bytes(buf[:8])
    return any(p.startswith(head) or head.startswith(p) for p in _METHOD_PREFIXES)


def _preview(payload: bytes, limit: int = 16) -> str:
    shown = payload[:limit].hex()
    return f"0x{shown}{'…' if len(payload) > limit else ''}" if payload else "(empty)"
