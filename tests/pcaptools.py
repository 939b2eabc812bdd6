"""Capture-crafting toolkit for the wsanalyze test suite.

Everything here is built on dpkt (packet building, pcap / pcapng headers and blocks) and is
meant to produce *small*, fully deterministic captures that tshark accepts (correct IPv4 header
and TCP checksums, plausible TCP state machine).

Three parts:

* :class:`Conversation` crafts one TCP connection packet by packet (handshake, data with MSS
  segmentation and delayed ACKs, close / reset) and writes it with any of the supported link
  layers, as pcap or pcapng.
* WebSocket byte builders: :func:`ws_frame`, :func:`upgrade_request`, :func:`upgrade_response`,
  :func:`deflate_message` (RFC 6455 / RFC 7692).
* Transforms of an existing capture file (:func:`reorder`, :func:`duplicate`, :func:`overlap`,
  :func:`resegment`, :func:`drop`, :func:`drop_packets`, :func:`cut_start`, :func:`snaplen`,
  :func:`to_ipv6`, :func:`to_link`, :func:`to_pcapng`, :func:`to_pcap`, :func:`to_gzip`).  Each
  returns a :class:`Report` describing what happened in terms of 1-based packet numbers (the
  numbers tshark shows as ``frame.number``).

Timestamps are kept internally as integer nanoseconds so that nanosecond captures round-trip
exactly; the public ``Conversation.packets`` view exposes them as float seconds.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import ipaddress
import itertools
import os
import random
import socket
import struct
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Literal

import dpkt
import dpkt.ethernet
import dpkt.ip
import dpkt.ip6
import dpkt.pcap
import dpkt.pcapng
import dpkt.sll
import dpkt.sll2
import dpkt.tcp

__all__ = [
    "LINKTYPES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Capture",
    "Conversation",
    "CraftedPacket",
    "Direction",
    "Fmt",
    "Interface",
    "Link",
    "Record",
    "Report",
    "SegmentInfo",
    "StreamSpan",
    "cut_start",
    "deflate_message",
    "drop",
    "drop_packets",
    "duplicate",
    "inflate_message",
    "overlap",
    "read_capture",
    "reorder",
    "resegment",
    "snaplen",
    "tcp_segments",
    "to_gzip",
    "to_ipv6",
    "to_link",
    "to_pcap",
    "to_pcapng",
    "upgrade_request",
    "upgrade_response",
    "write_capture",
    "write_conversations",
    "ws_accept",
    "ws_close_payload",
    "ws_frame",
    "ws_key",
    "ws_mask",
]

PathLike = str | os.PathLike[str]
Direction = Literal["c2s", "s2c"]
Link = Literal["ethernet", "ethernet+vlan", "ethernet+qinq", "raw", "sll", "sll2", "null", "loop"]
Fmt = Literal["pcap", "pcapng"]

# --------------------------------------------------------------------------------------------
# Link types (LINKTYPE_* values as stored in files, not the platform dependent DLT_* values)
# --------------------------------------------------------------------------------------------
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: DLT_RAW as written by some platforms (12 everywhere but OpenBSD, 14 on OpenBSD); read only.
_RAW_ALIASES = frozenset({LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6})

LINKTYPES: dict[str, int] = {
    "ethernet": LINKTYPE_ETHERNET,
    "ethernet+vlan": LINKTYPE_ETHERNET,
    "ethernet+qinq": LINKTYPE_ETHERNET,
    "raw": LINKTYPE_RAW,
    "sll": LINKTYPE_LINUX_SLL,
    "sll2": LINKTYPE_LINUX_SLL2,
    "null": LINKTYPE_NULL,
    "loop": LINKTYPE_LOOP,
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = 0x8100
ETH_QINQ = 0x88A8
_VLAN_TPIDS = frozenset({ETH_VLAN, ETH_QINQ, 0x9100})
AF_INET = 2
AF_INET6_BSD = 24  # NetBSD/OpenBSD value; Wireshark also accepts 28 (FreeBSD) and 30 (Darwin)
_AF_INET6_ALL = frozenset({24, 28, 30, 10})

_NS = 1_000_000_000
_SEQ_MOD = 1 << 32
_LE = sys.byteorder == "little"

TH_FIN = dpkt.tcp.TH_FIN
TH_SYN = dpkt.tcp.TH_SYN
TH_RST = dpkt.tcp.TH_RST
TH_PUSH = dpkt.tcp.TH_PUSH
TH_ACK = dpkt.tcp.TH_ACK


def _to_ns(ts: float | Decimal | int) -> int:
    """Seconds (float via its shortest repr, Decimal exactly, int) → integer nanoseconds."""
    if isinstance(ts, int):
        return ts * _NS
    dec = ts if isinstance(ts, Decimal) else Decimal(repr(ts))
    return int((dec * _NS).to_integral_value())


def _other(direction: Direction) -> Direction:
    return "s2c" if direction == "c2s" else "c2s"


def _check_direction(direction: str) -> Direction:
    if direction == "c2s":
        return "c2s"
    if direction == "s2c":
        return "s2c"
    raise ValueError(f"direction must be 'c2s' or 's2c', not {direction!r}")


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address {text!r}")
    return raw


# ============================================================================================
# Capture records, reading and writing
# ============================================================================================


@dataclass
class Record:
    """One captured frame: link-layer bytes as captured plus metadata."""

    ts_ns: int
    data: bytes
    linktype: int
    orig_len: int = -1  # -1: same as len(data)
    iface: int = 0

    def __post_init__(self) -> None:
        if self.orig_len < 0:
            self.orig_len = len(self.data)

    @property
    def ts(self) -> float:
        return self.ts_ns / _NS

    @property
    def truncated(self) -> bool:
        return self.orig_len > len(self.data)


@dataclass
class Interface:
    linktype: int
    snaplen: int = 65535
    name: str | None = None


@dataclass
class Capture:
    records: list[Record]
    interfaces: list[Interface]
    fmt: Fmt = "pcap"
    nanosecond: bool = False
    gzipped: bool = False

    @property
    def linktype(self) -> int:
        return self.interfaces[0].linktype

    @property
    def snaplen(self) -> int:
        return max(i.snaplen for i in self.interfaces)


def _read_bytes(path: PathLike) -> tuple[bytes, bool]:
    with open(path, "rb") as fh:
        buf = fh.read()
    if buf[:2] == b"\x1f\x8b":
        return gzip.decompress(buf), True
    return buf, False


def read_capture(path: PathLike) -> Capture:
    """Read a pcap or pcapng file (optionally gzip-compressed) keeping caplen/orig len,
    per-interface link types and exact timestamps."""
    buf, gzipped = _read_bytes(path)
    cap = _read_pcapng(buf) if buf[:4] == b"\x0a\x0d\x0d\x0a" else _read_pcap(buf)
    cap.gzipped = gzipped
    return cap


def _read_pcap(buf: bytes) -> Capture:
    if len(buf) < 24:
        raise ValueError("not a pcap file (too short)")
    fh = dpkt.pcap.FileHdr(buf[:24])
    magic = fh.magic  # read big-endian: tells both byte order and precision
    little = magic in (dpkt.pcap.PMUDPCT_MAGIC, dpkt.pcap.PMUDPCT_MAGIC_NANO)
    if not little and magic not in (dpkt.pcap.TCPDUMP_MAGIC, dpkt.pcap.TCPDUMP_MAGIC_NANO):
        raise ValueError(f"not a pcap file (magic {magic:#x})")
    if little:
        fh = dpkt.pcap.LEFileHdr(buf[:24])
    nano = magic in (dpkt.pcap.TCPDUMP_MAGIC_NANO, dpkt.pcap.PMUDPCT_MAGIC_NANO)
    hdr_cls = dpkt.pcap.LEPktHdr if little else dpkt.pcap.PktHdr
    hlen = hdr_cls.__hdr_len__
    records: list[Record] = []
    off = 24
    while off + hlen <= len(buf):
        ph = hdr_cls(buf[off : off + hlen])
        off += hlen
        data = buf[off : off + ph.caplen]
        off += ph.caplen
        frac = ph.tv_usec if nano else ph.tv_usec * 1000
        records.append(Record(ph.tv_sec * _NS + frac, data, fh.linktype, ph.len))
    return Capture(records, [Interface(fh.linktype, fh.snaplen)], "pcap", nano)


def _tsresol_units(opt_data: bytes) -> int:
    val = opt_data[0]
    return 2 ** (val & 0x7F) if val & 0x80 else 10 ** (val & 0x7F)


def _read_pcapng(buf: bytes) -> Capture:
    records: list[Record] = []
    interfaces: list[Interface] = []
    units: list[int] = []
    offsets: list[int] = []
    section_base = 0  # index of the first interface of the current section
    little = True
    off = 0
    while off + 12 <= len(buf):
        if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
            little = buf[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a"
            section_base = len(interfaces)
        order = "<" if little else ">"
        btype, blen = struct.unpack(order + "II", buf[off : off + 8])
        if blen < 12 or off + blen > len(buf):
            raise ValueError(f"corrupt pcapng block at offset {off}")
        block = buf[off : off + blen]
        off += blen
        if btype == dpkt.pcapng.PCAPNG_BT_IDB:
            idb_cls = (
                dpkt.pcapng.InterfaceDescriptionBlockLE
                if little
                else dpkt.pcapng.InterfaceDescriptionBlock
            )
            idb = idb_cls(block)
            unit, tsoff, name = 10**6, 0, None
            for opt in idb.opts:
                if opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL:
                    unit = _tsresol_units(opt.data)
                elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET:
                    tsoff = struct.unpack(order + "q", opt.data[:8])[0]
                elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_NAME:
                    name = opt.data.rstrip(b"\0").decode("utf-8", "replace")
            interfaces.append(Interface(idb.linktype, idb.snaplen, name))
            units.append(unit)
            offsets.append(tsoff)
        elif btype in (dpkt.pcapng.PCAPNG_BT_EPB, dpkt.pcapng.PCAPNG_BT_PB):
            if btype == dpkt.pcapng.PCAPNG_BT_EPB:
                cls = (
                    dpkt.pcapng.EnhancedPacketBlockLE if little else dpkt.pcapng.EnhancedPacketBlock
                )
            else:
                cls = dpkt.pcapng.PacketBlockLE if little else dpkt.pcapng.PacketBlock
            pb = cls(block)
            idx = section_base + pb.iface_id
            ticks = (pb.ts_high << 32) | pb.ts_low
            ts_ns = ticks * _NS // units[idx] + offsets[idx] * _NS
            rec = Record(ts_ns, bytes(pb.pkt_data), interfaces[idx].linktype, pb.pkt_len, idx)
            records.append(rec)
        elif btype == dpkt.pcapng.PCAPNG_BT_SPB:
            idx = section_base
            olen = struct.unpack(order + "I", block[8:12])[0]
            caplen = min(olen, blen - 16, interfaces[idx].snaplen or olen)
            data = block[12 : 12 + caplen]
            prev = records[-1].ts_ns if records else 0
            records.append(Record(prev, data, interfaces[idx].linktype, olen, idx))
    if not interfaces:
        raise ValueError("pcapng file without interface description block")
    nano = any(u > 10**6 for u in units)
    return Capture(records, interfaces, "pcapng", nano)


def write_capture(
    path: PathLike,
    records: Sequence[Record],
    *,
    fmt: Fmt = "pcap",
    nanosecond: bool = False,
    snaplen: int = 65535,
    interfaces: Sequence[Interface] | None = None,
    compress: bool = False,
) -> None:
    """Write records as pcap (dpkt.pcap.Writer) or pcapng (dpkt.pcapng.Writer).

    Frames longer than ``snaplen`` are truncated (caplen < original length).  For pcap all
    records must share one link type; for pcapng, ``interfaces`` may describe several
    interfaces (records refer to them by ``Record.iface``)."""
    out = io.BytesIO()
    if fmt == "pcap":
        linktypes = {r.linktype for r in records}
        if len(linktypes) > 1:
            raise ValueError(f"pcap needs a single link type, got {sorted(linktypes)}")
        if linktypes:
            linktype = linktypes.pop()
        elif interfaces:
            linktype = interfaces[0].linktype
        else:
            linktype = LINKTYPE_ETHERNET
        dpkt.pcap.Writer(out, snaplen=snaplen, linktype=linktype, nano=nanosecond)
        hdr_cls = dpkt.pcap.LEPktHdr if _LE else dpkt.pcap.PktHdr
        for r in records:
            data = r.data[:snaplen]
            sec, frac = divmod(r.ts_ns, _NS)
            if not nanosecond:
                frac //= 1000
            hdr = hdr_cls(
                tv_sec=sec, tv_usec=frac, caplen=len(data), len=max(r.orig_len, len(data))
            )
            out.write(bytes(hdr) + data)
    elif fmt == "pcapng":
        _write_pcapng(out, records, nanosecond, snaplen, interfaces)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    payload = out.getvalue()
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as fh:
        fh.write(payload)


def _write_pcapng(
    out: io.BytesIO,
    records: Sequence[Record],
    nanosecond: bool,
    snaplen: int,
    interfaces: Sequence[Interface] | None,
) -> None:
    pc = dpkt.pcapng
    if interfaces is None:
        linktypes = {r.linktype for r in records} or {LINKTYPE_ETHERNET}
        if len(linktypes) > 1:
            raise ValueError("records with several link types need explicit interfaces")
        interfaces = [Interface(linktypes.pop(), snaplen)]
    for r in records:
        if not 0 <= r.iface < len(interfaces) or interfaces[r.iface].linktype != r.linktype:
            raise ValueError(f"record on interface {r.iface} does not match the interfaces")
    opt_cls = pc.PcapngOptionLE if _LE else pc.PcapngOption
    idb_cls = pc.InterfaceDescriptionBlockLE if _LE else pc.InterfaceDescriptionBlock
    shb_cls = pc.SectionHeaderBlockLE if _LE else pc.SectionHeaderBlock
    epb_cls = pc.EnhancedPacketBlockLE if _LE else pc.EnhancedPacketBlock
    idbs = []
    for itf in interfaces:
        opts = []
        if itf.name:
            opts.append(opt_cls(code=pc.PCAPNG_OPT_IF_NAME, data=itf.name.encode()))
        if nanosecond:
            opts.append(opt_cls(code=pc.PCAPNG_OPT_IF_TSRESOL, data=b"\x09"))
        if opts:
            opts.append(opt_cls(code=pc.PCAPNG_OPT_ENDOFOPT))
        idb = idb_cls(linktype=itf.linktype, snaplen=min(itf.snaplen, snaplen))
        if opts:
            idb.opts = opts
        idbs.append(idb)
    pc.Writer(out, snaplen=snaplen, shb=shb_cls(), idb=idbs)
    order = "<" if _LE else ">"
    for r in records:
        data = r.data[: min(snaplen, interfaces[r.iface].snaplen)]
        ticks = r.ts_ns if nanosecond else r.ts_ns // 1000
        epb = epb_cls(iface_id=r.iface, ts_high=ticks >> 32, ts_low=ticks & 0xFFFFFFFF)
        epb.pkt_data = data
        raw = bytearray(bytes(epb))
        # dpkt always writes pkt_len == caplen: patch in the original length (offset 24).
        struct.pack_into(order + "I", raw, 24, max(r.orig_len, len(data)))
        out.write(bytes(raw))


# ============================================================================================
# Link layer building / splitting
# ============================================================================================


@dataclass(frozen=True)
class _LinkParams:
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01"
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02"
    outgoing: bool = True
    vlan: int = 100
    outer_vlan: int = 200


def _link_frame(link: str, ethertype: int, l3: bytes, p: _LinkParams) -> tuple[int, bytes]:
    """Wrap a network-layer packet (``ethertype`` says what it is) into ``link``."""
    if link not in LINKTYPES:
        raise ValueError(f"unknown link {link!r}; expected one of {sorted(LINKTYPES)}")
    linktype = LINKTYPES[link]
    if link == "ethernet":
        eth = dpkt.ethernet.Ethernet(src=p.src_mac, dst=p.dst_mac, type=ethertype)
        return linktype, eth.pack_hdr() + l3
    if link in ("ethernet+vlan", "ethernet+qinq"):
        tags = b""
        if link == "ethernet+qinq":
            tags += struct.pack("!HH", ETH_QINQ, p.outer_vlan & 0x0FFF)
        tags += struct.pack("!HH", ETH_VLAN, p.vlan & 0x0FFF)
        return linktype, p.dst_mac + p.src_mac + tags + struct.pack("!H", ethertype) + l3
    if link == "raw":
        if ethertype not in (ETH_IPV4, ETH_IPV6):
            raise ValueError("raw link can only carry IP")
        return linktype, l3
    if link == "sll":
        sll = dpkt.sll.SLL(
            type=4 if p.outgoing else 0, hrd=1, hlen=6, hdr=p.src_mac + b"\0\0", ethtype=ethertype
        )
        return linktype, sll.pack_hdr() + l3
    if link == "sll2":
        sll2 = dpkt.sll2.SLL2(
            ethtype=ethertype,
            intindex=1,
            hrd=1,
            type=4 if p.outgoing else 0,
            hlen=6,
            hdr=p.src_mac + b"\0\0",
        )
        return linktype, sll2.pack_hdr() + l3
    if ethertype == ETH_IPV4:
        family = AF_INET
    elif ethertype == ETH_IPV6:
        family = AF_INET6_BSD
    else:
        raise ValueError(f"{link} link can only carry IP")
    if link == "null":
        return linktype, struct.pack("<I" if _LE else ">I", family) + l3
    return linktype, struct.pack(">I", family) + l3  # loop: network byte order


def _split_link(linktype: int, frame: bytes) -> tuple[bytes, int | None, bytes]:
    """Split a frame into (link header, ethertype of the payload or None, payload)."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return frame, None, b""
        off = 12
        etype = struct.unpack("!H", frame[off : off + 2])[0]
        while etype in _VLAN_TPIDS and len(frame) >= off + 6:
            off += 4
            etype = struct.unpack("!H", frame[off : off + 2])[0]
        off += 2
        return frame[:off], etype, frame[off:]
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return frame, None, b""
        return frame[:16], dpkt.sll.SLL(frame[:16]).ethtype, frame[16:]
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return frame, None, b""
        return frame[:20], dpkt.sll2.SLL2(frame[:20]).ethtype, frame[20:]
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return frame, None, b""
        be = struct.unpack(">I", frame[:4])[0]
        le = struct.unpack("<I", frame[:4])[0]
        fam = be if linktype == LINKTYPE_LOOP else (be if be < 0x10000 else le)
        if fam == AF_INET:
            return frame[:4], ETH_IPV4, frame[4:]
        if fam in _AF_INET6_ALL:
            return frame[:4], ETH_IPV6, frame[4:]
        return frame[:4], None, frame[4:]
    if linktype in _RAW_ALIASES:
        if not frame:
            return b"", None, b""
        version = frame[0] >> 4
        etype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else None
        return b"", etype, frame
    raise ValueError(f"unsupported link type {linktype}")


