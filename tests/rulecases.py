"""One realistic capture per violation rule of the registry, and the legal near-misses.

Every case is a small function that crafts one TCP connection with
:mod:`tests.pcaptools` — 3-way handshake, HTTP upgrade, MSS-sized segments with
delayed ACKs, client frames masked with a fresh key each, frames split across
segments and segments carrying several frames, a closing handshake and FIN —
breaks one rule, and returns a :class:`RuleCase` that says what wsanalyze must
report: the error/warning rows and info rows as ``(rule, direction, packet)``
with packet numbers taken from what ``Conversation.send`` returned, the frame a
row points at, a normal text message sent after the violation that must still
decode byte for byte, and the bytes an independent library (wsproto, websockets)
must reject (or, for near-misses, accept).

``CASES`` maps a case name to its builder for every rule (``rule`` or
``rule/variant``); ``NEAR_MISSES`` holds legal traffic that sits just beside a
rule and must produce no error or warning row.

    python -m tests.rulecases OUTDIR      # writes OUTDIR/<case>.pcap for every case
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import random
import sys
import zlib
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from tests.pcaptools import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    TH_ACK,
    TH_PUSH,
    Conversation,
    Direction,
    upgrade_request,
    upgrade_response,
    ws_accept,
    ws_close_payload,
    ws_frame,
    ws_key,
)
from wsanalyze.websocket.decoder import DecoderLimits

PMD = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
HOST = "stream.example"

# ============================================================================================
# What a case expects
# ============================================================================================


@dataclass(frozen=True)
class FrameSpec:
    """The frames-table row a violation must point at."""

    opcode: int
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False
    masked: bool = False
    packet: int | None = None
    """Packet carrying the frame's first byte (None: not checked)."""
    optional: bool = False
    """The row may instead leave ``frame`` null (a header the decoder refused to follow);
    it must never point at another frame."""


@dataclass(frozen=True)
class Row:
    """One expected violations row."""

    rule: str
    direction: str | None
    packet: int
    value: str | None = None
    """A concrete value (close code, opcode, header, length...) its message must name."""
    frame: FrameSpec | None = None

    @property
    def key(self) -> tuple[str, str | None, int]:
        return (self.rule, self.direction, self.packet)


@dataclass(frozen=True)
class After:
    """A normal text message sent after the violation: it must decode exactly."""

    direction: Direction
    payload: bytes
    packet: int
    """Packet carrying its last byte (the messages table's ``packet``)."""


@dataclass(frozen=True)
class FrameOracle:
    """One direction's WebSocket bytes (from the first byte after the handshake) for
    an independent library: ``expect`` maps ``"wsproto"`` / ``"websockets"`` to the
    close code it must fail the connection with, or None when it must accept them."""

    sender: Direction
    data: bytes
    expect: Mapping[str, int | None]
    extensions: str | None = None
    """The 101's Sec-WebSocket-Extensions (permessage-deflate agreement), if any."""
    max_size: int | None = None
    clean: int | None = None
    """Length of the prefix (everything before the offending frame) the library must
    accept, so that it fails at that frame and nowhere earlier."""


@dataclass(frozen=True)
class HandshakeOracle:
    """An opening handshake for independent libraries: ``expect`` maps
    ``"websockets"`` (its sans-IO server checks the request, its client the response)
    and ``"wsproto"`` (its server checks the request) to whether they accept it."""

    request: bytes
    response: bytes
    expect: Mapping[str, bool]


Oracle = FrameOracle | HandshakeOracle


@dataclass
class RuleCase:
    conv: Conversation
    rows: list[Row]
    """Every error and warning row, in any order."""
    info: list[Row] = field(default_factory=list)
    """Every info row (capture.*, handshake.rejected)."""
    after: After | None = None
    oracles: list[Oracle] = field(default_factory=list)
    limits: DecoderLimits | None = None
    snaplen: int = 65535
    max_buffered: int | None = None
    """Out-of-order buffer limit to analyze with (pipeline Options), if not the default."""
    name: str = ""
    rule: str | None = None
    doc: str = ""

    def write(self, path: str | Path) -> None:
        self.conv.write(path, snaplen=self.snaplen)


# ============================================================================================
# Crafting a connection
# ============================================================================================


@dataclass(frozen=True)
class Sent:
    """Packets carrying a frame's first and last byte."""

    first: int
    last: int


def _parse_agreement(header: str | None) -> dict[str, str | None]:
    if not header:
        return {}
    parts = [p.strip() for p in header.split(";")]
    out: dict[str, str | None] = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        out[name.strip()] = value.strip() or None
    return out


