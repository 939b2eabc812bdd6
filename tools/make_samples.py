#!/usr/bin/env python3
"""Regenerate the sample captures in ``samples/``.

Usage (as root, from the repository root)::

    .venv/bin/python tools/make_samples.py            # all samples
    .venv/bin/python tools/make_samples.py --only node-ws-fragments,mixed

Real WebSocket implementations (python-websockets, aiohttp, Node ``ws`` and a small raw
socket client) talk to each other over loopback while tcpdump/dumpcap record the
traffic. The peers log what they hand to send()/ping()/close() into
``samples/<name>.truth.jsonl``; ``samples/<name>.meta.json`` describes each capture.

Payloads come from seeded RNGs, so the application data is identical on every run;
timestamps, TCP sequence numbers, websocket masking keys chosen by the libraries and the
compressed bytes of some implementations may differ.

Segmentation: every listening socket (and every client socket we create) gets
``TCP_MAXSEG = 1448``. Loopback also does GSO, which would hand tcpdump 64 KiB
"super-segments" regardless of the MSS, so by default the script re-executes itself in a
private network namespace (``unshare --net``) whose own ``lo`` has ``gso_max_segs 1``;
the host's network configuration is not touched. ``--host-net`` skips that (captures
then show GSO-sized segments). npm dependencies are installed before entering the
namespace, which has no network besides its loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO / "samples"
NODE_DIR = REPO / "tools" / "samples_node"
NETNS_ENV = "WSANALYZE_SAMPLES_NETNS"
MSS = 1448
MAX_CAPTURE_BYTES = 1_000_000

Direction = Literal["c2s", "s2c"]
StepKind = Literal["text", "binary", "ping", "close"]

SAMPLE_NAMES = (
    "websockets-deflate",
    "websockets-nocontext",
    "aiohttp-plain",
    "node-ws-fragments",
    "ipv6-sll2",
    "mixed",
)


# --------------------------------------------------------------------------------------
# Plans and ground truth
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One piece of a fragmented send: a data fragment or a ping sent in between."""

    data: bytes | None = None
    ping: bytes | None = None


@dataclass(frozen=True)
class Step:
    """One action of a conversation; the peer owning ``direction`` performs it."""

    direction: Direction
    kind: StepKind
    payload: bytes = b""
    close_code: int | None = None
    close_reason: str | None = None
    parts: tuple[Part, ...] = ()

    def ws_frames(self) -> int:
        """Frames this step puts on the wire, including automatic pongs and close reply."""
        if self.kind == "close":
            return 2
        if self.kind == "ping":
            return 2
        if self.parts:
            return sum(1 if p.data is not None else 2 for p in self.parts)
        return 1


@dataclass
class Conversation:
    client_port: int
    steps: list[Step]
    path: str = "/"
    deflate: bool = False


def close_payload(code: int | None, reason: str | None) -> bytes:
    if code is None:
        return b""
    return code.to_bytes(2, "big") + (reason or "").encode()


@dataclass
class TruthLog:
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        client_port: int,
        direction: Direction,
        kind: StepKind,
        payload: bytes,
        close_code: int | None = None,
        close_reason: str | None = None,
    ) -> None:
        self.records.append(
            {
                "client_port": client_port,
                "direction": direction,
                "type": kind,
                "payload_b64": base64.b64encode(payload).decode("ascii"),
                "close_code": close_code,
                "close_reason": close_reason,
            }
        )

    def add_close(
        self, client_port: int, direction: Direction, code: int | None, reason: str | None
    ) -> None:
        self.add(client_port, direction, "close", close_payload(code, reason), code, reason)

    def write(self, path: Path, port_order: Sequence[int]) -> None:
        rank = {port: i for i, port in enumerate(port_order)}
        ordered = sorted(self.records, key=lambda r: rank[r["client_port"]])
        with path.open("w", encoding="utf-8") as fh:
            for rec in ordered:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def count_steps(steps: Sequence[Step]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"c2s": {}, "s2c": {}}
    for st in steps:
        bucket = out[st.direction]
        bucket[st.kind] = bucket.get(st.kind, 0) + 1
        for part in st.parts:
            if part.ping is not None:
                bucket["ping"] = bucket.get("ping", 0) + 1
        if st.kind == "close":
            other: Direction = "s2c" if st.direction == "c2s" else "c2s"
            out[other]["close"] = out[other].get("close", 0) + 1
    return out


# --------------------------------------------------------------------------------------
# Payload generators (seeded, deterministic)
# --------------------------------------------------------------------------------------

_WORD_TEXT = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
    "zulu socket frame buffer window deflate stream packet segment latency jitter "
    "market order price quantity symbol ticker update snapshot channel subscribe"
)
WORDS = tuple(_WORD_TEXT.split())
NAMES = ("ada", "grace", "linus", "barbara", "ken", "dennis", "margaret", "alan")


def words(rng: random.Random, length: int) -> str:
    out: list[str] = []
    size = 0
    while size < length:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:length]


def make_catalog(rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "sku": f"SKU-{rng.randrange(10000, 99999)}",
            "name": words(rng, rng.randrange(12, 40)),
            "price": round(rng.uniform(1, 500), 2),
            "stock": rng.randrange(0, 1000),
            "tags": rng.sample(WORDS, 3),
        }
        for _ in range(count)
    ]


