"""WebSocket frame headers and masking (RFC 6455 §5.2, §5.3)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import final

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

DATA_OPCODES = frozenset((OP_CONTINUATION, OP_TEXT, OP_BINARY))
CONTROL_OPCODES = frozenset((OP_CLOSE, OP_PING, OP_PONG))
KNOWN_OPCODES = DATA_OPCODES | CONTROL_OPCODES

OPCODE_NAMES = {OP_TEXT: "text", OP_BINARY: "binary", OP_CLOSE: "close", OP_PING: "ping",
                OP_PONG: "pong", OP_CONTINUATION: "continuation"}

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def opcode_name(opcode: int) -> str:
    """The messages table's ``type`` for an opcode (``opcode-0xN`` if reserved)."""
    return OPCODE_NAMES.get(opcode) or f"opcode-0x{opcode:X}"


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class FrameHeader:
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask_key: bytes | None
    length: int
    header_length: int
    minimal_length: bool
    """The length was encoded in the fewest bytes (RFC 6455 §5.2)."""
    length_msb: bool
    """The most significant bit of a 64-bit length was set (RFC 6455 §5.2 forbids it)."""

    def __init__(self, fin: bool, rsv1: bool, rsv2: bool, rsv3: bool, opcode: int, masked: bool,
                 mask_key: bytes | None, length: int, header_length: int, minimal_length: bool,
                 length_msb: bool) -> None:
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.masked = masked
        self.mask_key = mask_key
        self.length = length
        self.header_length = header_length
        self.minimal_length = minimal_length
        self.length_msb = length_msb

    def __reduce__(self) -> tuple[object, ...]:
        return (FrameHeader, (self.fin, self.rsv1, self.rsv2, self.rsv3, self.opcode, self.masked,
                              self.mask_key, self.length, self.header_length, self.minimal_length,
                              self.length_msb))


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> FrameHeader | None:
    """Parse the frame header at ``buf[pos:]``, or return None if it is incomplete.

    Layout (RFC 6455 §5.2): FIN, RSV1-3, 4-bit opcode; MASK, 7-bit length with
    126 → 16-bit and 127 → 64-bit extended length; then a 4-byte masking key
    when MASK is set.
    """
    avail = len(buf) - pos
    if avail < 2:
        return None
    b0 = buf[pos]
    b1 = buf[pos + 1]
    length = b1 & 0x7F
    masked = bool(b1 & 0x80)
    size = 2
    minimal = True
    msb = False
    if length == 126:
        if avail < 4:
            return None
        length = _U16.unpack_from(buf, pos + 2)[0]
        size = 4
        minimal = length >= 126
    elif length == 127:
        if avail < 10:
            return None
        length = _U64.unpack_from(buf, pos + 2)[0]
        size = 10
        minimal = length > 0xFFFF
        msb = bool(length >> 63)
    mask_key = None
    if masked:
        if avail < size + 4:
            return None
        mask_key = bytes(buf[pos + size:pos + size + 4])
        size += 4
    return FrameHeader(
        fin=bool(b0 & 0x80), rsv1=bool(b0 & 0x40), rsv2=bool(b0 & 0x20),
        rsv3=bool(b0 & 0x10), opcode=b0 & 0x0F, masked=masked, mask_key=mask_key,
        length=length, header_length=size, minimal_length=minimal, length_msb=msb,
    )


def unmask(data: bytes | bytearray | memoryview, key: bytes, phase: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte masking key (RFC 6455 §5.3).

    ``phase`` is the payload offset of ``data[0]`` modulo 4, so a payload may be
    unmasked in pieces.  One big-integer XOR instead of a per-byte loop.
    """
    n = len(data)
    if n == 0:
        return b""
    if phase:
        key = key[phase:] + key[:phase]
    reps = (n >> 2) + 1
    mask = (key * reps)[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(mask, "little")).to_bytes(n, "little")