def http_head(start_line: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """An HTTP/1.1 head with exactly these header fields (for malformed handshakes)."""
    lines = [start_line, *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _noise(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _words(n: int, seed: int) -> bytes:
    """Compressible but not trivially repetitive text."""
    rng = random.Random(seed)
    vocab = ["price", "bid", "ask", "volume", "symbol", "ACME", "INITECH", "update", "tick",
             "level", "book", "trade", "venue", "seq", "time", "open", "close", "delta"]
    out = []
    size = 0
    while size < n:
        w = f"{rng.choice(vocab)}={rng.randrange(100000)}"
        out.append(w)
        size += len(w) + 1
    return " ".join(out).encode()[:n]


class Session:
    """One crafted WebSocket connection: TCP handshake, upgrade, frames, close."""

    def __init__(self, *, port: int = 50712) -> None:
        self.conv = Conversation(client=("192.0.2.10", port), server=("198.51.100.20", 8080))
        self.conv.handshake()
        self.key = ws_key(6455)
        self.start: dict[Direction, int] = {"c2s": 0, "s2c": 0}
        self.request = b""
        self.response = b""
        self.agreement: dict[str, str | None] = {}
        self.extensions: str | None = None
        self._masks = 0
        self._compressors: dict[Direction, zlib._Compress] = {}

    # ---- handshake ---------------------------------------------------------------------
    def upgrade(
        self,
        *,
        extensions: str | None = None,
        response_extensions: str | None = None,
        protocols: Sequence[str] | None = None,
        protocol: str | None = None,
        request: bytes | None = None,
        response: bytes | None = None,
        response_tail: bytes = b"",
    ) -> tuple[list[int], list[int]]:
        """Send the Upgrade request and the 101; returns their packet numbers."""
        self.request = request or upgrade_request(
            HOST, "/feed?v=2", self.key, extensions=extensions, protocols=protocols,
            extra_headers=[("Origin", f"https://{HOST}"), ("User-Agent", "rulecases/1.0")])
        self.response = response or upgrade_response(
            self.key, extensions=response_extensions, protocol=protocol)
        self.extensions = response_extensions
        self.agreement = _parse_agreement(response_extensions)
        req = self.conv.send("c2s", self.request)
        self.start["c2s"] = len(self.conv.stream_bytes("c2s"))
        resp = self.conv.send("s2c", self.response + response_tail)
        self.start["s2c"] = len(self.conv.stream_bytes("s2c")) - len(response_tail)
        return req, resp

    # ---- frames ------------------------------------------------------------------------
    def mask(self) -> bytes:
        """A fresh masking key per client frame (RFC 6455 §5.3)."""
        self._masks += 1
        return hashlib.sha256(b"mask-%d" % self._masks).digest()[:4]

    def frame(
        self,
        direction: Direction,
        opcode: int,
        payload: bytes = b"",
        *,
        masked: bool | None = None,
        **kw: object,
    ) -> bytes:
        """Encode a frame; client frames are masked unless ``masked=False``."""
        if masked is None:
            masked = direction == "c2s"
        return ws_frame(opcode, payload, mask=self.mask() if masked else None, **kw)  # type: ignore[arg-type]

    def deflate(self, direction: Direction, payload: bytes) -> bytes:
        """Compress one message as the sender's agreed compressor does (RFC 7692 §7.2.1)."""
        prefix = "client" if direction == "c2s" else "server"
        bits = int(self.agreement.get(f"{prefix}_max_window_bits") or 15)
        comp = self._compressors.get(direction)
        if comp is None or f"{prefix}_no_context_takeover" in self.agreement:
            comp = self._compressors[direction] = zlib.compressobj(6, zlib.DEFLATED, -bits)
        out = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(_TAIL)
        return out[:-4]

    def send(self, direction: Direction, *frames: bytes, segments: Sequence[int] | None = None,
             push_with_next: bool = False) -> list[Sent]:
        """Send frames back to back in one write (MSS segmentation, delayed ACKs)."""
        data = b"".join(frames)
        pkts = self.conv.send(direction, data, segments=segments, push_with_next=push_with_next)
        mss = self.conv.mss
        sizes = list(segments) if segments else [
            min(mss, len(data) - i) for i in range(0, len(data), mss)]
        ends = list(accumulate(sizes))

        def at(offset: int) -> int:
            return pkts[bisect_right(ends, offset)]

        out = []
        off = 0
        for f in frames:
            out.append(Sent(at(off), at(off + len(f) - 1)))
            off += len(f)
        return out

    def text(self, direction: Direction, payload: bytes) -> Sent:
        return self.send(direction, self.frame(direction, OP_TEXT, payload))[0]

    def after(self, direction: Direction, payload: bytes | None = None) -> After:
        """The normal text message sent after the violation."""
        if payload is None:
            payload = f'{{"after": "still decoded", "from": "{direction}", "ok": "✓"}}'.encode()
        sent = self.text(direction, payload)
        return After(direction, payload, sent.last)

    def warmup(self, *, compressed: bool = False) -> None:
        """Ordinary traffic before the violation: subscribe, a snapshot split over three
        segments, two ticks in one segment, a ping answered by a pong."""
        def txt(d: Direction, payload: bytes) -> bytes:
            if compressed:
                return self.frame(d, OP_TEXT, self.deflate(d, payload), rsv1=True)
            return self.frame(d, OP_TEXT, payload)

        self.send("c2s", txt("c2s", b'{"op": "subscribe", "topic": "prices.ACME"}'))
        self.send("s2c", txt("s2c", b'{"op": "subscribed", "topic": "prices.ACME"}'))
        self.send("s2c", self.frame("s2c", OP_BINARY, _noise(3000, 1)))
        self.send("s2c", txt("s2c", b'{"tick": 1, "bid": 101.25}'),
                  txt("s2c", b'{"tick": 2, "bid": 101.50}'))
        self.send("c2s", self.frame("c2s", OP_PING, b"hb-1"))
        self.send("s2c", self.frame("s2c", OP_PONG, b"hb-1"))
        self.conv.wait(0.5)

    def close(self, first: Direction = "c2s", code: int = 1000, *, tcp: Direction = "s2c",
              reason: str = "bye") -> list[int]:
        """The closing handshake (RFC 6455 §5.5.1, §7.1.2), then the server's FIN first
        (RFC 6455 §7.1.1).  Returns the TCP closing packets."""
        other: Direction = "s2c" if first == "c2s" else "c2s"
        self.send(first, self.frame(first, OP_CLOSE, ws_close_payload(code, reason)))
        self.send(other, self.frame(other, OP_CLOSE, ws_close_payload(code, reason)))
        return self.conv.close(tcp)

    def stream(self, direction: Direction) -> bytes:
        """The WebSocket bytes of one direction (after the handshake)."""
        return self.conv.stream_bytes(direction)[self.start[direction]:]

    def mark(self, direction: Direction) -> int:
        """Where the next frame of ``direction`` starts in :meth:`stream`."""
        return len(self.stream(direction))

    def oracle(self, sender: Direction, clean: int | None = None,
               **expect: int | None) -> FrameOracle:
        return FrameOracle(sender, self.stream(sender), expect, self.extensions, clean=clean)

    def handshake_oracle(self, **expect: bool) -> HandshakeOracle:
        return HandshakeOracle(self.request, self.response, expect)


def _open(**upgrade: object) -> Session:
    s = Session()
    s.upgrade(**upgrade)  # type: ignore[arg-type]
    s.warmup(compressed=bool(upgrade.get("response_extensions")))
    return s


def _renumber(n: int, removed: Sequence[int]) -> int:
    """Packet ``n`` after removing the (1-based) packets ``removed``."""
    assert n not in removed
    return n - sum(1 for r in removed if r < n)


def _drop(conv: Conversation, removed: Sequence[int]) -> None:
    for n in sorted(removed, reverse=True):
        del conv.frames[n - 1]


# ============================================================================================
# Registry
# ============================================================================================

CaseBuilder = Callable[[], RuleCase]
CASES: dict[str, CaseBuilder] = {}
NEAR_MISSES: dict[str, CaseBuilder] = {}

# wsproto 1.3 rejects 1014 (registered by IANA after RFC 6455 as "Bad Gateway").
_WSPROTO_CODES = frozenset({*range(1000, 1004), *range(1007, 1014), *range(3000, 5000)})


def _register(table: dict[str, CaseBuilder], name: str, rule: str | None,
              fn: Callable[[], RuleCase], doc: str) -> None:
    assert name not in table, name

    def build() -> RuleCase:
        return dataclasses.replace(fn(), name=name, rule=rule, doc=doc)

    build.__doc__ = doc
    table[name] = build


def case(rule: str, variant: str | None = None) -> Callable[[CaseBuilder], CaseBuilder]:
    """Register a rule case under ``rule`` or ``rule/variant``."""
    def deco(fn: CaseBuilder) -> CaseBuilder:
        name = rule if variant is None else f"{rule}/{variant}"
        _register(CASES, name, rule, fn, fn.__doc__ or "")
        return fn
    return deco


def near_miss(name: str) -> Callable[[CaseBuilder], CaseBuilder]:
    def deco(fn: CaseBuilder) -> CaseBuilder:
        _register(NEAR_MISSES, name, None, fn, fn.__doc__ or "")
        return fn
    return deco


def _both_fail(s: Session, sender: Direction, clean: int, code: int = 1002) -> FrameOracle:
    return s.oracle(sender, clean, wsproto=code, websockets=code)


def _both_accept(s: Session) -> list[Oracle]:
    return [s.oracle("c2s", wsproto=None, websockets=None),
            s.oracle("s2c", wsproto=None, websockets=None)]


# ============================================================================================
# Handshake (RFC 6455 §4)
# ============================================================================================


def _request_headers(key: str, *, version: str = "13", connection: str = "Upgrade",
                     host: bool = True) -> list[tuple[str, str]]:
    headers = [("Host", HOST)] if host else []
    headers += [("Upgrade", "websocket"), ("Connection", connection),
                ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version),
                ("Origin", f"https://{HOST}")]
    return headers


def _bad_request(start_line: str, headers: list[tuple[str, str]], value: str,
                 **oracle: bool) -> RuleCase:
    s = Session()
    req, _ = s.upgrade(request=http_head(start_line, headers))
    s.warmup()
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [Row("handshake.request-invalid", "c2s", req[-1], value)],
                    after=after, oracles=[s.handshake_oracle(**oracle)])


@case("handshake.request-invalid")
def request_without_connection_upgrade() -> RuleCase:
    """RFC 6455 §4.1: "The request MUST contain a |Connection| header field whose value
    MUST include the "Upgrade" token."  A proxy replaced it with keep-alive."""
    key = ws_key(6455)
    return _bad_request("GET /feed?v=2 HTTP/1.1", _request_headers(key, connection="keep-alive"),
                        "Connection", websockets=False, wsproto=False)


@case("handshake.request-invalid", "http-1.0")
def request_http_10() -> RuleCase:
    """RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST
    be at least 1.1."""
    return _bad_request("GET /feed?v=2 HTTP/1.0", _request_headers(ws_key(6455)), "1.0",
                        websockets=False)


@case("handshake.request-invalid", "no-host")
def request_without_host() -> RuleCase:
    """RFC 6455 §4.1: "The request MUST contain a |Host| header field"."""
    return _bad_request("GET /feed?v=2 HTTP/1.1", _request_headers(ws_key(6455), host=False),
                        "Host", wsproto=False)  # websockets leaves Host to the HTTP stack


@case("handshake.bad-key")
def bad_key() -> RuleCase:
    """RFC 6455 §4.1: the Sec-WebSocket-Key value "MUST be a nonce consisting of a
    randomly selected 16-byte value that has been base64-encoded".  This one is 12 bytes."""
    s = Session()
    key = base64.b64encode(b"0123456789ab").decode()
    s.key = key
    req, _ = s.upgrade(request=http_head("GET /feed?v=2 HTTP/1.1", _request_headers(key)))
    s.warmup()
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [Row("handshake.bad-key", "c2s", req[-1], key)], after=after,
                    oracles=[s.handshake_oracle(websockets=False)])


