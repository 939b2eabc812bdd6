"""One direction of a TCP connection: bytes put in order, holes, overlaps, the FIN.

:class:`Half` is the per-direction bookkeeping of
:class:`~wsanalyze.tcp.reassembly.TcpReassembler` (which keeps the connection
table, the handshake and the ends of connections).  Its rules:

* Sequence numbers are compared modulo 2**32 (RFC 9293 §3.4): a segment's
  position is its signed 32-bit distance from the next expected sequence number,
  added to a Python-int stream offset, so wraparound and streams longer than
  4 GiB both work.
* Out-of-order data is held until the hole before it is filled (RFC 9293
  §3.10.7.4 lets a receiver do the same); where captured copies overlap, the
  first captured copy wins.
* A hole is declared lost when the peer acknowledges past it (it got bytes the
  capture missed), when the buffer limit is hit, on FIN/RST, or at the end.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final

from wsanalyze import rules as R
from wsanalyze.tcp.events import StreamData, StreamGap, TcpEvent, TcpNote

__all__ = ["MASK", "RULE_LIMIT", "RULE_OVERLAP", "Conn", "FlowKey", "Half", "dist"]

FlowKey = tuple[bytes, int, bytes, int]
"""(source address, source port, destination address, destination port) as sent."""

MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000

RECENT_CHUNKS: Final = 8
"""Delivered chunks kept per direction to compare retransmissions against.
Overlap conflicts with older delivered bytes go unnoticed (memory stays
bounded); the bytes are still dropped (first copy wins)."""

RULE_OVERLAP: Final = R.CAPTURE_OVERLAP_CONFLICT
RULE_LIMIT: Final = R.CAPTURE_LIMIT

# A buffered out-of-order piece: (offset, end, packet, ts, data); data is None
# for bytes cut by the snapshot length (they flush as a "truncated" gap).
_Piece = tuple[int, int, int, float, bytes | None]


def dist(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space (RFC 9293 §3.4)."""
    return ((a - b + _HALF) & MASK) - _HALF


class Conn:
    """One TCP connection: two directions plus bookkeeping."""

    __slots__ = (
        "closing",
        "connect_rtt",
        "halves",
        "id",
        "keys",
        "last_packet",
        "last_ts",
        "open",
        "syn_ts",
        "wait_ack",
    )

    def __init__(self, cid: int, keys: tuple[FlowKey, FlowKey], packet: int, ts: float) -> None:
        self.id = cid
        self.keys = keys
        self.last_packet = packet
        self.last_ts = ts
        self.closing = False  # a FIN was seen in some direction
        self.open = True
        self.syn_ts: float | None = None  # the initiator's SYN
        self.wait_ack = False  # SYN/ACK seen, the initiator's ACK not yet
        self.connect_rtt: float | None = None  # SYN → the ACK completing the handshake
        h0 = Half(self, 0)
        h1 = Half(self, 1)
        h0.peer = h1
        h1.peer = h0
        self.halves = (h0, h1)


