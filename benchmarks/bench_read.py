"""Micro benchmark of capture reading and header parsing.

Writes a synthetic Ethernet/IPv4/TCP pcap (about 200 MB by default) to /tmp, then
times three passes over it:

* ``read``: iterate :class:`CaptureReader` only;
* ``read+parse``: also run :class:`PacketParser` on every packet;
* ``pcapng read`` / ``pcapng read+parse`` (with ``--pcapng``): the same packets
  as a pcapng of Enhanced Packet Blocks;
* ``gzip read+parse`` (with ``--gzip``): the pcap gzip-compressed.

MB/s are megabytes of the uncompressed pcap per second.  Usage::

    python benchmarks/bench_read.py [--size-mb 200] [--repeat 3] [--pcapng] [--gzip]

The packet mix imitates a WebSocket capture: 40 % pure ACKs / small frames
(0-120 bytes of payload), 30 % medium (120-700), 30 % full 1448-byte segments;
about 1 in 50 packets is UDP and 1 in 100 carries a VLAN tag.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wsanalyze.sources.capture import open_capture
from wsanalyze.tcp.packet import PacketParser

_ETH = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02"


def _frame(rng: random.Random, seq: int) -> bytes:
    r = rng.random()
    if r < 0.4:
        size = rng.randrange(0, 120)
    elif r < 0.7:
        size = rng.randrange(120, 700)
    else:
        size = 1448
    payload = rng.randbytes(size)
    if rng.random() < 0.02:  # some UDP noise
        udp = struct.pack("!HHHH", 5353, 5353, 8 + size, 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                         b"\x0a\0\0\x01", b"\xe0\0\0\xfb") + udp
        return _ETH + b"\x08\x00" + ip
    tcp = struct.pack("!HHIIBBHHH", 51000, 443, seq & 0xFFFFFFFF, 12345, 0x50, 0x18, 501, 0,
                      0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0,
                     b"\x0a\0\0\x01", b"\x0a\0\0\x02") + tcp
    if rng.random() < 0.01:
        return _ETH + b"\x81\x00\x00\x05\x08\x00" + ip
    return _ETH + b"\x08\x00" + ip


def write_capture(path: Path, size: int, seed: int = 1) -> int:
    """Write a pcap of about ``size`` bytes; return its packet count."""
    rng = random.Random(seed)
    pool = [_frame(rng, i * 1000) for i in range(4096)]  # reused: generation is not timed
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
    rec = struct.Struct("<IIII")
    written = 0
    count = 0
    ts = 1_700_000_000_000_000
    with path.open("wb") as f:
        f.write(header)
        written += len(header)
        batch: list[bytes] = []
        while written < size:
            frame = pool[count % len(pool)]
            ts += 137
            batch.append(rec.pack(ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            batch.append(frame)
            written += 16 + len(frame)
            count += 1
            if len(batch) > 20000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))
    return count


def write_pcapng(src: Path, dst: Path) -> None:
    """Rewrite the pcap ``src`` as a pcapng with one Ethernet interface (EPBs)."""
    from wsanalyze.sources.capture import open_capture as _open

    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHII", 1, 20, 1, 0, 262144, 20)
    epb = struct.Struct("<IIIIIII")
    with dst.open("wb") as f, _open(src) as reader:
        f.write(shb + idb)
        batch: list[bytes] = []
        for pkt in reader:
            units = round(pkt.ts * 1_000_000)
            pad = -len(pkt.data) % 4
            total = 32 + len(pkt.data) + pad
            batch.append(epb.pack(6, total, 0, units >> 32, units & 0xFFFFFFFF, len(pkt.data),
                                  pkt.orig_len))
            batch.append(pkt.data + b"\0" * pad + struct.pack("<I", total))
            if len(batch) > 20000:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))


def _time_read(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    with open_capture(path) as reader:
        for _ in reader:
            n += 1
        assert reader.stopped is None, reader.stopped
    return time.perf_counter() - start, n


def _time_read_parse(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    parser = PacketParser()
    parse = parser.parse
    segments = 0
    with open_capture(path) as reader:
        for pkt in reader:
            if parse(pkt) is not None:
                segments += 1
        assert reader.stopped is None, reader.stopped
    return time.perf_counter() - start, segments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="also time a gzip-compressed copy")
    ap.add_argument("--pcapng", action="store_true", help="also time a pcapng copy")
    ap.add_argument("--path", default="/tmp/wsanalyze-bench.pcap")
    args = ap.parse_args()

    path = Path(args.path)
    size = args.size_mb * 1_000_000
    if not path.exists() or abs(path.stat().st_size - size) > 2000:
        t = time.perf_counter()
        count = write_capture(path, size)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {count} packets) in "
              f"{time.perf_counter() - t:.1f} s")
    file_mb = path.stat().st_size / 1e6

    passes: list[tuple[str, Path, object]] = [
        ("read", path, _time_read),
        ("read+parse", path, _time_read_parse),
    ]
    if args.pcapng:
        ng = path.with_suffix(".pcapng")
        if not ng.exists() or ng.stat().st_mtime < path.stat().st_mtime:
            write_pcapng(path, ng)
        passes.append(("pcapng read", ng, _time_read))
        passes.append(("pcapng read+parse", ng, _time_read_parse))
    if args.gzip:
        gz = path.with_suffix(".pcap.gz")
        if not gz.exists():
            with path.open("rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
        passes.append(("gzip read+parse", gz, _time_read_parse))

    for name, p, fn in passes:
        best = float("inf")
        count = 0
        for _ in range(args.repeat):
            elapsed, count = fn(p)  # type: ignore[operator]
            best = min(best, elapsed)
        print(f"{name:>18}: {best:6.2f} s  {count / best / 1e3:6.0f} kpackets/s  "
              f"{file_mb / best:6.1f} MB/s  ({count} packets or segments)")
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
