"""Seed corpora of the three harnesses, built from the samples and crafted streams.

* ``capture``: every ``samples/*.pcap*`` file as is, plus one small crafted
  WebSocket conversation written in every format and link layer wsanalyze reads
  (pcap µs/ns, pcapng with two interfaces, gzip, Ethernet/VLAN/QinQ, SLL, SLL2,
  NULL, LOOP, raw IP, IPv6), snaplen-cut, cut short and with garbage appended.
* ``reassembly``: the TCP segments of every sample (first three connections,
  as recorded), plus crafted cases: reordered, duplicated, overlapping and
  conflicting segments, wraparound, snaplen cuts, RST, FIN with holes, port
  reuse, tiny limits.
* ``decoder``: the reassembled streams of every WebSocket connection of every
  sample (its handshake included) as data/gap/end calls, plus crafted streams:
  permessage-deflate with and without context takeover, fragmented compressed
  messages with control frames between fragments, gaps in headers and payloads,
  a mid-stream start, a decompression bomb, a frame declaring 2**63 bytes.

Every reassembly and decoder seed is checked by reading it back through
``atheris.FuzzedDataProvider``.  Usage: ``python -m fuzz.seeds OUTDIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from fuzz.grammar import (
    ACK,
    FIN,
    PSH,
    RAW_MAX,
    RST,
    SYN,
    DecoderCase,
    End,
    Feed,
    Gap,
    ReassemblyCase,
    SegmentSpec,
    pattern,
    read_decoder,
    read_reassembly,
    write_decoder,
    write_reassembly,
)
from fuzz.tls_grammar import TlsOp, read_tls, write_tls
from tests import pcaptools as pt

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
HARNESSES = ("capture", "reassembly", "decoder", "tls")

MASK = b"\x37\xfa\x21\x3d"
PMD = "permessage-deflate"


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.pcap*") if p.is_file())


# ----------------------------------------------------------------- captures

def _conversation() -> pt.Conversation:
    from tests.pcaptools import deflate_message, ws_close_payload, ws_frame

    c = pt.Conversation(mss=200)
    c.handshake()
    c.ws_upgrade(extensions=PMD, response_extensions=PMD)
    c.send("c2s", ws_frame(1, b"hello", mask=MASK))
    for payload in deflate_message([b"compressed " * 30, b"again " * 10]):
        c.send("s2c", ws_frame(1, payload, rsv1=True))
    c.send("s2c", ws_frame(2, bytes(range(256)), fin=False))
    c.send("s2c", ws_frame(9, b"ping"))
    c.send("s2c", ws_frame(0, b"tail"))
    c.send("c2s", ws_frame(10, b"ping", mask=MASK))
    c.send("c2s", ws_frame(8, ws_close_payload(1000, "bye"), mask=MASK))
    c.send("s2c", ws_frame(8, ws_close_payload(1000)))
    c.close("s2c")
    return c


def capture_seeds(work: Path) -> Iterator[tuple[str, bytes]]:
    for path in sample_files():
        yield path.name, path.read_bytes()
    conv = _conversation()
    base = work / "base.pcap"
    conv.write(base)
    raw = base.read_bytes()
    yield "crafted.pcap", raw
    transforms: dict[str, Callable[[Path, Path], object]] = {
        "crafted-ns.pcap": lambda s, d: pt.to_pcap(s, d, nanosecond=True),
        "crafted.pcapng": lambda s, d: pt.to_pcapng(s, d, split_interfaces=True),
        "crafted.pcap.gz": pt.to_gzip,
        "crafted-v6.pcap": pt.to_ipv6,
        "crafted-snaplen.pcap": lambda s, d: pt.snaplen(s, d, 80),
    }
    for link in ("ethernet+vlan", "ethernet+qinq", "sll", "sll2", "null", "loop", "raw"):
        transforms[f"crafted-{link}.pcap"] = lambda s, d, link=link: pt.to_link(s, d, link)
    for name, fn in transforms.items():
        out = work / name
        fn(base, out)
        yield name, out.read_bytes()
    ng = (work / "crafted.pcapng").read_bytes()
    yield "crafted-cut.pcap", raw[: len(raw) - 37]
    yield "crafted-cut.pcapng", ng[: len(ng) - 37]
    yield "crafted-garbage.pcap", raw + b"\xde\xad\xbe\xef" * 8
    yield "crafted-garbage.pcapng", ng + b"\x06\0\0\0\xff\xff\0\0" + bytes(16)
    big_endian = bytearray(raw[:24])
    struct.pack_into(">IHHiIII", big_endian, 0, *struct.unpack_from("<IHHiIII", raw, 0))
    yield "crafted-header-be.pcap", bytes(big_endian)


# --------------------------------------------------------------- reassembly

def _dt_ms(dt: float) -> int:
    if dt < 0.0005:
        return 0
    if dt < 0.5:
        return 1
    return 1000 if dt < 50 else 100_000


def sample_segments(path: Path, limit: int = 3000) -> list[SegmentSpec]:
    """The first three connections' segments of a capture, as recorded."""
    from wsanalyze.sources.capture import CaptureReader
    from wsanalyze.tcp.packet import PacketParser

    parser = PacketParser()
    conns: dict[frozenset[tuple[bytes, int]], tuple[int, tuple[bytes, int]]] = {}
    specs: list[SegmentSpec] = []
    last_ts: float | None = None
    with CaptureReader(path) as reader:
        for pkt in reader:
            seg = parser.parse(pkt)
            if seg is None:
                continue
            a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
            key = frozenset((a, b))
            if key not in conns:
                if len(conns) == 3:
                    continue
                conns[key] = (len(conns), a)
            index, first = conns[key]
            dt = 0.0 if last_ts is None else max(0.0, pkt.ts - last_ts)
            last_ts = pkt.ts
            specs.append(SegmentSpec(index, 0 if a == first else 1, seg.flags & 31, seg.seq,
                                     seg.ack, seg.payload, seg.missing, _dt_ms(dt)))
            if len(specs) == limit:
                break
    return specs