@case("handshake.bad-version")
def bad_version() -> RuleCase:
    """RFC 6455 §4.1: "The request MUST include a header field with the name
    |Sec-WebSocket-Version|.  The value of this header field MUST be 13."  Here: 8
    (the hybi-08 draft)."""
    s = Session()
    req, _ = s.upgrade(request=http_head("GET /feed?v=2 HTTP/1.1",
                                         _request_headers(s.key, version="8")))
    s.warmup()
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [Row("handshake.bad-version", "c2s", req[-1], "8")], after=after,
                    oracles=[s.handshake_oracle(websockets=False, wsproto=False)])


@case("handshake.bad-accept")
def bad_accept() -> RuleCase:
    """RFC 6455 §4.2.2 / §4.1: if |Sec-WebSocket-Accept| "contains a value other than the
    base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key| ... with the
    string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail the WebSocket
    Connection_."  The server hashed the key without the GUID."""
    s = Session()
    wrong = base64.b64encode(hashlib.sha1(s.key.encode()).digest()).decode()
    _, resp = s.upgrade(response=upgrade_response(s.key, accept=wrong))
    s.warmup()
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [Row("handshake.bad-accept", "s2c", resp[-1], wrong)], after=after,
                    oracles=[s.handshake_oracle(websockets=False)])


@case("handshake.response-invalid")
def response_without_connection_upgrade() -> RuleCase:
    """RFC 6455 §4.1: "If the response lacks a |Connection| header field or the
    |Connection| header field doesn't contain a token that is an ASCII case-insensitive
    match for the value "Upgrade", the client MUST _Fail the WebSocket Connection_."""
    s = Session()
    head = http_head("HTTP/1.1 101 Switching Protocols",
                     [("Upgrade", "websocket"), ("Connection", "keep-alive"),
                      ("Sec-WebSocket-Accept", ws_accept(s.key))])
    _, resp = s.upgrade(response=head)
    s.warmup()
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [Row("handshake.response-invalid", "s2c", resp[-1], "Connection")],
                    after=after, oracles=[s.handshake_oracle(websockets=False)])


@case("handshake.rejected")
def rejected_then_retried() -> RuleCase:
    """RFC 6455 §4.1: "If the status code received from the server is not 101, the
    client handles the response per HTTP ... the client might perform authentication if
    it receives a 401 status code".  401, then the retry with credentials succeeds on the
    same keep-alive connection."""
    s = Session()
    first = upgrade_request(HOST, "/feed?v=2", ws_key(1))
    s.conv.send("c2s", first)
    denied = http_head("HTTP/1.1 401 Unauthorized",
                       [("WWW-Authenticate", 'Basic realm="feed"'), ("Content-Length", "0")])
    rejected = s.conv.send("s2c", denied)
    request = upgrade_request(HOST, "/feed?v=2", s.key,
                              extra_headers=[("Authorization", "Basic dXNlcjpwYXNz")])
    s.upgrade(request=request)
    s.warmup()
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [], info=[Row("handshake.rejected", "s2c", rejected[-1], "401")],
                    after=after, oracles=[HandshakeOracle(first, denied, {"websockets": False})])


@case("handshake.unrequested-subprotocol")
def unrequested_subprotocol() -> RuleCase:
    """RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Protocol| header field
    and this header field indicates the use of a subprotocol that was not present in the
    client's handshake ... the client MUST _Fail the WebSocket Connection_."""
    s = Session()
    _, resp = s.upgrade(protocols=["feed.v1", "feed.v2"], protocol="feed.v3")
    s.warmup()
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [Row("handshake.unrequested-subprotocol", "s2c", resp[-1],
                                 "feed.v3")],
                    after=after, oracles=[s.handshake_oracle(websockets=False)])


@case("handshake.unrequested-extension")
def unrequested_extension() -> RuleCase:
    """RFC 6455 §9.1: "A server MUST NOT respond with any extension not requested by
    the client."  The client offered no extension; the server accepts permessage-deflate."""
    s = Session()
    _, resp = s.upgrade(response_extensions=PMD)
    s.warmup()
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [Row("handshake.unrequested-extension", "s2c", resp[-1], PMD)],
                    after=after, oracles=[s.handshake_oracle(websockets=False)])


@case("handshake.unrequested-extension", "client-max-window-bits")
def unrequested_client_max_window_bits() -> RuleCase:
    """RFC 7692 §7.1.2.2: "If a received extension negotiation offer doesn't have the
    "client_max_window_bits" extension parameter, the corresponding extension negotiation
    response to the offer MUST NOT include the "client_max_window_bits" extension
    parameter."""
    s = Session()
    _, resp = s.upgrade(extensions=PMD, response_extensions=f"{PMD}; client_max_window_bits=10")
    s.warmup(compressed=True)
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [Row("handshake.unrequested-extension", "s2c", resp[-1],
                                 "client_max_window_bits")],
                    after=after, oracles=[s.handshake_oracle(websockets=False)])


# ============================================================================================
# Framing (RFC 6455 §5)
# ============================================================================================


