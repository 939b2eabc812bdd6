"""The hook between TCP reassembly and the WebSocket decoder for TLS connections.

The tracker hands a connection's first bytes to :func:`starts_tls`; when they
are TLS, it routes that connection's stream events through a :class:`TlsBridge`
instead of straight to its :class:`~wsanalyze.websocket.decoder.ConnectionDecoder`.
The bridge decrypts (:class:`~wsanalyze.tls.follower.TlsFollower`) and feeds
the plaintext to the unchanged decoder, so frames and messages keep their
meaning; their packet is the one that completed the TLS record, and stream
offsets count plaintext bytes.
"""

from __future__ import annotations

from wsanalyze.tls.follower import Finding, Output, Plain, PlainGap, TlsFollower, TlsInfo
from wsanalyze.tls.records import HANDSHAKE, MAX_RECORD_12, plausible_header
from wsanalyze.tls.session import TlsKeys
from wsanalyze.websocket.decoder import ConnectionDecoder
from wsanalyze.websocket.events import DecoderEvent, Direction, ViolationEvent, WebSocketDetected

_DIR = "\x00dir\x00"


def starts_tls(data: bytes, offset: int) -> bool | None:
    """Do a connection's first bytes start TLS?  True: a ClientHello record;
    None: TLS records of a connection whose handshake was not captured; False: no."""
    if offset != 0 or len(data) < 6 or not plausible_header(data, 0, MAX_RECORD_12):
        return False
    if data[0] == HANDSHAKE:
        return True if data[5] == 1 else None
    # A WebSocket frame or HTTP never starts with these bytes (RSV bits, opcodes).
    return None if data[0] in (21, 23) and data[1:3] == b"\x03\x03" else False


class TlsBridge:
    """Route one TLS connection's streams through decryption into ``decoder``."""

    def __init__(self, decoder: ConnectionDecoder, keys: TlsKeys, first_direction: int,
                 *, handshake_seen: bool) -> None:
        self.decoder = decoder
        self.follower = TlsFollower(keys, first_direction, handshake_seen=handshake_seen)
        self.client = first_direction
        self._announced = False

    @property
    def info(self) -> TlsInfo:
        return self.follower.info

    def data(self, ts: float, packet: int, direction: int, offset: int,
             data: bytes) -> list[DecoderEvent]:
        return self._pass(self.follower.data(direction, ts, packet, offset, data))

    def gap(self, ts: float, packet: int, direction: int, offset: int, length: int,
            reason: str) -> list[DecoderEvent]:
        return self._pass(self.follower.gap(direction, ts, packet, offset, length))

    def end(self, ts: float, packet: int, how: str) -> list[DecoderEvent]:
        events = self._pass(self.follower.end(ts, packet))
        events.extend(self.decoder.end(ts, packet, how))
        return events

    def state(self) -> tuple[bool, bool, bool, int | None]:
        """(websocket, not_websocket, likely_plain_http, client direction) for ordering."""
        dec = self.decoder
        if self.info.report:
            return True, False, False, self.client
        return (dec.is_websocket, dec.not_websocket, dec.likely_plain_http,
                dec.info.client_direction)

    def _pass(self, outputs: list[Output]) -> list[DecoderEvent]:
        events: list[DecoderEvent] = []
        dec = self.decoder
        for out in outputs:
            if isinstance(out, Plain):
                events.extend(dec.data(out.ts, out.packet, out.direction, out.offset,
                                       out.data))
            elif isinstance(out, PlainGap):
                events.extend(dec.gap(out.ts, out.packet, out.direction, out.offset,
                                      out.length, "lost"))
            else:
                events.extend(self._finding(out))
        return events

    def _finding(self, f: Finding) -> list[DecoderEvent]:
        events: list[DecoderEvent] = []
        if self.info.report and not self._announced and not self.decoder.is_websocket:
            # The sequencer learns the endpoints (client = TLS client) from this.
            self._announced = True
            events.append(WebSocketDetected(self.client, "tls"))
        ws_dir: Direction | None = None if f.direction is None else (
            "c2s" if f.direction == self.client else "s2c")
        events.append(ViolationEvent(f.rule, ws_dir, f.ts, f.packet,
                                     f.message.replace(_DIR, ws_dir or "")))
        return events