def _set_link_ethertype(linktype: int, header: bytes, ethertype: int) -> tuple[int, bytes]:
    """Change the protocol announced by an existing link header (IPv4 → IPv6 rewrites)."""
    if linktype == LINKTYPE_ETHERNET:
        return linktype, header[:-2] + struct.pack("!H", ethertype)
    if linktype == LINKTYPE_LINUX_SLL:
        return linktype, header[:14] + struct.pack("!H", ethertype)
    if linktype == LINKTYPE_LINUX_SLL2:
        return linktype, struct.pack("!H", ethertype) + header[2:]
    family = AF_INET if ethertype == ETH_IPV4 else AF_INET6_BSD
    if linktype == LINKTYPE_LOOP:
        return linktype, struct.pack(">I", family)
    if linktype == LINKTYPE_NULL:
        big = struct.unpack(">I", header)[0] < 0x10000
        return linktype, struct.pack(">I" if big else "<I", family)
    if linktype in (LINKTYPE_IPV4, LINKTYPE_IPV6):
        return (LINKTYPE_IPV4 if ethertype == ETH_IPV4 else LINKTYPE_IPV6), header
    return linktype, header


# ============================================================================================
# Conversation crafter
# ============================================================================================


def _inet(addr: str) -> tuple[int, bytes]:
    if ":" in addr:
        return 6, socket.inet_pton(socket.AF_INET6, addr)
    return 4, socket.inet_pton(socket.AF_INET, addr)


