"""HTTP/1.1 parsing for the WebSocket opening handshake (RFC 6455 §4, RFC 9112).

Only what a passive observer needs: message heads (start line and header
fields), body framing so plain requests before an Upgrade can be skipped, the
Sec-WebSocket-Accept computation and the Sec-WebSocket-Extensions grammar.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID of RFC 6455 §1.3, appended to the key to compute the accept value."""

MAX_HEAD = 64 * 1024
"""Longest HTTP head we wait for; beyond it the bytes are not a handshake."""


class HttpParseError(ValueError):
    """The bytes are not an HTTP/1.x message head."""


@dataclass(slots=True)
class HttpHead:
    """A parsed HTTP request or response head."""

    start_line: str
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
    head = HttpHead(start_line=start, headers=[], length=len(raw))
    parts = start.split(" ", 2)
    if start.startswith("HTTP/"):
        if len(parts) < 2 or not parts[1][:3].isdigit():
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


def accept_for_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 item 5.4)."""
    digest = hashlib.sha1(key.strip().encode("latin-1") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


Extension = tuple[str, list[tuple[str, str | None]]]
"""(extension name lower-cased, [(parameter name lower-cased, value or None)])."""


def parse_extensions(values: list[str]) -> list[Extension]:
    """Parse Sec-WebSocket-Extensions values (RFC 6455 §9.1 grammar, leniently).

    Quoted-string values are unquoted; the caller validates parameter values.
    """
    out: list[Extension] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            parts = _split_outside_quotes(item, ";")
            name = parts[0].strip().lower()
            if not name:
                continue
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                pname, sep, pvalue = part.partition("=")
                pname = pname.strip().lower()
                if not pname:
                    continue
                if not sep:
                    params.append((pname, None))
                    continue
                pvalue = pvalue.strip()
                if len(pvalue) >= 2 and pvalue[0] == pvalue[-1] == '"':
                    pvalue = pvalue[1:-1].replace('\\"', '"')
                params.append((pname, pvalue))
            out.append((name, params))
    return out


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()] if sep == "," else parts


@dataclass(slots=True, frozen=True)
class DeflateParams:
    """The agreed permessage-deflate parameters (RFC 7692 §7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def no_context_takeover(self, client: bool) -> bool:
        """Whether the client's (or server's) sender resets its window per message."""
        return self.client_no_context_takeover if client else self.server_no_context_takeover

    def window_bits(self, client: bool) -> int:
        """The window the client's (or server's) sender agreed to stay within."""
        return self.client_max_window_bits if client else self.server_max_window_bits


def deflate_params(params: list[tuple[str, str | None]]) -> tuple[DeflateParams, list[str]]:
    """Agreed parameters from a permessage-deflate response, and the problems found
    (RFC 7692 §7.1: known names, no repeats, window bits an integer 8..15)."""
    problems: list[str] = []
    seen: set[str] = set()
    values: dict[str, object] = {}
    for name, value in params:
        if name in seen:
            problems.append(f"parameter {name} repeated")
            continue
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                problems.append(f"{name} takes no value (got {value!r})")
            values[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None:
                # Only the client's offer may omit the client_max_window_bits value.
                problems.append(f"{name} needs a value in the response")
                continue
            if not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
                problems.append(f"{name}={value} is not an integer from 8 to 15")
                continue
            values[name] = int(value)
        else:
            problems.append(f"unknown parameter {name}")
    return DeflateParams(**values), problems  # type: ignore[arg-type]