class Half:
    """One direction of a connection (bytes sent by one endpoint)."""

    __slots__ = (
        "acked",
        "buffered",
        "conflicts",
        "conn",
        "dir",
        "fast",
        "fin_at",
        "fin_off",
        "first_conflict",
        "hole_acked_at",
        "isn",
        "noff",
        "nseq",
        "peer",
        "pending",
        "recent",
        "recent_at",
    )
    # mypyc: allow ``del half.conn, half.peer`` (cycle breaking in TcpReassembler._close).
    __deletable__ = ("conn", "peer")

    def __init__(self, conn: Conn, direction: int) -> None:
        self.conn = conn
        self.dir = direction
        self.peer: Half = self
        self.isn: int | None = None  # sequence number of this direction's SYN
        self.nseq: int | None = None  # next expected sequence number (None: not started)
        self.noff = 0  # stream offset of nseq
        # nseq when the next in-order segment can take the fast path (started, no
        # holes, no FIN), else -1 so that the single comparison in feed() fails.
        self.fast = -1
        self.pending: list[_Piece] = []  # out-of-order pieces, sorted, disjoint, > noff
        self.buffered = 0  # bytes held in pending
        self.acked: int | None = None  # latest ACK number the peer sent for our bytes
        self.fin_off: int | None = None  # stream offset of our FIN once seen
        self.fin_at: tuple[int, float] = (0, 0.0)  # (packet, ts) of that FIN
        # The last RECENT_CHUNKS delivered chunks, a ring once full (recent_at: the
        # oldest).  A list, not a deque(maxlen=...): under mypyc a list store is a
        # native operation, a deque append a method looked up by name per chunk.
        self.recent: list[StreamData] = []
        self.recent_at = 0
        self.conflicts = 0
        self.first_conflict = 0  # packet of the first reported conflict
        self.hole_acked_at: int | None = None  # packet whose ACK first passed a hole

    def refresh(self) -> None:
        """Re-arm or disarm the fast path after slow-path changes."""
        if self.nseq is not None and not self.pending and self.fin_off is None:
            self.fast = self.nseq
        else:
            self.fast = -1

    def remember(self, ev: StreamData) -> None:
        """Keep a delivered chunk to compare retransmissions with (the oldest of
        RECENT_CHUNKS goes)."""
        recent = self.recent
        if len(recent) < RECENT_CHUNKS:
            recent.append(ev)
        else:
            at = self.recent_at
            recent[at] = ev
            self.recent_at = at + 1 if at + 1 < RECENT_CHUNKS else 0

    def data(self, packet: int, ts: float, seq: int, payload: bytes, missing: int,
             out: list[TcpEvent], max_buffered: int, ack_grace: int) -> None:
        """Place payload (and snaplen-cut bytes) in this direction's stream."""
        n = len(payload)
        if self.nseq is None:
            acked = self.acked
            if n <= 1 and not missing and acked is not None and seq == (acked - 1) & MASK:
                return  # keep-alive probe before any data (RFC 9293 §3.8.4)
            self.nseq = seq  # mid-stream capture: start at the first byte seen
        delta = dist(seq, self.nseq)
        if delta < 0:
            # Starts before the next expected byte: a retransmission, overlapping
            # or not.  Keep-alives (seq = next-1, ≤1 byte, RFC 9293 §3.8.4) carry
            # a garbage byte: skip them silently.
            if delta == -1 and n <= 1 and not missing:
                return
            old = -delta
            self.check_delivered(self.noff + delta, payload[:old], packet, ts, out)
            if n + missing <= old:
                return
            if old <= n:
                payload = payload[old:]
                n -= old
            else:
                missing -= old - n
                payload = b""
                n = 0
            delta = 0
        off = self.noff + delta
        end = off + n + missing
        fin_off = self.fin_off
        if fin_off is not None and end > fin_off:
            # Nothing follows a FIN (RFC 9293 §3.6): drop bytes beyond it.
            if off >= fin_off:
                return
            keep = fin_off - off
            if keep <= n:
                payload = payload[:keep]
                n = keep
                missing = 0
            else:
                missing = keep - n
        if delta == 0 and not self.pending:
            # In order (possibly truncated by snaplen): deliver at once.
            cid = self.conn.id
            if n:
                ev = StreamData(cid, self.dir, ts, packet, off, payload)
                self.remember(ev)
                out.append(ev)
            if missing:
                out.append(StreamGap(cid, self.dir, ts, packet, off + n, missing, "truncated"))
            self.noff = end
            self.nseq = (self.nseq + n + missing) & MASK
            return
        if n:
            self.insert(off, off + n, packet, ts, payload, out)
        if missing:
            self.insert(off + n, end, packet, ts, None, out)
        self.flush(out)
        if self.pending:
            if self.acked is not None:
                self.ack_gaps(out, packet, ack_grace)
            if self.buffered > max_buffered:
                self.overflow(packet, ts, out, max_buffered)

    def insert(self, off: int, end: int, packet: int, ts: float, data: bytes | None,
               out: list[TcpEvent]) -> None:
        """Buffer ``[off, end)`` out of order, keeping bytes already buffered.

        Only the parts not yet covered are added, so pending pieces stay disjoint;
        overlapping captured bytes that differ are reported as a conflict.
        """
        pending = self.pending
        i = bisect_left(pending, (off,))
        if i and pending[i - 1][1] > off:
            i -= 1
        cur = off
        gaps: list[tuple[int, int]] = []
        conflict = False
        while i < len(pending) and cur < end:
            p_off, p_end, p_packet, _, p_data = pending[i]
            if p_off >= end:
                break
            if p_off > cur:
                gaps.append((cur, p_off))
            if not conflict and data is not None and p_data is not None:
                a = max(cur, p_off)
                b = min(end, p_end)
                if data[a - off : b - off] != p_data[a - p_off : b - p_off]:
                    conflict = True
                    self.conflict(a, b, packet, p_packet, ts, out)
            cur = p_end
            i += 1
        if cur < end:
            gaps.append((cur, end))
        for a, b in gaps:
            piece = data if data is None or (a == off and b == end) else data[a - off : b - off]
            insort(pending, (a, b, packet, ts, piece))
            if piece is not None:
                self.buffered += b - a

    def flush(self, out: list[TcpEvent]) -> None:
        """Deliver buffered pieces that now continue the stream, in order."""
        pending = self.pending
        noff = self.noff
        if not pending or pending[0][0] != noff:
            return
        cid = self.conn.id
        d = self.dir
        k = 0
        freed = 0
        count = len(pending)
        while k < count and pending[k][0] == noff:
            off, end, packet, ts, data = pending[k]
            if data is None:
                out.append(StreamGap(cid, d, ts, packet, off, end - off, "truncated"))
            else:
                ev = StreamData(cid, d, ts, packet, off, data)
                self.remember(ev)
                out.append(ev)
                freed += end - off
            noff = end
            k += 1
        del pending[:k]
        assert self.nseq is not None
        self.nseq = (self.nseq + noff - self.noff) & MASK
        self.noff = noff
        self.buffered -= freed

    def gap(self, length: int, reason: str, packet: int, ts: float,
            out: list[TcpEvent]) -> None:
        """Give up ``length`` bytes at the current position and move past them."""
        out.append(StreamGap(self.conn.id, self.dir, ts, packet, self.noff, length, reason))
        self.noff += length
        assert self.nseq is not None
        self.nseq = (self.nseq + length) & MASK

    def ack_gaps(self, out: list[TcpEvent], packet: int, ack_grace: int) -> None:
        """Declare lost the hole bytes the peer has acknowledged.

        An ACK past a hole means the receiver got bytes the capture never saw.
        Only the acknowledged part is given up; the rest may still arrive.  The
        capture itself may hold packets out of order (several capture queues, a
        mirror port), so the missing bytes are waited for during ``ack_grace``
        more packets before they are declared lost.
        """
        pending = self.pending
        assert self.acked is not None and self.nseq is not None
        if dist(self.acked, self.nseq) <= 0:
            self.hole_acked_at = None
            return
        if self.hole_acked_at is None:
            self.hole_acked_at = packet
        if packet - self.hole_acked_at < ack_grace:
            return
        self.hole_acked_at = None
        while pending:
            ahead = dist(self.acked, self.nseq)
            if ahead <= 0:
                return
            first = pending[0]
            self.gap(min(ahead, first[0] - self.noff), "lost", first[2], first[3], out)
            self.flush(out)

    def overflow(self, packet: int, ts: float, out: list[TcpEvent], max_buffered: int) -> None:
        """Too many bytes held behind holes: skip holes until under the limit."""
        pending = self.pending
        while pending and self.buffered > max_buffered:
            first = pending[0]
            length = first[0] - self.noff
            at = self.noff
            self.gap(length, "limit", first[2], first[3], out)
            self.note(RULE_LIMIT, ts, packet, f"more than {max_buffered} out-of-order bytes "
                      f"buffered; gave up waiting for {length} missing bytes at offset {at}", out)
            self.flush(out)

    def fin(self, packet: int, ts: float, fin_seq: int) -> None:
        """Record the FIN (RFC 9293 §3.6).  Holes before it may still be filled: a
        capture can hold the FIN segment ahead of the one before it.  They are given
        up like any hole (acknowledged past, or when the connection ends)."""
        if self.fin_off is not None:
            return  # retransmitted FIN
        self.conn.closing = True
        if self.nseq is None:
            self.nseq = fin_seq  # no data seen in this direction
        fin_off = max(self.noff, self.noff + dist(fin_seq, self.nseq))
        # Anything beyond the FIN is bogus.
        self.pending = [p for p in self.pending if p[0] < fin_off]
        self.buffered = sum(p[1] - p[0] for p in self.pending if p[4] is not None)
        self.fin_off = fin_off
        self.fin_at = (packet, ts)
        self.fast = -1

    def check_delivered(self, off: int, data: bytes, packet: int, ts: float,
                        out: list[TcpEvent]) -> None:
        """Compare retransmitted bytes with the recently delivered copy."""
        end = off + len(data)
        recent = self.recent
        at = self.recent_at
        for ev in recent[at:] + recent[:at]:  # oldest first
            e_off = ev.offset
            a = max(off, e_off)
            b = min(end, e_off + len(ev.data))
            if a < b and data[a - off : b - off] != ev.data[a - e_off : b - e_off]:
                self.conflict(a, b, packet, ev.packet, ts, out)
                return

    def conflict(self, a: int, b: int, packet: int, first: int, ts: float,
                 out: list[TcpEvent]) -> None:
        """Count a conflicting overlap; report only the first per direction."""
        self.conflicts += 1
        if self.conflicts > 1:
            return
        self.first_conflict = packet
        self.note(RULE_OVERLAP, ts, packet, f"bytes {a}-{b - 1} of packet {packet} differ from "
                  f"the copy first captured in packet {first}; kept the first copy", out)

    def note(self, rule: str, ts: float, packet: int, text: str, out: list[TcpEvent]) -> None:
        """A capture note about this direction."""
        out.append(TcpNote(self.conn.id, self.dir, ts, packet, rule, text))

    def drain(self, out: list[TcpEvent]) -> None:
        """Give up every remaining hole and deliver what follows (the connection ends)."""
        pending = self.pending
        while pending:
            first = pending[0]
            self.gap(first[0] - self.noff, "lost", first[2], first[3], out)
            self.flush(out)
        self.buffered = 0
        if self.fin_off is not None and self.fin_off > self.noff:
            # Bytes just before the FIN that never came: reported at the FIN.
            self.gap(self.fin_off - self.noff, "lost", self.fin_at[0], self.fin_at[1], out)
        elif self.nseq is not None and self.fin_off is None and self.acked is not None:
            # The peer acknowledged bytes after the last one captured.
            ahead = dist(self.acked, self.nseq)
            if ahead > 0:
                conn = self.conn
                self.gap(ahead, "lost", conn.last_packet, conn.last_ts, out)