def _build_ip(
    version: int, src: bytes, dst: bytes, tcp: dpkt.tcp.TCP, *, ttl: int, ip_id: int
) -> bytes:
    tcp.sum = 0
    if version == 6:
        ip6 = dpkt.ip6.IP6(src=src, dst=dst, nxt=dpkt.ip.IP_PROTO_TCP, hlim=ttl, data=tcp)
        ip6.plen = len(tcp)
        return bytes(ip6)
    ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, ttl=ttl, id=ip_id, df=1, data=tcp)
    ip.sum = 0
    return bytes(ip)


def _make_tcp(
    sport: int,
    dport: int,
    *,
    seq: int,
    ack: int,
    flags: int,
    win: int,
    opts: bytes = b"",
    payload: bytes = b"",
    urp: int = 0,
) -> dpkt.tcp.TCP:
    if len(opts) % 4:
        opts += b"\x00" * (4 - len(opts) % 4)
    return dpkt.tcp.TCP(
        sport=sport,
        dport=dport,
        seq=seq % _SEQ_MOD,
        ack=ack % _SEQ_MOD,
        off=(20 + len(opts)) // 4,
        flags=flags,
        win=win,
        urp=urp,
        opts=opts,
        data=payload,
    )


@dataclass
class CraftedPacket:
    """A crafted IP packet: timestamp (ns), IP bytes, and which side sent it."""

    ts_ns: int
    ip: bytes
    direction: Direction

    @property
    def ts(self) -> float:
        return self.ts_ns / _NS


