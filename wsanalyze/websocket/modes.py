"""The modes of one TCP direction's reader, and how they follow each other."""

from __future__ import annotations

from enum import IntEnum


class Mode(IntEnum):
    """What a TCP direction's bytes are being read as.  The reader of each mode
    is in the decoder's ``READERS`` table; the transitions are::

        START ─► HTTP ─► BODY / CHUNKED ⇄ CHUNK_DATA ─► HTTP
          │        └──► AWAIT (Upgrade request sent) ─► WS (101) / HTTP (refused)
          └──► SCAN (no HTTP: mid-stream) ─► WS ─► SCAN (gap, garbage) ─► WS
        any ─► DEAD (not WebSocket: TLS, HTTP/2, a body to the end)
    """

    START = 0
    """Nothing seen yet."""
    HTTP = 1
    """HTTP/1.x heads and bodies."""
    BODY = 2
    """Skipping a Content-Length body."""
    CHUNKED = 3
    """Skipping a chunked body."""
    CHUNK_DATA = 4
    """Skipping one chunk's data, then back to CHUNKED."""
    AWAIT = 5
    """Client bytes after an Upgrade request, held until the response."""
    WS = 6
    """WebSocket frames."""
    SCAN = 7
    """Looking for a frame boundary (mid-stream start or after a gap)."""
    DEAD = 8
    """Not WebSocket; bytes are ignored."""