def _seg(conn: int, d: int, flags: int, seq: int, data: bytes | None = None, n: int = 0,
         ack: int = 0, missing: int = 0, dt: int = 1) -> SegmentSpec:
    start = (seq + 1) & 0xFFFFFFFF if flags & SYN else seq
    payload = pattern(start, n) if data is None else data
    return SegmentSpec(conn, d, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, payload, missing, dt)


def crafted_reassembly() -> Iterator[tuple[str, ReassemblyCase]]:
    c, s = 1000, 0xFFFFFF00  # the server's sequence numbers wrap around
    opening = [_seg(0, 0, SYN, c - 1), _seg(0, 1, SYN | ACK, s - 1, ack=c),
               _seg(0, 0, ACK, c, ack=s)]
    in_order = [*opening]
    for i in range(6):
        in_order.append(_seg(0, 1, ACK | PSH, s + 100 * i, n=100, ack=c))
        in_order.append(_seg(0, 0, ACK, c, ack=s + 100 * (i + 1)))
    closing = [_seg(0, 0, FIN | ACK, c, ack=s + 600), _seg(0, 1, FIN | ACK, s + 600, ack=c + 1),
               _seg(0, 0, ACK, c + 1, ack=s + 601)]
    yield "in-order-wrap", ReassemblyCase(segments=in_order + closing)
    ooo = [*opening] + [_seg(0, 1, ACK, s + 100 * i, n=100, ack=c) for i in (1, 0, 3, 2, 5, 4)]
    yield "reordered", ReassemblyCase(segments=ooo + closing)
    dup = [*opening] + [_seg(0, 1, ACK, s + off, n=n, ack=c)
                        for off, n in ((0, 100), (0, 100), (50, 100), (100, 300), (120, 20),
                                       (400, 200))]
    yield "retransmitted", ReassemblyCase(segments=dup + closing)
    conflict = [*opening, _seg(0, 1, ACK, s + 100, n=100, ack=c),
                _seg(0, 1, ACK, s + 150, data=b"X" * 100, ack=c),
                _seg(0, 1, ACK, s, n=100, ack=c)]
    yield "conflicting-overlap", ReassemblyCase(segments=conflict + closing)
    holes = [*opening, _seg(0, 1, ACK, s + 300, n=100, ack=c), _seg(0, 0, ACK, c, ack=s + 400),
             *[_seg(0, 1, ACK, s + 400 + 10 * i, n=10, ack=c) for i in range(8)],
             _seg(0, 1, ACK, s, n=50, missing=250, ack=c)]
    yield "acked-hole", ReassemblyCase(ack_grace=3, segments=holes + closing)
    yield "buffer-limit", ReassemblyCase(max_buffered=256, segments=ooo + closing)
    reset = [*opening, _seg(0, 1, ACK, s, n=100, ack=c), _seg(0, 1, RST | ACK, s + 100, ack=c,
                                                              data=b"reset reason")]
    yield "reset", ReassemblyCase(segments=reset)
    fin_hole = [*opening, _seg(0, 1, ACK, s + 200, n=100, ack=c),
                _seg(0, 1, FIN | ACK, s + 300, ack=c), _seg(0, 0, FIN | ACK, c, ack=s + 301)]
    yield "fin-after-hole", ReassemblyCase(segments=fin_hole)
    reuse = in_order + closing + [_seg(0, 0, SYN, 77, dt=1000), _seg(0, 1, SYN | ACK, 99, ack=78),
                                  _seg(0, 0, ACK | PSH, 78, n=10, ack=100)]
    yield "port-reuse", ReassemblyCase(segments=reuse)
    midstream = [_seg(1, 1, ACK, 5000 + 10 * i, n=10, ack=c) for i in range(5)] + \
        [_seg(1, 0, ACK, 1, n=1, ack=5049), _seg(1, 0, ACK, 1, n=0, ack=5050)]
    yield "mid-stream-keepalive", ReassemblyCase(segments=midstream)
    many = []
    for k in range(3):
        many += [_seg(k, 0, SYN, 10 * k), _seg(k, 1, SYN | ACK, 20 * k, ack=10 * k + 1),
                 _seg(k, 0, ACK | PSH, 10 * k + 1, n=30, ack=20 * k + 1)]
    many += [_seg(0, 1, ACK | PSH, 1, n=40, ack=31)]
    yield "evictions", ReassemblyCase(max_connections=1, segments=many)
    snap = [*opening, *[_seg(0, 1, ACK, s + 100 * i, n=40, missing=60, ack=c) for i in range(4)]]
    yield "snaplen", ReassemblyCase(segments=snap + closing)


