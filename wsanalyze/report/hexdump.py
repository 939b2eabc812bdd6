"""An annotated hex dump of one WebSocket frame: its header field by field and its
first payload bytes (unmasked), with the field a rule is about pointed out."""

from __future__ import annotations

from dataclasses import dataclass

OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
PAYLOAD_SHOWN = 48

# The header field (or payload part) each rule is about.
_RULE_FIELD = {
    "frame.client-unmasked": "mask", "frame.server-masked": "mask",
    "frame.reserved-bits": "flags", "frame.reserved-opcode": "flags",
    "deflate.rsv1-on-continuation": "flags", "deflate.rsv1-on-control": "flags",
    "control.fragmented": "flags", "fragment.unexpected-continuation": "flags",
    "fragment.interleaved": "flags",
    "frame.non-minimal-length": "length", "frame.length-msb": "length",
    "control.too-long": "length", "message.too-big": "length",
    "close.one-byte-payload": "payload", "close.invalid-code": "payload",
    "close.invalid-reason-utf8": "payload", "text.invalid-utf8": "payload",
    "deflate.decompression-failed": "payload", "deflate.context-takeover-violated": "payload",
    "deflate.window-bits-exceeded": "payload", "pong.payload-mismatch": "payload",
    "close.data-after-close": "flags", "ping.unanswered": "flags",
}


@dataclass(frozen=True)
class Field:
    start: int
    """Offset of the field's first byte in the frame."""
    end: int
    """Offset after its last byte."""
    name: str
    value: str
    offending: bool = False


@dataclass(frozen=True)
class FrameDump:
    header: bytes
    payload: bytes
    """The first payload bytes, unmasked (at most PAYLOAD_SHOWN)."""
    payload_length: int
    fields: tuple[Field, ...]
    rule: str

    def text_lines(self) -> list[str]:
        """The dump as fixed-width text: header bytes, one line per field with carets
        under its bytes, then the payload as offset/hex/ASCII rows."""
        hexes = " ".join(f"{b:02x}" for b in self.header)
        lines = [f"header   {hexes}"]
        for f in self.fields:
            if f.start >= len(self.header):
                continue
            pad = " " * (9 + 3 * f.start)
            carets = "^" * (3 * (f.end - f.start) - 1)
            mark = "   ◀ " + self.rule if f.offending else ""
            lines.append(f"{pad}{carets} {f.name} {f.value}{mark}")
        shown = len(self.payload)
        offending_payload = any(f.offending and f.name == "payload" for f in self.fields)
        lines.append(f"payload  {shown} of {self.payload_length} bytes, unmasked"
                     + (f"   ◀ {self.rule}" if offending_payload else ""))
        lines.extend(hex_rows(self.payload))
        return lines


def hex_rows(data: bytes, width: int = 16) -> list[str]:
    rows = []
    for i in range(0, len(data), width):
        chunk = data[i:i + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        rows.append(f"  {i:04x}   {hexes:<{width * 3 - 1}}  |{text}|")
    return rows


def header_length(data: bytes) -> int | None:
    """Length of the frame header at the start of ``data`` (None if cut short)."""
    if len(data) < 2:
        return None
    n = 2 + {126: 2, 127: 8}.get(data[1] & 0x7F, 0) + (4 if data[1] & 0x80 else 0)
    return n if len(data) >= n else None


def parse(data: bytes, rule: str) -> FrameDump | None:
    """Dissect the frame at the start of ``data`` (header plus payload bytes)."""
    hlen = header_length(data)
    if hlen is None:
        return None
    b0, b1 = data[0], data[1]
    code = b1 & 0x7F
    ext = {126: 2, 127: 8}.get(code, 0)
    length = int.from_bytes(data[2:2 + ext], "big") if ext else code
    masked = bool(b1 & 0x80)
    key = data[2 + ext:6 + ext] if masked else b""
    raw = data[hlen:hlen + min(length, PAYLOAD_SHOWN)]
    payload = bytes(c ^ key[i % 4] for i, c in enumerate(raw)) if masked else bytes(raw)
    where = _RULE_FIELD.get(rule)
    op = b0 & 0x0F
    flags = (f"FIN={b0 >> 7} RSV1={b0 >> 6 & 1} RSV2={b0 >> 5 & 1} RSV3={b0 >> 4 & 1} "
             f"opcode=0x{op:x} ({OPCODES.get(op, 'reserved')})")
    fields = [Field(0, 1, "flags", flags, where == "flags"),
              Field(1, 2, "mask/len", f"MASK={int(masked)} len7={code}",
                    where == "mask" or (where == "length" and not ext))]
    if ext:
        fields.append(Field(2, 2 + ext, "extended length", str(length), where == "length"))
    if masked:
        fields.append(Field(2 + ext, 6 + ext, "masking key", key.hex(), False))
    fields.append(Field(hlen, hlen + len(payload), "payload", "", where == "payload"))
    return FrameDump(bytes(data[:hlen]), payload, length, tuple(fields), rule)


def matches(dump: FrameDump, frame: dict) -> bool:
    """Whether ``dump`` is the frame the frames-table row describes."""
    b0 = dump.header[0]
    return (bool(b0 & 0x80) == bool(frame["fin"]) and (b0 & 0x0F) == int(frame["opcode"])
            and bool(dump.header[1] & 0x80) == bool(frame["masked"])
            and dump.payload_length == int(frame["payload_length"])
            and len(dump.header) == int(frame["header_bytes"]))


# The header field of the handshake each rule is about (lower case), or None for the
# start line.
_RULE_HEADER = {
    "handshake.request-invalid": None, "handshake.rejected": None,
    "handshake.bad-key": "sec-websocket-key", "handshake.bad-version": "sec-websocket-version",
    "handshake.bad-accept": "sec-websocket-accept",
    "handshake.response-invalid": "upgrade",
    "handshake.unrequested-subprotocol": "sec-websocket-protocol",
    "handshake.unrequested-extension": "sec-websocket-extensions",
    "deflate.bad-negotiation": "sec-websocket-extensions",
}
MAX_HEAD_LINES = 40
HEAD_RULES = frozenset(_RULE_HEADER)


def http_head_lines(head: bytes, rule: str) -> list[str]:
    """The HTTP head (the last one when there are several), one line per header
    field, the line the rule is about marked (or a note when the field is missing)."""
    text = head.decode("latin-1")
    heads = [h for h in text.split("\r\n\r\n") if h.strip()]
    if not heads:
        return []
    lines = heads[-1].split("\r\n")[:MAX_HEAD_LINES]
    wanted = _RULE_HEADER.get(rule, "")
    out = []
    marked = False
    for i, line in enumerate(lines):
        name = line.split(":", 1)[0].strip().lower()
        hit = (wanted is None and i == 0) or (bool(wanted) and i > 0 and name == wanted)
        shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)
        out.append(f"{shown}   ◀ {rule}" if hit else shown)
        marked = marked or hit
    if wanted and not marked:
        out.append(f"(no {wanted} header field)   ◀ {rule}")
    return out


def raw_lines(data: bytes, rule: str) -> list[str]:
    """Bytes the decoder could not follow as a frame: dissected when they read as a
    frame header, else as plain hex rows."""
    dump = parse(data, rule)
    if dump is None:
        return [f"bytes    ◀ {rule}", *hex_rows(data[:PAYLOAD_SHOWN])]
    lines = dump.text_lines()
    if not any(f.offending for f in dump.fields):
        what = ("decoding resumed at this frame" if rule == "frame.resynchronised"
                else "read as a frame header (the decoder did not follow it)")
        lines.insert(0, f"{what}   ◀ {rule}")
    return lines
