"""The sequencer (sequencer.py): ids in first-packet order, rows from typed items."""

from __future__ import annotations

from wsanalyze import rules as R
from wsanalyze.config import TABLES
from wsanalyze.sequencer import SUMMARY, ConnectionSummary, Sequencer
from wsanalyze.tcp.events import ConnectionEnded, ConnectionStarted
from wsanalyze.tracker import ConnState, Decoded, Ended, Started, TcpViolation
from wsanalyze.websocket.decoder import ConnectionInfo
from wsanalyze.websocket.events import MessageEvent, WebSocketDetected

WS = ConnState(True, False, False, 0)
UNDECIDED = ConnState(False, False, False, None)


def started(packet: int, port: int) -> Started:
    return Started(packet, ConnectionStarted(packet, float(packet), packet,
                                             ("10.0.0.1", port), ("10.0.0.2", 80), True))


def message(index: int, payload: bytes) -> MessageEvent:
    return MessageEvent("c2s", index, 1.0, 1.0, 9, "text", 1, 1, False, 6 + len(payload),
                        len(payload), len(payload), payload, False, payload.decode(), None, None,
                        True, None)


def ended(key: int, info: ConnectionInfo) -> Ended:
    return Ended(key, WS, ConnectionEnded(key, 5.0, 30, "tcp-fin", 0.001), info, 5.0)


def test_ids_follow_first_packets_even_when_decided_later() -> None:
    seq = Sequencer(frozenset(TABLES))
    assert seq.feed([started(1, 1111), started(2, 2222)]) == []
    # The second connection is WebSocket first; its rows wait for the first's fate.
    assert seq.feed([Decoded(2, WS, [WebSocketDetected(0, "handshake"),
                                     message(0, b"two")])]) == []
    out = seq.feed([Decoded(1, WS, [WebSocketDetected(0, "handshake"), message(0, b"one")])])
    # Deciding the first releases the second's held rows; ids follow first packets.
    assert sorted((r["connection"], r["payload"], r["client"]) for _, r in out) == [
        (0, b"one", "10.0.0.1:1111"), (1, b"two", "10.0.0.1:2222")]


def test_tcp_rows_get_their_direction_and_a_summary_when_asked() -> None:
    seq = Sequencer(frozenset({"violation", "connection", SUMMARY}))
    seq.feed([started(1, 1111)])
    gap = TcpViolation(R.CAPTURE_GAP, 2.0, 7, 1, "10 bytes of the ", " stream were lost")
    out = seq.feed([Decoded(1, WS, [WebSocketDetected(0, "handshake"), gap])])
    assert [(t, r["direction"], r["message"]) for t, r in out] == [
        ("violation", "s2c", "10 bytes of the s2c stream were lost")]
    info = ConnectionInfo(client_direction=0, handshake="ok", compressed=2)
    info.messages["c2s"] = 3
    out = seq.feed([ended(1, info)])
    assert [t for t, _ in out] == ["connection", SUMMARY]
    row, summary = out[0][1], out[1][1]
    assert (row["handshake"], row["messages_c2s"], row["end"]) == ("ok", 3, "capture-ended")
    assert isinstance(summary, ConnectionSummary)
    assert (summary.row, summary.data_messages, summary.compressed) == (row, 3, 2)


def test_undecided_direction_is_named_by_tcp_direction() -> None:
    seq = Sequencer(frozenset({"violation"}))
    seq.feed([started(1, 1111)])
    note = TcpViolation(R.CAPTURE_OVERLAP_CONFLICT, 2.0, 7, 0, "", " stream: bytes differ")
    server_first = ConnState(True, False, False, 1)  # TCP direction 1 is the client
    out = seq.feed([Decoded(1, UNDECIDED, [note]), Decoded(1, server_first, [
        WebSocketDetected(1, "mid-stream")])])
    assert [r["message"] for _, r in out] == ["s2c stream: bytes differ"]
    assert seq.finish() == []


def test_rows_have_exactly_the_schema_columns_in_order() -> None:
    # One declaration of the columns: output/schema.py; every row builder follows it.
    from tests.unit.test_tracker import packets, websocket_conversation
    from wsanalyze.output.schema import column_names
    from wsanalyze.pipeline import run

    conv, _, _ = websocket_conversation()  # no closing handshake: one violation row
    seen = []
    for table, row in run(packets(conv)):
        assert list(row) == column_names(table), table
        seen.append(row["rule"] if table == "violation" else table)
    assert seen == ["frame", "message", "close.no-close-handshake", "connection"]