@dataclass
class Conversation:
    """Craft one TCP connection.

    Packet numbers returned by the methods are 1-based positions in :attr:`packets`, i.e. the
    tshark ``frame.number`` of a capture written from this conversation alone.
    """

    client: tuple[str, int] = ("127.0.0.1", 50000)
    server: tuple[str, int] = ("127.0.0.1", 8765)
    mss: int = 1448
    t0: float = 1_700_000_000.0
    client_isn: int = 1000
    server_isn: int = 5000
    window: int = 65535
    window_scale: int | None = None
    ttl: int = 64
    client_mac: str = "02:00:00:00:00:01"
    server_mac: str = "02:00:00:00:00:02"
    vlan: int = 100
    outer_vlan: int = 200
    frames: list[CraftedPacket] = field(default_factory=list)

    def __post_init__(self) -> None:
        cv, self._client_ip = _inet(self.client[0])
        sv, self._server_ip = _inet(self.server[0])
        if cv != sv:
            raise ValueError("client and server must use the same IP version")
        self.version = cv
        self._clock = _to_ns(self.t0)
        self._snd_nxt: dict[Direction, int] = {
            "c2s": self.client_isn % _SEQ_MOD,
            "s2c": self.server_isn % _SEQ_MOD,
        }
        self._pending: dict[Direction, int] = {"c2s": 0, "s2c": 0}
        self._ip_id: dict[Direction, int] = {"c2s": 0x1000, "s2c": 0x2000}
        self._sent: dict[Direction, bytearray] = {"c2s": bytearray(), "s2c": bytearray()}
        self._seen_syn: dict[Direction, bool] = {"c2s": False, "s2c": False}

    # ---- views -------------------------------------------------------------------------
    @property
    def packets(self) -> list[tuple[float, bytes]]:
        """(timestamp in seconds, IP packet bytes) in capture order (a fresh list)."""
        return [(p.ts, p.ip) for p in self.frames]

    @property
    def now(self) -> float:
        return self._clock / _NS

    def stream_bytes(self, direction: str) -> bytes:
        """All payload bytes sent in ``direction`` through the sequence-tracking methods."""
        return bytes(self._sent[_check_direction(direction)])

    def next_seq(self, direction: str) -> int:
        return self._snd_nxt[_check_direction(direction)]

    def wait(self, seconds: float) -> None:
        """Let time pass without traffic."""
        self._clock += round(seconds * _NS)

    # ---- low level ---------------------------------------------------------------------
    def segment(
        self,
        direction: str,
        flags: int,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        window: int | None = None,
        options: bytes = b"",
        dt: float = 0.001,
    ) -> int:
        """Append one arbitrary TCP segment and return its packet number.

        With ``seq=None`` the segment continues the sender's sequence space (and advances it);
        an explicit ``seq`` crafts retransmissions / gaps without touching the state.  ``ack``
        defaults to everything the peer sent so far (when the ACK flag is set)."""
        d = _check_direction(direction)
        peer = _other(d)
        auto = seq is None
        s = self._snd_nxt[d] if seq is None else seq % _SEQ_MOD
        if ack is None:
            ack = self._snd_nxt[peer] if flags & TH_ACK else 0
        sport, dport = (
            (self.client[1], self.server[1])
            if d == "c2s"
            else (
                self.server[1],
                self.client[1],
            )
        )
        src, dst = (
            (self._client_ip, self._server_ip) if d == "c2s" else (self._server_ip, self._client_ip)
        )
        tcp = _make_tcp(
            sport,
            dport,
            seq=s,
            ack=ack,
            flags=flags,
            win=self.window if window is None else window,
            opts=options,
            payload=payload,
        )
        ip = _build_ip(self.version, src, dst, tcp, ttl=self.ttl, ip_id=self._ip_id[d])
        self._ip_id[d] = (self._ip_id[d] + 1) & 0xFFFF
        self.frames.append(CraftedPacket(self._clock, ip, d))
        self._clock += round(dt * _NS)
        if auto:
            consumed = len(payload) + (1 if flags & TH_SYN else 0) + (1 if flags & TH_FIN else 0)
            self._snd_nxt[d] = (s + consumed) % _SEQ_MOD
            self._sent[d] += payload
        if flags & TH_SYN:
            self._seen_syn[d] = True
        if flags & TH_ACK and ack % _SEQ_MOD == self._snd_nxt[peer]:
            self._pending[peer] = 0
        return len(self.frames)

    def _syn_options(self) -> bytes:
        opts = struct.pack("!BBH", 2, 4, self.mss)
        if self.window_scale is not None:
            opts += struct.pack("!BBBB", 1, 3, 3, self.window_scale)
        return opts

    # ---- high level --------------------------------------------------------------------
    def handshake(self, *, dt: float = 0.001) -> list[int]:
        """SYN, SYN/ACK, ACK.  Returns the three packet numbers."""
        return [
            self.segment("c2s", TH_SYN, options=self._syn_options(), dt=dt),
            self.segment("s2c", TH_SYN | TH_ACK, options=self._syn_options(), dt=dt),
            self.segment("c2s", TH_ACK, dt=dt),
        ]

    def send(
        self,
        direction: str,
        data: bytes,
        *,
        segments: Sequence[int] | None = None,
        dt: float = 0.001,
        push_with_next: bool = False,
    ) -> list[int]:
        """Send ``data`` split into MSS-sized segments (or the given segment sizes).

        The peer ACKs delayed-ACK style: after every second unacknowledged segment and at the
        end.  ``push_with_next=True`` means more data follows immediately: no PSH on the last
        segment and no final ACK (the unacknowledged count carries over to the next send).
        Returns the packet numbers of the data segments."""
        d = _check_direction(direction)
        if segments is None:
            sizes = [min(self.mss, len(data) - i) for i in range(0, len(data), self.mss)]
        else:
            sizes = list(segments)
            if any(s <= 0 for s in sizes) or sum(sizes) != len(data):
                raise ValueError(f"segment sizes {sizes} do not add up to {len(data)} bytes")
        numbers: list[int] = []
        pos = 0
        for i, size in enumerate(sizes):
            last = i == len(sizes) - 1
            flags = TH_ACK | (TH_PUSH if last and not push_with_next else 0)
            numbers.append(self.segment(d, flags, data[pos : pos + size], dt=dt))
            pos += size
            self._pending[d] += 1
            if self._pending[d] >= 2:
                self.ack(_other(d), dt=dt)
        if not push_with_next and self._pending[d]:
            self.ack(_other(d), dt=dt)
        return numbers

    def ack(self, direction: str, *, dt: float = 0.001) -> int:
        """A pure ACK sent in ``direction`` acknowledging everything received so far."""
        return self.segment(direction, TH_ACK, dt=dt)

    def close(self, initiator: str = "c2s", *, dt: float = 0.001) -> list[int]:
        """FIN/ACK from ``initiator``, FIN/ACK from the peer, final ACK."""
        d = _check_direction(initiator)
        return [
            self.segment(d, TH_FIN | TH_ACK, dt=dt),
            self.segment(_other(d), TH_FIN | TH_ACK, dt=dt),
            self.segment(d, TH_ACK, dt=dt),
        ]

    def reset(self, direction: str = "c2s", *, with_ack: bool = True, dt: float = 0.001) -> int:
        """Abort the connection with a RST (RST/ACK by default) from ``direction``."""
        return self.segment(direction, TH_RST | (TH_ACK if with_ack else 0), dt=dt)

    def ws_upgrade(
        self,
        *,
        host: str = "localhost",
        path: str = "/",
        key: str | None = None,
        extensions: str | Sequence[str] | None = None,
        protocols: str | Sequence[str] | None = None,
        response_extensions: str | Sequence[str] | None = None,
        protocol: str | None = None,
        status: int = 101,
        dt: float = 0.001,
    ) -> tuple[list[int], list[int]]:
        """Send an HTTP upgrade request and its response; returns their packet numbers."""
        key = key or ws_key(0)
        req = upgrade_request(host, path, key, extensions=extensions, protocols=protocols)
        resp = upgrade_response(
            key, extensions=response_extensions, protocol=protocol, status=status
        )
        return self.send("c2s", req, dt=dt), self.send("s2c", resp, dt=dt)

    # ---- output ------------------------------------------------------------------------
    def records(self, link: str = "ethernet") -> list[Record]:
        ethertype = ETH_IPV6 if self.version == 6 else ETH_IPV4
        cmac, smac = _mac(self.client_mac), _mac(self.server_mac)
        out: list[Record] = []
        for p in self.frames:
            c2s = p.direction == "c2s"
            params = _LinkParams(
                src_mac=cmac if c2s else smac,
                dst_mac=smac if c2s else cmac,
                outgoing=c2s,
                vlan=self.vlan,
                outer_vlan=self.outer_vlan,
            )
            linktype, frame = _link_frame(link, ethertype, p.ip, params)
            out.append(Record(p.ts_ns, frame, linktype))
        return out

    def write(
        self,
        path: PathLike,
        *,
        link: Link = "ethernet",
        fmt: Fmt = "pcap",
        nanosecond: bool = False,
        snaplen: int = 65535,
    ) -> None:
        write_capture(path, self.records(link), fmt=fmt, nanosecond=nanosecond, snaplen=snaplen)


def write_conversations(
    path: PathLike,
    conversations: Iterable[Conversation],
    *,
    link: Link = "ethernet",
    fmt: Fmt = "pcap",
    nanosecond: bool = False,
    snaplen: int = 65535,
) -> list[list[int]]:
    """Merge several conversations by timestamp (stable) into one capture.

    Returns, per conversation, the new packet number of each of its packets (index i holds the
    number of the conversation's packet i + 1)."""
    tagged: list[tuple[int, int, int, Record]] = []
    convs = list(conversations)
    for ci, conv in enumerate(convs):
        for pi, rec in enumerate(conv.records(link)):
            tagged.append((rec.ts_ns, ci, pi, rec))
    tagged.sort(key=lambda t: (t[0], t[1], t[2]))
    numbering: list[list[int]] = [[0] * len(c.frames) for c in convs]
    for n, (_, ci, pi, _) in enumerate(tagged, start=1):
        numbering[ci][pi] = n
    write_capture(path, [t[3] for t in tagged], fmt=fmt, nanosecond=nanosecond, snaplen=snaplen)
    return numbering


