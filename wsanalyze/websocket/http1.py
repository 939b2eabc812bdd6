"""HTTP/1.x as a passive observer reads it before the WebSocket Upgrade (RFC 9112).

Message heads (start line and header fields), and the readers of one TCP
direction's bytes while it carries HTTP: a reader per :class:`Mode`, in the
``READERS`` table the decoder dispatches on (like h11's ``READERS``).  Bodies are
skipped by their framing (Content-Length or chunked, RFC 9112 §6.3, §7.1) so
plain requests before an Upgrade do not hide it.  A reader returns True when it
made progress (call again: the mode may have changed), False when it needs
more bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wsanalyze import rules as R
from wsanalyze.websocket.modes import Mode

if TYPE_CHECKING:
    from wsanalyze.websocket.decoder import ConnectionDecoder
    from wsanalyze.websocket.state import Side

MAX_HEAD = 64 * 1024
"""Longest HTTP head we wait for; beyond it the bytes are not a handshake."""


class HttpParseError(ValueError):
    """The bytes are not an HTTP/1.x message head."""


@dataclass(slots=True)
class HttpHead:
    """A parsed HTTP request or response head."""

    headers: list[tuple[str, str]]
    """(lower-cased name, value with surrounding whitespace removed), in order."""
    method: str | None = None
    target: str | None = None
    version: str = ""
    status: int | None = None
    reason: str = ""
    length: int = 0
    """Bytes of the head, including the final empty line."""
    _index: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def get_all(self, name: str) -> list[str]:
        """Every value of a header field (names are case-insensitive, RFC 9110 §5.1)."""
        return self._index.get(name.lower(), [])

    def get(self, name: str) -> str | None:
        """The field's values combined as one comma-separated list (RFC 9110 §5.3)."""
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        """The comma-separated list elements of a field, lower-cased (RFC 9110 §5.6.1)."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    @property
    def is_request(self) -> bool:
        return self.method is not None


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Offset just past the empty line ending a head, or -1 if not there yet.

    Bare LF line endings are tolerated (RFC 9112 §2.2 allows recipients to).
    """
    end = buf.find(b"\r\n\r\n", start)
    lf = buf.find(b"\n\n", start)
    if end < 0:
        return -1 if lf < 0 else lf + 2
    if 0 <= lf < end:
        return lf + 2
    return end + 4


def parse_head(raw: bytes) -> HttpHead:
    """Parse a complete head (start line, header fields, empty line)."""
    text = raw.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    # RFC 9112 §2.2: a recipient SHOULD ignore empty lines before the start line.
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise HttpParseError("empty HTTP head")
    start = lines[0]
    head = HttpHead(headers=[], length=len(raw))
    parts = start.split(" ", 2)
    if start.startswith("HTTP/"):
        # isascii(): str.isdigit() also accepts "³" and other digits int() refuses.
        if len(parts) < 2 or not (parts[1][:3].isascii() and parts[1][:3].isdigit()):
            raise HttpParseError(f"bad status line {start!r}")
        head.version = parts[0][5:]
        head.status = int(parts[1][:3])
        head.reason = parts[2] if len(parts) > 2 else ""
    else:
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise HttpParseError(f"bad request line {start!r}")
        head.method, head.target, version = parts
        head.version = version[5:]
    name = ""
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and head.headers:
            # Obsolete line folding (RFC 9112 §5.2): join with a space.
            name, value = head.headers[-1]
            head.headers[-1] = (name, f"{value} {line.strip()}")
            head._index[name][-1] = head.headers[-1][1]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpParseError(f"bad header line {line!r}")
        name = name.strip().lower()
        value = value.strip()
        head.headers.append((name, value))
        head._index.setdefault(name, []).append(value)
    return head


METHOD_PREFIXES = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ",
                   b"CONNECT ", b"TRACE ")
_STARTS = (*METHOD_PREFIXES, b"HTTP/1.")
HELD_LIMIT = 1 << 20
"""Client bytes held while waiting for the answer to an Upgrade request."""


def may_be_request(buf: bytes | bytearray) -> bool:
    """The bytes start (or could start) an HTTP request line."""
    head = bytes(buf[:8])
    return any(p.startswith(head) or head.startswith(p) for p in METHOD_PREFIXES)


