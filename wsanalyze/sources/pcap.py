"""Classic libpcap files, plus the buffer helpers the pcapng reader shares.

Format (draft-ietf-opsawg-pcap): a 24-byte global header

    magic(4) version_major(2) version_minor(2) thiszone(4) sigfigs(4) snaplen(4) linktype(4)

then records, each a 16-byte header ``ts_sec ts_frac caplen orig_len`` followed by
``caplen`` bytes.  The magic, read in the writer's byte order, is 0xA1B2C3D4 when
``ts_frac`` counts microseconds and 0xA1B23C4D when it counts nanoseconds; seen
byte-swapped it tells that every other field is byte-swapped too.  The low 16 bits
of the linktype field are the LINKTYPE_* value (the upper bits may carry FCS
information).

Reading is a plain ``struct`` loop over large chunks: no per-packet object layer,
one slice per packet for its data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final, Protocol

from wsanalyze.sources.records import FormatError as FormatError  # re-exported: pcapng
from wsanalyze.sources.records import RawPacket

CHUNK_SIZE: Final = 1 << 20
"""Bytes asked of the underlying stream per read."""

MAX_CAPLEN: Final = 262144
"""Largest captured length Wireshark accepts for most link types (WTAP_MAX_PACKET_SIZE
_STANDARD); a larger length in a record header means the file is corrupt."""

_BIG_CAPLEN: Final = 128 * 1024 * 1024
_BIG_CAPLEN_LINKTYPES: Final = frozenset({189, 220, 231, 249})
"""USB Linux (189, 220), D-Bus (231) and USBPcap (249) captures legitimately hold
records up to 128 MiB (Wireshark's WTAP_MAX_PACKET_SIZE_USBPCAP/_DBUS)."""

HEADER_LEN: Final = 24
RECORD_HEADER_LEN: Final = 16

_MAGICS: Final[dict[bytes, tuple[str, bool]]] = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}
"""First four file bytes -> (byte order, nanosecond timestamps)."""

_GLOBAL_LE: Final = struct.Struct("<IHHiIII")
_GLOBAL_BE: Final = struct.Struct(">IHHiIII")
_RECORD_LE: Final = struct.Struct("<IIII")
_RECORD_BE: Final = struct.Struct(">IIII")


def max_caplen(linktype: int) -> int:
    """The largest plausible captured length of one record for ``linktype``."""
    return _BIG_CAPLEN if linktype in _BIG_CAPLEN_LINKTYPES else MAX_CAPLEN


def is_pcap_magic(head: bytes) -> bool:
    """True when ``head`` starts with one of the four pcap magics."""
    return head[:4] in _MAGICS


class PacketSink(Protocol):
    """What a format reader reports progress and its end to (the CaptureReader)."""

    packets_read: int

    def record_stop(self, kind: str, subject: str, offset: int, detail: str) -> None:
        """Reading stopped early: ``kind`` is "truncated" or "corrupt", ``subject``
        names the packet (or block) at stream ``offset``, ``detail`` says why."""

    def record_end(self, offset: int) -> None:
        """The stream ended cleanly at a record boundary, at stream ``offset``."""

    def record_stats(self, interface: int, stats: Any) -> None:
        """A pcapng Interface Statistics Block for ``interface`` was read."""


Read = Callable[[int], bytes]
"""``read(n)`` returns up to ``n`` bytes (possibly fewer), ``b""`` at the end."""


def fill(read: Read, buf: bytes, off: int, need: int) -> bytes:
    """Return ``buf[off:]`` extended by reads until it holds ``need`` bytes or the
    stream ends (then it is shorter).  Reads at least CHUNK_SIZE at a time so a
    refill happens about once per mebibyte, not once per packet."""
    parts = [buf[off:]]
    have = len(buf) - off
    while have < need:
        data = read(max(CHUNK_SIZE, need - have))
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class PcapHeader:
    """The decoded global header."""

    byteorder: str
    """``"<"`` or ``">"``: the byte order of every header field in the file."""
    nanosecond: bool
    version: tuple[int, int]
    snaplen: int
    linktype: int


