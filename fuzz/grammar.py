"""What the reassembly and decoder harnesses make of their fuzzed input.

Each harness reads a *case* from a :class:`~fuzz.fdp.Source`: a few limits, then
a list of concrete calls.  The fuzzer steers structure through small integers
(which connection, which flags, in order or not, a whole WebSocket frame with
its mask and compression, a gap) while payload bytes come straight from the
input.  ``read_*`` and ``write_*`` are inverse on concrete cases, which is how
seeds are written (``fuzz.seeds``): ``read(write(case)) == case``.

This module does not import wsanalyze, so that the harnesses can import it
before instrumenting wsanalyze.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct
import zlib
from dataclasses import dataclass, field

from fuzz.fdp import FdpWriter, Source, choose, write_choice

MASK32 = 0xFFFFFFFF

# TCP flag bits as in wsanalyze.tcp.segment.
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

# ----------------------------------------------------------------- reassembly

MAX_SEGMENTS = 3000
CONNECTIONS = 3
BUFFER_LIMITS = (8 << 20, 4096, 256, 1)
CONNECTION_LIMITS = (100_000, 1, 2, 3)
ACK_GRACES = (64, 0, 3)
DT_MS = (1, 0, 1000, 100_000)
"""Timestamp steps in milliseconds (100 s is beyond the reassembler's 60 s
TIME-WAIT, so a closed 4-tuple may be reused)."""
ISN = ((1000, 0xFFFFFF00), (0x7FFFFFF0, 5))
"""Initial sequence bases per (connection parity, direction): two of them
wrap around 2**32 soon."""
PATTERN_MAX = 3000
RAW_MAX = 65535


def pattern(seq: int, n: int) -> bytes:
    """Payload bytes that are a function of their sequence number (``seq & 0xff``):
    every copy of a byte agrees, so the reassembled stream can be checked."""
    start = seq & 0xFF
    reps = (start + n) // 256 + 1
    return (bytes(range(256)) * reps)[start : start + n]


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    conn: int
    """0..CONNECTIONS-1: which 4-tuple (see the harness)."""
    direction: int
    """0: from the connection's first endpoint, 1: from the second."""
    flags: int
    seq: int
    ack: int
    payload: bytes
    missing: int
    """Bytes cut by the snapshot length after ``payload``."""
    dt_ms: int


@dataclass(frozen=True, slots=True)
class ReassemblyCase:
    max_buffered: int = BUFFER_LIMITS[0]
    max_connections: int = CONNECTION_LIMITS[0]
    ack_grace: int = ACK_GRACES[0]
    segments: list[SegmentSpec] = field(default_factory=list)


def _data_seq(flags: int, seq: int) -> int:
    return (seq + 1) & MASK32 if flags & SYN else seq


def read_reassembly(src: Source) -> ReassemblyCase:
    max_buffered = choose(src, BUFFER_LIMITS)
    max_connections = choose(src, CONNECTION_LIMITS)
    ack_grace = choose(src, ACK_GRACES)
    nxt: dict[tuple[int, int], int] = {}
    segments: list[SegmentSpec] = []
    while src.remaining_bytes() > 0 and len(segments) < MAX_SEGMENTS:
        conn = src.ConsumeIntInRange(0, CONNECTIONS - 1)
        d = src.ConsumeIntInRange(0, 1)
        flags = src.ConsumeIntInRange(0, 31)
        base = nxt.get((conn, d), ISN[conn & 1][d])
        mode = src.ConsumeIntInRange(0, 3)
        if mode == 0:
            seq = base  # in order
        elif mode == 1:
            seq = (base + src.ConsumeIntInRange(1, 65536)) & MASK32  # after a hole
        elif mode == 2:
            seq = (base - src.ConsumeIntInRange(1, 65536)) & MASK32  # retransmission
        else:
            seq = src.ConsumeIntInRange(0, MASK32)
        peer = nxt.get((conn, 1 - d), ISN[conn & 1][1 - d])
        amode = src.ConsumeIntInRange(0, 2)
        if amode == 0:
            ack = peer
        elif amode == 1:
            ack = (peer + src.ConsumeIntInRange(-65536, 65536)) & MASK32
        else:
            ack = src.ConsumeIntInRange(0, MASK32)
        if src.ConsumeIntInRange(0, 1) == 0:
            payload = pattern(_data_seq(flags, seq), src.ConsumeIntInRange(0, PATTERN_MAX))
        else:
            payload = src.ConsumeBytes(src.ConsumeIntInRange(0, RAW_MAX))
        m = src.ConsumeIntInRange(0, 7)
        if m < 6:
            missing = 0
        elif m == 6:
            missing = src.ConsumeIntInRange(1, 100)
        else:
            missing = src.ConsumeIntInRange(1, 100_000)
        dt_ms = choose(src, DT_MS)
        end = _data_seq(flags, seq) + len(payload) + missing + (1 if flags & FIN else 0)
        nxt[(conn, d)] = end & MASK32
        segments.append(SegmentSpec(conn, d, flags, seq, ack, payload, missing, dt_ms))
    return ReassemblyCase(max_buffered, max_connections, ack_grace, segments)


