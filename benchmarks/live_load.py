"""A WebSocket load on loopback for the live benchmarks (run as a separate process).

    python benchmarks/live_load.py PORT --messages 200000 --connections 8
    python benchmarks/live_load.py PORT --rate 2000 --seconds 180 --lifetime 5

Without ``--rate``: each of ``--connections`` clients sends its share of
``--messages`` as fast as it can to a python-websockets echo server and receives
the echoes.  With ``--rate``: messages per second in total, for ``--seconds``,
each connection closing after ``--lifetime`` seconds and a new one taking its
place (connections that end must be released by the decoder).  Prints one JSON
line: messages sent, connections made, seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve


async def _echo(ws: ServerConnection) -> None:
    async for msg in ws:
        await ws.send(msg)


async def _burst(url: str, n: int, size: int) -> int:
    payload = "x" * size
    async with connect(url, compression=None) as ws:
        async def receive() -> None:
            for _ in range(n):
                await ws.recv()

        rx = asyncio.create_task(receive())
        for _ in range(n):
            await ws.send(payload)
        await rx
    return n


async def _paced(url: str, rate: float, until: float, lifetime: float, size: int,
                 counts: list[int]) -> None:
    payload = "y" * size
    while time.monotonic() < until:
        async with connect(url, compression=None) as ws:
            end = min(until, time.monotonic() + lifetime)
            nxt = time.monotonic()
            while time.monotonic() < end:
                await ws.send(payload)
                await ws.recv()
                counts[0] += 1
                nxt += 1.0 / rate
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        counts[1] += 1


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--size", type=int, default=64, help="payload bytes per message")
    ap.add_argument("--rate", type=float, help="messages per second in total (paced mode)")
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--lifetime", type=float, default=5.0)
    args = ap.parse_args()
    url = f"ws://127.0.0.1:{args.port}/"
    start = time.monotonic()
    async with serve(_echo, "127.0.0.1", args.port, compression=None):
        if args.rate is None:
            share = args.messages // args.connections
            sent = sum(await asyncio.gather(*(_burst(url, share, args.size)
                                              for _ in range(args.connections))))
            made = args.connections
        else:
            counts = [0, 0]
            until = start + args.seconds
            await asyncio.gather(*(_paced(url, args.rate / args.connections, until,
                                          args.lifetime, args.size, counts)
                                   for _ in range(args.connections)))
            sent, made = counts
    print(json.dumps({"messages": sent, "connections": made,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
