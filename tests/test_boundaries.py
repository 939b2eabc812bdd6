"""Every rule of the registry at its boundaries: the last legal and the first illegal
value on each side, end to end (a crafted capture through ``wsanalyze.analyze``).

Each case is a short connection (TCP handshake, Upgrade, the value under test,
a normal message, closing handshake, FIN) and states the exact error/warning rows
it must produce as ``(rule, direction, packet)``, or none.  The expectations come
from the RFCs (quoted per group), never from the analyzer.
"""

from __future__ import annotations

import base64
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import wsanalyze
from tests.pcaptools import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ws_close_payload
from tests.rulecases import HOST, Session, http_head

Key = tuple[str, str | None, int]


@dataclass
class Built:
    session: Session
    rows: list[Key]
    after: tuple[str, bytes, int] | None = None
    """A message sent after the value under test: (direction, payload, packet)."""


def _finish(s: Session, rows: list[Key], *, code: int = 1000) -> Built:
    after = s.after("s2c", b'{"after": "boundary"}')
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(code, "bye")))
    s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(code, "bye")))
    s.conv.close("s2c")
    return Built(s, rows, (after.direction, after.payload, after.packet))


def _analyze(tmp_path: Path, built: Built) -> list[Key]:
    path = tmp_path / "case.pcap"
    built.session.conv.write(path)
    result = wsanalyze.analyze(path)
    v = result.violations
    bad = v[v["severity"].isin(["error", "warning"])]
    if built.after is not None:
        direction, payload, packet = built.after
        m = result.messages
        hit = m[(m["direction"] == direction) & (m["packet"] == packet)]
        assert list(hit["payload"]) == [payload], "decoding went on after the value"
    return sorted((str(r.rule), r.direction, int(r.packet)) for r in bad.itertuples())


def _session(**upgrade: object) -> Session:
    s = Session()
    s.upgrade(**upgrade)  # type: ignore[arg-type]
    return s


# ============================================================================================
# Payload length encodings (RFC 6455 §5.2): "the minimal number of bytes MUST be used"
# ============================================================================================

LENGTHS: list[tuple[int, str, bool]] = [
    # (payload length, encoding, minimal?)
    (0, "minimal", True), (125, "minimal", True), (125, "16", False), (126, "16", True),
    (126, "64", False), (0xFFFF, "16", True), (0xFFFF, "64", False), (0x10000, "64", True),
    (0, "16", False), (0, "64", False), (125, "64", False),
]


@pytest.mark.parametrize(("n", "encoding", "minimal"), LENGTHS,
                         ids=[f"{n}-{e}" for n, e, _ in LENGTHS])
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_length_encoding_boundaries(tmp_path: Path, n: int, encoding: str, minimal: bool,
                                    direction: str) -> None:
    s = _session()
    payload = bytes(i % 251 for i in range(n))
    sent = s.send(direction, s.frame(direction, OP_BINARY, payload,  # type: ignore[arg-type]
                                     length_encoding=encoding))[0]
    expected = [] if minimal else [("frame.non-minimal-length", direction, sent.first)]
    assert _analyze(tmp_path, _finish(s, [])) == expected


# ============================================================================================
# Control frames (RFC 6455 §5.5): "MUST have a payload length of 125 bytes or less"
# ============================================================================================


@pytest.mark.parametrize("n", [124, 125, 126, 127])
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_length_boundaries(tmp_path: Path, n: int, opcode: int) -> None:
    s = _session()
    body = ws_close_payload(1000, "r" * (n - 2)) if opcode == OP_CLOSE else b"p" * n
    sent = s.send("s2c", s.frame("s2c", opcode, body))[0]
    rows = [] if n <= 125 else [("control.too-long", "s2c", sent.first)]
    if opcode == OP_PING:  # answered, so ping.unanswered stays out of it
        pong = s.send("c2s", s.frame("c2s", OP_PONG, body))[0]
        rows += [] if n <= 125 else [("control.too-long", "c2s", pong.first)]
    rows.sort()
    if opcode == OP_CLOSE:
        s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1000, "bye")))
        s.conv.close("s2c")
        assert _analyze(tmp_path, Built(s, [])) == rows
        return
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# Close codes (RFC 6455 §7.4.1, §7.4.2 and the IANA registry)
# ============================================================================================

