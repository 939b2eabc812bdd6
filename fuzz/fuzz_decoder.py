"""atheris harness: the WebSocket connection decoder, both directions.

Input (see ``fuzz.grammar.read_decoder``): limits, optionally an HTTP Upgrade
exchange with any permessage-deflate offer and answer (or none, or input
bytes; a 101 or not; the response first or missing), else a mid-stream start;
then up to 400 operations: raw bytes in either direction, whole WebSocket
frames (any opcode and bits, masked or not, any length encoding, compressed
with or without context takeover, fragmented, split across calls), gaps of
any size and reason, frame headers declaring huge lengths, and the end.

Checked: nothing raises; WebSocketDetected comes once, before any frame or
message; messages are numbered 0, 1, ... with as many frames as frame events;
no stored payload exceeds the payload limit or the message length; text is a
decoding of the payload; every violation rule is in the catalog.

Run: ``python -m fuzz.fuzz_decoder [libFuzzer flags] CORPUS_DIR...`` from the
repository root, or ``python -m fuzz.run decoder``.
"""

from __future__ import annotations

import sys
from collections import Counter

import atheris

from fuzz.grammar import DecoderCase, End, Feed, Gap, read_decoder

with atheris.instrument_imports(include=["wsanalyze"]):
    from wsanalyze.rules import RULES
    from wsanalyze.websocket.decoder import ConnectionDecoder, DecoderLimits
    from wsanalyze.websocket.events import (
        DecoderEvent,
        FrameEvent,
        MessageEvent,
        ViolationEvent,
        WebSocketDetected,
    )

T0 = 1_700_000_000.0
DIRECTIONS = ("c2s", "s2c")


def limits_of(case: DecoderCase) -> DecoderLimits:
    return DecoderLimits(max_payload=case.max_payload, max_inflate=case.max_inflate,
                         max_http_head=case.max_http_head,
                         max_scan_buffer=case.max_scan_buffer)


def run_case(case: DecoderCase) -> list[DecoderEvent]:
    """Replay the calls with consistent offsets, packet numbers and timestamps."""
    dec = ConnectionDecoder(syn_seen=case.syn_seen, limits=limits_of(case))
    offsets = [0, 0]
    events: list[DecoderEvent] = []
    for packet, call in enumerate(case.calls, 1):
        ts = T0 + packet / 1000
        if isinstance(call, Feed):
            out = dec.data(ts, packet, call.direction, offsets[call.direction], call.data)
            offsets[call.direction] += len(call.data)
        elif isinstance(call, Gap):
            out = dec.gap(ts, packet, call.direction, offsets[call.direction], call.length,
                          call.reason)
            offsets[call.direction] += call.length
        else:
            assert isinstance(call, End)
            out = dec.end(ts, packet, call.how)
        assert isinstance(out, list), out
        events += out
    return events


def check_events(events: list[DecoderEvent], limits: DecoderLimits, *,
                 ended: bool = False) -> None:
    """Invariants of the event stream.  A message's frame rows come in wire order
    per direction: a control frame between the fragments of a message may come
    after its own message row (with the fragments'), so frame counts are checked
    once the connection ended (``ended``), and never to exceed them before."""
    detected = False
    next_message = 0
    frames_of: Counter[int] = Counter()
    frame_indexes: set[int] = set()
    last_index = {"c2s": -1, "s2c": -1}
    declared: dict[int, int] = {}
    for ev in events:
        if isinstance(ev, WebSocketDetected):
            assert not detected, "WebSocketDetected twice"
            detected = True
            assert ev.client_direction in (0, 1) and ev.how in ("handshake", "mid-stream"), ev
        elif isinstance(ev, FrameEvent):
            assert detected, f"a frame before WebSocketDetected: {ev!r}"
            assert ev.direction in DIRECTIONS, ev
            assert ev.index not in frame_indexes, f"frame index {ev.index} twice"
            frame_indexes.add(ev.index)
            assert ev.index > last_index[ev.direction], f"frame {ev.index} out of wire order"
            last_index[ev.direction] = ev.index
            assert 2 <= ev.header_bytes <= 14 and ev.payload_length >= 0, ev
            assert ev.message <= next_message, f"{ev!r}: the next message is {next_message}"
            frames_of[ev.message] += 1
        elif isinstance(ev, MessageEvent):
            assert detected, f"a message before WebSocketDetected: {ev!r}"
            assert ev.direction in DIRECTIONS, ev
            assert ev.index == next_message, f"message {ev.index}, expected {next_message}"
            next_message += 1
            declared[ev.index] = ev.frames
            assert ev.length >= 0 and ev.raw_length >= 0 and ev.wire_bytes >= 0, ev
            assert len(ev.payload) <= limits.max_payload, \
                f"message {ev.index} keeps {len(ev.payload)} bytes, limit {limits.max_payload}"
            assert len(ev.payload) <= ev.length, ev
            assert ev.truncated == (len(ev.payload) < ev.length), ev
            if ev.text is not None:
                assert ev.type == "text", ev
                assert ev.payload.startswith(ev.text.encode("utf-8")), ev
        else:
            assert isinstance(ev, ViolationEvent), ev
            assert ev.rule in RULES, f"rule {ev.rule!r} is not in the catalog"
            assert ev.direction in (None, *DIRECTIONS), ev
            assert isinstance(ev.message, str) and ev.message, ev
    for index, frames in declared.items():
        assert frames_of[index] <= frames, f"message {index}: too many frame events"
        if ended:
            assert frames_of[index] == frames, \
                f"message {index}: frames={frames}, {frames_of[index]} frame events"


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    case = read_decoder(atheris.FuzzedDataProvider(data))
    check_events(run_case(case), limits_of(case),
                 ended=any(isinstance(call, End) for call in case.calls))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