@case("frame.client-unmasked")
def client_unmasked() -> RuleCase:
    """RFC 6455 §5.1: "a client MUST mask all frames that it sends to the server".  A
    2000-byte unmasked text frame spread over two segments."""
    s = _open()
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, _words(2000, 2), masked=False))[0]
    after = s.after("c2s")
    s.close()
    row = Row("frame.client-unmasked", "c2s", sent.first,
              frame=FrameSpec(OP_TEXT, masked=False, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("frame.server-masked")
def server_masked() -> RuleCase:
    """RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client.\""""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, b'{"tick": 3, "bid": 101.75}', masked=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("frame.server-masked", "s2c", sent.first,
              frame=FrameSpec(OP_TEXT, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("frame.reserved-bits")
def reserved_bit_rsv2() -> RuleCase:
    """RFC 6455 §5.2: RSV1, RSV2, RSV3 "MUST be 0 unless an extension is negotiated that
    defines meanings for non-zero values".  RSV2 on a 1600-byte text frame (two segments),
    no extension negotiated."""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, _words(1600, 3), rsv2=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("frame.reserved-bits", "s2c", sent.first, "RSV2",
              FrameSpec(OP_TEXT, rsv2=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("frame.reserved-bits", "rsv1-without-deflate")
def reserved_bit_rsv1() -> RuleCase:
    """RFC 6455 §5.2 (RSV bits "MUST be 0 unless an extension is negotiated"): the client
    compresses although the server did not accept permessage-deflate."""
    s = _open(extensions=PMD)
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = comp.compress(_words(600, 21)) + comp.flush(zlib.Z_SYNC_FLUSH)
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_BINARY, data[:-4], rsv1=True))[0]
    after = s.after("c2s")
    s.close()
    row = Row("frame.reserved-bits", "c2s", sent.first, "RSV1",
              FrameSpec(OP_BINARY, rsv1=True, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("frame.reserved-opcode")
def reserved_opcode() -> RuleCase:
    """RFC 6455 §5.2: "%x3-7 are reserved for further non-control frames"; "If an unknown
    opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
    Opcode 0x3, followed by a normal text frame in the same segment."""
    s = _open()
    payload = b'{"after": "same segment as the reserved opcode"}'
    clean = s.mark("s2c")
    bad, good = s.send("s2c", s.frame("s2c", 0x3, b"\x01\x02\x03\x04"),
                       s.frame("s2c", OP_TEXT, payload))
    after = After("s2c", payload, good.last)
    s.close()
    row = Row("frame.reserved-opcode", "s2c", bad.first, "0x3", FrameSpec(0x3, packet=bad.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("frame.reserved-opcode", "control-0xB")
def reserved_control_opcode() -> RuleCase:
    """RFC 6455 §5.2: "%xB-F are reserved for further control frames"."""
    s = _open()
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", 0xB, b"status"))[0]
    after = s.after("c2s")
    s.close()
    row = Row("frame.reserved-opcode", "c2s", sent.first, "0xB",
              FrameSpec(0xB, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("frame.non-minimal-length")
def non_minimal_16() -> RuleCase:
    """RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length,
    for example, the length of a 124-byte-long string can't be encoded as the sequence
    126, 0, 124."  A 37-byte text with a 16-bit length."""
    s = _open()
    payload = b'{"op": "order", "qty": 10, "px": 99}'.ljust(37, b" ")
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, payload, length_encoding="16"))[0]
    after = s.after("c2s")
    s.close()
    row = Row("frame.non-minimal-length", "c2s", sent.first, "37",
              FrameSpec(OP_TEXT, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("c2s", clean, wsproto=1002)])


@case("frame.non-minimal-length", "64-bit")
def non_minimal_64() -> RuleCase:
    """RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    A 3000-byte binary frame (fits 16 bits) with a 64-bit length, over three segments."""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_BINARY, _noise(3000, 4), length_encoding="64"))[0]
    after = s.after("s2c")
    s.close()
    row = Row("frame.non-minimal-length", "s2c", sent.first, "3000",
              FrameSpec(OP_BINARY, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("s2c", clean, wsproto=1002)])


@case("frame.length-msb")
def length_msb() -> RuleCase:
    """RFC 6455 §5.2: "If 127, the following 8 bytes interpreted as a 64-bit unsigned
    integer (the most significant bit MUST be 0) are the payload length."  The server
    writes a length with the top bit set on a 5-byte binary frame.  No frame can be that
    long, so the stream cannot be followed from there either (frame.unparseable); the
    next message sits in the next segment."""
    s = _open()
    head = bytes([0x82, 127]) + ((1 << 63) | 5).to_bytes(8, "big")
    clean = s.mark("s2c")
    sent = s.send("s2c", head + b"\x00\x01\x02\x03\x04")[0]
    after = s.after("s2c")
    s.close()
    rows = [Row("frame.length-msb", "s2c", sent.first,
                frame=FrameSpec(OP_BINARY, packet=sent.first, optional=True)),
            Row("frame.unparseable", "s2c", sent.first)]
    # Info: where decoding resumed (the next message is a one-segment frame).
    info = [Row("frame.resynchronised", "s2c", after.packet)]
    return RuleCase(s.conv, rows, info, after=after,
                    oracles=[s.oracle("s2c", clean, wsproto=1002)])


@case("frame.unparseable")
def little_endian_length() -> RuleCase:
    """RFC 6455 §5.2: "Multibyte length quantities are expressed in network byte order."
    The server writes the 64-bit length of a 70 000-byte text frame little-endian, which
    reads as about 8 * 10**18 bytes: the stream cannot be followed until the next frame,
    which starts its own segment."""
    s = _open()
    payload = _words(70_000, 22)
    head = bytes([0x81, 127]) + len(payload).to_bytes(8, "little")
    clean = s.mark("s2c")
    sent = s.send("s2c", head + payload)[0]
    after = s.after("s2c")
    s.close()
    # wsproto streams frames of any length; websockets refuses beyond its 1 MiB default.
    oracle = dataclasses.replace(s.oracle("s2c", clean, websockets=1009), max_size=1 << 20)
    return RuleCase(s.conv, [Row("frame.unparseable", "s2c", sent.first)],
                    [Row("frame.resynchronised", "s2c", after.packet)], after=after,
                    oracles=[oracle])


@case("control.too-long")
def control_too_long() -> RuleCase:
    """RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or
    less".  An unsolicited Pong heartbeat of 126 bytes (16-bit length)."""
    s = _open()
    status = b'{"uptime": 86400, "clients": 1200, "pad": "' + b"x" * 80
    status = (status + b'"}').ljust(126, b" ")
    assert len(status) == 126
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_PONG, status))[0]
    after = s.after("s2c")
    s.close()
    row = Row("control.too-long", "s2c", sent.first, "126", FrameSpec(OP_PONG, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("control.too-long", "close-reason")
def close_too_long() -> RuleCase:
    """RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or
    less".  The server puts a 148-byte error report in its Close; the client, having
    received the Close, still sends a message, then its own Close."""
    s = _open()
    reason = "internal error: " + "stack frame; " * 10
    payload = ws_close_payload(1011, reason)
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_CLOSE, payload))[0]
    after = s.after("c2s")
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1011)))
    s.conv.close("s2c")
    row = Row("control.too-long", "s2c", sent.first, str(len(payload)),
              FrameSpec(OP_CLOSE, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("control.fragmented")
def control_fragmented() -> RuleCase:
    """RFC 6455 §5.5: control frames "MUST NOT be fragmented."  A Ping with FIN clear;
    the server answers it anyway."""
    s = _open()
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_PING, b"hb-2", fin=False))[0]
    s.send("s2c", s.frame("s2c", OP_PONG, b"hb-2"))
    after = s.after("c2s")
    s.close()
    row = Row("control.fragmented", "c2s", sent.first, "ping",
              FrameSpec(OP_PING, fin=False, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("fragment.unexpected-continuation")
def unexpected_continuation() -> RuleCase:
    """RFC 6455 §5.4: a fragmented message starts with "a single frame with the FIN bit
    clear and an opcode other than 0"; a continuation frame (opcode 0) with no message in
    progress is invalid."""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_CONT, b'"orphan": true}'))[0]
    after = s.after("s2c")
    s.close()
    row = Row("fragment.unexpected-continuation", "s2c", sent.first,
              frame=FrameSpec(OP_CONT, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("fragment.unexpected-continuation", "first-frame")
def unexpected_continuation_first() -> RuleCase:
    """RFC 6455 §5.4 (a message never starts with opcode 0): the very first frame after
    the handshake is a continuation, with the framing known from byte 0."""
    s = Session()
    s.upgrade()
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_CONT, b"half a message", fin=False),
                  s.frame("c2s", OP_CONT, b" and the rest"))
    after = s.after("c2s")
    s.warmup()
    s.close()
    row = Row("fragment.unexpected-continuation", "c2s", sent[0].first,
              frame=FrameSpec(OP_CONT, fin=False, masked=True, packet=sent[0].first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("fragment.interleaved")
def interleaved() -> RuleCase:
    """RFC 6455 §5.4: "The fragments of one message MUST NOT be interleaved between the
    fragments of another message unless an extension has been negotiated that can
    interpret the interleaving."  A new text message starts while a fragmented one is in
    progress."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_TEXT, b'{"op": "order", ', fin=False))
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, b'{"op": "cancel", "id": 7}'))[0]
    after = s.after("c2s")
    s.close()
    row = Row("fragment.interleaved", "c2s", sent.first,
              frame=FrameSpec(OP_TEXT, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("text.invalid-utf8")
def invalid_utf8() -> RuleCase:
    """RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds
    that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail
    the WebSocket Connection_."  A text message encoded in Latin-1 ("café")."""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, '{"venue": "café"}'.encode("latin-1")))[0]
    after = s.after("s2c")
    s.close()
    row = Row("text.invalid-utf8", "s2c", sent.last, frame=FrameSpec(OP_TEXT, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("s2c", clean, wsproto=1007)])


@case("text.invalid-utf8", "fragmented")
def invalid_utf8_fragmented() -> RuleCase:
    """RFC 6455 §5.6: "The "Payload data" is text data encoded as UTF-8."  Three
    fragments in three segments; the last one holds a lone continuation byte."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_TEXT, b'{"note": "', fin=False))
    s.send("c2s", s.frame("c2s", OP_CONT, "naïve ".encode(), fin=False))
    clean = s.mark("c2s")
    last = s.send("c2s", s.frame("c2s", OP_CONT, b'\x80"}'))[0]
    after = s.after("c2s")
    s.close()
    row = Row("text.invalid-utf8", "c2s", last.last,
              frame=FrameSpec(OP_TEXT, fin=False, masked=True))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("c2s", clean, wsproto=1007)])


@case("text.invalid-utf8", "truncated-code-point")
def invalid_utf8_truncated() -> RuleCase:
    """RFC 6455 §8.1 (the whole message must be valid UTF-8): a text message that ends
    in the middle of "€" (e2 82 ac)."""
    s = _open()
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, '{"ccy": "€"}'.encode()[:-4]))[0]
    after = s.after("s2c")
    s.close()
    row = Row("text.invalid-utf8", "s2c", sent.last, frame=FrameSpec(OP_TEXT, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("s2c", clean, wsproto=1007)])


@case("text.invalid-utf8", "compressed")
def invalid_utf8_compressed() -> RuleCase:
    """RFC 6455 §5.6 with RFC 7692: text must be valid UTF-8 once inflated.  A compressed
    text message holding a UTF-16 surrogate encoded in UTF-8 (ed a0 80)."""
    s = _open(extensions=PMD, response_extensions=PMD)
    bad = b'{"emoji": "\xed\xa0\x80"}'
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, s.deflate("s2c", bad), rsv1=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("text.invalid-utf8", "s2c", sent.last,
              frame=FrameSpec(OP_TEXT, rsv1=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("s2c", clean, wsproto=1007)])


def _client_close(payload: bytes, rule: str, value: str | None,
                  oracle: Mapping[str, int | None]) -> RuleCase:
    """The client sends a Close with ``payload``; the server, having received it, still
    sends a message, then its Close 1002, then the TCP FIN."""
    s = _open()
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_CLOSE, payload))[0]
    after = s.after("s2c")
    s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1002, "protocol error")))
    s.conv.close("s2c")
    row = Row(rule, "c2s", sent.first, value, FrameSpec(OP_CLOSE, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[s.oracle("c2s", clean, **oracle)])


@case("close.one-byte-payload")
def close_one_byte() -> RuleCase:
    """RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a
    2-byte unsigned integer ... representing a status code"; one byte cannot be."""
    return _client_close(b"\x03", "close.one-byte-payload", None,
                         {"wsproto": 1002, "websockets": 1002})


def _invalid_code(code: int) -> CaseBuilder:
    def build() -> RuleCase:
        return _client_close(ws_close_payload(code, "closing"), "close.invalid-code", str(code),
                             {"wsproto": 1002, "websockets": 1002})
    return build


INVALID_CLOSE_CODES = (1005, 0, 999, 1004, 1006, 1015, 1016, 1100, 2000, 2999)
for _code in INVALID_CLOSE_CODES:
    _register(CASES, "close.invalid-code" + ("" if _code == 1005 else f"/{_code}"),
              "close.invalid-code", _invalid_code(_code),
              f"RFC 6455 §7.4: close code {_code} may not be sent in a Close frame "
              "(0-999 are not used; 1004 is reserved; 1005, 1006 and 1015 \"MUST NOT be set "
              "as a status code in a Close control frame by an endpoint\"; 1016-2999 are "
              "reserved for future revisions of the protocol).")


@case("close.invalid-reason-utf8")
def close_reason_not_utf8() -> RuleCase:
    """RFC 6455 §5.5.1: "Following the 2-byte integer, the body MAY contain UTF-8-encoded
    data with value /reason/".  The server's reason is Latin-1; the client still sends a
    message, then its Close."""
    s = _open()
    clean = s.mark("s2c")
    payload = ws_close_payload(1011, "d\xe9faillance interne".encode("latin-1"))
    sent = s.send("s2c", s.frame("s2c", OP_CLOSE, payload))[0]
    after = s.after("c2s")
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1011)))
    s.conv.close("s2c")
    row = Row("close.invalid-reason-utf8", "s2c", sent.first,
              frame=FrameSpec(OP_CLOSE, packet=sent.first))
    return RuleCase(s.conv, [row], after=after,
                    oracles=[s.oracle("s2c", clean, wsproto=1007, websockets=1007)])