LEGAL_CODES = [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
ILLEGAL_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


@pytest.mark.parametrize("code", LEGAL_CODES + ILLEGAL_CODES)
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_close_code_boundaries(tmp_path: Path, code: int, direction: str) -> None:
    s = _session()
    after = s.after("c2s" if direction == "s2c" else "s2c")
    other = "s2c" if direction == "c2s" else "c2s"
    sent = s.send(direction, s.frame(direction, OP_CLOSE,  # type: ignore[arg-type]
                                     ws_close_payload(code, "closing")))[0]
    s.send(other, s.frame(other, OP_CLOSE, ws_close_payload(1000, "ok")))  # type: ignore[arg-type]
    s.conv.close("s2c")
    rows = [] if code in LEGAL_CODES else [("close.invalid-code", direction, sent.first)]
    built = Built(s, rows, (after.direction, after.payload, after.packet))
    assert _analyze(tmp_path, built) == rows


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_close_payload_length_boundaries(tmp_path: Path, n: int) -> None:
    """RFC 6455 §5.5.1: an empty body is fine, one byte cannot hold a status code."""
    s = _session()
    body = ws_close_payload(1000, "x")[:n]
    sent = s.send("c2s", s.frame("c2s", OP_CLOSE, body))[0]
    s.send("s2c", s.frame("s2c", OP_CLOSE, body if n != 1 else b""))
    s.conv.close("s2c")
    rows = [("close.one-byte-payload", "c2s", sent.first)] if n == 1 else []
    assert _analyze(tmp_path, Built(s, [])) == rows


# ============================================================================================
# UTF-8 (RFC 6455 §5.6, §8.1; §5.5.1 for close reasons): cut at every position
# ============================================================================================

CHARS = {2: "é", 3: "€", 4: "😀"}
CUTS = [(size, cut) for size in CHARS for cut in range(1, size)]
CUT_IDS = [f"{size}byte-cut{cut}" for size, cut in CUTS]


def _cut_texts(size: int, cut: int) -> list[tuple[bytes, bool]]:
    """(payload, valid?) around one character of ``size`` bytes cut after ``cut`` bytes:
    ending inside it, continuing with ASCII after the cut, and the whole character."""
    char = CHARS[size].encode()
    assert len(char) == size
    return [(b'{"sym": "' + char[:cut], False), (b'{"sym": "' + char[:cut] + b'"}', False),
            (b'{"sym": "' + char + b'"}', True), (char[:cut], False), (char, True)]


@pytest.mark.parametrize(("size", "cut"), CUTS, ids=CUT_IDS)
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_text_cut_inside_a_character(tmp_path: Path, size: int, cut: int,
                                     compressed: bool) -> None:
    pmd = "permessage-deflate"
    s = _session(extensions=pmd, response_extensions=pmd) if compressed else _session()
    rows: list[Key] = []
    for payload, valid in _cut_texts(size, cut):
        if compressed:
            frame = s.frame("s2c", OP_TEXT, s.deflate("s2c", payload), rsv1=True)
        else:
            frame = s.frame("s2c", OP_TEXT, payload)
        sent = s.send("s2c", frame)[0]
        if not valid:
            rows.append(("text.invalid-utf8", "s2c", sent.last))
    assert _analyze(tmp_path, _finish(s, [])) == sorted(rows)


@pytest.mark.parametrize(("size", "cut"), CUTS, ids=CUT_IDS)
def test_close_reason_cut_inside_a_character(tmp_path: Path, size: int, cut: int) -> None:
    char = CHARS[size].encode()
    s = _session()
    bad = s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1001, b"gone " + char[:cut])))
    good = s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1001, b"gone " + char)))
    s.conv.close("s2c")
    assert good[0].first > bad[0].first
    assert _analyze(tmp_path, Built(s, [])) == [
        ("close.invalid-reason-utf8", "c2s", bad[0].first)]


