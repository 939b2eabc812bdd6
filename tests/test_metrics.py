"""Compression and latency metrics on crafted captures whose truth is known by
construction: message times, ids and payload sizes are chosen by the test."""

from __future__ import annotations

import itertools
import json
import random
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pcaptools import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Conversation,
    deflate_message,
    write_conversations,
    ws_close_payload,
    ws_frame,
)
from wsanalyze.analysis import AnalysisResult, analyze
from wsanalyze.metrics import (
    DeflateParams,
    compression_table,
    idle_gaps,
    latency_table,
    message_compression,
    parse_deflate_params,
    ping_pairs,
    request_pairs,
)

T0 = 1_700_000_000.0
EPS = 3e-6  # pcap timestamps have microsecond resolution


class Timed:
    """One crafted WebSocket connection whose messages are sent at chosen times
    (seconds after the first SYN)."""

    def __init__(self, port: int = 50000, *, request_ext: str | None = None,
                 response_ext: str | None = None, protocol: str | None = None,
                 handshake_dt: float = 0.001) -> None:
        self.conv = Conversation(client=("127.0.0.1", port), t0=T0)
        self.conv.handshake(dt=handshake_dt)
        self.conv.ws_upgrade(extensions=request_ext, response_extensions=response_ext,
                             protocols=protocol, protocol=protocol)
        self._masks = (bytes([7, 3, i % 256, 1]) for i in itertools.count(1))

    def at(self, t: float) -> None:
        delay = T0 + t - self.conv.now
        assert delay >= 0, f"t={t} is in the past"
        self.conv.wait(delay)

    def send(self, t: float, direction: str, opcode: int, payload: bytes, *,
             rsv1: bool = False, segments: list[int] | None = None, dt: float = 0.001) -> None:
        self.at(t)
        mask = next(self._masks) if direction == "c2s" else None
        frame = ws_frame(opcode, payload, mask=mask, rsv1=rsv1)
        if segments is not None:
            segments = [*segments[:-1], len(frame) - sum(segments[:-1])]
        self.conv.send(direction, frame, segments=segments, dt=dt)

    def text(self, t: float, direction: str, obj: object) -> None:
        payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send(t, direction, OP_TEXT, payload)

    def close(self, t: float) -> None:
        self.send(t, "c2s", OP_CLOSE, ws_close_payload(1000))
        self.send(t + 0.010, "s2c", OP_CLOSE, ws_close_payload(1000))
        self.conv.close("s2c")


def analysed(tmp_path: Path, *timed: Timed, **kwargs: object) -> AnalysisResult:
    path = tmp_path / "crafted.pcap"
    write_conversations(path, [t.conv for t in timed])
    return analyze(path, **kwargs)  # type: ignore[arg-type]


