"""Finding the frames again: after a gap, in garbage, or in a capture that began mid-stream.

wsanalyze's own (no peer library resynchronises): the gap's message is marked
incomplete and kept up to the gap (:func:`gap_in_frames`), then the
:class:`~wsanalyze.websocket.scan.Scanner` looks for a chain of plausible
frame headers (:func:`scan`), and decoding resumes there with a row saying what
was skipped (:func:`start_frames_at`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsanalyze import rules as R
from wsanalyze.websocket import framing, messages
from wsanalyze.websocket.deflate import MessageInflater
from wsanalyze.websocket.modes import Mode
from wsanalyze.websocket.scan import ScanResult

if TYPE_CHECKING:
    from wsanalyze.websocket.decoder import ConnectionDecoder
    from wsanalyze.websocket.state import Side


def scan(dec: ConnectionDecoder, side: Side, *, final: bool) -> None:
    """SCAN: look for the next frame boundary in a direction whose framing is unknown."""
    if not side.buf:
        return
    info = dec.info
    known_masked = side.masked
    if known_masked is None and info.client_direction is not None:
        known_masked = side.ws_dir == "c2s"
    rsv1_ok = info.deflate or info.detected is None or info.handshake == "not-captured"
    base = side.buf_off
    starts = frozenset(s - base for s, _, _, _ in side.chunks if s >= base)
    ends = frozenset(e - base for _, e, _, _ in side.chunks if e > base)
    result = side.scanner.scan(side.buf, base, masked=known_masked, rsv1_ok=rsv1_ok,
                               starts=starts, ends=ends, final=final)
    if result is not None:
        start_frames_at(dec, side, result)
        return
    # Drop what can no longer start a frame; bound what is kept.
    first = side.scanner.first_pending(base)
    drop = len(side.buf) if first is None else first - base
    if len(side.buf) - drop > dec.limits.max_scan_buffer:
        drop = len(side.buf) - dec.limits.max_scan_buffer
    side.skipped += drop
    side.consume(drop)
    if not dec.is_websocket and (final or side.skipped > dec.limits.max_scan_buffer):
        side.mode = Mode.DEAD
        dec.not_websocket = all(s.mode == Mode.DEAD or (s.mode == Mode.START and not s.buf)
                                for s in dec.sides)
        side.drop_buffer()


def read_scan(dec: ConnectionDecoder, side: Side) -> bool:
    """The SCAN reader (see the decoder's READERS)."""
    scan(dec, side, final=False)
    return side.mode != Mode.SCAN


def start_frames_at(dec: ConnectionDecoder, side: Side, result: ScanResult) -> None:
    """Frames start ``result.offset`` bytes into the buffer: say what was skipped."""
    skipped = result.offset
    offset = side.buf_off + skipped
    packet, ts = side.locate(offset)
    if dec.info.client_direction is None:
        client = side.tcp_dir if result.masked else 1 - side.tcp_dir
        dec.set_client(client, "mid-stream")
        for s in dec.sides:
            s.masked = s.ws_dir == "c2s"
    total_skipped = side.skipped + skipped
    reason = side.scan_reason
    side.consume(skipped)
    side.skipped = 0
    if side.ws_base is None:
        # No handshake seen: offsets count from the first byte captured.
        side.ws_base = 0
    where = offset - side.ws_base
    if reason == "mid-stream":
        note = (f"the connection began before the capture; the {side.ws_dir} stream is "
                f"decoded from the first whole frame in packet {packet}")
        if total_skipped:
            note += f", after {total_skipped} bytes of a frame whose start was not captured"
        dec.violation(R.CAPTURE_MID_STREAM, side.ws_dir, ts, packet, note, stream_offset=where)
        if side.inflater is None and dec.info.deflate:
            side.inflater = MessageInflater(dec.limits.max_payload,
                                            max_inflate=dec.limits.max_inflate)
            side.inflater.lose_history()
    elif reason == "garbage":
        dec.violation(R.FRAME_RESYNCHRONISED, side.ws_dir, ts, packet,
                      f"decoding of the {side.ws_dir} stream resumed at packet {packet} after "
                      f"skipping {total_skipped + 1} bytes", stream_offset=where)
    elif total_skipped:
        dec.violation(R.CAPTURE_UNDECODABLE, side.ws_dir, ts, packet,
                      f"{total_skipped} bytes of the {side.ws_dir} stream after a gap could not "
                      f"be framed; decoding resumed at packet {packet}", stream_offset=where)
    side.mode = Mode.WS
    framing.parse_frames(dec, side, side.buf)


def gap_in_frames(dec: ConnectionDecoder, side: Side, ts: float, packet: int,
                  length: int) -> None:
    """A gap while following frames: finish what it touched, resume after it."""
    if side.hdr is not None and not side.buf and side.f_left > 0:
        # The gap falls in a frame's payload whose header we saw.
        take = min(length, side.f_left)
        side.f_left -= take
        side.f_done += take
        side.f_complete = False
        target = side.target
        if target is not None:
            target.raw_length += take
            messages.lose_rest(side, target)
        side.buf_off += take
        length -= take
        if side.f_left == 0:
            framing.frame_done(dec, side, ts, packet)
        if length == 0:
            return
    # The gap swallowed a frame header: the framing must be found again.
    if side.hdr is not None:
        # The gap is inside a frame header plus... finish the frame as incomplete.
        side.f_complete = False
        if side.target is not None:
            side.target.complete = False
        side.f_left = 0
        framing.frame_done(dec, side, ts, packet)
    msg = side.msg
    if msg is not None:
        messages.lose_rest(side, msg)
    side.buf_off += len(side.buf) + length
    side.buf.clear()
    side.chunks.clear()
    side.enter_scan("gap")
