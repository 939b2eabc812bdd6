"""Tests for the passive TCP reassembler (wsanalyze.tcp.reassembly)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from wsanalyze.tcp.direction import RECENT_CHUNKS
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    StreamData,
    StreamGap,
    TcpEvent,
    TcpNote,
)
from wsanalyze.tcp.reassembly import ACK_GRACE, CLOSED_TTL, TcpReassembler
from wsanalyze.tcp.segment import ACK, FIN, PSH, RST, SYN, TcpSegment

CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])
CPORT = 40000
SPORT = 80
MOD = 1 << 32


class Wire:
    """Builds segments of one client/server pair with absolute seq numbers.

    ``c(rel, ...)`` / ``s(rel, ...)`` take the sequence number *relative to the
    sender's ISN+1* (i.e. the stream offset when the SYN was seen), so tests read
    like stream offsets while the segments carry real 32-bit numbers.
    """

    def __init__(
        self,
        isn_c: int = 1000,
        isn_s: int = 7000,
        client: bytes = CLIENT,
        server: bytes = SERVER,
        cport: int = CPORT,
        sport: int = SPORT,
    ) -> None:
        self.isn_c = isn_c
        self.isn_s = isn_s
        self.client = client
        self.server = server
        self.cport = cport
        self.sport = sport

    def cseq(self, rel: int) -> int:
        return (self.isn_c + 1 + rel) % MOD

    def sseq(self, rel: int) -> int:
        return (self.isn_s + 1 + rel) % MOD

    def c(
        self, rel: int, payload: bytes = b"", flags: int = ACK, ack: int = 0, missing: int = 0
    ) -> TcpSegment:
        """Client → server; ``ack`` is relative to the server's ISN+1."""
        return TcpSegment(
            self.client,
            self.cport,
            self.server,
            self.sport,
            self.cseq(rel),
            self.sseq(ack),
            flags,
            payload,
            missing,
        )

    def s(
        self, rel: int, payload: bytes = b"", flags: int = ACK, ack: int = 0, missing: int = 0
    ) -> TcpSegment:
        """Server → client; ``ack`` is relative to the client's ISN+1."""
        return TcpSegment(
            self.server,
            self.sport,
            self.client,
            self.cport,
            self.sseq(rel),
            self.cseq(ack),
            flags,
            payload,
            missing,
        )

    def handshake(self) -> list[TcpSegment]:
        syn = TcpSegment(self.client, self.cport, self.server, self.sport, self.isn_c, 0, SYN, b"")
        synack = TcpSegment(
            self.server,
            self.sport,
            self.client,
            self.cport,
            self.isn_s,
            self.cseq(0),
            SYN | ACK,
            b"",
        )
        return [syn, synack, self.c(0)]


class Run:
    """Feeds segments as packets 1, 2, … (ts = packet number) and records events."""

    def __init__(self, r: TcpReassembler | None = None) -> None:
        self.r = r or TcpReassembler()
        self.packet = 0
        self.shift = 0.0  # extra capture time added by feed(..., later=...)
        self.events: list[TcpEvent] = []

    def feed(self, *segs: TcpSegment, later: float = 0.0) -> list[TcpEvent]:
        """Packet N gets ts N seconds (plus ``later``, carried forward)."""
        self.shift += later
        got: list[TcpEvent] = []
        for seg in segs:
            self.packet += 1
            got.extend(self.r.feed(self.packet, self.packet + self.shift, seg))
        self.events.extend(got)
        return got

    def finish(self) -> list[TcpEvent]:
        got = self.r.finish()
        self.events.extend(got)
        return got


