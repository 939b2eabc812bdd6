"""Passive TCP stream reassembly: segments in, ordered byte streams out.

The reassembler sees packets as a passive observer: it never knows what the
endpoints really received, only what the capture holds.  Rules it follows:

* Sequence numbers are compared modulo 2**32 (RFC 9293 §3.4): a segment's
  position is its signed 32-bit distance from the next expected sequence number,
  added to a Python-int stream offset, so wraparound and streams longer than
  4 GiB both work.
* SYN and FIN each occupy one sequence number (RFC 9293 §3.4, §3.5, §3.6); stream
  offset 0 is the byte after the SYN.
* Out-of-order data is held until the hole before it is filled (RFC 9293
  §3.10.7.4 lets a receiver do the same); where captured copies overlap, the
  first captured copy wins.
* A hole is declared lost when the peer acknowledges past it (it got bytes the
  capture missed), when the buffer limit is hit, on FIN/RST, or at the end.

Sans-IO: :meth:`TcpReassembler.feed` takes one segment and returns the events it
caused; :meth:`TcpReassembler.finish` flushes everything at the end of capture.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left, insort
from collections import deque
from heapq import heapify, heappop, heappush

from wsanalyze import rules as R
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    Endpoint,
    StreamData,
    StreamGap,
    TcpEvent,
    TcpNote,
)
from wsanalyze.tcp.segment import ACK, FIN, RST, SYN, TcpSegment

__all__ = ["TcpReassembler"]

FlowKey = tuple[bytes, int, bytes, int]
"""(source address, source port, destination address, destination port) as sent."""

_MASK = 0xFFFFFFFF
_HALF = 0x80000000
_CTRL = SYN | FIN | RST

CLOSED_TTL = 60.0
"""Seconds of capture time an ended connection keeps absorbing stray packets
(final ACK, retransmitted FIN, late RST).  Linux holds TIME-WAIT for 60 s; RFC
9293 §3.6.1 asks for 2·MSL, but the 4-tuple is in practice reused sooner."""

RECENT_CHUNKS = 8
ACK_GRACE = 64
"""Packets (of the whole capture) to wait, after an ACK passed a hole, for the
missing bytes to show up late in the capture before declaring them lost."""
"""Delivered chunks kept per direction to compare retransmissions against.
Overlap conflicts with older delivered bytes go unnoticed (memory stays
bounded); the bytes are still dropped (first copy wins)."""

RULE_OVERLAP = R.CAPTURE_OVERLAP_CONFLICT
RULE_LIMIT = R.CAPTURE_LIMIT

# A buffered out-of-order piece: (offset, end, packet, ts, data); data is None
# for bytes cut by the snapshot length (they flush as a "truncated" gap).
_Piece = tuple[int, int, int, float, bytes | None]


def _endpoint(addr: bytes, port: int) -> Endpoint:
    """Dotted IPv4 or RFC 5952 IPv6 text (``ipaddress`` implements both)."""
    return (str(ipaddress.ip_address(addr)), port)


class _Conn:
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
        h0 = _Half(self, 0)
        h1 = _Half(self, 1)
        h0.peer = h1
        h1.peer = h0
        self.halves = (h0, h1)


class _Half:
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
    )
    # mypyc: allow ``del half.conn, half.peer`` (cycle breaking in _close).
    __deletable__ = ("conn", "peer")

    def __init__(self, conn: _Conn, direction: int) -> None:
        self.conn = conn
        self.dir = direction
        self.peer: _Half = self
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
        self.recent: deque[StreamData] = deque(maxlen=RECENT_CHUNKS)
        self.conflicts = 0
        self.first_conflict = 0  # packet of the first reported conflict
        self.hole_acked_at: int | None = None  # packet whose ACK first passed a hole

    def refresh(self) -> None:
        """Re-arm or disarm the fast path after slow-path changes."""
        if self.nseq is not None and not self.pending and self.fin_off is None:
            self.fast = self.nseq
        else:
            self.fast = -1


class _Closed:
    """An ended connection whose 4-tuple still absorbs stray packets."""

    __slots__ = ("isns", "keys", "ts")

    def __init__(self, keys: tuple[FlowKey, FlowKey], isns: tuple[int | None, int | None],
                 ts: float) -> None:
        self.keys = keys
        self.isns = isns
        self.ts = ts


def _dist(a: int, b: int) -> int:
    """Signed distance ``a - b`` in sequence space (RFC 9293 §3.4)."""
    return ((a - b + _HALF) & _MASK) - _HALF


class TcpReassembler:
    """Turn TCP segments, in capture order, into per-direction byte streams.

    ``max_buffered`` bounds the out-of-order bytes held per direction; beyond it
    the earliest hole is given up as a ``"limit"`` gap.  ``max_connections``
    bounds open connections; beyond it the one idle the longest is ended
    (``"capture-ended"``) with a ``capture.limit`` note.
    """

    def __init__(
        self,
        *,
        max_buffered: int = 8 * 1024 * 1024,
        max_connections: int = 100_000,
        ack_grace: int = ACK_GRACE,
    ) -> None:
        self._max_buffered = max_buffered
        self._ack_grace = ack_grace
        self._max_connections = max(1, max_connections)
        self._halves: dict[FlowKey, _Half] = {}  # 4-tuple as sent -> its direction
        self._open: dict[int, _Conn] = {}  # id -> connection, in id order
        self._lru: list[tuple[int, int, _Conn]] = []  # lazy heap (last packet, id, conn)
        self._closed: dict[FlowKey, _Closed] = {}
        self._closed_fifo: deque[_Closed] = deque()
        self._next_id = 0

    # -- hot path -----------------------------------------------------------

    def feed(self, packet: int, ts: float, seg: TcpSegment) -> list[TcpEvent]:
        """Process one segment; return the events it causes, in order."""
        h = self._halves.get((seg.src, seg.sport, seg.dst, seg.dport))
        if h is None or seg.flags & _CTRL:
            return self._slow(packet, ts, seg, h)
        # Known connection, no SYN/FIN/RST: the common case, kept short.
        conn = h.conn
        conn.last_packet = packet
        conn.last_ts = ts
        if conn.wait_ack and h.dir == 0 and seg.flags & ACK:
            conn.wait_ack = False
            if conn.syn_ts is not None:
                conn.connect_rtt = ts - conn.syn_ts
        out: list[TcpEvent] | None = None
        if seg.flags & ACK:
            peer = h.peer
            peer.acked = seg.ack
            if peer.pending:
                out = []
                self._ack_gaps(peer, out, packet)
                peer.refresh()
        payload = seg.payload
        if not payload and not seg.missing:
            return out or []
        if seg.seq == h.fast and not seg.missing:
            off = h.noff
            n = len(payload)
            h.noff = off + n
            h.nseq = h.fast = (seg.seq + n) & _MASK
            ev = StreamData(conn.id, h.dir, ts, packet, off, payload)
            h.recent.append(ev)
            if out is None:
                return [ev]
            out.append(ev)
            return out
        if out is None:
            out = []
        self._data(h, packet, ts, seg.seq, payload, seg.missing, out)
        h.refresh()
        return out

    def connection_of(self, seg: TcpSegment) -> int | None:
        """The id of the open connection ``seg`` belongs to, if any."""
        h = self._halves.get((seg.src, seg.sport, seg.dst, seg.dport))
        return None if h is None else h.conn.id

    # -- slow path ----------------------------------------------------------

    def _slow(self, packet: int, ts: float, seg: TcpSegment, h: _Half | None) -> list[TcpEvent]:
        """New connections, SYN/FIN/RST, and anything the fast path declined."""
        out: list[TcpEvent] = []
        flags = seg.flags
        if h is None:
            h = self._new_or_absorb(packet, ts, seg, out)
            if h is None:
                return out
        elif flags & SYN and self._is_reuse(h, seg):
            # Port reuse: the old connection's end was not captured unless it was
            # closing; a SYN on a FINned 4-tuple is a new incarnation.
            old = h.conn
            self._close(old, "tcp-fin" if old.closing else "capture-ended", out, remember=False)
            h = self._create(packet, ts, seg, out)
        conn = h.conn
        conn.last_packet = packet
        conn.last_ts = ts
        if flags & RST:
            # RFC 9293 §3.5.3: a reset aborts both directions at once.  Any data it
            # carries is diagnostic text, not stream data.
            self._close(conn, "tcp-reset", out, remember=True)
            return out
        peer = h.peer
        seq = seg.seq
        if flags & SYN:
            self._syn(h, seg)
            seq = (seq + 1) & _MASK  # the SYN occupies one sequence number
            if not flags & ACK:
                if conn.syn_ts is None:
                    conn.syn_ts = ts
            elif conn.connect_rtt is None:
                conn.wait_ack = True
        if flags & ACK:
            peer.acked = seg.ack
            if peer.pending:
                self._ack_gaps(peer, out, packet)
        payload = seg.payload
        if payload or seg.missing:
            self._data(h, packet, ts, seq, payload, seg.missing, out)
        if flags & FIN:
            self._fin(h, packet, ts, (seq + len(payload) + seg.missing) & _MASK, out)
            if peer.fin_off is not None:
                # Both FINs delivered (holes before them were already given up):
                # end now and let the closed table absorb the final ACK.
                self._close(conn, "tcp-fin", out, remember=True)
                return out
        h.refresh()
        peer.refresh()
        return out

    def _new_or_absorb(
        self, packet: int, ts: float, seg: TcpSegment, out: list[TcpEvent]
    ) -> _Half | None:
        """Start a connection for an unknown 4-tuple, unless it just ended."""
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        rec = self._closed.get(key)
        if rec is not None:
            if ts - rec.ts <= CLOSED_TTL:
                flags = seg.flags
                if not flags & SYN:
                    return None  # final ACK, retransmission, late RST: absorb
                if flags & ACK:
                    direction = 0 if rec.keys[0] == key else 1
                    if rec.isns[direction] == seg.seq:
                        return None  # retransmitted SYN/ACK of the ended connection
            self._forget(rec)
        return self._create(packet, ts, seg, out)

    def _create(self, packet: int, ts: float, seg: TcpSegment, out: list[TcpEvent]) -> _Half:
        """Register a new connection and emit ConnectionStarted.

        The initiator is the sender of a SYN without ACK, the receiver of a
        SYN/ACK, else the sender of this first packet.
        """
        if len(self._open) >= self._max_connections:
            self._evict(packet, ts, out)
        flags = seg.flags
        if flags & SYN and flags & ACK:
            direction = 1
            init, resp = (seg.dst, seg.dport), (seg.src, seg.sport)
        else:
            direction = 0
            init, resp = (seg.src, seg.sport), (seg.dst, seg.dport)
        keys = ((*init, *resp), (*resp, *init))
        cid = self._next_id
        self._next_id = cid + 1
        conn = _Conn(cid, keys, packet, ts)
        self._halves[keys[0]] = conn.halves[0]
        self._halves[keys[1]] = conn.halves[1]
        self._open[cid] = conn
        lru = self._lru
        heappush(lru, (packet, cid, conn))
        if len(lru) > 2 * len(self._open) + 64:
            # Ended connections leave stale heap entries; rebuild so the heap
            # grows with open connections, not with capture size.
            lru[:] = [(c.last_packet, c.id, c) for c in self._open.values()]
            heapify(lru)
        out.append(
            ConnectionStarted(
                cid, ts, packet, _endpoint(*init), _endpoint(*resp), bool(flags & SYN)
            )
        )
        return conn.halves[direction]

    def _is_reuse(self, h: _Half, seg: TcpSegment) -> bool:
        """Does this SYN on an open connection start a new incarnation?

        Yes for a SYN without ACK once the connection is closing; otherwise when
        its ISN differs from the one recorded and data has already flowed (a
        retransmitted SYN repeats the ISN, RFC 9293 §3.5).
        """
        conn = h.conn
        if conn.closing and not seg.flags & ACK:
            return True
        if seg.seq == h.isn:
            return False
        peer = h.peer
        if h.isn is None and seg.flags & ACK and peer.isn is not None:
            # The first SYN/ACK answering the SYN we saw: data may already have flowed
            # in that SYN (TCP Fast Open, RFC 7413), which is no reason to restart.
            return False
        return bool(conn.closing or h.noff or h.pending or peer.noff or peer.pending)

    def _syn(self, h: _Half, seg: TcpSegment) -> None:
        """Anchor stream offset 0 at ISN+1 (RFC 9293 §3.4.1)."""
        seq = seg.seq
        if h.isn != seq and (h.nseq is None or (h.noff == 0 and not h.pending)):
            h.isn = seq
            h.nseq = (seq + 1) & _MASK
        peer = h.peer
        if seg.flags & ACK and peer.nseq is None:
            # A SYN/ACK acknowledges ISN+1 of the other side: its start is known
            # even though its SYN was not captured.
            peer.nseq = seg.ack & _MASK
            peer.isn = (seg.ack - 1) & _MASK

    def _data(
        self,
        h: _Half,
        packet: int,
        ts: float,
        seq: int,
        payload: bytes,
        missing: int,
        out: list[TcpEvent],
    ) -> None:
        """Place payload (and snaplen-cut bytes) in the stream of ``h``."""
        n = len(payload)
        if h.nseq is None:
            acked = h.acked
            if n <= 1 and not missing and acked is not None and seq == (acked - 1) & _MASK:
                return  # keep-alive probe before any data (RFC 9293 §3.8.4)
            h.nseq = seq  # mid-stream capture: start at the first byte seen
        delta = _dist(seq, h.nseq)
        if delta < 0:
            # Starts before the next expected byte: a retransmission, overlapping
            # or not.  Keep-alives (seq = next-1, ≤1 byte, RFC 9293 §3.8.4) carry
            # a garbage byte: skip them silently.
            if delta == -1 and n <= 1 and not missing:
                return
            old = -delta
            self._check_delivered(h, h.noff + delta, payload[:old], packet, ts, out)
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
        off = h.noff + delta
        end = off + n + missing
        fin_off = h.fin_off
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
        if delta == 0 and not h.pending:
            # In order (possibly truncated by snaplen): deliver at once.
            cid = h.conn.id
            if n:
                ev = StreamData(cid, h.dir, ts, packet, off, payload)
                h.recent.append(ev)
                out.append(ev)
            if missing:
                out.append(StreamGap(cid, h.dir, ts, packet, off + n, missing, "truncated"))
            h.noff = end
            h.nseq = (h.nseq + n + missing) & _MASK
            return
        if n:
            self._insert(h, off, off + n, packet, ts, payload, out)
        if missing:
            self._insert(h, off + n, end, packet, ts, None, out)
        self._flush(h, out)
        if h.pending:
            if h.acked is not None:
                self._ack_gaps(h, out, packet)
            if h.buffered > self._max_buffered:
                self._overflow(h, packet, ts, out)

    def _insert(
        self,
        h: _Half,
        off: int,
        end: int,
        packet: int,
        ts: float,
        data: bytes | None,
        out: list[TcpEvent],
    ) -> None:
        """Buffer ``[off, end)`` out of order, keeping bytes already buffered.

        Only the parts not yet covered are added, so pending pieces stay disjoint;
        overlapping captured bytes that differ are reported as a conflict.
        """
        pending = h.pending
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
                    self._conflict(h, a, b, packet, p_packet, ts, out)
            cur = p_end
            i += 1
        if cur < end:
            gaps.append((cur, end))
        for a, b in gaps:
            piece = data if data is None or (a == off and b == end) else data[a - off : b - off]
            insort(pending, (a, b, packet, ts, piece))
            if piece is not None:
                h.buffered += b - a

    def _flush(self, h: _Half, out: list[TcpEvent]) -> None:
        """Deliver buffered pieces that now continue the stream, in order."""
        pending = h.pending
        noff = h.noff
        if not pending or pending[0][0] != noff:
            return
        cid = h.conn.id
        d = h.dir
        recent = h.recent
        k = 0
        freed = 0
        count = len(pending)
        while k < count and pending[k][0] == noff:
            off, end, packet, ts, data = pending[k]
            if data is None:
                out.append(StreamGap(cid, d, ts, packet, off, end - off, "truncated"))
            else:
                ev = StreamData(cid, d, ts, packet, off, data)
                recent.append(ev)
                out.append(ev)
                freed += end - off
            noff = end
            k += 1
        del pending[:k]
        assert h.nseq is not None
        h.nseq = (h.nseq + noff - h.noff) & _MASK
        h.noff = noff
        h.buffered -= freed

    def _gap(
        self, h: _Half, length: int, reason: str, packet: int, ts: float, out: list[TcpEvent]
    ) -> None:
        """Give up ``length`` bytes at the current position and move past them."""
        out.append(StreamGap(h.conn.id, h.dir, ts, packet, h.noff, length, reason))
        h.noff += length
        assert h.nseq is not None
        h.nseq = (h.nseq + length) & _MASK

    def _ack_gaps(self, h: _Half, out: list[TcpEvent], packet: int) -> None:
        """Declare lost the hole bytes the peer has acknowledged.

        An ACK past a hole means the receiver got bytes the capture never saw.
        Only the acknowledged part is given up; the rest may still arrive.  The
        capture itself may hold packets out of order (several capture queues, a
        mirror port), so the missing bytes are waited for during ``ACK_GRACE``
        more packets before they are declared lost.
        """
        pending = h.pending
        assert h.acked is not None and h.nseq is not None
        if _dist(h.acked, h.nseq) <= 0:
            h.hole_acked_at = None
            return
        if h.hole_acked_at is None:
            h.hole_acked_at = packet
        if packet - h.hole_acked_at < self._ack_grace:
            return
        h.hole_acked_at = None
        while pending:
            ahead = _dist(h.acked, h.nseq)
            if ahead <= 0:
                return
            first = pending[0]
            self._gap(h, min(ahead, first[0] - h.noff), "lost", first[2], first[3], out)
            self._flush(h, out)

    def _overflow(self, h: _Half, packet: int, ts: float, out: list[TcpEvent]) -> None:
        """Too many bytes held behind holes: skip holes until under the limit."""
        pending = h.pending
        while pending and h.buffered > self._max_buffered:
            first = pending[0]
            length = first[0] - h.noff
            at = h.noff
            self._gap(h, length, "limit", first[2], first[3], out)
            out.append(
                TcpNote(
                    h.conn.id,
                    h.dir,
                    ts,
                    packet,
                    RULE_LIMIT,
                    f"more than {self._max_buffered} out-of-order bytes "
                    f"buffered; gave up waiting for {length} missing bytes at offset {at}",
                )
            )
            self._flush(h, out)

    def _fin(self, h: _Half, packet: int, ts: float, fin_seq: int, out: list[TcpEvent]) -> None:
        """Record the FIN (RFC 9293 §3.6).  Holes before it may still be filled: a
        capture can hold the FIN segment ahead of the one before it.  They are given
        up like any hole (acknowledged past, or when the connection ends)."""
        if h.fin_off is not None:
            return  # retransmitted FIN
        h.conn.closing = True
        if h.nseq is None:
            h.nseq = fin_seq  # no data seen in this direction
        fin_off = max(h.noff, h.noff + _dist(fin_seq, h.nseq))
        # Anything beyond the FIN is bogus.
        h.pending = [p for p in h.pending if p[0] < fin_off]
        h.buffered = sum(p[1] - p[0] for p in h.pending if p[4] is not None)
        h.fin_off = fin_off
        h.fin_at = (packet, ts)
        h.fast = -1

    def _check_delivered(
        self, h: _Half, off: int, data: bytes, packet: int, ts: float, out: list[TcpEvent]
    ) -> None:
        """Compare retransmitted bytes with the recently delivered copy."""
        end = off + len(data)
        for ev in h.recent:
            e_off = ev.offset
            a = max(off, e_off)
            b = min(end, e_off + len(ev.data))
            if a < b and data[a - off : b - off] != ev.data[a - e_off : b - e_off]:
                self._conflict(h, a, b, packet, ev.packet, ts, out)
                return

    def _conflict(
        self, h: _Half, a: int, b: int, packet: int, first: int, ts: float, out: list[TcpEvent]
    ) -> None:
        """Count a conflicting overlap; report only the first per direction."""
        h.conflicts += 1
        if h.conflicts > 1:
            return
        h.first_conflict = packet
        out.append(
            TcpNote(
                h.conn.id,
                h.dir,
                ts,
                packet,
                RULE_OVERLAP,
                f"bytes {a}-{b - 1} of packet {packet} differ from the "
                f"copy first captured in packet {first}; kept the first copy",
            )
        )

    # -- ending -------------------------------------------------------------

    def _drain(self, h: _Half, out: list[TcpEvent]) -> None:
        """Give up every remaining hole of ``h`` and deliver what follows."""
        pending = h.pending
        while pending:
            first = pending[0]
            self._gap(h, first[0] - h.noff, "lost", first[2], first[3], out)
            self._flush(h, out)
        h.buffered = 0
        if h.fin_off is not None and h.fin_off > h.noff:
            # Bytes just before the FIN that never came: reported at the FIN.
            self._gap(h, h.fin_off - h.noff, "lost", h.fin_at[0], h.fin_at[1], out)
        elif h.nseq is not None and h.fin_off is None and h.acked is not None:
            # The peer acknowledged bytes after the last one captured.
            ahead = _dist(h.acked, h.nseq)
            if ahead > 0:
                conn = h.conn
                self._gap(h, ahead, "lost", conn.last_packet, conn.last_ts, out)

    def _close(self, conn: _Conn, how: str, out: list[TcpEvent], *, remember: bool) -> None:
        """Flush, summarize and end ``conn``; optionally absorb its stragglers."""
        for h in conn.halves:
            self._drain(h, out)
        for h in conn.halves:
            if h.conflicts > 1:
                out.append(
                    TcpNote(
                        conn.id,
                        h.dir,
                        conn.last_ts,
                        conn.last_packet,
                        RULE_OVERLAP,
                        f"{h.conflicts} conflicting overlaps in total "
                        f"(first at packet {h.first_conflict}); kept the first copies",
                    )
                )
        out.append(ConnectionEnded(conn.id, conn.last_ts, conn.last_packet, how,
                                   conn.connect_rtt))
        conn.open = False
        for h in conn.halves:
            h.fast = -1
            # Stale heap entries may keep the object a while: drop its payload now.
            h.recent.clear()
            h.pending = []
        del self._open[conn.id]
        k0, k1 = conn.keys
        del self._halves[k0]
        del self._halves[k1]
        if remember:
            self._remember(conn)
        for h in conn.halves:
            # Break the conn <-> half <-> peer cycles: without this an ended
            # connection waits for a full cyclic GC, which a long capture rarely
            # triggers, and memory grows with the number of connections seen.
            del h.conn, h.peer

    def _remember(self, conn: _Conn) -> None:
        """Keep an ended connection's 4-tuple for CLOSED_TTL, bounded in count."""
        rec = _Closed(conn.keys, (conn.halves[0].isn, conn.halves[1].isn), conn.last_ts)
        fifo = self._closed_fifo
        fifo.append(rec)
        for k in rec.keys:
            self._closed[k] = rec
        horizon = rec.ts - CLOSED_TTL
        while fifo and (len(fifo) > self._max_connections or fifo[0].ts < horizon):
            self._forget(fifo[0])
            fifo.popleft()

    def _forget(self, rec: _Closed) -> None:
        for k in rec.keys:
            if self._closed.get(k) is rec:
                del self._closed[k]

    def _evict(self, packet: int, ts: float, out: list[TcpEvent]) -> None:
        """End the connection idle the longest (lazy heap keyed on last packet)."""
        lru = self._lru
        while lru:
            last, cid, conn = heappop(lru)
            if not conn.open:
                continue
            if conn.last_packet != last:
                heappush(lru, (conn.last_packet, cid, conn))  # active since: requeue
                continue
            out.append(
                TcpNote(
                    cid,
                    None,
                    ts,
                    packet,
                    RULE_LIMIT,
                    # The row belongs to this connection: its internal id means nothing
                    # to the user (the tables number WebSocket connections only).
                    f"more than {self._max_connections} open connections; stopped tracking "
                    f"this one, the longest idle (idle since packet {last})",
                )
            )
            self._close(conn, "capture-ended", out, remember=False)
            return

    def finish(self) -> list[TcpEvent]:
        """End of capture: give up remaining holes, end every open connection."""
        out: list[TcpEvent] = []
        for conn in list(self._open.values()):
            self._close(conn, "capture-ended", out, remember=False)
        self._lru.clear()
        self._closed.clear()
        self._closed_fifo.clear()
        return out
