"""pcapng files (draft-ietf-opsawg-pcapng).

A file is a sequence of blocks ``type(4) total_length(4) body total_length(4)``;
``total_length`` counts the whole block, is a multiple of 4 and at least 12, and is
repeated at the end.  A Section Header Block (type 0x0A0D0D0A, a palindrome)
starts each section; its byte-order magic 0x1A2B3C4D tells the byte order of the
section, and it forgets the interfaces of the previous section.  Interface
Description Blocks (IDB) number the section's interfaces 0, 1, ... in order and
give each its link type, snaplen and timestamp unit (``if_tsresol``: 10^-v, or
2^-v when the top bit of v is set; default 10^-6) and offset (``if_tsoffset``,
seconds).  Packets come in Enhanced Packet Blocks (EPB), Simple Packet Blocks (SPB:
interface 0, no timestamp) or the obsolete Packet Blocks (type 2).

Numbering follows Wireshark 4.0, which also shows a few non-packet records as
frames: systemd journal entries (type 9), custom blocks (0x00000BAD, 0x40000BAD)
and sysdig events (0x204, 0x216, 0x221).  They are yielded with
``linktype == NON_PACKET_LINKTYPE`` and the block body as ``data`` so that every
later packet keeps Wireshark's number.  Decryption Secrets Blocks (type 0x0A, TLS
key logs) are yielded with ``linktype == SECRETS_LINKTYPE``, number 0 (not frames).
Interface Statistics Blocks (ISB) are passed to ``sink.record_stats`` (a live
engine's drop counts); other blocks (NRB, ...) are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass

from wsanalyze.sources.pcap import FormatError, PacketSink, Read, fill, max_caplen
from wsanalyze.sources.records import NON_PACKET_LINKTYPE, SECRETS_LINKTYPE, RawPacket

SHB_MAGIC = b"\x0a\x0d\x0d\x0a"

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002
BT_SPB = 0x00000003
BT_EPB = 0x00000006
BT_ISB = 0x00000005
BT_DSB = 0x0000000A

_NON_PACKET_BLOCKS: dict[int, str] = {
    0x00000009: "systemd journal entry",
    0x00000BAD: "custom block",
    0x40000BAD: "custom block",
    0x00000204: "sysdig event",
    0x00000216: "sysdig event",
    0x00000221: "sysdig event",
}
_BLOCK_NAMES: dict[int, str] = {
    BT_SHB: "section header",
    BT_IDB: "interface description",
    0x00000004: "name resolution",
    0x00000005: "interface statistics",
    0x0000000A: "decryption secrets",
}

MAX_BLOCK_LEN = 128 * 1024 * 1024 + 256 * 1024
"""Largest block accepted: the largest packet any link type may hold plus room
for options (Wireshark's MAX_BLOCK_SIZE is of the same size)."""

_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"

_OPT_ENDOFOPT = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14
_ISB_COUNTERS = {4: "ifrecv", 5: "ifdrop", 6: "filteraccept", 7: "osdrop", 8: "usrdeliv"}


@dataclass(frozen=True, slots=True)
class InterfaceStats:
    """The counters of an Interface Statistics Block; None when the writer left
    one out.  ``ifdrop`` is what the interface/kernel dropped, ``osdrop`` what the
    capture engine dropped (dumpcap writes both at the end of a capture)."""

    ifrecv: int | None = None
    ifdrop: int | None = None
    filteraccept: int | None = None
    osdrop: int | None = None
    usrdeliv: int | None = None


@dataclass(frozen=True, slots=True)
class _Structs:
    """Precompiled unpackers for one byte order."""

    head: Callable[..., tuple[int, int]]  # type, total length
    u32: Callable[..., tuple[int]]
    epb: Callable[..., tuple[int, int, int, int, int]]  # if, ts hi, ts lo, caplen, orig
    pb: Callable[..., tuple[int, int, int, int, int, int]]  # if, drops, hi, lo, cap, orig
    idb: Callable[..., tuple[int, int, int]]  # linktype, reserved, snaplen
    shb: Callable[..., tuple[int, int]]  # major, minor
    opt: Callable[..., tuple[int, int]]  # code, length
    i64: Callable[..., tuple[int]]


def _structs(bo: str) -> _Structs:
    return _Structs(
        head=struct.Struct(bo + "II").unpack_from,
        u32=struct.Struct(bo + "I").unpack_from,
        epb=struct.Struct(bo + "IIIII").unpack_from,
        pb=struct.Struct(bo + "HHIIII").unpack_from,
        idb=struct.Struct(bo + "HHI").unpack_from,
        shb=struct.Struct(bo + "HH").unpack_from,
        opt=struct.Struct(bo + "HH").unpack_from,
        i64=struct.Struct(bo + "q").unpack_from,
    )


_LE = _structs("<")
_BE = _structs(">")

_Iface = tuple[int, int, int, int, int]
"""(link type, timestamp units per second, if_tsoffset in units, caplen limit,
snaplen) of one interface."""


def is_pcapng_magic(head: bytes) -> bool:
    """True when ``head`` starts with a Section Header Block type."""
    return head[:4] == SHB_MAGIC


def section_structs(buf: bytes, off: int) -> _Structs:
    """Byte order of the Section Header Block at ``off`` (12 bytes must be there)."""
    bom = buf[off + 8 : off + 12]
    if bom == _BOM_LE:
        return _LE
    if bom == _BOM_BE:
        return _BE
    raise FormatError(f"has an invalid byte-order magic 0x{bom.hex()}")


def check_block_length(blen: int) -> None:
    """Raise FormatError unless ``blen`` is a possible block total length."""
    if blen < 12:
        raise FormatError(f"has length {blen}, less than the 12-byte minimum")
    if blen & 3:
        raise FormatError(f"has length {blen}, not a multiple of 4")
    if blen > MAX_BLOCK_LEN:
        raise FormatError(f"has length {blen}, more than the {MAX_BLOCK_LEN}-byte maximum")


def check_shb(buf: bytes, off: int, st: _Structs, blen: int) -> None:
    """Validate the body of the complete Section Header Block at ``off``."""
    if blen < 28:
        raise FormatError(f"has length {blen}, less than the 28 bytes of a section header")
    major, minor = st.shb(buf, off + 12)
    if major != 1:
        raise FormatError(f"has unsupported pcapng version {major}.{minor}")


def check_head(head: bytes) -> int:
    """Validate the start of a pcapng file up to the first block's length field.

    Returns the first block's total length (the caller makes sure that many bytes
    are read before iterating).  Raises FormatError with a short reason.
    """
    if len(head) < 12:
        raise FormatError(f"pcapng section header is cut short ({len(head)} bytes)")
    try:
        st = section_structs(head, 0)
        blen = st.head(head, 0)[1]
        check_block_length(blen)
        if len(head) >= blen:
            check_shb(head, 0, st, blen)
    except FormatError as exc:
        raise FormatError(f"pcapng section header {exc}") from None
    return blen


def _parse_idb(buf: bytes, off: int, blen: int, st: _Structs) -> _Iface:
    """Decode an IDB: link type, snaplen, and the if_tsresol / if_tsoffset options.

    Options are ``code(2) length(2) value`` padded to 4 bytes, ended by code 0 or
    by the end of the block; a malformed option list is ignored from that point
    rather than failing the file.
    """
    if blen < 20:
        raise FormatError(f"has length {blen}, less than the 20 bytes of an interface")
    linktype, _reserved, snaplen = st.idb(buf, off + 8)
    units = 1_000_000
    tsoffset = 0
    p = off + 16
    oend = off + blen - 4
    while p + 4 <= oend:
        code, olen = st.opt(buf, p)
        if code == _OPT_ENDOFOPT or p + 4 + olen > oend:
            break
        if code == _OPT_IF_TSRESOL and olen >= 1:
            v = buf[p + 4]
            units = 1 << (v & 0x7F) if v & 0x80 else 10**v
        elif code == _OPT_IF_TSOFFSET and olen >= 8:
            tsoffset = st.i64(buf, p + 4)[0]
        p += 4 + ((olen + 3) & ~3)
    return (linktype, units, tsoffset * units, max_caplen(linktype), snaplen)


def _parse_isb(buf: bytes, off: int, blen: int, st: _Structs) -> InterfaceStats:
    """The 64-bit counters among an ISB's options (a malformed list ends them)."""
    found: dict[str, int] = {}
    p = off + 20
    oend = off + blen - 4
    while p + 4 <= oend:
        code, olen = st.opt(buf, p)
        if code == _OPT_ENDOFOPT or p + 4 + olen > oend:
            break
        if code in _ISB_COUNTERS and olen == 8:
            found[_ISB_COUNTERS[code]] = st.i64(buf, p + 4)[0] & 0xFFFF_FFFF_FFFF_FFFF
        p += 4 + ((olen + 3) & ~3)
    return InterfaceStats(**found)


def _block_subject(btype: int, number: int) -> str:
    if btype in (BT_EPB, BT_SPB, BT_PB) or btype in _NON_PACKET_BLOCKS:
        return f"packet {number + 1}"
    name = _BLOCK_NAMES.get(btype, f"type 0x{btype:08x}")
    where = f"after packet {number}" if number else "before any packet"
    return f"the {name} block {where}"


def _packet_block(buf: bytes, off: int, blen: int, btype: int, st: _Structs,
                  ifaces: list[_Iface], number: int) -> RawPacket:
    """An Enhanced Packet Block, or the obsolete Packet Block (same layout but a
    16-bit interface id followed by a drops count), as packet ``number``."""
    if blen < 32:
        kind = "an EPB" if btype == BT_EPB else "a PB"
        raise FormatError(f"has length {blen}, less than the 32 bytes of {kind}")
    if btype == BT_EPB:
        iface, hi, lo, caplen, orig_len = st.epb(buf, off + 8)
    else:
        iface, _drops, hi, lo, caplen, orig_len = st.pb(buf, off + 8)
    if caplen > blen - 32:
        raise FormatError(f"claims {caplen} captured bytes in a {blen}-byte block")
    if iface >= len(ifaces):
        raise FormatError(_no_iface(iface, ifaces))
    linktype, units, offset_units, limit, _snaplen = ifaces[iface]
    if caplen > limit:
        raise FormatError(f"claims {caplen} captured bytes, more than the {limit}-byte maximum")
    # One true division of exact integers: correctly rounded seconds.
    ts = (((hi << 32) | lo) + offset_units) / units
    return RawPacket(number, ts, linktype, buf[off + 28 : off + 28 + caplen], orig_len)


def _simple_packet_block(buf: bytes, off: int, blen: int, st: _Structs, ifaces: list[_Iface],
                         number: int, ts: float) -> RawPacket:
    """A Simple Packet Block as packet ``number``: interface 0, and no timestamp of
    its own (``ts``, the previous packet's, is reused)."""
    if blen < 16:
        raise FormatError(f"has length {blen}, less than the 16 bytes of an SPB")
    if not ifaces:
        raise FormatError(_no_iface(0, ifaces))
    linktype, _units, _off, _limit, snaplen = ifaces[0]
    orig_len = st.u32(buf, off + 8)[0]
    # The captured length is implicit: the original length, bounded by the block's
    # room (the rest is padding) and interface 0's snaplen.
    caplen = min(orig_len, blen - 16)
    if snaplen and caplen > snaplen:
        caplen = snaplen
    return RawPacket(number, ts, linktype, buf[off + 12 : off + 12 + caplen], orig_len)


def _body(buf: bytes, off: int, blen: int) -> bytes:
    """A block's body: between the 8-byte header and the 4-byte trailer."""
    return buf[off + 8 : off + blen - 4]


def iter_pcapng(read: Read, buf: bytes, sink: PacketSink) -> Generator[RawPacket, None, None]:
    """Yield the packets of a pcapng stream whose first bytes are in ``buf``.

    Any invalid block (bad lengths, a packet for an unknown interface, a caplen
    that does not fit its block or exceeds :func:`max_caplen`) or a block cut
    short ends the iteration through ``sink.record_stop``; a clean end calls
    ``sink.record_end``.
    """
    base = 0  # stream offset of buf[0]
    off = 0
    end = len(buf)
    number = 0
    st = _LE
    ifaces: list[_Iface] = []
    ts = 0.0  # SPBs have no timestamp: they reuse the previous one
    btype = 0
    try:
        while True:
            if end - off < 12:
                buf = fill(read, buf, off, 12)
                base += off
                off = 0
                end = len(buf)
                if end < 12:
                    if end:
                        where = f"after packet {number}" if number else "before any packet"
                        sink.record_stop("truncated", f"the block {where}", base,
                                  f"is cut short ({end} bytes, less than a block header)")
                    else:
                        sink.record_end(base)
                    return
            btype, blen = st.head(buf, off)
            if btype == BT_SHB:
                st = section_structs(buf, off)  # a new section may switch byte order
                blen = st.head(buf, off)[1]
            check_block_length(blen)
            if end - off < blen:
                buf = fill(read, buf, off, blen)
                base += off
                off = 0
                end = len(buf)
                if end < blen:
                    sink.record_stop("truncated", _block_subject(btype, number), base,
                              f"is cut short (block claims {blen} bytes, {end} left)")
                    return
            if st.u32(buf, off + blen - 4)[0] != blen:  # the length is repeated at the end
                raise FormatError(f"has a trailing length {st.u32(buf, off + blen - 4)[0]} "
                                  f"that does not match its leading length {blen}")
            if btype in (BT_EPB, BT_PB, BT_SPB):
                pkt = (_simple_packet_block(buf, off, blen, st, ifaces, number + 1, ts)
                       if btype == BT_SPB else
                       _packet_block(buf, off, blen, btype, st, ifaces, number + 1))
                number += 1
                sink.packets_read = number
                ts = pkt.ts
                yield pkt
            elif btype == BT_IDB:
                ifaces.append(_parse_idb(buf, off, blen, st))
            elif btype == BT_SHB:
                check_shb(buf, off, st, blen)
                ifaces = []
            elif btype == BT_DSB:
                body = _body(buf, off, blen)
                yield RawPacket(0, ts, SECRETS_LINKTYPE, body, len(body))
            elif btype == BT_ISB and blen >= 24:
                sink.record_stats(st.u32(buf, off + 8)[0], _parse_isb(buf, off, blen, st))
            elif btype in _NON_PACKET_BLOCKS:
                number += 1
                sink.packets_read = number
                body = _body(buf, off, blen)
                yield RawPacket(number, ts, NON_PACKET_LINKTYPE, body, len(body))
            off += blen
    except FormatError as exc:
        sink.record_stop("corrupt", _block_subject(btype, number), base + off, str(exc))


def _no_iface(iface: int, ifaces: list[_Iface]) -> str:
    if not ifaces:
        return f"refers to interface {iface}, but its section describes no interface"
    return f"refers to interface {iface}, but its section describes only {len(ifaces)}"
