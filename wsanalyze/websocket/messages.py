"""Completed messages: payload, text, Close, Ping and Pong, and the end-of-connection policy.

:func:`emit` turns a finished :class:`~wsanalyze.websocket.state.Message` (a
data message, possibly fragmented, or a control frame) into its rows, in small
steps: finish inflating (RFC 7692 §7.2.2), apply the size limit, check UTF-8
(RFC 6455 §5.6, §8.1), read a Close (§5.5.1, §7.4), keep the Ping ledger
(§5.5.2, §5.5.3, :mod:`wsanalyze.websocket.pings`), count, and emit the
:class:`FrameEvent` and :class:`MessageEvent`.  :func:`end_of_connection`
decides what an ended connection still owed (a closing handshake, Pongs).
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING

from wsanalyze import rules as R
from wsanalyze.websocket.events import Direction, FrameEvent, MessageEvent
from wsanalyze.websocket.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
)
from wsanalyze.websocket.state import Message, Ping, PongSeen

if TYPE_CHECKING:
    from wsanalyze.websocket.decoder import ConnectionDecoder
    from wsanalyze.websocket.state import Side

CLOSE_CODES_RESERVED = frozenset((1004, 1005, 1006, 1015))
"""§7.4.1: codes that "MUST NOT be set as a status code in a Close control frame"."""
CLOSE_CODES_FAILING = frozenset((1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
"""§7.4.1 and the IANA registry: a Close with these codes fails the connection
(protocol error, unacceptable data, too big, ...), rather than ending it normally."""


def emit(dec: ConnectionDecoder, side: Side, msg: Message, ts: float, packet: int) -> None:
    """Rows for a finished message (or control frame) of ``side``."""
    direction = side.ws_dir or "c2s"
    index = dec.message_count
    dec.message_count += 1
    payload, length, error = _payload(dec, side, msg, ts, packet)
    truncated = len(payload) < length
    inflater = side.inflater
    if length > dec.limits.max_payload or (msg.compressed and inflater is not None and
                                           inflater.capped):
        _check_size(dec, side, msg, length, ts, packet)
    opcode = msg.opcode
    text = close_code = close_reason = None
    if opcode == OP_TEXT and error is None:
        text = _check_text(dec, side, msg, payload, truncated, ts, packet)
    elif opcode == OP_CLOSE:
        close_code, close_reason = _on_close(dec, side, msg, payload, ts, packet)
    elif opcode == OP_PING:
        _on_ping(dec, side, payload, ts, packet)
    elif opcode == OP_PONG:
        _on_pong(dec, side, msg, payload, ts, packet)
    # The connection's counters (connections table, summary).
    info = dec.info
    info.types[(direction, msg.type)] += 1
    if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION) or 3 <= opcode <= 7:
        info.messages[direction] += 1
        if msg.compressed:
            info.compressed += 1
            info.compressed_raw += msg.raw_length
            info.compressed_inflated += length
    if not msg.complete:
        info.incomplete += 1
    if dec.want_frames:
        _frame_events(dec, side, msg, direction, index)
    if dec.want_messages:
        first = msg.frames[0] if msg.frames else None
        dec.events.append(MessageEvent(
            direction, index, first.ts if first else msg.ts_start, ts, packet, msg.type, opcode,
            len(msg.frames), msg.compressed, msg.wire_bytes, msg.raw_length, length, payload,
            truncated, text, close_code, close_reason, msg.complete, error))


def _where(side: Side, msg: Message) -> tuple[int | None, int | None]:
    """(frame index, WebSocket stream offset) of a message's first frame."""
    if not msg.frames:
        return None, None
    first = msg.frames[0]
    return first.number, first.offset - (side.ws_base or 0)


def _payload(dec: ConnectionDecoder, side: Side, msg: Message, ts: float,
             packet: int) -> tuple[bytes, int, str | None]:
    """(payload kept, its true length, error): inflated when compressed."""
    if not msg.compressed:
        parts = msg.parts
        return (parts[0] if len(parts) == 1 else b"".join(parts)), msg.raw_length, msg.error
    inflater = side.inflater
    if msg.inflate_broken or inflater is None:
        payload = msg.inflated or b""
        return payload, len(payload), msg.error
    payload = inflater.end()
    frame, offset = _where(side, msg)
    if inflater.violation is not None:
        rule, detail = inflater.violation
        dec.violation(rule, side.ws_dir, ts, packet,
                      f"compressed {msg.type} message in packet {packet}: {detail}",
                      frame, offset)
    if inflater.error is not None:
        error = inflater.error
        dec.violation(error, side.ws_dir, ts, packet,
                      (f"compressed {msg.type} message in packet {packet} does not inflate: "
                       f"{inflater.error_detail}") if error.startswith("deflate") else
                      (f"compressed {msg.type} message in packet {packet} refers to "
                       "compression history lost to the capture; its payload is unknown"),
                      frame, offset)
        return b"", 0, error
    return payload, inflater.total, msg.error