@case("close.data-after-close")
def data_after_close() -> RuleCase:
    """RFC 6455 §5.5.1: "The application MUST NOT send any more data frames after sending
    a Close frame."  The client sends Close, then one more text message."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1000, "bye")))
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, b'{"op": "unsubscribe"}'))[0]
    after = s.after("s2c")
    s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1000, "bye")))
    s.conv.close("s2c")
    row = Row("close.data-after-close", "c2s", sent.first,
              frame=FrameSpec(OP_TEXT, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after)


@case("close.no-close-handshake")
def no_close_handshake() -> RuleCase:
    """RFC 6455 §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control
    frame was received by the endpoint ..., _The WebSocket Connection Close Code_ is
    considered to be 1006."  The client closes TCP without any Close frame."""
    s = _open()
    after = s.after("c2s")
    end = s.conv.close("c2s")
    return RuleCase(s.conv, [Row("close.no-close-handshake", None, end[1])], after=after,
                    oracles=[s.oracle("c2s", websockets=1006), s.oracle("s2c", websockets=1006)])


@case("close.no-close-handshake", "one-sided")
def close_one_sided() -> RuleCase:
    """RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not previously
    send a Close frame, the endpoint MUST send a Close frame in response."  The server
    drops the TCP connection instead: it broke the rule."""
    s = _open()
    after = s.after("s2c")
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1001, "going away")))
    end = s.conv.close("s2c")
    return RuleCase(s.conv, [Row("close.no-close-handshake", "s2c", end[1])], after=after,
                    oracles=[s.oracle("s2c", websockets=1006)])


@case("close.no-close-handshake", "reset")
def reset_without_close() -> RuleCase:
    """RFC 6455 §7.1.5 (no Close frame: code 1006): the server aborts with a RST."""
    s = _open()
    after = s.after("s2c")
    rst = s.conv.reset("s2c")
    return RuleCase(s.conv, [Row("close.no-close-handshake", None, rst)], after=after)


@case("ping.unanswered")
def ping_unanswered() -> RuleCase:
    """RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame
    in response, unless it already received a Close frame."  The server keeps streaming
    ticks after the client's Ping, never answers it, and later starts a clean close."""
    s = _open()
    ping = s.send("c2s", s.frame("c2s", OP_PING, b"hb-2"))[0]
    s.conv.wait(1.0)
    for i in range(3):
        s.text("s2c", b'{"tick": %d, "bid": 102.00}' % (10 + i))
    after = s.after("s2c")
    end = s.close("s2c")
    return RuleCase(s.conv, [Row("ping.unanswered", "s2c", end[1], str(ping.first))],
                    after=after)


@case("ping.unanswered", "no-close")
def ping_unanswered_no_close() -> RuleCase:
    """RFC 6455 §5.5.2 ("an endpoint MUST send a Pong frame in response"): the server
    keeps streaming, never answers the Ping, and the client gives up with a TCP FIN."""
    s = _open()
    ping = s.send("c2s", s.frame("c2s", OP_PING, b"hb-2"))[0]
    s.conv.wait(1.0)
    for i in range(3):
        s.text("s2c", b'{"tick": %d, "bid": 102.00}' % (10 + i))
    after = s.after("s2c")
    end = s.conv.close("c2s")
    rows = [Row("ping.unanswered", "s2c", end[1], str(ping.first)),
            Row("close.no-close-handshake", None, end[1])]
    return RuleCase(s.conv, rows, after=after)


@case("pong.payload-mismatch")
def pong_mismatch() -> RuleCase:
    """RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping frame must have identical
    "Application data" as found in the message body of the Ping frame being replied to."
    The server answers Ping "hb-42" with a Pong carrying a stale "hb-41"."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_PING, b"hb-42"))
    sent = s.send("s2c", s.frame("s2c", OP_PONG, b"hb-41"))[0]
    after = s.after("s2c")
    s.close()
    row = Row("pong.payload-mismatch", "s2c", sent.first,
              frame=FrameSpec(OP_PONG, packet=sent.first))
    return RuleCase(s.conv, [row], after=after)


# ============================================================================================
# permessage-deflate (RFC 7692)
# ============================================================================================


def _bad_negotiation(response_extensions: str, value: str,
                     honoured: dict[str, str | None] | None = None) -> RuleCase:
    """The server answers with an invalid permessage-deflate response, then compresses
    as the ``honoured`` parameters say (its own reading of what it sent)."""
    s = Session()
    _, resp = s.upgrade(extensions=f"{PMD}; client_max_window_bits",
                        response_extensions=response_extensions)
    s.agreement = honoured or {}
    s.warmup(compressed=True)
    payload = b'{"after": "compressed and still decoded"}'
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, s.deflate("s2c", payload), rsv1=True))[0]
    s.close()
    return RuleCase(s.conv, [Row("deflate.bad-negotiation", "s2c", resp[-1], value)],
                    after=After("s2c", payload, sent.last),
                    oracles=[s.handshake_oracle(websockets=False)])


@case("deflate.bad-negotiation")
def bad_window_bits() -> RuleCase:
    """RFC 7692 §7.1.2.1: server_max_window_bits in a response has "a decimal integer
    value without leading zeroes between 8 to 15, inclusive".  The server answers 16."""
    return _bad_negotiation(f"{PMD}; server_max_window_bits=16", "server_max_window_bits")


