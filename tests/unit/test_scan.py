"""Finding a frame boundary in a stream whose start was not seen (websocket/scan.py)."""

from __future__ import annotations

from tests.pcaptools import OP_BINARY, OP_PING, OP_TEXT, ws_frame
from wsanalyze.websocket.scan import Scanner

MASK = b"\x01\x02\x03\x04"


def frames(*payloads: bytes, masked: bool = True) -> bytes:
    return b"".join(ws_frame(OP_TEXT, p, mask=MASK if masked else None) for p in payloads)


def test_chain_after_the_tail_of_a_lost_frame() -> None:
    tail = b"end of a frame whose header was lost"
    data = tail + frames(b'{"a": 1}', b'{"b": 2}')
    result = Scanner().scan(data, 1000, masked=None, rsv1_ok=False, starts=frozenset({0}),
                            ends=frozenset({len(data)}), final=False)
    assert result is not None and (result.offset, result.masked) == (len(tail), True)


def test_mask_bit_must_agree() -> None:
    data = b"\x00" * 3 + frames(b"one", b"two", masked=False)
    ends = frozenset({len(data)})
    assert Scanner().scan(data, 0, masked=True, rsv1_ok=False, starts=frozenset(), ends=ends,
                          final=True) is None
    found = Scanner().scan(data, 0, masked=False, rsv1_ok=False, starts=frozenset(), ends=ends,
                           final=True)
    assert found is not None and found.offset == 3


def test_waits_for_the_bytes_a_chain_needs() -> None:
    scanner = Scanner()
    data = b"zz" + ws_frame(OP_BINARY, b"x" * 300, mask=MASK) + ws_frame(OP_PING, b"p", mask=MASK)
    part = data[:100]
    assert scanner.scan(part, 0, masked=True, rsv1_ok=False, starts=frozenset(),
                        ends=frozenset({100}), final=False) is None
    assert scanner.first_pending(0) is not None
    found = scanner.scan(data, 0, masked=True, rsv1_ok=False, starts=frozenset(),
                         ends=frozenset({100, len(data)}), final=False)
    assert found is not None and found.offset == 2
