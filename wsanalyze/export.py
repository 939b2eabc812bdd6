"""Exporting the packets of chosen TCP connections as a standalone pcapng file.

A second pass over the capture keeps every packet whose addresses and ports are
those of a chosen connection and whose timestamp lies within it (the TCP and
WebSocket handshakes included), unchanged: the captured bytes, the original
length, the link type and the exact timestamp, by copying the stored records
(:mod:`wsanalyze.sources.rawrecords`, see :class:`PcapngWriter`).  Memory stays
flat: packets are written as they are read.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from wsanalyze.sources.capture import open_capture
from wsanalyze.sources.rawrecords import PcapngBlock, PcapRecord, raw_records
from wsanalyze.sources.records import RawPacket
from wsanalyze.tcp.packet import PacketParser
from wsanalyze.tcp.segment import ACK, SYN, TcpSegment

_SLACK = 1e-6
"""Timestamps are floats: allow a microsecond at either end of a connection."""


def endpoint_text(addr: bytes, port: int) -> str:
    """``"ip:port"`` or ``"[v6]:port"`` as the tables write endpoints (OUTPUTS.md)."""
    ip = str(ipaddress.ip_address(addr))
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class Flow:
    """One TCP connection, as the connections table describes it."""

    connection: int
    client: str
    server: str
    ts_start: float
    ts_end: float

    @classmethod
    def of(cls, row: Any) -> Flow:
        # A time no calendar holds is NaT (None) in a typed table: match at any time.
        start, end = row["ts_start"], row["ts_end"]
        return cls(int(row["connection"]), str(row["client"]), str(row["server"]),
                   float("-inf") if start is None else float(start),
                   float("inf") if end is None else float(end))


class FlowMatcher:
    """Which chosen flow, if any, a packet belongs to.

    A packet with a flow's addresses and ports belongs to it from the flow's first
    packet on; after its last one (the connections table ends a connection at its
    second FIN or its RST) only until a new SYN on the same ports starts another
    connection, so the final ACK and late retransmissions are kept.
    """

    def __init__(self, flows: Iterable[Flow]) -> None:
        self.by_pair: dict[frozenset[str], list[Flow]] = {}
        for f in sorted(flows, key=lambda f: f.ts_start):
            self.by_pair.setdefault(frozenset((f.client, f.server)), []).append(f)
        self.parser = PacketParser()
        self._over: set[Flow] = set()

    def match(self, pkt: RawPacket) -> tuple[Flow, str] | None:
        """(flow, direction "c2s"/"s2c") of ``pkt``, or None."""
        seg = self.parser.parse(pkt)
        return None if seg is None else self.match_segment(seg, pkt.ts)

    def match_segment(self, seg: TcpSegment, ts: float) -> tuple[Flow, str] | None:
        src = endpoint_text(seg.src, seg.sport)
        dst = endpoint_text(seg.dst, seg.dport)
        flows = self.by_pair.get(frozenset((src, dst)))
        if not flows:
            return None
        current = None
        for f in flows:
            if f.ts_start - _SLACK <= ts:
                current = f
        if current is None or current in self._over:
            return None
        if ts > current.ts_end + _SLACK and seg.flags & (SYN | ACK) == SYN:
            self._over.add(current)  # the ports were reused by a new connection
            return None
        return current, ("c2s" if src == current.client else "s2c")


def select_packets(path: str, flows: Iterable[Flow]) -> Iterator[tuple[RawPacket, Flow, str]]:
    """Stream the packets of ``flows`` from the capture at ``path``, in capture order."""
    matcher = FlowMatcher(flows)
    if not matcher.by_pair:
        return
    with open_capture(path) as reader:
        for pkt in reader:
            hit = matcher.match(pkt)
            if hit is not None:
                yield pkt, hit[0], hit[1]


# ------------------------------------------------------------------ pcapng writing

_SHB_MAGIC = 0x1A2B3C4D


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def section_header(comment: str | None = None) -> bytes:
    options = b""
    if comment:
        options = _option(1, comment.encode()) + _option(4, b"wsanalyze export")
        options += _option(0, b"")
    return _block(0x0A0D0D0A, struct.pack("<IHHq", _SHB_MAGIC, 1, 0, -1) + options)


def interface_block(linktype: int, units: int) -> bytes:
    # snaplen 0: no limit; if_tsresol (option 9) 6 or 9: micro- or nanoseconds.
    return _block(1, struct.pack("<HHI", linktype, 0, 0)
                  + _option(9, bytes([9 if units == 10**9 else 6])) + _option(0, b""))


def _units(ts: float) -> int:
    """For a packet written from its float timestamp: microseconds when ``ts`` is
    a whole number of them, else nanoseconds (to within the 0.2 µs a float holds)."""
    return 10**6 if abs(ts * 1e6 - round(ts * 1e6)) < 1e-3 else 10**9


class PcapngWriter:
    """Writes the chosen packets as pcapng, as losslessly as the input allows.

    From a pcapng file the Section Header and Interface Description Blocks and the
    packets' blocks are copied as stored (timestamps, options and comments kept);
    from a pcap file each record becomes an Enhanced Packet Block with its exact
    timestamp (an interface per link type, in the file's micro- or nanoseconds).
    A packet the raw walk could not find (the main reader salvaged more of a damaged
    file) is written from its decoded form, its timestamp rounded as a float holds it.
    """

    def __init__(self, out: IO[bytes], comment: str | None = None) -> None:
        self.out = out
        self.comment = comment
        self.interfaces: dict[tuple[int, int], int] = {}
        self.section_interfaces = 0
        self.started = False
        self.packets = 0
        self.bytes = 0

    def section(self, block: bytes) -> None:
        """Copy a Section Header Block (interfaces start again at 0), its section
        length set to -1 (unknown): the export leaves blocks out."""
        self.out.write(block[:16] + b"\xff" * 8 + block[24:])
        self.started = True
        self.interfaces = {}
        self.section_interfaces = 0

    def interface(self, block: bytes) -> None:
        self.out.write(block)
        self.section_interfaces += 1

    def copy(self, block: bytes, size: int) -> None:
        self.out.write(block)
        self.packets += 1
        self.bytes += size

    def write(self, pkt: RawPacket, linktype: int | None = None, ticks: int | None = None,
              units: int | None = None) -> None:
        """A packet block of our own: exact when ``ticks`` and ``units`` are given."""
        if not self.started:
            self.out.write(section_header(self.comment))
            self.started = True
        units = units or _units(pkt.ts)
        key = (pkt.linktype if linktype is None else linktype, units)
        iface = self.interfaces.get(key)
        if iface is None:
            iface = self.interfaces[key] = self.section_interfaces
            self.section_interfaces += 1
            self.out.write(interface_block(key[0], units))
        ts = round(pkt.ts * units) if ticks is None else ticks
        self.out.write(_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF,
                                             len(pkt.data), max(pkt.orig_len, len(pkt.data)))
                              + pkt.data))
        self.packets += 1
        self.bytes += len(pkt.data)


def export(path: str, flows: Iterable[Flow], out: IO[bytes],
           comment: str | None = None) -> PcapngWriter:
    """Write the packets of ``flows`` in the capture at ``path`` to ``out``."""
    writer = PcapngWriter(out, comment)
    matcher = FlowMatcher(flows)
    raws = raw_records(path)
    raw: PcapRecord | PcapngBlock | None = None
    with open_capture(path) as reader:
        for pkt in reader:
            # Walk the stored records in step with the packets (same numbering).
            while raw is None or (raw.number or 0) < pkt.number:
                raw = next(raws, None)
                if raw is None:
                    break
                if isinstance(raw, PcapngBlock) and raw.number is None:
                    if raw.block[:4] in (b"\x0a\x0d\x0d\x0a",):
                        writer.section(raw.block)
                    else:
                        writer.interface(raw.block)
                    raw = None
            if not matcher.by_pair or matcher.match(pkt) is None:
                continue
            if isinstance(raw, PcapngBlock) and raw.number == pkt.number:
                writer.copy(raw.block, len(pkt.data))
            elif isinstance(raw, PcapRecord) and raw.number == pkt.number:
                writer.write(pkt, raw.linktype, raw.ticks, raw.units)
            else:
                writer.write(pkt)
    if not writer.started:
        out.write(section_header(comment))
    return writer
