"""python-websockets client and server talking wss:// on loopback (run as a script).

Usage: ``python tests/tls_peers.py PORT CERT KEY KEYLOG TRUTH [--tls 1.2|1.3]
[--ciphers SPEC]``.  The client writes its TLS secrets to KEYLOG
(``ssl.SSLContext.keylog_filename``); both peers log what they send to TRUTH
(one JSON object per line: direction, type, payload as hex).  TLS 1.3 suites are
chosen with OpenSSL's configuration (``OPENSSL_CONF``) by the caller.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

MESSAGES_C2S: list[str | bytes] = ["hello over TLS", b"\x00\x01binary\xff" * 40,
                                   "x" * 5000, "café ✓ " * 300]
MESSAGES_S2C: list[str | bytes] = ["welcome", b"\x10" * 70000,
                                   random.Random(7).randbytes(50000), "done"]
"""The random message does not compress: it spans several TLS records."""


def contexts(args: argparse.Namespace) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(args.cert, args.key)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    client.keylog_filename = args.keylog
    for ctx in (server, client):
        if args.tls == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if args.ciphers:
            ctx.set_ciphers(args.ciphers)
    if args.alpn:
        server.set_alpn_protocols([args.alpn])
        client.set_alpn_protocols([args.alpn])
    return server, client


def record(log: list[dict[str, Any]], direction: str, msg: str | bytes) -> None:
    kind = "text" if isinstance(msg, str) else "binary"
    data = msg.encode() if isinstance(msg, str) else msg
    log.append({"direction": direction, "type": kind, "payload": data.hex()})


async def main(args: argparse.Namespace) -> None:
    server_ctx, client_ctx = contexts(args)
    log: list[dict[str, Any]] = []
    finished = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        for _ in MESSAGES_C2S:
            await ws.recv()
        for msg in MESSAGES_S2C:
            record(log, "s2c", msg)
            await ws.send(msg)
        await ws.wait_closed()
        finished.set_result(None)

    async with serve(handler, "127.0.0.1", args.port, ssl=server_ctx, ping_interval=None,
                     max_size=None):
        async with connect(f"wss://127.0.0.1:{args.port}/tls-test", ssl=client_ctx,
                           server_hostname="localhost", ping_interval=None, max_size=None,
                           additional_headers={"Origin": "https://test.example"}) as ws:
            for msg in MESSAGES_C2S:
                record(log, "c2s", msg)
                await ws.send(msg)
            for _ in MESSAGES_S2C:
                await ws.recv()
        await asyncio.wait_for(finished, 20)
    with open(args.truth, "w") as f:
        for row in log:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for name in ("port", "cert", "key", "keylog", "truth"):
        p.add_argument(name)
    p.add_argument("--tls", default="1.3")
    p.add_argument("--ciphers")
    p.add_argument("--alpn")
    parsed = p.parse_args()
    parsed.port = int(parsed.port)
    asyncio.run(main(parsed))