def of(events: Iterable[TcpEvent], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def data(events: Iterable[TcpEvent], direction: int, conn: int = 0) -> list[StreamData]:
    return [
        e
        for e in events
        if isinstance(e, StreamData) and e.direction == direction and e.conn == conn
    ]


def joined(events: Iterable[TcpEvent], direction: int, conn: int = 0) -> bytes:
    return b"".join(e.data for e in data(events, direction, conn))


def assert_contiguous(events: Iterable[TcpEvent], direction: int, conn: int = 0) -> None:
    """Data and gap events of one direction tile the stream from offset 0."""
    pos = 0
    for e in events:
        if isinstance(e, (StreamData, StreamGap)) and e.direction == direction:
            if e.conn != conn:
                continue
            assert e.offset == pos, (e, pos)
            pos += len(e.data) if isinstance(e, StreamData) else e.length


# --------------------------------------------------------------------------- basics


def test_in_order_handshake_and_data() -> None:
    w = Wire()
    run = Run()
    ev = run.feed(*w.handshake())
    assert ev == [ConnectionStarted(0, 1.0, 1, ("10.0.0.1", CPORT), ("10.0.0.2", SPORT), True)]
    run.feed(w.c(0, b"GET / HTTP/1.1\r\n", ACK | PSH), w.c(16, b"Host: x\r\n\r\n"))
    run.feed(w.s(0, b"HTTP/1.1 101\r\n\r\n", ack=27))
    d0 = data(run.events, 0)
    assert [(e.packet, e.offset, e.data) for e in d0] == [
        (4, 0, b"GET / HTTP/1.1\r\n"),
        (5, 16, b"Host: x\r\n\r\n"),
    ]
    assert d0[0].ts == 4.0
    d1 = data(run.events, 1)
    assert [(e.packet, e.offset, e.data) for e in d1] == [(6, 0, b"HTTP/1.1 101\r\n\r\n")]
    assert of(run.events, TcpNote) == [] and of(run.events, StreamGap) == []
    assert run.finish() == [ConnectionEnded(0, 6.0, 6, "capture-ended", 2.0)]


def test_reordered_segments_keep_their_packet_numbers() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())  # packets 1-3
    assert data(run.feed(w.c(0, b"aaaa")), 0)[0].packet == 4
    assert run.feed(w.c(8, b"cccc")) == []  # packet 5: buffered behind the hole
    flushed = run.feed(w.c(4, b"bbbb"))  # packet 6 fills it
    assert [(e.packet, e.offset, e.data) for e in flushed] == [
        (6, 4, b"bbbb"),
        (5, 8, b"cccc"),
    ]
    assert flushed[1].ts == 5.0
    assert joined(run.events, 0) == b"aaaabbbbcccc"


def test_duplicates_are_dropped_silently() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"hello"), w.c(0, b"hello"), w.c(10, b"z"), w.c(10, b"z"), w.c(5, b"world"))
    assert joined(run.events, 0) == b"helloworldz"
    assert of(run.events, TcpNote) == []
    assert_contiguous(run.events, 0)


def test_overlapping_retransmission_same_bytes_delivers_only_new_bytes() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"0123456789"))
    ev = run.feed(w.c(5, b"56789ABCDE"))  # packet 5 overlaps 5 delivered bytes
    assert ev == [StreamData(0, 0, 5.0, 5, 10, b"ABCDE")]
    assert of(run.events, TcpNote) == []


def _ten_chunks() -> tuple[Wire, Run]:
    """A connection whose client sent 10 two-byte chunks: chunk k is packet 4 + k,
    at stream offsets 2k and 2k + 1."""
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    for k in range(10):
        run.feed(w.c(2 * k, b"%02d" % k))
    return w, run


def test_retransmissions_are_compared_with_the_last_chunks_oldest_first() -> None:
    assert RECENT_CHUNKS == 8
    # Chunk 0 (packet 4) is no longer remembered: a differing copy goes unnoticed.
    w, run = _ten_chunks()
    assert of(run.feed(w.c(0, b"XX")), TcpNote) == []
    # Bytes 14-19 span chunks 7, 8 and 9 (packets 11-13), which the ring of the
    # last 8 holds across its wrap-around: the oldest differing copy is named.
    w, run = _ten_chunks()
    notes = of(run.feed(w.c(14, b"XXXXXX")), TcpNote)
    assert [(n.packet, n.rule) for n in notes] == [(14, "capture.overlap-conflict")]
    assert notes[0].message.startswith(
        "bytes 14-15 of packet 14 differ from the copy first captured in packet 11;")
    assert joined(run.events, 0) == b"".join(b"%02d" % k for k in range(10))


