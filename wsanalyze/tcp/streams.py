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

from wsanalyze.tcp.segment import ACK, FIN, RST, SYN, TcpSegment

FORGET_AFTER = 600.0
"""Seconds a closed conversation is remembered (a late retransmission of it keeps
its number; Wireshark keeps them forever, which no streaming reader can)."""
_PRUNE_EVERY = 65_536

Key = tuple[bytes, int, bytes, int]


class StreamNumbers:
    """``number(seg, ts)`` → the ``tcp.stream`` index of ``seg``'s conversation."""

    __slots__ = ("_count", "_next", "_streams")

    def __init__(self) -> None:
        self._streams: dict[Key, list[float | int | bool]] = {}
        """Canonical 4-tuple → [index, closing seen, last timestamp]."""
        self._next = 0
        self._count = 0

    def number(self, seg: TcpSegment, ts: float) -> int:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        key: Key = (*a, *b) if a <= b else (*b, *a)
        entry = self._streams.get(key)
        flags = seg.flags
        if entry is None or (entry[1] and flags & SYN and not flags & ACK):
            entry = self._streams[key] = [self._next, False, ts]
            self._next += 1
        if flags & (FIN | RST):
            entry[1] = True
        entry[2] = ts
        self._count += 1
        if self._count % _PRUNE_EVERY == 0:
            self._prune(ts)
        return int(entry[0])

    def _prune(self, now: float) -> None:
        stale = [k for k, (_, closing, last) in self._streams.items()
                 if closing and now - float(last) > FORGET_AFTER]
        for k in stale:
            del self._streams[k]