def _check_size(dec: ConnectionDecoder, side: Side, msg: Message, length: int, ts: float,
                packet: int) -> None:
    """``message.too-big``: the payload, or the inflating, went over a limit."""
    limits = dec.limits
    inflater = side.inflater
    capped = msg.compressed and inflater is not None and inflater.capped
    if length <= limits.max_payload and not capped:
        return
    if inflater is not None and capped:
        used = max(1, inflater.consumed)
        text = (f"compressed {msg.type} message ending in packet {packet}: inflating stopped "
                f"at the {limits.max_inflate}-byte cap after {used} of its {msg.raw_length} "
                f"compressed bytes (ratio {length / used:.0f}:1, a decompression bomb?); its "
                "stored payload is cut")
    else:
        ratio = (f", inflated from {msg.raw_length} bytes (ratio "
                 f"{length / max(1, msg.raw_length):.0f}:1)") if msg.compressed else ""
        text = (f"{msg.type} message ending in packet {packet} is {length} bytes{ratio}, over "
                f"the {limits.max_payload}-byte limit; its stored payload is cut")
    dec.violation(R.MESSAGE_TOO_BIG, side.ws_dir or "c2s", ts, packet, text, *_where(side, msg))


def _check_text(dec: ConnectionDecoder, side: Side, msg: Message, payload: bytes,
                truncated: bool, ts: float, packet: int) -> str | None:
    """§8.1: a text message is UTF-8; the text, or None when it is not."""
    try:
        if truncated or not msg.complete:
            # Only a prefix is known: a character cut at its end is not an error.
            return codecs.getincrementaldecoder("utf-8")().decode(payload, final=False)
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        dec.violation(R.TEXT_INVALID_UTF8, side.ws_dir, ts, packet,
                      f"text message ending in packet {packet} is not valid UTF-8: "
                      f"{exc.reason} at byte {exc.start}", *_where(side, msg))
        return None


def _on_close(dec: ConnectionDecoder, side: Side, msg: Message, payload: bytes, ts: float,
              packet: int) -> tuple[int | None, str | None]:
    """§5.5.1, §7.4: the close code and reason; the first Close is the connection's."""
    code = reason = None
    d = side.ws_dir
    where = _where(side, msg)
    if len(payload) == 1:
        dec.violation(R.CLOSE_ONE_BYTE_PAYLOAD, d, ts, packet,
                      f"Close frame with a 1-byte payload {payload.hex()} in packet {packet}",
                      *where)
    elif len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        if code < 1000 or code in CLOSE_CODES_RESERVED or 1016 <= code <= 2999 or code >= 5000:
            dec.violation(R.CLOSE_INVALID_CODE, d, ts, packet,
                          f"close code {code} may not be sent on the wire (sent by the "
                          f"{'client' if d == 'c2s' else 'server'} in packet {packet})", *where)
        try:
            reason = payload[2:].decode("utf-8")
        except UnicodeDecodeError:
            reason = payload[2:].decode("utf-8", "replace")
            dec.violation(R.CLOSE_INVALID_REASON_UTF8, d, ts, packet,
                          f"close reason {payload[2:]!r} in packet {packet} is not valid UTF-8",
                          *where)
    if dec.info.close_code is None and not any(s.close_sent for s in dec.sides):
        dec.info.close_code = code
        dec.info.close_reason = reason
    side.close_sent = True
    if code in CLOSE_CODES_FAILING:
        # This side failed the connection (§7.1.7): it owes no Pong for the Pings
        # it received before.
        dec.sides[1 - side.tcp_dir].pings.clear()
    return code, reason


def _on_ping(dec: ConnectionDecoder, side: Side, payload: bytes, ts: float,
             packet: int) -> None:
    other = dec.sides[1 - side.tcp_dir]
    if payload in other.early_pongs:
        # Its Pong was decoded first: the capture holds the two directions'
        # packets slightly out of order.
        other.early_pongs.remove(payload)
    elif not side.close_sent and not other.close_sent:
        # After a Close no Pong is owed (RFC 6455 §5.5.2).
        side.pings.add(payload, Ping(payload, ts, packet, other.frames_sent))


def _on_pong(dec: ConnectionDecoder, side: Side, msg: Message, payload: bytes, ts: float,
             packet: int) -> None:
    pings = dec.sides[1 - side.tcp_dir].pings
    if not len(pings):
        # An unsolicited Pong is a legal heartbeat (§5.5.3) — or the answer to a
        # Ping the capture shows later.
        side.early_pongs.append(payload)
        return
    if pings.answer(payload) is not None or not msg.complete:
        return
    # A Pong that echoes no pending Ping is legal (unsolicited); it is reported
    # only if a Ping before it is never answered (end_of_connection).
    seen = PongSeen(payload, ts, packet, *_where(side, msg))
    for ping in pings:
        if ping.mismatch is None:
            ping.mismatch = seen