def test_conflicting_overlap_first_copy_wins_and_one_note() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"0123456789"))  # packet 4
    ev = run.feed(w.c(5, b"5XX89ABCDE"))  # packet 5: bytes 6-7 differ
    notes = of(ev, TcpNote)
    assert len(notes) == 1
    assert notes[0].rule == "capture.overlap-conflict"
    assert (notes[0].conn, notes[0].direction, notes[0].packet) == (0, 0, 5)
    assert "packet 5" in notes[0].message and "packet 4" in notes[0].message
    assert data(ev, 0) == [StreamData(0, 0, 5.0, 5, 10, b"ABCDE")]
    # A second conflict, this time against buffered out-of-order data: counted,
    # not reported again.
    run.feed(w.c(20, b"klmno"))  # packet 6, buffered
    ev = run.feed(w.c(15, b"fghijKLMNOpq"))  # packet 7: overlaps 20-24 with other bytes
    assert of(ev, TcpNote) == []
    assert joined(run.events, 0) == b"0123456789ABCDEfghijklmnopq"
    assert_contiguous(run.events, 0)
    end = run.finish()
    summary = of(end, TcpNote)
    assert len(summary) == 1 and summary[0].rule == "capture.overlap-conflict"
    assert "2 conflicting overlaps" in summary[0].message
    assert isinstance(end[-1], ConnectionEnded)


def test_tiny_segments_out_of_order() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    stream = b"abcdefghijklmnopqrstuvwxyz0123"
    cuts = [0, 1, 3, 6, 10, 15, 21, 28, 30]  # segment sizes 1..7 and 2
    segs = [w.c(a, stream[a:b]) for a, b in pairwise(cuts)]
    order = [3, 0, 7, 1, 5, 2, 6, 4]
    run.feed(*(segs[i] for i in order))
    assert joined(run.events, 0) == stream
    assert_contiguous(run.events, 0)
    # Each byte keeps the packet that carried it.
    by_packet = {e.packet: e.data for e in data(run.events, 0)}
    for pos, i in enumerate(order):
        assert by_packet[4 + pos] == segs[i].payload


# --------------------------------------------------------------------------- holes


def test_acked_hole_waits_for_late_segments() -> None:
    """A segment that shows up late in the capture (capture-side reordering) is
    not declared lost just because the peer's ACK passed it; a hole still open
    ACK_GRACE packets after that ACK is."""
    w = Wire()
    run = Run()
    run.feed(*w.handshake())  # 1-3
    run.feed(w.c(0, b"a" * 100))  # 4
    run.feed(w.c(200, b"c" * 100))  # 5: [100, 200) not seen yet
    run.feed(w.s(0, ack=300))  # 6: the server has everything
    run.feed(w.c(100, b"b" * 100))  # 7: the missing segment, late in the capture
    assert of(run.events, StreamGap) == []
    assert joined(run.events, 0) == b"a" * 100 + b"b" * 100 + b"c" * 100
    # A hole that stays open is declared lost once the grace has passed.
    run.feed(w.c(400, b"e" * 10))  # 8: [300, 400) missing
    run.feed(w.s(0, ack=410))  # 9
    for _ in range(ACK_GRACE - 1):
        run.feed(w.s(0, ack=410))
    assert of(run.events, StreamGap) == []
    run.feed(w.s(0, ack=410))
    assert of(run.events, StreamGap) == [StreamGap(0, 0, 8.0, 8, 300, 100, "lost")]


def test_lost_segment_detected_by_peer_ack() -> None:
    w = Wire()
    run = Run(TcpReassembler(ack_grace=0))
    run.feed(*w.handshake())  # 1-3
    run.feed(w.c(0, b"a" * 100))  # 4
    # [100, 200) never captured
    assert run.feed(w.c(200, b"c" * 100)) == []  # 5: buffered
    ev = run.feed(w.s(0, ack=300))  # 6: server acknowledges everything
    assert ev == [
        StreamGap(0, 0, 5.0, 5, 100, 100, "lost"),
        StreamData(0, 0, 5.0, 5, 200, b"c" * 100),
    ]
    ev = run.feed(w.c(300, b"d" * 10))  # 7: back on the fast path
    assert data(ev, 0) == [StreamData(0, 0, 7.0, 7, 300, b"d" * 10)]
    assert_contiguous(run.events, 0)


