"""wss:// between Node ``ws`` peers over ``https.createServer``; the key log is what
the server's ``keylog`` event wrote (tools/samples_node/wss_peers.js)."""

from __future__ import annotations

from pathlib import Path

import pytest

import wsanalyze
from tests.tlstools import run_node_peers, tshark_frames


@pytest.mark.parametrize("ciphers,cipher", [
    (None, "TLS_AES_256_GCM_SHA384"),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"),
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
])
def test_node_ws_over_https(tmp_path: Path, ciphers: str | None, cipher: str) -> None:
    run = run_node_peers(tmp_path, ciphers=ciphers)
    result = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog)
    m = result.messages[result.messages["type"].isin(["text", "binary"])]
    got = [(r.direction, r.type, bytes(r.payload).hex()) for r in m.itertuples()]
    assert got == [(t["direction"], t["type"], t["payload"]) for t in run.truth]
    assert len(got) == 6
    conn = result.connections.iloc[0].to_dict()
    assert {k: conn[k] for k in ("tls_version", "tls_cipher", "sni", "path", "deflate",
                                 "close_code", "close_reason")} == {
        "tls_version": "TLS 1.3", "tls_cipher": cipher, "sni": "localhost", "path": "/node",
        "deflate": True, "close_code": 1000, "close_reason": "node done"}
    assert list(result.violations["rule"]) == []
    # tshark with the same key log sees the same frames (7-bit length field).
    frames = [(r.packet, r.opcode, min(r.payload_length, 126 if r.payload_length < 65536
                                       else 127)) for r in result.frames.itertuples()]
    theirs = tshark_frames(run, run.keylog)
    assert [f[1:] for f in frames] == [t[1:] for t in theirs] and len(theirs) == 8