def _frame_events(dec: ConnectionDecoder, side: Side, msg: Message, direction: Direction,
                  index: int) -> None:
    """The frames table rows of a message, in wire order."""
    base = side.ws_base or 0
    rows = []
    for f in msg.frames:
        h = f.header
        rows.append(FrameEvent(direction, f.number, f.ts, f.packet, h.fin, h.rsv1, h.rsv2,
                               h.rsv3, h.opcode, h.masked, h.mask_key, h.header_length,
                               h.length, f.offset - base, index))
    pending = side.msg
    if pending is None and not side.held_frames:
        dec.events.extend(rows)  # the common case: nothing waits
        return
    if pending is not None and pending is not msg and pending.frames:
        # A control frame between the fragments of a message: its row waits for
        # the fragments' rows, which come when the message is complete.
        side.held_frames.extend(rows)
        return
    if side.held_frames:
        rows.extend(side.held_frames)
        side.held_frames.clear()
        rows.sort(key=_frame_index)
    dec.events.extend(rows)


def _frame_index(row: FrameEvent) -> int:
    return row.index


def lose_rest(side: Side, msg: Message) -> None:
    """The rest of ``msg`` was lost to the capture: keep what came before."""
    msg.complete = False
    if msg.compressed and side.inflater is not None and not msg.inflate_broken:
        msg.inflated = side.inflater.abandon()
        msg.inflate_broken = True


def release_held_frames(dec: ConnectionDecoder, side: Side) -> None:
    """Rows still held (the message they waited for never completed)."""
    if side.held_frames:
        dec.events.extend(side.held_frames)
        side.held_frames.clear()


# ------------------------------------------------------------ end of connection
def end_of_connection(dec: ConnectionDecoder, ts: float, packet: int, how: str) -> None:
    """How the connection ended, and what it still owed (§7.1.1–§7.1.7, §5.5.2)."""
    info = dec.info
    c2s, s2c = dec.ws_sides()
    closed = [s for s in (c2s, s2c) if s is not None and s.close_sent]
    info.end = "close-handshake" if len(closed) == 2 else \
        "close-one-sided" if closed else how
    # A Close is owed only on an established connection (not after a refused or
    # failed handshake), and a gap may have swallowed one: then nothing is said.
    if info.detected is not None and how != "capture-ended" and len(closed) < 2 and \
            info.handshake != "rejected" and not info.failed and \
            not any(s.gaps for s in dec.sides):
        who = "neither side" if not closed else f"only the {closed[0].ws_dir} side"
        # With one Close sent, the side that never answered it is at fault.
        offender = None if not closed else dec.sides[1 - closed[0].tcp_dir].ws_dir
        dec.violation(R.CLOSE_NO_CLOSE_HANDSHAKE, offender, ts, packet,
                      f"the TCP connection ended ({how}, packet {packet}) after {who} sent a "
                      "Close frame")
    for pside in (c2s, s2c):
        if pside is not None:
            _unanswered(dec, pside, ts, packet, how)


def _unanswered(dec: ConnectionDecoder, pside: Side, ts: float, packet: int,
                how: str) -> None:
    """Pings of ``pside`` never answered: a Pong that echoed none of them is a
    ``pong.payload-mismatch``; otherwise, if the peer kept sending frames yet never
    answered, ``ping.unanswered`` (a gap may have swallowed the Pong)."""
    other = dec.sides[1 - pside.tcp_dir]
    latest: dict[PongSeen, Ping] = {}
    for ping in pside.pings:
        if ping.mismatch is not None:
            latest[ping.mismatch] = ping
            continue
        if how == "capture-ended" or other.gaps or other.frames_sent == ping.frames_then:
            continue
        dec.violation(R.PING_UNANSWERED, other.ws_dir, ts, packet,
                      f"Ping {preview(ping.payload)} sent by the {pside.ws_dir} side in packet "
                      f"{ping.packet} was never answered with a Pong before the connection "
                      f"ended (packet {packet})")
    for pong, ping in latest.items():
        dec.violation(R.PONG_PAYLOAD_MISMATCH, other.ws_dir, pong.ts, pong.packet,
                      f"Pong {preview(pong.payload)} in packet {pong.packet} does not echo the "
                      f"Ping {preview(ping.payload)} of packet {ping.packet}", pong.frame,
                      pong.stream_offset)


def preview(payload: bytes, limit: int = 16) -> str:
    shown = payload[:limit].hex()
    return f"0x{shown}{'…' if len(payload) > limit else ''}" if payload else "(empty)"
