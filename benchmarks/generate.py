"""Deterministic generator of large, realistic WebSocket captures for benchmarks.

Writes an Ethernet/IPv4/TCP pcap (microsecond timestamps) of many concurrent
WebSocket connections interleaved in time, and beside it ``OUT.truth.json`` with
what was sent (packets, connections, messages per type and direction, payload
bytes), so a decoder's output can be checked exactly.  The same seed and options
always give a byte-identical file (on the same zlib version).

Each connection has a TCP three-way handshake (MSS, SACK, window scale and
timestamp options), an HTTP Upgrade with a correct ``Sec-WebSocket-Accept``,
permessage-deflate negotiated with context takeover in both directions (with
``--deflate``), then messages both ways, a close handshake and a FIN exchange.
Every segment carries TCP timestamps, so at most 1448 payload bytes; large writes
are split at that size, small messages are sometimes written together (several
frames in one segment) and big ones are sent in bursts between which other
connections' packets interleave.  The receiver ACKs every second segment, and the
odd one late.  IPv4 and TCP checksums are correct.

The message mix: about 96 % JSON text of 50 B to 4 KB (realistic, repetitive
JSON, which deflate with context takeover shrinks 3-5 times), 2 % binary of
10-100 KB (half random, half compressible), 2 % pings answered by pongs.  Client
frames are masked with random keys.  With ``--fragments`` 5 % of data messages
are split into 2-4 frames (compressed ones per RFC 7692: RSV1 on the first frame
only), sometimes with a ping between the fragments.

``--profile deflate-heavy`` changes the mix to the inflate-bound case: every data
message is JSON text of 100 to 2,000 bytes (log-uniform), every one compressed
with permessage-deflate (context takeover both ways) at about 3:1 — each ends in
a hex signature of random bytes, without which this JSON shrinks 4.5 times — and
there are no binary messages and no pings other than those between fragments.
The truth file then has ``"profile": "deflate-heavy"`` in its ``params``.

Usage::

    python benchmarks/generate.py OUT.pcap --size 1G            # about 1e9 bytes
    python benchmarks/generate.py OUT.pcap --connections 20 --messages 50
    python benchmarks/generate.py OUT.pcap --size 100M --no-fragments --seed 7
    python benchmarks/generate.py OUT.pcap --size 100M --profile deflate-heavy

``--size`` takes K, M, G (powers of 1000) or Ki, Mi, Gi.  With ``--size``,
connections that end are replaced by new ones until the file reaches the size;
then every open connection closes properly, so the file ends a little larger.
Without ``--size``, exactly ``--connections`` connections carry ``--messages``
data messages each.  ``--snaplen`` cuts the stored packets (the truth file still
describes the traffic as sent).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import random
import re
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

MSS = 1448
"""Payload bytes per segment: an Ethernet MTU less IPv4, TCP and timestamp option."""
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BASE_TIME_US = 1_700_000_000_000_000
"""Capture start (2023-11-14 22:13:20 UTC), in microseconds."""
DEFAULT_SNAPLEN = 262_144
FLUSH_BYTES = 8 << 20

FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
TYPES = ("text", "binary", "ping", "pong", "close")

_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
# Ethernet header (pre-built 14 bytes), IPv4 without options, TCP with NOP NOP TS.
_DATA_PACKET = struct.Struct("!14sBBHHHBBH4s4sHHIIBBHHHIII")
# The same with the SYN options: MSS 1460, SACK permitted, timestamps, NOP, wscale 7.
_SYN_PACKET = struct.Struct("!14sBBHHHBBH4s4sHHIIBBHHHIHHIII")
_TS_OPTION = 0x0101080A  # NOP, NOP, kind 8, length 10
_SYN_OPT_MSS, _SYN_OPT_SACK, _SYN_OPT_TS, _SYN_OPT_WS = 0x020405B4, 0x0402, 0x080A, 0x01030307
# One's complement sums work modulo 0xFFFF: 0x10000 ≡ 1, so a 32-bit field adds as
# itself and a whole byte string as int.from_bytes(...) (big-endian, even length).
_SYN_OPT_SUM = 0x0204 + 0x05B4 + _SYN_OPT_SACK + _SYN_OPT_TS + 0x0103 + 0x0307
_DATA_OPT_SUM = 0x0101 + 0x080A
_WINDOW = 502  # scaled by 2**7
_SYN_WINDOW = 64240

_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")
_CLOSE_CODE = struct.Struct("!H")

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 1 << 10, "mi": 1 << 20,
          "gi": 1 << 30}


def parse_size(text: str) -> int:
    """``"1G"`` → 10**9, ``"100M"`` → 10**8, ``"512Ki"`` → 524288, ``"2000"`` → 2000."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 100M or 1G")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])