def write_reassembly(case: ReassemblyCase) -> bytes:
    w = FdpWriter()
    write_choice(w, BUFFER_LIMITS, case.max_buffered)
    write_choice(w, CONNECTION_LIMITS, case.max_connections)
    write_choice(w, ACK_GRACES, case.ack_grace)
    for s in case.segments:
        w.int_in_range(0, CONNECTIONS - 1, s.conn)
        w.int_in_range(0, 1, s.direction)
        w.int_in_range(0, 31, s.flags)
        w.int_in_range(0, 3, 3)
        w.int_in_range(0, MASK32, s.seq)
        w.int_in_range(0, 2, 2)
        w.int_in_range(0, MASK32, s.ack)
        n = len(s.payload)
        if n <= PATTERN_MAX and s.payload == pattern(_data_seq(s.flags, s.seq), n):
            w.int_in_range(0, 1, 0)
            w.int_in_range(0, PATTERN_MAX, n)
        else:
            w.int_in_range(0, 1, 1)
            w.int_in_range(0, RAW_MAX, n)
            w.raw(s.payload)
        if s.missing == 0:
            w.int_in_range(0, 7, 0)
        elif s.missing <= 100:
            w.int_in_range(0, 7, 6)
            w.int_in_range(1, 100, s.missing)
        else:
            w.int_in_range(0, 7, 7)
            w.int_in_range(1, 100_000, s.missing)
        write_choice(w, DT_MS, s.dt_ms)
    return w.getvalue()


# -------------------------------------------------------------------- decoder

MAX_OPS = 400
PAYLOAD_LIMITS = (64 << 20, 4096, 16)
INFLATE_LIMITS = (1 << 30, 65536, 100)
HEAD_LIMITS = (64 << 10, 512, 16)
SCAN_LIMITS = (1 << 20, 4096, 64)
ENDS = ("capture-ended", "tcp-fin", "tcp-reset")
GAP_REASONS = ("lost", "truncated", "limit")
HUGE_GAP = 1 << 40
DECLARED_LENGTHS = (1 << 63, (1 << 63) - 1, 1 << 48, (1 << 48) - 1, 1 << 40, 1 << 32, 70_000,
                    126, 0)
OFFERS = (
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=8",
    "permessage-deflate; client_max_window_bits=16; client_max_window_bits=15",
    "x-webkit-deflate-frame, permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate, permessage-deflate; server_no_context_takeover",
    "foo; bar=\"baz\"",
)
"""Sec-WebSocket-Extensions values a request or a 101 may carry; one more
index means none, and the one after it a value from the input."""
STATUSES = (101, 101, 101, 200, 403, 100)
PROTOCOLS = ("", "chat", "chat, superchat", "v1.proto")


@dataclass(frozen=True, slots=True)
class Feed:
    direction: int
    """TCP direction."""
    data: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    direction: int
    length: int
    reason: str


@dataclass(frozen=True, slots=True)
class End:
    how: str


Call = Feed | Gap | End


@dataclass(frozen=True, slots=True)
class DecoderCase:
    syn_seen: bool = True
    max_payload: int = PAYLOAD_LIMITS[0]
    max_inflate: int = INFLATE_LIMITS[0]
    max_http_head: int = HEAD_LIMITS[0]
    max_scan_buffer: int = SCAN_LIMITS[0]
    calls: list[Call] = field(default_factory=list)
    """Ends with exactly one End."""


def _key(src: Source) -> str:
    seed = src.ConsumeIntInRange(0, 255)
    return base64.b64encode(hashlib.sha256(bytes([seed])).digest()[:16]).decode()


def _accept(key: str) -> str:
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(key.encode() + guid).digest()).decode()


def _extension(src: Source) -> str | None:
    i = src.ConsumeIntInRange(0, len(OFFERS) + 1)
    if i < len(OFFERS):
        return OFFERS[i]
    if i == len(OFFERS):
        return None
    raw = src.ConsumeBytes(src.ConsumeIntInRange(0, 120))
    return raw.decode("latin-1").replace("\r", " ").replace("\n", " ")


