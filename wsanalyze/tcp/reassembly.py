"""Passive TCP stream reassembly: segments in, ordered byte streams out.

The reassembler sees packets as a passive observer: it never knows what the
endpoints really received, only what the capture holds.  This module keeps the
connection table (new connections, port reuse, ended 4-tuples absorbing stray
packets, the open-connection limit), the handshake (SYN, SYN/ACK, connect RTT)
and the ends of connections; each direction's bytes, holes and overlaps are
:class:`wsanalyze.tcp.direction.Half`'s (its docstring has those rules).

* SYN and FIN each occupy one sequence number (RFC 9293 §3.4, §3.5, §3.6); stream
  offset 0 is the byte after the SYN.

Sans-IO: :meth:`TcpReassembler.feed` takes one segment and returns the events it
caused; :meth:`TcpReassembler.finish` flushes everything at the end of capture.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from heapq import heapify, heappop, heappush
from typing import Final

from wsanalyze.tcp import segment
from wsanalyze.tcp.direction import MASK, RULE_LIMIT, RULE_OVERLAP, Conn, FlowKey, Half
from wsanalyze.tcp.events import (
    ConnectionEnded,
    ConnectionStarted,
    Endpoint,
    StreamData,
    TcpEvent,
    TcpNote,
)
from wsanalyze.tcp.segment import TcpSegment

__all__ = ["TcpReassembler"]

# Final copies of the TCP flags: mypyc compiles a Final name to a C static, an
# imported one to a dict lookup at every use.
ACK: Final = segment.ACK
FIN: Final = segment.FIN
RST: Final = segment.RST
SYN: Final = segment.SYN

_CTRL: Final = SYN | FIN | RST

CLOSED_TTL: Final = 60.0
"""Seconds of capture time an ended connection keeps absorbing stray packets
(final ACK, retransmitted FIN, late RST).  Linux holds TIME-WAIT for 60 s; RFC
9293 §3.6.1 asks for 2·MSL, but the 4-tuple is in practice reused sooner."""

ACK_GRACE: Final = 64
"""Packets (of the whole capture) to wait, after an ACK passed a hole, for the
missing bytes to show up late in the capture before declaring them lost."""


def _endpoint(addr: bytes, port: int) -> Endpoint:
    """Dotted IPv4 or RFC 5952 IPv6 text (``ipaddress`` implements both)."""
    return (str(ipaddress.ip_address(addr)), port)


class _Closed:
    """An ended connection whose 4-tuple still absorbs stray packets."""

    __slots__ = ("isns", "keys", "ts")

    def __init__(self, keys: tuple[FlowKey, FlowKey], isns: tuple[int | None, int | None],
                 ts: float) -> None:
        self.keys = keys
        self.isns = isns
        self.ts = ts


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
        self._halves: dict[FlowKey, Half] = {}  # 4-tuple as sent -> its direction
        self._open: dict[int, Conn] = {}  # id -> connection, in id order
        self._lru: list[tuple[int, int, Conn]] = []  # lazy heap (last packet, id, conn)
        self._closed: dict[FlowKey, _Closed] = {}
        self._closed_fifo: deque[_Closed] = deque()
        self._next_id = 0

    # -- hot path -----------------------------------------------------------

    def feed(self, packet: int, ts: float, seg: TcpSegment) -> list[TcpEvent]:
        """Process one segment; return the events it causes, in order."""
        h = self._halves.get((seg.src, seg.sport, seg.dst, seg.dport))
        flags = seg.flags
        if h is None or flags & _CTRL:
            return self._slow(packet, ts, seg, h)
        # Known connection, no SYN/FIN/RST: the common case, kept short.  Every
        # segment that reaches here is ACK or data on a synchronized connection
        # (RFC 9293 §3.10.7.4), so only the ACK field and in-order data matter.
        conn = h.conn
        conn.last_packet = packet
        conn.last_ts = ts
        out: list[TcpEvent] | None = None
        if flags & ACK:
            if conn.wait_ack and h.dir == 0:
                conn.wait_ack = False
                if conn.syn_ts is not None:
                    conn.connect_rtt = ts - conn.syn_ts
            peer = h.peer
            peer.acked = seg.ack
            if peer.pending:
                out = []
                peer.ack_gaps(out, packet, self._ack_grace)
                peer.refresh()
        payload = seg.payload
        missing = seg.missing
        if not payload and not missing:
            # A pure ACK (two thirds of a typical capture's packets): no bytes to place.
            return out or []
        seq = seg.seq
        if seq == h.fast and not missing:
            # In order, no hole buffered, no FIN yet (Half.refresh arms h.fast only
            # then): the bytes continue the stream as they are.
            off = h.noff
            n = len(payload)
            h.noff = off + n
            h.nseq = h.fast = (seq + n) & MASK
            ev = StreamData(conn.id, h.dir, ts, packet, off, payload)
            h.remember(ev)
            if out is None:
                return [ev]
            out.append(ev)
            return out
        if out is None:
            out = []
        h.data(packet, ts, seq, payload, missing, out, self._max_buffered, self._ack_grace)
        h.refresh()
        return out

    def connection_of(self, seg: TcpSegment) -> int | None:
        """The id of the open connection ``seg`` belongs to, if any."""
        h = self._halves.get((seg.src, seg.sport, seg.dst, seg.dport))
        return None if h is None else h.conn.id

    # -- slow path ----------------------------------------------------------

    def _slow(self, packet: int, ts: float, seg: TcpSegment, h: Half | None) -> list[TcpEvent]:
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
            seq = (seq + 1) & MASK  # the SYN occupies one sequence number
            if not flags & ACK:
                if conn.syn_ts is None:
                    conn.syn_ts = ts
            elif conn.connect_rtt is None:
                conn.wait_ack = True
        if flags & ACK:
            peer.acked = seg.ack
            if peer.pending:
                peer.ack_gaps(out, packet, self._ack_grace)
        payload = seg.payload
        if payload or seg.missing:
            h.data(packet, ts, seq, payload, seg.missing, out, self._max_buffered,
                   self._ack_grace)
        if flags & FIN:
            h.fin(packet, ts, (seq + len(payload) + seg.missing) & MASK)
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
    ) -> Half | None:
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

    def _create(self, packet: int, ts: float, seg: TcpSegment, out: list[TcpEvent]) -> Half:
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
        conn = Conn(cid, keys, packet, ts)
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

    def _is_reuse(self, h: Half, seg: TcpSegment) -> bool:
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

    def _syn(self, h: Half, seg: TcpSegment) -> None:
        """Anchor stream offset 0 at ISN+1 (RFC 9293 §3.4.1)."""
        seq = seg.seq
        if h.isn != seq and (h.nseq is None or (h.noff == 0 and not h.pending)):
            h.isn = seq
            h.nseq = (seq + 1) & MASK
        peer = h.peer
        if seg.flags & ACK and peer.nseq is None:
            # A SYN/ACK acknowledges ISN+1 of the other side: its start is known
            # even though its SYN was not captured.
            peer.nseq = seg.ack & MASK
            peer.isn = (seg.ack - 1) & MASK

    # -- ending -------------------------------------------------------------

    def _close(self, conn: Conn, how: str, out: list[TcpEvent], *, remember: bool) -> None:
        """Flush, summarize and end ``conn``; optionally absorb its stragglers."""
        for h in conn.halves:
            h.drain(out)
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
            h.recent_at = 0
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

    def _remember(self, conn: Conn) -> None:
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
