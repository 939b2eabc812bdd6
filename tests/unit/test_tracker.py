"""The tracker (tracker.py): packets in, typed items out (Started, Decoded, Ended)."""

from __future__ import annotations

from dataclasses import replace

from tests.pcaptools import (
    OP_TEXT,
    TH_ACK,
    TH_PUSH,
    Conversation,
    upgrade_request,
    upgrade_response,
    ws_frame,
    ws_key,
)
from wsanalyze import rules as R
from wsanalyze.sources.records import RawPacket
from wsanalyze.tracker import Decoded, Ended, Item, Started, TcpViolation, Tracker, shard_of
from wsanalyze.websocket.events import MessageEvent, WebSocketDetected


def packets(conv: Conversation) -> list[RawPacket]:
    return [RawPacket(n, r.ts, r.linktype, r.data, r.orig_len)
            for n, r in enumerate(conv.records(), start=1)]


def websocket_conversation() -> tuple[Conversation, int, int]:
    conv = Conversation()
    syn = conv.handshake()[0]
    key = ws_key(9)
    conv.send("c2s", upgrade_request("example.test", "/", key))
    conv.send("s2c", upgrade_response(key))
    text = conv.send("c2s", ws_frame(OP_TEXT, b"hi", mask=b"\x01\x02\x03\x04"))[0]
    conv.close("c2s")
    return conv, syn, text


def feed_all(tracker: Tracker, pkts: list[RawPacket]) -> list[Item]:
    items: list[Item] = []
    for pkt in pkts:
        items += tracker.feed(pkt)
    return items + tracker.finish()


def test_items_of_one_websocket_connection() -> None:
    conv, syn, text = websocket_conversation()
    items = feed_all(Tracker(), packets(conv))
    assert type(items[0]) is Started and items[0].key == syn
    assert type(items[-1]) is Ended and items[-1].event.how == "tcp-fin"
    assert all(item.key == syn for item in items)
    events = [ev for item in items if type(item) is Decoded for ev in item.events]
    detected = [ev for ev in events if type(ev) is WebSocketDetected]
    assert detected == [WebSocketDetected(0, "handshake")]
    msgs = [ev for ev in events if type(ev) is MessageEvent]
    assert [(m.direction, m.payload, m.packet) for m in msgs] == [("c2s", b"hi", text)]
    last = items[-1]
    assert type(last) is Ended
    assert last.state.websocket and last.state.client_direction == 0
    assert last.info.handshake == "ok" and last.info.messages == {"c2s": 1, "s2c": 0}


def test_a_gap_becomes_a_tcp_row_around_its_direction() -> None:
    conv = Conversation()
    conv.handshake()
    key = ws_key(9)
    conv.send("c2s", upgrade_request("example.test", "/", key))
    conv.send("s2c", upgrade_response(key))
    # 10 bytes of the server's stream never captured, then more data.
    conv.segment("s2c", TH_ACK | TH_PUSH, b"x" * 10)
    after = conv.segment("s2c", TH_ACK | TH_PUSH, ws_frame(OP_TEXT, b"later"))
    pkts = [p for p in packets(conv) if p.number != after - 1]
    pkts = [replace(p, number=i) for i, p in enumerate(pkts, start=1)]
    items = feed_all(Tracker(), pkts)
    rows = [ev for item in items if type(item) is Decoded for ev in item.events
            if type(ev) is TcpViolation]
    assert len(rows) == 1
    row = rows[0]
    assert (row.rule, row.tcp_direction, row.packet) == (R.CAPTURE_GAP, 1, after - 1)
    assert row.before == "10 bytes of the "
    assert row.after.startswith(" stream (TCP stream offsets ")


def test_shards_split_connections_and_agree_on_packet_numbers() -> None:
    conv, syn, _ = websocket_conversation()
    pkts = packets(conv)
    seg_shard = shard_of(Tracker().parser.parse(pkts[0]), 2)  # type: ignore[arg-type]
    mine = feed_all(Tracker(shard=seg_shard, jobs=2), pkts)
    other = feed_all(Tracker(shard=1 - seg_shard, jobs=2), pkts)
    # Both shards number the conversation (tcp.stream 0): workers count before sharding.
    assert other == [] and mine[0] == Started(syn, mine[0].event, 0)  # type: ignore[union-attr]
