"""Drive ``openssl s_client`` through pipes: a WebSocket handshake and masked
frames typed on its standard input, and its interactive commands (``K``/``k``
KeyUpdate, ``R`` renegotiation) between them.  Each step waits for its effect
(the echo in s_client's output, or its ``KEYUPDATE``/``RENEGOTIATING`` line)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.pcaptools import ws_frame

HERE = Path(__file__).resolve().parent
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (f"GET /sclient HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode()
MASK = b"\x0a\x0b\x0c\x0d"


class _Pump(threading.Thread):
    """Collects a pipe's bytes; ``wait_for`` blocks until a pattern shows up."""

    def __init__(self, pipe: object) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.data = bytearray()
        self.cond = threading.Condition()

    def run(self) -> None:
        fd = self.pipe.fileno()  # type: ignore[attr-defined]
        while chunk := os.read(fd, 65536):
            with self.cond:
                self.data += chunk
                self.cond.notify_all()

    def wait_for(self, pattern: bytes, start: int = 0, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        with self.cond:
            while (pos := self.data.find(pattern, start)) < 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self.is_alive():
                    raise TimeoutError(f"{pattern[:40]!r} did not appear; got "
                                       f"{bytes(self.data[-300:])!r}")
                self.cond.wait(left)
            return pos + len(pattern)


class EchoServer:
    """tests/tls_echo_server.py in a subprocess for a ``with`` block."""

    def __init__(self, port: int, cert: Path, key: Path, *, tls: str = "any",
                 no_ticket: bool = False, groups: str | None = None) -> None:
        cmd = [sys.executable, str(HERE / "tls_echo_server.py"), str(port), str(cert), str(key),
               "--tls", tls] + (["--no-ticket"] if no_ticket else [])
        env = dict(os.environ, PYTHONPATH=str(HERE.parent))
        if groups:
            # Key exchange groups are only configurable through OpenSSL's configuration.
            conf = cert.with_name("server-openssl.cnf")
            conf.write_text("openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\n"
                            f"system_default = sys\n[sys]\nGroups = {groups}\n")
            env["OPENSSL_CONF"] = str(conf)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)

    def __enter__(self) -> EchoServer:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b"listening" not in line:
            raise RuntimeError(f"echo server did not start: {line!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def s_client(port: int, keylog: Path, steps: Sequence[tuple[str, bytes]],
             args: Sequence[str] = ()) -> list[tuple[str, str, bytes]]:
    """Run one s_client connection; ``steps`` are ("text"|"binary", payload) or
    ("command", b"K"|b"k"|b"R").  Returns the messages sent (c2s) and echoed (s2c)."""
    proc = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
         "-keylogfile", str(keylog), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    out, err = _Pump(proc.stdout), _Pump(proc.stderr)
    out.start()
    err.start()
    sent: list[tuple[str, str, bytes]] = []
    try:
        pos = 0
        proc.stdin.write(UPGRADE)
        proc.stdin.flush()
        pos = out.wait_for(b"\r\n\r\n", out.wait_for(b"HTTP/1.1 101"))
        epos = 0
        for kind, payload in steps:
            if kind == "command":
                proc.stdin.write(payload + b"\n")
                proc.stdin.flush()
                word = b"RENEGOTIATING" if payload == b"R" else b"KEYUPDATE"
                epos = err.wait_for(word, epos)
                continue
            opcode = 1 if kind == "text" else 2
            proc.stdin.write(ws_frame(opcode, payload, mask=MASK))
            proc.stdin.flush()
            sent.append(("c2s", kind, payload))
            # The echo: an unmasked frame carrying the same payload.
            pos = out.wait_for(payload, pos)
            sent.append(("s2c", kind, payload))
        proc.stdin.write(ws_frame(8, b"\x03\xe8", mask=MASK))
        proc.stdin.flush()
        out.wait_for(b"\x88\x02\x03\xe8", pos)
        proc.stdin.close()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return sent