def json_text(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sized_json(rng: random.Random, kind: str, seq: int, size: int, **extra: Any) -> bytes:
    """A JSON document of roughly ``size`` bytes (padded with a text field)."""
    doc: dict[str, Any] = {"type": kind, "seq": seq, "user": rng.choice(NAMES), **extra}
    base = len(json_text({**doc, "note": ""}))
    doc["note"] = words(rng, max(0, size - base))
    return json_text(doc)


def catalog_page(rng: random.Random, catalog: list[dict[str, Any]], seq: int, count: int) -> bytes:
    items = []
    for item in catalog[:count]:
        updated = dict(item)
        updated["stock"] = max(0, item["stock"] + rng.randrange(-5, 6))
        items.append(updated)
    return json_text({"type": "catalog", "seq": seq, "page": 1, "items": items})


def compressible_binary(rng: random.Random, size: int) -> bytes:
    """Fixed-layout records with slowly changing fields: compresses well."""
    out = bytearray()
    ts = 1_700_000_000_000
    i = 0
    while len(out) < size:
        ts += rng.randrange(1, 4)
        out += b"REC" + i.to_bytes(4, "big") + ts.to_bytes(8, "big")
        out += bytes([rng.randrange(0, 4)]) + b"\x00" * 8 + b"payload-fixed-part"
        i += 1
    return bytes(out[:size])


def random_binary(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


# --------------------------------------------------------------------------------------
# Sockets with a small MSS
# --------------------------------------------------------------------------------------


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def client_socket(host: str, client_port: int) -> socket.socket:
    """An unconnected client socket bound to ``client_port`` with the small MSS."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, client_port))
    return sock


def connected_socket(host: str, client_port: int, server_port: int) -> socket.socket:
    sock = client_socket(host, client_port)
    sock.connect((host, server_port))
    sock.setblocking(False)
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------------------
# Capture processes
# --------------------------------------------------------------------------------------


class Capture:
    """tcpdump/dumpcap running for the duration of a ``with`` block."""

    def __init__(
        self,
        path: Path,
        tool: Literal["tcpdump", "dumpcap"],
        bpf: str,
        interface: str = "lo",
        linktype: str | None = None,
    ) -> None:
        self.path = path
        self.tool = tool
        self.bpf = bpf
        self.interface = interface
        self.linktype = linktype
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_text = ""

    def command(self) -> list[str]:
        if self.tool == "tcpdump":
            cmd = ["tcpdump", "-i", self.interface, "-U", "-Z", "root", "-s", "262144"]
            if self.linktype:
                cmd += ["-y", self.linktype]
            return [*cmd, "-w", str(self.path), self.bpf]
        return ["dumpcap", "-i", self.interface, "-f", self.bpf, "-w", str(self.path)]

    def __enter__(self) -> Capture:
        self.path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.command(), stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        ready = ("listening on", "Capturing on")
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                raise RuntimeError(f"{self.tool} exited early: {''.join(seen)}")
            seen.append(line)
            if any(r in line for r in ready):
                break
        else:
            raise RuntimeError(f"{self.tool} did not start: {''.join(seen)}")
        self.stderr_text = "".join(seen)
        time.sleep(0.5)  # let the ring buffer attach before traffic starts
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        time.sleep(0.7)  # last ACKs / FINs
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            _, err = self.proc.communicate()
        self.stderr_text += err.decode(errors="replace")
        print(f"  [{self.tool}] {self.stderr_text.strip().splitlines()[-2:]}")


def tool_version(cmd: list[str]) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "unknown"
    text = (res.stdout + res.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# --------------------------------------------------------------------------------------
# python-websockets peers
# --------------------------------------------------------------------------------------


async def websockets_side(
    ws: Any, steps: Sequence[Step], me: Direction, port: int, log: TruthLog
) -> None:
    from websockets.exceptions import ConnectionClosedOK

    for st in steps:
        if st.direction != me:
            if st.kind in ("text", "binary"):
                got = await ws.recv()
                want: str | bytes = st.payload.decode() if st.kind == "text" else st.payload
                if got != want:
                    raise AssertionError(f"{me} on {port}: unexpected message")
            elif st.kind == "close":
                try:
                    await ws.recv()
                    raise AssertionError(f"{me} on {port}: message instead of close")
                except ConnectionClosedOK:
                    pass
                await ws.wait_closed()
                sent = ws.protocol.close_sent
                if sent is not None:  # the reply websockets sent on our behalf
                    log.add_close(port, me, sent.code, sent.reason)
            continue
        if st.kind == "text":
            log.add(port, me, "text", st.payload)
            await ws.send(st.payload.decode())
        elif st.kind == "binary":
            log.add(port, me, "binary", st.payload)
            await ws.send(st.payload)
        elif st.kind == "ping":
            log.add(port, me, "ping", st.payload)
            waiter = await ws.ping(st.payload)
            await asyncio.wait_for(waiter, 10)
        else:
            log.add_close(port, me, st.close_code, st.close_reason)
            await ws.close(st.close_code or 1000, st.close_reason or "")


async def run_websockets(
    host: str,
    port: int,
    conversations: Sequence[Conversation],
    log: TruthLog,
    server_extensions: Sequence[Any] | None,
    client_extensions: Sequence[Any] | None,
    compression: str | None,
) -> list[dict[str, Any]]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    plans = {c.client_port: c for c in conversations}
    done: dict[int, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()
    for conv in conversations:
        done[conv.client_port] = loop.create_future()

    async def handler(ws: ServerConnection) -> None:
        client_port = int(ws.remote_address[1])
        try:
            await websockets_side(ws, plans[client_port].steps, "s2c", client_port, log)
        except Exception as exc:
            done[client_port].set_exception(exc)
            raise
        done[client_port].set_result(None)

    lsock = listening_socket(host, port)
    info: list[dict[str, Any]] = []
    server = await serve(
        handler,
        sock=lsock,
        compression=compression,
        extensions=server_extensions,
        ping_interval=None,
        max_size=None,
    )
    try:
        for conv in conversations:
            sock = connected_socket(host, conv.client_port, port)
            ws = await connect(
                f"ws://{url_host(host)}:{port}{conv.path}",
                sock=sock,
                compression=compression,
                extensions=client_extensions,
                ping_interval=None,
                max_size=None,
            )
            info.append(
                {
                    "client_port": conv.client_port,
                    "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
                    "subprotocol": ws.subprotocol,
                }
            )
            await websockets_side(ws, conv.steps, "c2s", conv.client_port, log)
            await asyncio.wait_for(done[conv.client_port], 15)
    finally:
        server.close()
        await server.wait_closed()
    return info


# --------------------------------------------------------------------------------------
# aiohttp peers
# --------------------------------------------------------------------------------------


async def aiohttp_side(
    ws: Any, steps: Sequence[Step], me: Direction, port: int, log: TruthLog
) -> None:
    """Both aiohttp server and client side; used with autoclose=False, autoping=True."""
    from aiohttp import WSMsgType

    for st in steps:
        if st.direction != me:
            if st.kind in ("text", "binary"):
                msg = await ws.receive(timeout=10)
                want_type = WSMsgType.TEXT if st.kind == "text" else WSMsgType.BINARY
                want: str | bytes = st.payload.decode() if st.kind == "text" else st.payload
                if msg.type != want_type or msg.data != want:
                    raise AssertionError(f"{me} on {port}: unexpected {msg.type}")
            elif st.kind == "close":
                msg = await ws.receive(timeout=10)
                if msg.type != WSMsgType.CLOSE:
                    raise AssertionError(f"{me} on {port}: expected close, got {msg.type}")
                code = int(msg.data)
                log.add_close(port, me, code, "")
                await ws.close(code=code, message=b"")
            continue
        if st.kind == "text":
            log.add(port, me, "text", st.payload)
            await ws.send_str(st.payload.decode())
        elif st.kind == "binary":
            log.add(port, me, "binary", st.payload)
            await ws.send_bytes(st.payload)
        elif st.kind == "ping":
            log.add(port, me, "ping", st.payload)
            await ws.ping(st.payload)
        else:
            log.add_close(port, me, st.close_code, st.close_reason)
            await ws.close(code=st.close_code or 1000, message=(st.close_reason or "").encode())


def aiohttp_socket_factory(host: str, client_port: int) -> Callable[[Any], socket.socket]:
    def factory(addr_info: Any) -> socket.socket:
        return client_socket(host, client_port)

    return factory


async def aiohttp_client_conversation(
    host: str,
    port: int,
    conv: Conversation,
    log: TruthLog,
    protocols: tuple[str, ...],
    compress: int,
) -> dict[str, Any]:
    import aiohttp

    headers_seen: dict[str, str | None] = {}

    async def on_request_end(
        session: aiohttp.ClientSession,
        ctx: Any,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        headers_seen["ext"] = params.response.headers.get("Sec-WebSocket-Extensions")

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    connector = aiohttp.TCPConnector(
        socket_factory=aiohttp_socket_factory(host, conv.client_port), force_close=True
    )
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
        ws = await session.ws_connect(
            f"http://{url_host(host)}:{port}{conv.path}",
            protocols=protocols,
            compress=compress,
            autoclose=False,
            autoping=True,
        )
        await aiohttp_side(ws, conv.steps, "c2s", conv.client_port, log)
        info = {
            "client_port": conv.client_port,
            "extensions": headers_seen.get("ext"),
            "subprotocol": ws.protocol,
        }
    return info


async def start_aiohttp_server(
    host: str,
    port: int,
    conversations: Sequence[Conversation],
    log: TruthLog,
    protocols: tuple[str, ...],
    compress: bool,
    extra_routes: Callable[[Any], None] | None = None,
) -> tuple[Any, dict[int, asyncio.Future[None]]]:
    from aiohttp import web

    plans = {c.client_port: c for c in conversations}
    loop = asyncio.get_running_loop()
    done: dict[int, asyncio.Future[None]] = {
        c.client_port: loop.create_future() for c in conversations
    }

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client_port = int(peer[1])
        ws = web.WebSocketResponse(
            protocols=protocols, compress=compress, autoping=True, autoclose=False
        )
        await ws.prepare(request)
        try:
            await aiohttp_side(ws, plans[client_port].steps, "s2c", client_port, log)
        except Exception as exc:
            done[client_port].set_exception(exc)
            raise
        done[client_port].set_result(None)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    if extra_routes is not None:
        extra_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.SockSite(runner, listening_socket(host, port))
    await site.start()
    return runner, done


# --------------------------------------------------------------------------------------
# Raw socket client (for the mixed sample)
# --------------------------------------------------------------------------------------


def mask_frame(opcode: int, payload: bytes, mask_key: bytes, fin: bool = True) -> bytes:
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 65536:
        head.append(0x80 | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += n.to_bytes(8, "big")
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + mask_key + masked


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    if b1 & 0x80:
        raise AssertionError("server frames must not be masked")
    if not b0 & 0x80:
        raise AssertionError("raw client does not expect fragmented frames")
    return b0 & 0x0F, await reader.readexactly(n)


class FrameQueue:
    """Frames read from the server; lets a pong overtake data frames sent meanwhile."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.pending: list[tuple[int, bytes]] = []

    async def take(self, opcodes: set[int]) -> tuple[int, bytes]:
        for i, (op, _) in enumerate(self.pending):
            if op in opcodes:
                return self.pending.pop(i)
        while True:
            op, data = await read_frame(self.reader)
            if op in opcodes:
                return op, data
            self.pending.append((op, data))


async def read_http_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if status != 101 and "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


def accept_key(key: str) -> str:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


async def raw_http_then_upgrade(
    host: str, port: int, conv: Conversation, log: TruthLog, rng: random.Random
) -> dict[str, Any]:
    """GET /hello, then an Upgrade to /ws on the same keep-alive connection."""
    sock = connected_socket(host, conv.client_port, port)
    reader, writer = await asyncio.open_connection(sock=sock)
    hostport = f"{host}:{port}"
    writer.write(
        (
            f"GET /hello?lang=en HTTP/1.1\r\nHost: {hostport}\r\n"
            "User-Agent: wsanalyze-raw-client/1.0\r\nAccept: text/plain\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status, headers, body = await read_http_response(reader)
    if status != 200:
        raise AssertionError(f"GET /hello answered {status}")
    key = base64.b64encode(rng.randbytes(16)).decode()
    writer.write(
        (
            f"GET {conv.path} HTTP/1.1\r\nHost: {hostport}\r\n"
            "User-Agent: wsanalyze-raw-client/1.0\r\nConnection: Upgrade\r\n"
            f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status, up_headers, _ = await read_http_response(reader)
    if status != 101 or up_headers.get("sec-websocket-accept") != accept_key(key):
        raise AssertionError(f"upgrade failed: {status} {up_headers}")
    me: Direction = "c2s"
    port_c = conv.client_port
    frames = FrameQueue(reader)
    opcodes = {"text": 1, "binary": 2, "close": 8, "ping": 9}
    for st in conv.steps:
        if st.direction != me:
            if st.kind in ("text", "binary"):
                op, data = await frames.take({1, 2})
                if op != opcodes[st.kind] or data != st.payload:
                    raise AssertionError("raw client: unexpected frame")
            elif st.kind == "close":
                _, data = await frames.take({8})
                code = int.from_bytes(data[:2], "big")
                log.add_close(port_c, me, code, "")
                writer.write(mask_frame(8, close_payload(code, ""), rng.randbytes(4)))
                await writer.drain()
            continue
        if st.kind == "close":
            payload = close_payload(st.close_code, st.close_reason)
            log.add_close(port_c, me, st.close_code, st.close_reason)
        else:
            payload = st.payload
            log.add(port_c, me, st.kind, payload)
        writer.write(mask_frame(opcodes[st.kind], payload, rng.randbytes(4)))
        await writer.drain()
        if st.kind == "ping":
            _, data = await frames.take({10})
            if data != payload:
                raise AssertionError("raw client: pong payload differs")
        elif st.kind == "close":
            await frames.take({8})
    await reader.read()  # the server closes the TCP connection
    writer.close()
    await writer.wait_closed()
    return {
        "client_port": port_c,
        "http_before_upgrade": {
            "request": "GET /hello?lang=en",
            "status": 200,
            "body_bytes": len(body),
            "content_type": headers.get("content-type"),
        },
        "extensions": up_headers.get("sec-websocket-extensions"),
        "subprotocol": up_headers.get("sec-websocket-protocol"),
    }


async def raw_rejected_upgrade(
    host: str, port: int, client_port: int, path: str, rng: random.Random
) -> dict[str, Any]:
    sock = connected_socket(host, client_port, port)
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(rng.randbytes(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: wsanalyze-raw-client/1.0\r\nConnection: Upgrade\r\n"
            f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status, _, body = await read_http_response(reader)
    writer.close()
    await writer.wait_closed()
    return {
        "client_port": client_port,
        "request": f"GET {path} (Upgrade: websocket)",
        "status": status,
        "body": body.decode(errors="replace"),
    }


# --------------------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------------------


def deflate_conversation(
    rng: random.Random, client_port: int, closer: Direction, reason: str
) -> Conversation:
    catalog = make_catalog(rng, 60)
    seq = iter(range(1, 1000))
    hello = json_text({"type": "hello", "client": "demo", "v": 3})
    order = sized_json(
        rng, "order", next(seq), rng.randrange(1800, 2600), items=rng.sample(catalog, 4)
    )
    status_note = words(rng, rng.randrange(1200, 2000))

    def status(n: int) -> bytes:
        return json_text({"type": "status", "seq": n, "items": catalog[:6], "note": status_note})

    s: list[Step] = [
        Step("c2s", "text", hello),
        Step("s2c", "text", sized_json(rng, "welcome", next(seq), rng.randrange(80, 140))),
        Step("c2s", "text", json_text({"op": "subscribe", "ch": "ticks"})),  # 31 bytes
        Step("s2c", "text", catalog_page(rng, catalog, next(seq), rng.randrange(25, 35))),
        Step("c2s", "ping", f"keepalive-{client_port}".encode()),
        Step("c2s", "text", order),
        Step("c2s", "text", order),  # verbatim repeat within the 4 KiB window
        Step("s2c", "text", status(next(seq))),
        Step("s2c", "text", status(next(seq))),  # only "seq" differs
        Step("s2c", "binary", random_binary(rng, rng.randrange(2500, 3500))),
        Step("c2s", "binary", compressible_binary(rng, rng.randrange(3000, 5000))),
        Step("s2c", "ping", b"server-ping \x00\x01\x02 " + rng.randbytes(6)),
        Step("c2s", "text", b""),
        Step("s2c", "binary", b""),
        Step(
            "s2c",
            "text",
            sized_json(rng, "history", next(seq), rng.randrange(18000, 20000), items=catalog[:20]),
        ),
        Step(
            "c2s",
            "text",
            sized_json(rng, "report", next(seq), rng.randrange(9000, 12000), items=catalog[10:25]),
        ),
        Step("c2s", "binary", random_binary(rng, rng.randrange(1500, 2200))),
        Step("s2c", "binary", compressible_binary(rng, rng.randrange(6000, 9000))),
        Step("s2c", "text", status(next(seq))),
        Step("c2s", "text", hello),
        Step("s2c", "text", b""),
        Step("c2s", "binary", b""),
        Step(closer, "close", close_code=1000, close_reason=reason),
    ]
    return Conversation(client_port, s, path="/feed")


def nocontext_conversation(rng: random.Random, client_port: int) -> Conversation:
    def far_repeat(size: int) -> bytes:
        block = words(rng, 400)
        filler = words(rng, 1400)
        text = f"{block} | {filler} | {block}"
        while len(text) < size:
            text += f" | {words(rng, 1200)} | {block}"
        return json_text({"type": "doc", "body": text})

    period = rng.randbytes(700)  # repeats at distance 700: > 512 (client), < 1024 (server)
    pattern = (period * 12)[:8000]
    doc = far_repeat(5000)
    s: list[Step] = [
        Step("c2s", "text", json_text({"type": "hello", "want": "docs"})),
        Step("s2c", "text", doc),
        Step("c2s", "text", far_repeat(3500)),
        Step("s2c", "text", doc),  # identical message, compressed from scratch again
        Step("c2s", "ping", b"nc-ping"),
        Step("s2c", "binary", pattern),
        Step("c2s", "binary", pattern[:5000]),
        Step("s2c", "ping", b"nc-srv-ping"),
        Step("c2s", "text", b""),
        Step("s2c", "binary", b""),
        Step("s2c", "text", far_repeat(12000)),
        Step("c2s", "text", json_text({"type": "hello", "want": "docs"})),
        Step("c2s", "binary", random_binary(rng, 2000)),
        Step("c2s", "close", close_code=1000, close_reason="done with small windows"),
    ]
    return Conversation(client_port, s, path="/nocontext")


def aiohttp_conversation(rng: random.Random, client_port: int) -> Conversation:
    s: list[Step] = [
        Step("c2s", "text", json_text({"cmd": "join", "room": "lobby", "nick": rng.choice(NAMES)})),
        Step("s2c", "text", sized_json(rng, "joined", 1, rng.randrange(200, 400))),
        Step("c2s", "text", sized_json(rng, "say", 2, rng.randrange(2000, 4000))),
        Step("s2c", "binary", random_binary(rng, rng.randrange(3000, 4500))),
        Step("c2s", "ping", b"aiohttp-client-ping"),
        Step("c2s", "binary", compressible_binary(rng, rng.randrange(1000, 1400))),
        Step("s2c", "ping", b"aiohttp-server-ping"),
        Step("s2c", "text", sized_json(rng, "backlog", 3, rng.randrange(9000, 11000))),
        Step("c2s", "text", "héllo wörld — ünïcode ✓ 🚀".encode()),
        Step("s2c", "binary", b""),
        Step("c2s", "text", b""),
        Step("s2c", "close", close_code=1001, close_reason="server going away"),
    ]
    return Conversation(client_port, s, path="/ws")


def split_sizes(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    out: list[bytes] = []
    prev = 0
    for c in [*cuts, len(data)]:
        out.append(data[prev:c])
        prev = c
    return out


def frag(
    direction: Direction,
    kind: StepKind,
    chunks: Sequence[bytes],
    pings: dict[int, bytes] | None = None,
) -> Step:
    """A fragmented message; ``pings[i]`` is sent right after data fragment ``i``."""
    parts: list[Part] = []
    for i, chunk in enumerate(chunks):
        parts.append(Part(data=chunk))
        if pings and i in pings:
            parts.append(Part(ping=pings[i]))
    return Step(direction, kind, b"".join(chunks), parts=tuple(parts))


def node_conversation(
    rng: random.Random, client_port: int, deflate: bool, closer: Direction, reason: str
) -> Conversation:
    tag = "deflate" if deflate else "plain"
    big_text = sized_json(rng, "fragmented", 1, rng.randrange(3800, 4600))
    bin_a = random_binary(rng, 4500)
    utf8_text = ("Grüße aus Köln — €100 — 😀 emoji — " * 40).encode()
    # cut in the middle of multi-byte characters: "ü" (2 bytes), "€" (3), "😀" (4)
    cut1 = utf8_text.index("ü".encode()) + 1
    cut2 = utf8_text.index("€".encode(), 200) + 2
    cut3 = utf8_text.index("😀".encode(), 700) + 3
    text_for_ping = sized_json(rng, "interleaved", 2, 3000)
    comp_bin = compressible_binary(rng, 6000)
    s: list[Step] = [
        Step("c2s", "text", f"hello from node client ({tag})".encode()),
        frag("s2c", "text", split_sizes(big_text, [1000, 2500])),
        frag("c2s", "binary", split_sizes(bin_a, [2000, 4000])),
        frag(
            "c2s",
            "text",
            split_sizes(text_for_ping, [1200, 2400]),
            pings={0: f"mid-fragment-ping-{tag}".encode()},
        ),
        Step("s2c", "ping", f"server-ping-{tag}".encode()),
        Step("c2s", "ping", f"client-ping-{tag}".encode()),
        frag(
            "s2c",
            "binary",
            split_sizes(comp_bin, [3000]),
            pings={0: f"srv-mid-fragment-ping-{tag}".encode()},
        ),
        frag("c2s", "text", split_sizes(utf8_text, [cut1, cut2, cut3])),
        Step("s2c", "text", sized_json(rng, "unfragmented", 3, 8000)),
        frag("c2s", "binary", [random_binary(rng, 1800), b""]),  # empty final fragment
        Step("c2s", "text", b""),
        Step("s2c", "binary", random_binary(rng, 200)),
        Step(closer, "close", close_code=4000, close_reason=reason),
    ]
    return Conversation(client_port, s, path=f"/{tag}", deflate=deflate)


def simple_conversation(rng: random.Random, client_port: int, closer: Direction) -> Conversation:
    s: list[Step] = [
        Step("c2s", "text", json_text({"op": "subscribe", "topic": "ticks", "id": client_port})),
        Step("s2c", "text", sized_json(rng, "ack", 1, 120)),
        Step("s2c", "text", sized_json(rng, "snapshot", 2, rng.randrange(5000, 7000))),
        Step("c2s", "binary", random_binary(rng, rng.randrange(2000, 3000))),
        Step("c2s", "ping", b"v6-ping"),
        Step("s2c", "binary", compressible_binary(rng, 1000)),
        Step("s2c", "ping", b"v6-srv-ping"),
        Step("c2s", "text", b""),
        Step(closer, "close", close_code=1000, close_reason="bye over ::1"),
    ]
    return Conversation(client_port, s, path="/v6")


def mixed_raw_conversation(rng: random.Random, client_port: int) -> Conversation:
    s: list[Step] = [
        Step("c2s", "text", json_text({"hello": "after http", "keepalive": True})),
        Step("s2c", "text", sized_json(rng, "reply", 1, 2500)),
        Step("c2s", "binary", random_binary(rng, 1600)),
        Step("c2s", "ping", b"raw-ping"),
        Step("s2c", "binary", random_binary(rng, 300)),
        Step("c2s", "close", close_code=1000, close_reason="raw client done"),
    ]
    return Conversation(client_port, s, path="/ws")


def mixed_aiohttp_conversation(rng: random.Random, client_port: int) -> Conversation:
    doc = sized_json(rng, "doc", 1, 6000)
    s: list[Step] = [
        Step("c2s", "text", json_text({"hello": "aiohttp client", "compress": 15})),
        Step("s2c", "text", doc),
        Step("c2s", "text", doc),
        Step("s2c", "binary", compressible_binary(rng, 4000)),
        Step("c2s", "ping", b"mixed-ping"),
        Step("s2c", "text", b""),
        Step("c2s", "close", close_code=1000, close_reason="normal"),
    ]
    return Conversation(client_port, s, path="/ws")


# --------------------------------------------------------------------------------------
# Sample builders
# --------------------------------------------------------------------------------------


@dataclass
class SampleResult:
    name: str
    capture: Path
    conversations: list[Conversation]
    meta: dict[str, Any]
    tcp_connections: int | None = None


def lib_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def versions_python() -> dict[str, str]:
    import aiohttp
    import websockets

    return {
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "aiohttp": aiohttp.__version__,
    }


def conversation_summary(
    convs: Sequence[Conversation], info: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_port = {i["client_port"]: i for i in info}
    out = []
    for c in convs:
        entry: dict[str, Any] = {
            "client_port": c.client_port,
            "path": c.path,
            "truth_counts": count_steps(c.steps),
            "expected_ws_frames": sum(st.ws_frames() for st in c.steps),
        }
        entry.update(
            {k: v for k, v in by_port.get(c.client_port, {}).items() if k != "client_port"}
        )
        out.append(entry)
    return out


def build_websockets_deflate(out: Path, ports: PortPlan) -> SampleResult:
    name = "websockets-deflate"
    rng = random.Random(name)
    host, port = "127.0.0.1", 8765
    convs = [
        deflate_conversation(rng, ports.client(0), "c2s", "normal closure: client done"),
        deflate_conversation(rng, ports.client(1), "s2c", "server ends session"),
        deflate_conversation(rng, ports.client(2), "c2s", "bye ✓"),
    ]
    log = TruthLog()
    cap_path = out / f"{name}.pcap"
    with Capture(cap_path, "tcpdump", f"tcp port {port}"):
        info = asyncio.run(run_websockets(host, port, convs, log, None, None, "deflate"))
    log.write(out / f"{name}.truth.jsonl", [c.client_port for c in convs])
    meta = {
        "description": "python-websockets server and client, permessage-deflate with context "
        "takeover (library defaults), 3 sequential connections",
        "implementations": {
            "server": f"python-websockets {lib_version('websockets')} (asyncio API)",
            "client": f"python-websockets {lib_version('websockets')} (asyncio API)",
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[0]["extensions"],
        "subprotocol": None,
        "connections": conversation_summary(convs, info),
        "notes": [
            "Context takeover matters: each connection sends a ~2 KB c2s order twice in a "
            "row and a ~2 KB s2c status twice in a row (only seq differs); the repeats "
            "compress to a few bytes by referencing the previous message. The windows are "
            "4 KiB (12 bits), so repeats further back are not reachable.",
            "Empty text and empty binary messages in both directions are compressed "
            "(RSV1 set, 1-byte payload 0x00).",
            "Connection 2 is closed by the server; 1 and 3 by the client. The peer's close "
            "reply (websockets echoes code and reason) is logged from "
            "protocol.close_sent.",
            "websockets default offer: client_max_window_bits; server answers "
            "server_max_window_bits=12; client_max_window_bits=12.",
        ],
    }
    return SampleResult(name, cap_path, convs, meta)


def build_websockets_nocontext(out: Path, ports: PortPlan) -> SampleResult:
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )

    name = "websockets-nocontext"
    rng = random.Random(name)
    host, port = "127.0.0.1", 8766
    params: dict[str, Any] = {
        "server_no_context_takeover": True,
        "client_no_context_takeover": True,
        "server_max_window_bits": 10,
        "client_max_window_bits": 9,
    }
    convs = [
        nocontext_conversation(rng, ports.client(0)),
        nocontext_conversation(rng, ports.client(1)),
    ]
    log = TruthLog()
    cap_path = out / f"{name}.pcap"
    with Capture(cap_path, "tcpdump", f"tcp port {port}"):
        info = asyncio.run(
            run_websockets(
                host,
                port,
                convs,
                log,
                [ServerPerMessageDeflateFactory(**params)],
                [ClientPerMessageDeflateFactory(**params)],
                None,
            )
        )
    log.write(out / f"{name}.truth.jsonl", [c.client_port for c in convs])
    meta = {
        "description": "python-websockets, permessage-deflate without context takeover and "
        "with small windows (server 2^10, client 2^9)",
        "implementations": {
            "server": f"python-websockets {lib_version('websockets')} (asyncio API)",
            "client": f"python-websockets {lib_version('websockets')} (asyncio API)",
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[0]["extensions"],
        "subprotocol": None,
        "connections": conversation_summary(convs, info),
        "notes": [
            "Every message is compressed with a fresh deflate context; the same s2c "
            "document is sent twice per connection and compresses to identical bytes.",
            "Text bodies repeat a 400-byte block at distances > 1 KiB, the binary message "
            "repeats a 700-byte period (inside the server's 1024-byte window, outside the "
            "client's 512-byte window).",
            "A decoder must use raw inflate with a fresh context per message; wbits 15 "
            "decoding also works for these streams.",
        ],
    }
    return SampleResult(name, cap_path, convs, meta)


def build_aiohttp_plain(out: Path, ports: PortPlan) -> SampleResult:
    name = "aiohttp-plain"
    rng = random.Random(name)
    host, port = "127.0.0.1", 8080
    protocols = ("chat.v1",)
    convs = [aiohttp_conversation(rng, ports.client(0)), aiohttp_conversation(rng, ports.client(1))]
    log = TruthLog()

    async def main() -> list[dict[str, Any]]:
        runner, done = await start_aiohttp_server(host, port, convs, log, protocols, False)
        info = []
        try:
            for conv in convs:
                info.append(
                    await aiohttp_client_conversation(host, port, conv, log, protocols, compress=0)
                )
                await asyncio.wait_for(done[conv.client_port], 15)
        finally:
            await runner.cleanup()
        return info

    cap_path = out / f"{name}.pcap"
    with Capture(cap_path, "tcpdump", f"tcp port {port}"):
        info = asyncio.run(main())
    log.write(out / f"{name}.truth.jsonl", [c.client_port for c in convs])
    meta = {
        "description": "aiohttp server and client, no compression, subprotocol chat.v1, "
        "server-initiated close 1001",
        "implementations": {
            "server": f"aiohttp {lib_version('aiohttp')} web.WebSocketResponse",
            "client": f"aiohttp {lib_version('aiohttp')} ClientSession.ws_connect",
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[0]["extensions"],
        "subprotocol": info[0]["subprotocol"],
        "connections": conversation_summary(convs, info),
        "notes": [
            "Both peers use autoping=True (pongs are automatic, not logged) and "
            "autoclose=False: the client answers the server's close (1001 'server going "
            "away') itself with close code 1001 and an empty reason, and logs it.",
        ],
    }
    return SampleResult(name, cap_path, convs, meta)


def ensure_node_modules() -> None:
    if (NODE_DIR / "node_modules" / "ws").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is required for the node-ws-fragments sample")
    cmd = [npm, "ci"] if (NODE_DIR / "package-lock.json").exists() else [npm, "install"]
    subprocess.run([*cmd, "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def steps_to_json(steps: Sequence[Step]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for st in steps:
        d: dict[str, Any] = {
            "dir": st.direction,
            "kind": st.kind,
            "b64": base64.b64encode(st.payload).decode(),
        }
        if st.kind == "close":
            d["code"] = st.close_code
            d["reason"] = st.close_reason
        if st.parts:
            d["parts"] = [
                {"data": base64.b64encode(p.data).decode()}
                if p.data is not None
                else {"ping": base64.b64encode(p.ping or b"").decode()}
                for p in st.parts
            ]
        out.append(d)
    return out


def build_node_ws(out: Path, ports: PortPlan) -> SampleResult:
    name = "node-ws-fragments"
    rng = random.Random(name)
    host, port = "127.0.0.1", 8081
    convs = [
        node_conversation(rng, ports.client(0), False, "c2s", "fin — déjà vu ✓"),
        node_conversation(rng, ports.client(1), True, "s2c", "サーバー終了 — ¡adiós!"),
    ]
    lsock = listening_socket(host, port)
    lsock.setblocking(True)
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = Path(tmp) / "plan.json"
        truth_tmp = Path(tmp) / "truth.jsonl"
        info_path = Path(tmp) / "info.json"
        plan = {
            "fd": lsock.fileno(),
            "host": host,
            "host_literal": url_host(host),
            "port": port,
            "connections": [
                {
                    "client_port": c.client_port,
                    "path": c.path,
                    "deflate": c.deflate,
                    "steps": steps_to_json(c.steps),
                }
                for c in convs
            ],
        }
        plan_path.write_text(json.dumps(plan))
        cap_path = out / f"{name}.pcap"
        with Capture(cap_path, "tcpdump", f"tcp port {port}"):
            subprocess.run(
                [
                    "node",
                    str(NODE_DIR / "ws_peers.js"),
                    str(plan_path),
                    str(truth_tmp),
                    str(info_path),
                ],
                pass_fds=(lsock.fileno(),),
                check=True,
                timeout=120,
            )
        lsock.close()
        log = TruthLog(
            [json.loads(line) for line in truth_tmp.read_text().splitlines() if line.strip()]
        )
        node_info = json.loads(info_path.read_text())
    log.write(out / f"{name}.truth.jsonl", [c.client_port for c in convs])
    info = node_info["connections"]
    meta = {
        "description": "Node ws server and client: fragmented messages, pings between "
        "fragments, a plain and a permessage-deflate connection, close 4000",
        "implementations": {
            "server": f"ws {node_info['ws']} WebSocketServer (Node {node_info['node']})",
            "client": f"ws {node_info['ws']} WebSocket (Node {node_info['node']})",
            "node": node_info["node"],
            "ws": node_info["ws"],
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[1]["extensions"],
        "subprotocol": None,
        "connections": conversation_summary(convs, info),
        "notes": [
            "Connection 1 (/plain) is uncompressed, connection 2 (/deflate) negotiates "
            "permessage-deflate with threshold 0 on both sides (every message, including "
            "the empty one, is compressed; only the first fragment has RSV1).",
            "Fragmented sends are logged once (concatenated payload) when the final "
            "fragment is passed to send(); a ping sent between fragments is therefore "
            "logged before the message it interrupts.",
            "One c2s text message is split inside multi-byte UTF-8 sequences "
            "(ü, €, 😀) so single fragments are not valid UTF-8 on their own.",
            "One c2s binary message ends with an empty final (FIN) continuation frame.",
            "ws echoes the received close code and reason in its close reply; the reply "
            "is logged through a wrapper around WebSocket.close().",
            "The ws server adopts a listening socket created by Python with "
            "TCP_MAXSEG=1448; the Node client cannot set the option, its SYN advertises "
            "the loopback MSS, but both directions use the server's 1448 clamp.",
        ],
    }
    return SampleResult(name, cap_path, convs, meta)


def build_ipv6_sll2(out: Path, ports: PortPlan) -> SampleResult:
    name = "ipv6-sll2"
    rng = random.Random(name)
    host, port = "::1", 8765
    convs = [
        simple_conversation(rng, ports.client(0), "c2s"),
        simple_conversation(rng, ports.client(1), "s2c"),
    ]
    log = TruthLog()
    cap_path = out / f"{name}.pcap"
    with Capture(cap_path, "tcpdump", f"tcp port {port}", interface="any", linktype="LINUX_SLL2"):
        info = asyncio.run(run_websockets(host, port, convs, log, None, None, None))
    log.write(out / f"{name}.truth.jsonl", [c.client_port for c in convs])
    meta = {
        "description": "python-websockets over IPv6 loopback (::1), no compression, captured "
        "with tcpdump -i any -y LINUX_SLL2",
        "implementations": {
            "server": f"python-websockets {lib_version('websockets')} (asyncio API)",
            "client": f"python-websockets {lib_version('websockets')} (asyncio API)",
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[0]["extensions"],
        "subprotocol": None,
        "connections": conversation_summary(convs, info),
        "notes": [
            "Link type LINUX_SLL2 (276); interface index/name of lo in the SLL2 "
            "header. Connection 1 closed by the client, connection 2 by the server."
        ],
    }
    return SampleResult(name, cap_path, convs, meta)


def build_mixed(out: Path, ports: PortPlan) -> SampleResult:
    from aiohttp import web

    name = "mixed"
    rng = random.Random(name)
    host, port = "127.0.0.1", 8080
    raw_conv = mixed_raw_conversation(rng, ports.client(0))
    rejected_port = ports.client(1)
    aio_conv = mixed_aiohttp_conversation(rng, ports.client(2))
    hello_body = ("Hello over plain HTTP/1.1 keep-alive.\n" + words(rng, 3000) + "\n").encode()
    log = TruthLog()

    def routes(app: web.Application) -> None:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(body=hello_body, content_type="text/plain")

        async def forbidden(request: web.Request) -> web.Response:
            return web.Response(status=403, text="websocket not allowed here\n")

        app.router.add_get("/hello", hello)
        app.router.add_get("/admin/ws", forbidden)

    async def main() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        runner, done = await start_aiohttp_server(
            host, port, [raw_conv, aio_conv], log, (), True, routes
        )
        try:
            raw_info = await raw_http_then_upgrade(host, port, raw_conv, log, rng)
            await asyncio.wait_for(done[raw_conv.client_port], 15)
            rejected = await raw_rejected_upgrade(host, port, rejected_port, "/admin/ws", rng)
            aio_info = await aiohttp_client_conversation(host, port, aio_conv, log, (), 15)
            await asyncio.wait_for(done[aio_conv.client_port], 15)
        finally:
            await runner.cleanup()
        return [raw_info, aio_info], rejected

    cap_path = out / f"{name}.pcapng"
    with Capture(cap_path, "dumpcap", f"tcp port {port}"):
        info, rejected = asyncio.run(main())
    cap_path.chmod(0o644)  # dumpcap creates its files 0600
    log.write(out / f"{name}.truth.jsonl", [raw_conv.client_port, aio_conv.client_port])
    convs = [raw_conv, aio_conv]
    meta = {
        "description": "pcapng from dumpcap: HTTP keep-alive request then Upgrade on the same "
        "connection, a rejected upgrade (403), and a normal aiohttp websocket "
        "connection with permessage-deflate",
        "implementations": {
            "server": f"aiohttp {lib_version('aiohttp')} web (plain, 403 and websocket routes)",
            "client_1": "raw asyncio socket client (tools/make_samples.py)",
            "client_3": f"aiohttp {lib_version('aiohttp')} ClientSession.ws_connect(compress=15)",
        },
        "server": {"ip": host, "port": port},
        "negotiated_extension": info[1]["extensions"],
        "subprotocol": None,
        "connections": conversation_summary(convs, info),
        "rejected_upgrade": rejected,
        "tcp_connections_in_order": [raw_conv.client_port, rejected_port, aio_conv.client_port],
        "notes": [
            f"Client port {raw_conv.client_port}: GET /hello (200, {len(hello_body)}-byte "
            "text/plain body, spans several segments) then GET /ws Upgrade on the same TCP "
            "connection; uncompressed websocket; client frames masked by the raw client.",
            f"Client port {rejected_port}: Upgrade request to /admin/ws answered 403 (no "
            "websocket traffic, no truth lines).",
            f"Client port {aio_conv.client_port}: aiohttp client with compress=15, server "
            "compress=True: permessage-deflate as implemented by aiohttp.",
            "Server and aiohttp client use autoclose=False and send their close replies "
            "explicitly (code echoed, empty reason).",
        ],
    }
    return SampleResult(name, cap_path, convs, meta, tcp_connections=3)


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


@dataclass
class PortPlan:
    """Fixed client ports (in a private namespace) or ephemeral ones (host network)."""

    base: int
    fixed: bool

    def client(self, index: int) -> int:
        if self.fixed:
            return self.base + index + 1
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
        probe.close()
        return port


BUILDERS: dict[str, tuple[Callable[[Path, PortPlan], SampleResult], int, str]] = {
    "websockets-deflate": (build_websockets_deflate, 40100, "EN10MB (1)"),
    "websockets-nocontext": (build_websockets_nocontext, 40200, "EN10MB (1)"),
    "aiohttp-plain": (build_aiohttp_plain, 40300, "EN10MB (1)"),
    "node-ws-fragments": (build_node_ws, 40400, "EN10MB (1)"),
    "ipv6-sll2": (build_ipv6_sll2, 40500, "LINUX_SLL2 (276)"),
    "mixed": (build_mixed, 40600, "EN10MB (1)"),
}

# --------------------------------------------------------------------------------------
# Independent check of capture against truth (TCP payloads via tshark, WebSocket by hand)
# --------------------------------------------------------------------------------------

Message = tuple[str, bytes]


def tcp_streams(path: Path) -> dict[tuple[int, int], bytes]:
    """Reassembled payload per (src port, dst port); loopback captures have no gaps."""
    res = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.payload",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    segs: dict[tuple[int, int], dict[int, bytes]] = {}
    start: dict[tuple[int, int], int] = {}
    for line in res.stdout.splitlines():
        src, dst, seq, syn, payload = (line.split("\t") + [""] * 5)[:5]
        key = (int(src), int(dst))
        if syn == "1":
            start[key] = int(seq) + 1
        elif payload:
            segs.setdefault(key, {})[int(seq)] = bytes.fromhex(payload.replace(":", ""))
    out: dict[tuple[int, int], bytes] = {}
    for key, by_seq in segs.items():
        buf = bytearray()
        pos = start[key]
        for seq in sorted(by_seq):
            if seq > pos:
                raise AssertionError(f"gap in TCP stream {key}")
            chunk = by_seq[seq][pos - seq :]
            buf += chunk
            pos += len(chunk)
        out[key] = bytes(buf)
    return out


def skip_http(buf: bytes) -> tuple[list[tuple[str, dict[str, str]]], bytes]:
    """Parse HTTP/1.1 heads (and Content-Length bodies) up to the upgrade."""
    heads: list[tuple[str, dict[str, str]]] = []
    while buf:
        end = buf.index(b"\r\n\r\n")
        lines = buf[:end].decode("latin-1").split("\r\n")
        buf = buf[end + 4 :]
        hdrs = {
            k.strip().lower(): v.strip()
            for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
        }
        buf = buf[int(hdrs.get("content-length", "0")) :]
        heads.append((lines[0], hdrs))
        if lines[0].startswith("HTTP/1.1 101") or hdrs.get("upgrade", "").lower() == "websocket":
            return heads, buf
    return heads, b""


def decode_ws(buf: bytes, masked: bool, deflate: bool, reset_each: bool) -> list[Message]:
    msgs: list[Message] = []
    inflater = zlib.decompressobj(-15)
    current: tuple[int, bool, bytearray] | None = None
    i = 0
    while i < len(buf):
        b0, b1 = buf[i], buf[i + 1]
        i += 2
        n = b1 & 0x7F
        if n >= 126:
            width = 2 if n == 126 else 8
            n = int.from_bytes(buf[i : i + width], "big")
            i += width
        if bool(b1 & 0x80) != masked:
            raise AssertionError("unexpected masking")
        key = buf[i : i + 4] if masked else b"\0\0\0\0"
        i += 4 if masked else 0
        payload = bytes(c ^ key[k % 4] for k, c in enumerate(buf[i : i + n]))
        i += n
        fin, rsv1, op = bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F
        if op >= 8:
            names = {8: "close", 9: "ping", 10: "pong"}
            msgs.append((names[op], payload))
            continue
        if op in (1, 2):
            if current is not None or (rsv1 and not deflate):
                raise AssertionError("bad frame sequence")
            current = (op, rsv1, bytearray(payload))
        elif current is None or rsv1:
            raise AssertionError("bad continuation")
        else:
            current[2].extend(payload)
        if fin:
            assert current is not None
            data = bytes(current[2])
            if current[1]:
                if reset_each:
                    inflater = zlib.decompressobj(-15)
                data = inflater.decompress(data + b"\x00\x00\xff\xff")
            if current[0] == 1:
                data.decode("utf-8")
            msgs.append(("text" if current[0] == 1 else "binary", data))
            current = None
    return msgs


def verify_against_truth(capture: Path, truth: Path, server_port: int) -> list[str]:
    """Decode the capture independently and compare with the truth file; return problems."""
    streams = tcp_streams(capture)
    want: dict[tuple[int, str], list[Message]] = {}
    for line in truth.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        want.setdefault((rec["client_port"], rec["direction"]), []).append(
            (rec["type"], base64.b64decode(rec["payload_b64"]))
        )
    problems: list[str] = []
    seen: set[int] = set()
    for (src, dst), c_buf in sorted(streams.items()):
        if dst != server_port:
            continue
        _, c_rest = skip_http(c_buf)
        s_heads, s_rest = skip_http(streams.get((dst, src), b""))
        if not s_heads or not s_heads[-1][0].startswith("HTTP/1.1 101"):
            continue
        seen.add(src)
        ext = s_heads[-1][1].get("sec-websocket-extensions", "")
        deflate = ext.startswith("permessage-deflate")
        for direction, buf, flag in (
            ("c2s", c_rest, "client_no_context_takeover"),
            ("s2c", s_rest, "server_no_context_takeover"),
        ):
            got = [
                m
                for m in decode_ws(buf, direction == "c2s", deflate, flag in ext)
                if m[0] != "pong"
            ]
            if got != want.get((src, direction), []):
                problems.append(f"{src} {direction}: decoded messages differ from truth")
    missing = {port for port, _ in want} - seen
    if missing:
        problems.append(f"no websocket stream for truth ports {sorted(missing)}")
    return problems


def tshark_summary(path: Path) -> dict[str, Any]:
    if shutil.which("tshark") is None:
        return {}
    res = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-Y",
            "websocket",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "websocket.opcode",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    ws_frames = sum(
        len(line.split("\t")[1].split(","))
        for line in res.stdout.splitlines()
        if "\t" in line and line.split("\t")[1]
    )
    seg = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "tcp.len"],
        capture_output=True,
        text=True,
        check=False,
    )
    lens = [int(x) for x in seg.stdout.split() if x.isdigit()]
    return {"tshark_ws_frames": ws_frames, "packets": len(lens), "max_tcp_len": max(lens or [0])}


def setup_namespace_loopback() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    res = subprocess.run(["ip", "link", "set", "lo", "gso_max_segs", "1"], check=False)
    if res.returncode != 0:
        print("warning: could not limit GSO on lo; captures will show GSO super-segments")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="", help="comma-separated sample names")
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR)
    parser.add_argument(
        "--host-net",
        action="store_true",
        help="capture in the current network namespace (GSO not limited)",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SAMPLE_NAMES)
    unknown = set(names) - set(BUILDERS)
    if unknown:
        parser.error(f"unknown samples: {sorted(unknown)}")
    if os.geteuid() != 0:
        raise SystemExit("run as root (tcpdump/dumpcap and unshare need it)")

    if "node-ws-fragments" in names:
        ensure_node_modules()

    in_netns = os.environ.get(NETNS_ENV) == "1"
    if not in_netns and not args.host_net:
        if shutil.which("unshare") is None:
            raise SystemExit("unshare(1) not found; use --host-net")
        env = dict(os.environ, **{NETNS_ENV: "1"})
        cmd = [
            "unshare",
            "--net",
            "--",
            sys.executable,
            str(Path(__file__).resolve()),
            *(argv if argv is not None else sys.argv[1:]),
        ]
        return subprocess.run(cmd, env=env, check=False).returncode
    if in_netns:
        setup_namespace_loopback()

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tools = {
        "tcpdump": tool_version(["tcpdump", "--version"]),
        "dumpcap": tool_version(["dumpcap", "--version"]),
    }
    failures = 0
    for name in names:
        builder, base_port, linktype = BUILDERS[name]
        print(f"== {name}")
        result = builder(out, PortPlan(base_port, fixed=in_netns))
        size = result.capture.stat().st_size
        summary = tshark_summary(result.capture)
        expected = sum(st.ws_frames() for c in result.conversations for st in c.steps)
        meta = {
            "name": name,
            "capture": result.capture.name,
            "capture_format": "pcapng" if result.capture.suffix == ".pcapng" else "pcap",
            "link_type": linktype,
            "capture_tool": tools["dumpcap" if result.capture.suffix == ".pcapng" else "tcpdump"],
            "tcp_maxseg": MSS,
            "private_netns_gso_limited": in_netns,
            "number_of_connections": len(result.conversations),
            "tcp_connections": result.tcp_connections or len(result.conversations),
            **result.meta,
            "versions": versions_python(),
            "expected_ws_frames_total": expected,
            "generated_by": "tools/make_samples.py",
        }
        (out / f"{name}.meta.json").write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        status = "OK" if summary.get("tshark_ws_frames", expected) == expected else "DIFF"
        print(
            f"  {result.capture.name}: {size} bytes, expected ws frames {expected}, "
            f"tshark {summary} [{status}]"
        )
        if size > MAX_CAPTURE_BYTES:
            print(f"  warning: {result.capture.name} is larger than {MAX_CAPTURE_BYTES} bytes")
        if shutil.which("tshark") is not None:
            problems = verify_against_truth(
                result.capture, out / f"{name}.truth.jsonl", meta["server"]["port"]
            )
            print(f"  independent decode vs truth: {'; '.join(problems) or 'OK'}")
            failures += len(problems)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
