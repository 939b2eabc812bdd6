"""permessage-deflate inflating (websocket/deflate.py) against RFC 7692 §7.2.3's examples."""

from __future__ import annotations

import zlib

from wsanalyze import rules as R
from wsanalyze.websocket.deflate import TAIL, MessageInflater


def test_rfc_hello_twice_with_context_takeover() -> None:
    # §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00; §7.2.3.2: the same
    # message again, referring back to the first: f2 00 11 00 00.
    inf = MessageInflater(1 << 20)
    inf.begin()
    inf.feed(bytes.fromhex("f248cdc9c90700"))
    assert inf.end() == b"Hello"
    inf.begin()
    inf.feed(bytes.fromhex("f200"))
    inf.feed(bytes.fromhex("110000"))
    assert (inf.end(), inf.total, inf.error) == (b"Hello", 5, None)


def test_whole_message_in_one_call() -> None:
    inf = MessageInflater(1 << 20)
    inf.whole(bytes.fromhex("f248cdc9c90700"))
    assert inf.end() == b"Hello"


def test_context_takeover_broken_by_the_sender() -> None:
    # A sender that agreed to no context takeover yet refers back (§7.1.1.1).
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    msgs = [comp.compress(p) + comp.flush(zlib.Z_SYNC_FLUSH) for p in (b"abcabc" * 20,) * 2]
    inf = MessageInflater(1 << 20, no_context_takeover=True)
    for m in msgs:
        assert m.endswith(TAIL)
        inf.whole(m[:-4])
        assert inf.end() == b"abcabc" * 20
    assert inf.violation is not None and inf.violation[0] == R.DEFLATE_CONTEXT_TAKEOVER_VIOLATED


def test_garbage_does_not_inflate() -> None:
    inf = MessageInflater(1 << 20)
    inf.whole(b"\xff\xff\xff\xff")
    assert (inf.end(), inf.error) == (b"", R.DEFLATE_DECOMPRESSION_FAILED)


def test_lost_history_is_reported_as_undecodable() -> None:
    inf = MessageInflater(1 << 20)
    inf.lose_history()
    inf.whole(bytes.fromhex("f200110000"))  # refers to the lost first "Hello"
    inf.end()
    assert inf.error == R.CAPTURE_UNDECODABLE


def test_cap_stops_a_bomb() -> None:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = comp.compress(b"\0" * (4 << 20)) + comp.flush(zlib.Z_SYNC_FLUSH)
    inf = MessageInflater(1 << 10, max_inflate=1 << 20)
    inf.whole(bomb[:-4])
    out = inf.end()
    assert inf.capped and inf.total == 1 << 20 and len(out) == 1 << 10
