"""Properties that hold for any input (hypothesis, bounded example counts).

* Any segmentation of the two WebSocket byte streams of a connection, in any
  interleaving of the directions, with and without permessage-deflate, yields
  the messages that were sent: fed to the decoder directly, and end to end
  through captures crafted with tests/pcaptools.py.
* Reordering data segments within the reassembly window, or duplicating them,
  changes nothing: same messages, same violation rules.
* Random bytes never make the decoder raise; random bytes as a capture file,
  or as the packets of a valid one, never raise past the open.
"""

from __future__ import annotations

import gzip
import itertools
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wsanalyze
from tests.pcaptools import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    Conversation,
    Record,
    upgrade_request,
    upgrade_response,
    write_capture,
    ws_frame,
    ws_key,
)
from wsanalyze.analysis import CaptureRun
from wsanalyze.pipeline import Options, run
from wsanalyze.rules import RULES
from wsanalyze.sources.records import CaptureError, RawPacket
from wsanalyze.websocket.decoder import ConnectionDecoder, DecoderLimits
from wsanalyze.websocket.events import MessageEvent, ViolationEvent

PMD = "permessage-deflate"
DIRS = ("c2s", "s2c")
LINKTYPE_RAW = 101


def bounded(examples: int) -> settings:
    """At most ``examples`` examples, no per-example deadline (CI machines vary)."""
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])

# --------------------------------------------------------------- the model


@dataclass(frozen=True)
class Sent:
    direction: str
    type: str
    payload: bytes
    fragments: int
    compressed: bool
    ping_between: bool
    """A Ping goes between the first two fragments (it is decoded first)."""


