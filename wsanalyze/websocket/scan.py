"""Finding frame boundaries in a byte stream whose start was not seen.

A capture that starts mid-connection, or a gap that swallowed a frame header,
leaves the decoder without a frame boundary.  A random offset rarely parses as
a *chain* of plausible RFC 6455 §5.2 headers whose lengths add up to segment
boundaries, so the first offset starting such a chain is taken as the next
frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from heapq import heapify, heappop, heappush

from wsanalyze.websocket.checks import plausible, plausible_first_byte
from wsanalyze.websocket.frames import parse_header

MAX_EMPTY = 4
"""Empty data frames in a row a chain may hold (senders rarely send more; zero
bytes in payloads parse as endless runs of them)."""
STRONG_FRAMES = 16
"""Frames in a row that confirm a boundary even without a segment boundary."""
MAX_PENDING = 1 << 20
"""A candidate whose frame would end beyond this many buffered bytes is dropped
rather than waited for, so garbage cannot make us buffer without bound."""


@dataclass(slots=True, frozen=True)
class ScanResult:
    offset: int
    """Where the first frame of the chain starts (relative to the buffer)."""
    masked: bool


_BAD, _PARTIAL, _CONFIRMED = 0, 1, 2


def _chain(buf: bytes | bytearray, pos: int, masked: bool | None, rsv1_ok: bool,
           starts: frozenset[int], ends: frozenset[int]) -> tuple[int, bool | None, int]:
    """Follow frames from ``pos``; return (_BAD, _PARTIAL or _CONFIRMED, the MASK
    bit, and for _PARTIAL the buffer length the chain needs to go on).

    Evidence counts frames that carry something: empty data frames (``00 00``
    runs are common in binary payloads) are allowed but prove nothing.  A chain
    is confirmed when it ends exactly where a captured segment ends and either
    started where one started or holds two such frames — senders write frames
    whole, so frame and segment boundaries line up far more often than chance.
    """
    first = pos
    at_start = pos in starts
    evidence = 0
    empty = 0  # empty data frames in a row: runs of zero bytes parse as these
    in_fragment: bool | None = None  # unknown at the first frame
    size = len(buf)
    while True:
        if pos == size:
            return _PARTIAL, masked, size + 1
        h = parse_header(buf, pos)
        if h is None:
            # An incomplete header: plausible if what is there is plausible.
            if not plausible_first_byte(buf[pos]):
                return _BAD, masked, 0
            return _PARTIAL, masked, size + 1
        if not plausible(h, masked, rsv1_ok, in_fragment):
            return _BAD, masked, 0
        if masked is None:
            masked = h.masked
        op = h.opcode
        if op < 8:
            in_fragment = not h.fin
        end = pos + h.header_length + h.length
        if end > size:
            return (_BAD if end - first > MAX_PENDING else _PARTIAL), masked, end
        if h.length or op >= 8:
            evidence += 1
            empty = 0
        else:
            empty += 1
            if empty > MAX_EMPTY:
                return _BAD, masked, 0
        pos = end
        if evidence and pos in ends and (at_start or evidence >= 2):
            return _CONFIRMED, masked, 0
        if evidence >= STRONG_FRAMES:
            return _CONFIRMED, masked, 0


class Scanner:
    """Incremental search for the first frame boundary in a growing buffer.

    Offsets are absolute (stream offsets), since the caller drops bytes from the
    front.  A position whose chain is implausible never becomes plausible, so
    each position is examined once, and a position waiting for more bytes is
    examined again only when the bytes it waits for have come: the work stays
    linear in the bytes scanned.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[int, int]] = []
        """(buffer end the chain needs, position) of chains waiting for bytes."""
        self._done = -1
        """Positions before this one were examined."""

    def reset(self) -> None:
        self._waiting = []
        self._done = -1

    def first_pending(self, base: int) -> int | None:
        """The first position at or after ``base`` that may still start a chain."""
        live = [pos for _, pos in self._waiting if pos >= base]
        return min(live) if live else None

    def scan(self, buf: bytes | bytearray, base: int, *, masked: bool | None, rsv1_ok: bool,
             starts: frozenset[int], ends: frozenset[int], final: bool) -> ScanResult | None:
        """The first confirmed chain's start in ``buf`` (whose first byte is at
        offset ``base``), or None; ``starts``/``ends`` are buffer positions where
        captured segments start and end.  ``final``: no more bytes will come."""
        size = len(buf)
        limit = base + size
        waiting = self._waiting
        due: list[int] = []
        while waiting and (final or waiting[0][0] <= limit):
            pos = heappop(waiting)[1]
            if pos >= base:
                due.append(pos - base)
        if waiting and waiting[0][1] < base:
            waiting[:] = [w for w in waiting if w[1] >= base]
            heapify(waiting)
        due.sort()
        fresh = range(max(self._done - base, 0), size)
        self._done = limit
        for positions in (due, fresh):
            for pos in positions:
                status, chain_masked, need = _chain(buf, pos, masked, rsv1_ok, starts, ends)
                if status == _CONFIRMED:
                    self.reset()
                    return ScanResult(pos, bool(chain_masked))
                if status == _PARTIAL and not final:
                    heappush(waiting, (base + need, base + pos))
        return None
