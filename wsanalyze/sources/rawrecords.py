"""The records of a capture file as stored, for copying them unchanged.

:func:`raw_records` walks a pcap or pcapng file (gzip-compressed or not) and
yields, numbered exactly as :func:`~wsanalyze.sources.capture.open_capture`
numbers packets, what an export needs to write each packet again without any
loss: for pcapng the Section Header and Interface Description Blocks (to copy
before the packets) and each packet's block as stored; for pcap each record with
its exact timestamp (seconds and fraction, in the file's unit).  The walk stops
quietly at the first damage: the packets the main reader yielded before it are
exactly those walked here.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from wsanalyze.sources.pcapng import _NON_PACKET_BLOCKS, BT_EPB, BT_IDB, BT_PB, BT_SHB, BT_SPB

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 10**6), b"\xa1\xb2\xc3\xd4": (">", 10**6),
                b"\x4d\x3c\xb2\xa1": ("<", 10**9), b"\xa1\xb2\x3c\x4d": (">", 10**9)}
_PACKET_BLOCKS = frozenset((BT_EPB, BT_PB, BT_SPB, *_NON_PACKET_BLOCKS))


class PcapRecord(NamedTuple):
    number: int
    linktype: int
    snaplen: int
    ticks: int
    """The timestamp in ``units`` since the epoch, exactly as stored."""
    units: int
    data: bytes
    orig_len: int


class PcapngBlock(NamedTuple):
    number: int | None
    """The packet number of a packet block; None for a section or interface block."""
    block: bytes
    """The whole block as stored (its section's byte order)."""


def _open(path: str) -> BinaryIO:
    f = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    if f.read(2) == b"\x1f\x8b":
        f.close()
        return gzip.open(path, "rb")  # type: ignore[return-value]
    f.seek(0)
    return f


def raw_records(path: str) -> Iterator[PcapRecord | PcapngBlock]:
    """The packets (and, for pcapng, section and interface blocks) of ``path``."""
    with _open(path) as f:
        head = f.read(4)
        if head in _PCAP_MAGICS:
            yield from _pcap(f, head)
        elif head == b"\x0a\x0d\x0d\x0a":
            yield from _pcapng(f, head)


def _pcap(f: BinaryIO, magic: bytes) -> Iterator[PcapRecord]:
    order, units = _PCAP_MAGICS[magic]
    rest = f.read(20)
    if len(rest) < 20:
        return
    snaplen, network = struct.unpack(order + "12xII", rest)
    linktype = network & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    number = 0
    while True:
        hdr = f.read(16)
        if len(hdr) < 16:
            return
        sec, frac, caplen, orig_len = record.unpack(hdr)
        data = f.read(caplen)
        if len(data) < caplen:
            return
        number += 1
        yield PcapRecord(number, linktype, snaplen, sec * units + frac, units, data, orig_len)


def _pcapng(f: BinaryIO, first: bytes) -> Iterator[PcapngBlock]:
    number = 0
    order = "<"
    pending = first
    while True:
        head = pending + f.read(12 - len(pending))
        pending = b""
        if len(head) < 12:
            return
        btype = struct.unpack("<I", head[:4])[0]  # the SHB type reads the same either way
        if btype == BT_SHB:
            order = ">" if head[8:12] == b"\x1a\x2b\x3c\x4d" else "<"
        btype, blen = struct.unpack(order + "II", head[:8])
        if blen < 12 or blen % 4:
            return
        block = head + f.read(blen - 12)
        if len(block) < blen:
            return
        if btype in _PACKET_BLOCKS:
            number += 1
            yield PcapngBlock(number, block)
        elif btype in (BT_SHB, BT_IDB):
            yield PcapngBlock(None, block)
