"""The README's CI recipe on real traffic: tcpdump captures a test run on loopback
(a python-websockets server, a conforming client and a raw client that forgets to
mask), then ``--fail-on error`` gates on the capture."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

import wsanalyze
from wsanalyze.cli import main

KEY = base64.b64encode(b"sixteen byte key").decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def _unmasked_client(port: int) -> bytes:
    """Upgrade, send one UNMASKED text frame (RFC 6455 §5.1 broken), return what the
    server answers (its Close frame)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /raw HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(b"\x81\x05hello")  # FIN + text, MASK bit clear
    answer = await reader.read(64)
    writer.close()
    await writer.wait_closed()
    return answer


async def _test_run(port: int, sent: list[str]) -> bytes:
    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(ConnectionClosed):  # the raw client's protocol error
            async for msg in ws:
                await ws.send(msg)

    async with serve(echo, "127.0.0.1", port):
        async with connect(f"ws://127.0.0.1:{port}/echo", compression=None) as ws:
            for m in sent:
                await ws.send(m)
                assert await ws.recv() == m
            await ws.ping(b"are-you-there")
        return await _unmasked_client(port)


def test_tcpdump_capture_gated_by_fail_on(tmp_path: Path) -> None:
    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "tcpdump must be installed (.ci/run installs it)"
    port = _free_port()
    capture = tmp_path / "ws.pcap"
    log = tmp_path / "tcpdump.log"
    with log.open("w") as err:
        proc = subprocess.Popen([tcpdump, "-i", "lo", "-U", "-w", str(capture),
                                 f"tcp port {port}"], stderr=err)
    try:
        _wait_for(lambda: "listening on" in log.read_text(), 30, "tcpdump to listen")
        sent = ["build 1234 started", "step 1 ok", "é" * 300]
        answer = asyncio.run(_test_run(port, sent))
        assert answer[0] == 0x88 and answer[2:4] == b"\x03\xea"  # server Close, 1002

        def both_closed() -> bool:
            conns = wsanalyze.analyze(capture).connections
            return len(conns) == 2 and "capture-ended" not in set(conns["end"])

        _wait_for(both_closed, 30, "the capture to hold both connections' ends")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    summary = tmp_path / "s.json"
    assert main(["summary", str(capture), "--format", "json", "-o", str(summary), "-q"]) == 0
    doc = json.loads(summary.read_text())
    echo, raw = doc["connections"]
    assert echo["metrics"]["messagesSent"] == echo["metrics"]["messagesReceived"] == len(sent)
    assert echo["compliance"]["rfc6455"] is True
    assert echo["metrics"]["pingRttMs"]["count"] == 1
    # The raw client never answered the server's Close either.
    assert raw["compliance"]["rules"] == ["close.no-close-handshake", "frame.client-unmasked"]
    assert raw["close"]["code"] == 1002
    assert doc["compliance"]["rfc6455"] is False
    report = tmp_path / "ws-report.html"
    gate = subprocess.run([sys.executable, "-m", "wsanalyze", "report", str(capture), "-o",
                           str(report), "--export", "--fail-on", "error"],
                          capture_output=True, text=True, timeout=300)
    assert gate.returncode == 1, gate.stderr
    page = report.read_text()
    assert "frame.client-unmasked" in page and "closed with code 1002" in page
    assert (tmp_path / "ws-report.pcapng").exists()
    clean = tmp_path / "echo.pcapng"
    assert main(["export", str(capture), "-o", str(clean), "--connection", "0", "-q"]) == 0
    passing = subprocess.run([sys.executable, "-m", "wsanalyze", "summary", str(clean),
                              "--fail-on", "warning", "-q"], capture_output=True, text=True,
                             timeout=300)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "violations: 0 error, 0 warning" in passing.stdout