def test_partial_ack_gives_up_only_acknowledged_bytes() -> None:
    w = Wire()
    run = Run(TcpReassembler(ack_grace=0))
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 100), w.c(200, b"c" * 100))  # 4, 5
    ev = run.feed(w.s(0, ack=150))  # 6: receiver has up to 150 only
    assert ev == [StreamGap(0, 0, 5.0, 5, 100, 50, "lost")]
    ev = run.feed(w.c(100, b"b" * 100))  # 7: retransmission fills the rest
    assert ev == [
        StreamData(0, 0, 7.0, 7, 150, b"b" * 50),
        StreamData(0, 0, 5.0, 5, 200, b"c" * 100),
    ]


def test_ack_seen_before_the_data_after_the_hole() -> None:
    w = Wire()
    run = Run(TcpReassembler(ack_grace=0))
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.s(0, ack=30)) == []  # 5: acks unseen bytes; nothing to flush yet
    ev = run.feed(w.c(20, b"c" * 10))  # 6
    assert ev == [
        StreamGap(0, 0, 6.0, 6, 10, 10, "lost"),
        StreamData(0, 0, 6.0, 6, 20, b"c" * 10),
    ]


def test_lost_segment_without_ack_given_up_when_both_fins_are_in() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    run.feed(w.c(20, b"c" * 10))  # 5 buffered
    # 6: FIN with a hole before it; the hole may still come (capture reordering)
    assert run.feed(w.c(30, b"e" * 5, ACK | FIN)) == []
    ev = run.feed(w.s(0, flags=ACK | FIN, ack=36))  # 7: both FINs, the hole never came
    assert ev == [
        StreamGap(0, 0, 5.0, 5, 10, 10, "lost"),
        StreamData(0, 0, 5.0, 5, 20, b"c" * 10),
        StreamData(0, 0, 6.0, 6, 30, b"e" * 5),
        ConnectionEnded(0, 7.0, 7, "tcp-fin", 2.0),
    ]


def test_segment_captured_after_the_fin_still_counts() -> None:
    """The capture holds a FIN segment ahead of the data before it (several capture
    queues): the data is delivered, nothing is lost."""
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.c(20, b"c" * 5, ACK | FIN)) == []  # 5: FIN ahead of 10..20
    assert run.feed(w.c(10, b"b" * 10)) == [  # 6: the late segment
        StreamData(0, 0, 6.0, 6, 10, b"b" * 10), StreamData(0, 0, 5.0, 5, 20, b"c" * 5)]
    assert run.feed(w.s(0, flags=ACK | FIN, ack=26)) == [  # 7
        ConnectionEnded(0, 7.0, 7, "tcp-fin", 2.0)]


def test_bytes_before_a_bare_fin_never_captured_are_a_gap_at_the_fin() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.c(20, flags=ACK | FIN)) == []  # 5: FIN; 10..20 not captured
    assert run.feed(w.s(0, flags=ACK | FIN, ack=21)) == [  # 6
        StreamGap(0, 0, 5.0, 5, 10, 10, "lost"), ConnectionEnded(0, 6.0, 6, "tcp-fin", 2.0)]


def test_lost_segment_without_ack_given_up_at_finish() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10), w.c(20, b"c" * 10), w.s(0, b"x", ack=10))  # 4, 5, 6
    ev = run.finish()
    assert ev == [
        StreamGap(0, 0, 5.0, 5, 10, 10, "lost"),
        StreamData(0, 0, 5.0, 5, 20, b"c" * 10),
        ConnectionEnded(0, 6.0, 6, "capture-ended", 2.0),
    ]