def _in_seconds(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with timestamps as float epoch seconds and durations as float seconds
    (the DataFrames type them; these tests compare against known float times)."""
    out = df.copy()
    for name in out.columns:
        if isinstance(out[name].dtype, pd.DatetimeTZDtype):
            out[name] = (out[name] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        elif pd.api.types.is_timedelta64_dtype(out[name].dtype):
            out[name] = out[name].dt.total_seconds()
    return out


def wire_deflate_size(payloads: list[bytes], *, takeover: bool) -> list[int]:
    """What the test expects a permessage-deflate sender to produce, computed here with
    zlib directly: raw DEFLATE, level 6, 32 KiB window, sync flush, tail removed."""
    sizes = []
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    for p in payloads:
        if not takeover:
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = comp.compress(p) + comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        sizes.append(len(out) - 4)
    return sizes


# ---------------------------------------------------------------------------------------
# ping → pong
# ---------------------------------------------------------------------------------------


def test_ping_rtt_from_known_times(tmp_path: Path) -> None:
    t = Timed()
    t.send(1.000, "c2s", OP_PING, b"one")
    t.send(1.250, "s2c", OP_PONG, b"one")           # RTT 0.250
    t.send(2.000, "s2c", OP_PING, b"srv")
    t.send(2.100, "c2s", OP_PONG, b"srv")           # RTT 0.100 (server-initiated)
    t.send(3.000, "c2s", OP_PING, b"a")
    t.send(3.010, "c2s", OP_PING, b"b")
    t.send(3.500, "s2c", OP_PONG, b"b")             # answers "b", and "a" before it (§5.5.3)
    t.send(3.600, "s2c", OP_PONG, b"stray")         # unsolicited: not listed
    t.close(4.0)
    r = analysed(tmp_path, t)

    pings = ping_pairs(r)
    assert list(pings["direction"]) == ["c2s", "s2c", "c2s", "c2s"]
    pings["rtt"] = pings["rtt"].dt.total_seconds()  # durations are timedelta64
    assert pings["rtt"].iloc[0] == pytest.approx(0.250, abs=EPS)
    assert pings["rtt"].iloc[1] == pytest.approx(0.100, abs=EPS)
    # One Pong may answer only the most recently processed Ping (RFC 6455 §5.5.3):
    # Pong "b" answers Ping "b" and, with it, the older Ping "a" (the decoder's
    # rule too: no ping.unanswered for "a").
    assert pings["rtt"].iloc[2] == pytest.approx(0.500, abs=EPS)
    assert pings["pong_index"].iloc[2] == pings["pong_index"].iloc[3]
    assert pings["rtt"].iloc[3] == pytest.approx(0.490, abs=EPS)
    assert list(pings["payload_length"]) == [3, 3, 1, 1]
    assert "ping.unanswered" not in set(r.violations["rule"])

    row = _in_seconds(latency_table(r)).iloc[0]
    assert row["ping_rtt_count"] == 4
    assert row["pings_unanswered"] == 0
    assert row["ping_rtt_p50"] == pytest.approx(0.370, abs=EPS)
    assert row["ping_rtt_max"] == pytest.approx(0.500, abs=EPS)
    expected = np.percentile([0.25, 0.1, 0.5, 0.49], [90, 99])
    assert row["ping_rtt_p90"] == pytest.approx(expected[0], abs=EPS)
    assert row["ping_rtt_p99"] == pytest.approx(expected[1], abs=EPS)


# ---------------------------------------------------------------------------------------
# request → response
# ---------------------------------------------------------------------------------------


def test_json_rpc_pairs_by_id(tmp_path: Path) -> None:
    t = Timed(protocol="jsonrpc")
    t.text(0.100, "c2s", {"jsonrpc": "2.0", "id": 1, "method": "a"})
    t.text(0.150, "c2s", {"jsonrpc": "2.0", "id": "x", "method": "b"})
    t.text(0.160, "s2c", {"jsonrpc": "2.0", "method": "notify", "params": [1]})  # no id
    t.text(0.200, "s2c", {"jsonrpc": "2.0", "id": "x", "result": True})          # 0.050
    t.text(0.400, "s2c", {"jsonrpc": "2.0", "id": 1, "error": {"code": -1}})     # 0.300
    t.text(0.500, "s2c", {"jsonrpc": "2.0", "id": 7, "method": "srv.ask"})       # s2c request
    t.text(0.520, "c2s", {"jsonrpc": "2.0", "id": 7, "result": "ok"})            # 0.020
    t.text(0.600, "c2s", {"jsonrpc": "2.0", "id": 9, "method": "never"})         # unanswered
    t.close(1.0)
    r = analysed(tmp_path, t)

    pairs = _in_seconds(request_pairs(r))
    assert set(pairs["method"]) == {"json-rpc"}
    got = {(k, d): lat for k, d, lat in zip(pairs["key"], pairs["request_direction"],
                                            pairs["latency"], strict=True)}
    assert got.keys() == {("1", "c2s"), ('"x"', "c2s"), ("7", "s2c")}
    assert got[("1", "c2s")] == pytest.approx(0.300, abs=EPS)
    assert got[('"x"', "c2s")] == pytest.approx(0.050, abs=EPS)
    assert got[("7", "s2c")] == pytest.approx(0.020, abs=EPS)

    row = _in_seconds(latency_table(r)).iloc[0]
    assert row["request_method"] == "json-rpc"
    assert row["request_latency_count"] == 3
    assert row["request_latency_p50"] == pytest.approx(0.050, abs=EPS)
    assert row["request_latency_max"] == pytest.approx(0.300, abs=EPS)
    p90 = np.percentile([0.3, 0.05, 0.02], 90)
    assert row["request_latency_p90"] == pytest.approx(p90, abs=EPS)


@pytest.mark.parametrize("protocol, start, reply", [
    ("graphql-transport-ws", "subscribe", "next"),
    ("graphql-ws", "start", "data"),
])
def test_graphql_ws_pairs_by_id(tmp_path: Path, protocol: str, start: str, reply: str) -> None:
    t = Timed(protocol=protocol)
    t.text(0.100, "c2s", {"type": "connection_init", "payload": {}})
    t.text(0.110, "s2c", {"type": "connection_ack"})                              # 0.010
    t.text(0.200, "c2s", {"type": start, "id": "a", "payload": {"query": "{a}"}})
    t.text(0.300, "c2s", {"type": start, "id": "b", "payload": {"query": "{b}"}})
    t.text(0.330, "s2c", {"type": reply, "id": "b", "payload": {"data": {}}})     # 0.030
    t.text(0.350, "s2c", {"type": reply, "id": "a", "payload": {"data": {}}})     # 0.150
    t.text(0.500, "s2c", {"type": reply, "id": "a", "payload": {"data": {}}})     # stream
    t.text(0.600, "s2c", {"type": "complete", "id": "a"})
    t.close(1.0)
    r = analysed(tmp_path, t)

    pairs = _in_seconds(request_pairs(r))
    assert set(pairs["method"]) == {"graphql-ws"}
    got = dict(zip(pairs["key"], pairs["latency"], strict=True))
    assert got.keys() == {"connection_init", '"a"', '"b"'}
    assert got["connection_init"] == pytest.approx(0.010, abs=EPS)
    assert got['"a"'] == pytest.approx(0.150, abs=EPS)
    assert got['"b"'] == pytest.approx(0.030, abs=EPS)


def test_user_key_function(tmp_path: Path) -> None:
    t = Timed()
    t.send(0.100, "c2s", OP_BINARY, b"Q\x00\x05hello")
    t.send(0.200, "c2s", OP_BINARY, b"Q\x00\x06world")
    t.send(0.260, "s2c", OP_BINARY, b"A\x00\x06ok")       # answers 6: 0.060
    t.send(0.500, "s2c", OP_BINARY, b"A\x00\x05ok")       # answers 5: 0.400
    t.close(1.0)
    r = analysed(tmp_path, t)

    def key(row: pd.Series) -> int | None:
        p = row["payload"]
        return int.from_bytes(p[1:3], "big") if p[:1] in (b"Q", b"A") else None

    pairs = _in_seconds(request_pairs(r, key=key))
    assert list(pairs["method"]) == ["key", "key"]
    got = dict(zip(pairs["key"], pairs["latency"], strict=True))
    assert got["5"] == pytest.approx(0.400, abs=EPS)
    assert got["6"] == pytest.approx(0.060, abs=EPS)
    assert latency_table(r, key=key).iloc[0]["request_method"] == "key"
    # Without the key nothing identifies them: lockstep next-message pairing.
    fallback = _in_seconds(request_pairs(r))
    assert list(fallback["method"]) == ["next-message"]
    assert fallback["latency"].iloc[0] == pytest.approx(0.060, abs=EPS)


def test_next_message_fallback(tmp_path: Path) -> None:
    t = Timed()
    t.text(0.100, "c2s", b"hello")
    t.text(0.300, "s2c", b"hi")                  # 0.100 -> 0.300
    t.text(0.350, "s2c", b"also")                # no request left
    t.text(1.000, "c2s", b"one")
    t.text(1.100, "c2s", b"two")                 # the burst pairs its last message
    t.text(1.500, "s2c", b"answer")              # 1.100 -> 1.500
    t.send(1.600, "c2s", OP_PING, b"p")          # control frames do not count
    t.send(1.700, "s2c", OP_PONG, b"p")
    t.close(2.0)
    r = analysed(tmp_path, t)
    pairs = _in_seconds(request_pairs(r))
    assert list(pairs["method"]) == ["next-message"] * 2
    assert pairs["latency"].tolist() == pytest.approx([0.2, 0.4], abs=EPS)
    assert pairs["latency_first_byte"].tolist() == pytest.approx([0.2, 0.4], abs=EPS)


# ---------------------------------------------------------------------------------------
# connect / handshake / transfer / idle
# ---------------------------------------------------------------------------------------


def test_connect_handshake_transfer_and_idle(tmp_path: Path) -> None:
    t = Timed(handshake_dt=0.010)
    # A 3000-byte message in two segments 0.050 s apart: transfer time 0.050.
    t.send(1.000, "s2c", OP_BINARY, bytes(3000), segments=[1000, 2000], dt=0.050)
    t.text(4.000, "c2s", b"after a long pause")
    t.close(4.5)
    r = analysed(tmp_path, t)
    row = _in_seconds(latency_table(r)).iloc[0]
    conn = _in_seconds(r.connections).iloc[0]
    assert row["tcp_connect_rtt"] == conn["tcp_connect_rtt"]
    assert row["handshake_rtt"] == conn["handshake_rtt"]
    assert row["tcp_connect_rtt"] > 0 and row["handshake_rtt"] > 0
    assert row["transfer_max"] == pytest.approx(0.050, abs=EPS)
    assert row["transfer_count"] == 2

    gaps = _in_seconds(idle_gaps(r))
    big = gaps.loc[gaps["gap"].idxmax()]
    last = _in_seconds(r.messages).loc[r.messages["index"] == big["before_index"], "ts"].iloc[0]
    assert big["gap"] == pytest.approx(T0 + 4.000 - last, abs=EPS)
    assert row["idle_gap_max"] == pytest.approx(big["gap"], abs=EPS)
    assert row["idle_gap_count"] == len(r.messages) - 1


# ---------------------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------------------


def _doc(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "price", "order", "status", "ok"]
    return json.dumps([{"k": rng.choice(words), "v": rng.randrange(100)} for _ in range(n)]
                      ).encode()


def test_compression_of_known_payloads(tmp_path: Path) -> None:
    ext = ("permessage-deflate; server_no_context_takeover; server_max_window_bits=10; "
           "client_max_window_bits=12")
    t = Timed(request_ext="permessage-deflate; client_max_window_bits", response_ext=ext)
    c2s = [_doc(1, 80), _doc(2, 80), random.Random(3).randbytes(400)]   # last one grows
    s2c = [_doc(4, 120), _doc(5, 10)]
    c2s_wire = deflate_message(c2s, context_takeover=True, wbits=12)
    s2c_wire = deflate_message(s2c, context_takeover=False, wbits=10)
    assert len(c2s_wire[2]) > len(c2s[2])
    t.send(0.1, "c2s", OP_TEXT, c2s_wire[0], rsv1=True)
    t.send(0.2, "s2c", OP_TEXT, s2c_wire[0], rsv1=True)
    t.send(0.3, "c2s", OP_TEXT, c2s_wire[1], rsv1=True)
    t.send(0.4, "c2s", OP_BINARY, c2s_wire[2], rsv1=True)
    t.send(0.5, "s2c", OP_TEXT, s2c_wire[1], rsv1=True)
    plain = b"sent without RSV1"
    t.send(0.6, "s2c", OP_TEXT, plain)
    t.close(1.0)
    r = analysed(tmp_path, t)

    table = compression_table(r).set_index("direction")
    a = table.loc["c2s"]
    assert a["deflate"]
    assert a["messages"] == 3 and a["compressed_messages"] == 3
    assert a["compressed_share"] == 1.0
    assert a["payload_bytes"] == sum(map(len, c2s_wire))
    assert a["inflated_bytes"] == sum(map(len, c2s))
    assert a["ratio"] == pytest.approx(sum(map(len, c2s_wire)) / sum(map(len, c2s)))
    assert a["saved_bytes"] == sum(map(len, c2s)) - sum(map(len, c2s_wire))
    assert a["grew_messages"] == 1
    assert a["grew_bytes"] == len(c2s_wire[2]) - len(c2s[2])
    assert (a["window_bits"], a["window_bytes"], a["context_takeover"]) == (12, 4096, True)
    assert pd.isna(a["estimate_bytes_takeover"])  # only for uncompressed connections

    b = table.loc["s2c"]
    assert b["messages"] == 3 and b["compressed_messages"] == 2
    assert b["compressed_share"] == pytest.approx(2 / 3)
    assert b["payload_bytes"] == sum(map(len, s2c_wire)) + len(plain)
    assert b["inflated_bytes"] == sum(map(len, s2c)) + len(plain)
    assert b["grew_messages"] == 0
    assert (b["window_bits"], b["window_bytes"], b["context_takeover"]) == (10, 1024, False)

    per = message_compression(r)
    assert per.index.equals(r.messages.index)
    # analyze() already joins these columns to messages; they agree with the function.
    m = r.messages
    pd.testing.assert_frame_equal(m[list(per.columns)], per)
    data = m[m["type"].isin(["text", "binary"])]
    first = data.iloc[0]
    assert first["compression_ratio"] == pytest.approx(len(c2s_wire[0]) / len(c2s[0]))
    assert first["compression_saved"] == len(c2s[0]) - len(c2s_wire[0])
    assert list(data["compression_grew"]) == [False, False, False, True, False, False]
    last = data.iloc[-1]
    assert np.isnan(last["compression_ratio"]) and last["compression_saved"] == 0
    assert m.loc[m["type"] == "close", "compression_ratio"].isna().all()

    # estimate="all" recompresses the inflated payloads, labelled as estimates.
    everything = compression_table(r, estimate="all").set_index("direction")
    assert everything.loc["c2s", "estimate_bytes_takeover"] == sum(
        wire_deflate_size(c2s, takeover=True))


def test_estimate_for_uncompressed_connection(tmp_path: Path) -> None:
    t = Timed()
    c2s = [_doc(10, 50), _doc(10, 50), b"", _doc(11, 5)]
    s2c = [_doc(12, 200), random.Random(13).randbytes(300)]
    for i, p in enumerate(c2s):
        t.send(0.1 + i * 0.1, "c2s", OP_TEXT, p)
        if i < len(s2c):
            t.send(0.15 + i * 0.1, "s2c", OP_BINARY, s2c[i])
    t.close(1.0)
    r = analysed(tmp_path, t)

    table = compression_table(r).set_index("direction")
    for direction, payloads in (("c2s", c2s), ("s2c", s2c)):
        row = table.loc[direction]
        inflated = sum(map(len, payloads))
        assert not row["deflate"]
        assert row["compressed_messages"] == 0
        assert row["ratio"] == 1.0 and row["saved_bytes"] == 0
        assert pd.isna(row["window_bits"]) and pd.isna(row["context_takeover"])
        with_ctx = sum(wire_deflate_size(payloads, takeover=True))
        alone = sum(wire_deflate_size(payloads, takeover=False))
        assert row["estimate_bytes_takeover"] == with_ctx
        assert row["estimate_bytes_no_takeover"] == alone
        assert row["estimate_saved_takeover"] == inflated - with_ctx
        assert row["estimate_saved_no_takeover"] == inflated - alone
        assert row["estimate_ratio_takeover"] == pytest.approx(with_ctx / inflated)
    # The repeated document costs almost nothing with context takeover.
    assert table.loc["c2s", "estimate_bytes_takeover"] < table.loc["c2s",
                                                                 "estimate_bytes_no_takeover"]

    per = message_compression(r, estimate=True)
    data = r.messages.drop(columns=["compression_ratio", "compression_saved",
                                    "compression_grew"]).join(per)
    data = data[data["direction"] == "c2s"]
    data = data[data["type"] == "text"]
    assert list(data["estimate_bytes_no_takeover"]) == wire_deflate_size(c2s, takeover=False)
    assert list(data["estimate_bytes_takeover"]) == wire_deflate_size(c2s, takeover=True)

    # Without whole payloads there is nothing to compress: no estimate, no guess.
    preview = analyze(tmp_path / "crafted.pcap", payloads="preview", preview_bytes=8)
    assert compression_table(preview)["estimate_bytes_takeover"].isna().all()
    assert compression_table(r, estimate="none")["estimate_bytes_takeover"].isna().all()


@pytest.mark.parametrize("header, expected", [
    (None, None),
    ("x-webkit-deflate-frame", None),
    ("permessage-deflate", DeflateParams()),
    ("permessage-deflate; client_max_window_bits=9; server_no_context_takeover",
     DeflateParams(server_no_context_takeover=True, client_max_window_bits=9)),
    ('foo; bar=1, permessage-deflate; server_max_window_bits="10"; client_no_context_takeover',
     DeflateParams(client_no_context_takeover=True, server_max_window_bits=10)),
    ("Permessage-Deflate; Client_Max_Window_Bits", DeflateParams()),
])
def test_parse_deflate_params(header: str | None, expected: DeflateParams | None) -> None:
    assert parse_deflate_params(header) == expected


def test_deflate_params_per_direction() -> None:
    p = DeflateParams(server_no_context_takeover=True, client_max_window_bits=9)
    assert (p.window_bits("c2s"), p.context_takeover("c2s")) == (9, True)
    assert (p.window_bits("s2c"), p.context_takeover("s2c")) == (15, False)


# ---------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------


METRICS: dict[str, Callable[[AnalysisResult], pd.DataFrame]] = {
    "compression_table": compression_table,
    "message_compression": message_compression,
    "latency_table": latency_table,
    "ping_pairs": ping_pairs,
    "request_pairs": request_pairs,
    "idle_gaps": idle_gaps,
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_of_a_capture_without_websocket(tmp_path: Path, name: str) -> None:
    conv = Conversation(t0=T0)
    conv.handshake()
    conv.send("c2s", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    conv.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    conv.close()
    conv.write(tmp_path / "plain.pcap")
    r = analyze(tmp_path / "plain.pcap")
    assert r.connections.empty
    df = METRICS[name](r)
    assert isinstance(df, pd.DataFrame) and df.empty and len(df.columns) > 0


def test_metrics_on_real_samples() -> None:
    samples = Path(__file__).resolve().parent.parent / "samples"
    r = analyze(samples / "websockets-nocontext.pcap")
    table = compression_table(r)
    assert len(table) == 2 * len(r.connections)
    assert (table["window_bits"].tolist()) == [9, 10, 9, 10]
    assert not table["context_takeover"].any()
    assert (table["ratio"] < 1).all()
    lat = latency_table(r)
    assert list(lat["connection"]) == list(r.connections["connection"])
    assert (lat["ping_rtt_count"] == 2).all() and (lat["pings_unanswered"] == 0).all()


def test_undecodable_message_left_out_of_byte_sums(tmp_path: Path) -> None:
    t = Timed(request_ext="permessage-deflate", response_ext="permessage-deflate")
    good = [b"hello hello hello hello"]
    t.send(0.1, "s2c", OP_TEXT, deflate_message(good)[0], rsv1=True)
    t.send(0.2, "c2s", OP_TEXT, b"\xff\xfe\xfd not deflate", rsv1=True)
    t.close(1.0)
    r = analysed(tmp_path, t)
    assert r.messages["error"].notna().sum() == 1
    table = compression_table(r, estimate="all").set_index("direction")
    assert table.loc["c2s", "undecodable_messages"] == 1
    assert table.loc["c2s", "inflated_bytes"] == 0
    assert pd.isna(table.loc["c2s", "estimate_bytes_takeover"])
    assert table.loc["s2c", "inflated_bytes"] == len(good[0])
    per = r.messages
    bad = per[per["error"].notna()].iloc[0]
    assert pd.isna(bad["compression_saved"]) and np.isnan(bad["compression_ratio"])
    assert not bad["compression_grew"]
