"""Wireshark's ``tcp.stream`` numbers, so that a connection can be found there.

Wireshark gives every TCP conversation an index, 0, 1, 2, ... in the order of
its first packet, counting every TCP conversation in the capture (WebSocket or
not, complete or a lone stray segment).  A SYN (without ACK) on a 4-tuple whose
conversation already saw a FIN or RST starts a new conversation (port reuse).

:class:`StreamNumbers` is fed every TCP segment of the capture — before
``--jobs`` sharding, so that every worker counts the same way — and answers the
index of the conversation the segment belongs to.  Closed conversations are
forgotten once idle for :data:`FORGET_AFTER` seconds of capture time, so memory
follows the open conversations, not the capture.
"""

from __future__ import annotations

from typing import Final

from wsanalyze.tcp import segment
from wsanalyze.tcp.segment import TcpSegment

FORGET_AFTER: Final = 600.0
"""Seconds a closed conversation is remembered (a late retransmission of it keeps
its number; Wireshark keeps them forever, which no streaming reader can)."""
_PRUNE_EVERY: Final = 65_536

# Final copies of the TCP flags: mypyc compiles a Final name to a C static, an
# imported one to a dict lookup at every use.
ACK: Final = segment.ACK
FIN: Final = segment.FIN
RST: Final = segment.RST
SYN: Final = segment.SYN

Key = tuple[bytes, int, bytes, int]


class _Conversation:
    """One conversation's number and what pruning needs, shared by both directions."""

    __slots__ = ("closing", "index", "last")

    def __init__(self, index: int, ts: float) -> None:
        self.index = index
        self.closing = False
        """A FIN or RST was seen: a SYN (without ACK) now starts a new conversation."""
        self.last = ts
        """Timestamp of its latest segment."""


class StreamNumbers:
    """``number(seg, ts)`` → the ``tcp.stream`` index of ``seg``'s conversation."""

    __slots__ = ("_count", "_next", "_streams")

    def __init__(self) -> None:
        self._streams: dict[Key, _Conversation] = {}
        """4-tuple as sent → its conversation.  Both directions' 4-tuples are keys of
        the same entry, so a segment costs one lookup of the tuple its header gives
        (no canonical ordering of the endpoints, no second tuple)."""
        self._next = 0
        self._count = 0

    def number(self, seg: TcpSegment, ts: float) -> int:
        src = seg.src
        sport = seg.sport
        dst = seg.dst
        dport = seg.dport
        streams = self._streams
        entry = streams.get((src, sport, dst, dport))
        flags = seg.flags
        if entry is None or (entry.closing and flags & SYN and not flags & ACK):
            entry = _Conversation(self._next, ts)
            streams[(src, sport, dst, dport)] = entry
            streams[(dst, dport, src, sport)] = entry
            self._next += 1
        if flags & (FIN | RST):
            entry.closing = True
        entry.last = ts
        self._count += 1
        if self._count % _PRUNE_EVERY == 0:
            self._prune(ts)
        return entry.index

    def _prune(self, now: float) -> None:
        # Both keys of a stale conversation are stale: each is deleted on its own.
        stale = [k for k, c in self._streams.items()
                 if c.closing and now - c.last > FORGET_AFTER]
        for k in stale:
            del self._streams[k]