@pytest.mark.parametrize(("size", "cut"), CUTS, ids=CUT_IDS)
def test_fragmented_text_cut_inside_a_character(tmp_path: Path, size: int, cut: int) -> None:
    """Split between fragments the character is fine; a message ending inside it is not."""
    char = CHARS[size].encode()
    s = _session()
    s.send("c2s", s.frame("c2s", OP_TEXT, b"a" + char[:cut], fin=False))
    s.send("c2s", s.frame("c2s", 0, char[cut:] + b"z"))  # completes it: valid
    s.send("c2s", s.frame("c2s", OP_TEXT, b"b" + char[:cut], fin=False))
    last = s.send("c2s", s.frame("c2s", 0, b""))[0]  # ends inside it
    assert _analyze(tmp_path, _finish(s, [])) == [("text.invalid-utf8", "c2s", last.last)]


# ============================================================================================
# Sec-WebSocket-Key (RFC 6455 §4.1): base64 of exactly 16 bytes
# ============================================================================================


def _request(start_line: str, key: str) -> bytes:
    return http_head(start_line, [("Host", HOST), ("Upgrade", "websocket"),
                                  ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
                                  ("Sec-WebSocket-Version", "13")])


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 24])
def test_key_length_boundaries(tmp_path: Path, size: int) -> None:
    key = base64.b64encode(bytes(range(40, 40 + size))).decode()
    s = Session()
    s.key = key
    req, _ = s.upgrade(request=_request("GET /feed HTTP/1.1", key))
    rows = [] if size == 16 else [("handshake.bad-key", "c2s", req[-1])]
    assert _analyze(tmp_path, _finish(s, [])) == rows


@pytest.mark.parametrize("key", ["not base64 at all!!", "AAECAwQFBgcICQoLDA0ODw",
                                 "AAECAwQFBgcICQoLDA0ODw==="])
def test_key_not_canonical_base64(tmp_path: Path, key: str) -> None:
    """Missing padding or extra characters: not the base64 of 16 bytes."""
    s = Session()
    s.key = key
    req, _ = s.upgrade(request=_request("GET /feed HTTP/1.1", key))
    assert _analyze(tmp_path, _finish(s, [])) == [("handshake.bad-key", "c2s", req[-1])]


# ============================================================================================
# Request line (RFC 6455 §4.1): "The method of the request MUST be GET", HTTP/1.1 or later
# ============================================================================================


@pytest.mark.parametrize(("start", "legal"), [
    ("GET /feed HTTP/1.1", True), ("GET /feed HTTP/1.2", True), ("GET /feed HTTP/2.0", True),
    ("GET /feed HTTP/1.0", False), ("POST /feed HTTP/1.1", False), ("PUT /feed HTTP/1.1", False),
    ("HEAD /feed HTTP/1.1", False), ("OPTIONS /feed HTTP/1.1", False),
    ("DELETE /feed HTTP/1.1", False), ("PATCH /feed HTTP/1.1", False),
])
def test_request_line_boundaries(tmp_path: Path, start: str, legal: bool) -> None:
    s = Session()
    req, _ = s.upgrade(request=_request(start, s.key))
    rows = [] if legal else [("handshake.request-invalid", "c2s", req[-1])]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# permessage-deflate window bits (RFC 7692 §7.1.2): 8 to 15 inclusive
# ============================================================================================


