"""wss:// from headless Chromium: the browser writes its key log (SSLKEYLOGFILE) and
loads a page over HTTPS whose script talks to a local python-websockets server
(tests/tls_page_server.py).  The page's own HTTPS connection is decrypted too,
and gives no messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import wsanalyze
from tests import pcaptools
from tests.tls_page_server import MESSAGES
from tests.tlstools import HERE, ROOT, Tcpdump, free_port, make_cert

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--ignore-certificate-errors"]


def test_chromium_wss_with_sslkeylogfile(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    keylog, pcap, truth = tmp_path / "keys.txt", tmp_path / "chrome.pcap", tmp_path / "t.jsonl"
    server = subprocess.Popen(
        [sys.executable, str(HERE / "tls_page_server.py"), str(port), str(cert), str(key),
         str(truth)], stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == b"listening\n"
        with Tcpdump(pcap, f"tcp port {port}"):
            browser = subprocess.Popen(
                [*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}",
                 f"https://localhost:{port}/page.html"],
                env=dict(os.environ, SSLKEYLOGFILE=str(keylog)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                # The server says "done" once the page's WebSocket has closed.
                assert server.stdout.readline() == b"done\n"
            finally:
                browser.terminate()
                browser.wait(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=60)
    result = wsanalyze.analyze(pcap, tls_keylog=keylog)
    m = result.messages[result.messages["type"] == "text"]
    sent_by_server = [bytes.fromhex(json.loads(line)["payload"]).decode()
                      for line in truth.read_text().splitlines()]
    assert list(m[m["direction"] == "s2c"]["text"]) == sent_by_server == [
        "hello browser", *MESSAGES]
    assert list(m[m["direction"] == "c2s"]["text"]) == [*MESSAGES, "bye"]
    # The page came over its own HTTPS connection: decrypted, not WebSocket, no rows.
    streams = {s.stream for s in pcaptools.tcp_segments(pcap)}
    assert len(streams) >= 2
    # Chromium may also open a TLS connection it abandons after its ClientHello: that
    # one is reported (capture.tls-no-key, a row without messages), never decoded.
    c = result.connections
    ws = c[c["path"] == "/ws"]
    assert len(ws) == 1
    others = set(c["connection"]) - set(ws["connection"])
    assert not set(result.messages["connection"]) & others
    assert not c[c["connection"].isin(others)]["decrypted"].fillna(False).any()
    conn = ws.iloc[0].to_dict()
    assert (conn["path"], conn["tls_version"], conn["sni"], conn["decrypted"]) == (
        "/ws", "TLS 1.3", "localhost", True)
    assert "HeadlessChrome" in conn["user_agent"]
    assert (conn["close_code"], conn["close_reason"]) == (1000, "done")
    v = result.violations
    assert list(v[v["connection"].isin(ws["connection"])]["rule"]) == []
    # The abandoned one (if any): its ClientHello's secrets never reach the key log.
    assert set(v[v["connection"].isin(others)]["rule"]) <= {"capture.tls-no-key"}
    assert set(v["connection"]) <= set(c["connection"])