def reassembly_seeds() -> Iterator[tuple[str, ReassemblyCase]]:
    for path in sample_files():
        yield path.name, ReassemblyCase(segments=sample_segments(path))
    yield from crafted_reassembly()


# ------------------------------------------------------------------ decoder

def sample_streams(path: Path) -> list[DecoderCase]:
    """The data/gap/end calls of every connection of a sample, as reassembled."""
    from wsanalyze.sources.capture import CaptureReader
    from wsanalyze.tcp.events import ConnectionEnded, StreamData, StreamGap
    from wsanalyze.tcp.packet import PacketParser
    from wsanalyze.tcp.reassembly import TcpReassembler

    parser = PacketParser()
    tcp = TcpReassembler()
    calls: dict[int, list[Feed | Gap | End]] = {}
    events = []
    with CaptureReader(path) as reader:
        for pkt in reader:
            seg = parser.parse(pkt)
            if seg is not None:
                events += tcp.feed(pkt.number, pkt.ts, seg)
    events += tcp.finish()
    for ev in events:
        if isinstance(ev, StreamData):
            for i in range(0, len(ev.data), RAW_MAX):
                calls.setdefault(ev.conn, []).append(Feed(ev.direction,
                                                          ev.data[i : i + RAW_MAX]))
        elif isinstance(ev, StreamGap):
            calls.setdefault(ev.conn, []).append(Gap(ev.direction, ev.length, ev.reason))
        elif isinstance(ev, ConnectionEnded) and ev.conn in calls:
            calls[ev.conn].append(End(ev.how))
    cases = []
    for conn_calls in calls.values():
        if len(conn_calls) > 400:
            conn_calls = [*conn_calls[:399], End("capture-ended")]
        cases.append(DecoderCase(calls=conn_calls))
    return cases


def _ws() -> tuple[Callable[..., bytes], Callable[..., list[bytes]]]:
    from tests.pcaptools import deflate_message, ws_frame

    return ws_frame, deflate_message


def _opening(extensions: str | None, response: str | None) -> list[Feed | Gap | End]:
    from tests.pcaptools import upgrade_request, upgrade_response, ws_key

    key = ws_key(7)
    return [Feed(0, upgrade_request("example.com", "/ws", key, extensions=extensions)),
            Feed(1, upgrade_response(key, extensions=response))]


