"""wss:// through ``openssl s_client`` against a python-websockets server: TLS 1.3
KeyUpdate in both directions, TLS 1.2 renegotiation and resumption (ticket and
session id), with the key log s_client wrote itself (tests/sclient.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import wsanalyze
from tests.sclient import EchoServer, s_client
from tests.tlstools import Tcpdump, free_port, make_cert
from wsanalyze.tls.handshake import HRR_RANDOM


def capture(folder: Path, name: str, *, tls: str, no_ticket: bool = False,
            groups: str | None = None,
            sessions: list[tuple[list[tuple[str, bytes]], list[str]]]
            ) -> tuple[Path, Path, list[list[tuple[str, str, bytes]]]]:
    """Run s_client sessions against one echo server while tcpdump records."""
    cert, key = make_cert(folder)
    port = free_port()
    keylog, pcap = folder / f"{name}.keys.txt", folder / f"{name}.pcap"
    sent = []
    with EchoServer(port, cert, key, tls=tls, no_ticket=no_ticket, groups=groups), \
            Tcpdump(pcap, f"tcp port {port}"):
        for steps, args in sessions:
            sent.append(s_client(port, keylog, steps, args))
    return pcap, keylog, sent


def messages(result: wsanalyze.AnalysisResult, conn: int) -> list[tuple[str, str, bytes]]:
    m = result.messages
    m = m[(m["connection"] == conn) & m["type"].isin(["text", "binary"])]
    return [(r.direction, r.type, bytes(r.payload)) for r in m.itertuples() if r.complete]


def keep_lines(keylog: Path, out: Path, keep: object) -> Path:
    lines = [ln for ln in keylog.read_text().splitlines()
             if ln and not ln.startswith("#") and keep(ln)]  # type: ignore[operator]
    out.write_text("\n".join(lines) + "\n")
    return out


KEY_UPDATE_STEPS = [("text", b"before any update"), ("command", b"K"),
                    ("text", b"after K: both sides updated"), ("command", b"k"),
                    ("binary", b"\x00\x01after k: client updated"), ("command", b"K"),
                    ("text", b"third generation " * 20)]


@pytest.fixture(scope="module")
def key_update(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    return capture(tmp_path_factory.mktemp("ku"), "ku", tls="1.3",
                   sessions=[(KEY_UPDATE_STEPS, ["-tls1_3"])])


def test_key_updates_with_openssl_key_log(key_update: tuple[Path, Path, list]) -> None:
    pcap, keylog, sent = key_update
    text = keylog.read_text()
    # OpenSSL logs the updated secrets under its own labels; they are accepted.
    assert text.count("CLIENT_TRAFFIC_SECRET_N") >= 3 and "SERVER_TRAFFIC_SECRET_N" in text
    result = wsanalyze.analyze(pcap, tls_keylog=keylog)
    assert messages(result, 0) == sent[0] and len(sent[0]) == 8
    assert list(result.violations["rule"]) == []
    assert result.connections.iloc[0]["tls_version"] == "TLS 1.3"


def test_key_updates_derived_from_standard_labels(key_update: tuple[Path, Path, list],
                                                  tmp_path: Path) -> None:
    pcap, keylog, sent = key_update
    standard = keep_lines(keylog, tmp_path / "standard.txt",
                          lambda ln: not ln.split()[0].endswith("_N"))
    assert "_N " not in standard.read_text()
    result = wsanalyze.analyze(pcap, tls_keylog=standard)
    assert messages(result, 0) == sent[0]
    assert list(result.violations["rule"]) == []


def test_renegotiation_is_reported_and_followed(tmp_path: Path) -> None:
    steps = [("text", b"before renegotiation"), ("command", b"R"),
             ("text", b"after renegotiation")]
    pcap, keylog, sent = capture(tmp_path, "reneg", tls="1.2",
                                 sessions=[(steps, ["-tls1_2"])])
    assert keylog.read_text().count("CLIENT_RANDOM") == 2
    result = wsanalyze.analyze(pcap, tls_keylog=keylog)
    assert messages(result, 0) == sent[0]
    v = result.violations
    assert list(v["rule"]) == ["capture.tls-renegotiation"]
    second = keylog.read_text().splitlines()[-1].split()[1]
    assert second in v["message"].iloc[0]


@pytest.mark.parametrize("how", ["ticket", "session-id"])
def test_tls12_resumption(tmp_path: Path, how: str) -> None:
    no_ticket = how == "session-id"
    extra = ["-tls1_2"] + (["-no_ticket"] if no_ticket else [])
    sess = str(tmp_path / "session.pem")
    pcap, keylog, sent = capture(tmp_path, how, tls="1.2", no_ticket=no_ticket, sessions=[
        ([("text", b"original session")], [*extra, "-sess_out", sess]),
        ([("text", b"resumed session")], [*extra, "-sess_in", sess])])
    lines = [ln for ln in keylog.read_text().splitlines() if ln.startswith("CLIENT_RANDOM")]
    # Both handshakes logged, with the same master secret: the second was resumed.
    assert len(lines) == 2 and lines[0].split()[2] == lines[1].split()[2]
    for log in (keylog, keep_lines(keylog, tmp_path / "original-only.txt",
                                   lambda ln: ln == lines[0])):
        result = wsanalyze.analyze(pcap, tls_keylog=log)
        assert messages(result, 0) == sent[0]
        assert messages(result, 1) == sent[1]
        assert list(result.violations["rule"]) == []
        assert list(result.connections["decrypted"]) == [True, True]


def test_hello_retry_request(tmp_path: Path) -> None:
    # The client's key share is for X25519, the server takes only P-256: it asks
    # again (HelloRetryRequest) and the second ClientHello keeps the client random.
    pcap, keylog, sent = capture(tmp_path, "hrr", tls="1.3", groups="P-256", sessions=[
        ([("text", b"after a retry")], ["-tls1_3", "-groups", "X25519:P-256"])])
    hrr = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tls.handshake.type == 2", "-T", "fields",
         "-e", "tls.handshake.random"], capture_output=True, text=True, check=True).stdout
    assert HRR_RANDOM.hex() in hrr.replace(":", "")  # it really was a retry
    result = wsanalyze.analyze(pcap, tls_keylog=keylog)
    assert messages(result, 0) == sent[0]
    assert list(result.violations["rule"]) == []
