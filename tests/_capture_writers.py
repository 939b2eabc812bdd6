"""Tiny writers that craft capture files and packets byte by byte for the tests.

They are deliberately low level: every field can be set to a wrong value so the
tests can build truncated and corrupt files as well as valid ones.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence

# ---------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


def pcap_header(
    *,
    linktype: int = 1,
    byteorder: str = "<",
    nanosecond: bool = False,
    snaplen: int = 262144,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    """The 24-byte global header."""
    magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
    return struct.pack(byteorder + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)


def pcap_record(
    sec: int,
    frac: int,
    data: bytes,
    *,
    byteorder: str = "<",
    orig_len: int | None = None,
    caplen: int | None = None,
) -> bytes:
    """One record header plus its data; ``caplen`` may lie about ``len(data)``."""
    caplen = len(data) if caplen is None else caplen
    orig_len = len(data) if orig_len is None else orig_len
    return struct.pack(byteorder + "IIII", sec, frac, caplen, orig_len) + data


def pcap_file(
    records: Iterable[tuple[int, int, bytes]],
    *,
    linktype: int = 1,
    byteorder: str = "<",
    nanosecond: bool = False,
    snaplen: int = 262144,
) -> bytes:
    """A whole pcap file from ``(sec, frac, data)`` triples."""
    out = [pcap_header(linktype=linktype, byteorder=byteorder, nanosecond=nanosecond,
                       snaplen=snaplen)]
    out.extend(pcap_record(s, f, d, byteorder=byteorder) for s, f, d in records)
    return b"".join(out)


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------

SHB = 0x0A0D0D0A
IDB = 0x00000001
PB = 0x00000002
SPB = 0x00000003
NRB = 0x00000004
ISB = 0x00000005
EPB = 0x00000006
DSB = 0x0000000A
CB_COPY = 0x00000BAD


def _pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def option(code: int, value: bytes, byteorder: str = "<") -> bytes:
    """One option TLV, padded to 32 bits."""
    return struct.pack(byteorder + "HH", code, len(value)) + _pad4(value)


def options(opts: Sequence[tuple[int, bytes]], byteorder: str = "<") -> bytes:
    """An option list closed by opt_endofopt (empty when there are no options)."""
    if not opts:
        return b""
    return b"".join(option(c, v, byteorder) for c, v in opts) + struct.pack(
        byteorder + "HH", 0, 0
    )


def block(btype: int, body: bytes, byteorder: str = "<", *, length: int | None = None,
          trailer: int | None = None) -> bytes:
    """A generic block; ``length``/``trailer`` override the two length fields."""
    body = _pad4(body)
    total = 12 + len(body)
    head = struct.pack(byteorder + "II", btype, total if length is None else length)
    tail = struct.pack(byteorder + "I", total if trailer is None else trailer)
    return head + body + tail


def shb(byteorder: str = "<", *, version: tuple[int, int] = (1, 0),
        opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """Section Header Block with an unknown (-1) section length."""
    body = struct.pack(byteorder + "IHHq", 0x1A2B3C4D, *version, -1)
    return block(SHB, body + options(opts, byteorder), byteorder)


def idb(linktype: int, *, snaplen: int = 0, tsresol: int | None = None,
        tsoffset: int | None = None, byteorder: str = "<",
        extra_opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """Interface Description Block; ``tsresol`` is the raw if_tsresol byte."""
    opts: list[tuple[int, bytes]] = [(2, b"eth-test")]  # if_name, to exercise option walking
    opts.extend(extra_opts)
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(byteorder + "q", tsoffset)))
    body = struct.pack(byteorder + "HHI", linktype, 0, snaplen) + options(opts, byteorder)
    return block(IDB, body, byteorder)


def epb(iface: int, ts_units: int, data: bytes, *, orig_len: int | None = None,
        caplen: int | None = None, byteorder: str = "<",
        opts: Sequence[tuple[int, bytes]] = ()) -> bytes:
    """Enhanced Packet Block; ``ts_units`` counts the interface's if_tsresol units."""
    caplen = len(data) if caplen is None else caplen
    orig_len = len(data) if orig_len is None else orig_len
    body = struct.pack(byteorder + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF,
                       caplen, orig_len)
    return block(EPB, body + _pad4(data) + options(opts, byteorder), byteorder)


def spb(data: bytes, *, orig_len: int | None = None, byteorder: str = "<") -> bytes:
    """Simple Packet Block (interface 0, no timestamp)."""
    orig_len = len(data) if orig_len is None else orig_len
    return block(SPB, struct.pack(byteorder + "I", orig_len) + _pad4(data), byteorder)


