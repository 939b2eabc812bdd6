"""Finding frame boundaries in a byte stream whose start was not seen.

A capture that starts mid-connection, or a gap that swallowed a frame header,
leaves the decoder without a frame boundary.  A random offset rarely parses as
a *chain* of plausible RFC 6455 §5.2 headers whose lengths add up to segment
boundaries, so the first offset starting such a chain is taken as the next
frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsanalyze.websocket.frames import KNOWN_OPCODES, parse_header

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


NEED_MORE = "need-more"
_BAD, _PARTIAL, _CONFIRMED = 0, 1, 2


def _chain(buf: bytes | bytearray, pos: int, masked: bool | None, rsv1_ok: bool,
           starts: frozenset[int], ends: frozenset[int]) -> tuple[int, bool | None]:
    """Follow frames from ``pos``; return (_BAD, _PARTIAL or _CONFIRMED, MASK bit).

    Evidence counts frames that carry something: empty data frames (``00 00``
    runs are common in binary payloads) are allowed but prove nothing.  A chain
    is confirmed when it ends exactly where a captured segment ends and either
    started where one started or holds two such frames — senders write frames
    whole, so frame and segment boundaries line up far more often than chance.
    """
    first = pos
    at_start = pos in starts
    evidence = 0
    in_fragment: bool | None = None  # unknown at the first frame
    size = len(buf)
    while True:
        if pos == size:
            return _PARTIAL, masked
        h = parse_header(buf, pos)
        if h is None:
            # An incomplete header: plausible if what is there is plausible.
            b0 = buf[pos]
            if (b0 & 0x30) or (b0 & 0x0F) not in KNOWN_OPCODES:
                return _BAD, masked
            return _PARTIAL, masked
        op = h.opcode
        if op not in KNOWN_OPCODES or h.rsv2 or h.rsv3 or h.length_msb or not h.minimal_length:
            return _BAD, masked
        if masked is None:
            masked = h.masked
        elif h.masked != masked:
            return _BAD, masked
        if op >= 8:
            if not h.fin or h.length > 125 or h.rsv1:
                return _BAD, masked
        else:
            if h.rsv1 and (not rsv1_ok or op == 0):
                return _BAD, masked
            if op == 0 and in_fragment is False:
                return _BAD, masked
            if op != 0 and in_fragment is True:
                return _BAD, masked
            in_fragment = not h.fin
        end = pos + h.header_length + h.length
        if end > size:
            return (_BAD if end - first > MAX_PENDING else _PARTIAL), masked
        if h.length or op >= 8:
            evidence += 1
        pos = end
        if evidence and pos in ends and (at_start or evidence >= 2):
            return _CONFIRMED, masked
        if evidence >= STRONG_FRAMES:
            return _CONFIRMED, masked


def find_frame_boundary(buf: bytes | bytearray, *, masked: bool | None, rsv1_ok: bool,
                        starts: frozenset[int], ends: frozenset[int],
                        final: bool) -> tuple[ScanResult | str | None, int]:
    """The first offset in ``buf`` that starts a confirmed chain of frames.

    ``starts``/``ends`` are the buffer offsets where captured segments start and
    end (see :func:`_chain` for what confirms a chain).  Returns the result — a
    :class:`ScanResult`, NEED_MORE when no offset is confirmed yet but some
    offset may still start a chain (never when ``final``: no more data will
    come), or None — and the first offset that may still start one (bytes
    before it can be dropped).
    """
    size = len(buf)
    first_plausible = size
    for pos in range(size):
        status, chain_masked = _chain(buf, pos, masked, rsv1_ok, starts, ends)
        if status == _CONFIRMED:
            return ScanResult(pos, bool(chain_masked)), min(first_plausible, pos)
        if status == _PARTIAL and not final and first_plausible == size:
            first_plausible = pos
    if first_plausible < size:
        return NEED_MORE, first_plausible
    return None, size
