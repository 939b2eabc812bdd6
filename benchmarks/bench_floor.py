"""The "floor" of a capture: reading its records plus inflating every compressed
WebSocket message once, with the same zlib — what no analyzer can avoid.

Usage::

    python benchmarks/bench_floor.py CAPTURE [--repeat 3] [--json FILE]

First, untimed, the compressed messages are extracted with a minimal parser of
this file's own (not wsanalyze's): Ethernet/IPv4/TCP pcap, TCP segments in order
without loss or retransmission — what benchmarks/generate.py writes; anything
else is refused with a one-line message.  Each message keeps its connection and
direction, and each direction whether it keeps its deflate context
(``client_no_context_takeover`` / ``server_no_context_takeover`` in the 101
response) and its window bits.  When ``CAPTURE.truth.json`` exists, the count and
bytes of compressed messages are checked against it.

Then, timed (best of ``--repeat``, CPU and wall):

* ``read``: every record of the file — read in 8 MiB chunks, each record's
  header unpacked and its bytes copied out, as any reader must;
* ``inflate``: every compressed message through ``zlib.decompressobj`` (one per
  direction with context takeover, one per message without), in capture order,
  with the ``00 00 ff ff`` tail RFC 7692 strips;
* ``floor`` = read + inflate.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# benchmarks/ is not a package: its scripts are imported from its folder.
from compare import print_and_save, script_parser
from generate import mask

_CHUNK = 8 << 20
_PCAP_US = 0xA1B2C3D4
_PCAP_NS = 0xA1B23C4D
_RECORD = struct.Struct("<IIII")
_TAIL = b"\x00\x00\xff\xff"
Flow = tuple[bytes, int, bytes, int]


class NotGenerated(Exception):
    """The capture is not one this simple parser can follow."""


@dataclass
class _Direction:
    """One direction of a connection: its bytes not yet parsed, its message."""

    client: bool
    buf: bytearray = field(default_factory=bytearray)
    seq: int | None = None
    http_done: bool = False
    message: list[bytes] | None = None
    """Payload pieces of the compressed message in progress (None: none, or not
    compressed)."""


@dataclass
class Extracted:
    """The compressed messages of a capture, in capture order."""

    messages: list[tuple[int, bytes]] = field(default_factory=list)
    """(direction id, compressed payload without the 00 00 ff ff tail)."""
    takeover: dict[int, bool] = field(default_factory=dict)
    """Direction id → keeps its deflate context between messages."""
    window_bits: dict[int, int] = field(default_factory=dict)


def _records(data: bytes) -> list[tuple[int, bytes]]:
    magic = struct.unpack_from("<I", data)[0]
    if magic not in (_PCAP_US, _PCAP_NS):
        raise NotGenerated("not a little-endian pcap file (generate.py writes those)")
    if struct.unpack_from("<I", data, 20)[0] != 1:
        raise NotGenerated("not an Ethernet capture")
    out = []
    off = 24
    while off + 16 <= len(data):
        _, _, stored, _ = _RECORD.unpack_from(data, off)
        out.append((off + 16, stored))
        off += 16 + stored
    return out


def _extensions(response: bytes) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for line in response.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            for part in value.decode("latin-1").split(";"):
                key, eq, val = part.strip().partition("=")
                params[key.strip()] = val.strip().strip('"') if eq else None
    return params


def extract(path: Path) -> Extracted:
    """The compressed messages of a generated capture (untimed)."""
    data = path.read_bytes()
    dirs: dict[Flow, _Direction] = {}
    ids: dict[Flow, int] = {}
    result = Extracted()
    for off, stored in _records(data):
        pkt = data[off:off + stored]
        if len(pkt) < 54 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ihl = (pkt[14] & 15) * 4
        t = 14 + ihl
        total = struct.unpack_from("!H", pkt, 16)[0]
        src, dst = pkt[26:30], pkt[30:34]
        sport, dport, seq = struct.unpack_from("!HHI", pkt, t)
        flags = pkt[t + 13]
        payload = pkt[t + (pkt[t + 12] >> 4) * 4:14 + total]
        flow = (src, sport, dst, dport)
        d = dirs.get(flow)
        if flags & 0x02:  # SYN: a new connection (the side without ACK is the client)
            dirs[flow] = _Direction(client=not flags & 0x10, seq=(seq + 1) & 0xFFFFFFFF)
            ids[flow] = len(ids)
            continue
        if d is None or not payload:
            continue
        if seq != d.seq:
            raise NotGenerated(f"TCP segment out of order in record at byte {off - 16}")
        d.seq = (seq + len(payload)) & 0xFFFFFFFF
        d.buf += payload
        if not d.http_done:
            end = d.buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head = bytes(d.buf[:end])
            del d.buf[:end + 4]
            d.http_done = True
            if not d.client:
                _negotiated(result, _extensions(head), ids[flow],
                            ids[(dst, dport, src, sport)])
        _frames(d, ids[flow], result)
    return result


def _negotiated(result: Extracted, params: dict[str, str | None], server: int,
                client: int) -> None:
    result.takeover[client] = "client_no_context_takeover" not in params
    result.takeover[server] = "server_no_context_takeover" not in params
    result.window_bits[client] = int(params.get("client_max_window_bits") or 15)
    result.window_bits[server] = int(params.get("server_max_window_bits") or 15)


def _frames(d: _Direction, ident: int, result: Extracted) -> None:
    buf = d.buf
    off = 0
    while len(buf) - off >= 2:
        b0, b1 = buf[off], buf[off + 1]
        n, head = b1 & 0x7F, 2
        if n == 126:
            if len(buf) - off < 4:
                break
            n, head = struct.unpack_from("!H", buf, off + 2)[0], 4
        elif n == 127:
            if len(buf) - off < 10:
                break
            n, head = struct.unpack_from("!Q", buf, off + 2)[0], 10
        key = bytes(buf[off + head:off + head + 4]) if b1 & 0x80 else None
        head += 4 if key else 0
        if len(buf) - off < head + n:
            break
        body = bytes(buf[off + head:off + head + n])
        off += head + n
        opcode = b0 & 0x0F
        if opcode >= 8:
            continue  # control frames are never compressed
        if key is not None:
            body = mask(body, key)
        if opcode != 0:  # a new data message
            d.message = [] if b0 & 0x40 else None
        if d.message is not None:
            d.message.append(body)
            if b0 & 0x80:
                result.messages.append((ident, b"".join(d.message)))
                d.message = None
    del buf[:off]


def time_read(path: Path) -> int:
    """Every record's header unpacked and its bytes copied out; returns the count."""
    unpack = _RECORD.unpack_from
    count = 0
    with path.open("rb", buffering=0) as f:
        f.read(24)  # the file header
        rest = b""
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                break
            data = rest + chunk
            off, end = 0, len(data)
            while off + 16 <= end:
                stored = unpack(data, off)[2]
                if off + 16 + stored > end:
                    break
                _ = data[off + 16:off + 16 + stored]
                count += 1
                off += 16 + stored
            rest = data[off:]
    return count