# ============================================================================================
# WebSocket byte builders
# ============================================================================================

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte masking key (RFC 6455 §5.3); self-inverse."""
    if len(key) != 4:
        raise ValueError("masking key must be 4 bytes")
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def ws_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
    mask: bytes | None = None,
    length_encoding: Literal["minimal", "16", "64"] = "minimal",
) -> bytes:
    """Encode one WebSocket frame.  ``mask`` (4 bytes) masks the payload (client frames);
    ``length_encoding`` forces the 16- or 64-bit extended length even for short payloads."""
    if not 0 <= opcode <= 0xF:
        raise ValueError("opcode must fit in 4 bits")
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0)
    b0 |= (0x10 if rsv3 else 0) | opcode
    mbit = 0x80 if mask is not None else 0
    n = len(payload)
    enc: str = length_encoding
    if enc == "minimal":
        enc = "7" if n < 126 else "16" if n < 0x10000 else "64"
    if enc == "7":
        head = bytes([b0, mbit | n])
    elif enc == "16":
        if n >= 0x10000:
            raise ValueError("payload too long for a 16-bit length")
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    elif enc == "64":
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    else:
        raise ValueError(f"unknown length encoding {length_encoding!r}")
    if mask is None:
        return head + payload
    return head + mask + ws_mask(payload, mask)


def ws_close_payload(code: int | None = 1000, reason: str | bytes = "") -> bytes:
    """Close frame body: 2-byte status code + UTF-8 reason (empty when ``code`` is None)."""
    if code is None:
        return b""
    raw = reason.encode() if isinstance(reason, str) else reason
    return struct.pack("!H", code) + raw


def ws_key(seed: int = 0) -> str:
    """A deterministic Sec-WebSocket-Key (base64 of 16 bytes derived from ``seed``)."""
    return base64.b64encode(hashlib.sha256(f"ws-key-{seed}".encode()).digest()[:16]).decode()


def ws_accept(key: str) -> str:
    """Sec-WebSocket-Accept for ``key`` (RFC 6455 §4.2.2: base64(SHA-1(key + GUID)))."""
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


def _header_value(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def upgrade_request(
    host: str,
    path: str,
    key: str,
    *,
    extensions: str | Sequence[str] | None = None,
    protocols: str | Sequence[str] | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    version: int = 13,
) -> bytes:
    """An HTTP/1.1 WebSocket upgrade request (CRLF line endings, terminated by an empty line)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
    ]
    if extensions:
        lines.append(f"Sec-WebSocket-Extensions: {_header_value(extensions)}")
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {_header_value(protocols)}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade_response(
    key: str,
    *,
    extensions: str | Sequence[str] | None = None,
    protocol: str | None = None,
    status: int = 101,
    extra_headers: Iterable[tuple[str, str]] = (),
    accept: str | None = None,
) -> bytes:
    """The server's answer.  101 → switching protocols with Sec-WebSocket-Accept computed from
    ``key`` (override with ``accept`` to craft a wrong one); other statuses produce a plain
    response with ``Content-Length: 0``."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    if status == 101:
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept if accept is not None else ws_accept(key)}",
        ]
        if extensions:
            lines.append(f"Sec-WebSocket-Extensions: {_header_value(extensions)}")
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    else:
        lines.append("Content-Length: 0")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_SYNC_TAIL = b"\x00\x00\xff\xff"


def deflate_message(
    payloads: Sequence[bytes], *, context_takeover: bool = True, wbits: int = 15, level: int = 6
) -> list[bytes]:
    """permessage-deflate payloads (RFC 7692 §7.2.1) for successive messages of one direction:
    raw DEFLATE, Z_SYNC_FLUSH, trailing ``00 00 ff ff`` removed.  With context takeover the
    compressor (and its LZ77 window) is shared between messages.  ``wbits`` is 9..15 (zlib
    cannot produce raw streams with an 8-bit window)."""
    if not 9 <= wbits <= 15:
        raise ValueError("wbits must be in 9..15")
    out: list[bytes] = []
    comp = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    for payload in payloads:
        if not context_takeover:
            comp = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        data = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
        if not data.endswith(_SYNC_TAIL):
            raise AssertionError("Z_SYNC_FLUSH output must end with 00 00 ff ff")
        out.append(data[: -len(_SYNC_TAIL)])
    return out


def inflate_message(
    payloads: Sequence[bytes], *, context_takeover: bool = True, wbits: int = 15
) -> list[bytes]:
    """Inverse of :func:`deflate_message` (appends ``00 00 ff ff`` and inflates)."""
    out: list[bytes] = []
    dec = zlib.decompressobj(-wbits)
    for payload in payloads:
        if not context_takeover:
            dec = zlib.decompressobj(-wbits)
        out.append(dec.decompress(payload + _SYNC_TAIL))
    return out


# ============================================================================================
# Capture analysis (TCP view of records)
# ============================================================================================


@dataclass
class _Parsed:
    header: bytes  # link header
    ethertype: int | None
    l3: bytes  # network layer bytes as captured (including any trailer)
    version: int  # 4, 6 or 0 (not IP)
    ip: dpkt.ip.IP | dpkt.ip6.IP6 | None
    tcp: dpkt.tcp.TCP | None
    ip_len: int  # total IP length according to the headers
    payload_len: int  # TCP payload length according to the headers
    truncated: bool


def _parse(rec: Record) -> _Parsed:
    header, etype, l3 = _split_link(rec.linktype, rec.data)
    truncated = rec.truncated
    version = 4 if etype == ETH_IPV4 else 6 if etype == ETH_IPV6 else 0
    none = _Parsed(header, etype, l3, 0, None, None, len(l3), 0, truncated)
    if version == 4:
        try:
            ip4 = dpkt.ip.IP(l3)
        except (dpkt.UnpackError, dpkt.NeedData):
            return none
        ip_len = ip4.len or len(l3)
        tcp = ip4.data if isinstance(ip4.data, dpkt.tcp.TCP) else None
        if ip4.offset or ip4.mf:
            tcp = None
        hlen = ip4.hl * 4
        truncated = truncated or len(l3) < ip_len
        payload_len = ip_len - hlen - tcp.off * 4 if tcp is not None else 0
        return _Parsed(header, etype, l3, 4, ip4, tcp, ip_len, payload_len, truncated)
    if version == 6:
        try:
            ip6 = dpkt.ip6.IP6(l3)
        except (dpkt.UnpackError, dpkt.NeedData):
            return none
        ip_len = 40 + ip6.plen
        tcp = ip6.data if isinstance(ip6.data, dpkt.tcp.TCP) else None
        if 44 in getattr(ip6, "extension_hdrs", {}):
            tcp = None
        ext_len = sum(len(h) for h in getattr(ip6, "all_extension_headers", []))
        truncated = truncated or len(l3) < ip_len
        payload_len = ip6.plen - ext_len - tcp.off * 4 if tcp is not None else 0
        return _Parsed(header, etype, l3, 6, ip6, tcp, ip_len, payload_len, truncated)
    return none


def _addr_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


@dataclass
class SegmentInfo:
    """TCP view of one packet of a capture (``tcp_segments``)."""

    number: int  # 1-based packet number
    stream: int  # 0-based, order of first appearance (like tcp.stream)
    direction: Direction  # c2s: sent by the SYN sender (or by the first seen sender)
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    ack: int
    flags: int
    payload: bytes  # captured payload (shorter than payload_len when truncated)
    payload_len: int
    offset: int  # stream offset of the first payload byte (0 = first byte after the SYN)
    truncated: bool
    ts_ns: int

    @property
    def end(self) -> int:
        return self.offset + self.payload_len

    @property
    def is_data(self) -> bool:
        return self.payload_len > 0


def _analyze(records: Sequence[Record]) -> tuple[list[_Parsed], list[SegmentInfo | None]]:
    parsed = [_parse(r) for r in records]
    streams: dict[tuple[tuple[bytes, int], tuple[bytes, int]], int] = {}
    clients: dict[int, tuple[bytes, int]] = {}
    bases: dict[tuple[int, Direction], int] = {}
    # First pass: decide clients (SYN sender wins) and sequence bases.
    for p in parsed:
        if p.tcp is None or p.ip is None:
            continue
        a, b = (bytes(p.ip.src), p.tcp.sport), (bytes(p.ip.dst), p.tcp.dport)
        key = (min(a, b), max(a, b))
        sid = streams.setdefault(key, len(streams))
        if p.tcp.flags & TH_SYN and not p.tcp.flags & TH_ACK:
            clients.setdefault(sid, a)
        elif p.tcp.flags & TH_SYN and p.tcp.flags & TH_ACK:
            clients.setdefault(sid, b)
    for key, sid in streams.items():
        clients.setdefault(sid, key[0])
    infos: list[SegmentInfo | None] = []
    first_sender: dict[int, tuple[bytes, int]] = {}
    for n, (rec, p) in enumerate(zip(records, parsed, strict=True), start=1):
        if p.tcp is None or p.ip is None:
            infos.append(None)
            continue
        a, b = (bytes(p.ip.src), p.tcp.sport), (bytes(p.ip.dst), p.tcp.dport)
        sid = streams[(min(a, b), max(a, b))]
        first_sender.setdefault(sid, a)
        direction: Direction = "c2s" if a == clients[sid] else "s2c"
        seq = p.tcp.seq
        data_seq = (seq + 1) % _SEQ_MOD if p.tcp.flags & TH_SYN else seq
        base = bases.get((sid, direction))
        if base is None:
            base = data_seq
            bases[(sid, direction)] = base
        rel = (data_seq - base) % _SEQ_MOD
        if rel >= 1 << 31:
            rel -= _SEQ_MOD
        infos.append(
            SegmentInfo(
                number=n,
                stream=sid,
                direction=direction,
                src=(_addr_text(a[0]), a[1]),
                dst=(_addr_text(b[0]), b[1]),
                seq=seq,
                ack=p.tcp.ack,
                flags=p.tcp.flags,
                payload=bytes(p.tcp.data),
                payload_len=p.payload_len,
                offset=rel,
                truncated=p.truncated,
                ts_ns=rec.ts_ns,
            )
        )
    return parsed, infos


def tcp_segments(path: PathLike) -> list[SegmentInfo]:
    """TCP segments of a capture file (non-TCP packets are skipped; ``number`` keeps the
    packet numbering of the file)."""
    _, infos = _analyze(read_capture(path).records)
    return [i for i in infos if i is not None]


def _rebuild(
    rec: Record,
    p: _Parsed,
    *,
    seq: int | None = None,
    payload: bytes | None = None,
    flags: int | None = None,
    ack: int | None = None,
    ip_id_delta: int = 0,
) -> Record:
    """New record from ``rec`` with TCP fields replaced and checksums recomputed."""
    if p.tcp is None or p.ip is None:
        raise ValueError("not a TCP packet")
    if p.truncated:
        raise ValueError("cannot rewrite a truncated packet (its checksum would be wrong)")
    t = p.tcp
    tcp = _make_tcp(
        t.sport,
        t.dport,
        seq=t.seq if seq is None else seq,
        ack=t.ack if ack is None else ack,
        flags=t.flags if flags is None else flags,
        win=t.win,
        opts=bytes(t.opts),
        payload=bytes(t.data) if payload is None else payload,
        urp=t.urp,
    )
    l3 = p.l3[: p.ip_len]
    if p.version == 4:
        ip4 = dpkt.ip.IP(l3)
        ip4.data = tcp
        ip4.id = (ip4.id + ip_id_delta) & 0xFFFF
        ip4.sum = 0
        tcp.sum = 0
        raw = bytes(ip4)
    else:
        ip6 = dpkt.ip6.IP6(l3)
        ip6.data = tcp
        tcp.sum = 0
        ip6.plen = len(ip6) - 40
        raw = bytes(ip6)
    trailer = p.l3[p.ip_len :] if len(raw) == p.ip_len else b""
    data = p.header + raw + trailer
    return Record(rec.ts_ns, data, rec.linktype, len(data), rec.iface)


# ============================================================================================
# Transforms
# ============================================================================================


@dataclass(frozen=True)
class StreamSpan:
    """Payload bytes [start, end) of one direction of a TCP stream, carried by ``packet``."""

    stream: int
    direction: Direction
    start: int
    end: int
    packet: int  # old numbering for removed spans, new numbering for inserted ones
    source: tuple[int, ...] = ()  # old packet numbers the span was derived from / overlaps


@dataclass
class Report:
    """What a transform did, in 1-based packet numbers.

    ``mapping[old] = [new, ...]``: where every input packet went ([] when removed, several
    numbers when it was split).  ``inserted`` lists the new numbers of packets that were
    added (duplicates, overlapping retransmissions) with their stream spans."""

    mapping: dict[int, list[int]] = field(default_factory=dict)
    inserted: list[StreamSpan] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    removed_spans: list[StreamSpan] = field(default_factory=list)
    swapped: list[tuple[int, int]] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)

    def new(self, old: int) -> int:
        """New number of old packet ``old`` (first one if it was split)."""
        numbers = self.mapping.get(old)
        if not numbers:
            raise KeyError(f"packet {old} has no counterpart in the output")
        return numbers[0]

    @property
    def inserted_numbers(self) -> list[int]:
        return [s.packet for s in self.inserted]


@dataclass
class _Out:
    record: Record
    origin: int | None  # old packet number (1-based) or None for inserted packets
    span: StreamSpan | None = None  # for inserted packets (packet field patched later)


def _finish(
    cap: Capture,
    dst: PathLike,
    outs: list[_Out],
    report: Report,
    *,
    n_old: int,
    fmt: Fmt | None = None,
    nanosecond: bool | None = None,
    snap: int | None = None,
    interfaces: list[Interface] | None = None,
) -> Report:
    """Number the output, fill the report, keep timestamps non-decreasing and write (format,
    precision, snaplen and interfaces default to the input capture's)."""
    for old in range(1, n_old + 1):
        report.mapping.setdefault(old, [])
    records: list[Record] = []
    last_ts: int | None = None
    for new, o in enumerate(outs, start=1):
        rec = o.record
        if last_ts is not None and rec.ts_ns < last_ts:
            rec = dataclasses.replace(rec, ts_ns=last_ts)
        last_ts = rec.ts_ns
        records.append(rec)
        if o.origin is not None:
            report.mapping[o.origin].append(new)
        if o.span is not None:
            report.inserted.append(dataclasses.replace(o.span, packet=new))
    report.removed = sorted(old for old, news in report.mapping.items() if not news)
    fmt = cap.fmt if fmt is None else fmt
    interfaces = cap.interfaces if interfaces is None else interfaces
    write_capture(
        dst,
        records,
        fmt=fmt,
        nanosecond=cap.nanosecond if nanosecond is None else nanosecond,
        snaplen=cap.snaplen if snap is None else snap,
        interfaces=interfaces if fmt == "pcapng" else None,
    )
    return report


def _data_by_direction(
    infos: Sequence[SegmentInfo | None], parsed: Sequence[_Parsed]
) -> dict[tuple[int, Direction], list[int]]:
    """0-based indices of rewritable data segments, grouped per stream direction."""
    groups: dict[tuple[int, Direction], list[int]] = {}
    for i, info in enumerate(infos):
        if info is None or not info.is_data or info.truncated:
            continue
        if info.flags & (TH_SYN | TH_RST) or parsed[i].tcp is None:
            continue
        groups.setdefault((info.stream, info.direction), []).append(i)
    return groups


def _mid_ts(outs: list[_Out], pos: int, records: Sequence[Record]) -> int:
    """A timestamp between the packet before position ``pos`` and the original at ``pos``."""
    before = outs[-1].record.ts_ns if outs else records[0].ts_ns
    after = records[pos].ts_ns if pos < len(records) else before + 1000
    return before + max(0, after - before) // 2


def reorder(
    src: PathLike, dst: PathLike, *, seed: int, window: int = 3, probability: float = 0.5
) -> Report:
    """Swap nearby data segments of the same direction: two data segments of one stream
    direction trade places when they are at most ``window`` packets apart in the capture.
    Timestamps stay with the positions so the capture stays time-ordered.  At least one swap
    is made when any pair qualifies.  ``report.swapped`` lists the (old a, old b) pairs."""
    if window < 1:
        raise ValueError("window must be >= 1")
    cap = read_capture(src)
    recs = cap.records
    parsed, infos = _analyze(recs)
    rng = random.Random(seed)
    order = list(range(len(recs)))
    report = Report()
    groups = _data_by_direction(infos, parsed)

    def swap(a: int, b: int) -> None:
        order[a], order[b] = order[b], order[a]
        report.swapped.append((a + 1, b + 1))

    for key in sorted(groups):
        idx = groups[key]
        k = 0
        while k < len(idx) - 1:
            near = [m for m in range(k + 1, len(idx)) if idx[m] - idx[k] <= window]
            if near and rng.random() < probability:
                m = rng.choice(near)
                swap(idx[k], idx[m])
                k = m + 1
            else:
                k += 1
    if not report.swapped:
        pairs = [
            (a, b)
            for key in sorted(groups)
            for a, b in itertools.pairwise(groups[key])
            if b - a <= window
        ]
        if pairs:
            swap(*rng.choice(pairs))
    outs = [
        _Out(dataclasses.replace(recs[order[pos]], ts_ns=recs[pos].ts_ns), order[pos] + 1)
        for pos in range(len(recs))
    ]
    return _finish(cap, dst, outs, report, n_old=len(recs))


def duplicate(
    src: PathLike, dst: PathLike, *, seed: int, fraction: float = 0.25, max_delay: int = 2
) -> Report:
    """Retransmit some data segments: an identical copy is inserted 0..``max_delay`` packets
    after the original (timestamp between its neighbours).  At least one copy when possible."""
    cap = read_capture(src)
    recs = cap.records
    parsed, infos = _analyze(recs)
    rng = random.Random(seed)
    candidates = sorted(i for idx in _data_by_direction(infos, parsed).values() for i in idx)
    chosen = [i for i in candidates if rng.random() < fraction]
    if not chosen and candidates:
        chosen = [rng.choice(candidates)]
    inserts: dict[int, list[int]] = {}  # insert after old index → original indices
    for i in chosen:
        after = min(len(recs) - 1, i + rng.randint(0, max_delay))
        inserts.setdefault(after, []).append(i)
    outs: list[_Out] = []
    for pos, rec in enumerate(recs):
        outs.append(_Out(rec, pos + 1))
        for i in inserts.get(pos, []):
            info = infos[i]
            assert info is not None
            ts = _mid_ts(outs, pos + 1, recs)
            span = StreamSpan(info.stream, info.direction, info.offset, info.end, 0, (i + 1,))
            outs.append(_Out(dataclasses.replace(recs[i], ts_ns=ts), None, span))
    return _finish(cap, dst, outs, Report(), n_old=len(recs))


def overlap(src: PathLike, dst: PathLike, *, seed: int, fraction: float = 0.5) -> Report:
    """Insert retransmissions that partially overlap neighbouring segments with the same bytes.

    For consecutive data segments A, B of one direction a segment covering the tail of A and
    the head of B is inserted either right after A (it then carries new bytes that B later
    repeats) or after B (a plain overlapping retransmission).  A direction with a single
    segment gets a retransmission of that segment's tail.  At least one insertion when
    possible; ``report.inserted`` tells the spans and which old packets they overlap."""
    cap = read_capture(src)
    recs = cap.records
    parsed, infos = _analyze(recs)
    rng = random.Random(seed)
    # (insert after index, template index, seq, payload, overlapped old packet numbers)
    plans: list[tuple[int, int, int, bytes, tuple[int, ...]]] = []
    candidates: list[tuple[int, int | None]] = []
    groups = _data_by_direction(infos, parsed)
    for key in sorted(groups):
        segs = sorted(
            ((info, i) for i in groups[key] if (info := infos[i]) is not None),
            key=lambda t: (t[0].offset, t[1]),
        )
        pairs = [
            (a, b)
            for (ia, a), (ib, b) in itertools.pairwise(segs)
            if ia.end == ib.offset and not ia.flags & TH_FIN
        ]
        if pairs:
            candidates.extend(pairs)
        elif len(segs) == 1 and segs[0][0].payload_len >= 2:
            candidates.append((segs[0][1], None))
    chosen = [c for c in candidates if rng.random() < fraction]
    if not chosen and candidates:
        chosen = [rng.choice(candidates)]
    for a, b in chosen:
        ia = infos[a]
        assert ia is not None
        x = rng.randint(1, ia.payload_len - 1) if ia.payload_len > 1 else 0
        if b is None:
            plans.append((a, a, (ia.seq + x) % _SEQ_MOD, ia.payload[x:], (a + 1,)))
            continue
        ib = infos[b]
        assert ib is not None
        y = rng.randint(1, ib.payload_len)
        data = ia.payload[x:] + ib.payload[:y]
        early = rng.random() < 0.5 and a < b
        after = a if early else max(a, b)
        template = a if early else b
        plans.append((after, template, (ia.seq + x) % _SEQ_MOD, data, (a + 1, b + 1)))
    inserts: dict[int, list[tuple[int, int, bytes, tuple[int, ...]]]] = {}
    for after, template, seq, data, source in plans:
        inserts.setdefault(after, []).append((template, seq, data, source))
    outs: list[_Out] = []
    for pos, rec in enumerate(recs):
        outs.append(_Out(rec, pos + 1))
        for template, seq, data, source in inserts.get(pos, []):
            info = infos[template]
            assert info is not None
            flags = (info.flags & ~(TH_FIN | TH_SYN)) | TH_ACK | TH_PUSH
            new = _rebuild(recs[template], parsed[template], seq=seq, payload=data, flags=flags)
            new.ts_ns = _mid_ts(outs, pos + 1, recs)
            first = infos[source[0] - 1]
            assert first is not None
            start = first.offset + ((seq - first.seq) % _SEQ_MOD)
            span = StreamSpan(info.stream, info.direction, start, start + len(data), 0, source)
            outs.append(_Out(new, None, span))
    return _finish(cap, dst, outs, Report(), n_old=len(recs))


def resegment(
    src: PathLike, dst: PathLike, *, sizes: Iterable[int] = range(1, 8), seed: int = 0
) -> Report:
    """Split every data segment into small segments whose sizes are drawn from ``sizes``
    (1..7 bytes by default).  Sequence numbers stay consistent; PSH/FIN stay on the last
    piece; timestamps are spread (non-decreasing) before the next original packet.
    ``report.mapping[old]`` lists the numbers of the pieces."""
    choices = list(sizes)
    if not choices or min(choices) <= 0:
        raise ValueError("sizes must be positive")
    cap = read_capture(src)
    recs = cap.records
    parsed, infos = _analyze(recs)
    rng = random.Random(seed)
    splittable = {i for idx in _data_by_direction(infos, parsed).values() for i in idx}
    outs: list[_Out] = []
    for pos, rec in enumerate(recs):
        info = infos[pos]
        if pos not in splittable or info is None:
            outs.append(_Out(rec, pos + 1))
            continue
        pieces: list[bytes] = []
        data = info.payload
        while data:
            n = rng.choice(choices)
            pieces.append(data[:n])
            data = data[n:]
        nxt = recs[pos + 1].ts_ns if pos + 1 < len(recs) else rec.ts_ns + 1000 * len(pieces)
        step = min(1000, max(0, nxt - rec.ts_ns) // len(pieces))
        off = 0
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            flags = info.flags if last else info.flags & ~(TH_PUSH | TH_FIN)
            new = _rebuild(
                rec,
                parsed[pos],
                seq=(info.seq + off) % _SEQ_MOD,
                payload=piece,
                flags=flags,
                ip_id_delta=k,
            )
            new.ts_ns = rec.ts_ns + k * step
            outs.append(_Out(new, pos + 1))
            off += len(piece)
    return _finish(cap, dst, outs, Report(), n_old=len(recs))


def drop_packets(src: PathLike, dst: PathLike, numbers: Iterable[int]) -> Report:
    """Remove the given (1-based) packets.  ``report.removed_spans`` tells which stream bytes
    disappeared with them (data segments only)."""
    cap = read_capture(src)
    recs = cap.records
    _, infos = _analyze(recs)
    gone = set(numbers)
    bad = [n for n in gone if not 1 <= n <= len(recs)]
    if bad:
        raise ValueError(f"no such packets: {sorted(bad)}")
    report = Report()
    outs: list[_Out] = []
    for pos, rec in enumerate(recs):
        if pos + 1 in gone:
            info = infos[pos]
            if info is not None and info.is_data:
                report.removed_spans.append(
                    StreamSpan(info.stream, info.direction, info.offset, info.end, pos + 1)
                )
            continue
        outs.append(_Out(rec, pos + 1))
    return _finish(cap, dst, outs, report, n_old=len(recs))


def drop(src: PathLike, dst: PathLike, *, predicate: Callable[[SegmentInfo], bool]) -> Report:
    """Remove the TCP packets for which ``predicate(segment_info)`` is true."""
    return drop_packets(src, dst, [s.number for s in tcp_segments(src) if predicate(s)])


def cut_start(src: PathLike, dst: PathLike, first_packet: int) -> Report:
    """Start the capture at packet ``first_packet`` (1-based), e.g. mid-stream."""
    return drop_packets(src, dst, range(1, first_packet))


def snaplen(src: PathLike, dst: PathLike, snaplen: int) -> Report:
    """Truncate every frame to ``snaplen`` bytes (caplen < original length); the file header
    snaplen is set accordingly.  ``report.truncated`` lists the packets that were cut."""
    if snaplen <= 0:
        raise ValueError("snaplen must be positive")
    cap = read_capture(src)
    report = Report()
    outs: list[_Out] = []
    for pos, rec in enumerate(cap.records):
        if len(rec.data) > snaplen:
            report.truncated.append(pos + 1)
        outs.append(_Out(dataclasses.replace(rec, data=rec.data[:snaplen]), pos + 1))
    interfaces = [dataclasses.replace(i, snaplen=snaplen) for i in cap.interfaces]
    return _finish(
        cap, dst, outs, report, n_old=len(cap.records), snap=snaplen, interfaces=interfaces
    )


def _v4_to_v6(raw: bytes, prefix: str) -> bytes:
    v4 = ipaddress.IPv4Address(raw)
    if v4 == ipaddress.IPv4Address("127.0.0.1"):
        return ipaddress.IPv6Address("::1").packed
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address(prefix)) | int(v4)).packed