def _deflate_small(payload: bytes) -> bytes:
    """Raw DEFLATE of a message under 256 bytes: no distance can exceed an 8-bit window
    (zlib cannot write a raw stream with an 8-bit window itself)."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -9)
    out = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


WINDOW_BITS = [(7, False), (8, True), (9, True), (15, True), (16, False), (0, False)]


@pytest.mark.parametrize(("bits", "legal"), WINDOW_BITS)
@pytest.mark.parametrize("param", ["server_max_window_bits", "client_max_window_bits"])
def test_window_bits_boundaries(tmp_path: Path, bits: int, legal: bool, param: str) -> None:
    offer = "permessage-deflate; client_max_window_bits"
    s = Session()
    _, resp = s.upgrade(extensions=offer,
                        response_extensions=f"permessage-deflate; {param}={bits}")
    payload = b'{"tick": 1, "tick": 1, "tick": 1}'
    s.send("s2c", s.frame("s2c", OP_TEXT, _deflate_small(payload), rsv1=True))
    s.send("c2s", s.frame("c2s", OP_TEXT, _deflate_small(payload), rsv1=True))
    rows = [] if legal else [("deflate.bad-negotiation", "s2c", resp[-1])]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# Reserved opcodes (RFC 6455 §5.2): 0x3-0x7 and 0xB-0xF
# ============================================================================================

OPCODES: list[tuple[int, bool]] = [(0x2, True), (0x3, False), (0x7, False), (0x8, True),
                                   (0xA, True), (0xB, False), (0xF, False)]


@pytest.mark.parametrize(("opcode", "legal"), OPCODES, ids=[f"0x{o:X}" for o, _ in OPCODES])
def test_opcode_boundaries(tmp_path: Path, opcode: int, legal: bool) -> None:
    s = _session()
    if opcode == OP_CLOSE:
        sent = s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1000, "bye")))[0]
        s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1000, "bye")))
        s.conv.close("s2c")
        assert _analyze(tmp_path, Built(s, [])) == []
        return
    sent = s.send("s2c", s.frame("s2c", opcode, b"xyz"))[0]
    rows = [] if legal else [("frame.reserved-opcode", "s2c", sent.first)]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# Reserved bits (RFC 6455 §5.2, RFC 7692 §6): RSV1 only with permessage-deflate
# ============================================================================================


@pytest.mark.parametrize("rsv", ["rsv1", "rsv2", "rsv3"])
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_reserved_bits(tmp_path: Path, rsv: str, deflate: bool) -> None:
    pmd = "permessage-deflate"
    s = _session(extensions=pmd, response_extensions=pmd) if deflate else _session()
    payload = b'{"px": 1}'
    body = s.deflate("s2c", payload) if deflate and rsv == "rsv1" else payload
    sent = s.send("s2c", s.frame("s2c", OP_TEXT, body, **{rsv: True}))[0]
    legal = deflate and rsv == "rsv1"
    rows = [] if legal else [("frame.reserved-bits", "s2c", sent.first)]
    assert _analyze(tmp_path, _finish(s, [])) == rows



# ============================================================================================
# Back-reference distance (RFC 7692 §7.2.1): at most 2**max_window_bits bytes back
# ============================================================================================


def _stored(data: bytes) -> bytes:
    """A DEFLATE stored block (RFC 1951 §3.2.4) without BFINAL, then the sync flush's
    empty stored block header: literal bytes, no back-reference."""
    n = len(data)
    return b"\x00" + n.to_bytes(2, "little") + (n ^ 0xFFFF).to_bytes(2, "little") + data + b"\x00"


@pytest.mark.parametrize(("distance", "legal"), [(511, True), (512, True), (513, False)])
def test_back_reference_distance_boundaries(tmp_path: Path, distance: int, legal: bool) -> None:
    """Agreed server_max_window_bits=9 (a 512-byte window): the server's second message
    copies 64 bytes from ``distance`` bytes back in the first one."""
    ext = "permessage-deflate; server_max_window_bits=9"
    s = _session(extensions=ext, response_extensions=ext)
    history = random.Random(9).randbytes(2000)  # no 3-byte string occurs twice
    s.send("s2c", s.frame("s2c", OP_BINARY, _stored(history), rsv1=True))
    copied = history[len(history) - distance:][:64]
    comp = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=history)
    second = (comp.compress(copied) + comp.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert len(second) < 16  # one match, not literals
    sent = s.send("s2c", s.frame("s2c", OP_BINARY, second, rsv1=True))[0]
    rows = [] if legal else [("deflate.window-bits-exceeded", "s2c", sent.last)]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# The message size limit (RFC 6455 §10.4): the limit itself is allowed
# ============================================================================================


@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_message_size_limit_boundaries(tmp_path: Path, extra: int, compressed: bool) -> None:
    from wsanalyze.websocket.decoder import DecoderLimits

    limit = 4096
    pmd = "permessage-deflate"
    s = _session(extensions=pmd, response_extensions=pmd) if compressed else _session()
    payload = b"z" * (limit + extra)
    body = s.deflate("s2c", payload) if compressed else payload
    sent = s.send("s2c", s.frame("s2c", OP_BINARY, body, rsv1=compressed))[0]
    _finish(s, [])
    path = tmp_path / "limit.pcap"
    s.conv.write(path)
    result = wsanalyze.analyze(path, limits=DecoderLimits(max_payload=limit))
    v = result.violations
    assert [(r.rule, r.direction, r.packet) for r in v.itertuples()] == (
        [("message.too-big", "s2c", sent.last)] if extra > 0 else [])
    row = result.messages[result.messages["packet"] == sent.last].iloc[0]
    assert (row.length, bool(row.truncated)) == (limit + extra, extra > 0)
    assert row.payload == payload[:limit]


# ============================================================================================
# Sec-WebSocket-Version (RFC 6455 §4.1): "The value of this header field MUST be 13"
# ============================================================================================


@pytest.mark.parametrize(("version", "legal"), [("12", False), ("13", True), ("14", False),
                                                ("8", False), ("", False)])
def test_version_boundaries(tmp_path: Path, version: str, legal: bool) -> None:
    s = Session()
    head = [("Host", HOST), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", s.key), ("Sec-WebSocket-Version", version)]
    req, _ = s.upgrade(request=http_head("GET /feed HTTP/1.1", head))
    rows = [] if legal else [("handshake.bad-version", "c2s", req[-1])]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# Pong payload (RFC 6455 §5.5.3): "identical Application data" to the Ping's
# ============================================================================================


@pytest.mark.parametrize(("ping", "pong"), [
    (b"hb-42", b"hb-42"), (b"hb-42", b"hb-43"), (b"hb-42", b"hb-4"), (b"hb-42", b"hb-42!"),
    (b"", b""), (b"", b"x"), (b"p" * 125, b"p" * 125), (b"p" * 125, b"p" * 124 + b"q"),
])
def test_pong_payload_boundaries(tmp_path: Path, ping: bytes, pong: bytes) -> None:
    s = _session()
    s.send("c2s", s.frame("c2s", OP_PING, ping))
    sent = s.send("s2c", s.frame("s2c", OP_PONG, pong))[0]
    rows = [] if ping == pong else [("pong.payload-mismatch", "s2c", sent.first)]
    assert _analyze(tmp_path, _finish(s, [])) == rows


# ============================================================================================
# Masking (RFC 6455 §5.1) and control fragmentation (§5.5), each way
# ============================================================================================


@pytest.mark.parametrize(("direction", "masked"), [("c2s", True), ("c2s", False),
                                                   ("s2c", False), ("s2c", True)])
def test_masking_boundaries(tmp_path: Path, direction: str, masked: bool) -> None:
    s = _session()
    sent = s.send(direction, s.frame(direction, OP_TEXT, b"{}",  # type: ignore[arg-type]
                                     masked=masked))[0]
    legal = masked == (direction == "c2s")
    rule = "frame.client-unmasked" if direction == "c2s" else "frame.server-masked"
    assert _analyze(tmp_path, _finish(s, [])) == ([] if legal else
                                                  [(rule, direction, sent.first)])


@pytest.mark.parametrize("fin", [True, False])
def test_control_fin_boundaries(tmp_path: Path, fin: bool) -> None:
    s = _session()
    sent = s.send("c2s", s.frame("c2s", OP_PING, b"hb", fin=fin))[0]
    s.send("s2c", s.frame("s2c", OP_PONG, b"hb"))
    rows = [] if fin else [("control.fragmented", "c2s", sent.first)]
    assert _analyze(tmp_path, _finish(s, [])) == rows