@case("deflate.bad-negotiation", "repeated")
def repeated_parameter() -> RuleCase:
    """RFC 7692 §7: a client MUST _Fail the WebSocket Connection_ if the response
    "contains multiple extension parameters with the same name"."""
    return _bad_negotiation(f"{PMD}; server_no_context_takeover; server_no_context_takeover",
                            "server_no_context_takeover", {"server_no_context_takeover": None})


@case("deflate.bad-negotiation", "unknown-parameter")
def unknown_parameter() -> RuleCase:
    """RFC 7692 §7: a client MUST _Fail the WebSocket Connection_ if the response
    "contains an extension parameter not defined for use in a response"."""
    return _bad_negotiation(f"{PMD}; mem_level=8", "mem_level")


@case("deflate.rsv1-on-continuation")
def rsv1_on_continuation() -> RuleCase:
    """RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
    frames and non-first fragments of a data message."  A compressed message in two
    fragments, both with RSV1."""
    s = _open(extensions=PMD, response_extensions=PMD)
    comp = s.deflate("c2s", _words(900, 5))
    s.send("c2s", s.frame("c2s", OP_TEXT, comp[:200], fin=False, rsv1=True))
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_CONT, comp[200:], rsv1=True))[0]
    after = s.after("c2s")
    s.close()
    row = Row("deflate.rsv1-on-continuation", "c2s", sent.first, "RSV1",
              FrameSpec(OP_CONT, rsv1=True, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "c2s", clean)])


@case("deflate.rsv1-on-control")
def rsv1_on_control() -> RuleCase:
    """RFC 7692 §6.1: "An endpoint MUST NOT set the "Per-Message Compressed" bit of
    control frames".  A Ping with RSV1; the client answers it."""
    s = _open(extensions=PMD, response_extensions=PMD)
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_PING, b"srv-hb", rsv1=True))[0]
    s.send("c2s", s.frame("c2s", OP_PONG, b"srv-hb"))
    after = s.after("s2c")
    s.close()
    row = Row("deflate.rsv1-on-control", "s2c", sent.first, "RSV1",
              FrameSpec(OP_PING, rsv1=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after, oracles=[_both_fail(s, "s2c", clean)])


@case("deflate.decompression-failed")
def decompression_failed() -> RuleCase:
    """RFC 7692 §7.2.2: the receiver appends 0x00 0x00 0xff 0xff and decompresses "the
    resulting data using DEFLATE"; this payload is no DEFLATE data (BTYPE 11 is
    reserved).  The next message is sent uncompressed, as RFC 7692 §6 allows."""
    s = _open(extensions=PMD, response_extensions=PMD)
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, b"\xff\xff\xff\xff\x00", rsv1=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("deflate.decompression-failed", "s2c", sent.last,
              frame=FrameSpec(OP_TEXT, rsv1=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after,
                    oracles=[s.oracle("s2c", clean, wsproto=1007, websockets=1002)])


@case("deflate.context-takeover-violated")
def context_takeover_violated() -> RuleCase:
    """RFC 7692 §7.2.1: "If the "agreed parameters" contain the
    "client_no_context_takeover" extension parameter, the client MUST start compressing
    each new message with an empty LZ77 sliding window."  The client keeps its window."""
    ext = f"{PMD}; client_no_context_takeover"
    s = _open(extensions=ext, response_extensions=ext)
    shared = b'{"op": "order", "symbol": "ACME", "side": "buy", "qty": 100, "px": 101.25}'
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    first, second = ((comp.compress(m) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
                     for m in (shared, shared.replace(b"100", b"200")))
    s.send("c2s", s.frame("c2s", OP_TEXT, first, rsv1=True))
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, second, rsv1=True))[0]
    after = s.after("c2s")
    s.close()
    row = Row("deflate.context-takeover-violated", "c2s", sent.last,
              frame=FrameSpec(OP_TEXT, rsv1=True, masked=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after,
                    oracles=[s.oracle("c2s", clean, wsproto=1007, websockets=1002)])


def _stored_block(data: bytes) -> bytes:
    """A DEFLATE stored block without BFINAL (RFC 1951 §3.2.4): no back-references."""
    assert len(data) < 0x10000
    return b"\x00" + len(data).to_bytes(2, "little") + (len(data) ^ 0xFFFF).to_bytes(2, "little") \
        + data


@case("deflate.window-bits-exceeded")
def window_bits_exceeded() -> RuleCase:
    """RFC 7692 §7.2.1: "If the "agreed parameters" contain the "server_max_window_bits"
    extension parameter with a value of w, the server MUST NOT use an LZ77 sliding window
    longer than the w-th power of 2 bytes".  Agreed 9 (512 bytes); the server's second
    message repeats the first, 2000 bytes back."""
    ext = f"{PMD}; server_max_window_bits=9"
    s = _open(extensions=ext, response_extensions=ext)
    block = _noise(2000, 6)
    first = _stored_block(block) + b"\x00"  # + the sync flush's empty stored block header
    comp = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=block)
    second = (comp.compress(block) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    s.send("s2c", s.frame("s2c", OP_BINARY, first, rsv1=True))
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_BINARY, second, rsv1=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("deflate.window-bits-exceeded", "s2c", sent.last, "512",
              FrameSpec(OP_BINARY, rsv1=True, packet=sent.first))
    return RuleCase(s.conv, [row], after=after,
                    oracles=[s.oracle("s2c", clean, wsproto=1007, websockets=1002)])


# ============================================================================================
# Limits (RFC 6455 §10.4)
# ============================================================================================

LIMIT = 64 * 1024


@case("message.too-big")
def decompression_bomb() -> RuleCase:
    """RFC 6455 §10.4: "implementations SHOULD impose implementation-specific limits on
    frame sizes and the total message size after reassembly from multiple frames".  A
    2 KB compressed message that inflates to 2 MiB, analyzed with a 64 KiB limit."""
    s = _open(extensions=PMD, response_extensions=PMD)
    bomb = bytes(2 << 20)
    clean = s.mark("s2c")
    sent = s.send("s2c", s.frame("s2c", OP_BINARY, s.deflate("s2c", bomb), rsv1=True))[0]
    after = s.after("s2c")
    s.close()
    row = Row("message.too-big", "s2c", sent.last, str(len(bomb)),
              FrameSpec(OP_BINARY, rsv1=True, packet=sent.first))
    oracle = dataclasses.replace(s.oracle("s2c", clean, websockets=1009), max_size=LIMIT)
    return RuleCase(s.conv, [row], after=after, oracles=[oracle],
                    limits=DecoderLimits(max_payload=LIMIT))


@case("message.too-big", "uncompressed")
def upload_too_big() -> RuleCase:
    """RFC 6455 §10.4 ("limits on ... the total message size"): a 100 000-byte upload in
    two fragments, analyzed with a 64 KiB limit."""
    s = _open()
    data = _noise(100_000, 7)
    s.send("c2s", s.frame("c2s", OP_BINARY, data[:40_000], fin=False))
    clean = s.mark("c2s")
    sent = s.send("c2s", s.frame("c2s", OP_CONT, data[40_000:]))[0]
    after = s.after("c2s")
    s.close()
    row = Row("message.too-big", "c2s", sent.last, "100000",
              FrameSpec(OP_BINARY, fin=False, masked=True))
    oracle = dataclasses.replace(s.oracle("c2s", clean, websockets=1009), max_size=LIMIT)
    return RuleCase(s.conv, [row], after=after, oracles=[oracle],
                    limits=DecoderLimits(max_payload=LIMIT))


# ============================================================================================
# Capture properties (info rows)
# ============================================================================================


@case("capture.gap")
def capture_gap() -> RuleCase:
    """RFC 9293 §3.10: bytes acknowledged by the receiver but absent from the capture.
    The second of four segments of a binary frame was not captured."""
    s = _open()
    pkts = s.conv.send("s2c", s.frame("s2c", OP_BINARY, _noise(5000, 8)))
    after = s.after("s2c")
    s.close()
    removed = [pkts[1]]
    _drop(s.conv, removed)
    info = [Row("capture.gap", "s2c", _renumber(pkts[2], removed))]
    return RuleCase(s.conv, [], info=info,
                    after=dataclasses.replace(after, packet=_renumber(after.packet, removed)))


@case("capture.mid-stream")
def capture_mid_stream() -> RuleCase:
    """RFC 6455 §4: the opening handshake happened before the capture started."""
    s = Session()
    s.upgrade()
    cut = len(s.conv.frames)
    s.warmup()
    after = s.after("c2s")
    s.close()
    firsts: dict[str, int] = {}
    for n, p in enumerate(s.conv.frames[cut:], start=1):
        if len(p.ip) > 40 and p.direction not in firsts:  # 40: IPv4 + TCP headers only
            firsts[p.direction] = n
    s.conv.frames = s.conv.frames[cut:]
    info = [Row("capture.mid-stream", d, n) for d, n in firsts.items()]
    return RuleCase(s.conv, [], info=info,
                    after=dataclasses.replace(after, packet=after.packet - cut))


@case("capture.truncated")
def capture_truncated() -> RuleCase:
    """pcap snapshot length: every packet longer than 400 bytes was cut."""
    s = _open()
    after = s.after("s2c")
    s.close()
    snap = 400
    records = s.conv.records()
    info = [Row("capture.truncated", p.direction, n)
            for n, (p, r) in enumerate(zip(s.conv.frames, records, strict=True), start=1)
            if len(r.data) > snap]
    return RuleCase(s.conv, [], info=info, after=after, snaplen=snap)


@case("capture.undecodable")
def capture_undecodable() -> RuleCase:
    """RFC 7692 §7.2.2: with context takeover, a message may refer to earlier messages;
    a segment of the previous message was not captured, so the next one cannot be
    inflated.  The message after it does not refer back and decodes again."""
    s = _open(extensions=PMD, response_extensions=PMD)
    report = _words(12_000, 9)
    pkts = s.conv.send("s2c", s.frame("s2c", OP_TEXT, s.deflate("s2c", report), rsv1=True))
    assert len(pkts) >= 3
    refers = s.deflate("s2c", report[:3000])  # all back-references into the report
    with contextlib.suppress(zlib.error):
        zlib.decompressobj(-15).decompress(refers + _TAIL)
        raise AssertionError("the message must need the previous one")
    needs = s.send("s2c", s.frame("s2c", OP_TEXT, refers, rsv1=True))[0]
    payload = b'{"after": "fresh compressor"}'
    fresh = zlib.compressobj(6, zlib.DEFLATED, -15)  # the server reset its compressor
    data = (fresh.compress(payload) + fresh.flush(zlib.Z_SYNC_FLUSH))[:-4]
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, data, rsv1=True))[0]
    s.close()
    removed = [pkts[1]]
    _drop(s.conv, removed)
    info = [Row("capture.gap", "s2c", _renumber(pkts[2], removed)),
            Row("capture.undecodable", "s2c", _renumber(needs.last, removed))]
    return RuleCase(s.conv, [], info=info,
                    after=After("s2c", payload, _renumber(sent.last, removed)))