def to_ipv6(src: PathLike, dst: PathLike, *, prefix: str = "fd00::") -> Report:
    """Rewrite IPv4 packets as IPv6: 127.0.0.1 → ::1, any other a.b.c.d → ``prefix`` +
    a.b.c.d in the low 32 bits (fd00::a.b.c.d by default).  TTL → hop limit, TOS → traffic
    class; TCP/UDP checksums recomputed; link headers announce IPv6.  Other packets are
    copied unchanged."""
    cap = read_capture(src)
    report = Report()
    outs: list[_Out] = []
    for pos, rec in enumerate(cap.records):
        p = _parse(rec)
        if p.version != 4 or not isinstance(p.ip, dpkt.ip.IP) or p.ip.offset or p.ip.mf:
            outs.append(_Out(rec, pos + 1))
            continue
        if p.truncated:
            raise ValueError(f"packet {pos + 1} is truncated; cannot recompute its checksum")
        ip4 = p.ip
        l4: bytes | dpkt.Packet = ip4.data
        if isinstance(l4, dpkt.Packet) and hasattr(l4, "sum") and ip4.p in (6, 17):
            l4.sum = 0
        ip6 = dpkt.ip6.IP6(
            src=_v4_to_v6(bytes(ip4.src), prefix),
            dst=_v4_to_v6(bytes(ip4.dst), prefix),
            nxt=ip4.p,
            hlim=ip4.ttl,
            data=l4,
        )
        ip6.fc = ip4.tos
        ip6.plen = len(bytes(l4))
        linktype, header = _set_link_ethertype(rec.linktype, p.header, ETH_IPV6)
        data = header + bytes(ip6)
        outs.append(_Out(Record(rec.ts_ns, data, linktype, len(data), rec.iface), pos + 1))
    interfaces = cap.interfaces
    if any(i.linktype == LINKTYPE_IPV4 for i in interfaces):
        interfaces = [
            dataclasses.replace(i, linktype=LINKTYPE_IPV6) if i.linktype == LINKTYPE_IPV4 else i
            for i in interfaces
        ]
    return _finish(cap, dst, outs, report, n_old=len(cap.records), interfaces=interfaces)


