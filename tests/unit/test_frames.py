"""Frame headers and masking (websocket/frames.py) against RFC 6455 §5.7's examples."""

from __future__ import annotations

from wsanalyze.websocket.frames import opcode_name, parse_header, unmask


def test_rfc_examples_unmasked_and_masked_hello() -> None:
    # §5.7: "A single-frame unmasked text message ... contains "Hello""
    h = parse_header(bytes.fromhex("810548656c6c6f"))
    assert h is not None
    assert (h.fin, h.opcode, h.masked, h.length, h.header_length) == (True, 1, False, 5, 2)
    # "A single-frame masked text message"
    data = bytes.fromhex("818537fa213d7f9f4d5158")
    h = parse_header(data)
    assert h is not None and h.mask_key == bytes.fromhex("37fa213d")
    assert (h.length, h.header_length) == (5, 6)
    assert unmask(data[6:], h.mask_key) == b"Hello"


def test_rfc_examples_fragments_and_control() -> None:
    first = parse_header(bytes.fromhex("010348656c"))
    last = parse_header(bytes.fromhex("80026c6f"))
    ping = parse_header(bytes.fromhex("890548656c6c6f"))
    assert first is not None and last is not None and ping is not None
    assert (first.fin, first.opcode, last.fin, last.opcode) == (False, 1, True, 0)
    assert (ping.opcode, opcode_name(ping.opcode)) == (9, "ping")
    assert opcode_name(0x3) == "opcode-0x3"


def test_extended_lengths_and_their_minimality() -> None:
    # §5.7: "256 bytes binary message in a single unmasked frame": 0x82 0x7E 0x0100
    h = parse_header(bytes.fromhex("827e0100"))
    assert h is not None and (h.length, h.header_length, h.minimal_length) == (256, 4, True)
    # "64KiB binary message": 0x82 0x7F 0x0000000000010000
    h = parse_header(bytes.fromhex("827f0000000000010000"))
    assert h is not None and (h.length, h.header_length, h.minimal_length) == (65536, 10, True)
    h = parse_header(bytes.fromhex("827e0005"))
    assert h is not None and (h.length, h.minimal_length) == (5, False)
    h = parse_header(bytes.fromhex("827f8000000000000001"))
    assert h is not None and h.length_msb


def test_incomplete_headers_wait_for_more() -> None:
    assert parse_header(b"\x81") is None
    assert parse_header(bytes.fromhex("827e01")) is None
    assert parse_header(bytes.fromhex("8185") + b"\x37\xfa") is None
    # at an offset inside a buffer
    h = parse_header(b"xx" + bytes.fromhex("8a00"), 2)
    assert h is not None and (h.opcode, h.length) == (10, 0)


def test_unmask_in_pieces_keeps_the_key_phase() -> None:
    key = bytes.fromhex("37fa213d")
    masked = unmask(b"Hello, world", key)
    assert unmask(masked[:3], key) + unmask(masked[3:7], key, 3) + \
        unmask(masked[7:], key, 7 & 3) == b"Hello, world"
    assert unmask(b"", key) == b""
