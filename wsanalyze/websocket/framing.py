"""Reading frames from one direction's byte stream (RFC 6455 §5.2).

:func:`parse_frames` takes a header (:func:`~wsanalyze.websocket.frames.parse_header`),
then the payload piece by piece as packets bring it, unmasking (§5.3) and
handing it to the message being assembled (:mod:`~wsanalyze.websocket.messages`).

Two paths, one set of rules:

* the slow path — :func:`frame_start`, :func:`payload`, :func:`frame_done` —
  handles frames split across packets, fragments and rule breaks;
* the fast path — :func:`whole_message` — a final frame that is a whole message
  inside one packet and passes :func:`~wsanalyze.websocket.checks.is_clean`;
  it does what the slow path would, without the per-piece bookkeeping.  Most
  traffic takes it.

Both decide with the header check of :mod:`wsanalyze.websocket.checks`.
Compiled-build note: ``buf`` is ``bytes`` (a packet's bytes, no copy) or the
side's ``bytearray``; ``here`` says which (see :func:`parse_frames`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsanalyze import rules as R
from wsanalyze.websocket import messages
from wsanalyze.websocket.checks import header_findings, is_clean
from wsanalyze.websocket.deflate import MessageInflater
from wsanalyze.websocket.frames import (
    KNOWN_OPCODES,
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    FrameHeader,
    opcode_name,
    parse_header,
    unmask,
)
from wsanalyze.websocket.state import FrameRef, Message

if TYPE_CHECKING:
    from wsanalyze.websocket.decoder import ConnectionDecoder
    from wsanalyze.websocket.state import Side

MAX_FRAME = 1 << 48
"""A declared frame length this large (256 TiB) means the bytes are not a frame
header: the stream is resynchronised instead of waiting for the payload."""


def parse_frames(dec: ConnectionDecoder, side: Side, buf: bytes | bytearray,
                 here: tuple[int, float] | None = None) -> None:
    """Frames from ``buf`` (``side.buf``, or a packet's bytes when that is empty,
    then ``here`` is that packet's number and timestamp); what is left, an
    incomplete header, stays in ``side.buf``."""
    pos = 0
    size = len(buf)
    locate = side.locate
    while True:
        if side.hdr is None:
            h = parse_header(buf, pos)
            if h is None:
                break
            if h.length >= MAX_FRAME or (h.opcode not in KNOWN_OPCODES and (h.rsv2 or h.rsv3)):
                if buf is not side.buf:
                    side.buf += buf
                    if here is not None and (not side.chunks or side.chunks[-1][2] != here[0]):
                        side.chunks.append((side.buf_off, side.buf_off + size, *here))
                lost_framing(dec, side, h, pos)
                return
            end = pos + h.header_length + h.length
            if here is not None and end <= size and is_whole(dec, side, h):
                # The common case: a whole message or control frame in this packet.
                whole_message(dec, side, h, buf, pos, end, here)
                pos = end
                continue
            frame_start(dec, side, h, side.buf_off + pos, here)
            pos += h.header_length
            if h.length == 0:
                packet, ts = here or locate(side.buf_off + pos - 1)
                frame_done(dec, side, ts, packet)
                continue
        take = size - pos
        if take <= 0:
            break
        if take > side.f_left:
            take = side.f_left
        piece = bytes(buf[pos:pos + take]) if take != size else bytes(buf)
        pos += take
        payload(dec, side, piece)
        if side.f_left == 0:
            packet, ts = here or locate(side.buf_off + pos - 1)
            frame_done(dec, side, ts, packet)
    if buf is side.buf:
        if pos:
            del buf[:pos]
    elif pos < size:
        side.buf += buf[pos:]
    if pos:
        side.buf_off += pos
        side.prune_chunks()


def is_whole(dec: ConnectionDecoder, side: Side, h: FrameHeader) -> bool:
    """A final frame that breaks no rule and needs no reassembly: a text or
    binary message when none is in progress, or a control frame."""
    return h.fin and h.opcode != OP_CONTINUATION and h.length <= dec.limits.max_payload \
        and is_clean(h, side.masked, dec.info.deflate, side.msg is not None, side.close_sent)


def whole_message(dec: ConnectionDecoder, side: Side, h: FrameHeader, buf: bytes | bytearray,
                  pos: int, end: int, here: tuple[int, float]) -> None:
    """The fast path: decode a frame that is a whole message, as frame_start,
    payload and frame_done would, without their per-piece bookkeeping."""
    packet, ts = here
    op = h.opcode
    index = dec.frame_count
    dec.frame_count = index + 1
    side.frames_sent += 1
    dec.info.bytes[side.ws_dir] += end - pos  # type: ignore[index]  # set once WS
    data = bytes(buf[pos + h.header_length:end])
    if h.mask_key is not None:
        data = unmask(data, h.mask_key)
    inflater = side.inflater
    msg = Message(op, opcode_name(op), ts, h.rsv1)
    msg.frames.append(FrameRef(index, ts, packet, h, side.buf_off + pos))
    msg.wire_bytes = end - pos
    msg.raw_length = h.length
    msg.last_ts = ts
    msg.last_packet = packet
    if op <= OP_BINARY:
        side.synced = True
    if h.rsv1 and inflater is not None:
        inflater.whole(data)
    elif not h.rsv1:
        msg.parts.append(data)
        msg.kept = h.length
    messages.emit(dec, side, msg, ts, packet)


def frame_start(dec: ConnectionDecoder, side: Side, h: FrameHeader, offset: int,
                here: tuple[int, float] | None = None) -> None:
    """A frame header: check it, then direct its payload to a message."""
    packet, ts = here or side.locate(offset)
    side.hdr = h
    side.f_index = dec.frame_count
    dec.frame_count += 1
    side.f_off = offset
    side.f_packet = packet
    side.f_ts = ts
    side.f_left = h.length
    side.f_done = 0
    side.f_complete = True
    side.frames_sent += 1
    info = dec.info
    info.bytes[side.ws_dir] += h.header_length + h.length  # type: ignore[index]  # set once WS
    op = h.opcode
    # Most frames break no rule: the cheap predicate first.
    if not is_clean(h, side.masked, info.deflate, side.msg is not None, side.close_sent):
        check_header(dec, side, h, ts, packet, offset)
    if op >= 8 or op not in KNOWN_OPCODES:
        # Control frames (and reserved opcodes) stand alone, even between fragments.
        side.target = Message(op, opcode_name(op), ts, False)
        return
    msg = side.msg
    if op == OP_CONTINUATION:
        if msg is None:
            # The message's first frame was not seen (gap) or never sent.
            msg = side.msg = Message(op, "continuation", ts, False)
            msg.complete = False
    else:
        if msg is not None:
            # A new message while one was in progress: fragment.interleaved, or
            # after a gap the end of the old one was lost.
            msg.complete = False
            if side.synced:
                msg.error = R.FRAGMENT_INTERLEAVED
            messages.emit(dec, side, msg, msg.last_ts or ts, msg.last_packet or packet)
        side.synced = True
        compressed = h.rsv1 and info.deflate
        msg = side.msg = Message(op, opcode_name(op), ts, compressed)
        if compressed and side.inflater is not None:
            side.inflater.begin()
    side.target = msg


def check_header(dec: ConnectionDecoder, side: Side, h: FrameHeader, ts: float, packet: int,
                 offset: int, *, framed: bool = True) -> None:
    """Report the rules ``h`` breaks (:mod:`wsanalyze.websocket.checks`)."""
    if h.rsv1 and not h.rsv2 and not h.rsv3 and not dec.info.deflate:
        infer_deflate(dec, h)
    findings = header_findings(h, side.ws_dir, deflate=dec.info.deflate,
                               message_type=side.msg.type if side.msg else None,
                               synced=side.synced, close_sent=side.close_sent)
    if not findings:
        return
    idx = side.f_index if framed else None
    so = offset - (side.ws_base or 0)
    where = f"(packet {packet})" if framed else \
        f"(stream offset {so}, packet {packet})"
    for rule, text in findings:
        dec.violation(rule, side.ws_dir, ts, packet, f"{text} {where}", idx, so)


def infer_deflate(dec: ConnectionDecoder, h: FrameHeader) -> bool:
    """Mid-stream: RSV1 on a data frame means permessage-deflate is in use."""
    info = dec.info
    if info.detected != "mid-stream" or info.handshake != "not-captured":
        return False
    if h.opcode not in (OP_TEXT, OP_BINARY):
        return False
    info.deflate = True
    for s in dec.sides:
        if s.inflater is None:
            s.inflater = MessageInflater(dec.limits.max_payload,
                                         max_inflate=dec.limits.max_inflate)
            s.inflater.lose_history()
    return True


def payload(dec: ConnectionDecoder, side: Side, piece: bytes) -> None:
    """Payload bytes of the current frame, in order."""
    h = side.hdr
    assert h is not None
    if h.mask_key is not None:
        piece = unmask(piece, h.mask_key, side.f_done & 3)
    side.f_done += len(piece)
    side.f_left -= len(piece)
    msg = side.target
    if msg is None:
        return
    msg.raw_length += len(piece)
    if msg.compressed:
        if not msg.inflate_broken and side.inflater is not None:
            side.inflater.feed(piece)
        return
    room = dec.limits.max_payload - msg.kept
    if room > 0 and msg.complete:
        # After a gap only the prefix before it is kept: later bytes would
        # sit at the wrong offsets.
        if len(piece) > room:
            piece = piece[:room]
        msg.parts.append(piece)
        msg.kept += len(piece)


def _add_frame(side: Side, msg: Message, h: FrameHeader) -> None:
    msg.frames.append(FrameRef(side.f_index, side.f_ts, side.f_packet, h, side.f_off))
    msg.wire_bytes += h.header_length + h.length


def frame_done(dec: ConnectionDecoder, side: Side, ts: float, packet: int) -> None:
    """The current frame's last payload byte was read (or lost)."""
    h = side.hdr
    assert h is not None
    side.hdr = None
    msg = side.target
    side.target = None
    if msg is None:
        return
    _add_frame(side, msg, h)
    if not side.f_complete:
        msg.complete = False
        msg.raw_length += h.length - side.f_done
    msg.last_ts = ts
    msg.last_packet = packet
    if h.opcode >= 8 or h.opcode not in KNOWN_OPCODES:
        messages.emit(dec, side, msg, ts, packet)
    elif h.fin:
        side.msg = None
        messages.emit(dec, side, msg, ts, packet)


def flush(dec: ConnectionDecoder, side: Side, ts: float, packet: int) -> None:
    """The capture or connection ended inside a frame or message."""
    h = side.hdr
    if h is not None:
        side.f_complete = False
        msg = side.target
        side.hdr = None
        side.target = None
        if msg is not None:
            msg.complete = False
            _add_frame(side, msg, h)
            msg.raw_length += h.length - side.f_done
            if msg is not side.msg:
                messages.emit(dec, side, msg, msg.last_ts or side.f_ts,
                              msg.last_packet or side.f_packet)
    msg = side.msg
    if msg is not None:
        side.msg = None
        messages.lose_rest(side, msg)
        if msg.frames:
            messages.emit(dec, side, msg, msg.last_ts or ts, msg.last_packet or packet)


def lost_framing(dec: ConnectionDecoder, side: Side, h: FrameHeader, pos: int) -> None:
    """The bytes at ``pos`` cannot be a frame a peer meant: report the header's
    violations, then look for the next plausible frame after it."""
    offset = side.buf_off + pos
    packet, ts = side.locate(offset)
    check_header(dec, side, h, ts, packet, offset, framed=False)
    where = offset - (side.ws_base or 0)
    dec.violation(R.FRAME_UNPARSEABLE, side.ws_dir, ts, packet,
                  f"the {side.ws_dir} stream cannot be followed at stream offset {where} "
                  f"(packet {packet}): header {bytes(side.buf[pos:pos + h.header_length]).hex()} "
                  f"declares opcode 0x{h.opcode:X} and length {h.length}", None, where)
    msg = side.msg
    if msg is not None:
        msg.complete = False
    side.consume(pos + 1)
    side.enter_scan("garbage")
    dec.pump(side)
