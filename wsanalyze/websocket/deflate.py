"""permessage-deflate decompression for one direction (RFC 7692 §7.2.2).

A receiver appends 00 00 ff ff to a compressed message and inflates it as raw
DEFLATE, keeping the LZ77 window from message to message unless the sender
agreed to ``*_no_context_takeover``.  A passive observer always keeps the
window: a sender that resets its compressor never refers back, so the output is
the same, and a sender that breaks its agreement is still decoded.  A 15-bit
window decodes every stream a smaller agreed window produces, for the same
reason.

Whether a sender kept its agreement is checked separately (RFC 7692 §7.1.1,
§7.1.2): a message of a ``*_no_context_takeover`` sender must inflate with an
empty window, and one of a sender limited to ``*_max_window_bits`` must inflate
with that window.  Only constrained directions pay for the check.
"""

from __future__ import annotations

import zlib

from wsanalyze import rules as R
from wsanalyze.speedups import InflateError, decompressobj  # zlib-ng when installed

TAIL = b"\x00\x00\xff\xff"
"""RFC 7692 §7.2.1: the end of a sync-flushed block, removed by the sender and
appended by the receiver (the one definition; metrics use it too)."""
WINDOW = 1 << 15
_STEP = 1 << 20
"""Inflate at most this much per zlib call so a bomb never allocates at once."""

CONTEXT_VIOLATED = R.DEFLATE_CONTEXT_TAKEOVER_VIOLATED
WINDOW_EXCEEDED = R.DEFLATE_WINDOW_BITS_EXCEEDED