def ws_accept(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``key``, as one big-integer operation."""
    n = len(data)
    if not n:
        return b""
    stream = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False,
          mask_key: bytes | None = None) -> bytes:
    """One WebSocket frame with the shortest length encoding; masked if a key is given."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask_key is not None else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = _LEN16.pack(b0, mbit | 126, n)
    else:
        head = _LEN64.pack(b0, mbit | 127, n)
    if mask_key is None:
        return head + payload
    return head + mask_key + mask(payload, mask_key)


# ---------------------------------------------------------------------------
# Message content


_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "XRP-USD", "DOGE-USD", "AVAX-USD",
            "DOT-USD", "LINK-USD", "LTC-USD", "ATOM-USD", "NEAR-USD", "ETH-BTC", "SOL-ETH")
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
          "zoë", "françois", "søren", "miyu", "jürgen")
_WORDS = ("the", "build", "is", "green", "again", "deploy", "to", "staging", "failed", "on",
          "eu-west-1", "latency", "spike", "looks", "good", "to", "me", "please", "review",
          "merge", "when", "ready", "thanks", "ok", "rollback", "done", "ticket", "closed",
          "café", "naïve", "déjà", "vu", "✓", "→", "🚀", "ping", "me", "after", "lunch", "cpu",
          "memory", "graph", "alert", "resolved", "customer", "reported", "timeout", "retry")
_CHANNELS = ("general", "ops", "random", "deploys", "alerts", "support", "dev")
_METRICS = ("cpu.user", "cpu.system", "mem.used", "mem.cached", "disk.read", "disk.write",
            "net.rx", "net.tx", "http.p50", "http.p99", "http.rps", "gc.pause")
_REGIONS = ("eu-west-1", "us-east-1", "ap-south-1", "us-west-2")
_AGENTS = ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
           "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
           "Gecko) Chrome/119.0.0.0 Safari/537.36",
           "Python/3.11 websockets/12.0", "okhttp/4.12.0", "Go-http-client/1.1")
_CLOSES = ((1000, "normal closure"), (1001, "going away"), (1000, "bye ✓"), (1000, ""),
           (1001, "server restart"))
PROFILES = ("default", "deflate-heavy")
HEAVY_SIZES = (100, 2000)
"""Smallest and largest message of the deflate-heavy profile, in bytes."""
_RECORD_KINDS = tuple(random.Random(0).randbytes(36) for _ in range(64))
_PADDING = bytes(16)