# ------------------------------------------------------------------ readers
def read_start(dec: ConnectionDecoder, side: Side) -> bool:
    """START: decide from a direction's first bytes whether they are HTTP or frames."""
    head = bytes(side.buf[:8])
    if len(head) < 8:
        if any(p.startswith(head) or head.startswith(p) for p in _STARTS):
            return False  # may still become an HTTP start line
        dec.not_handshake(side)
        return True
    if head.startswith(_STARTS):
        side.mode = Mode.HTTP
    elif head[:2] in (b"\x16\x03", b"\x17\x03", b"\x15\x03") or head.startswith(b"PRI * HT"):
        # TLS records or HTTP/2: not WebSocket over cleartext TCP.
        side.mode = Mode.DEAD
        dec.not_websocket = True
    else:
        dec.not_handshake(side)
    return True


def read_head(dec: ConnectionDecoder, side: Side) -> bool:
    """HTTP: the next request or response head."""
    buf = side.buf
    limit = dec.limits.max_http_head
    end = find_head_end(buf)
    if end < 0 or end > limit:
        if end > 0 or len(buf) > limit:
            packet, ts = side.locate(side.buf_off)
            dec.violation(R.CAPTURE_LIMIT, side.ws_dir, ts, packet,
                          f"an HTTP head starting in packet {packet} is longer than {limit} "
                          "bytes (--limit-http-head); it is not followed")
            not_http(side)
            side.scan_reason = "limit"
            return True
        return False
    try:
        head = parse_head(bytes(buf[:end]))
    except HttpParseError:
        not_http(side)
        return True
    last_packet, last_ts = side.locate(side.buf_off + end - 1)
    side.consume(end)
    dec.on_head(side, head, last_ts, last_packet)
    return True


def read_body(dec: ConnectionDecoder, side: Side) -> bool:
    """BODY and CHUNK_DATA: skip ``body_left`` bytes, then back to HTTP (CHUNKED)."""
    take = min(side.body_left, len(side.buf))
    side.consume(take)
    side.body_left -= take
    if side.body_left:
        return False
    side.mode = Mode.CHUNKED if side.mode == Mode.CHUNK_DATA else Mode.HTTP
    return True


def read_chunk_line(dec: ConnectionDecoder, side: Side) -> bool:
    """CHUNKED: a chunk-size line (RFC 9112 §7.1), or the last chunk and trailers."""
    buf = side.buf
    line_end = buf.find(b"\r\n")
    if line_end < 0:
        if len(buf) > 1024:
            not_http(side)
            return True
        return False
    size_text = bytes(buf[:line_end]).split(b";")[0].strip()
    try:
        size = int(size_text, 16)
    except ValueError:
        not_http(side)
        return True
    if size == 0:
        # Last chunk, then optional trailer fields and an empty line.
        end = buf.find(b"\r\n\r\n", line_end)
        if end < 0:
            if len(buf) > dec.limits.max_http_head:
                not_http(side)
                return True
            return False
        side.consume(end + 4)
        side.mode = Mode.HTTP
        return True
    side.consume(line_end + 2)
    side.body_left = size + 2  # the chunk's data and its CRLF
    side.mode = Mode.CHUNK_DATA
    return True


def read_held(dec: ConnectionDecoder, side: Side) -> bool:
    """AWAIT: client bytes after an Upgrade request wait for the response."""
    if len(side.buf) > HELD_LIMIT:
        # The answer never came: treat what follows as frames anyway.
        side.mode = Mode.SCAN
        return True
    return False


def not_http(side: Side) -> None:
    """The bytes stopped looking like HTTP: look for frames instead."""
    side.mode = Mode.SCAN
    side.scan_reason = "mid-stream"


def body_mode(dec: ConnectionDecoder, side: Side, head: HttpHead, *,
              response_to: str | None) -> None:
    """After a head: skip its message body (RFC 9112 §6.3)."""
    status = head.status
    if head.is_request:
        has_body = head.get("content-length") is not None or head.get(
            "transfer-encoding") is not None
    else:
        has_body = not (response_to == "HEAD" or status in (204, 304) or
                        (status is not None and 100 <= status < 200))
    if not has_body:
        side.mode = Mode.HTTP
        return
    if "chunked" in head.tokens("transfer-encoding"):
        side.mode = Mode.CHUNKED
        return
    length = head.get_all("content-length")
    if length and length[0].strip().isdigit():
        side.body_left = int(length[0].strip())
        side.mode = Mode.BODY if side.body_left else Mode.HTTP
        return
    if head.is_request:
        side.mode = Mode.HTTP
    else:
        # The body runs to the end of the connection: nothing else follows.
        side.mode = Mode.DEAD
        side.drop_buffer()
