"""Exporting the packets of chosen TCP connections as a standalone pcapng file.

A second pass over the capture keeps every packet whose addresses and ports are
those of a chosen connection and whose timestamp lies within it (the TCP and
WebSocket handshakes included), unchanged: the captured bytes, the original
length, the link type and the timestamp (exact for microsecond captures; for
nanosecond ones to within the 0.2 µs a float keeps, see :func:`_units`).  Memory stays
flat: packets are written as they are read.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from wsanalyze.sources.capture import open_capture
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
        return cls(int(row["connection"]), str(row["client"]), str(row["server"]),
                   float(row["ts_start"]), float(row["ts_end"]))


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


def packet_block(interface: int, pkt: RawPacket, units: int) -> bytes:
    ts = round(pkt.ts * units)
    return _block(6, struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFFFFFF,
                                 len(pkt.data), max(pkt.orig_len, len(pkt.data))) + pkt.data)


def _units(ts: float) -> int:
    """Microseconds when ``ts`` is a whole number of them (pcap and most pcapng
    captures: then written exactly), else nanoseconds.  A float holds an epoch
    time to about 0.2 µs, so a nanosecond timestamp is written to within that."""
    return 10**6 if abs(ts * 1e6 - round(ts * 1e6)) < 1e-3 else 10**9


class PcapngWriter:
    """Writes packets as Enhanced Packet Blocks, one interface per link type (its
    timestamp unit chosen from the first packet written on it)."""

    def __init__(self, out: IO[bytes], comment: str | None = None) -> None:
        self.out = out
        self.interfaces: dict[int, tuple[int, int]] = {}
        self.packets = 0
        self.bytes = 0
        out.write(section_header(comment))

    def write(self, pkt: RawPacket) -> None:
        iface = self.interfaces.get(pkt.linktype)
        if iface is None:
            iface = self.interfaces[pkt.linktype] = (len(self.interfaces), _units(pkt.ts))
            self.out.write(interface_block(pkt.linktype, iface[1]))
        self.out.write(packet_block(iface[0], pkt, iface[1]))
        self.packets += 1
        self.bytes += len(pkt.data)


def export(path: str, flows: Iterable[Flow], out: IO[bytes],
           comment: str | None = None) -> PcapngWriter:
    """Write the packets of ``flows`` in the capture at ``path`` to ``out``."""
    writer = PcapngWriter(out, comment)
    for pkt, _, _ in select_packets(path, flows):
        writer.write(pkt)
    return writer
