"""The frame reader (websocket/framing.py): fast path and slow path give the same rows.

The decoder is fed a WebSocket conversation whole (each message in one packet:
the fast path) and split at every byte (the slow path: headers and payloads in
pieces); the events must be the same, and the payloads those sent.
"""

from __future__ import annotations

from itertools import accumulate

from tests.pcaptools import (
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    upgrade_request,
    upgrade_response,
    ws_frame,
    ws_key,
)
from wsanalyze.websocket.decoder import ConnectionDecoder
from wsanalyze.websocket.events import DecoderEvent, FrameEvent, MessageEvent

KEY = ws_key(1)
REQUEST = upgrade_request("example.test", "/", KEY)
RESPONSE = upgrade_response(KEY)
MASK = b"\x0a\x0b\x0c\x0d"
C2S = [ws_frame(OP_TEXT, b"hello", mask=MASK), ws_frame(OP_BINARY, bytes(range(200)), mask=MASK),
       ws_frame(OP_TEXT, b"frag-", mask=MASK, fin=False), ws_frame(OP_PING, b"p", mask=MASK),
       ws_frame(OP_CONT, b"ment", mask=MASK)]
S2C = [ws_frame(OP_TEXT, "héllo".encode()), ws_frame(OP_BINARY, b"\0" * 70000)]


def run(pieces: int | None) -> list[DecoderEvent]:
    """Feed the conversation; ``pieces``: bytes per call (None: a frame per call)."""
    dec = ConnectionDecoder(syn_seen=True)
    events = dec.data(0.0, 1, 0, 0, REQUEST)
    events += dec.data(0.1, 2, 1, 0, RESPONSE)
    offsets = [len(REQUEST), len(RESPONSE)]
    packet = 3
    for direction, frames in ((0, C2S), (1, S2C)):
        data = b"".join(frames)
        chunks = frames if pieces is None else \
            [data[i:i + pieces] for i in range(0, len(data), pieces)]
        for chunk in chunks:
            events += dec.data(0.2, packet, direction, offsets[direction], chunk)
            offsets[direction] += len(chunk)
            packet += 1
    return events + dec.end(1.0, packet, "tcp-fin")


def messages(events: list[DecoderEvent]) -> list[tuple[str, str, bytes, int]]:
    return [(e.direction, e.type, e.payload, e.frames) for e in events
            if isinstance(e, MessageEvent)]


def test_messages_are_reassembled_and_unmasked() -> None:
    assert messages(run(None)) == [
        ("c2s", "text", b"hello", 1), ("c2s", "binary", bytes(range(200)), 1),
        ("c2s", "ping", b"p", 1), ("c2s", "text", b"frag-ment", 2),
        ("s2c", "text", "héllo".encode(), 1), ("s2c", "binary", b"\0" * 70000, 1)]


def test_slow_path_equals_fast_path() -> None:
    whole = run(None)
    for size in (1, 2, 7, 1000):
        split = run(size)
        assert messages(split) == messages(whole), size
        frames = [e for e in split if isinstance(e, FrameEvent)]
        assert [(f.index, f.opcode, f.payload_length, f.stream_offset, f.message)
                for f in frames] == [(f.index, f.opcode, f.payload_length, f.stream_offset,
                                      f.message) for f in whole if isinstance(f, FrameEvent)]


def test_frames_in_wire_order_with_a_ping_between_fragments() -> None:
    frames = [e for e in run(None) if isinstance(e, FrameEvent) and e.direction == "c2s"]
    assert [(f.index, f.opcode, f.message) for f in frames] == [
        (0, OP_TEXT, 0), (1, OP_BINARY, 1), (2, OP_TEXT, 3), (3, OP_PING, 2), (4, OP_CONT, 3)]
    # where each frame starts in the bytes sent
    assert [f.stream_offset for f in frames] == list(accumulate([0, *map(len, C2S[:-1])]))