def test_acknowledged_tail_never_captured_is_a_gap_at_finish() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10), w.s(0, ack=25))  # 4, 5
    assert run.finish() == [
        StreamGap(0, 0, 5.0, 5, 10, 15, "lost"),
        ConnectionEnded(0, 5.0, 5, "capture-ended", 2.0),
    ]


def test_buffer_limit_skips_to_earliest_buffered_segment() -> None:
    w = Wire()
    run = Run(TcpReassembler(max_buffered=150))
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.c(50, b"c" * 100)) == []  # 5: 100 bytes buffered
    ev = run.feed(w.c(150, b"d" * 100))  # 6: 200 > 150
    gaps = of(ev, StreamGap)
    assert gaps == [StreamGap(0, 0, 5.0, 5, 10, 40, "limit")]
    notes = of(ev, TcpNote)
    assert len(notes) == 1
    assert (notes[0].rule, notes[0].direction, notes[0].packet) == ("capture.limit", 0, 6)
    assert [(e.packet, e.offset) for e in data(ev, 0)] == [(5, 50), (6, 150)]
    assert_contiguous(run.events, 0)


def test_buffer_limit_boundary_exactly_full_is_kept() -> None:
    """max_buffered bytes held behind a hole are within the limit; one more is not."""
    w = Wire()
    run = Run(TcpReassembler(max_buffered=100))
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.c(20, b"c" * 60)) == []  # 5: 60 buffered
    assert run.feed(w.c(80, b"d" * 40)) == []  # 6: 100 buffered, exactly the limit
    ev = run.feed(w.c(120, b"e"))  # 7: 101 > 100
    assert of(ev, StreamGap) == [StreamGap(0, 0, 5.0, 5, 10, 10, "limit")]
    assert [(e.packet, e.offset) for e in data(ev, 0)] == [(5, 20), (6, 80), (7, 120)]


def test_bytes_beyond_the_fin_are_dropped() -> None:
    """Nothing follows a FIN (RFC 9293 §3.6): a segment captured after the FIN that
    runs past it gives only the bytes before the FIN, and one wholly before it adds
    nothing of its own."""
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"a" * 10))  # 4
    assert run.feed(w.c(20, flags=ACK | FIN)) == []  # 5: FIN at offset 20, 10..20 missing
    assert run.feed(w.c(10, b"b" * 5)) == [StreamData(0, 0, 6.0, 6, 10, b"b" * 5)]  # 6
    assert run.feed(w.c(15, b"c" * 15)) == [StreamData(0, 0, 7.0, 7, 15, b"c" * 5)]  # 7
    assert run.feed(w.s(0, flags=ACK | FIN, ack=21)) == [  # 8
        ConnectionEnded(0, 8.0, 8, "tcp-fin", 2.0)]
    assert joined(run.events, 0) == b"a" * 10 + b"b" * 5 + b"c" * 5


def test_snaplen_truncated_segment_in_order() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    ev = run.feed(w.c(0, b"x" * 60, missing=40))  # 4
    assert ev == [
        StreamData(0, 0, 4.0, 4, 0, b"x" * 60),
        StreamGap(0, 0, 4.0, 4, 60, 40, "truncated"),
    ]
    ev = run.feed(w.c(100, b"y" * 5))  # 5: continues after the cut bytes
    assert ev == [StreamData(0, 0, 5.0, 5, 100, b"y" * 5)]
    # A full retransmission later does not revise the final gap.
    assert run.feed(w.c(0, b"x" * 100)) == []


def test_snaplen_truncated_segment_out_of_order() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    assert run.feed(w.c(10, b"b" * 6, missing=4)) == []  # 4 buffered
    ev = run.feed(w.c(0, b"a" * 10))  # 5
    assert ev == [
        StreamData(0, 0, 5.0, 5, 0, b"a" * 10),
        StreamData(0, 0, 4.0, 4, 10, b"b" * 6),
        StreamGap(0, 0, 4.0, 4, 16, 4, "truncated"),
    ]