@dataclass(frozen=True)
class Exchange:
    deflate: bool
    sent: tuple[Sent, ...]

    def streams(self) -> dict[str, list[bytes]]:
        """Each direction's byte stream as chunks: the HTTP head, then one chunk
        per frame (how a peer writes them)."""
        key = ws_key(11)
        ext = PMD if self.deflate else None
        out = {"c2s": [upgrade_request("example.com", "/chat", key, extensions=ext)],
               "s2c": [upgrade_response(key, extensions=ext)]}
        comp = {d: zlib.compressobj(6, zlib.DEFLATED, -15) for d in DIRS}
        for i, s in enumerate(self.sent):
            mask = None if s.direction == "s2c" else struct.pack("!I", 0x9E3779B1 * (i + 1)
                                                                 & 0xFFFFFFFF)
            data = s.payload
            if s.compressed:
                c = comp[s.direction]
                data = (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
            if s.type == "ping":
                out[s.direction].append(ws_frame(OP_PING, data, mask=mask))
                continue
            size = -(-len(data) // s.fragments)
            parts = [data[k * size : (k + 1) * size] for k in range(s.fragments)]
            for k, part in enumerate(parts):
                opcode = (OP_TEXT if s.type == "text" else OP_BINARY) if k == 0 else OP_CONT
                out[s.direction].append(ws_frame(opcode, part, fin=k == s.fragments - 1,
                                                 rsv1=s.compressed and k == 0, mask=mask))
                if k == 0 and s.ping_between:
                    out[s.direction].append(ws_frame(OP_PING, b"between", mask=mask))
        return out

    def expected(self) -> dict[str, list[tuple]]:
        out: dict[str, list[tuple]] = {"c2s": [], "s2c": []}
        for s in self.sent:
            if s.ping_between:
                out[s.direction].append(("ping", b"between", False, 1, True))
            out[s.direction].append((s.type, s.payload, s.compressed, s.fragments, True))
        return out


@st.composite
def exchanges(draw: st.DrawFn, max_messages: int = 6) -> Exchange:
    deflate = draw(st.booleans())
    sent = []
    for _ in range(draw(st.integers(1, max_messages))):
        direction = draw(st.sampled_from(DIRS))
        kind = draw(st.sampled_from(("text", "text", "binary", "ping")))
        if kind == "text":
            payload = draw(st.text(max_size=200)).encode()
        elif kind == "binary":
            payload = draw(st.binary(max_size=200)) * draw(st.integers(1, 4))
        else:
            payload = draw(st.binary(max_size=125))
        fragments = 1 if kind == "ping" else draw(st.integers(1, 3))
        compressed = deflate and kind != "ping" and draw(st.booleans())
        between = fragments > 1 and draw(st.booleans())
        sent.append(Sent(direction, kind, payload, fragments, compressed, between))
    return Exchange(deflate, tuple(sent))


def message_key(direction: str, mtype: str, payload: bytes, compressed: bool, frames: int,
                complete: bool) -> tuple[str, tuple]:
    return direction, (mtype, payload, compressed, frames, complete)


def bad_rules(rules: Iterable[str]) -> list[str]:
    return [r for r in rules if RULES[r].severity != "info"]


# ----------------------------------------------------- segmentation (decoder)


def feed(streams: dict[str, bytes], cuts: dict[str, list[int]], order: list[bool], *,
         request: int = 0) -> tuple[dict[str, list[tuple]], list[str]]:
    """Cut each stream at ``cuts`` and feed the pieces, choosing the direction of
    each next piece by ``order`` (then alternating).  No server byte comes before
    the first ``request`` client bytes (the response follows the request)."""
    pieces = {}
    for d in DIRS:
        bounds = sorted({0, len(streams[d]), *(c for c in cuts[d] if c < len(streams[d]))})
        pieces[d] = [streams[d][a:b] for a, b in itertools.pairwise(bounds)]
    dec = ConnectionDecoder(syn_seen=True)
    offsets = {"c2s": 0, "s2c": 0}
    events = []
    packet = 0
    turn = iter(order)
    while pieces["c2s"] or pieces["s2c"]:
        want = "c2s" if next(turn, packet % 2 == 0) else "s2c"
        if offsets["c2s"] < request:
            want = "c2s"
        d = want if pieces[want] else ("s2c" if want == "c2s" else "c2s")
        piece = pieces[d].pop(0)
        packet += 1
        events += dec.data(packet / 1000, packet, DIRS.index(d), offsets[d], piece)
        offsets[d] += len(piece)
    events += dec.end(packet / 1000, packet, "capture-ended")
    got: dict[str, list[tuple]] = {"c2s": [], "s2c": []}
    for ev in events:
        if isinstance(ev, MessageEvent):
            d, key = message_key(ev.direction, ev.type, ev.payload, ev.compressed, ev.frames,
                                 ev.complete)
            got[d].append(key)
            if ev.type == "text":
                assert ev.text == ev.payload.decode()
    rules = [ev.rule for ev in events if isinstance(ev, ViolationEvent)]
    return got, rules


def _segmented(ex: Exchange, data: st.DataObject,
               causal: bool) -> tuple[dict[str, list[tuple]], list[str]]:
    chunks = ex.streams()
    streams = {d: b"".join(parts) for d, parts in chunks.items()}
    cuts = {d: data.draw(st.lists(st.integers(1, max(1, len(streams[d]) - 1)), max_size=25),
                         label=f"cuts {d}") for d in DIRS}
    order = data.draw(st.lists(st.booleans(), max_size=60), label="order")
    return feed(streams, cuts, order, request=len(chunks["c2s"][0]) if causal else 0)


@bounded(400)
@given(exchanges(), st.data())
def test_any_segmentation_gives_the_sent_messages(ex: Exchange, data: st.DataObject) -> None:
    """Any cuts; the two directions interleaved in any way once the request is
    complete (frames of either side may come in any order relative to the other)."""
    got, rules = _segmented(ex, data, causal=True)
    assert got == ex.expected()
    assert bad_rules(rules) == []


@bounded(100)
@given(exchanges(max_messages=3), st.data())
def test_response_captured_before_the_end_of_the_request(ex: Exchange,
                                                         data: st.DataObject) -> None:
    """A capture may hold the two directions' packets slightly out of order: the
    101 can show up before the last segment of its request (the decoder already
    accepts it before the whole request)."""
    got, rules = _segmented(ex, data, causal=False)
    assert got == ex.expected()
    assert bad_rules(rules) == []


@bounded(100)
@given(exchanges(), st.data())
def test_one_byte_segments_give_the_sent_messages(ex: Exchange, data: st.DataObject) -> None:
    streams = {d: b"".join(chunks) for d, chunks in ex.streams().items()}
    cuts = {d: list(range(1, len(streams[d]))) for d in DIRS}
    order = data.draw(st.lists(st.booleans(), max_size=400), label="order")
    got, rules = feed(streams, cuts, order, request=len(ex.streams()["c2s"][0]))
    assert got == ex.expected()
    assert bad_rules(rules) == []


# ------------------------------------------------------------ end to end


def conversation(ex: Exchange, sizes: st.DataObject | None = None,
                 mss: int = 1448) -> Conversation:
    """A TCP connection carrying ``ex``; with ``sizes``, every chunk is cut into
    segments of sizes drawn from it."""
    c = Conversation(mss=mss)
    c.handshake()
    chunks = ex.streams()
    c2s, s2c = chunks["c2s"], chunks["s2c"]
    pending = {"c2s": list(c2s[1:]), "s2c": list(s2c[1:])}
    # The handshake, then the frames in the order they were sent.
    for d, head in (("c2s", c2s[0]), ("s2c", s2c[0])):
        send(c, d, head, sizes)
    for s in ex.sent:
        n = 1 if s.type == "ping" else s.fragments + (1 if s.ping_between else 0)
        for _ in range(n):
            send(c, s.direction, pending[s.direction].pop(0), sizes)
    return c  # the capture ends: no Close frames, no FIN


def send(c: Conversation, d: str, chunk: bytes, sizes: st.DataObject | None) -> None:
    if sizes is None or len(chunk) <= 1:
        c.send(d, chunk)
        return
    cuts = sorted(set(sizes.draw(st.lists(st.integers(1, len(chunk) - 1), max_size=4))))
    bounds = [0, *cuts, len(chunk)]
    c.send(d, chunk, segments=[b - a for a, b in itertools.pairwise(bounds)])


def decode_packets(packets: list[tuple[float, bytes]]) -> tuple[dict[str, list[tuple]],
                                                                 list[str]]:
    raw = [RawPacket(i, ts, LINKTYPE_RAW, ip, len(ip)) for i, (ts, ip) in enumerate(packets, 1)]
    got: dict[str, list[tuple]] = {"c2s": [], "s2c": []}
    rules = []
    for table, row in run(iter(raw), Options()):
        if table == "message":
            d, key = message_key(row["direction"], row["type"], row["payload"],
                                 row["compressed"], row["frames"], row["complete"])
            got[d].append(key)
        elif table == "violation":
            rules.append(row["rule"])
    return got, rules


@bounded(15)
@given(exchanges(max_messages=4), st.data())
def test_crafted_captures_give_the_sent_messages(ex: Exchange, data: st.DataObject) -> None:
    c = conversation(ex, sizes=data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.pcap"
        c.write(path)
        result = wsanalyze.analyze(path)
    got: dict[str, list[tuple]] = {"c2s": [], "s2c": []}
    for r in result.messages.itertuples():
        d, key = message_key(r.direction, r.type, r.payload, r.compressed, r.frames,
                             r.complete)
        got[d].append(key)
    assert got == ex.expected()
    assert bad_rules(result.violations["rule"]) == []
    assert result.connections.iloc[0]["deflate"] == ex.deflate


# ------------------------------------------------ reordering and duplicates


def data_positions(c: Conversation) -> list[int]:
    """Indices of the packets that carry TCP payload (IPv4, no options)."""
    return [i for i, p in enumerate(c.frames)
            if len(p.ip) > 20 + ((p.ip[32] >> 4) * 4)]


@bounded(150)
@given(exchanges(max_messages=5), st.data())
def test_reordering_within_the_window_changes_nothing(ex: Exchange,
                                                      data: st.DataObject) -> None:
    """Data segments of each direction permuted within small blocks (far inside
    the out-of-order buffer and the ACK grace); both directions stay in step."""
    c = conversation(ex, mss=60)
    packets = c.packets
    reference = decode_packets(packets)
    assert reference[0] == ex.expected()
    window = data.draw(st.integers(2, 6), label="window")
    moved = list(packets)
    for d in DIRS:
        # The data segments of one direction trade places within blocks of
        # ``window`` of them (the reassembler orders each direction on its own).
        positions = [i for i in data_positions(c) if c.frames[i].direction == d]
        order = list(positions)
        for start in range(0, len(order), window):
            block = order[start : start + window]
            order[start : start + window] = data.draw(st.permutations(block), label=d)
        for pos, src in zip(positions, order, strict=True):
            moved[pos] = (packets[pos][0], packets[src][1])  # timestamps stay in place
    got = decode_packets(moved)
    assert got[0] == reference[0]
    assert bad_rules(got[1]) == []


@bounded(150)
@given(exchanges(max_messages=5), st.data())
def test_duplicated_segments_change_nothing(ex: Exchange, data: st.DataObject) -> None:
    c = conversation(ex, mss=100)
    packets = c.packets
    reference = decode_packets(packets)
    positions = data_positions(c)
    picks = data.draw(st.lists(st.sampled_from(positions), min_size=1, max_size=8),
                      label="duplicated")
    copies = sorted(((data.draw(st.integers(p, len(packets) - 1), label="after"), p)
                     for p in picks), reverse=True)
    duplicated = list(packets)
    for after, p in copies:
        duplicated.insert(after + 1, (packets[after][0], packets[p][1]))
    got = decode_packets(duplicated)
    assert got == reference


# ------------------------------------------------------------ random bytes

calls = st.lists(st.one_of(
    st.tuples(st.just("data"), st.integers(0, 1), st.binary(max_size=400)),
    st.tuples(st.just("gap"), st.integers(0, 1), st.integers(1, 1 << 20)),
), max_size=30)


@bounded(1000)
@given(st.sampled_from(["none", "plain", "deflate", "deflate-small-window"]), calls,
       st.sampled_from([DecoderLimits(), DecoderLimits(max_payload=16, max_inflate=64,
                                                        max_http_head=32,
                                                        max_scan_buffer=64)]),
       st.sampled_from(["capture-ended", "tcp-fin", "tcp-reset"]))
def test_random_bytes_never_make_the_decoder_raise(
        handshake: str, script: list[tuple], limits: DecoderLimits, how: str) -> None:
    dec = ConnectionDecoder(syn_seen=handshake != "none", limits=limits)
    offsets = [0, 0]
    packet = 0
    if handshake != "none":
        key = ws_key(5)
        ext = {"plain": None, "deflate": PMD,
               "deflate-small-window": PMD + "; server_max_window_bits=9; "
                                             "client_max_window_bits=9"}[handshake]
        req = upgrade_request("h", "/", key, extensions=ext)
        resp = upgrade_response(key, extensions=ext)
        dec.data(0.0, 1, 0, 0, req)
        dec.data(0.0, 2, 1, 0, resp)
        offsets = [len(req), len(resp)]
        packet = 2
    for kind, d, arg in script:
        packet += 1
        if kind == "data":
            out = dec.data(packet / 1000, packet, d, offsets[d], arg)
            offsets[d] += len(arg)
        else:
            out = dec.gap(packet / 1000, packet, d, offsets[d], arg, "lost")
            offsets[d] += arg
        assert isinstance(out, list)
    for ev in dec.end(packet / 1000, packet + 1, how):
        if isinstance(ev, MessageEvent):
            assert len(ev.payload) <= limits.max_payload


HEADS = {
    "none": b"",
    "pcap": struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    "pcap-ns-be": struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101),
    "pcapng": struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1)
    + struct.pack("<I", 28) + struct.pack("<IIHHII", 1, 20, 1, 0, 65535, 20),
}


@bounded(400)
@given(st.sampled_from(sorted(HEADS)), st.binary(max_size=600), st.booleans())
def test_random_bytes_as_a_capture_never_raise_past_open(head: str, body: bytes,
                                                         gzipped: bool) -> None:
    content = HEADS[head] + body
    if gzipped:
        content = gzip.compress(content, mtime=0)[: max(10, len(content))]
    fd, name = tempfile.mkstemp(suffix=".pcap")
    try:
        os.write(fd, content)
        os.close(fd)
        try:
            capture = CaptureRun(name)
        except CaptureError as exc:
            assert "\n" not in str(exc)
            return
        records = list(capture)
        assert all(table in ("connection", "message", "frame", "violation")
                   for table, _ in records)
        assert all(isinstance(w, str) and "\n" not in w for w in capture.warnings)
    finally:
        os.unlink(name)


@bounded(120)
@given(st.sampled_from([1, 101, 113, 276, 0, 108]),
       st.lists(st.binary(max_size=200), min_size=1, max_size=20), st.booleans())
def test_random_packets_in_a_valid_capture_never_raise(linktype: int, frames: list[bytes],
                                                       pcapng: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.cap"
        records = [Record(1_700_000_000_000_000_000 + i * 1000, f, linktype)
                   for i, f in enumerate(frames)]
        write_capture(path, records, fmt="pcapng" if pcapng else "pcap")
        result = wsanalyze.analyze(path)
    assert result.warnings == [w for w in result.warnings if "\n" not in w]
    # Whatever was made of the garbage points into the capture and the catalog.
    assert set(result.violations["rule"]) <= set(RULES)
    assert result.messages["packet"].between(1, len(frames)).all()
    assert list(result.connections["connection"]) == list(range(len(result.connections)))
    assert set(result.messages["connection"]) <= set(result.connections["connection"])


@pytest.mark.parametrize("seed", range(3))
def test_random_ip_packets_never_raise(seed: int) -> None:
    """IPv4/TCP headers that parse, around random payloads, flags and numbers."""
    import random

    rng = random.Random(seed)
    packets = []
    for i in range(400):
        payload = rng.randbytes(rng.choice((0, 1, 2, 10, 100)))
        tcp = struct.pack("!HHIIBBHHH", rng.choice((80, 81)), rng.choice((5000, 5001)),
                          rng.getrandbits(32) if rng.random() < 0.2 else 1000 + i * 7,
                          rng.getrandbits(32), 0x50, rng.getrandbits(6), 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), i, 0, 64, 6,
                         0, bytes((10, 0, 0, rng.choice((1, 2)))),
                         bytes((10, 0, 0, rng.choice((1, 2))))) + tcp + payload
        packets.append((1_700_000_000 + i / 1000, ip))
    got, rules = decode_packets(packets)
    assert all(r in RULES for r in rules)
    # Decoding keeps no state between runs: the same packets give the same rows.
    assert decode_packets(packets) == (got, rules)
