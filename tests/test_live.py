"""Live capture on loopback: real python-websockets traffic, decoded as it happens."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from wsanalyze.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _exchange(port: int, messages: list[bytes | str]) -> list[bytes | str]:
    echoed: list[bytes | str] = []

    async def echo(ws) -> None:  # type: ignore[no-untyped-def]
        async for msg in ws:
            await ws.send(msg)

    async with serve(echo, "127.0.0.1", port), connect(f"ws://127.0.0.1:{port}/live") as ws:
        for m in messages:
            await ws.send(m)
            echoed.append(await ws.recv())
    return echoed


def test_live_streams_messages_as_jsonl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    out = tmp_path / "live.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsanalyze", "live", "-i", "lo", "-f", f"tcp port {port}",
         "--duration", "8", "--format", "jsonl", "-o", str(out)],
        stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.0)  # let the packet socket open
        sent: list[bytes | str] = ["hello live", b"\x00\x01binary", "x" * 5000, "ünïcödé"]
        assert asyncio.run(_exchange(port, sent)) == sent
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    data = [r for r in rows if r["type"] in ("text", "binary")]
    got = [(r["direction"], base64.b64decode(r["payload_b64"])) for r in data]
    want = []
    for m in sent:
        raw = m.encode() if isinstance(m, str) else m
        want += [("c2s", raw), ("s2c", raw)]
    assert got == want
    assert {r["server"] for r in rows} == {f"127.0.0.1:{port}"}
    assert "captured" in err


def test_live_bad_interface_is_one_line() -> None:
    with pytest.raises(SystemExit):
        main(["live"])  # -i is required
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", "live", "-i", "nosuch0",
                           "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("wsanalyze: error: cannot capture on nosuch0")
    assert len(proc.stderr.strip().splitlines()) == 1