def test_keepalive_and_zero_window_probes() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"abcdef"))
    # Keep-alive: seq = next-1 with one garbage byte (and the empty variant).
    assert run.feed(w.c(5, b"\x00"), w.c(5, b"")) == []
    # Zero-window probe: the next byte alone, then the same byte again in full.
    run.feed(w.c(6, b"g"), w.c(6, b"ghij"))
    assert joined(run.events, 0) == b"abcdefghij"
    assert of(run.events, StreamGap) == [] and of(run.events, TcpNote) == []


# --------------------------------------------------------------------------- seq space


def test_wraparound_in_the_middle_of_data() -> None:
    w = Wire(isn_c=MOD - 6, isn_s=MOD - 1)  # client seq wraps after 5 data bytes
    run = Run(TcpReassembler(ack_grace=0))
    run.feed(*w.handshake())
    assert w.cseq(0) == MOD - 5 and w.cseq(10) == 5
    run.feed(w.c(0, b"01234"), w.c(10, b"ABCDE"), w.c(5, b"56789"))  # 6 is out of order
    run.feed(w.s(0, b"reply", ack=15), w.c(15, b"tail"))
    assert joined(run.events, 0) == b"0123456789ABCDEtail"
    assert joined(run.events, 1) == b"reply"
    assert [e.offset for e in data(run.events, 0)] == [0, 5, 10, 15]
    # And a hole across the wrap found by an ACK that itself wrapped.
    w2 = Wire(isn_c=MOD - 3, cport=40001)
    run2 = Run(TcpReassembler(ack_grace=0))
    run2.feed(*w2.handshake())
    run2.feed(w2.c(0, b"ab"), w2.c(10, b"kl"), w2.s(0, ack=12))
    assert of(run2.events, StreamGap) == [StreamGap(0, 0, 5.0, 5, 2, 8, "lost")]


def test_mid_stream_capture_starts_at_first_byte_seen() -> None:
    run = Run()
    seg = TcpSegment(SERVER, SPORT, CLIENT, CPORT, 123_456_789, 42, ACK, b"\x81\x05hello")
    ev = run.feed(seg)
    assert ev == [
        ConnectionStarted(0, 1.0, 1, ("10.0.0.2", SPORT), ("10.0.0.1", CPORT), False),
        StreamData(0, 0, 1.0, 1, 0, b"\x81\x05hello"),
    ]
    back = TcpSegment(CLIENT, CPORT, SERVER, SPORT, 42, 123_456_796, ACK, b"hi")
    ev = run.feed(back)
    assert ev == [StreamData(0, 1, 2.0, 2, 0, b"hi")]


def test_synack_first_makes_its_receiver_the_initiator() -> None:
    w = Wire()
    run = Run()
    ev = run.feed(w.handshake()[1], w.c(0, b"GET"))
    assert ev[0] == ConnectionStarted(0, 1.0, 1, ("10.0.0.1", CPORT), ("10.0.0.2", SPORT), True)
    # Direction 0 is anchored at the SYN/ACK's ACK number (ISN+1).
    assert ev[1] == StreamData(0, 0, 2.0, 2, 0, b"GET")


# --------------------------------------------------------------------------- lifecycle


def test_fin_both_ways_ends_connection_and_final_ack_is_absorbed() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake())
    run.feed(w.c(0, b"bye"), w.c(3, flags=ACK | FIN))  # 4, 5
    ev = run.feed(w.s(0, flags=ACK | FIN, ack=4))  # 6
    assert ev == [ConnectionEnded(0, 6.0, 6, "tcp-fin", 2.0)]
    # Final ACK and a retransmitted FIN: no new connection.
    assert run.feed(w.c(4, ack=1), w.s(0, flags=ACK | FIN, ack=4)) == []
    assert run.finish() == []


def test_rst_ends_connection() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake(), w.c(0, b"x"))
    ev = run.feed(w.s(0, flags=RST | ACK, ack=1))  # 5
    assert ev == [ConnectionEnded(0, 5.0, 5, "tcp-reset", 2.0)]
    assert run.feed(w.c(1, b"late")) == []  # absorbed
    assert of(run.finish(), ConnectionEnded) == []


