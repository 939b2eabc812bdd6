"""Hostile and broken TLS: crafted records around a TLS 1.3 session written with
known secrets (tests/tlssynth.py).  Every case gives its row, decodes nothing
that did not authenticate, and never raises."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

import wsanalyze
from tests.pcaptools import Conversation, upgrade_request, upgrade_response, ws_frame, ws_key
from tests.tlssynth import Tls13Session, handshake, record
from wsanalyze.tls.follower import Plain, TlsFollower
from wsanalyze.tls.keylog import KeyLog
from wsanalyze.tls.records import MAX_RECORD_12
from wsanalyze.tls.session import TlsKeys

MASK = b"\x01\x02\x03\x04"
KEY = ws_key(3)


def opened(seed: int = 1, **kw: object) -> tuple[Conversation, Tls13Session]:
    """TCP and TLS handshakes, then the WebSocket upgrade inside TLS."""
    s = Tls13Session(random.Random(seed), **kw)  # type: ignore[arg-type]
    c = Conversation(server=("127.0.0.1", 9443))
    c.handshake()
    c.send("c2s", s.client_hello())
    c.send("s2c", s.server_flight())
    c.send("c2s", s.client_finished() + s.app(True, upgrade_request("example.com", "/x", KEY)))
    c.send("s2c", s.app(False, upgrade_response(KEY)))
    return c, s


def text(s: Tls13Session, from_client: bool, payload: bytes, padding: int = 0) -> bytes:
    return s.app(from_client, ws_frame(1, payload, mask=MASK if from_client else None),
                 padding)


def run(c: Conversation, s: Tls13Session, tmp_path: Path,
        keylog: str | None = None) -> wsanalyze.AnalysisResult:
    c.close()
    path, keys = tmp_path / "x.pcap", tmp_path / "keys.txt"
    c.write(path)
    keys.write_text(s.keylog() if keylog is None else keylog)
    return wsanalyze.analyze(path, tls_keylog=keys)


def texts(result: wsanalyze.AnalysisResult) -> list[tuple[str, str]]:
    m = result.messages[result.messages["type"] == "text"]
    return [(r.direction, r.text) for r in m.itertuples()]


def test_synthetic_session_with_padding_and_key_updates(tmp_path: Path) -> None:
    c, s = opened(suite=0x1302)
    c.send("c2s", text(s, True, b"padded", padding=300))
    c.send("s2c", s.key_update(False) + text(s, False, b"after server update"))
    c.send("c2s", s.key_update(True) + s.key_update(True) + text(s, True, b"two updates"))
    c.send("c2s", s.app(True, ws_frame(8, b"\x03\xe8", mask=MASK)))
    c.send("s2c", s.app(False, ws_frame(8, b"\x03\xe8")))
    result = run(c, s, tmp_path)
    assert texts(result) == [("c2s", "padded"), ("s2c", "after server update"),
                             ("c2s", "two updates")]
    conn = result.connections.iloc[0]
    assert (conn["tls_cipher"], conn["sni"]) == ("TLS_AES_256_GCM_SHA384", "example.com")
    assert pd.isna(conn["alpn"])  # typed DataFrames: a missing string is <NA>
    assert list(result.violations["rule"]) == []


def test_oversized_record_is_reported_and_skipped(tmp_path: Path) -> None:
    c, s = opened()
    c.send("s2c", text(s, False, b"before"))
    # A header claiming 20000 bytes (TLS 1.3 allows 2^14 + 256), then garbage.
    packet = c.send("s2c", b"\x17\x03\x03\x4e\x20" + bytes(range(256)) * 4)[0]
    c.send("s2c", text(s, False, b"after"))
    result = run(c, s, tmp_path)
    v = result.violations
    bad = v[v["rule"] == "capture.tls-invalid"]
    assert list(bad["packet"]) == [packet]
    assert "not a TLS record header (a 20000-byte record" in bad["message"].iloc[0]
    assert ("s2c", "before") in texts(result)
    assert "capture.tls-bad-key" not in list(v["rule"])


def test_garbage_handshake_gives_a_row(tmp_path: Path) -> None:
    c = Conversation(server=("127.0.0.1", 9443))
    c.handshake()
    # A ClientHello whose body is cut short and full of garbage.
    p1 = c.send("c2s", record(22, handshake(1, b"\x03\x03" + b"\xff" * 20)))[0]
    c.send("s2c", record(22, handshake(2, b"\x00" * 3)))
    c.close()
    path = tmp_path / "g.pcap"
    c.write(path)
    result = wsanalyze.analyze(path)
    v = result.violations
    assert list(v["rule"])[:1] == ["capture.tls-invalid"]
    assert v["packet"].iloc[0] == p1 and "malformed" in v["message"].iloc[0]
    assert result.messages.empty


def test_absurd_handshake_length(tmp_path: Path) -> None:
    c = Conversation(server=("127.0.0.1", 9443))
    c.handshake()
    c.send("c2s", record(22, b"\x01\xff\xff\xff" + b"\x00" * 100))
    c.close()
    path = tmp_path / "a.pcap"
    c.write(path)
    result = wsanalyze.analyze(path)
    assert "capture.tls-invalid" in list(result.violations["rule"])
    assert result.messages.empty


def test_tampered_record_stops_that_direction(tmp_path: Path) -> None:
    c, s = opened()
    c.send("s2c", text(s, False, b"good"))
    rec = bytearray(text(s, False, b"tampered"))
    rec[-1] ^= 1
    packet = c.send("s2c", bytes(rec))[0]
    c.send("s2c", text(s, False, b"never shown"))
    c.send("c2s", text(s, True, b"client still fine"))
    result = run(c, s, tmp_path)
    assert texts(result) == [("s2c", "good"), ("c2s", "client still fine")]
    v = result.violations
    row = v[v["rule"] == "capture.tls-bad-key"]
    assert list(row["packet"]) == [packet] and list(row["direction"]) == ["s2c"]


def test_record_layer_memory_is_bounded() -> None:
    s = Tls13Session(random.Random(2))
    log = KeyLog()
    log.add_text(s.keylog(), "test")
    f = TlsFollower(TlsKeys(log), 0)
    f.data(0, 1.0, 1, 0, s.client_hello())
    off = len(s.server_flight())
    f.data(1, 1.0, 2, 0, s.server_flight())
    rng = random.Random(5)
    biggest = 0
    for i in range(300):  # 19 MB of bytes that are not records
        chunk = rng.randbytes(65536)
        out = f.data(1, 1.0, 3 + i, off, chunk)
        off += len(chunk)
        assert not any(type(o) is Plain for o in out)
        biggest = max(biggest, len(f._dirs[1].reader.buf))
    assert biggest <= MAX_RECORD_12 + 5 + 65536