class ContentFactory:
    """Payloads of one connection: JSON that repeats its keys and drifts its values,
    so deflate with context takeover finds plenty to share, as with real feeds."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seq = rng.getrandbits(20)
        self.symbols = rng.sample(_SYMBOLS, 4)
        self.prices = {s: 10 + rng.random() * 40_000 for s in self.symbols}
        self.host = f"web-{rng.randrange(1, 40):02d}"
        self.region = rng.choice(_REGIONS)
        self.channel = rng.choice(_CHANNELS)

    def _ts(self) -> int:
        self.seq += 1
        return 1_700_000_000_000 + self.seq * 7

    def text(self, target: int) -> bytes:
        """A JSON document of about ``target`` bytes (at most 4096)."""
        rand = self.rng.random
        if target < 90:
            ts = self._ts()
            if rand() < 0.5:
                return f'{{"type":"heartbeat","seq":{self.seq},"ts":{ts}}}'.encode()
            return f'{{"op":"ack","id":{self.seq},"ok":true,"latency_ms":{ts % 97}}}'.encode()
        kind = rand()
        if kind < 0.35:
            head = f'{{"type":"ticker","seq":{self.seq},"ts":{self._ts()},"data":['
            item = self._trade
        elif kind < 0.6:
            head = (f'{{"type":"l2update","product_id":"{self.symbols[0]}",'
                    f'"ts":{self._ts()},"changes":[')
            item = self._book_change
        elif kind < 0.8:
            head = f'{{"type":"history","channel":"#{self.channel}","messages":['
            item = self._chat
        else:
            head = (f'{{"type":"metrics","host":"{self.host}","region":"{self.region}",'
                    f'"ts":{self._ts()},"points":[')
            item = self._point
        parts = [head.encode()]
        size = len(parts[0]) + 2
        limit = min(target, 4096)
        while True:
            piece = item().encode()
            if size + len(piece) + 1 > limit and len(parts) > 1:
                break
            parts.append(piece)
            parts.append(b",")
            size += len(piece) + 1
        parts[-1] = b"]}"
        return b"".join(parts)

    def _trade(self) -> str:
        rand = self.rng.random
        sym = self.symbols[int(rand() * 4)]
        price = self.prices[sym] = self.prices[sym] * (1 + (rand() - 0.5) * 0.001)
        return (f'{{"symbol":"{sym}","price":"{price:.2f}","size":"{rand() * 3:.4f}",'
                f'"side":"{"buy" if rand() < 0.5 else "sell"}",'
                f'"trade_id":{self.seq * 13 + int(rand() * 16)}}}')

    def _book_change(self) -> str:
        rand = self.rng.random
        price = self.prices[self.symbols[0]] * (1 + (rand() - 0.5) * 0.002)
        return f'["{"buy" if rand() < 0.5 else "sell"}","{price:.2f}","{rand():.6f}"]'

    def _chat(self) -> str:
        rand = self.rng.random
        user = _USERS[int(rand() * len(_USERS))]
        words = " ".join([_WORDS[int(rand() * len(_WORDS))] for _ in range(3 + int(rand() * 8))])
        return (f'{{"id":"{self.rng.getrandbits(64):016x}","user":{{"id":{1000 + len(user) * 37},'
                f'"name":"{user}","role":"member"}},"text":"{words}","reactions":[],'
                f'"edited":false,"ts":{self._ts()}}}')

    def _point(self) -> str:
        rand = self.rng.random
        return (f'{{"name":"{_METRICS[int(rand() * len(_METRICS))]}","value":{rand() * 100:.3f},'
                f'"tags":{{"core":{int(rand() * 8)},"unit":"percent"}}}}')

    def binary(self, size: int, compressible: bool) -> bytes:
        """Random bytes, or a log of 64-byte records that deflates about 4 times: a
        36-byte record header of 64 kinds, 12 bytes of readings, 16 of padding."""
        rng = self.rng
        if not compressible:
            return rng.randbytes(size)
        readings = rng.randbytes(12 * (size // 64 + 1))
        parts = []
        for i in range(0, len(readings), 12):
            parts.append(_RECORD_KINDS[readings[i] & 63])
            parts.append(readings[i:i + 12])
            parts.append(_PADDING)
        return b"".join(parts)[:size]


# ---------------------------------------------------------------------------
# Packets


_SEQ_MASK = 0xFFFFFFFF


class Side:
    """One TCP endpoint: addresses, next sequence number, what it still has to ACK."""

    __slots__ = ("eth", "ip", "ip_const", "ip_id", "owes", "peer_port", "port", "seq",
                 "syn_const", "tcp_const", "ts_base", "tsval", "ttl")

    def __init__(self, *, mac: bytes, peer_mac: bytes, ip: bytes, peer_ip: bytes, port: int,
                 peer_port: int, ttl: int, rng: random.Random) -> None:
        self.eth = peer_mac + mac + b"\x08\x00"
        self.ip = ip
        self.port = port
        self.peer_port = peer_port
        self.ttl = ttl
        src, dst = int.from_bytes(ip, "big"), int.from_bytes(peer_ip, "big")
        # Everything of the IPv4 and TCP checksums that does not change per packet.
        self.ip_const = 0x4500 + 0x4000 + (ttl << 8 | 6) + src + dst
        pseudo = src + dst + 6 + port + peer_port
        self.tcp_const = pseudo + 0x8000 + _WINDOW + _DATA_OPT_SUM
        self.syn_const = pseudo + 0xA000 + _SYN_WINDOW + _SYN_OPT_SUM
        self.seq = rng.getrandbits(32)
        self.ts_base = rng.getrandbits(32)
        self.ip_id = rng.getrandbits(16)
        self.tsval = 0
        self.owes = 0
        """Segments received and not acknowledged yet."""


class Truth:
    """Counts of what was sent, in the terms of wsanalyze's messages table."""

    def __init__(self) -> None:
        self.messages = {t: {"c2s": 0, "s2c": 0} for t in TYPES}
        self.payload_bytes = dict.fromkeys(TYPES, 0)
        self.frames = 0
        self.compressed_messages = 0
        self.compressed_bytes = 0
        self.fragmented_messages = 0

    def add(self, kind: str, direction: str, length: int, frames: int = 1) -> None:
        self.messages[kind][direction] += 1
        self.payload_bytes[kind] += length
        self.frames += frames