def to_link(
    src: PathLike, dst: PathLike, link: Link, *, vlan: int = 100, outer_vlan: int = 200
) -> Report:
    """Rewrite the link layer (ethernet, ethernet+vlan, ethernet+qinq, sll, sll2, null, loop,
    raw).  MAC addresses are synthesised per IP address (02:00:00:00:00:01, ...) and the SLL
    packet type says "outgoing" for client → server packets.  Ethernet padding is dropped.
    Packets the target cannot carry (non-IP on raw/null/loop) are removed (report.removed).
    The output has a single interface (pcapng inputs with several interfaces are merged)."""
    cap = read_capture(src)
    parsed, infos = _analyze(cap.records)
    macs: dict[bytes, bytes] = {}

    def mac_of(addr: bytes) -> bytes:
        return macs.setdefault(addr, b"\x02\x00" + (len(macs) + 1).to_bytes(4, "big"))

    report = Report()
    outs: list[_Out] = []
    linktype = LINKTYPES[link]
    for pos, (rec, p) in enumerate(zip(cap.records, parsed, strict=True)):
        if p.ethertype is None:
            continue
        l3 = p.l3
        if p.ip is not None and len(l3) > p.ip_len:
            l3 = l3[: p.ip_len]  # drop trailer (padding)
        info = infos[pos]
        if p.ip is not None:
            params = _LinkParams(
                src_mac=mac_of(bytes(p.ip.src)),
                dst_mac=mac_of(bytes(p.ip.dst)),
                outgoing=info is None or info.direction == "c2s",
                vlan=vlan,
                outer_vlan=outer_vlan,
            )
        else:
            params = _LinkParams(vlan=vlan, outer_vlan=outer_vlan)
        try:
            _, frame = _link_frame(link, p.ethertype, l3, params)
        except ValueError:
            continue
        dropped = len(p.l3) - len(l3)  # captured bytes removed (trailer)
        orig = rec.orig_len - len(p.header) - dropped + (len(frame) - len(l3))
        outs.append(_Out(Record(rec.ts_ns, frame, linktype, orig, 0), pos + 1))
    snap = cap.snaplen
    return _finish(
        cap,
        dst,
        outs,
        report,
        n_old=len(cap.records),
        interfaces=[Interface(linktype, snap)],
    )


