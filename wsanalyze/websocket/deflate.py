"""permessage-deflate decompression for one direction (RFC 7692 §7.2.2).

A receiver appends 00 00 ff ff to a compressed message and inflates it as raw
DEFLATE, keeping the LZ77 window from message to message unless the sender
agreed to ``*_no_context_takeover``.  A passive observer always keeps the
window: a sender that resets its compressor never refers back, so the output is
the same, and a sender that breaks its agreement is still decoded.  A 15-bit
window decodes every stream a smaller agreed window produces, for the same
reason.
"""

from __future__ import annotations

import zlib

TAIL = b"\x00\x00\xff\xff"
WINDOW = 1 << 15
_STEP = 1 << 20
"""Inflate at most this much per zlib call so a bomb never allocates at once."""


class MessageInflater:
    """The inflate state of one direction, fed one message at a time.

    Call :meth:`begin`, then :meth:`feed` with each frame's unmasked payload, then
    :meth:`end`.  Output beyond ``max_keep`` bytes is still inflated (so the
    window stays right for the next message) and counted, but not kept.
    """

    def __init__(self, max_keep: int) -> None:
        self.max_keep = max_keep
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
        self._parts = []
        self._kept = 0
        self.total = 0
        self.error = None
        self.error_detail = ""

    def feed(self, data: bytes) -> None:
        """Inflate a piece of the compressed message."""
        if self.error is not None or not data:
            return
        if self._d is None:
            self._d = zlib.decompressobj(-15)
            self._known = 0
        d = self._d
        try:
            out = d.decompress(data, _STEP)
            self._take(out)
            while d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, _STEP)
                self._take(out)
            if d.eof:
                # A block with BFINAL set ended the DEFLATE stream (RFC 7692 §7.2.3.4);
                # what follows starts a new stream with an empty window.
                rest = d.unused_data
                self._d = None
                self.feed(rest)
        except zlib.error as exc:
            self._fail(str(exc))

    def end(self) -> bytes:
        """Finish the message (appending 00 00 ff ff) and return the kept output."""
        self.feed(TAIL)
        if self._known >= WINDOW and self.error is None:
            # The window now holds only bytes we inflated ourselves.
            self.history_lost = False
        payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        return payload

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
        if self._kept < self.max_keep:
            if self._kept + n > self.max_keep:
                out = out[: self.max_keep - self._kept]
            self._parts.append(out)
            self._kept += len(out)

    def _fail(self, detail: str) -> None:
        # Missing history explains a failure while the window is incomplete; such
        # data is undecodable because of the capture, not broken by the sender.
        lost = self.history_lost and self.lost_by_capture and self._known < WINDOW
        self.error = "capture.undecodable" if lost else "deflate.decompression-failed"
        self.error_detail = detail
        self.lose_history(by_capture=False)