class CaptureGenerator:
    """Writes the capture to ``out``; :meth:`run` returns the truth dictionary."""

    def __init__(self, out: BinaryIO, *, seed: int = 1, size: int | None = None,
                 concurrency: int = 500, messages: int | None = None, deflate: bool = True,
                 fragments: bool = True, snaplen: int = DEFAULT_SNAPLEN, level: int = 6,
                 profile: str = "default") -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        self.out = out
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {
            "seed": seed, "size": size, "connections": concurrency, "messages": messages,
            "deflate": deflate, "fragments": fragments, "snaplen": snaplen, "level": level,
            "zlib": zlib.ZLIB_RUNTIME_VERSION}
        if profile != "default":  # older truth files stay as they were
            self.params["profile"] = profile
        self.heavy = profile == "deflate-heavy"
        self.size = size
        self.concurrency = concurrency
        self.messages = messages
        self.deflate = deflate
        self.fragments = fragments
        self.snaplen = snaplen
        self.level = level
        self.now = BASE_TIME_US
        self.chunks: list[bytes] = []
        self.pending = 0
        self.written = 0
        self.packets = 0
        self.tcp_payload_bytes = 0
        self.connections = 0
        self.stopping = False
        self.truth = Truth()

    # -- output ------------------------------------------------------------------

    def _flush(self) -> None:
        self.out.write(b"".join(self.chunks))
        self.chunks.clear()
        self.pending = 0

    def _record(self, head: bytes, payload: bytes) -> None:
        wire = len(head) + len(payload)
        sec, usec = divmod(self.now, 1_000_000)
        chunks = self.chunks
        if wire <= self.snaplen:
            chunks.append(_RECORD.pack(sec, usec, wire, wire))
            chunks.append(head)
            if payload:
                chunks.append(payload)
            stored = wire
        else:
            data = (head + payload)[:self.snaplen]
            stored = len(data)
            chunks.append(_RECORD.pack(sec, usec, stored, wire))
            chunks.append(data)
        self.packets += 1
        self.pending += 16 + stored
        if self.pending >= FLUSH_BYTES:
            self.written += self.pending
            self._flush()

    @property
    def size_so_far(self) -> int:
        return self.written + self.pending

    def emit(self, src: Side, dst: Side, flags: int, payload: bytes = b"") -> None:
        """One TCP segment from ``src`` to ``dst``; its ACK (if set) covers all of
        ``dst``'s bytes, since every packet arrives."""
        n = len(payload)
        self.now = now = self.now + 2 + (n >> 7)
        tsval = src.tsval = (now // 1000 + src.ts_base) & _SEQ_MASK
        tsecr = dst.tsval
        seq = src.seq
        ack = dst.seq if flags & ACK else 0
        ip_id = src.ip_id = (src.ip_id + 1) & 0xFFFF
        if flags & SYN:
            tcp_len = 40
            tcp_sum = -(src.syn_const + tcp_len + seq + ack + flags + tsval + tsecr) % 0xFFFF
            head = _SYN_PACKET.pack(
                src.eth, 0x45, 0, 20 + tcp_len, ip_id, 0x4000, src.ttl, 6,
                -(src.ip_const + 20 + tcp_len + ip_id) % 0xFFFF, src.ip, dst.ip, src.port,
                src.peer_port, seq, ack, 0xA0, flags, _SYN_WINDOW, tcp_sum, 0, _SYN_OPT_MSS,
                _SYN_OPT_SACK, _SYN_OPT_TS, tsval, tsecr, _SYN_OPT_WS)
            src.seq = (seq + 1) & _SEQ_MASK
        else:
            tcp_len = 32 + n
            words = int.from_bytes(payload, "big")
            if n & 1:
                words <<= 8  # pad the odd byte to a 16-bit word
            tcp_sum = -(src.tcp_const + tcp_len + seq + ack + flags + tsval + tsecr + words
                        ) % 0xFFFF
            head = _DATA_PACKET.pack(
                src.eth, 0x45, 0, 20 + tcp_len, ip_id, 0x4000, src.ttl, 6,
                -(src.ip_const + 20 + tcp_len + ip_id) % 0xFFFF, src.ip, dst.ip, src.port,
                src.peer_port, seq, ack, 0x80, flags, _WINDOW, tcp_sum, 0, _TS_OPTION, tsval,
                tsecr)
            src.seq = (seq + n + (flags & FIN)) & _SEQ_MASK
            self.tcp_payload_bytes += n
        src.owes = 0
        self._record(head, payload)

    # -- the run -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.out.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, 1))
        self.written = _PCAP_HEADER.size
        rng = self.rng
        active = [self._connect() for _ in range(self.concurrency)]
        size = self.size
        while active:
            i = rng.randrange(len(active))
            self.now += rng.getrandbits(7)  # think time between two connections' turns
            if not active[i].step():
                if size is not None and not self.stopping:
                    active[i] = self._connect()
                else:
                    active[i] = active[-1]
                    active.pop()
            if size is not None and not self.stopping and self.size_so_far >= size:
                self.stopping = True
        self.written += self.pending
        self._flush()
        return self.report()

    def _connect(self) -> Connection:
        index = self.connections
        self.connections += 1
        if self.messages is not None:
            count = self.messages
        elif self.size is not None:
            count = self.rng.randint(20, 400)
        else:
            count = 100
        return Connection(self, index, count)

    def report(self) -> dict[str, Any]:
        t = self.truth
        data = ("text", "binary")
        return {
            "params": self.params,
            "file_bytes": self.written,
            "packets": self.packets,
            "tcp_payload_bytes": self.tcp_payload_bytes,
            "connections": self.connections,
            "first_ts": BASE_TIME_US / 1e6,
            "messages": {k: sum(v.values()) for k, v in t.messages.items()},
            "messages_by_direction": t.messages,
            "messages_total": sum(sum(v.values()) for v in t.messages.values()),
            "data_messages": sum(sum(t.messages[k].values()) for k in data),
            "payload_bytes": t.payload_bytes,
            "payload_bytes_total": sum(t.payload_bytes.values()),
            "data_payload_bytes": sum(t.payload_bytes[k] for k in data),
            "frames": t.frames,
            "compressed_messages": t.compressed_messages,
            "compressed_bytes": t.compressed_bytes,
            "fragmented_messages": t.fragmented_messages,
        }


class Connection:
    """One WebSocket connection, played step by step: each :meth:`step` sends one
    burst, after which other connections get their turn."""

    def __init__(self, gen: CaptureGenerator, index: int, messages: int) -> None:
        rng = gen.rng
        self.gen = gen
        self.rng = rng
        slot, round_ = index % 4000, index // 4000
        client_ip = bytes((10, 1, slot // 250, 1 + slot % 250))
        client_mac = b"\x02\x00" + client_ip
        server = rng.randrange(3)
        server_ip = bytes((10, 0, 0, 10 + server))
        server_port = (80, 8080, 80)[server]
        client_port = 32768 + round_ % 28000
        gateway = b"\x02\x00\x00\x00\x00\x01"
        self.client = Side(mac=client_mac, peer_mac=gateway, ip=client_ip, peer_ip=server_ip,
                           port=client_port, peer_port=server_port, ttl=64, rng=rng)
        self.server = Side(mac=gateway, peer_mac=client_mac, ip=server_ip, peer_ip=client_ip,
                           port=server_port, peer_port=client_port, ttl=57, rng=rng)
        self.host = f"stream{server}.example.com"
        self.messages = messages
        self.content = ContentFactory(rng)
        self.deflate = gen.deflate
        # Most senders compress every message; some leave small ones alone (per message
        # choice is allowed by RFC 7692 §6).
        self.threshold = 0 if gen.heavy or rng.random() < 0.75 else 128
        self.compressors = (zlib.compressobj(gen.level, zlib.DEFLATED, -15),
                            zlib.compressobj(gen.level, zlib.DEFLATED, -15))
        self.script = self._script()

    def step(self) -> bool:
        """Send the next burst; False once the connection is over."""
        c, s = self.client, self.server
        gen = self.gen
        # Delayed ACKs whose timer ran out while the connection was quiet.
        if c.owes:
            gen.emit(c, s, ACK)
        if s.owes:
            gen.emit(s, c, ACK)
        try:
            next(self.script)
        except StopIteration:
            return False
        return True

    def _send(self, src: Side, dst: Side, data: bytes) -> Iterator[None]:
        """Write ``data`` as segments of up to MSS bytes, in bursts of 4-11 segments
        (yielding between bursts); the receiver ACKs every second segment."""
        gen = self.gen
        n = len(data)
        off = 0
        burst = MSS * (4 + self.rng.getrandbits(3))
        while True:
            end = min(n, off + burst)
            while off < end:
                nxt = off + MSS
                gen.emit(src, dst, ACK | PSH if nxt >= n else ACK, data[off:nxt])
                off = nxt
                dst.owes += 1
                if dst.owes >= 2:
                    gen.emit(dst, src, ACK)
            if off >= n:
                return
            yield

    def _control(self, from_client: bool, opcode: int, payload: bytes) -> bytes:
        kind = {OP_PING: "ping", OP_PONG: "pong", OP_CLOSE: "close"}[opcode]
        self.gen.truth.add(kind, "c2s" if from_client else "s2c", len(payload))
        return frame(opcode, payload, mask_key=self.rng.randbytes(4) if from_client else None)

    def _data(self, from_client: bool, opcode: int, payload: bytes, pings: list[bytes]
              ) -> bytes:
        """The frames of one data message.  The payload of a ping put between its
        fragments is appended to ``pings`` (the peer owes a pong)."""
        rng = self.rng
        truth = self.gen.truth
        body = payload
        compressed = self.deflate and len(payload) >= self.threshold
        if compressed:
            comp = self.compressors[0 if from_client else 1]
            body = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
            if body[-4:] != b"\x00\x00\xff\xff":
                raise AssertionError("Z_SYNC_FLUSH must end with 00 00 ff ff")
            body = body[:-4]
            truth.compressed_messages += 1
            truth.compressed_bytes += len(body)
        direction = "c2s" if from_client else "s2c"
        kind = "text" if opcode == OP_TEXT else "binary"

        def key() -> bytes | None:
            return rng.randbytes(4) if from_client else None

        if not (self.gen.fragments and len(body) >= 4 and rng.random() < 0.05):
            truth.add(kind, direction, len(payload))
            return frame(opcode, body, rsv1=compressed, mask_key=key())
        parts = 2 + rng.randrange(3)
        cuts = [0, *sorted(rng.sample(range(1, len(body)), parts - 1)), len(body)]
        frames = [frame(OP_CONT if i else opcode, body[a:b], fin=i == parts - 1,
                        rsv1=compressed and i == 0, mask_key=key())
                  for i, (a, b) in enumerate(itertools.pairwise(cuts))]
        truth.add(kind, direction, len(payload), parts)
        truth.fragmented_messages += 1
        if rng.random() < 0.25:  # a control frame between fragments (RFC 6455 §5.4)
            ping = b"mid-%d" % rng.getrandbits(16)
            frames.insert(1, self._control(from_client, OP_PING, ping))
            pings.append(ping)
        return b"".join(frames)

    def _heavy_text(self) -> bytes:
        """A deflate-heavy message: JSON of HEAVY_SIZES bytes (log-uniform) ending in
        a hex signature of random bytes, which brings deflate with context takeover
        from about 4.5:1 down to about 3:1 (binary-like ids, hashes, tokens)."""
        low, high = HEAVY_SIZES
        rng = self.rng
        while True:
            text = self.content.text(int(low * (high / 1.3 / low) ** rng.random()))
            sig = rng.randbytes(len(text) // 7).hex().encode()
            text = b"%s,\"sig\":\"%s\"}" % (text[:-1], sig)
            if low <= len(text) <= high:
                return text

    def _pongs(self, from_client: bool, pings: list[bytes]) -> Iterator[None]:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        for ping in pings:
            yield from self._send(src, dst, self._control(from_client, OP_PONG, ping))
            yield

    def _script(self) -> Iterator[None]:
        gen, rng, c, s = self.gen, self.rng, self.client, self.server
        content = self.content
        gen.emit(c, s, SYN)
        gen.emit(s, c, SYN | ACK)
        gen.emit(c, s, ACK)
        yield
        key = base64.b64encode(rng.randbytes(16))
        offer = ("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                 if self.deflate else "")
        request = (f"GET /v1/stream?channel={content.channel}&session={rng.getrandbits(48):x} "
                   f"HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: {rng.choice(_AGENTS)}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                   f"{offer}Origin: https://app.example.com\r\n\r\n").encode()
        yield from self._send(c, s, request)
        yield
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Accept: {ws_accept(key).decode()}\r\n"
                    + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else "")
                    + "\r\n").encode()
        sent = 0
        pings: list[bytes] = []
        if rng.random() < 0.2 and self.messages and not gen.stopping:
            # The first message shares the segment of the 101 response.
            response += self._data(False, OP_TEXT, content.text(120), pings)
            sent += 1
        yield from self._send(s, c, response)
        yield
        yield from self._pongs(True, pings)
        while sent < self.messages and not gen.stopping:
            from_client = rng.random() < 0.35
            src, dst = (c, s) if from_client else (s, c)
            r = rng.random()
            if self.gen.heavy:
                pings = []
                body = self._data(from_client, OP_TEXT, self._heavy_text(), pings)
                sent += 1
                yield from self._send(src, dst, body)
                yield
                yield from self._pongs(not from_client, pings)
                continue
            if r < 0.02:
                payload = (b"keepalive-%d" % rng.getrandbits(20) if from_client
                           else rng.randbytes(8))
                yield from self._send(src, dst, self._control(from_client, OP_PING, payload))
                yield
                yield from self._pongs(not from_client, [payload])
                continue
            if r < 0.04:
                size = 10_000 + rng.randrange(90_001)
                pings = []
                body = self._data(from_client, OP_BINARY,
                                  content.binary(size, rng.random() < 0.5), pings)
                sent += 1
            else:
                batch = 1 if rng.random() >= 0.15 else min(2 + rng.randrange(5),
                                                           self.messages - sent)
                pings = []
                body = b"".join([
                    self._data(from_client, OP_TEXT,
                               content.text(int(50 * (82 if batch == 1 else 8) ** rng.random())),
                               pings)
                    for _ in range(batch)])
                sent += batch
            yield from self._send(src, dst, body)
            yield
            yield from self._pongs(not from_client, pings)
        # Close handshake, then the server closes TCP first (RFC 6455 §7.1.1).
        code, reason = rng.choice(_CLOSES)
        payload = _CLOSE_CODE.pack(code) + reason.encode()
        first = rng.random() < 0.6
        for from_client in (first, not first):
            src, dst = (c, s) if from_client else (s, c)
            yield from self._send(src, dst, self._control(from_client, OP_CLOSE, payload))
            yield
        gen.emit(s, c, FIN | ACK)
        gen.emit(c, s, FIN | ACK)
        gen.emit(s, c, ACK)


def truth_path(path: Path) -> Path:
    return path.with_name(path.name + ".truth.json")


def generate(path: str | Path, **options: Any) -> dict[str, Any]:
    """Write the capture to ``path`` and its truth to ``path + ".truth.json"``;
    return the truth.  ``options`` are :class:`CaptureGenerator`'s."""
    path = Path(path)
    with path.open("wb", buffering=0) as out:
        truth = CaptureGenerator(out, **options).run()
    truth_path(path).write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="See the module docstring for the traffic model.")
    ap.add_argument("output", metavar="OUT.pcap")
    ap.add_argument("--size", type=parse_size, help="stop at about this many bytes "
                    "(e.g. 100M, 1G); connections are replaced as they end")
    ap.add_argument("--connections", type=int, default=500,
                    help="connections open at the same time (default 500)")
    ap.add_argument("--messages", type=int, help="data messages per connection (default: "
                    "20-400 at random with --size, else 100)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deflate", action=argparse.BooleanOptionalAction, default=True,
                    help="negotiate permessage-deflate (default on)")
    ap.add_argument("--fragments", action=argparse.BooleanOptionalAction, default=True,
                    help="fragment 5%% of data messages into 2-4 frames (default on; use "
                         "--no-fragments for tshark comparisons)")
    ap.add_argument("--snaplen", type=int, default=DEFAULT_SNAPLEN)
    ap.add_argument("--level", type=int, default=6, choices=range(0, 10), metavar="0-9",
                    help="zlib compression level of the senders (default 6)")
    ap.add_argument("--profile", choices=PROFILES, default="default",
                    help="the message mix: default (see above) or deflate-heavy (every "
                         "message permessage-deflate, JSON of 100-2,000 bytes, about 3:1)")
    args = ap.parse_args(argv)
    if args.connections < 1 or (args.messages is not None and args.messages < 0):
        ap.error("--connections must be at least 1 and --messages not negative")
    if args.snaplen < 1:
        ap.error("--snaplen must be at least 1")
    start = time.perf_counter()
    try:
        # benchmarks/data/ is not in git: a fresh clone does not have it yet.
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        truth = generate(args.output, seed=args.seed, size=args.size,
                         concurrency=args.connections, messages=args.messages,
                         deflate=args.deflate, fragments=args.fragments,
                         snaplen=args.snaplen, level=args.level, profile=args.profile)
    except OSError as exc:
        print(f"generate.py: error: cannot write {args.output}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    mb = truth["file_bytes"] / 1e6
    print(f"wrote {args.output}: {mb:.1f} MB, {truth['packets']:,} packets, "
          f"{truth['connections']:,} connections, {truth['messages_total']:,} messages in "
          f"{elapsed:.1f} s ({mb / elapsed:.1f} MB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