def obsolete_pb(iface: int, ts_units: int, data: bytes, *, byteorder: str = "<") -> bytes:
    """The obsolete Packet Block (type 2), with a 16-bit interface id and drop count."""
    body = struct.pack(byteorder + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF,
                       len(data), len(data))
    return block(PB, body + _pad4(data), byteorder)


def isb(iface: int, ts_units: int, byteorder: str = "<") -> bytes:
    """Interface Statistics Block without options."""
    return block(ISB, struct.pack(byteorder + "III", iface, ts_units >> 32,
                                  ts_units & 0xFFFFFFFF), byteorder)


def nrb_ipv4(name: bytes, addr: bytes, byteorder: str = "<") -> bytes:
    """Name Resolution Block with one IPv4 record."""
    rec = struct.pack(byteorder + "HH", 1, 4 + len(name) + 1) + _pad4(addr + name + b"\0")
    return block(NRB, rec + struct.pack(byteorder + "HH", 0, 0), byteorder)


# ---------------------------------------------------------------------------
# packets
# ---------------------------------------------------------------------------


def ip4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def ip6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"",
        *, opts: bytes = b"", window: int = 65535) -> bytes:
    """A TCP header (checksum left 0) followed by ``payload``."""
    opts = opts + b"\x01" * (-len(opts) % 4)  # NOP-pad to a 32-bit boundary
    doff = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0,
                       0) + opts + payload


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, payload: bytes, *, proto: int = 6, frag: int = 0,
         ident: int = 1, ip_opts: bytes = b"", total_length: int | None = None,
         ttl: int = 64) -> bytes:
    """An IPv4 header (valid checksum) and payload; ``frag`` is the raw flags+offset field."""
    ip_opts = ip_opts + b"\0" * (-len(ip_opts) % 4)
    ihl = (20 + len(ip_opts)) // 4
    total = 4 * ihl + len(payload) if total_length is None else total_length
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, frag, ttl, proto, 0,
                      ip4(src), ip4(dst)) + ip_opts
    csum = _checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv6(src: str, dst: str, payload: bytes, *, nh: int = 6,
         ext: Sequence[tuple[int, bytes]] = (), payload_length: int | None = None) -> bytes:
    """An IPv6 header, extension headers and payload.

    ``ext`` lists ``(header type, header bytes without the first two octets)``; the
    next-header and length octets are filled in here (AH uses 4-octet units).
    """
    chain = b""
    types = [t for t, _ in ext] + [nh]
    for i, (htype, body) in enumerate(ext):
        nxt = types[i + 1]
        if htype == 51:  # AH: length in 4-octet units minus 2
            raw = body + b"\0" * (-(len(body) + 2) % 4)
            chain += bytes([nxt, (len(raw) + 2) // 4 - 2]) + raw
        else:
            raw = body + b"\0" * (-(len(body) + 2) % 8)
            chain += bytes([nxt, (len(raw) + 2) // 8 - 1]) + raw
    first = types[0]
    plen = len(chain) + len(payload) if payload_length is None else payload_length
    return struct.pack("!IHBB16s16s", 0x60000000, plen, first, 64, ip6(src),
                       ip6(dst)) + chain + payload


def ether(payload: bytes, ethertype: int = 0x0800,
          vlans: Sequence[tuple[int, int]] = (), *, pad_to: int = 0) -> bytes:
    """An Ethernet II frame; ``vlans`` is a list of ``(TPID, VLAN id)`` outermost first."""
    frame = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02"
    for tpid, vid in vlans:
        frame += struct.pack("!HH", tpid, vid)
    frame += struct.pack("!H", ethertype) + payload
    if len(frame) < pad_to:
        frame += b"\0" * (pad_to - len(frame))
    return frame


def sll(payload: bytes, protocol: int = 0x0800) -> bytes:
    """A Linux cooked (v1) header: packet type, ARPHRD, address length, address, protocol."""
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", protocol) + payload


def sll2(payload: bytes, protocol: int = 0x0800) -> bytes:
    """A Linux cooked v2 header: protocol, reserved, ifindex, ARPHRD, type, addr len, addr."""
    return struct.pack("!HHIHBB8s", protocol, 0, 3, 1, 0, 6,
                       b"\x02\0\0\0\0\x01\0\0") + payload


def null(payload: bytes, family: int, byteorder: str = "<") -> bytes:
    """A BSD loopback header: the address family as a 32-bit integer."""
    return struct.pack(byteorder + "I", family) + payload