def _handshake(src: Source, client: int) -> list[Call]:
    key = _key(src)
    offer = _extension(src)
    answer = _extension(src)
    protocols = PROTOCOLS[src.ConsumeIntInRange(0, len(PROTOCOLS) - 1)]
    selected = PROTOCOLS[src.ConsumeIntInRange(0, len(PROTOCOLS) - 1)].split(",")[0]
    status = choose(src, STATUSES)
    good_accept = src.ConsumeIntInRange(0, 3) != 0
    order = src.ConsumeIntInRange(0, 2)
    req = [f"GET /chat?x={key[:4]} HTTP/1.1", "Host: example.com", "Upgrade: websocket",
           "Connection: keep-alive, Upgrade", f"Sec-WebSocket-Key: {key}",
           "Sec-WebSocket-Version: 13"]
    if offer is not None:
        req.append(f"Sec-WebSocket-Extensions: {offer}")
    if protocols:
        req.append(f"Sec-WebSocket-Protocol: {protocols}")
    resp = [f"HTTP/1.1 {status} Whatever"]
    if status == 101:
        resp += ["Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Accept: {_accept(key) if good_accept else _accept(key[::-1])}"]
        if answer is not None:
            resp.append(f"Sec-WebSocket-Extensions: {answer}")
        if selected:
            resp.append(f"Sec-WebSocket-Protocol: {selected}")
    else:
        resp.append("Content-Length: 0")
    request = Feed(client, ("\r\n".join(req) + "\r\n\r\n").encode("latin-1"))
    response = Feed(1 - client, ("\r\n".join(resp) + "\r\n\r\n").encode("latin-1"))
    if order == 0:
        return [request, response]
    if order == 1:
        return [response, request]
    return [request]


class _Compressors:
    """One permessage-deflate compressor per TCP direction (context takeover)."""

    def __init__(self) -> None:
        self._c: dict[int, zlib._Compress] = {}

    def compress(self, direction: int, data: bytes, *, fresh: bool) -> bytes:
        if fresh:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
        else:
            c = self._c.get(direction) or zlib.compressobj(6, zlib.DEFLATED, -15)
            self._c[direction] = c
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out