@case("capture.limit")
def capture_limit() -> RuleCase:
    """wsanalyze limits: the second segment of a 10 KB frame arrives only after the five
    that follow it (the client sends duplicate ACKs meanwhile); with a 4 KiB out-of-order
    buffer the analyzer gives up waiting for it."""
    s = _open()
    conv = s.conv
    frame = s.frame("s2c", OP_BINARY, _noise(10_000, 10))
    hole_ack = conv.next_seq("s2c") + conv.mss
    mark = len(conv.frames)
    conv.send("s2c", frame, push_with_next=True)
    taken = conv.frames[mark:]
    del conv.frames[mark:]
    data = [p for p in taken if p.direction == "s2c"]
    order = [data[0]]
    for i, p in enumerate(data[2:]):
        order.append(p)
        if i % 2:
            conv.segment("c2s", TH_ACK, ack=hole_ack)
            order.append(conv.frames.pop())
    order.append(data[1])  # the late retransmission
    conv.ack("c2s")
    order.append(conv.frames.pop())
    t0 = taken[0].ts_ns
    for k, p in enumerate(order):
        p.ts_ns = t0 + k * 100_000
    conv.frames.extend(order)
    number = {id(p): mark + k + 1 for k, p in enumerate(order)}
    after = s.after("s2c")
    s.close()
    # 4 KiB exceeded once the third segment after the hole is buffered: the limit is
    # reported there, and the bytes given up like a gap, at the packet after the hole.
    info = [Row("capture.limit", "s2c", number[id(data[4])]),
            Row("capture.limit", "s2c", number[id(data[2])])]
    return RuleCase(s.conv, [], info=info, after=after, max_buffered=4096)


@case("capture.overlap-conflict")
def overlap_conflict() -> RuleCase:
    """RFC 9293 §3.10.7.4: a retransmission carries other bytes than the first copy of
    the same sequence numbers; the first copy is kept."""
    s = _open()
    payload = b'{"tick": 7, "bid": 101.25}'
    seq = s.conv.next_seq("s2c")
    sent = s.text("s2c", payload)
    altered = s.frame("s2c", OP_TEXT, b'{"tick": 7, "bid": 999.99}')
    retrans = s.conv.segment("s2c", TH_ACK | TH_PUSH, altered, seq=seq)
    s.conv.ack("c2s")
    s.close()
    return RuleCase(s.conv, [], info=[Row("capture.overlap-conflict", "s2c", retrans,
                                          value="s2c stream: bytes ")],
                    after=After("s2c", payload, sent.last))


# ============================================================================================
# Legal near-misses: no error or warning row
# ============================================================================================


def _legal_close(code: int) -> CaseBuilder:
    def build() -> RuleCase:
        s = _open()
        s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(code, "done")))
        after = s.after("c2s")
        s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(code, "done")))
        s.conv.close("s2c")
        expect = {"websockets": None}
        if code in _WSPROTO_CODES:
            expect["wsproto"] = None
        return RuleCase(s.conv, [], after=after,
                        oracles=[s.oracle("s2c", **expect), s.oracle("c2s", **expect)])
    return build


LEGAL_CLOSE_CODES = (1000, 1001, 1002, 1003, *range(1007, 1015), 3000, 3999, 4000, 4999)
for _code in LEGAL_CLOSE_CODES:
    _register(NEAR_MISSES, f"close-code-{_code}", None, _legal_close(_code),
              f"RFC 6455 §7.4: close code {_code} may be sent (1000-1003 and 1007-1014 are "
              "defined or registered, 3000-3999 registered, 4000-4999 private use).")


