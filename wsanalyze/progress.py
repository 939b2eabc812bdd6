"""The progress line on standard error (only when it is a terminal).

With the capture's size known (a plain file), it shows the percentage read and
an estimate of the time left; otherwise packets and rate.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable


def file_size(path: str) -> int | None:
    """Size of a regular file, None for pipes, devices and what cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    import stat

    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_size > 0 else None


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress:
    """``tick(packets)`` as records flow; ``done()`` clears the line."""

    def __init__(self, enabled: bool, size: int | None = None,
                 position: Callable[[], int | None] | None = None) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.size = size
        self.position = position
        self.start = time.monotonic()
        self.next = self.start + 1.0
        self.shown = False

    def line(self, packets: int, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        text = f"{packets:,} packets ({packets / elapsed:,.0f}/s)"
        done = self.position() if self.position and self.size else None
        if done and self.size:
            fraction = min(done / self.size, 1.0)
            text = f"{fraction:.0%} {text}"
            if fraction > 0.01:
                text += f", {_duration(elapsed * (1 - fraction) / fraction)} left"
        return text

    def tick(self, packets: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self.next:
            return
        self.next = now + 0.5
        sys.stderr.write(f"\r{self.line(packets, now)}…\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def message(self, text: str) -> None:
        """A free-form progress text (for steps that are not packet counts)."""
        if self.enabled:
            sys.stderr.write(f"\r{text}\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False
