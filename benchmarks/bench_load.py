"""Load benchmark: hostile shapes of traffic must cost bounded time and memory.

Builds two captures with tests/pcaptools.py and runs ``wsanalyze summary`` on
each in a child process, printing its wall time and peak RSS (``os.wait4``'s
``ru_maxrss``):

* ``frames``: 100 000 WebSocket frames in one TCP segment (a 210 KB TSO-style
  IPv4 packet whose total length field is 0, as captures of segmentation
  offload show).  Wireshark once recursed once per frame here (bug 10989).
* ``connections``: 10 000 concurrent WebSocket connections: every one opens
  and upgrades, then every one sends a message, then every one closes; run with
  the default connection limit and with ``--limit-connections 1000``.

Usage::

    python benchmarks/bench_load.py [--frames 100000] [--connections 10000]
                                    [--keep DIR] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pcaptools import (  # noqa: E402 (after the sys.path line)
    TH_ACK,
    TH_PUSH,
    Conversation,
    upgrade_request,
    upgrade_response,
    write_conversations,
    ws_frame,
    ws_key,
)

MASK = b"\x5a\x17\xc3\x08"
TSO_SNAPLEN = 262144
"""Large enough for the TSO-style segment (the reader accepts up to 256 KiB)."""


def _ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def add_tso_segment(conv: Conversation, direction: str, payload: bytes) -> int:
    """Append one IPv4 segment carrying ``payload`` whatever its size, with the IP
    total length 0 as captures of TCP segmentation offload show it.  The
    conversation's own sequence state is not advanced (send nothing after it in
    ``direction``); the TCP checksum is left unset.  Returns its packet number."""
    if conv.version != 4:
        raise ValueError("TSO-style segments are IPv4")
    number = conv.segment(direction, TH_ACK | TH_PUSH, seq=conv.next_seq(direction))
    ip = bytearray(conv.frames[-1].ip)
    ihl = (ip[0] & 0x0F) * 4
    ip[2:4] = b"\0\0"
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", _ipv4_checksum(bytes(ip[:ihl])))
    conv.frames[-1].ip = bytes(ip) + payload
    return number


def many_frames_payload(frames: int) -> bytes:
    """``frames`` unmasked text frames: empty ones, and every tenth holds "x"."""
    small = b"\x81\x00" * 9 + b"\x81\x01x"
    whole, rest = divmod(frames, 10)
    return small * whole + b"\x81\x00" * rest


def build_many_frames(path: Path, frames: int = 100_000) -> int:
    """A capture whose server sends ``frames`` frames in one TCP segment, then the
    client one text message.  Returns the packet number of that segment."""
    conv = Conversation()
    conv.handshake()
    conv.ws_upgrade()
    number = add_tso_segment(conv, "s2c", many_frames_payload(frames))
    conv.send("c2s", ws_frame(1, b"done", mask=MASK))
    conv.write(path, snaplen=TSO_SNAPLEN)
    return number


def _endpoint(i: int) -> tuple[str, int]:
    return f"10.{1 + i // 50_000}.{(i // 200) % 250}.{i % 200 + 1}", 30_000 + i % 30_000


def build_many_connections(path: Path, connections: int = 10_000, *,
                           phased: bool = True) -> None:
    """``connections`` WebSocket connections to one server.

    ``phased``: all open and upgrade, then each client sends a text message and
    the server answers, then all close (everything is open at once).  Else
    each connection opens, upgrades and exchanges its two messages in turn,
    and then stays open, idle (none is closed).
    """
    step = 1e-4
    convs = []
    t0 = 1_700_000_000.0
    for i in range(connections):
        c = Conversation(client=_endpoint(i), server=("10.0.0.1", 8080), t0=t0 + i * step,
                         client_isn=1000 + i, server_isn=900_000 + i)
        dt = step / 20
        c.handshake(dt=dt)
        key = ws_key(i)
        c.segment("c2s", TH_ACK | TH_PUSH, upgrade_request("ws.example", f"/c/{i}", key), dt=dt)
        c.segment("s2c", TH_ACK | TH_PUSH, upgrade_response(key), dt=dt)
        if phased:
            c.wait(t0 + connections * step + i * step - c.now)
        c.segment("c2s", TH_ACK | TH_PUSH, ws_frame(1, f"hello {i}".encode(), mask=MASK),
                  dt=dt)
        c.segment("s2c", TH_ACK | TH_PUSH, ws_frame(1, f"welcome {i}".encode()), dt=dt)
        if phased:
            c.wait(t0 + 2 * connections * step + i * step - c.now)
            c.segment("c2s", TH_ACK | TH_PUSH, ws_frame(8, b"\x03\xe8", mask=MASK), dt=dt)
            c.segment("s2c", TH_ACK | TH_PUSH, ws_frame(8, b"\x03\xe8"), dt=dt)
            c.close("s2c", dt=dt)
        convs.append(c)
    write_conversations(path, convs)


@dataclass
class Run:
    name: str
    wall: float
    maxrss_mb: float
    returncode: int
    output: str


def run_summary(name: str, capture: Path, *extra: str) -> Run:
    """``wsanalyze summary CAPTURE`` in a child; wall time and its peak RSS."""
    cmd = [sys.executable, "-m", "wsanalyze", "summary", "-q", str(capture), *extra]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Run(name, wall, usage.ru_maxrss / 1024, proc.returncode, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--keep", type=Path, help="write the captures to DIR and keep them")
    p.add_argument("--repeat", type=int, default=1, help="runs per case (best is shown)")
    p.add_argument("--build-only", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build_only:
        build_many_frames(args.build_only / f"frames-{args.frames}.pcap", args.frames)
        build_many_connections(args.build_only / f"connections-{args.connections}.pcap",
                               args.connections)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        frames_pcap = where / f"frames-{args.frames}.pcap"
        conns_pcap = where / f"connections-{args.connections}.pcap"
        t = time.perf_counter()
        # Built in another process: a child forked from a big parent would count
        # the parent's pages in its peak RSS.
        subprocess.run([sys.executable, __file__, "--build-only", str(where), "--frames",
                        str(args.frames), "--connections", str(args.connections)], check=True)
        print(f"built the captures in {time.perf_counter() - t:.1f} s: "
              f"{frames_pcap.stat().st_size / 1e6:.1f} MB and "
              f"{conns_pcap.stat().st_size / 1e6:.1f} MB", flush=True)
        cases = [
            (f"{args.frames} frames in one segment", frames_pcap, ()),
            (f"{args.connections} concurrent connections", conns_pcap, ()),
            (f"{args.connections} connections, --limit-connections 1000", conns_pcap,
             ("--limit-connections", "1000")),
        ]
        baseline = run_summary("startup", ROOT / "samples" / "aiohttp-plain.pcap")
        print(f"{'case':58} {'wall s':>8} {'peak RSS MB':>12}")
        print(f"{'(a tiny sample: interpreter and imports)':58} {baseline.wall:8.2f} "
              f"{baseline.maxrss_mb:12.1f}")
        failed = False
        for name, capture, extra in cases:
            runs = [run_summary(name, capture, *extra) for _ in range(max(1, args.repeat))]
            best = min(runs, key=lambda r: r.wall)
            print(f"{name:58} {best.wall:8.2f} {max(r.maxrss_mb for r in runs):12.1f}",
                  flush=True)
            if any(r.returncode for r in runs):
                failed = True
                print(best.output[-2000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
