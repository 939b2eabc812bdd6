"""End-to-end decoding of crafted captures: handshake variants, framing,
permessage-deflate corner cases, gaps and mid-stream starts.

Each test builds a realistic TCP conversation (3-way handshake, MSS-sized
segments, delayed ACKs) with tests/pcaptools.py, writes a pcap and asserts the
concrete decoded rows.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import pandas as pd

import wsanalyze
from tests.pcaptools import (
    Conversation,
    deflate_message,
    upgrade_request,
    upgrade_response,
    ws_close_payload,
    ws_frame,
    ws_key,
)

MASK = b"\x11\x22\x33\x44"
PMD = "permessage-deflate"


def _conv(**kw: object) -> Conversation:
    c = Conversation(**kw)  # type: ignore[arg-type]
    c.handshake()
    return c


def _analyze(conv: Conversation, tmp_path: Path, name: str = "x.pcap",
             drop: tuple[int, ...] = ()) -> wsanalyze.AnalysisResult:
    for number in sorted(drop, reverse=True):
        del conv.frames[number - 1]
    path = tmp_path / name
    conv.write(path)
    return wsanalyze.analyze(path)


def _data(result: wsanalyze.AnalysisResult, direction: str | None = None) -> pd.DataFrame:
    m = result.messages
    m = m[m["type"].isin(["text", "binary", "continuation"])]
    return m if direction is None else m[m["direction"] == direction]


def _rules(result: wsanalyze.AnalysisResult) -> list[tuple[str, str | None, int | None]]:
    v = result.violations
    return [(r.rule, r.direction, r.packet) for r in v.itertuples()]


def _close(conv: Conversation) -> None:
    conv.send("c2s", ws_frame(8, ws_close_payload(1000), mask=MASK))
    conv.send("s2c", ws_frame(8, ws_close_payload(1000)))
    conv.close("s2c")


def test_deflate_context_takeover_bfinal_empty_and_fragmented(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    texts = [b'{"a": "hello hello hello"}', b"", b'{"a": "hello hello hello", "b": 2}']
    for payload in deflate_message(texts):
        conv.send("s2c", ws_frame(1, payload, rsv1=True))
    # RFC 7692 §7.2.3.4: "Hello" in a block with BFINAL set, then more messages.
    conv.send("s2c", ws_frame(1, bytes.fromhex("f348cdc9c90700 00".replace(" ", "")),
                              rsv1=True))
    after = deflate_message([b"after the final block"])[0]
    conv.send("s2c", ws_frame(1, after, rsv1=True))
    # A compressed message in three fragments, with a ping between them.
    big = b"fragmented and compressed " * 200
    comp = deflate_message([big])[0]
    third = len(comp) // 3
    conv.send("c2s", ws_frame(2, comp[:third], fin=False, rsv1=True, mask=MASK))
    conv.send("c2s", ws_frame(9, b"between", mask=MASK))
    conv.send("c2s", ws_frame(0, comp[third:2 * third], fin=False, mask=MASK))
    conv.send("c2s", ws_frame(0, comp[2 * third:], mask=MASK))
    conv.send("s2c", ws_frame(10, b"between"))
    _close(conv)
    r = _analyze(conv, tmp_path)
    s2c = _data(r, "s2c")
    assert list(s2c["payload"]) == [*texts, b"Hello", b"after the final block"]
    assert s2c["compressed"].all() and s2c["complete"].all()
    c2s = r.messages[r.messages["direction"] == "c2s"]
    assert list(c2s["type"]) == ["ping", "binary", "close"]
    binary = c2s[c2s["type"] == "binary"].iloc[0]
    assert binary["payload"] == big and binary["frames"] == 3
    assert binary["raw_length"] == len(comp) and binary["length"] == len(big)
    assert r.violations[r.violations["severity"] != "info"].empty
    conn = r.connections.iloc[0]
    assert conn["deflate"] and conn["extensions"] == PMD and conn["end"] == "close-handshake"


def test_no_context_takeover_small_windows(tmp_path: Path) -> None:
    conv = _conv()
    ext = ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
           "server_max_window_bits=9; client_max_window_bits=9")
    conv.ws_upgrade(extensions="permessage-deflate; client_max_window_bits",
                    response_extensions=ext)
    msgs = [(b"%d repeated text beyond the window " % i) * 60 for i in range(4)]
    for payload in deflate_message(msgs, context_takeover=False, wbits=9):
        conv.send("c2s", ws_frame(1, payload, rsv1=True, mask=MASK))
        conv.send("s2c", ws_frame(1, payload, rsv1=True))
    _close(conv)
    r = _analyze(conv, tmp_path)
    assert list(_data(r, "c2s")["payload"]) == msgs
    assert list(_data(r, "s2c")["payload"]) == msgs
    assert r.violations[r.violations["severity"] != "info"].empty


def test_plain_http_before_upgrade_and_101_sharing_a_segment(tmp_path: Path) -> None:
    conv = _conv()
    conv.send("c2s", b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde")
    conv.send("s2c", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n")
    conv.send("c2s", b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n")
    conv.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    key = ws_key(3)
    conv.send("c2s", upgrade_request("h", "/chat?x=1", key, protocols=["v2", "v1"],
                                     extra_headers=[("Origin", "http://h"),
                                                    ("User-Agent", "crafted/1.0")]))
    # The 101 and the first two frames in one segment.
    conv.send("s2c", upgrade_response(key, protocol="v1") + ws_frame(1, b"first")
              + ws_frame(2, b"\x00\x01"))
    conv.send("c2s", ws_frame(1, b"x" * 200, mask=MASK))  # 16-bit length
    conv.send("s2c", ws_frame(2, bytes(range(256)) * 300))  # 64-bit length, many segments
    _close(conv)
    r = _analyze(conv, tmp_path)
    assert list(_data(r)["payload"]) == [b"first", b"\x00\x01", b"x" * 200,
                                         bytes(range(256)) * 300]
    conn = r.connections.iloc[0]
    assert (conn["handshake"], conn["path"], conn["host"], conn["origin"],
            conn["user_agent"]) == ("ok", "/chat?x=1", "h", "http://h", "crafted/1.0")
    assert list(conn["subprotocols_offered"]) == ["v2", "v1"] and conn["subprotocol"] == "v1"
    assert r.violations[r.violations["severity"] != "info"].empty
    frames = r.frames
    assert list(frames["header_bytes"]) == [2, 2, 8, 10, 6, 2]
    assert frames.iloc[0]["stream_offset"] == 0


def test_rejected_upgrade_and_bad_accept(tmp_path: Path) -> None:
    a = _conv()
    _, resp_pkts = a.ws_upgrade(status=403)
    a.close("s2c")
    b = Conversation(client=("127.0.0.1", 50001), t0=1_700_000_001.0)
    b.handshake()
    key = ws_key(5)
    b.send("c2s", upgrade_request("h", "/", key))
    resp_pkt = b.send("s2c", upgrade_response(key, accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA="))[0]
    b.send("s2c", ws_frame(1, b"still decoded"))
    from tests.pcaptools import write_conversations

    path = tmp_path / "two.pcap"
    numbers = write_conversations(path, [a, b])
    r = wsanalyze.analyze(path)
    assert list(r.connections["handshake"]) == ["rejected", "invalid"]
    rows = r.violations[["connection", "rule", "direction", "packet"]].values.tolist()
    assert [0, "handshake.rejected", "s2c", numbers[0][resp_pkts[0] - 1]] in rows
    assert [1, "handshake.bad-accept", "s2c", numbers[1][resp_pkt - 1]] in rows
    assert list(_data(r)["payload"]) == [b"still decoded"]


def test_decompression_failure_then_recovery(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    good = deflate_message([b"one message", b"fresh start"], context_takeover=False)
    conv.send("s2c", ws_frame(1, good[0], rsv1=True))
    bad_pkt = conv.send("s2c", ws_frame(1, b"\xff\xff\xff\xff", rsv1=True))[0]
    conv.send("s2c", ws_frame(1, good[1], rsv1=True))
    _close(conv)
    r = _analyze(conv, tmp_path)
    s2c = _data(r, "s2c")
    assert list(s2c["error"].fillna("")) == ["", "deflate.decompression-failed", ""]
    assert list(s2c["payload"]) == [b"one message", b"", b"fresh start"]
    assert ("deflate.decompression-failed", "s2c", bad_pkt) in _rules(r)


def test_lost_segment_inside_a_message(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade()
    before = conv.send("s2c", ws_frame(1, b"before"))
    big = bytes(range(251)) * 40  # 10040 bytes: 7 segments
    pkts = conv.send("s2c", ws_frame(2, big))
    after = [b"after %d" % i for i in range(3)]
    for a in after:
        conv.send("s2c", ws_frame(1, a))
    conv.send("c2s", ws_frame(1, b"client", mask=MASK))
    _close(conv)
    dropped = pkts[3]
    r = _analyze(conv, tmp_path, drop=(dropped,))
    s2c = _data(r, "s2c")
    assert list(s2c["complete"]) == [True, False, True, True, True]
    assert list(s2c["payload"])[2:] == after
    assert s2c.iloc[0]["payload"] == b"before" and before
    incomplete = s2c.iloc[1]
    assert incomplete["raw_length"] == len(big) and incomplete["truncated"]
    assert big.startswith(incomplete["payload"]) and len(incomplete["payload"]) > 2000
    gaps = r.violations[r.violations["rule"] == "capture.gap"]
    # The packet Wireshark flags "previous segment not captured": the next s2c
    # segment, renumbered after the drop.
    assert gaps[["direction", "packet"]].values.tolist() == [["s2c", pkts[4] - 1]]
    assert r.violations[r.violations["severity"] != "info"].empty


def test_lost_segment_with_frame_headers_resynchronises(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    texts = [b'{"seq": %d, "body": "%s"}' % (i, b"abc" * (i * 7 % 50)) for i in range(60)]
    for i, payload in enumerate(deflate_message(texts)):
        conv.send("c2s", ws_frame(1, payload, rsv1=True, mask=bytes([i, 1, 2, 3])),
                  push_with_next=True)
    conv.send("s2c", ws_frame(1, b"reply"))
    # One message per context: these do not need the history lost in the gap.
    fresh = [b'{"fresh": %d}' % i for i in range(3)]
    for payload in deflate_message(fresh, context_takeover=False):
        conv.send("c2s", ws_frame(1, payload, rsv1=True, mask=MASK))
    _close(conv)
    r0 = _analyze(conv, tmp_path, name="full.pcap")
    assert list(_data(r0, "c2s")["payload"]) == texts + fresh
    # Rebuild and drop the packet carrying message 20's header.
    frames = r0.frames
    victim = int(frames[(frames["direction"] == "c2s")].iloc[20]["packet"])
    conv2 = _conv()
    conv2.frames = list(conv.frames)
    r = _analyze(conv2, tmp_path, name="gap.pcap", drop=(victim,))
    got = _data(r, "c2s")
    decoded = [p for p, e in zip(got["payload"], got["error"], strict=True) if pd.isna(e)]
    assert decoded[:19] == texts[:19]
    assert decoded[-3:] == fresh
    assert set(got["error"].dropna()) <= {"capture.undecodable"}
    assert "capture.gap" in set(r.violations["rule"])
    assert r.violations[r.violations["severity"] != "info"].empty


def test_mid_stream_capture(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade()
    msgs = [b"message %d " % i * (i + 1) * 30 for i in range(12)]
    for i, m in enumerate(msgs):
        conv.send("c2s", ws_frame(1, m, mask=bytes([9, i, 7, 5])))
        conv.send("s2c", ws_frame(2, m))
    _close(conv)
    start = 20  # inside the traffic, not at a frame boundary in general
    conv.frames = conv.frames[start:]
    r = _analyze(conv, tmp_path)
    conn = r.connections.iloc[0]
    assert conn["handshake"] == "not-captured"
    assert conn["client"] == "127.0.0.1:50000"
    got_c = list(_data(r, "c2s")["payload"])
    got_s = list(_data(r, "s2c")["payload"])
    assert got_c and got_c == msgs[-len(got_c):] and len(got_c) >= 8
    assert got_s and got_s == msgs[-len(got_s):] and len(got_s) >= 8
    rules = set(r.violations["rule"])
    assert "capture.mid-stream" in rules
    assert r.violations[r.violations["severity"] != "info"].empty


def test_mid_stream_deflate_inferred_and_recovers(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    shared = b'{"type": "tick", "symbol": "ABC", "bid": 1.2345, "ask": 1.2346}'
    early = [shared] * 5
    for payload in deflate_message(early):
        conv.send("s2c", ws_frame(1, payload, rsv1=True))
    cut = len(conv.frames)
    # The server's compressor is reset here: later messages need no earlier history.
    later = [b"%d %s" % (i, shared) for i in range(5)]
    for payload in deflate_message(later):
        conv.send("s2c", ws_frame(1, payload, rsv1=True))
    _close(conv)
    conv.frames = conv.frames[cut - 2:]  # starts with the last early messages
    r = _analyze(conv, tmp_path)
    s2c = _data(r, "s2c")
    assert r.connections.iloc[0]["deflate"]
    ok = s2c[s2c["error"].isna()]
    assert list(ok["payload"])[-5:] == later
    undecodable = s2c[s2c["error"].notna()]
    assert set(undecodable["error"]) == {"capture.undecodable"}
    assert "capture.mid-stream" in set(r.violations["rule"])
    assert r.violations[r.violations["severity"] != "info"].empty


def test_zlib_sync_flush_matches_rfc_example() -> None:
    # Guard for the fixtures: RFC 7692 §7.2.3.1 "Hello" with one compressed block.
    d = zlib.decompressobj(-15)
    assert d.decompress(bytes.fromhex("f248cdc9c90700") + b"\x00\x00\xff\xff") == b"Hello"


def test_deflate_agreement_broken_is_reported_and_still_decoded(tmp_path: Path) -> None:
    conv = _conv()
    ext = "permessage-deflate; client_no_context_takeover; server_max_window_bits=9"
    conv.ws_upgrade(extensions="permessage-deflate; client_no_context_takeover; "
                    "server_max_window_bits=9", response_extensions=ext)
    shared = b'{"quote": "the same words again and again", "n": 1}'
    c_msgs = [shared, shared + b"!"]
    # The client keeps its context although it agreed not to.
    c_pkts = []
    for payload in deflate_message(c_msgs, context_takeover=True):
        c_pkts += conv.send("c2s", ws_frame(1, payload, rsv1=True, mask=MASK))
    # The server repeats text 2000 bytes back: beyond its agreed 512-byte window.
    block = random.Random(7).randbytes(2000)
    s_msg = block + b"-" * 10 + block
    s_pkt = conv.send("s2c", ws_frame(2, deflate_message([s_msg])[0], rsv1=True))
    # And within the window: no row.
    near = b"0123456789abcdef" * 20 + b"0123456789abcdef" * 4
    conv.send("s2c", ws_frame(2, deflate_message([near], wbits=9)[0], rsv1=True))
    _close(conv)
    r = _analyze(conv, tmp_path)
    assert list(_data(r, "c2s")["payload"]) == c_msgs
    assert list(_data(r, "s2c")["payload"]) == [s_msg, near]
    bad = r.violations[r.violations["severity"] == "error"]
    assert bad[["rule", "direction", "packet"]].values.tolist() == [
        ["deflate.context-takeover-violated", "c2s", c_pkts[1]],
        ["deflate.window-bits-exceeded", "s2c", s_pkt[-1]],
    ]


def test_decompression_bomb_stops_at_the_cap_and_decoding_goes_on(tmp_path: Path) -> None:
    from wsanalyze.websocket.decoder import DecoderLimits

    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    bomb = deflate_message([b"\x00" * (8 << 20)], context_takeover=False)[0]
    assert len(bomb) < 10_000
    pkts = conv.send("s2c", ws_frame(2, bomb, rsv1=True))
    fresh = deflate_message([b"after the bomb"], context_takeover=False)[0]
    conv.send("s2c", ws_frame(1, fresh, rsv1=True))
    _close(conv)
    path = tmp_path / "bomb.pcap"
    conv.write(path)
    r = wsanalyze.analyze(path, limits=DecoderLimits(max_payload=1 << 16, max_inflate=1 << 20))
    s2c = _data(r, "s2c")
    first = s2c.iloc[0]
    assert first["truncated"] and len(first["payload"]) == 1 << 16
    assert first["payload"] == b"\x00" * (1 << 16)
    assert (1 << 20) <= first["length"] < (1 << 20) + (1 << 20)
    assert s2c.iloc[1]["payload"] == b"after the bomb"
    rows = r.violations[r.violations["rule"] == "message.too-big"]
    assert rows[["direction", "packet"]].values.tolist() == [["s2c", pkts[-1]]]
    assert "ratio" in rows.iloc[0]["message"] and "cap" in rows.iloc[0]["message"]


def test_many_final_blocks_in_one_message_do_not_recurse(tmp_path: Path) -> None:
    conv = _conv()
    conv.ws_upgrade(extensions=PMD, response_extensions=PMD)
    # 5000 complete DEFLATE streams (each "a" with BFINAL set) in one message.
    one = zlib.compressobj(6, zlib.DEFLATED, -15)
    block = one.compress(b"a") + one.flush()
    conv.send("s2c", ws_frame(1, block * 5000, rsv1=True))
    _close(conv)
    r = _analyze(conv, tmp_path)
    assert list(_data(r, "s2c")["payload"]) == [b"a" * 5000]
