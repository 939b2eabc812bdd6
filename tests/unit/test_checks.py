"""The frame-header rules of websocket/checks.py, one header at a time."""

from __future__ import annotations

import itertools

from wsanalyze import rules as R
from wsanalyze.websocket.checks import header_findings, is_clean, plausible
from wsanalyze.websocket.frames import FrameHeader


def header(*, fin: bool = True, rsv1: bool = False, rsv2: bool = False, rsv3: bool = False,
           opcode: int = 1, masked: bool = True, length: int = 5,
           minimal: bool = True, msb: bool = False) -> FrameHeader:
    return FrameHeader(fin, rsv1, rsv2, rsv3, opcode, masked,
                       b"\x01\x02\x03\x04" if masked else None, length,
                       (6 if masked else 2) + (0 if minimal else 2), minimal, msb)


def rules_of(h: FrameHeader, direction: str = "c2s", **kw: object) -> list[str]:
    ctx = {"deflate": False, "message_type": None, "synced": True, "close_sent": False}
    ctx.update(kw)
    return [rule for rule, _ in header_findings(h, direction, **ctx)]  # type: ignore[arg-type]


def test_clean_predicate_never_hides_a_finding() -> None:
    # Every combination of header bits and receiver state: when is_clean says
    # clean, header_findings must find nothing (the fast path relies on it).
    checked = 0
    for fin, rsv1, rsv2, rsv3, masked, minimal, deflate, in_msg, close_sent in \
            itertools.product((False, True), repeat=9):
        for opcode in range(16):
            for length in (0, 125, 126):
                h = header(fin=fin, rsv1=rsv1, rsv2=rsv2, rsv3=rsv3, opcode=opcode,
                           masked=masked, length=length, minimal=minimal)
                if is_clean(h, True, deflate, in_msg, close_sent):
                    checked += 1
                    assert rules_of(h, deflate=deflate,
                                    message_type="text" if in_msg else None,
                                    close_sent=close_sent) == [], h
    assert checked == 72  # counted by hand: 48 outside a message, 24 inside


def test_one_finding_per_broken_rule() -> None:
    assert rules_of(header(masked=False)) == [R.FRAME_CLIENT_UNMASKED]
    assert rules_of(header(masked=True), "s2c") == [R.FRAME_SERVER_MASKED]
    assert rules_of(header(opcode=3)) == [R.FRAME_RESERVED_OPCODE]
    assert rules_of(header(rsv2=True)) == [R.FRAME_RESERVED_BITS]
    assert rules_of(header(rsv1=True)) == [R.FRAME_RESERVED_BITS]
    assert rules_of(header(rsv1=True), deflate=True) == []
    assert rules_of(header(rsv1=True, opcode=9), deflate=True) == [R.DEFLATE_RSV1_ON_CONTROL]
    assert rules_of(header(rsv1=True, opcode=0), deflate=True, message_type="text") == [
        R.DEFLATE_RSV1_ON_CONTINUATION]
    assert rules_of(header(length=5, minimal=False)) == [R.FRAME_NON_MINIMAL_LENGTH]
    assert rules_of(header(length=1 << 63, msb=True)) == [R.FRAME_LENGTH_MSB]
    assert rules_of(header(opcode=9, length=126)) == [R.CONTROL_TOO_LONG]
    assert rules_of(header(opcode=8, fin=False)) == [R.CONTROL_FRAGMENTED]
    assert rules_of(header(opcode=0)) == [R.FRAGMENT_UNEXPECTED_CONTINUATION]
    assert rules_of(header(opcode=0), synced=False) == []
    assert rules_of(header(opcode=2), message_type="text") == [R.FRAGMENT_INTERLEAVED]
    assert rules_of(header(opcode=1), close_sent=True) == [R.CLOSE_DATA_AFTER_CLOSE]
    # A control frame between fragments breaks nothing (§5.4).
    assert rules_of(header(opcode=9), message_type="text") == []


def test_finding_text_names_the_values() -> None:
    found = header_findings(header(opcode=10, length=200), "s2c", deflate=False,
                            message_type=None, synced=True, close_sent=False)
    assert found == [(R.FRAME_SERVER_MASKED, "server frame with MASK"),
                     (R.CONTROL_TOO_LONG, "pong frame with a 200-byte payload (at most 125 "
                      "allowed)")]


def test_plausible_is_looser_than_clean() -> None:
    assert plausible(header(), None, False, None)
    assert not plausible(header(), False, False, None)  # MASK differs from the chain
    assert not plausible(header(rsv1=True), True, False, None)
    assert plausible(header(rsv1=True), True, True, None)
    assert not plausible(header(opcode=0), True, True, False)
    assert plausible(header(opcode=0), True, True, None)
    assert not plausible(header(opcode=1), True, True, True)
    assert not plausible(header(opcode=9, length=126), True, True, None)
    assert not plausible(header(opcode=4), None, True, None)
