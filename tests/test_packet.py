"""Link / IP / TCP header parsing."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._capture_writers import (
    epb,
    ether,
    idb,
    ip4,
    ip6,
    ipv4,
    ipv6,
    null,
    pcap_file,
    shb,
    sll,
    sll2,
    tcp,
)
from wsanalyze.sources.capture import NON_PACKET_LINKTYPE, open_capture
from wsanalyze.sources.records import RawPacket
from wsanalyze.tcp.packet import PacketParser
from wsanalyze.tcp.segment import ACK, FIN, PSH, RST, SYN, TcpSegment

A4, B4 = "192.0.2.10", "198.51.100.20"
A6, B6 = "2001:db8::1", "2001:db8:0:1::2"


def _pkt(data: bytes, linktype: int = 1, number: int = 1, orig_len: int | None = None) -> RawPacket:
    return RawPacket(number, 1.5, linktype, data, len(data) if orig_len is None else orig_len)


def _v4_segment(payload: bytes = b"GET / HTTP/1.1\r\n", flags: int = PSH | ACK) -> TcpSegment:
    return TcpSegment(ip4(A4), 51000, ip4(B4), 443, 0x11223344, 0xAABBCCDD, flags, payload)


def _v4(payload: bytes = b"GET / HTTP/1.1\r\n", flags: int = PSH | ACK, **kw: int) -> bytes:
    return ipv4(A4, B4, tcp(51000, 443, 0x11223344, 0xAABBCCDD, flags, payload), **kw)


def _v6_segment(payload: bytes = b"hello") -> TcpSegment:
    return TcpSegment(ip6(A6), 51000, ip6(B6), 80, 7, 9, ACK, payload)


def _v6(payload: bytes = b"hello", ext: list[tuple[int, bytes]] | None = None) -> bytes:
    return ipv6(A6, B6, tcp(51000, 80, 7, 9, ACK, payload), ext=ext or [])


# ---------------------------------------------------------------------------
# link types
# ---------------------------------------------------------------------------


def test_ethernet_ipv4_tcp_fields() -> None:
    parser = PacketParser()
    seg = parser.parse(_pkt(ether(_v4())))
    assert seg == _v4_segment()
    assert seg is not None
    assert seg.src == bytes([192, 0, 2, 10])
    assert (seg.sport, seg.dport, seg.seq, seg.ack) == (51000, 443, 0x11223344, 0xAABBCCDD)
    assert seg.flags == PSH | ACK
    assert parser.skipped == {}
    assert parser.notes() == []


@pytest.mark.parametrize("flags", [SYN, SYN | ACK, FIN | ACK, RST, RST | ACK, 0xC2])
def test_all_flag_bits_are_kept(flags: int) -> None:
    seg = PacketParser().parse(_pkt(ether(_v4(b"", flags))))
    assert seg is not None
    assert (seg.flags, seg.payload, seg.missing) == (flags, b"", 0)


def test_ethernet_padding_is_trimmed() -> None:
    frame = ether(_v4(b"hi"), pad_to=60)
    assert len(frame) == 60
    assert PacketParser().parse(_pkt(frame)) == _v4_segment(b"hi")


def test_ethernet_fcs_is_trimmed() -> None:
    frame = ether(_v4(b"data")) + b"\xde\xad\xbe\xef"
    assert PacketParser().parse(_pkt(frame)) == _v4_segment(b"data")


def test_ethernet_ipv6() -> None:
    assert PacketParser().parse(_pkt(ether(_v6(), 0x86DD))) == _v6_segment()


@pytest.mark.parametrize(
    "vlans",
    [
        [(0x8100, 100)],
        [(0x88A8, 10), (0x8100, 20)],
        [(0x9100, 10), (0x8100, 20)],
        [(0x88A8, 1), (0x88A8, 2), (0x8100, 3)],
    ],
)
def test_vlan_and_qinq_tags(vlans: list[tuple[int, int]]) -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(ether(_v4(), vlans=vlans), number=1)) == _v4_segment()
    assert parser.parse(_pkt(ether(_v6(), 0x86DD, vlans=vlans), number=2)) == _v6_segment()
    padded = ether(_v4(b""), vlans=vlans, pad_to=64)
    assert parser.parse(_pkt(padded, number=3)) == _v4_segment(b"")


def test_pppoe_session() -> None:
    pppoe = struct.pack("!BBHHH", 0x11, 0, 0x1234, len(_v4()) + 2, 0x0021)
    seg = PacketParser().parse(_pkt(ether(pppoe + _v4(), 0x8864)))
    assert seg == _v4_segment()


def test_linux_sll_and_sll2() -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(sll(_v4()), 113)) == _v4_segment()
    assert parser.parse(_pkt(sll(_v6(), 0x86DD), 113)) == _v6_segment()
    assert parser.parse(_pkt(sll2(_v4()), 276)) == _v4_segment()
    assert parser.parse(_pkt(sll2(_v6(), 0x86DD), 276)) == _v6_segment()
    tagged = sll(struct.pack("!HH", 5, 0x0800) + _v4(), 0x8100)
    assert parser.parse(_pkt(tagged, 113)) == _v4_segment()
    assert parser.skipped == {}


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip_chooses_version_by_nibble(linktype: int) -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(_v4(), linktype)) == _v4_segment()
    assert parser.parse(_pkt(_v6(), linktype)) == _v6_segment()
    assert parser.parse(_pkt(b"\x50" + bytes(39), linktype, number=3)) is None
    assert parser.skipped == {"not-ip": 1}
    assert parser.first_packet == {"not-ip": 3}


def test_ipv4_and_ipv6_linktypes() -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(_v4(), 228)) == _v4_segment()
    assert parser.parse(_pkt(_v6(), 229)) == _v6_segment()
    assert parser.parse(_pkt(_v6(), 228, number=3)) is None  # not IPv4 on an IPv4 link
    assert parser.skipped == {"malformed": 1}


@pytest.mark.parametrize("linktype", [0, 108])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_null_and_loop_families(linktype: int, byteorder: str) -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(null(_v4(), 2, byteorder), linktype)) == _v4_segment()
    for family in (24, 28, 30):
        assert parser.parse(_pkt(null(_v6(), family, byteorder), linktype)) == _v6_segment()
    assert parser.parse(_pkt(null(_v4(), 7, byteorder), linktype, number=9)) is None
    assert parser.skipped == {"not-ip": 1}
    assert parser.first_packet == {"not-ip": 9}


def test_unsupported_linktypes_are_counted_and_named() -> None:
    parser = PacketParser()
    for n, lt in enumerate([105, 147, 105], start=4):
        assert parser.parse(_pkt(_v4(), lt, number=n)) is None
    assert parser.skipped == {"unsupported-linktype": 3}
    assert parser.first_packet == {"unsupported-linktype": 4}
    assert parser.notes() == [
        "skipped 3 packets of unsupported link types (105 (IEEE 802.11), 147) "
        "(first: packet 4)"
    ]


def test_non_packet_records() -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(b"MESSAGE=x\n", NON_PACKET_LINKTYPE, number=2)) is None
    assert parser.skipped == {"not-a-packet": 1}
    assert parser.notes() == [
        "skipped 1 record that is not a network packet (a journal entry, custom or sysdig "
        "block) (first: packet 2)"
    ]


def test_not_ip_and_not_tcp() -> None:
    parser = PacketParser()
    arp = ether(bytes(28), 0x0806)
    udp = ether(ipv4(A4, B4, struct.pack("!HHHH", 53, 53, 12, 0) + b"abcd", proto=17))
    icmp6 = ether(ipv6(A6, B6, b"\x80\0\0\0\0\0\0\0", nh=58), 0x86DD)
    assert parser.parse(_pkt(arp, number=1)) is None
    assert parser.parse(_pkt(udp, number=2)) is None
    assert parser.parse(_pkt(icmp6, number=3)) is None
    assert parser.parse(_pkt(udp, number=4)) is None
    assert parser.skipped == {"not-ip": 1, "not-tcp": 3}
    assert parser.first_packet == {"not-ip": 1, "not-tcp": 2}
    assert parser.notes() == [
        "skipped 1 packet that is not IPv4 or IPv6 (first: packet 1)",
        "skipped 3 IP packets that are not TCP (first: packet 2)",
    ]


# ---------------------------------------------------------------------------
# IPv4
# ---------------------------------------------------------------------------


def test_ipv4_options_and_tcp_options() -> None:
    frame = ether(ipv4(A4, B4, tcp(51000, 443, 0x11223344, 0xAABBCCDD, PSH | ACK, b"xyz",
                                   opts=b"\x02\x04\x05\xb4\x01\x03\x03\x07"),
                       ip_opts=b"\x94\x04\0\0"))
    assert PacketParser().parse(_pkt(frame)) == _v4_segment(b"xyz")


def test_ipv4_fragments_are_skipped_and_counted() -> None:
    parser = PacketParser()
    first = ether(_v4(b"A" * 64, frag=0x2000))  # MF set, offset 0
    middle = ether(_v4(b"B" * 64, frag=0x2000 | 10))  # MF set, offset 80 bytes
    last = ether(_v4(b"C" * 64, frag=20))  # last fragment: offset only
    dont_fragment = ether(_v4(b"D", frag=0x4000))  # DF alone is not a fragment
    assert parser.parse(_pkt(ether(_v4()), number=16)) == _v4_segment()
    assert parser.parse(_pkt(first, number=17)) is None
    assert parser.parse(_pkt(middle, number=18)) is None
    assert parser.parse(_pkt(dont_fragment, number=19)) == _v4_segment(b"D")
    assert parser.parse(_pkt(last, number=20)) is None
    assert parser.skipped == {"ipv4-fragment": 3}
    assert parser.first_packet == {"ipv4-fragment": 17}
    assert parser.notes() == [
        "skipped 3 IPv4 fragments of TCP packets (first: packet 17); reassembly of IP "
        "fragments is not supported, so their TCP data is missing"
    ]


def test_ipv4_fragment_of_udp_counts_as_not_tcp() -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(ether(ipv4(A4, B4, bytes(40), proto=17, frag=0x2000)))) is None
    assert parser.skipped == {"not-tcp": 1}


def test_tso_zero_total_length_means_whole_frame() -> None:
    frame = ether(_v4(b"x" * 3000, total_length=0))
    assert PacketParser().parse(_pkt(frame)) == _v4_segment(b"x" * 3000)


@pytest.mark.parametrize(
    "bad",
    [
        _v4(total_length=19),  # shorter than its header
        _v4(total_length=30),  # no room for a TCP header
        b"\x44" + _v4()[1:],  # IHL 4
        _v4()[:20] + _v4()[20:32] + b"\x40" + _v4()[33:],  # TCP data offset 4
        _v4(b"", total_length=40)[:20] + _v4(b"")[20:32] + b"\xf0" + _v4(b"")[33:],  # > len
    ],
)
def test_malformed_ipv4(bad: bytes) -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(ether(bad), number=5)) is None
    assert parser.parse(_pkt(bad, 101, number=6)) is None
    assert parser.skipped == {"malformed": 2}
    assert parser.first_packet == {"malformed": 5}


# ---------------------------------------------------------------------------
# IPv6
# ---------------------------------------------------------------------------


def test_ipv6_hop_by_hop_and_destination_options() -> None:
    frame = ether(_v6(ext=[(0, b"\x05\x02\0\0\x01\0"), (60, b"\x01\x0c" + bytes(12))]), 0x86DD)
    assert PacketParser().parse(_pkt(frame)) == _v6_segment()


def test_ipv6_routing_and_authentication_headers() -> None:
    routing = b"\0\0\0\0\0\0" + bytes(16)  # type 0, one address (length 2 units)
    ah = struct.pack("!HII", 0, 0x100, 1) + bytes(12)  # SPI, sequence, 96-bit ICV
    frame = ether(_v6(ext=[(0, b""), (43, routing), (51, ah), (60, b"")]), 0x86DD)
    assert PacketParser().parse(_pkt(frame)) == _v6_segment()


def test_ipv6_fragments_are_skipped_and_counted() -> None:
    parser = PacketParser()
    frag_first = struct.pack("!HI", 0x0001, 99)  # offset 0, M=1
    frag_later = struct.pack("!HI", 0x00A0, 99)  # offset 20 units, M=0
    atomic = struct.pack("!HI", 0x0000, 99)  # neither: RFC 6946 atomic fragment
    assert parser.parse(_pkt(_v6(ext=[(44, frag_first)]), 229, number=3)) is None
    assert parser.parse(_pkt(_v6(ext=[(0, b""), (44, frag_later)]), 229, number=4)) is None
    assert parser.parse(_pkt(_v6(ext=[(44, atomic)]), 229, number=5)) == _v6_segment()
    udp_frag = ipv6(A6, B6, bytes(16), nh=17, ext=[(44, frag_first)])
    assert parser.parse(_pkt(udp_frag, 229, number=6)) is None
    assert parser.skipped == {"ipv6-fragment": 2, "not-tcp": 1}
    assert parser.first_packet == {"ipv6-fragment": 3, "not-tcp": 6}
    assert parser.notes()[0] == (
        "skipped 2 IPv6 fragments of TCP packets (first: packet 3); reassembly of IP "
        "fragments is not supported, so their TCP data is missing"
    )


@pytest.mark.parametrize("nh", [50, 59, 17])
def test_ipv6_esp_no_next_header_udp_are_not_tcp(nh: int) -> None:
    parser = PacketParser()
    assert parser.parse(_pkt(ipv6(A6, B6, bytes(24), nh=nh, ext=[(60, b"")]), 229)) is None
    assert parser.skipped == {"not-tcp": 1}


def test_ipv6_extension_header_running_past_the_payload_is_malformed() -> None:
    bad = ipv6(A6, B6, b"", nh=6, ext=[(60, bytes(6))])  # payload length 8: no TCP
    bad = bad[:41] + b"\x10" + bad[42:]  # dest options now claims 136 bytes
    parser = PacketParser()
    assert parser.parse(_pkt(bad, 229)) is None
    assert parser.skipped == {"malformed": 1}


def test_ipv6_padding_trimmed_by_payload_length() -> None:
    frame = ether(_v6(b"z"), 0x86DD) + b"\0" * 12
    assert PacketParser().parse(_pkt(frame)) == _v6_segment(b"z")


# ---------------------------------------------------------------------------
# snaplen truncation
# ---------------------------------------------------------------------------


def test_snaplen_cut_payload_reports_missing_bytes() -> None:
    payload = bytes(range(200))
    frame = ether(_v4(payload))
    cut = frame[:100]  # 14 + 20 + 20 header bytes, then 46 payload bytes
    seg = PacketParser().parse(_pkt(cut, orig_len=len(frame)))
    assert seg == TcpSegment(ip4(A4), 51000, ip4(B4), 443, 0x11223344, 0xAABBCCDD, PSH | ACK,
                             payload[:46], 154)


def test_snaplen_cut_ipv6_payload() -> None:
    frame = ether(_v6(b"0123456789"), 0x86DD)
    seg = PacketParser().parse(_pkt(frame[:-4], orig_len=len(frame)))
    assert seg is not None
    assert (seg.payload, seg.missing) == (b"012345", 4)


def test_snaplen_cut_inside_tcp_options_gives_empty_payload() -> None:
    frame = ether(ipv4(A4, B4, tcp(1, 2, 3, 4, ACK, b"p" * 50, opts=b"\x01" * 12)))
    seg = PacketParser().parse(_pkt(frame[:60], orig_len=len(frame)))
    assert seg == TcpSegment(ip4(A4), 1, ip4(B4), 2, 3, 4, ACK, b"", 50)


def test_snaplen_missing_uses_ip_length_not_orig_len() -> None:
    frame = ether(_v4(b"abc"), pad_to=64)  # 57 real bytes, 7 of padding
    seg = PacketParser().parse(_pkt(frame[:55], orig_len=64))
    assert seg is not None
    assert (seg.payload, seg.missing) == (b"a", 2)


def test_ip_length_beyond_an_uncut_frame_is_clamped() -> None:
    frame = ether(_v4(b"abc", total_length=500))
    seg = PacketParser().parse(_pkt(frame))  # orig_len == caplen: nothing was cut
    assert seg is not None
    assert (seg.payload, seg.missing) == (b"abc", 0)


@pytest.mark.parametrize("keep", [10, 14, 20, 40, 53])
def test_cut_headers_are_counted(keep: int) -> None:
    frame = ether(_v4())
    parser = PacketParser()
    assert parser.parse(_pkt(frame[:keep], orig_len=len(frame), number=8)) is None
    assert parser.skipped == {"truncated-header": 1}
    assert parser.first_packet == {"truncated-header": 8}
    assert parser.notes() == [
        "skipped 1 packet whose IP or TCP header was cut by the snapshot length "
        "(first: packet 8)"
    ]


@pytest.mark.parametrize("linktype", [0, 1, 12, 101, 108, 113, 228, 229, 276])
def test_empty_and_tiny_packets_never_raise(linktype: int) -> None:
    parser = PacketParser()
    for size in range(0, 60):
        assert parser.parse(_pkt(bytes(size), linktype)) is None


# ---------------------------------------------------------------------------
# properties and cross-checks
# ---------------------------------------------------------------------------


@given(
    data=st.binary(min_size=0, max_size=120),
    linktype=st.sampled_from([0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]),
)
@settings(max_examples=400, deadline=None)
def test_arbitrary_bytes_never_raise(data: bytes, linktype: int) -> None:
    parser = PacketParser()
    seg = parser.parse(_pkt(data, linktype))
    assert seg is not None or sum(parser.skipped.values()) == 1


@given(
    payload=st.binary(max_size=80),
    frag=st.sampled_from([0, 0x4000, 0x2000, 1]),
    proto=st.sampled_from([6, 6, 6, 17]),
    total_delta=st.integers(-30, 30),
    doff=st.integers(0, 15),
    cut=st.integers(0, 140),
    pad=st.integers(0, 20),
)
@settings(max_examples=400, deadline=None)
def test_ethernet_fast_path_matches_general_path(payload: bytes, frag: int, proto: int,
                                                 total_delta: int, doff: int, cut: int,
                                                 pad: int) -> None:
    """The single-struct Ethernet/IPv4 fast path must agree with the generic
    code that a VLAN tag forces."""
    seg = tcp(1234, 80, 5, 6, ACK, payload)
    seg = seg[:12] + bytes([doff << 4]) + seg[13:]
    ip = ipv4(A4, B4, seg, proto=proto, frag=frag, total_length=max(0, 40 + len(payload)
                                                                    + total_delta))
    plain = ether(ip) + bytes(pad)
    tagged = ether(ip, vlans=[(0x8100, 1)]) + bytes(pad)
    keep = min(cut, len(plain))
    fast, slow = PacketParser(), PacketParser()
    a = fast.parse(_pkt(plain[:keep], orig_len=len(plain)))
    b = slow.parse(_pkt(tagged[: keep + 4], orig_len=len(tagged)))
    assert a == b
    assert fast.skipped == slow.skipped


def test_scapy_built_packets() -> None:
    from scapy.layers.inet import IP, TCP  # scapy is slow to import: only here
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

    frames = [
        Ether() / Dot1AD(vlan=3) / Dot1Q(vlan=4) / IP(src=A4, dst=B4)
        / TCP(sport=1, dport=2, seq=3, ack=4, flags="PA", options=[("MSS", 1460)]) / b"scapy",
        Ether() / IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        / TCP(sport=1, dport=2, seq=3, ack=4, flags="PA") / b"scapy6",
    ]
    parser = PacketParser()
    segs = [parser.parse(_pkt(bytes(f))) for f in frames]
    assert segs[0] == TcpSegment(ip4(A4), 1, ip4(B4), 2, 3, 4, PSH | ACK, b"scapy")
    assert segs[1] == TcpSegment(ip6(A6), 1, ip6(B6), 2, 3, 4, PSH | ACK, b"scapy6")


def test_reader_and_parser_together(tmp_path: Path) -> None:
    frames = [ether(_v4(b"m%d" % i)) for i in range(5)]
    frames.insert(2, ether(bytes(28), 0x0806))
    path = tmp_path / "x.pcap"
    path.write_bytes(pcap_file([(1, i, f) for i, f in enumerate(frames)]))
    parser = PacketParser()
    with open_capture(path) as reader:
        segs = [parser.parse(p) for p in reader]
    assert [s.payload if s else None for s in segs] == [b"m0", b"m1", None, b"m2", b"m3", b"m4"]
    assert parser.first_packet == {"not-ip": 3}


def test_mixed_link_types_in_one_pcapng(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(shb() + idb(1) + idb(113) + idb(101) + idb(0)
                     + epb(0, 1, ether(_v4())) + epb(1, 2, sll(_v6(), 0x86DD))
                     + epb(2, 3, _v4()) + epb(3, 4, null(_v6(), 30)))
    parser = PacketParser()
    with open_capture(path) as reader:
        segs = [parser.parse(p) for p in reader]
    assert segs == [_v4_segment(), _v6_segment(), _v4_segment(), _v6_segment()]
