"""wss://: real TLS traffic between python-websockets peers on loopback, captured
with tcpdump, decrypted with the key log the client wrote itself.

Ground truth is what the peers logged they sent (tests/tls_peers.py); tshark
with the same key log is the second opinion."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze
from tests import pcaptools
from tests.tlstools import TlsRun, run_python_peers, tshark_frames
from wsanalyze.cli import main
from wsanalyze.parallel import ENGINE_ENV, ENGINES

CASES = {
    "tls13-aes256": dict(tls="1.3"),
    "tls13-aes128": dict(tls="1.3", ciphersuites="TLS_AES_128_GCM_SHA256"),
    "tls13-chacha": dict(tls="1.3", ciphersuites="TLS_CHACHA20_POLY1305_SHA256"),
    "tls12-aes128gcm": dict(tls="1.2", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"),
    "tls12-aes256gcm": dict(tls="1.2", ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"),
    "tls12-chacha": dict(tls="1.2", ciphers="ECDHE-ECDSA-CHACHA20-POLY1305"),
    "tls12-cbc-etm": dict(tls="1.2", ciphers="ECDHE-ECDSA-AES128-SHA"),
    "tls12-cbc-no-etm": dict(tls="1.2", ciphers="ECDHE-ECDSA-AES256-SHA384",
                             openssl_options="-EncryptThenMac"),
    "tls12-rsa-kx": dict(tls="1.2", ciphers="AES128-GCM-SHA256", rsa_key=True),
    "tls12-rsa-cbc": dict(tls="1.2", ciphers="ECDHE-RSA-AES128-SHA256", rsa_key=True),
}
EXPECTED = {
    "tls13-aes256": ("TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    "tls13-aes128": ("TLS 1.3", "TLS_AES_128_GCM_SHA256"),
    "tls13-chacha": ("TLS 1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    "tls12-aes128gcm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    "tls12-aes256gcm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    "tls12-chacha": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    "tls12-cbc-etm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    "tls12-cbc-no-etm": ("TLS 1.2", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    "tls12-rsa-kx": ("TLS 1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    "tls12-rsa-cbc": ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
}

_runs: dict[str, TlsRun] = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


def peers(folder: Path, name: str) -> TlsRun:
    """Each capture is made once per test process."""
    if name not in _runs:
        sub = folder / name
        sub.mkdir(exist_ok=True)
        _runs[name] = run_python_peers(sub, name=name, **CASES[name])  # type: ignore[arg-type]
    return _runs[name]


def data_messages(result: wsanalyze.AnalysisResult) -> list[tuple[str, str, str]]:
    m = result.messages[result.messages["type"].isin(["text", "binary"])]
    return [(r.direction, r.type, bytes(r.payload).hex()) for r in m.itertuples()]


def truth(run: TlsRun) -> list[tuple[str, str, str]]:
    return [(t["direction"], t["type"], t["payload"]) for t in run.truth]


def client_random(run: TlsRun) -> str:
    for line in run.keylog.read_text().splitlines():
        if line and not line.startswith("#"):
            return line.split()[1]
    raise AssertionError("empty key log")


def rules(result: wsanalyze.AnalysisResult) -> list[str]:
    return list(result.violations["rule"])


@pytest.mark.parametrize("name", list(CASES))
def test_messages_are_what_the_peers_sent(folder: Path, name: str) -> None:
    run = peers(folder, name)
    result = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog)
    assert data_messages(result) == truth(run)
    assert len(truth(run)) == 8
    conn = result.connections.iloc[0]
    assert (conn["tls_version"], conn["tls_cipher"]) == EXPECTED[name]
    assert conn["sni"] == "localhost"
    assert pd.isna(conn["alpn"])  # typed DataFrames: a missing string is <NA>
    assert conn["decrypted"] is True or conn["decrypted"] == True  # noqa: E712
    assert conn["handshake"] == "ok" and conn["deflate"]
    assert conn["path"] == "/tls-test" and conn["origin"] == "https://test.example"
    assert conn["end"] == "close-handshake" and conn["close_code"] == 1000
    assert rules(result) == []


@pytest.mark.parametrize("name", ["tls13-aes128", "tls12-chacha", "tls12-cbc-etm"])
def test_tshark_agrees_on_the_decrypted_frames(folder: Path, name: str) -> None:
    run = peers(folder, name)
    theirs = tshark_frames(run, run.keylog)
    frames = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog).frames
    # tshark's websocket.payload_length is the 7-bit field (126/127: extended length).
    ours = [(r.packet, r.opcode, r.payload_length if r.payload_length < 126 else
             126 if r.payload_length < 65536 else 127) for r in frames.itertuples()]
    assert len(ours) == len(theirs) == 10
    # tshark puts a frame spanning several TLS records at its last record; we put
    # it at its first byte (OUTPUTS.md): compare the packet of single-record frames.
    assert [o[1:] for o in ours] == [t[1:] for t in theirs]
    assert [o for o in ours if o[2] < 126] == [t for t in theirs if t[2] < 126]


def test_decryption_secrets_block_gives_identical_output(folder: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    run = peers(folder, "tls13-aes256")
    injected = run.pcap.with_suffix(".dsb.pcapng")
    subprocess.run(["editcap", "--inject-secrets", f"tls,{run.keylog}", str(run.pcap),
                    str(injected)], check=True, capture_output=True)
    with_log = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog)
    with_dsb = wsanalyze.analyze(injected)
    assert data_messages(with_dsb) == truth(run)
    # --jobs: the reader process hands the key block to every decoder.
    results = [with_dsb]
    for engine in ENGINES:
        monkeypatch.setenv(ENGINE_ENV, engine)
        results.append(wsanalyze.analyze(injected, jobs=2))
    for table in ("connections", "messages", "frames", "violations"):
        for result in results:
            pd.testing.assert_frame_equal(getattr(with_log, table), getattr(result, table))


def test_without_key_one_info_row_names_the_client_random(folder: Path) -> None:
    run = peers(folder, "tls13-aes128")
    result = wsanalyze.analyze(run.pcap)
    assert result.messages.empty and result.frames.empty
    conn = result.connections.iloc[0]
    assert conn["decrypted"] == False  # noqa: E712
    assert (conn["tls_version"], conn["sni"], conn["handshake"]) == (
        "TLS 1.3", "localhost", "not-captured")
    assert rules(result) == ["capture.tls-no-key"]
    assert client_random(run) in result.violations["message"].iloc[0]


def _rewrite_keylog(run: TlsRun, path: Path, keep: set[str] | None = None,
                    corrupt: bool = False) -> Path:
    out = []
    for line in run.keylog.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        label, cr, secret = line.split()
        if keep is not None and label not in keep:
            continue
        if corrupt:
            secret = ("0" if secret[0] != "0" else "1") + secret[1:]
        out.append(f"{label} {cr} {secret}")
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("name", ["tls13-aes128", "tls12-aes128gcm", "tls12-cbc-etm"])
def test_wrong_key_gives_bad_key_row_and_no_plaintext(folder: Path, name: str) -> None:
    run = peers(folder, name)
    wrong = _rewrite_keylog(run, run.pcap.with_suffix(".wrong.txt"), corrupt=True)
    result = wsanalyze.analyze(run.pcap, tls_keylog=wrong)
    assert result.messages.empty and result.frames.empty
    assert "capture.tls-bad-key" in rules(result)
    assert result.connections.iloc[0]["decrypted"] == False  # noqa: E712
    row = result.violations[result.violations["rule"] == "capture.tls-bad-key"].iloc[0]
    assert client_random(run) in row["message"]


def test_half_the_key_log(folder: Path) -> None:
    run = peers(folder, "tls13-aes128")
    # Handshake secrets only: the handshake opens, the application data cannot.
    handshake_only = _rewrite_keylog(run, run.pcap.with_suffix(".hs.txt"), keep={
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET"})
    result = wsanalyze.analyze(run.pcap, tls_keylog=handshake_only)
    assert result.messages.empty
    assert set(rules(result)) == {"capture.tls-no-key"}
    assert any("CLIENT_TRAFFIC_SECRET_0" in m for m in result.violations["message"])
    # Traffic secrets only: every message, although the handshake stays closed.
    traffic_only = _rewrite_keylog(run, run.pcap.with_suffix(".app.txt"), keep={
        "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"})
    result = wsanalyze.analyze(run.pcap, tls_keylog=traffic_only)
    assert data_messages(result) == truth(run)
    assert rules(result) == []


def _big_message_packet(path: Path, keylog: Path) -> int:
    result = wsanalyze.analyze(path, tls_keylog=keylog)
    big = result.messages[result.messages["length"] == 50000]
    assert len(big) == 1
    return int(big["packet"].iloc[0])


def test_gap_inside_tls_resynchronises_without_wrong_plaintext(folder: Path) -> None:
    run = peers(folder, "tls13-aes128")
    small = run.pcap.with_suffix(".small.pcap")
    pcaptools.resegment(run.pcap, small, sizes=[1000])
    last = _big_message_packet(small, run.keylog)
    # A 1000-byte piece from the middle of the 50000-byte message's records.
    victim = next(s.number for s in reversed(pcaptools.tcp_segments(small))
                  if s.number < last - 20 and s.payload and s.direction == "s2c")
    gapped = run.pcap.with_suffix(".gap.pcap")
    pcaptools.drop_packets(small, gapped, [victim])
    result = wsanalyze.analyze(gapped, tls_keylog=run.keylog)
    v = result.violations
    assert list(v[v["rule"] == "capture.gap"]["direction"]) == ["s2c"]
    resumed = v[v["rule"] == "capture.undecodable"]
    assert len(resumed) >= 1 and "TLS records of the s2c stream resumed" in \
        resumed["message"].iloc[0]
    assert "capture.tls-bad-key" not in rules(result)
    want = truth(run)
    m = result.messages[result.messages["type"].isin(["text", "binary"])]
    complete = [(r.direction, r.type, bytes(r.payload).hex()) for r in m.itertuples()
                if r.complete]
    # Everything before the gap is intact; nothing decoded is wrong.
    assert complete[:6] == want[:6]
    assert all(c in want for c in complete)
    big = m[m["raw_length"] >= 40000] if "raw_length" in m else m
    assert not big.empty and not bool(big["complete"].iloc[0])


def test_truncated_record_gives_no_plaintext(folder: Path) -> None:
    run = peers(folder, "tls12-aes128gcm")
    small = run.pcap.with_suffix(".small.pcap")
    pcaptools.resegment(run.pcap, small, sizes=[1000])
    last = _big_message_packet(small, run.keylog)
    cut = run.pcap.with_suffix(".cut.pcap")
    # The capture ends in the middle of the big message's last record.
    pcaptools.drop_packets(small, cut, range(last - 3, len(pcaptools.read_capture(small)
                                                           .records) + 1))
    result = wsanalyze.analyze(cut, tls_keylog=run.keylog)
    want = truth(run)
    m = result.messages[result.messages["type"].isin(["text", "binary"])]
    got = [(r.direction, r.type, bytes(r.payload).hex()) for r in m.itertuples() if r.complete]
    assert got == want[:6]
    # The big message never completed: what is shown of it is a true prefix.
    partial = [bytes(r.payload).hex() for r in m.itertuples() if not r.complete]
    assert len(partial) <= 1 and all(want[6][2].startswith(p) for p in partial)
    assert result.connections.iloc[0]["end"] == "capture-ended"
    # Snapshot length cuts records: those are reported and never decoded.
    snapped = run.pcap.with_suffix(".snap.pcap")
    pcaptools.snaplen(small, snapped, 600)
    result = wsanalyze.analyze(snapped, tls_keylog=run.keylog)
    assert "capture.truncated" in rules(result)
    assert "capture.tls-bad-key" not in rules(result)
    m = result.messages[result.messages["type"].isin(["text", "binary"])]
    assert all((r.direction, r.type, bytes(r.payload).hex()) in want
               for r in m.itertuples() if r.complete)


def test_alpn_h2_is_reported_as_http2(folder: Path) -> None:
    sub = folder / "h2"
    sub.mkdir(exist_ok=True)
    run = run_python_peers(sub, name="h2", alpn="h2")
    result = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog)
    assert result.messages.empty
    conn = result.connections.iloc[0]
    assert (conn["alpn"], conn["decrypted"]) == ("h2", True)
    assert rules(result) == ["capture.tls-http2"]


def test_cli_keylog_option_and_malformed_lines(folder: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = peers(folder, "tls12-chacha")
    keys = tmp_path / "keys.txt"
    keys.write_text("# comment\nCLIENT_RANDOM zz 00\nthis is not a key line\nEXPORTER_SECRET a b\n"
                    + run.keylog.read_text())
    assert main(["messages", str(run.pcap), "--tls-keylog", str(keys), "-F", "jsonl",
                 "-q"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows if r["type"] == "text"] == [
        "hello over TLS", "x" * 5000, "café ✓ " * 300, "welcome", "done"]
    assert "2 malformed key log line(s)" in err and f"{keys}:2" in err
    assert main(["messages", str(run.pcap), "--tls-keylog", str(tmp_path / "none.txt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wsanalyze: error: cannot read key log") and err.count("\n") == 1


def test_summary_shows_tls(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = peers(folder, "tls13-chacha")
    assert main(["summary", str(run.pcap), "--tls-keylog", str(run.keylog), "-q"]) == 0
    out = capsys.readouterr().out
    assert "TLS 1.3 TLS_CHACHA20_POLY1305_SHA256, SNI localhost, decrypted" in out


def test_jobs_decrypt_too(folder: Path) -> None:
    run = peers(folder, "tls12-aes128gcm")
    one = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog)
    two = wsanalyze.analyze(run.pcap, tls_keylog=run.keylog, jobs=2)
    assert data_messages(two) == truth(run)
    for table in ("connections", "messages", "frames", "violations"):
        pd.testing.assert_frame_equal(getattr(one, table), getattr(two, table))


def test_sslkeylogfile_is_not_read_implicitly(folder: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run = peers(folder, "tls13-aes256")
    monkeypatch.setenv("SSLKEYLOGFILE", str(run.keylog))
    result = wsanalyze.analyze(run.pcap)
    assert result.messages.empty
    assert list(result.violations["rule"]) == ["capture.tls-no-key"]


@pytest.mark.parametrize("argv", [
    ["summary", "c.pcap"], ["connections", "c.pcap"], ["messages", "c.pcap"],
    ["frames", "c.pcap"], ["violations", "c.pcap"], ["follow", "c.pcap", "--connection", "0"],
    ["plot", "c.pcap", "-o", "out"], ["live", "-i", "lo"],
])
def test_every_capture_command_takes_tls_keylog(argv: list[str]) -> None:
    # The option comes from the shared cli_args helpers, and options() loads it.
    from wsanalyze import cli_args
    from wsanalyze.cli import parse

    args = parse([*argv, "--tls-keylog", "a.txt", "--tls-keylog", "b.txt"])
    assert args is not None and args.tls_keylog == ["a.txt", "b.txt"]
    if argv[0] != "plot":  # plot passes the paths to analyze()
        args.tls_keylog = []
        assert cli_args.options(args, frozenset(("message",))).tls_keylog is None


def test_cli_keylog_reaches_every_command(folder: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = peers(folder, "tls13-aes128")
    for command in ("connections", "violations"):
        assert main([command, str(run.pcap), "--tls-keylog", str(run.keylog), "-F", "jsonl",
                     "-q"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        if command == "connections":
            assert [(r["tls_version"], r["decrypted"]) for r in rows] == [("TLS 1.3", True)]
        else:
            assert rows == []
    assert main(["follow", str(run.pcap), "--connection", "0", "--tls-keylog",
                 str(run.keylog), "-q"]) == 0
    assert "hello over TLS" in capsys.readouterr().out