def crafted_decoder() -> Iterator[tuple[str, DecoderCase]]:
    frame, deflate = _ws()
    texts = [b'{"op": "subscribe", "channel": "trades"}', b"", b'{"op": "subscribe"}' * 3]
    comp = deflate(texts)
    calls = _opening(PMD, PMD)
    for payload in comp:
        calls.append(Feed(1, frame(1, payload, rsv1=True)))
    big = deflate([b"fragmented and compressed " * 40])[0]
    third = len(big) // 3
    calls += [Feed(0, frame(2, big[:third], fin=False, rsv1=True, mask=MASK)),
              Feed(0, frame(9, b"between", mask=MASK)),
              Feed(0, frame(0, big[third : 2 * third], fin=False, mask=MASK)),
              Feed(0, frame(0, big[2 * third :], mask=MASK)),
              Feed(1, frame(10, b"between")),
              Feed(0, frame(8, b"\x03\xe8bye", mask=MASK)),
              Feed(1, frame(8, b"\x03\xe8")), End("tcp-fin")]
    yield "deflate-takeover", DecoderCase(calls=calls)

    params = "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"
    calls = _opening(params + "; client_no_context_takeover", params)
    for payload in deflate([b"abc" * 300, b"abc" * 300], context_takeover=False, wbits=9):
        calls.append(Feed(1, frame(1, payload, rsv1=True)))
    for payload in deflate([b"xyz" * 300, b"xyz" * 300], wbits=9):
        calls.append(Feed(0, frame(1, payload, rsv1=True, mask=MASK)))
    yield "deflate-no-context", DecoderCase(calls=[*calls, End("tcp-reset")])

    calls = _opening(None, None)
    data = frame(2, bytes(range(256)) * 4)
    calls += [Feed(1, frame(1, b"before")), Feed(1, data[:100]), Gap(1, 300, "lost"),
              Feed(1, data[400:]), Feed(1, frame(1, b"after the payload gap")),
              Feed(1, frame(1, b"x" * 50)[:1]), Gap(1, 30, "lost"),
              Feed(1, frame(1, b"after the header gap")),
              Feed(0, frame(1, b"client", mask=MASK)), Gap(0, 6, "truncated"),
              Feed(0, frame(1, b"resumes", mask=MASK)), End("capture-ended")]
    yield "gaps", DecoderCase(calls=calls)

    stream_c = b"".join(frame(2, bytes([i]) * (i + 1), mask=MASK) for i in range(20))
    stream_s = b"".join(frame(1, f"message {i}".encode()) for i in range(20))
    calls = [Feed(1, stream_s[7:]), Feed(0, stream_c[13:]), End("capture-ended")]
    yield "mid-stream", DecoderCase(syn_seen=False, calls=calls)

    # A DEFLATE stream ended by a BFINAL block (RFC 7692 §7.2.3.4) from a sender
    # limited to a 2**10 window; the first fuzzing run found a hang here.
    params = "permessage-deflate; server_max_window_bits=10"
    final = zlib.compressobj(6, zlib.DEFLATED, -10)
    text = b" ".join(b"word%d" % i for i in range(100))
    calls = [*_opening(params, params),
             Feed(1, frame(1, final.compress(text) + final.flush(zlib.Z_FINISH) + b"\0",
                           rsv1=True)),
             Feed(1, frame(1, deflate([b"next"], wbits=10)[0], rsv1=True)),
             End("capture-ended")]
    yield "bfinal-small-window", DecoderCase(calls=calls)

    bomb, after = deflate([bytes(4 << 20), b"still decoded after the bomb"])
    calls = [*_opening(PMD, PMD), Feed(1, frame(2, bomb, rsv1=True)),
             Feed(1, frame(1, after, rsv1=True)), End("capture-ended")]
    yield "bomb", DecoderCase(max_inflate=65536, max_payload=4096, calls=calls)

    huge = b"\x82\x7f" + struct.pack("!Q", 1 << 63) + bytes(100)
    calls = [*_opening(None, None), Feed(1, huge), Feed(1, frame(1, b"after")),
             Feed(0, b"\x81\xff" + struct.pack("!Q", (1 << 63) - 1) + MASK + bytes(10)),
             End("tcp-fin")]
    yield "declared-2-63", DecoderCase(calls=calls)

    http = (b"GET /index.html HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n")
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n"
    calls = [Feed(0, http), Feed(1, resp), *_opening(None, None),
             Feed(1, frame(1, b"upgraded after plain requests")), End("tcp-fin")]
    yield "http-before-upgrade", DecoderCase(max_http_head=512, calls=calls)