def parse_header(head: bytes) -> PcapHeader:
    """Decode the 24-byte global header at the start of ``head``.

    Raises FormatError for an unknown magic, a short header or a major version
    other than 2 (the only one ever written).
    """
    try:
        byteorder, nanosecond = _MAGICS[head[:4]]
    except KeyError:
        raise FormatError("not a pcap file") from None
    if len(head) < HEADER_LEN:
        raise FormatError(
            f"pcap file header is cut short ({len(head)} of {HEADER_LEN} bytes)"
        )
    st = _GLOBAL_LE if byteorder == "<" else _GLOBAL_BE
    _magic, major, minor, _zone, _sigfigs, snaplen, lt_field = st.unpack_from(head)
    if major != 2:
        raise FormatError(f"unsupported pcap version {major}.{minor} (only 2.x exists)")
    # Upper 16 bits: FCS length flags / reserved; the link type is the low half.
    return PcapHeader(byteorder, nanosecond, (major, minor), snaplen, lt_field & 0xFFFF)


def iter_pcap(
    header: PcapHeader, read: Read, buf: bytes, sink: PacketSink
) -> Generator[RawPacket, None, None]:
    """Yield the records that follow the global header.

    ``buf`` holds the bytes already read after the 24-byte header.  A record whose
    captured length exceeds :func:`max_caplen` (Wireshark rejects those too) or that
    the stream cuts short ends the iteration through ``sink.record_stop``; a clean end
    calls ``sink.record_end``.  A caplen above the header's snaplen is accepted: some
    writers set a small snaplen and still store whole packets.
    """
    unpack = (_RECORD_LE if header.byteorder == "<" else _RECORD_BE).unpack_from
    linktype = header.linktype
    limit = max_caplen(linktype)
    div = 1_000_000_000 if header.nanosecond else 1_000_000
    base = HEADER_LEN  # stream offset of buf[0]
    off = 0
    end = len(buf)
    number = 0
    while True:
        if end - off < RECORD_HEADER_LEN:
            buf = fill(read, buf, off, RECORD_HEADER_LEN)
            base += off
            off = 0
            end = len(buf)
            if end < RECORD_HEADER_LEN:
                if end:
                    sink.record_stop("truncated", f"packet {number + 1}", base,
                              f"has an incomplete record header ({end} of "
                              f"{RECORD_HEADER_LEN} bytes)")
                else:
                    sink.record_end(base)
                return
        # sec and frac stay untyped (Python ints): mypyc divides two C integers
        # through doubles, which rounds a nanosecond count (above 2**53) before the
        # division; int / int in Python is correctly rounded.  caplen is compared
        # and added, as a C integer.
        sec, frac, caplen_field, orig_len = unpack(buf, off)
        caplen: int = caplen_field
        if caplen > limit:
            sink.record_stop("corrupt", f"packet {number + 1}", base + off,
                      f"claims {caplen} captured bytes, more than the {limit}-byte maximum")
            return
        start = off + RECORD_HEADER_LEN
        stop = start + caplen
        if stop > end:
            buf = fill(read, buf, off, RECORD_HEADER_LEN + caplen)
            base += off
            off = 0
            start = RECORD_HEADER_LEN
            stop = start + caplen
            end = len(buf)
            if stop > end:
                sink.record_stop("truncated", f"packet {number + 1}", base,
                          f"is cut short (record claims {caplen} bytes, "
                          f"{end - RECORD_HEADER_LEN} left)")
                return
        number += 1
        sink.packets_read = number
        # int arithmetic then one true division: the float is correctly rounded.
        yield RawPacket(number, (sec * div + frac) / div, linktype, buf[start:stop], orig_len)
        off = stop
