"""Link, IP and TCP header parsing: :class:`RawPacket` -> :class:`TcpSegment`.

Only what the reassembler needs is decoded: addresses (kept packed), ports,
sequence and acknowledgement numbers, flags, and the payload with the number of
payload bytes the snapshot length cut off.  Everything else is skipped and
counted by reason, so the pipeline can report it once at the end.

Link types (LINKTYPE_* values):

* ETHERNET (1): 14-byte header; 802.1Q (0x8100) and QinQ (0x88a8, 0x9100) tags
  of 4 bytes each may be stacked before the EtherType; PPPoE session frames
  (0x8864) carrying IPv4/IPv6 are unwrapped too.
* LINUX_SLL (113): 16-byte header, EtherType at offset 14; LINUX_SLL2 (276):
  20-byte header, EtherType at offset 0.
* RAW (101, and 12 / 14 which some systems write for raw IP): no header, the IP
  version nibble tells IPv4 from IPv6.  IPV4 (228) and IPV6 (229): no header.
* NULL (0) and LOOP (108): a 4-byte address family, in the capturing host's byte
  order for NULL and big-endian for LOOP; both orders are accepted for both.
  AF_INET is 2; AF_INET6 is 24, 28 or 30 depending on the BSD flavour.

The IP total length (IPv4) or payload length (IPv6) marks the end of the packet:
bytes after it are link padding or an FCS and are dropped; bytes it counts that
were not captured are reported as ``TcpSegment.missing``.  A length of 0, which
captures of TCP segmentation offload show, means "up to the end of the frame".
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from wsanalyze.sources.records import NON_PACKET_LINKTYPE, RawPacket
from wsanalyze.tcp.segment import TcpSegment

# Skip reasons, in the order notes() reports them.
IPV4_FRAGMENT: Final = "ipv4-fragment"
IPV6_FRAGMENT: Final = "ipv6-fragment"
TRUNCATED_HEADER: Final = "truncated-header"
MALFORMED: Final = "malformed"
UNSUPPORTED_LINKTYPE: Final = "unsupported-linktype"
NOT_A_PACKET: Final = "not-a-packet"
NOT_IP: Final = "not-ip"
NOT_TCP: Final = "not-tcp"

_ETH_IPV4: Final = 0x0800
_ETH_IPV6: Final = 0x86DD
_ETH_PPPOE_SESSION: Final = 0x8864
_VLAN_TPIDS: Final = frozenset({0x8100, 0x88A8, 0x9100})
_PPP_IPV4: Final = 0x0021
_PPP_IPV6: Final = 0x0057

_AF_INET: Final = 2
_AF_INET6: Final = frozenset({24, 28, 30})

_IPV6_EXT_8: Final = frozenset({0, 43, 60, 135, 139, 140})
"""IPv6 extension headers whose length octet counts 8-octet units beyond the
first 8: hop-by-hop, routing, destination options, mobility, HIP, shim6."""
_IPV6_AH: Final = 51
_IPV6_FRAGMENT: Final = 44
_IPV6_MAY_LEAD_TO_TCP: Final = _IPV6_EXT_8 | {6, _IPV6_AH}

_U16: Final = struct.Struct("!H")
# Ethernet + IPv4 without options + TCP, decoded in one call for the common case:
# ethertype, ver/ihl, total length, flags/fragment offset, protocol, src, dst,
# sport, dport, seq, ack, data offset byte, flags byte.
_ETH_V4_TCP: Final = struct.Struct("!12xHBxH2xHxB2x4s4sHHIIBB")
_unpack_eth_v4_tcp: Final = _ETH_V4_TCP.unpack_from
"""Bound once: compiled code calls it without looking the method up by name."""
_EthV4Tcp = tuple[int, int, int, int, int, bytes, bytes, Any, Any, Any, Any, int, int]
"""Its results, typed where the parser computes with them; the ports and sequence
numbers are only passed on, so they stay the int objects struct made (a C integer
would be boxed again into a new object for the segment)."""
_V4: Final = struct.Struct("!BxH2xHxB2x4s4s")  # ver/ihl, total, frag, proto, src, dst
_V6: Final = struct.Struct("!BxxxHB")  # version byte, payload length, next header
_TCP: Final = struct.Struct("!HHIIBB")  # sport, dport, seq, ack, data offset byte, flags

_LINKTYPE_NAMES: Final = {
    9: "PPP",
    50: "PPP in HDLC framing",
    104: "Cisco HDLC",
    105: "IEEE 802.11",
    127: "IEEE 802.11 radiotap",
    192: "PPI",
    197: "ERF",
    220: "USB Linux",
    249: "USBPcap",
}

_NOTES: Final[dict[str, tuple[str, str, str]]] = {
    IPV4_FRAGMENT: ("IPv4 fragment of a TCP packet", "IPv4 fragments of TCP packets",
                    "; reassembly of IP fragments is not supported, so their TCP data is "
                    "missing"),
    IPV6_FRAGMENT: ("IPv6 fragment of a TCP packet", "IPv6 fragments of TCP packets",
                    "; reassembly of IP fragments is not supported, so their TCP data is "
                    "missing"),
    TRUNCATED_HEADER: ("packet whose IP or TCP header was cut by the snapshot length",
                       "packets whose IP or TCP header was cut by the snapshot length", ""),
    MALFORMED: ("packet with an invalid IP or TCP header",
                "packets with an invalid IP or TCP header", ""),
    UNSUPPORTED_LINKTYPE: ("packet of an unsupported link type",
                           "packets of unsupported link types", ""),
    NOT_A_PACKET: ("record that is not a network packet (a journal entry, custom or sysdig "
                   "block)", "records that are not network packets (journal entries, custom "
                   "or sysdig blocks)", ""),
    NOT_IP: ("packet that is not IPv4 or IPv6", "packets that are not IPv4 or IPv6", ""),
    NOT_TCP: ("IP packet that is not TCP", "IP packets that are not TCP", ""),
}


class PacketParser:
    """Turns captured packets into TCP segments, counting what it skips.

    ``parse`` returns ``None`` for anything that is not a parseable TCP segment
    and counts it under one reason in :attr:`skipped` (first packet number in
    :attr:`first_packet`); :meth:`notes` phrases the counts for the user.
    """

    skipped: dict[str, int]
    """Skip reason -> number of packets skipped for it."""
    first_packet: dict[str, int]
    """Skip reason -> number of the first packet skipped for it."""

    def __init__(self) -> None:
        self.skipped = {}
        self.first_packet = {}
        self._bad_linktypes: dict[int, int] = {}
    # -- entry point -------------------------------------------------------

    def parse(self, pkt: RawPacket) -> TcpSegment | None:
        """The TCP segment in ``pkt``, or ``None`` (counted in :attr:`skipped`)."""
        linktype = pkt.linktype
        if linktype == 1:
            # Ethernet, nearly every capture: a direct call (compiled, a native one)
            # instead of a table lookup and a generic call.
            return self._ethernet(pkt)
        handler = _BY_LINKTYPE.get(linktype)
        if handler is None:
            return self._unsupported(pkt)
        return handler(self, pkt)

    def _skip(self, reason: str, pkt: RawPacket) -> TcpSegment | None:
        skipped = self.skipped
        if reason in skipped:
            skipped[reason] += 1
        else:
            skipped[reason] = 1
            self.first_packet[reason] = pkt.number
        return None

    def _unsupported(self, pkt: RawPacket) -> TcpSegment | None:
        if pkt.linktype == NON_PACKET_LINKTYPE:
            return self._skip(NOT_A_PACKET, pkt)
        bad = self._bad_linktypes
        bad[pkt.linktype] = bad.get(pkt.linktype, 0) + 1
        return self._skip(UNSUPPORTED_LINKTYPE, pkt)

    # -- link layers -------------------------------------------------------

    def _ethernet(self, pkt: RawPacket) -> TcpSegment | None:
        """Ethernet II: dst(6) src(6) EtherType(2), maybe VLAN tags first."""
        data = pkt.data
        n = len(data)
        if n >= 54:
            # Fast path: untagged IPv4 without options carrying an unfragmented
            # TCP segment, the bulk of most captures.
            # Typed (_EthV4Tcp): mypyc compares and shifts them as C integers, not
            # by a generic call per operation.
            fields: _EthV4Tcp = _unpack_eth_v4_tcp(data)
            (etype, vihl, total, frag, proto, src, dst, sport, dport, seq, ack, offb,
             flags) = fields
            if (etype == _ETH_IPV4 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF
                    and total >= 40 and offb >= 0x50):
                ip_end = 14 + total
                start = 34 + ((offb >> 4) << 2)
                if start <= ip_end:
                    if ip_end <= n:
                        return TcpSegment(src, sport, dst, dport, seq, ack, flags,
                                          data[start:ip_end])
                    return self._cut(pkt, data, start, ip_end, src, sport, dst, dport, seq,
                                     ack, flags)
        if n < 14:
            return self._skip(TRUNCATED_HEADER, pkt)
        return self._ethertype(pkt, data, (data[12] << 8) | data[13], 14)

    def _ethertype(self, pkt: RawPacket, data: bytes, etype: int,
                   off: int) -> TcpSegment | None:
        """Dispatch on an EtherType whose payload starts at ``off``.

        VLAN tags are TCI(2) + next EtherType(2); a PPPoE session header is
        ver/type(1) code(1) session(2) length(2) followed by a 2-byte PPP protocol.
        """
        while etype in _VLAN_TPIDS:
            if len(data) < off + 4:
                return self._skip(TRUNCATED_HEADER, pkt)
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if etype == _ETH_IPV4:
            return self._ipv4(pkt, data, off)
        if etype == _ETH_IPV6:
            return self._ipv6(pkt, data, off)
        if etype == _ETH_PPPOE_SESSION:
            if len(data) < off + 8:
                return self._skip(TRUNCATED_HEADER, pkt)
            proto = (data[off + 6] << 8) | data[off + 7]
            if proto == _PPP_IPV4:
                return self._ipv4(pkt, data, off + 8)
            if proto == _PPP_IPV6:
                return self._ipv6(pkt, data, off + 8)
        return self._skip(NOT_IP, pkt)

    def _sll(self, pkt: RawPacket) -> TcpSegment | None:
        """Linux cooked v1: type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)."""
        data = pkt.data
        if len(data) < 16:
            return self._skip(TRUNCATED_HEADER, pkt)
        return self._ethertype(pkt, data, (data[14] << 8) | data[15], 16)

    def _sll2(self, pkt: RawPacket) -> TcpSegment | None:
        """Linux cooked v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) type(1)
        addr len(1) addr(8)."""
        data = pkt.data
        if len(data) < 20:
            return self._skip(TRUNCATED_HEADER, pkt)
        return self._ethertype(pkt, data, (data[0] << 8) | data[1], 20)

    def _raw(self, pkt: RawPacket) -> TcpSegment | None:
        """Raw IP: the version nibble chooses IPv4 or IPv6."""
        data = pkt.data
        if not data:
            return self._skip(TRUNCATED_HEADER, pkt)
        version = data[0] >> 4
        if version == 4:
            return self._ipv4(pkt, data, 0)
        if version == 6:
            return self._ipv6(pkt, data, 0)
        return self._skip(NOT_IP, pkt)

    def _raw_ipv4(self, pkt: RawPacket) -> TcpSegment | None:
        return self._ipv4(pkt, pkt.data, 0)

    def _raw_ipv6(self, pkt: RawPacket) -> TcpSegment | None:
        return self._ipv6(pkt, pkt.data, 0)

    def _null(self, pkt: RawPacket) -> TcpSegment | None:
        """BSD loopback: a 32-bit address family in either byte order."""
        data = pkt.data
        if len(data) < 4:
            return self._skip(TRUNCATED_HEADER, pkt)
        b0, b1, b2, b3 = data[0], data[1], data[2], data[3]
        # The family is small: one end byte holds it, the other three are zero.
        family = b0 | b3 if not (b1 or b2) and not (b0 and b3) else -1
        if family == _AF_INET:
            return self._ipv4(pkt, data, 4)
        if family in _AF_INET6:
            return self._ipv6(pkt, data, 4)
        return self._skip(NOT_IP, pkt)

    # -- IP ------------------------------------------------------------------

    def _ipv4(self, pkt: RawPacket, data: bytes, off: int) -> TcpSegment | None:
        """IPv4: IHL (header length in 32-bit words) >= 5, total length covers the
        header; a set MF flag or a nonzero fragment offset marks a fragment."""
        n = len(data)
        if n < off + 20:
            return self._skip(TRUNCATED_HEADER, pkt)
        vihl, total, frag, proto, src, dst = _V4.unpack_from(data, off)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20:
            return self._skip(MALFORMED, pkt)
        if proto != 6:
            return self._skip(NOT_TCP, pkt)
        if frag & 0x3FFF:
            return self._skip(IPV4_FRAGMENT, pkt)
        if total == 0:  # TSO: the length field was left for the NIC to fill in
            ip_end = max(n, pkt.orig_len)
        elif total < ihl:
            return self._skip(MALFORMED, pkt)
        else:
            ip_end = off + total
        return self._tcp(pkt, data, off + ihl, ip_end, src, dst)

    def _ipv6(self, pkt: RawPacket, data: bytes, off: int) -> TcpSegment | None:
        """IPv6: 40-byte header, then a chain of extension headers up to TCP.

        Hop-by-hop, routing, destination options (and mobility, HIP, shim6) give
        their length in 8-octet units not counting the first 8; AH gives it in
        4-octet units not counting the first 2; the fragment header is 8 octets.
        A fragment (offset or M flag set) is skipped; an atomic fragment (both
        clear, RFC 6946) is read through.
        """
        n = len(data)
        if n < off + 40:
            return self._skip(TRUNCATED_HEADER, pkt)
        vbyte, plen, nh = _V6.unpack_from(data, off)
        if vbyte >> 4 != 6:
            return self._skip(MALFORMED, pkt)
        p = off + 40
        # Payload length 0: a jumbogram or a TSO capture; the frame's end is the end.
        ip_end = p + plen if plen else max(n, pkt.orig_len)
        while nh != 6:
            if nh in _IPV6_EXT_8 or nh == _IPV6_AH:
                if n < p + 2:
                    return self._skip(TRUNCATED_HEADER, pkt)
                hlen = data[p + 1]
                size = (hlen + 2) << 2 if nh == _IPV6_AH else (hlen + 1) << 3
                nh = data[p]
            elif nh == _IPV6_FRAGMENT:
                if n < p + 8:
                    return self._skip(TRUNCATED_HEADER, pkt)
                fnh = data[p]
                if _U16.unpack_from(data, p + 2)[0] & 0xFFF9:  # offset or M flag
                    if fnh in _IPV6_MAY_LEAD_TO_TCP:
                        return self._skip(IPV6_FRAGMENT, pkt)
                    return self._skip(NOT_TCP, pkt)
                nh = fnh
                size = 8
            else:
                return self._skip(NOT_TCP, pkt)
            p += size
            if p > ip_end:
                return self._skip(MALFORMED, pkt)
        return self._tcp(pkt, data, p, ip_end, data[off + 8 : off + 24],
                         data[off + 24 : off + 40])

    # -- TCP -----------------------------------------------------------------

    def _tcp(self, pkt: RawPacket, data: bytes, t: int, ip_end: int, src: bytes,
             dst: bytes) -> TcpSegment | None:
        """TCP at ``t``; the IP layer says the segment ends at ``ip_end``.

        Data offset (header length in 32-bit words) >= 5.  The fixed 20 bytes must
        be captured; options cut by the snapshot length are not needed, the whole
        payload then counts as missing.
        """
        if ip_end < t + 20:
            return self._skip(MALFORMED, pkt)
        n = len(data)
        if n < t + 20:
            return self._skip(TRUNCATED_HEADER, pkt)
        sport, dport, seq, ack, offb, flags = _TCP.unpack_from(data, t)
        start = t + ((offb >> 4) << 2)
        if offb < 0x50 or start > ip_end:
            return self._skip(MALFORMED, pkt)
        if ip_end <= n:
            return TcpSegment(src, sport, dst, dport, seq, ack, flags, data[start:ip_end])
        return self._cut(pkt, data, start, ip_end, src, sport, dst, dport, seq, ack, flags)

    @staticmethod
    def _cut(pkt: RawPacket, data: bytes, start: int, ip_end: int, src: bytes, sport: int,
             dst: bytes, dport: int, seq: int, ack: int, flags: int) -> TcpSegment:
        """A segment whose IP length runs past the captured bytes.

        The IP length is trusted up to the packet's length on the wire: when the
        packet was not cut (orig_len == caplen) a longer IP length is bogus and
        nothing is missing.
        """
        n = len(data)
        wire = pkt.orig_len if pkt.orig_len > n else n
        if ip_end > wire:
            ip_end = wire
        if start >= n:
            return TcpSegment(src, sport, dst, dport, seq, ack, flags, b"",
                              max(ip_end - start, 0))
        return TcpSegment(src, sport, dst, dport, seq, ack, flags, data[start:n], ip_end - n)

    # -- reporting -----------------------------------------------------------

    def notes(self) -> list[str]:
        """One sentence per skip reason, most consequential first."""
        out = []
        for reason, (one, many, tail) in _NOTES.items():
            count = self.skipped.get(reason)
            if not count:
                continue
            what = f"{count} {one if count == 1 else many}"
            if reason == UNSUPPORTED_LINKTYPE:
                types = ", ".join(
                    f"{lt} ({_LINKTYPE_NAMES[lt]})" if lt in _LINKTYPE_NAMES else str(lt)
                    for lt in sorted(self._bad_linktypes)
                )
                what += f" ({types})"
            out.append(f"skipped {what} (first: packet {self.first_packet[reason]}){tail}")
        return out


# Unbound methods, so that a parser holds no reference to itself (no cycle to
# wait for the garbage collector).
_BY_LINKTYPE: Final[dict[int, Callable[[PacketParser, RawPacket], TcpSegment | None]]] = {
    1: PacketParser._ethernet,
    113: PacketParser._sll,
    276: PacketParser._sll2,
    101: PacketParser._raw,
    12: PacketParser._raw,
    14: PacketParser._raw,
    228: PacketParser._raw_ipv4,
    229: PacketParser._raw_ipv6,
    0: PacketParser._null,
    108: PacketParser._null,
}