def test_port_reuse_after_close_is_a_new_connection() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake(), w.c(0, flags=ACK | FIN), w.s(0, flags=ACK | FIN, ack=1))
    w2 = Wire(isn_c=555_555, isn_s=999)
    ev = run.feed(*w2.handshake(), w2.c(0, b"again"))
    started = of(ev, ConnectionStarted)
    assert [s.conn for s in started] == [1] and started[0].syn_seen
    assert data(ev, 0, conn=1) == [StreamData(1, 0, ev[-1].ts, 9, 0, b"again")]


def test_closed_table_expires() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake(), w.c(0, flags=ACK | FIN), w.s(0, flags=ACK | FIN, ack=1))
    ev = run.feed(w.c(1, b"much later"), later=CLOSED_TTL + 1)
    assert [type(e) for e in ev] == [ConnectionStarted, StreamData]
    assert ev[0].conn == 1 and not ev[0].syn_seen


def test_syn_with_new_isn_on_open_connection_after_data_is_port_reuse() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake(), w.c(0, b"data"))  # 1-4
    # Retransmitted SYN (same ISN): same connection.
    assert run.feed(w.handshake()[0]) == []  # 5
    w2 = Wire(isn_c=77, isn_s=88)
    ev = run.feed(w2.handshake()[0])  # 6: new ISN
    assert ev == [
        ConnectionEnded(0, 5.0, 5, "capture-ended", 2.0),
        ConnectionStarted(1, 6.0, 6, ("10.0.0.1", CPORT), ("10.0.0.2", SPORT), True),
    ]


def test_syn_on_closing_connection_starts_new_one() -> None:
    w = Wire()
    run = Run()
    run.feed(*w.handshake(), w.c(0, flags=ACK | FIN))  # 1-4: half closed
    ev = run.feed(Wire(isn_c=31337).handshake()[0])  # 5
    assert [type(e) for e in ev] == [ConnectionEnded, ConnectionStarted]
    assert ev[0] == ConnectionEnded(0, 4.0, 4, "tcp-fin", 2.0)
    assert ev[1].conn == 1


def test_ipv6_endpoints_rfc5952() -> None:
    lo = ipaddress.IPv6Address("::1").packed
    doc = ipaddress.IPv6Address("2001:0db8:0000:0000:0000:0000:0000:0001").packed
    w = Wire(client=lo, server=doc)
    ev = Run().feed(w.handshake()[0])
    assert ev == [ConnectionStarted(0, 1.0, 1, ("::1", CPORT), ("2001:db8::1", SPORT), True)]


def test_eviction_beyond_max_connections_drops_least_recently_active() -> None:
    run = Run(TcpReassembler(max_connections=2))
    a, b, c = (Wire(cport=p) for p in (1001, 1002, 1003))
    run.feed(a.c(0, b"a0"), b.c(0, b"b0"), a.c(2, b"a1"))  # b is now idle the longest
    ev = run.feed(c.c(0, b"c0"))
    note, ended, started, first = ev
    assert isinstance(note, TcpNote) and note.rule == "capture.limit" and note.conn == 1
    assert ended == ConnectionEnded(1, 2.0, 2, "capture-ended")
    assert isinstance(started, ConnectionStarted) and started.conn == 2
    assert first == StreamData(2, 0, 4.0, 4, 0, b"c0")
    # The evicted connection's next packet starts a fresh (mid-stream) one,
    # evicting a (now the idlest).
    ev = run.feed(b.c(2, b"b1"))
    assert of(ev, ConnectionEnded) == [ConnectionEnded(0, 3.0, 3, "capture-ended")]
    assert of(ev, ConnectionStarted)[0].conn == 3
    assert len(of(run.finish(), ConnectionEnded)) == 2


def test_memory_does_not_grow_with_closed_connections() -> None:
    r = TcpReassembler(max_connections=10)
    run = Run(r)
    for i in range(200):
        w = Wire(cport=2000 + i)
        run.feed(*w.handshake(), w.c(0, flags=ACK | FIN), w.s(0, flags=ACK | FIN, ack=1))
    assert len(of(run.events, ConnectionEnded)) == 200
    assert len(r._open) == 0 and len(r._halves) == 0
    assert len(r._closed) <= 2 * 10 and len(r._lru) <= 64 + 2


