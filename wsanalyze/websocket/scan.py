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

CONFIRM_FRAMES = 3
"""Complete frames in a row that confirm a boundary on their own."""
MAX_PENDING = 1 << 20
"""A candidate whose frame would end beyond this many buffered bytes is dropped
rather than waited for, so garbage cannot make us buffer without bound."""


@dataclass(slots=True, frozen=True)
class ScanResult:
    offset: int
    """Where the first frame of the chain starts (relative to the buffer)."""
    masked: bool


NEED_MORE = "need-more"


def _chain(buf: bytes | bytearray, pos: int, masked: bool | None, rsv1_ok: bool,
           ends: frozenset[int]) -> tuple[int, bool, bool, bool | None]:
    """Follow frames from ``pos``.

    Returns (complete frames, ended exactly at the buffer end or inside a
    plausible incomplete frame, a complete frame ended on a segment end, the
    chain's MASK bit); complete frames is -1 when a header is implausible.
    """
    n = 0
    on_boundary = False
    in_fragment: bool | None = None  # unknown at the first frame
    size = len(buf)
    while True:
        if pos == size:
            return n, True, on_boundary, masked
        h = parse_header(buf, pos)
        if h is None:
            # An incomplete header: plausible if what is there is plausible.
            b0 = buf[pos]
            if (b0 & 0x30) or (b0 & 0x0F) not in KNOWN_OPCODES:
                return -1, False, on_boundary, masked
            return n, True, on_boundary, masked
        op = h.opcode
        if op not in KNOWN_OPCODES or h.rsv2 or h.rsv3 or h.length_msb or not h.minimal_length:
            return -1, False, on_boundary, masked
        if masked is None:
            masked = h.masked
        elif h.masked != masked:
            return -1, False, on_boundary, masked
        if op >= 8:
            if not h.fin or h.length > 125 or h.rsv1:
                return -1, False, on_boundary, masked
        else:
            if h.rsv1 and (not rsv1_ok or op == 0):
                return -1, False, on_boundary, masked
            if op == 0 and in_fragment is False:
                return -1, False, on_boundary, masked
            if op != 0 and in_fragment is True:
                return -1, False, on_boundary, masked
            in_fragment = not h.fin
        end = pos + h.header_length + h.length
        if end > size:
            if end - pos > MAX_PENDING:
                return -1, False, on_boundary, masked
            return n, True, on_boundary, masked
        n += 1
        pos = end
        if pos in ends:
            on_boundary = True
        if n >= CONFIRM_FRAMES:
            return n, True, on_boundary, masked


def find_frame_boundary(buf: bytes | bytearray, *, masked: bool | None, rsv1_ok: bool,
                        starts: frozenset[int], ends: frozenset[int],
                        final: bool) -> tuple[ScanResult | str | None, int]:
    """The first offset in ``buf`` that starts a confirmed chain of frames.

    ``starts``/``ends`` are the buffer offsets where captured segments start and
    end.  Confirmation: three complete frames, or a complete frame ending on a
    segment end when the chain also starts on a segment start (or has two
    frames); when ``final`` (no more data will come) one complete frame ending
    on a segment end is enough.

    Returns the result — a :class:`ScanResult`, NEED_MORE when no offset is
    confirmed yet but some offset may still start a chain, or None — and the
    first offset that may still start one (bytes before it can be dropped).
    """
    size = len(buf)
    first_plausible = size
    for pos in range(size):
        n, ok, on_boundary, chain_masked = _chain(buf, pos, masked, rsv1_ok, ends)
        if n < 0 or not ok:
            continue
        if (n >= 1 and on_boundary and (final or pos in starts or n >= 2)) or n >= CONFIRM_FRAMES:
            return ScanResult(pos, bool(chain_masked)), min(first_plausible, pos)
        if not final and size - pos <= MAX_PENDING and first_plausible == size:
            first_plausible = pos
    if first_plausible < size:
        return NEED_MORE, first_plausible
    return None, size
