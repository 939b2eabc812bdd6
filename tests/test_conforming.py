"""Conforming traffic the analyzer once misjudged (issue 10's behaviour fixes).

Each test crafts one connection with :mod:`tests.rulecases`' ``Session`` (real
TCP segmentation, masked client frames), analyses the pcap, and checks concrete
rows: RFC 6455 §5.5.3 unsolicited Pongs, §7.1.7 failed connections, the
§5.5.3 "most recently processed Ping" rule in both the violations and the
metrics, and the frames table in wire order.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import wsanalyze
from tests.pcaptools import OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, ws_close_payload
from tests.rulecases import NEAR_MISSES, Session, _open, upgrade_response
from wsanalyze.analysis import AnalysisResult


def analysed(s: Session, tmp_path: Path) -> AnalysisResult:
    path = tmp_path / "case.pcap"
    s.conv.write(path)
    return wsanalyze.analyze(path)


def rows(r: AnalysisResult) -> list[tuple[str, str | None, int]]:
    v = r.violations
    return [(row.rule, row.direction, int(row.packet)) for row in v.itertuples()]


def test_unsolicited_pong_while_a_ping_is_pending(tmp_path: Path) -> None:
    # §5.5.3: "A Pong frame MAY be sent unsolicited."  The client sends a heartbeat
    # Pong while the server's Ping is pending, then the Pong that answers it.
    s = _open()
    s.send("s2c", s.frame("s2c", OP_PING, b"srv-9"))
    s.send("c2s", s.frame("c2s", OP_PONG, b"client-heartbeat"))
    s.send("c2s", s.frame("c2s", OP_PONG, b"srv-9"))
    s.close()
    r = analysed(s, tmp_path)
    assert rows(r) == []
    pongs = r.messages[r.messages["type"] == "pong"]
    assert [bytes(p) for p in pongs["payload"]] == [b"hb-1", b"client-heartbeat", b"srv-9"]


def test_pong_mismatch_only_when_the_ping_stays_unanswered(tmp_path: Path) -> None:
    # A non-matching Pong, and the Ping is never answered: the mismatch is reported
    # at the Pong's packet (and no ping.unanswered on top of it).
    s = _open()
    s.send("s2c", s.frame("s2c", OP_PING, b"srv-9"))
    wrong = s.send("c2s", s.frame("c2s", OP_PONG, b"srv-8"))[0]
    s.send("c2s", s.frame("c2s", OP_TEXT, b"more data"))
    s.close()
    r = analysed(s, tmp_path)
    assert rows(r) == [("pong.payload-mismatch", "c2s", wrong.last)]
    assert "0x7372762d38" in r.violations["message"].iloc[0]  # "srv-8"


def test_no_close_handshake_owed_after_a_failed_handshake(tmp_path: Path) -> None:
    # §4.1: a wrong Sec-WebSocket-Accept makes the client fail the connection
    # (§7.1.7: it may just close TCP).  No Close was owed.
    s = Session()
    wrong = base64.b64encode(hashlib.sha1(s.key.encode()).digest()).decode()
    _, resp = s.upgrade(response=upgrade_response(s.key, accept=wrong))
    s.send("s2c", s.frame("s2c", OP_TEXT, b"welcome"))
    s.conv.close("c2s")
    r = analysed(s, tmp_path)
    assert rows(r) == [("handshake.bad-accept", "s2c", resp[-1])]
    conn = r.connections.iloc[0]
    assert (conn["handshake"], conn["end"]) == ("invalid", "tcp-fin")


def test_a_close_that_fails_the_connection_owes_no_pong(tmp_path: Path) -> None:
    # The server fails the connection with 1009 (the client's Ping was too big for
    # it) and 1002: it owes no Pong for the Pings it received before.
    for code in (1009, 1002):
        s = _open()
        s.send("c2s", s.frame("c2s", OP_PING, b"x" * 120))
        s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(code, "no")))
        s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(code, "no")))
        s.conv.close("s2c")
        r = analysed(s, tmp_path)
        assert rows(r) == [], code
        assert int(r.connections["close_code"].iloc[0]) == code


def test_a_normal_close_still_owes_the_pong(tmp_path: Path) -> None:
    # §5.5.2: a Pong is owed "unless it already received a Close frame"; a server
    # that closes normally (1000) without answering broke it.
    s = _open()
    s.send("c2s", s.frame("c2s", OP_PING, b"hb-2"))
    s.send("s2c", s.frame("s2c", OP_CLOSE, ws_close_payload(1000, "bye")))
    s.send("c2s", s.frame("c2s", OP_CLOSE, ws_close_payload(1000, "bye")))
    fin = s.conv.close("s2c")
    r = analysed(s, tmp_path)
    assert rows(r) == [("ping.unanswered", "s2c", fin[1])]  # the second FIN ends it


def test_pong_answers_the_latest_ping_and_the_ones_before(tmp_path: Path) -> None:
    # Client Pings hb-10, hb-11, hb-12; the server answers only hb-12 (§5.5.3).
    # Violations and metrics apply the same rule: nothing is unanswered.
    case = NEAR_MISSES["pong-answers-latest-ping"]()
    path = tmp_path / "latest.pcap"
    case.write(path)
    r = wsanalyze.analyze(path)
    assert rows(r) == []
    m = r.messages
    pong = int(m[(m["type"] == "pong") & (m["direction"] == "s2c")]["index"].iloc[-1])
    pairs = r.ping_pairs[r.ping_pairs["direction"] == "c2s"]
    assert [int(i) for i in pairs["pong_index"]][-3:] == [pong, pong, pong]
    assert int(r.latency["pings_unanswered"].iloc[0]) == 0


def test_frames_table_in_wire_order_around_control_frames(tmp_path: Path) -> None:
    # A Ping and a Pong between the fragments of a client text message: the frames
    # table lists the client's frames as they were on the wire.
    s = _open()
    s.send("c2s", s.frame("c2s", OP_TEXT, b'{"batch": [1, ', fin=False))
    s.send("c2s", s.frame("c2s", OP_PING, b"hb-7"))
    s.send("c2s", s.frame("c2s", OP_CONT, b"2, 3", fin=False))
    s.send("s2c", s.frame("s2c", OP_PONG, b"hb-7"), s.frame("s2c", OP_PING, b"srv-1"))
    s.send("c2s", s.frame("c2s", OP_PONG, b"srv-1"))
    s.send("c2s", s.frame("c2s", OP_CONT, b"]}"))
    s.close()
    r = analysed(s, tmp_path)
    assert rows(r) == []
    f = r.frames[r.frames["direction"] == "c2s"]
    # warmup: subscribe text, ping hb-1; then the fragments and controls; then Close.
    assert list(f["opcode"]) == [OP_TEXT, OP_PING, OP_TEXT, OP_PING, OP_CONT, OP_PONG, OP_CONT,
                                 OP_CLOSE]
    assert list(f["index"]) == sorted(f["index"])
    text = r.messages[(r.messages["direction"] == "c2s") & (r.messages["type"] == "text")]
    assert bytes(text["payload"].iloc[-1]) == b'{"batch": [1, 2, 3]}'
    assert list(f["message"])[2:7] == [int(text["index"].iloc[-1]), *f["message"].iloc[3:4],
                                       int(text["index"].iloc[-1]), *f["message"].iloc[5:6],
                                       int(text["index"].iloc[-1])]
