"""Regenerate ``notebooks/jsonrpc-demo.pcap``, the small crafted capture the
tutorial notebook uses for request → response latency and violations.

    .venv/bin/python notebooks/make_demo_capture.py          # from the repository root

One uncompressed WebSocket connection, 127.0.0.1:51000 → 127.0.0.1:8080, path
``/rpc``, subprotocol ``jsonrpc``.  Times are seconds after the first SYN:

* 0.100 → 0.145  JSON-RPC ``id 1`` (45 ms)
* 0.200 → 0.320  ``id 2`` (the 3.3 kB reply starts at 0.320 and ends at 0.323), with a
                 server notification (no id) at 0.250
* 1.000 → 1.025  Ping → Pong (25 ms)
* 1.500 → 1.620  ``id 3`` (120 ms)
* 2.000          a client text frame sent *unmasked* (frame.client-unmasked)
* 2.100          a server text message with invalid UTF-8 (text.invalid-utf8)
* 7.000 → 7.030  ``id 4`` after five idle seconds (30 ms)
* 7.500          close handshake (1000), then TCP FIN

The file is deterministic: the test suite checks that this script reproduces it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.pcaptools import (  # noqa: E402  (needs the repository root on sys.path)
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Conversation,
    ws_close_payload,
    ws_frame,
)

OUTPUT = HERE / "jsonrpc-demo.pcap"
T0 = 1_700_000_000.0


def build() -> Conversation:
    """The crafted conversation (see the module docstring)."""
    conv = Conversation(client=("127.0.0.1", 51000), server=("127.0.0.1", 8080), t0=T0)
    conv.handshake()
    conv.ws_upgrade(host="rpc.example", path="/rpc", protocols="jsonrpc", protocol="jsonrpc")
    masks = iter(bytes([0x11 * (i % 15 + 1)] * 3 + [i]) for i in range(1, 1000))

    def at(t: float) -> None:
        delay = T0 + t - conv.now
        if delay < 0:
            raise ValueError(f"t={t} is in the past")
        conv.wait(delay)

    def send(t: float, direction: str, opcode: int, payload: bytes, *,
             masked: bool | None = None) -> None:
        at(t)
        mask = next(masks) if (direction == "c2s" if masked is None else masked) else None
        conv.send(direction, ws_frame(opcode, payload, mask=mask))

    def rpc(obj: dict[str, object]) -> bytes:
        return json.dumps({"jsonrpc": "2.0", **obj}, separators=(",", ":")).encode()

    send(0.100, "c2s", OP_TEXT, rpc({"id": 1, "method": "account.balance",
                                     "params": {"account": "ACME-001"}}))
    send(0.145, "s2c", OP_TEXT, rpc({"id": 1, "result": {"balance": 1250.75,
                                                          "currency": "EUR"}}))
    send(0.200, "c2s", OP_TEXT, rpc({"id": 2, "method": "orders.list",
                                     "params": {"account": "ACME-001", "limit": 50}}))
    send(0.250, "s2c", OP_TEXT, rpc({"method": "market.tick",
                                     "params": {"symbol": "ACME", "price": 101.25}}))
    orders = [{"id": 9000 + i, "symbol": "ACME", "side": "buy" if i % 3 else "sell",
               "qty": 10 * (i % 7 + 1), "price": 100 + i / 4} for i in range(50)]
    send(0.320, "s2c", OP_TEXT, rpc({"id": 2, "result": {"orders": orders}}))
    send(1.000, "c2s", OP_PING, b"keepalive-1")
    send(1.025, "s2c", OP_PONG, b"keepalive-1")
    send(1.500, "c2s", OP_TEXT, rpc({"id": 3, "method": "orders.cancel",
                                     "params": {"order": 9004}}))
    send(1.620, "s2c", OP_TEXT, rpc({"id": 3, "result": {"cancelled": True}}))
    send(2.000, "c2s", OP_TEXT, rpc({"method": "client.log", "params": {"msg": "unmasked!"}}),
         masked=False)
    send(2.100, "s2c", OP_TEXT, b'{"jsonrpc":"2.0","method":"note","params":"caf\xe9"}')
    send(7.000, "c2s", OP_TEXT, rpc({"id": 4, "method": "account.balance",
                                     "params": {"account": "ACME-001"}}))
    send(7.030, "s2c", OP_TEXT, rpc({"id": 4, "result": {"balance": 1190.5,
                                                          "currency": "EUR"}}))
    send(7.500, "c2s", OP_CLOSE, ws_close_payload(1000, "bye"))
    send(7.510, "s2c", OP_CLOSE, ws_close_payload(1000, "bye"))
    conv.close("s2c")
    return conv


def main(path: Path = OUTPUT) -> None:
    build().write(path)
    print(path)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