class MessageInflater:
    """The inflate state of one direction, fed one message at a time.

    Call :meth:`begin`, then :meth:`feed` with each frame's unmasked payload, then
    :meth:`end`.  Output beyond ``max_keep`` bytes is still inflated (so the
    window stays right for the next message) and counted, but not kept.
    """

    def __init__(self, max_keep: int, *, no_context_takeover: bool = False,
                 window_bits: int = 15, max_inflate: int = 1 << 30) -> None:
        self.max_keep = max_keep
        self.max_inflate = max_inflate
        self.capped = False
        """This message reached ``max_inflate``: inflating stopped (a bomb)."""
        self.consumed = 0
        """Compressed bytes of this message inflated so far."""
        self.no_context_takeover = no_context_takeover
        self.window_bits = window_bits
        self._check = no_context_takeover or window_bits < 15
        self._raw: list[bytes] = []
        self._history = b""
        """The last 2**window_bits bytes inflated, for the window check."""
        self.violation: tuple[str, str] | None = None
        """(rule, detail) when the message broke the agreed parameters."""
        self._tail_fed = False
        self._d: zlib._Decompress | None = None
        self._known = 0
        """Bytes output since ``_d`` was created: its usable history."""
        self.history_lost = False
        """The window is missing data the sender's compressor had (a capture gap,
        a mid-stream start, or an earlier message that failed to inflate)."""
        self.lost_by_capture = False
        """The history was lost to the capture (gap, mid-stream), not to a failure."""
        self._parts: list[bytes] = []
        self._kept = 0
        self.total = 0
        self.error: str | None = None
        self.error_detail = ""

    def lose_history(self, *, by_capture: bool = True) -> None:
        """Forget the window: the sender's earlier output was not all seen."""
        self._d = None
        if not self.history_lost:
            self.lost_by_capture = by_capture
        self.history_lost = True

    def begin(self) -> None:
        self.capped = False
        self.consumed = 0
        self._raw = []
        self.violation = None
        self._parts = []
        self._kept = 0
        self.total = 0
        self.error = None
        self.error_detail = ""

    def feed(self, data: bytes) -> None:
        """Inflate a piece of the compressed message."""
        if self.error is not None or self.capped or not data:
            return
        if self._check:
            self._raw.append(data)
        while data:
            if self._d is None:
                self._d = decompressobj(-15)
                self._known = 0
            d = self._d
            try:
                while True:
                    # Never inflate past the cap, even within one step.
                    step = min(_STEP, self.max_inflate - self.total)
                    given = len(data)
                    out = d.decompress(data, step)
                    data = d.unconsumed_tail
                    self.consumed += given - len(data)
                    self._take(out)
                    if self.capped:
                        return
                    # A full step may leave output pending inside zlib: ask again.
                    if d.eof or (not data and len(out) < step):
                        break
            except InflateError as exc:
                self._fail(str(exc))
                return
            if not d.eof:
                return
            # A block with BFINAL set ended the DEFLATE stream (RFC 7692 §7.2.3.4);
            # what follows starts a new stream with an empty window.
            data = d.unused_data
            self._d = None

    def whole(self, data: bytes) -> None:
        """:meth:`begin` and :meth:`feed` for a message in one piece, tail included:
        one zlib call instead of two.  Finish with ``end(tail_fed=True)``."""
        self.begin()
        self.feed(data + TAIL)
        self._tail_fed = True

    def end(self) -> bytes:
        """Finish the message (appending 00 00 ff ff) and return the kept output."""
        if self._tail_fed:
            self._tail_fed = False
        else:
            self.feed(TAIL)
        if self._known >= WINDOW and self.error is None:
            # The window now holds only bytes we inflated ourselves.
            self.history_lost = False
        payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        if self._check:
            self._check_agreement(payload)
        return payload

    def _check_agreement(self, payload: bytes) -> None:
        """Re-inflate the message as the agreed parameters allow a receiver to."""
        raw = b"".join(self._raw) + TAIL
        self._raw = []
        complete = self.error is None and not self.history_lost and len(payload) == self.total \
            and not self.capped
        if complete and self.no_context_takeover:
            try:
                decompressobj(-15).decompress(raw)
            except InflateError:
                self.violation = (CONTEXT_VIOLATED, "it refers to data of an earlier message "
                                  "although the sender agreed to no context takeover")
        if complete and self.violation is None and self.window_bits < 15:
            history = b"" if self.no_context_takeover else self._history
            distance = _window_ok(raw, self.window_bits, history, self.total)
            if distance is not None:
                self.violation = (WINDOW_EXCEEDED, f"it refers back about {distance} bytes, "
                                  f"beyond the agreed window of {1 << self.window_bits} "
                                  f"bytes (max_window_bits={self.window_bits})")
        if not self.no_context_takeover and self.window_bits < 15:
            self._history = (self._history + payload)[-(1 << self.window_bits):]

    def abandon(self) -> bytes:
        """The rest of the message was lost: return what was inflated so far; the
        window is unknown from here on."""
        payload = b"".join(self._parts)
        self._parts = []
        self.lose_history()
        return payload

    def _take(self, out: bytes) -> None:
        n = len(out)
        if not n:
            return
        self.total += n
        self._known += n
        if self.total >= self.max_inflate:
            # A decompression bomb: stop here.  The window is incomplete from now on.
            self.capped = True
            self.lose_history()
        if self._kept < self.max_keep:
            if self._kept + n > self.max_keep:
                out = out[: self.max_keep - self._kept]
            self._parts.append(out)
            self._kept += len(out)

    def _fail(self, detail: str) -> None:
        # Missing history explains a failure while the window is incomplete; such
        # data is undecodable because of the capture, not broken by the sender.
        lost = self.history_lost and self.lost_by_capture and self._known < WINDOW
        self.error = R.CAPTURE_UNDECODABLE if lost else R.DEFLATE_DECOMPRESSION_FAILED
        self.error_detail = detail
        self.lose_history(by_capture=False)


def _window_ok(raw: bytes, bits: int, history: bytes, total: int) -> int | None:
    """Inflate ``raw`` (``total`` bytes once inflated) with a 2**bits window; None
    if it fits, else a distance hint.

    zlib only rejects a distance that reaches beyond its window *and* beyond
    the output of the current call, so output is taken in small steps: a
    reference more than ``step`` bytes beyond the window is always caught.  The
    step grows with big messages so that the check stays within 4096 calls.
    """
    size = 1 << bits
    step = max(8, size >> 4, total >> 12)
    d = decompressobj(-bits, zdict=history) if history else decompressobj(-bits)
    data = raw
    try:
        while True:
            out = d.decompress(data, step)
            data = d.unconsumed_tail
            # After the end of a stream (BFINAL) zlib leaves the rest unconsumed.
            if d.eof or (not data and len(out) < step):
                return None
    except InflateError:
        return size + step