def decoder_seeds() -> Iterator[tuple[str, DecoderCase]]:
    for path in sample_files():
        for i, case in enumerate(sample_streams(path)):
            yield f"{path.name}-{i}", case
    yield from crafted_decoder()


def tls_seeds() -> Iterator[tuple[str, list[TlsOp]]]:
    """The synthetic TLS 1.3 session whose secrets the tls harness knows: whole,
    cut into small chunks, with a gap, a KeyUpdate, padding, a tampered record."""
    import random as _random

    from tests.tlssynth import Tls13Session

    def session(tamper: bool = False) -> tuple[list[bytes], list[bytes]]:
        s = Tls13Session(_random.Random(0))
        c = [s.client_hello()]
        sv = [s.server_flight(alpn="http/1.1")]
        c.append(s.client_finished() + s.app(True, b"GET / HTTP/1.1\r\n\r\n"))
        sv.append(s.app(False, b"x" * 20000, padding=7))
        sv.append(s.key_update(False) + s.app(False, b"after update"))
        bad = bytearray(s.app(True, b"tampered"))
        if tamper:
            bad[-1] ^= 1
        c.append(bytes(bad))
        return c, sv

    c, sv = session()
    whole = [TlsOp(0, 0, c[0]), TlsOp(0, 1, sv[0]), TlsOp(0, 0, c[1]), TlsOp(0, 1, sv[1]),
             TlsOp(0, 1, sv[2]), TlsOp(0, 0, c[2]), TlsOp(2, 0)]
    yield "tls-whole", whole
    small = []
    for op in whole:
        if op.kind == 0:
            small += [TlsOp(0, op.direction, op.data[i:i + 700])
                      for i in range(0, len(op.data), 700)]
    yield "tls-chunks", [*small[:60], TlsOp(2, 0)]
    yield "tls-gap", [*whole[:3], TlsOp(0, 1, sv[1][:3000]), TlsOp(1, 1, length=4000),
                      TlsOp(0, 1, sv[1][7000:] + sv[2]), TlsOp(2, 0)]
    c, sv = session(tamper=True)
    yield "tls-tampered", [TlsOp(0, 0, c[0]), TlsOp(0, 1, sv[0]), TlsOp(0, 0, c[1]),
                           TlsOp(0, 0, c[2]), TlsOp(2, 0)]
    yield "tls-garbage", [TlsOp(0, 0, c[0]), TlsOp(0, 1, b"\x17\x03\x03\xff\xff" + bytes(300))]


# -------------------------------------------------------------------- build

def _store(directory: Path, name: str, data: bytes) -> None:
    digest = hashlib.sha1(data).hexdigest()[:12]
    (directory / f"{name}-{digest}").write_bytes(data)


def build(outdir: Path) -> dict[str, Path]:
    """Write the seed corpora under ``outdir/<harness>``; return their paths."""
    import atheris

    dirs = {h: outdir / h for h in HARNESSES}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in capture_seeds(Path(tmp)):
            _store(dirs["capture"], name, data)
    for name, rcase in reassembly_seeds():
        data = write_reassembly(rcase)
        back = read_reassembly(atheris.FuzzedDataProvider(data))
        if back != rcase:
            raise AssertionError(f"reassembly seed {name} does not read back as written")
        _store(dirs["reassembly"], name, data)
    for name, dcase in decoder_seeds():
        data = write_decoder(dcase)
        if read_decoder(atheris.FuzzedDataProvider(data)) != dcase:
            raise AssertionError(f"decoder seed {name} does not read back as written")
        _store(dirs["decoder"], name, data)
    for name, ops in tls_seeds():
        data = write_tls(ops)
        if read_tls(atheris.FuzzedDataProvider(data)) != ops:
            raise AssertionError(f"tls seed {name} does not read back as written")
        _store(dirs["tls"], name, data)
    return dirs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path)
    args = p.parse_args(argv)
    for harness, d in build(args.outdir).items():
        files = list(d.iterdir())
        print(f"{harness}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes "
              f"in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
