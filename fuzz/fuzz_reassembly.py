"""atheris harness: the TCP reassembler.

Input (see ``fuzz.grammar.read_reassembly``): limits, then up to 3000 segments
of up to three connections (one of them IPv6) with any flags, in order, after
a hole, retransmitted or at any sequence number, with snaplen-cut bytes and
time jumps.  The segments go through ``TcpReassembler.feed`` then ``finish``.

Checked: nothing raises; every connection starts once, before its events, and
ends once, after them (every one by ``finish``); in each direction the
delivered data and the gaps follow each other without overlap or hole, in
offset order, from offset 0; no event is empty; when every payload is a
function of its sequence number, every delivered byte is the one its sequence
number says.

Run: ``python -m fuzz.fuzz_reassembly [libFuzzer flags] CORPUS_DIR...`` from the
repository root, or ``python -m fuzz.run reassembly``.
"""

from __future__ import annotations

import ipaddress
import sys

import atheris

from fuzz.grammar import SYN, ReassemblyCase, pattern, read_reassembly

with atheris.instrument_imports(include=["wsanalyze"]):
    from wsanalyze.tcp.events import (
        ConnectionEnded,
        ConnectionStarted,
        StreamData,
        StreamGap,
        TcpEvent,
        TcpNote,
    )
    from wsanalyze.tcp.reassembly import TcpReassembler
    from wsanalyze.tcp.segment import TcpSegment


def _ep(addr: str, port: int) -> tuple[bytes, int]:
    return ipaddress.ip_address(addr).packed, port


ENDPOINTS = (
    (_ep("10.0.0.1", 40000), _ep("10.0.0.2", 80)),
    (_ep("fd00::1", 40001), _ep("fd00::2", 443)),
    (_ep("10.0.0.1", 40000), _ep("10.0.0.3", 80)),
)
T0 = 1_700_000_000.0


def all_patterned(case: ReassemblyCase) -> bool:
    """Every payload byte is ``seq & 0xff`` of its sequence number."""
    for s in case.segments:
        start = (s.seq + 1) & 0xFFFFFFFF if s.flags & SYN else s.seq
        if s.payload != pattern(start, len(s.payload)):
            return False
    return True


def run_case(case: ReassemblyCase) -> list[TcpEvent]:
    r = TcpReassembler(max_buffered=case.max_buffered, max_connections=case.max_connections,
                       ack_grace=case.ack_grace)
    events: list[TcpEvent] = []
    ts = T0
    for number, s in enumerate(case.segments, 1):
        ts += s.dt_ms / 1000
        a, b = ENDPOINTS[s.conn]
        (src, sport), (dst, dport) = (a, b) if s.direction == 0 else (b, a)
        seg = TcpSegment(src, sport, dst, dport, s.seq, s.ack, s.flags, s.payload, s.missing)
        out = r.feed(number, ts, seg)
        assert isinstance(out, list), out
        events += out
    events += r.finish()
    return events


def check_events(events: list[TcpEvent], *, patterned: bool) -> None:
    started: set[int] = set()
    ended: set[int] = set()
    last_id = -1
    position: dict[tuple[int, int], int] = {}
    base: dict[tuple[int, int], int] = {}
    for ev in events:
        if isinstance(ev, ConnectionStarted):
            assert ev.conn not in started and ev.conn > last_id, ev
            started.add(ev.conn)
            last_id = ev.conn
            continue
        assert ev.conn in started and ev.conn not in ended, ev
        if isinstance(ev, ConnectionEnded):
            ended.add(ev.conn)
            assert ev.how in ("tcp-fin", "tcp-reset", "capture-ended"), ev
        elif isinstance(ev, StreamData | StreamGap):
            key = (ev.conn, ev.direction)
            assert ev.direction in (0, 1), ev
            expected = position.get(key, 0)
            assert ev.offset == expected, f"{ev!r} does not follow offset {expected}"
            size = len(ev.data) if isinstance(ev, StreamData) else ev.length
            assert size > 0, ev
            position[key] = expected + size
            if isinstance(ev, StreamGap):
                assert ev.reason in ("lost", "truncated", "limit"), ev
            elif patterned:
                first = base.setdefault(key, (ev.data[0] - ev.offset) & 0xFF)
                assert ev.data == pattern(first + ev.offset, size), \
                    f"bytes at offset {ev.offset} of {key} are not the ones sent"
        else:
            assert isinstance(ev, TcpNote), ev
            assert ev.rule.startswith("capture."), ev
    assert started == ended, f"connections never ended: {sorted(started - ended)}"


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    case = read_reassembly(atheris.FuzzedDataProvider(data))
    check_events(run_case(case), patterned=all_patterned(case))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
