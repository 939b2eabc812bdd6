"""A wss:// server for the browser test (run as a script):
``python tests/tls_page_server.py PORT CERT KEY TRUTH``.

``GET /page.html`` returns a page whose script opens ``wss://localhost:PORT/ws``,
sends MESSAGES and then ``bye``; the server greets, echoes every message, and
closes after ``bye``.  It logs what it sent to TRUTH (JSON lines), prints
``listening`` when ready and ``done`` when the WebSocket has closed."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

MESSAGES = ["from the browser", "second message " * 50, "ünïcödé ✓"]
PAGE = """<!doctype html><title>wss test</title><script>
const ws = new WebSocket("wss://localhost:%d/ws");
const out = %s;
ws.onmessage = (e) => {
  if (e.data === "hello browser") { for (const m of out) ws.send(m); ws.send("bye"); }
};
</script>"""


async def main(args: argparse.Namespace) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    sent: list[dict[str, Any]] = []

    def send_log(text: str) -> None:
        sent.append({"direction": "s2c", "type": "text", "payload": text.encode().hex()})

    def page(conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/ws":
            return None
        body = (PAGE % (args.port, json.dumps(MESSAGES))).encode()
        status = HTTPStatus.OK if request.path == "/page.html" else HTTPStatus.NOT_FOUND
        return Response(status.value, status.phrase, Headers(
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]),
            body)

    async def handler(ws: ServerConnection) -> None:
        send_log("hello browser")
        await ws.send("hello browser")
        async for msg in ws:
            assert isinstance(msg, str)
            if msg == "bye":
                await ws.close(1000, "done")
                break
            send_log(msg)
            await ws.send(msg)
        await ws.wait_closed()
        with open(args.truth, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in sent)
        print("done", flush=True)

    async with serve(handler, "127.0.0.1", args.port, ssl=ctx, process_request=page,
                     ping_interval=None):
        print("listening", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("cert")
    p.add_argument("key")
    p.add_argument("truth")
    asyncio.run(main(p.parse_args()))