def _frame_bytes(b0: int, payload: bytes, key: bytes | None, enc: int) -> bytes:
    n = len(payload)
    mbit = 0x80 if key is not None else 0
    if enc == 0 and n < 126:
        head = bytes((b0, mbit | n))
    elif enc <= 1 and n < 0x10000:
        head = bytes((b0, mbit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((b0, mbit | 127)) + struct.pack("!Q", n)
    if key is None:
        return head + payload
    reps = n // 4 + 1
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes((key * reps)[:n], "big"))
    return head + key + masked.to_bytes(n, "big")


def _split(src: Source, data: bytes, direction: int) -> list[Call]:
    """``data`` as 1-3 consecutive data() calls."""
    pieces = src.ConsumeIntInRange(1, 3)
    cuts = sorted(src.ConsumeIntInRange(0, len(data)) for _ in range(pieces - 1))
    bounds = [0, *cuts, len(data)]
    return [Feed(direction, data[a:b]) for a, b in itertools.pairwise(bounds)]


def _frames(src: Source, client: int, comp: _Compressors) -> list[Call]:
    role = src.ConsumeIntInRange(0, 1)  # 0: the client, 1: the server
    direction = client if role == 0 else 1 - client
    opcode = src.ConsumeIntInRange(0, 15)
    bits = src.ConsumeIntInRange(0, 15)  # FIN (on the last fragment), RSV1, RSV2, RSV3
    mask_mode = src.ConsumeIntInRange(0, 2)  # as RFC 6455 says, never, always
    enc = src.ConsumeIntInRange(0, 2)  # minimal, 16-bit, 64-bit length
    compress = src.ConsumeIntInRange(0, 2)  # no, with context takeover, fresh
    fragments = src.ConsumeIntInRange(1, 3)
    kind = src.ConsumeIntInRange(0, 2)
    n = src.ConsumeIntInRange(0, 4096)
    if kind == 0:
        payload = src.ConsumeBytes(n)
    elif kind == 1:
        payload = (b"hello, world \xc3\xa9 " * (n // 16 + 1))[:n]
    else:
        payload = bytes(n * 64)  # compresses about 1000:1
    if compress:
        payload = comp.compress(direction, payload, fresh=compress == 2)
    size = -(-len(payload) // fragments) if payload else 0
    parts = [payload[i * size : (i + 1) * size] for i in range(fragments)] if size else \
        [b""] * fragments
    out = bytearray()
    for i, part in enumerate(parts):
        last = i == fragments - 1
        b0 = (0x80 if last and bits & 1 else 0) | (0x20 if bits & 4 else 0) | \
            (0x10 if bits & 8 else 0)
        if i == 0:
            b0 |= opcode | (0x40 if compress or bits & 2 else 0)
        masked = mask_mode == 2 or (mask_mode == 0 and role == 0)
        key = src.ConsumeIntInRange(0, MASK32).to_bytes(4, "big") if masked else None
        out += _frame_bytes(b0, part, key, enc)
    return _split(src, bytes(out), direction)


def _declared(src: Source, client: int) -> list[Call]:
    """A frame header declaring a huge length, followed by a few bytes."""
    role = src.ConsumeIntInRange(0, 1)
    direction = client if role == 0 else 1 - client
    b0 = src.ConsumeIntInRange(0, 255)
    length = choose(src, DECLARED_LENGTHS)
    masked = src.ConsumeIntInRange(0, 1)
    head = bytes((b0, (0x80 if masked else 0) | 127)) + struct.pack("!Q", length)
    if masked:
        head += b"\x01\x02\x03\x04"
    tail = src.ConsumeBytes(src.ConsumeIntInRange(0, 200))
    return [Feed(direction, head + tail)]


def _gap(src: Source) -> Gap:
    direction = src.ConsumeIntInRange(0, 1)
    kind = src.ConsumeIntInRange(0, 3)
    if kind == 0:
        length = 1
    elif kind == 1:
        length = src.ConsumeIntInRange(1, 64)
    elif kind == 2:
        length = src.ConsumeIntInRange(1, 100_000)
    else:
        length = HUGE_GAP
    return Gap(direction, length, GAP_REASONS[src.ConsumeIntInRange(0, 2)])


def read_decoder(src: Source) -> DecoderCase:
    syn_seen = bool(src.ConsumeIntInRange(0, 1))
    max_payload = choose(src, PAYLOAD_LIMITS)
    max_inflate = choose(src, INFLATE_LIMITS)
    max_http_head = choose(src, HEAD_LIMITS)
    max_scan_buffer = choose(src, SCAN_LIMITS)
    client = src.ConsumeIntInRange(0, 1)
    calls: list[Call] = []
    if src.ConsumeIntInRange(0, 1):
        calls += _handshake(src, client)
    comp = _Compressors()
    ops = 0
    while src.remaining_bytes() > 0 and ops < MAX_OPS:
        ops += 1
        op = src.ConsumeIntInRange(0, 4)
        if op == 0:
            direction = src.ConsumeIntInRange(0, 1)
            calls.append(Feed(direction, src.ConsumeBytes(src.ConsumeIntInRange(0, RAW_MAX))))
        elif op == 1:
            calls += _frames(src, client, comp)
        elif op == 2:
            calls.append(_gap(src))
        elif op == 3:
            calls += _declared(src, client)
        else:
            calls.append(End(ENDS[src.ConsumeIntInRange(0, len(ENDS) - 1)]))
            break
    if not calls or not isinstance(calls[-1], End):
        calls.append(End(ENDS[0]))
    return DecoderCase(syn_seen, max_payload, max_inflate, max_http_head, max_scan_buffer,
                       calls)


def write_decoder(case: DecoderCase) -> bytes:
    """Encode a case made of Feed (at most RAW_MAX bytes each), Gap and a final End."""
    w = FdpWriter()
    w.int_in_range(0, 1, int(case.syn_seen))
    write_choice(w, PAYLOAD_LIMITS, case.max_payload)
    write_choice(w, INFLATE_LIMITS, case.max_inflate)
    write_choice(w, HEAD_LIMITS, case.max_http_head)
    write_choice(w, SCAN_LIMITS, case.max_scan_buffer)
    w.int_in_range(0, 1, 0)  # client direction: only used by generated frames
    w.int_in_range(0, 1, 0)  # no generated handshake
    if len(case.calls) > MAX_OPS:
        raise ValueError(f"{len(case.calls)} calls, more than {MAX_OPS}")
    for call in case.calls:
        if isinstance(call, Feed):
            if len(call.data) > RAW_MAX:
                raise ValueError("a Feed of a seed holds at most RAW_MAX bytes")
            w.int_in_range(0, 4, 0)
            w.int_in_range(0, 1, call.direction)
            w.int_in_range(0, RAW_MAX, len(call.data))
            w.raw(call.data)
        elif isinstance(call, Gap):
            w.int_in_range(0, 4, 2)
            w.int_in_range(0, 1, call.direction)
            if call.length == 1:
                w.int_in_range(0, 3, 0)
            elif call.length <= 64:
                w.int_in_range(0, 3, 1)
                w.int_in_range(1, 64, call.length)
            elif call.length <= 100_000:
                w.int_in_range(0, 3, 2)
                w.int_in_range(1, 100_000, call.length)
            elif call.length == HUGE_GAP:
                w.int_in_range(0, 3, 3)
            else:
                raise ValueError(f"gap length {call.length} cannot be encoded")
            w.int_in_range(0, 2, GAP_REASONS.index(call.reason))
        else:
            w.int_in_range(0, 4, 4)
            w.int_in_range(0, len(ENDS) - 1, ENDS.index(call.how))
    if not case.calls or not isinstance(case.calls[-1], End):
        raise ValueError("a case ends with End")
    return w.getvalue()