def to_pcapng(
    src: PathLike, dst: PathLike, *, split_interfaces: bool = False, nanosecond: bool | None = None
) -> Report:
    """Write the capture as pcapng.  ``split_interfaces`` puts client → server packets on
    interface 0 ("c2s") and server → client ones on interface 1 ("s2c")."""
    cap = read_capture(src)
    nano = cap.nanosecond if nanosecond is None else nanosecond
    outs: list[_Out] = []
    if split_interfaces:
        linktypes = {r.linktype for r in cap.records} or {cap.linktype}
        if len(linktypes) != 1:
            raise ValueError("split_interfaces needs a capture with one link type")
        lt = linktypes.pop()
        interfaces = [Interface(lt, cap.snaplen, "c2s"), Interface(lt, cap.snaplen, "s2c")]
        _, infos = _analyze(cap.records)
        for pos, (rec, info) in enumerate(zip(cap.records, infos, strict=True)):
            iface = 1 if info is not None and info.direction == "s2c" else 0
            outs.append(_Out(dataclasses.replace(rec, iface=iface), pos + 1))
    else:
        interfaces = cap.interfaces
        outs = [_Out(rec, pos + 1) for pos, rec in enumerate(cap.records)]
    return _finish(
        cap,
        dst,
        outs,
        Report(),
        n_old=len(cap.records),
        fmt="pcapng",
        nanosecond=nano,
        interfaces=interfaces,
    )


def to_pcap(src: PathLike, dst: PathLike, *, nanosecond: bool | None = None) -> Report:
    """Write the capture as classic pcap (single link type required)."""
    cap = read_capture(src)
    nano = cap.nanosecond if nanosecond is None else nanosecond
    outs = [_Out(dataclasses.replace(rec, iface=0), pos + 1) for pos, rec in enumerate(cap.records)]
    return _finish(cap, dst, outs, Report(), n_old=len(cap.records), fmt="pcap", nanosecond=nano)


def to_gzip(src: PathLike, dst: PathLike) -> Report:
    """gzip-compress the capture file as is (tshark and libpcap-ng readers open .gz files)."""
    with open(src, "rb") as fh:
        raw = fh.read()
    if raw[:2] != b"\x1f\x8b":
        raw = gzip.compress(raw, mtime=0)
    with open(dst, "wb") as fh:
        fh.write(raw)
    n = len(read_capture(dst).records)
    return Report(mapping={i: [i] for i in range(1, n + 1)})