@near_miss("control-125-bytes")
def control_125() -> RuleCase:
    """RFC 6455 §5.5: control frames "MUST have a payload length of 125 bytes or less":
    exactly 125 is allowed (a Ping, and the Pong echoing it)."""
    s = _open()
    data = _words(125, 11)
    s.send("c2s", s.frame("c2s", OP_PING, data))
    s.send("s2c", s.frame("s2c", OP_PONG, data))
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("minimal-length-boundaries")
def minimal_lengths() -> RuleCase:
    """RFC 6455 §5.2: 126 bytes need the 16-bit length, 65536 bytes the 64-bit one, and
    125 bytes fit in 7 bits: each is the minimal encoding."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_TEXT, _words(126, 12)))
    s.send("s2c", s.frame("s2c", OP_TEXT, _words(125, 13)), s.frame("s2c", OP_TEXT,
                                                                     _words(126, 14)))
    s.send("s2c", s.frame("s2c", OP_BINARY, _noise(65536, 15)))
    s.send("s2c", s.frame("s2c", OP_BINARY, _noise(65535, 16)))
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("unsolicited-pong")
def unsolicited_pong() -> RuleCase:
    """RFC 6455 §5.5.3: "A Pong frame MAY be sent unsolicited.  This serves as a
    unidirectional heartbeat.  A response to an unsolicited Pong frame is not expected.\""""
    s = _open()
    s.send("s2c", s.frame("s2c", OP_PONG, b"server-heartbeat"))
    s.send("c2s", s.frame("c2s", OP_PONG, b""))
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("control-between-fragments")
def control_between_fragments() -> RuleCase:
    """RFC 6455 §5.4: "Control frames ... MAY be injected in the middle of a fragmented
    message."  Pings and Pongs between the fragments of both sides' messages."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_TEXT, b'{"batch": [1, 2, ', fin=False))
    s.send("c2s", s.frame("c2s", OP_PING, b"hb-7"))
    s.send("s2c", s.frame("s2c", OP_BINARY, _noise(2000, 17), fin=False),
           s.frame("s2c", OP_PONG, b"hb-7"), s.frame("s2c", OP_PING, b"srv-1"))
    s.send("c2s", s.frame("c2s", OP_CONT, b"3, 4", fin=False), s.frame("c2s", OP_PONG, b"srv-1"))
    s.send("c2s", s.frame("c2s", OP_CONT, b"]}"))
    s.send("s2c", s.frame("s2c", OP_CONT, _noise(100, 18)))
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("empty-fragments")
def empty_fragments() -> RuleCase:
    """RFC 6455 §5.4: "A sender MAY create fragments of any size for non-control
    messages", including empty ones, and an empty final fragment; an empty message too."""
    s = _open()
    s.send("s2c", s.frame("s2c", OP_TEXT, b"abc", fin=False), s.frame("s2c", OP_CONT, b"",
                                                                        fin=False))
    s.send("s2c", s.frame("s2c", OP_CONT, b"def", fin=False), s.frame("s2c", OP_CONT, b""))
    s.send("c2s", s.frame("c2s", OP_TEXT, b"", fin=False), s.frame("c2s", OP_CONT, b""))
    s.send("c2s", s.frame("c2s", OP_BINARY, b""))
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("utf8-split-across-fragments")
def utf8_split() -> RuleCase:
    """RFC 6455 §5.6 and §8.1: only the whole message must be valid UTF-8; "€" (e2 82 ac)
    split between two fragments, and "😀" split between two TCP segments, are fine."""
    s = _open()
    euro = '{"ccy": "€"}'.encode()
    cut = euro.index(b"\x82")
    s.send("s2c", s.frame("s2c", OP_TEXT, euro[:cut], fin=False))
    s.send("s2c", s.frame("s2c", OP_CONT, euro[cut:]))
    long = ("x" * 1441 + "😀" * 20).encode()
    frame = s.frame("c2s", OP_TEXT, long)
    split = 8 + 1441 + 2  # header (16-bit length, mask), then inside the first emoji
    s.send("c2s", frame, segments=[split, len(frame) - split])
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("data-after-receiving-close")
def data_after_receiving_close() -> RuleCase:
    """RFC 6455 §5.5.1: "An endpoint MAY delay sending a Close frame until its current
    message is sent"; only the side that *sent* a Close must stop sending data."""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1001, "leaving")))
    s.send("s2c", s.frame("s2c", OP_TEXT, b'{"final": "report"}'))
    s.send("s2c", s.frame("s2c", OP_BINARY, _noise(1800, 19)))
    after = s.after("s2c")
    s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1001, "leaving")))
    s.conv.close("s2c")
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


@near_miss("unsolicited-server-no-context-takeover")
def unsolicited_server_no_context_takeover() -> RuleCase:
    """RFC 7692 §7.1.1.1: "A server MAY include the "server_no_context_takeover"
    extension parameter in an extension negotiation response even if the extension
    negotiation offer being accepted by the extension negotiation response didn't include
    the "server_no_context_takeover" extension parameter.\""""
    s = Session()
    s.upgrade(extensions=f"{PMD}; client_max_window_bits",
              response_extensions=f"{PMD}; server_no_context_takeover")
    s.warmup(compressed=True)
    for i in range(3):
        s.send("s2c", s.frame("s2c", OP_TEXT, s.deflate("s2c", b'{"tick": %d}' % i), rsv1=True))
    payload = b'{"after": "compressed"}'
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, s.deflate("s2c", payload), rsv1=True))[0]
    s.close()
    return RuleCase(s.conv, [], after=After("s2c", payload, sent.last),
                    oracles=[*_both_accept(s), s.handshake_oracle(websockets=True, wsproto=True)])


@near_miss("client-max-window-bits-value")
def client_max_window_bits_value() -> RuleCase:
    """RFC 7692 §7.1.2.2: "If a received extension negotiation offer has the
    "client_max_window_bits" extension parameter, the server MAY include the
    "client_max_window_bits" extension parameter in the corresponding extension
    negotiation response" — with a value, even when the offer had none."""
    s = Session()
    s.upgrade(extensions=f"{PMD}; client_max_window_bits",
              response_extensions=f"{PMD}; client_max_window_bits=10")
    s.warmup(compressed=True)
    text = _words(3000, 20)
    s.send("c2s", s.frame("c2s", OP_TEXT, s.deflate("c2s", text), rsv1=True))
    payload = b'{"after": "client window 1024"}'
    sent = s.send("c2s", s.frame("c2s", OP_TEXT, s.deflate("c2s", payload), rsv1=True))[0]
    s.close()
    return RuleCase(s.conv, [], after=After("c2s", payload, sent.last),
                    oracles=[*_both_accept(s), s.handshake_oracle(websockets=True, wsproto=True)])


@near_miss("header-case-and-connection-list")
def odd_case_headers() -> RuleCase:
    """RFC 6455 §4.1 / §4.2.2: header names are case-insensitive and Connection need only
    *include* the "Upgrade" token ("keep-alive, Upgrade", as Firefox sends); the upgrade
    keyword is case-insensitive.  The 101 shares its segment with the first frame."""
    s = Session()
    request = http_head("GET /feed?v=2 HTTP/1.1", [
        ("host", HOST), ("UPGRADE", "websocket"), ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", s.key), ("SEC-WEBSOCKET-VERSION", "13"),
        ("origin", f"https://{HOST}")])
    response = http_head("HTTP/1.1 101 Switching Protocols", [
        ("upgrade", "WebSocket"), ("CONNECTION", "keep-alive, Upgrade"),
        ("sec-websocket-accept", ws_accept(s.key))])
    first = s.frame("s2c", OP_TEXT, b'{"hello": "first frame"}')
    s.upgrade(request=request, response=response, response_tail=first)
    s.warmup()
    after = s.after("c2s")
    s.close()
    return RuleCase(s.conv, [], after=after,
                    oracles=[*_both_accept(s), s.handshake_oracle(websockets=True, wsproto=True)])


@near_miss("pong-answers-latest-ping")
def pong_answers_latest() -> RuleCase:
    """RFC 6455 §5.5.3: "If an endpoint receives a Ping frame and has not yet sent Pong
    frame(s) in response to previous Ping frame(s), the endpoint MAY elect to send a Pong
    frame for only the most recently processed Ping frame.\""""
    s = _open()
    s.send("c2s", s.frame("c2s", OP_PING, b"hb-10"), s.frame("c2s", OP_PING, b"hb-11"),
           s.frame("c2s", OP_PING, b"hb-12"))
    s.send("s2c", s.frame("s2c", OP_PONG, b"hb-12"))
    after = s.after("s2c")
    s.close()
    return RuleCase(s.conv, [], after=after, oracles=_both_accept(s))


# ============================================================================================
# Command line
# ============================================================================================


def _slug(name: str) -> str:
    return name.replace("/", "--")


def main(argv: Sequence[str] | None = None) -> int:
    """Write one pcap per case (and per near-miss, prefixed ``ok--``) into OUTDIR."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tests.rulecases OUTDIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for prefix, table in (("", CASES), ("ok--", NEAR_MISSES)):
        for name, build in table.items():
            c = build()
            path = out / f"{prefix}{_slug(name)}.pcap"
            c.write(path)
            rows = ", ".join(f"{r.rule} {r.direction or '-'} #{r.packet}"
                             for r in (*c.rows, *c.info)) or "no error or warning"
            note = ""
            if c.limits is not None:
                note = f"  [analyze with DecoderLimits(max_payload={c.limits.max_payload})]"
            elif c.max_buffered is not None:
                note = f"  [analyze with Options(max_buffered={c.max_buffered})]"
            print(f"{path}: {rows}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
