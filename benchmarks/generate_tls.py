"""The benchmark traffic of generate.py inside TLS 1.3 (wss://), with a key log.

Every connection of :mod:`generate` gets a TLS 1.3 handshake (ClientHello with
SNI, ServerHello, encrypted EncryptedExtensions and Finished) before its HTTP
Upgrade, and all its bytes after that go in AES-128-GCM records of at most 2^14
plaintext bytes (tests/tlssynth.py: secrets are drawn from the seeded RNG and
logged, there is no key exchange).  Writes ``OUT.pcap``, ``OUT.pcap.truth.json``
(the same counts as the plain capture of the same seed) and ``OUT.pcap.keys.txt``.

Usage::

    python benchmarks/generate_tls.py benchmarks/data/100m-tls.pcap --size 100M --no-fragments
    python -m wsanalyze summary benchmarks/data/100m-tls.pcap \\
        --tls-keylog benchmarks/data/100m-tls.pcap.keys.txt
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.generate import (
    CaptureGenerator,
    Connection,
    Side,
    parse_size,
    truth_path,
)
from tests.tlssynth import Tls13Session


class TlsConnection(Connection):
    def __init__(self, gen: CaptureGenerator, index: int, messages: int) -> None:
        super().__init__(gen, index, messages)
        self.tls = Tls13Session(random.Random(self.rng.getrandbits(64)), sni=self.host)
        self.tls_open = False
        assert isinstance(gen, TlsCaptureGenerator)
        gen.keylog.append(self.tls.keylog())

    def _send(self, src: Side, dst: Side, data: bytes) -> Iterator[None]:
        tls = self.tls
        send = super()._send
        if not self.tls_open:
            # The first bytes are the client's Upgrade request: the TLS handshake goes first.
            self.tls_open = True
            yield from send(self.client, self.server, tls.client_hello())
            yield
            yield from send(self.server, self.client, tls.server_flight())
            yield
            data = tls.client_finished() + tls.app(True, data)
        else:
            data = tls.app(src is self.client, data)
        yield from send(src, dst, data)


class TlsCaptureGenerator(CaptureGenerator):
    def __init__(self, out: Any, **options: Any) -> None:
        super().__init__(out, **options)
        self.keylog: list[str] = []

    def _connect(self) -> Connection:
        index = self.connections
        self.connections += 1
        if self.messages is not None:
            count = self.messages
        elif self.size is not None:
            count = self.rng.randint(20, 400)
        else:
            count = 100
        return TlsConnection(self, index, count)


def generate_tls(path: str | Path, **options: Any) -> dict[str, Any]:
    """Write the capture, its truth and ``path + ".keys.txt"``; return the truth."""
    path = Path(path)
    with path.open("wb", buffering=0) as out:
        gen = TlsCaptureGenerator(out, **options)
        truth = gen.run()
    truth_path(path).write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    Path(str(path) + ".keys.txt").write_text("".join(gen.keylog), encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output", metavar="OUT.pcap")
    ap.add_argument("--size", type=parse_size)
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--messages", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fragments", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    truth = generate_tls(args.output, seed=args.seed, size=args.size,
                         concurrency=args.connections, messages=args.messages,
                         fragments=args.fragments)
    mb = truth["file_bytes"] / 1e6
    print(f"wrote {args.output} (+ .keys.txt): {mb:.1f} MB, {truth['packets']:,} packets, "
          f"{truth['connections']:,} connections, {truth['messages_total']:,} messages in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
