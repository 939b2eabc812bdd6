"""Every frame-header rule of RFC 6455 §5 and RFC 7692 §6, written once.

:func:`header_findings` lists the rules one header breaks, given what the
receiver knows (direction, negotiated deflate, message in progress).  Two cheap
predicates are derived next to it, so a new rule is added in one place:

* :func:`is_clean` — the header breaks no rule (the decoder's fast path skips
  :func:`header_findings` when it holds; ``tests/unit/test_checks.py`` checks
  the two agree on every combination of header bits);
* :func:`plausible` — the header could be one a real peer sent (the scanner
  uses it to find frame boundaries, :mod:`wsanalyze.websocket.scan`).
"""

from __future__ import annotations

from wsanalyze import rules as R
from wsanalyze.websocket.events import Direction
from wsanalyze.websocket.frames import (
    KNOWN_OPCODES,
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    FrameHeader,
    opcode_name,
)

Finding = tuple[str, str]
"""(rule id, what is wrong, one sentence without the location)."""


def is_clean(h: FrameHeader, masked: bool | None, deflate: bool, in_message: bool,
             close_sent: bool) -> bool:
    """True when :func:`header_findings` would find nothing (the common case).

    ``masked``: the MASK bit this direction must carry (§5.1); ``deflate``:
    permessage-deflate was negotiated; ``in_message``: a fragmented data
    message is in progress; ``close_sent``: this direction already sent Close.
    Conservative on reserved opcodes and fragmentation (it ignores ``synced``): it
    may be False where :func:`header_findings` finds nothing, never the other way
    round.
    """
    op = h.opcode
    return not (
        h.masked != masked or h.rsv2 or h.rsv3 or not h.minimal_length or close_sent
        or (h.rsv1 and not (deflate and OP_TEXT <= op <= OP_BINARY))
        or (op >= 8 and (op > 10 or h.length > 125 or not h.fin))
        or (op < 8 and (op == OP_CONTINUATION) == (not in_message)) or 3 <= op <= 7
    )


def header_findings(h: FrameHeader, direction: Direction | None, *, deflate: bool,
                    message_type: str | None, synced: bool,
                    close_sent: bool) -> list[Finding]:
    """The rules header ``h`` breaks.

    ``direction``: ``"c2s"`` or ``"s2c"``; ``message_type``: the type of the
    fragmented data message in progress, or None; ``synced``: frame boundaries
    and message state are known, so fragmentation rules apply.
    """
    out: list[Finding] = []
    # §5.1: "a client MUST mask all frames"; "A server MUST NOT mask any frames".
    if direction == "c2s" and not h.masked:
        out.append((R.FRAME_CLIENT_UNMASKED, "client frame without MASK"))
    elif direction == "s2c" and h.masked:
        out.append((R.FRAME_SERVER_MASKED, "server frame with MASK"))
    op = h.opcode
    # §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail_".
    if op not in KNOWN_OPCODES:
        out.append((R.FRAME_RESERVED_OPCODE, f"reserved opcode 0x{op:X}"))
    # §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines" them.
    if h.rsv2 or h.rsv3 or (h.rsv1 and not deflate):
        bits = [n for n, b in (("RSV1", h.rsv1), ("RSV2", h.rsv2), ("RSV3", h.rsv3)) if b]
        out.append((R.FRAME_RESERVED_BITS,
                    f"{'/'.join(bits)} set with no extension negotiated that defines it"))
    # RFC 7692 §6.1: RSV1 only on the first frame of a data message.
    if h.rsv1 and deflate:
        if op >= 8:
            out.append((R.DEFLATE_RSV1_ON_CONTROL, f"RSV1 set on a {opcode_name(op)} frame"))
        elif op == OP_CONTINUATION:
            out.append((R.DEFLATE_RSV1_ON_CONTINUATION, "RSV1 set on a continuation frame"))
    # §5.2: "the minimal number of bytes MUST be used to encode the length".
    if not h.minimal_length:
        out.append((R.FRAME_NON_MINIMAL_LENGTH,
                    f"payload length {h.length} encoded in "
                    f"{h.header_length - (4 if h.masked else 0) - 2} extra bytes instead of "
                    "the minimum"))
    # §5.2: "the most significant bit MUST be 0".
    if h.length_msb:
        out.append((R.FRAME_LENGTH_MSB, "64-bit payload length with its most significant bit "
                    "set"))
    if op >= 8:
        # §5.5: "All control frames MUST have a payload length of 125 bytes or less
        # and MUST NOT be fragmented."
        if h.length > 125:
            out.append((R.CONTROL_TOO_LONG, f"{opcode_name(op)} frame with a {h.length}-byte "
                        "payload (at most 125 allowed)"))
        if not h.fin:
            out.append((R.CONTROL_FRAGMENTED, f"{opcode_name(op)} frame with FIN clear"))
    elif op in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
        # §5.4: fragments of one message in order, not interleaved.
        if op == OP_CONTINUATION and message_type is None and synced:
            out.append((R.FRAGMENT_UNEXPECTED_CONTINUATION,
                        "continuation frame with no message in progress"))
        if op != OP_CONTINUATION and message_type is not None and synced:
            out.append((R.FRAGMENT_INTERLEAVED, f"new {opcode_name(op)} message while a "
                        f"fragmented {message_type} message was in progress"))
        # §5.5.1: "The application MUST NOT send any more data frames after sending
        # a Close frame."
        if close_sent:
            out.append((R.CLOSE_DATA_AFTER_CLOSE,
                        f"{opcode_name(op)} frame sent after this side's Close"))
    return out


def plausible(h: FrameHeader, masked: bool | None, rsv1_ok: bool,
              in_fragment: bool | None) -> bool:
    """A header a real peer could have sent (looser than :func:`is_clean`: MASK
    and fragment state may be unknown, None).  The scanner's test for a frame
    boundary: a random offset rarely passes it several frames in a row."""
    op = h.opcode
    if op not in KNOWN_OPCODES or h.rsv2 or h.rsv3 or h.length_msb or not h.minimal_length:
        return False
    if masked is not None and h.masked != masked:
        return False
    if op >= 8:
        return h.fin and h.length <= 125 and not h.rsv1
    if h.rsv1 and (not rsv1_ok or op == OP_CONTINUATION):
        return False
    if op == OP_CONTINUATION:
        return in_fragment is not False
    return in_fragment is not True


def plausible_first_byte(b0: int) -> bool:
    """The first header byte alone (an incomplete header) could start a frame."""
    return not (b0 & 0x30) and (b0 & 0x0F) in KNOWN_OPCODES