def time_inflate(ex: Extracted) -> int:
    """Inflate every message once; returns the inflated bytes."""
    objs: dict[int, Any] = {}
    takeover = ex.takeover
    bits = ex.window_bits
    total = 0
    for ident, payload in ex.messages:
        obj = objs.get(ident)
        if obj is None or not takeover.get(ident, True):
            obj = objs[ident] = zlib.decompressobj(-bits.get(ident, 15))
        total += len(obj.decompress(payload + _TAIL))
    return total


def _timed(fn: Any, arg: Any, repeat: int) -> tuple[float, float, Any]:
    best_wall = best_cpu = float("inf")
    value = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        value = fn(arg)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, value


def measure(path: Path, repeat: int = 3) -> dict[str, Any]:
    ex = extract(path)
    truth_file = path.with_name(path.name + ".truth.json")
    compressed = sum(len(p) for _, p in ex.messages)
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        want = (truth["compressed_messages"], truth["compressed_bytes"])
        if (len(ex.messages), compressed) != want:
            raise NotGenerated(f"found {len(ex.messages)} compressed messages of {compressed} "
                               f"bytes, the truth file says {want[0]} of {want[1]}")
    with path.open("rb") as f:  # into the page cache, as compare.py does
        while f.read(_CHUNK):
            pass
    read_wall, read_cpu, records = _timed(time_read, path, repeat)
    inf_wall, inf_cpu, inflated = _timed(time_inflate, ex, repeat)
    return {"capture": str(path), "file_bytes": path.stat().st_size, "records": records,
            "compressed_messages": len(ex.messages), "compressed_bytes": compressed,
            "inflated_bytes": inflated, "read_s": read_wall, "read_cpu_s": read_cpu,
            "inflate_s": inf_wall, "inflate_cpu_s": inf_cpu,
            "floor_s": read_wall + inf_wall, "floor_cpu_s": read_cpu + inf_cpu,
            "zlib": zlib.ZLIB_RUNTIME_VERSION, "repeat": repeat,
            "load_avg": os.getloadavg()}


def render(r: dict[str, Any]) -> str:
    mb = r["file_bytes"] / 1e6
    return (f"{r['capture']}: {mb:.1f} MB, {r['records']:,} records, "
            f"{r['compressed_messages']:,} compressed messages, {r['compressed_bytes']:,} → "
            f"{r['inflated_bytes']:,} bytes (zlib {r['zlib']}, best of {r['repeat']})\n"
            f"read {r['read_s']:.2f} s + inflate {r['inflate_s']:.2f} s = floor "
            f"{r['floor_s']:.2f} s ({mb / r['floor_s']:.0f} MB/s); CPU {r['floor_cpu_s']:.2f} s; "
            f"load average {r['load_avg'][0]:.2f}\n")


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("capture", metavar="CAPTURE")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    try:
        result = measure(Path(args.capture), args.repeat)
    except (OSError, NotGenerated, struct.error) as exc:
        print(f"bench_floor.py: error: {args.capture}: {exc}", file=sys.stderr)
        return 1
    return print_and_save(render(result), result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
