"""The bytes of chosen frames, fetched by a targeted second pass over the capture.

Only the packets of the connections concerned are reassembled (one TCP
reassembler per connection); of each direction's byte stream only the HTTP
heads at its start (to find where the WebSocket bytes begin, as the frames
table counts ``stream_offset``) and the wanted windows are kept, so memory does
not grow with the capture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from wsanalyze.export import Flow, FlowMatcher
from wsanalyze.sources.capture import open_capture
from wsanalyze.tcp.events import ConnectionStarted, StreamData
from wsanalyze.tcp.reassembly import TcpReassembler

MAX_HEADS = 256 * 1024
"""HTTP bytes looked through for the start of the WebSocket bytes."""
_REQUEST = re.compile(rb"^[A-Z]{3,10} \S+ HTTP/\d")
_RESPONSE = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)


@dataclass(frozen=True)
class Want:
    flow: Flow
    direction: str
    """"c2s" or "s2c"."""
    stream_offset: int | None
    """As in the frames table: from the first byte after the handshake; None for
    the HTTP part before it (the handshake's request or response)."""
    length: int


class _Direction:
    """One direction's byte stream: where WebSocket bytes start, and the windows."""

    def __init__(self, wants: list[Want], handshake: bool, server: bool) -> None:
        self.wants = wants
        self.server = server
        self.base: int | None = None if handshake else 0
        self.head = bytearray()
        self.failed = False
        self.got: dict[Want, bytearray] = {w: bytearray() for w in wants}

    def data(self, offset: int, data: bytes) -> None:
        if self.failed:
            return
        if self.base is None:
            if offset != len(self.head) or len(self.head) > MAX_HEADS:
                self.failed = True  # a gap or no end inside the HTTP part: give up
                return
            self.head += data
            self.base = self._find_base()
            if self.base is None:
                return
            offset, data = 0, bytes(self.head)
            self.head = bytearray()
            self._http(data[:self.base])
        for w, buf in self.got.items():
            if w.stream_offset is None:
                continue
            start = self.base + w.stream_offset + len(buf)
            end = self.base + w.stream_offset + w.length
            if offset <= start < offset + len(data) and start < end:
                buf += data[start - offset:end - offset]

    def _http(self, head: bytes) -> None:
        for w, buf in self.got.items():
            if w.stream_offset is None and not buf:
                buf += head[:w.length]

    def finish(self) -> None:
        """At the end of the stream: an HTTP part never followed by WebSocket bytes
        (a rejected upgrade) is the whole of what was kept."""
        if self.base is None:
            self._http(bytes(self.head))

    def _find_base(self) -> int | None:
        """Offset after the last HTTP head (and body) at the stream's start, once
        bytes that are not HTTP follow it (or the 101 response has ended)."""
        pos = 0
        head = bytes(self.head)
        pattern = _RESPONSE if self.server else _REQUEST
        while True:
            if pos >= len(head):
                return None  # wait for what follows
            if not 65 <= head[pos] <= 90:  # not an ASCII capital: not HTTP
                return pos
            m = pattern.match(head, pos)
            if m is None:
                return pos if len(head) - pos >= 16 else None
            end = head.find(b"\r\n\r\n", pos)
            if end < 0:
                return None
            end += 4
            if self.server and m.group(1) == b"101":
                return end
            cl = _CONTENT_LENGTH.search(head, pos, end)
            pos = end + (int(cl.group(1)) if cl else 0)


@dataclass
class Scan:
    """What the second pass learns of the whole capture on the way."""

    packets: int = 0
    last_ts: float | None = None
    conversations: int = 0
    """Distinct TCP address/port pairs (every TCP connection, WebSocket or not)."""


def fetch(path: str, wants: Iterable[Want],
          handshake: dict[int, bool]) -> tuple[dict[Want, bytes], Scan]:
    """The bytes of each wanted window (shorter or empty when not captured), and the
    capture's packet and TCP conversation counts.  ``handshake`` tells, per
    connection id, whether its HTTP handshake was captured."""
    wants = list(wants)
    flows = {w.flow for w in wants}
    streams: dict[tuple[int, str], _Direction] = {}
    for f in flows:
        for d in ("c2s", "s2c"):
            mine = [w for w in wants if w.flow == f and w.direction == d]
            streams[(f.connection, d)] = _Direction(mine, handshake.get(f.connection, True),
                                                    d == "s2c")
    tcp = {f: TcpReassembler() for f in flows}
    matcher = FlowMatcher(flows)
    client_dir: dict[Flow, int] = {}
    pairs: set[frozenset[tuple[bytes, int]]] = set()
    scan = Scan()
    with open_capture(path) as reader:
        for pkt in reader:
            scan.packets += 1
            scan.last_ts = pkt.ts
            seg = matcher.parser.parse(pkt)
            if seg is None:
                continue
            pairs.add(frozenset(((seg.src, seg.sport), (seg.dst, seg.dport))))
            hit = matcher.match_segment(seg, pkt.ts)
            if hit is not None:
                flow = hit[0]
                for ev in tcp[flow].feed(pkt.number, pkt.ts, seg):
                    _event(ev, flow, client_dir, streams)
    for flow, r in tcp.items():
        for ev in r.finish():
            _event(ev, flow, client_dir, streams)
    for stream in streams.values():
        stream.finish()
    scan.conversations = len(pairs)
    return {w: bytes(s.got[w]) for s in streams.values() for w in s.wants}, scan


def _event(ev: object, flow: Flow, client_dir: dict[Flow, int],
           streams: dict[tuple[int, str], _Direction]) -> None:
    if type(ev) is ConnectionStarted:
        initiator = endpoint_text_of(ev.initiator)
        client_dir.setdefault(flow, 0 if initiator == flow.client else 1)
    elif type(ev) is StreamData and flow in client_dir:
        d = "c2s" if ev.direction == client_dir[flow] else "s2c"
        streams[(flow.connection, d)].data(ev.offset, ev.data)


def endpoint_text_of(endpoint: tuple[str, int]) -> str:
    addr, port = endpoint
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
