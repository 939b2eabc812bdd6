"""A python-websockets wss:// echo server for tests driving other clients (run as a
script): ``python tests/tls_echo_server.py PORT CERT KEY [--tls 1.2|1.3]``.

Prints ``listening`` once it accepts connections; echoes every message; runs
until terminated."""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

from websockets.asyncio.server import ServerConnection, serve


async def main(args: argparse.Namespace) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if args.no_ticket:
        ctx.options |= ssl.OP_NO_TICKET
    # Python refuses client-initiated renegotiation by default; tests need it.
    ctx.options &= ~ssl.OP_NO_RENEGOTIATION
    ctx.options |= 0x100  # SSL_OP_ALLOW_CLIENT_RENEGOTIATION (OpenSSL 3), not named by Python

    async def echo(ws: ServerConnection) -> None:
        async for msg in ws:
            await ws.send(msg)

    async with serve(echo, "127.0.0.1", args.port, ssl=ctx, ping_interval=None,
                     max_size=None, compression=None):
        print("listening", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("cert")
    p.add_argument("key")
    p.add_argument("--tls", default="any")
    p.add_argument("--no-ticket", action="store_true")
    try:
        asyncio.run(main(p.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
