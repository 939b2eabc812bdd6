"""A crafted connection whose every output value is known from how it was built.

:func:`build` writes one permessage-deflate WebSocket connection (compressed and
plain messages, a fragmented message, a ping and its pong, one non-minimal length
and one frame with RSV2 set, a closing handshake whose two Close frames differ) and
returns :class:`Reference`: the rows of the connections, messages, frames and
violations tables as OUTPUTS.md defines them, computed from the crafted bytes and
packet timestamps, never from wsanalyze.  Timestamps are float seconds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.pcaptools import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Direction,
    ws_close_payload,
)
from tests.rulecases import HOST, Session

PMD = "permessage-deflate"
CLIENT = "192.0.2.10:50712"
SERVER = "198.51.100.20:8080"
SUBPROTOCOL = "feed.v2"


@dataclass
class Reference:
    path: Path
    connections: list[dict[str, Any]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    """Decoded payload of each messages row (its ``payload_b64`` decoded)."""


class _Builder:
    def __init__(self) -> None:
        self.s = Session()
        self.messages: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.payloads: list[bytes] = []
        self.offsets: dict[Direction, int] = {"c2s": 0, "s2c": 0}

    def ts(self, packet: int) -> float:
        return self.s.conv.frames[packet - 1].ts

    def message(self, direction: Direction, kind: str, opcode: int, parts: list[bytes], *,
                compress: bool = False, extra_header: dict[str, Any] | None = None,
                **row: Any) -> dict[str, Any]:
        """Send one message as ``len(parts)`` frames in one write; record its rows."""
        s = self.s
        payload = b"".join(parts)
        wire_parts = [s.deflate(direction, payload)] if compress else parts
        if compress and len(parts) > 1:  # split the compressed bytes as the parts are split
            data, cuts, pos = wire_parts[0], [], 0
            for p in parts[:-1]:
                pos = min(pos + len(p) // 2, len(data))
                cuts.append(pos)
            wire_parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        frames = []
        for i, part in enumerate(wire_parts):
            kw = dict(extra_header or {}) if i == 0 else {}
            frames.append(s.frame(direction, opcode if i == 0 else OP_CONT, part,
                                  fin=i == len(wire_parts) - 1, rsv1=compress and i == 0, **kw))
        sent = s.send(direction, *frames)
        index = len(self.messages)
        for i, (raw, part, where) in enumerate(zip(frames, wire_parts, sent, strict=True)):
            masked = direction == "c2s"
            header = len(raw) - len(part)
            self.frames.append(dict(
                direction=direction, index=len(self.frames), ts=self.ts(where.first),
                fin=i == len(frames) - 1, rsv1=compress and i == 0,
                rsv2=bool((extra_header or {}).get("rsv2")) and i == 0, rsv3=False,
                opcode=opcode if i == 0 else OP_CONT, masked=masked,
                mask_key=raw[header - 4:header].hex() if masked else None,
                header_bytes=header, packet=where.first, payload_length=len(part),
                stream_offset=self.offsets[direction], message=index))
            self.offsets[direction] += len(raw)
        text = payload.decode() if kind == "text" else None
        rec = dict(
            direction=direction, index=index, ts_start=self.ts(sent[0].first),
            ts=self.ts(sent[-1].last), packet=sent[-1].last, type=kind, frames=len(frames),
            compressed=compress, wire_bytes=sum(map(len, frames)),
            raw_length=sum(map(len, wire_parts)), length=len(payload),
            payload_b64=base64.b64encode(payload).decode(), truncated=False, text=text,
            close_code=None, close_reason=None, complete=True, error=None)
        rec.update(row)
        self.messages.append(rec)
        self.payloads.append(payload)
        return rec


TEXT_C2S = '{"op": "subscribe", "topics": ["prices.ACME", "prices.INITECH"], "note": "héllo"}'
TEXT_S2C = ('{"type": "snapshot", "rows": [' + ", ".join(
    f'{{"sym": "ACME", "px": {100 + i}, "qty": {i * 7}}}' for i in range(40)) + "]}")
BINARY = bytes((i * 37 + 11) % 256 for i in range(300))
FRAGMENTED = ["€uro ", "zone ", "update " * 30]


def build(path: Path) -> Reference:
    b = _Builder()
    s = b.s
    conv = s.conv
    req, resp = s.upgrade(extensions=PMD, response_extensions=PMD,
                          protocols=["feed.v1", SUBPROTOCOL], protocol=SUBPROTOCOL)
    # compressed text from the client, compressed text from the server
    b.message("c2s", "text", OP_TEXT, [TEXT_C2S.encode()], compress=True)
    b.message("s2c", "text", OP_TEXT, [TEXT_S2C.encode()], compress=True)
    # an uncompressed binary (RSV1 clear is allowed with permessage-deflate)
    b.message("s2c", "binary", OP_BINARY, [BINARY])
    # a compressed text in three fragments
    b.message("s2c", "text", OP_TEXT, [p.encode() for p in FRAGMENTED], compress=True)
    # a ping and its pong
    b.message("c2s", "ping", OP_PING, [b"hb-1"])
    b.message("s2c", "pong", OP_PONG, [b"hb-1"])
    # a 20-byte binary with a 16-bit length (warning), a 5-byte one with RSV2 (error)
    warn = b.message("s2c", "binary", OP_BINARY, [b"0123456789abcdefghij"],
                     extra_header={"length_encoding": "16"})
    err = b.message("c2s", "binary", OP_BINARY, [b"rsv-2"], extra_header={"rsv2": True})
    # the closing handshake: the client's Close comes first and differs from the reply
    first = ws_close_payload(1001, "going away")
    b.message("c2s", "close", OP_CLOSE, [first], close_code=1001, close_reason="going away")
    b.message("s2c", "close", OP_CLOSE, [ws_close_payload(1000, "ok")], close_code=1000,
              close_reason="ok")
    # ts_end: the second FIN.  The final ACK after it is not counted (wsanalyze ends the
    # connection when both FINs are in; OUTPUTS.md says "last packet": see README, Tests).
    fin = conv.close("s2c")
    conv.write(path)

    for rec in b.messages + b.frames:
        rec.update(connection=0, client=CLIENT, server=SERVER)
    data = [m for m in b.messages if m["type"] in ("text", "binary")]
    stream = {d: len(s.stream(d)) for d in ("c2s", "s2c")}
    assert stream == b.offsets
    conn = dict(
        connection=0, client=CLIENT, server=SERVER, ts_start=b.ts(1), ts_end=b.ts(fin[1]),
        host=HOST, path="/feed?v=2", origin=f"https://{HOST}", user_agent="rulecases/1.0",
        subprotocols_offered=["feed.v1", SUBPROTOCOL], subprotocol=SUBPROTOCOL,
        extensions_offered=PMD, extensions=PMD, handshake="ok",
        handshake_rtt=b.ts(resp[-1]) - b.ts(req[-1]), deflate=True, close_code=1001,
        close_reason="going away", end="close-handshake",
        messages_c2s=sum(m["direction"] == "c2s" for m in data),
        messages_s2c=sum(m["direction"] == "s2c" for m in data),
        bytes_c2s=stream["c2s"], bytes_s2c=stream["s2c"], violations=1,
        tcp_connect_rtt=b.ts(3) - b.ts(1))

    def violation(rule: str, severity: str, ref: str, msg: dict[str, Any]) -> dict[str, Any]:
        frame = next(f for f in b.frames if f["message"] == msg["index"])
        return dict(connection=0, client=CLIENT, server=SERVER, direction=msg["direction"],
                    ts=frame["ts"], packet=frame["packet"], rule=rule, severity=severity,
                    reference=ref, frame=frame["index"], stream_offset=frame["stream_offset"])

    violations = [violation("frame.non-minimal-length", "warning", "RFC 6455 §5.2", warn),
                  violation("frame.reserved-bits", "error", "RFC 6455 §5.2", err)]
    return Reference(path, [conn], b.messages, b.frames, violations, b.payloads)