# --------------------------------------------------------------------------- property


@st.composite
def shuffled_stream(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, int]]]:
    """A stream, its segment boundaries, plus duplicates and re-segmented overlaps,
    in any order."""
    stream = draw(st.binary(min_size=1, max_size=600))
    isn = draw(st.one_of(st.integers(MOD - 700, MOD - 1), st.integers(0, MOD - 1)))
    n = len(stream)
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=40)) if n > 1 else []))
    bounds = [0, *cuts, n]
    segs = list(pairwise(bounds))
    extra = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(1, 64)).map(
                lambda t: (t[0], min(n, t[0] + t[1]))
            ),
            max_size=15,
        )
    )
    dups = draw(st.lists(st.sampled_from(segs), max_size=10))
    order = draw(st.permutations(segs + extra + dups))
    return isn, stream, order


@settings(max_examples=300, deadline=None)
@given(shuffled_stream())
def test_any_order_and_duplication_yields_the_same_stream(
    case: tuple[int, bytes, list[tuple[int, int]]],
) -> None:
    isn, stream, order = case
    w = Wire(isn_c=isn)
    run = Run()
    run.feed(*w.handshake())
    run.feed(*(w.c(a, stream[a:b]) for a, b in order))
    run.feed(w.c(len(stream), flags=ACK | FIN))
    run.finish()
    assert joined(run.events, 0) == stream
    assert of(run.events, StreamGap) == []
    assert of(run.events, TcpNote) == []
    assert_contiguous(run.events, 0)
    for e in data(run.events, 0):
        assert stream[e.offset : e.offset + len(e.data)] == e.data


@st.composite
def lossy_stream(draw: st.DrawFn) -> tuple[int, int, bytes, list[tuple[str, int, int]]]:
    """Segments of a stream in any order with some dropped, interleaved with peer
    ACKs of arbitrary (even premature) values, and a small buffer limit."""
    stream = draw(st.binary(min_size=1, max_size=400))
    isn = draw(st.one_of(st.integers(MOD - 500, MOD - 1), st.integers(0, MOD - 1)))
    n = len(stream)
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=30)) if n > 1 else []))
    segs = [("data", a, b) for a, b in pairwise([0, *cuts, n])]
    dropped = draw(st.lists(st.booleans(), min_size=len(segs), max_size=len(segs)))
    kept = [s for s, drop in zip(segs, dropped, strict=True) if not drop]
    acks = [("ack", v, 0) for v in draw(st.lists(st.integers(0, n), max_size=8))]
    order = draw(st.permutations(kept + acks))
    limit = draw(st.integers(0, 300))
    return isn, limit, stream, order


@settings(max_examples=300, deadline=None)
@given(lossy_stream())
def test_losses_always_yield_a_consistent_tiling(
    case: tuple[int, int, bytes, list[tuple[str, int, int]]],
) -> None:
    isn, limit, stream, order = case
    w = Wire(isn_c=isn)
    run = Run(TcpReassembler(max_buffered=limit))
    run.feed(*w.handshake())
    for kind, a, b in order:
        run.feed(w.c(a, stream[a:b]) if kind == "data" else w.s(0, ack=a))
    run.feed(w.c(len(stream), flags=ACK | FIN))
    run.finish()
    assert_contiguous(run.events, 0)
    covered = sum(
        len(e.data) if isinstance(e, StreamData) else e.length
        for e in run.events
        if isinstance(e, (StreamData, StreamGap)) and e.direction == 0
    )
    assert covered == len(stream)
    for e in data(run.events, 0):
        assert stream[e.offset : e.offset + len(e.data)] == e.data
    assert {g.reason for g in of(run.events, StreamGap)} <= {"lost", "limit"}
    assert of(run.events, ConnectionEnded)[-1].how == "capture-ended"
