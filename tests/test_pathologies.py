"""TCP pathologies and capture setups, made by transforming the real samples.

The expectations are the samples' ground truth (what the applications logged
sending, tests/truth.py) and metadata, not a decode of the untouched sample; that
decode only locates packets and frames to damage.  Transforms that lose nothing
(reordering, duplicates, overlaps, tiny segments, other link layers, IPv6, pcapng,
gzip) must give exactly the messages sent and no error or warning rows; transforms
that lose bytes must lose only the messages they touch and say where.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import wsanalyze
from tests import pcaptools as pt
from tests.truth import decoded_rows, expected_pongs, port, truth_rows

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ALL = ["websockets-deflate.pcap", "websockets-nocontext.pcap", "aiohttp-plain.pcap",
       "node-ws-fragments.pcap", "ipv6-sll2.pcap", "mixed.pcapng"]
PLAIN = ["aiohttp-plain.pcap", "ipv6-sll2.pcap"]
_reference: dict[str, wsanalyze.AnalysisResult] = {}


def reference(name: str) -> wsanalyze.AnalysisResult:
    if name not in _reference:
        _reference[name] = wsanalyze.analyze(SAMPLES / name)
    return _reference[name]


def _meta(name: str) -> list[dict]:
    """The sample's connections as tools/make_samples.py recorded them."""
    path = SAMPLES / (name.rsplit(".", 1)[0] + ".meta.json")
    return json.loads(path.read_text())["connections"]


def no_problems(result: wsanalyze.AnalysisResult) -> None:
    bad = result.violations[result.violations["severity"] != "info"]
    assert bad.empty, bad[["rule", "message"]].to_string()


LOSSLESS = {
    "reorder": lambda s, d: pt.reorder(s, d, seed=1, window=3),
    "duplicate": lambda s, d: pt.duplicate(s, d, seed=2, fraction=0.3),
    "overlap": lambda s, d: pt.overlap(s, d, seed=3, fraction=0.3),
    "tiny-segments": lambda s, d: pt.resegment(s, d, sizes=range(1, 8), seed=4),
    "ipv6": lambda s, d: pt.to_ipv6(s, d),
    "sll": lambda s, d: pt.to_link(s, d, "sll"),
    "sll2": lambda s, d: pt.to_link(s, d, "sll2"),
    "null": lambda s, d: pt.to_link(s, d, "null"),
    "raw": lambda s, d: pt.to_link(s, d, "raw"),
    "qinq": lambda s, d: pt.to_link(s, d, "ethernet+qinq"),
    "pcapng-2-interfaces": lambda s, d: pt.to_pcapng(s, d, split_interfaces=True),
    "pcap-ns": lambda s, d: pt.to_pcap(s, d, nanosecond=True),
    "gzip": lambda s, d: pt.to_gzip(s, d),
}


@pytest.mark.parametrize("transform", sorted(LOSSLESS))
@pytest.mark.parametrize("name", ALL)
def test_lossless_transforms_change_nothing(name: str, transform: str,
                                            tmp_path: Path) -> None:
    out = tmp_path / (name + ".out")
    report = LOSSLESS[transform](SAMPLES / name, out)
    got = wsanalyze.analyze(out)
    rows, pongs = decoded_rows(got.messages)
    assert rows == truth_rows(SAMPLES / name)
    assert pongs == expected_pongs(SAMPLES / name)
    assert got.messages["complete"].all() and got.messages["error"].isna().all()
    frames = Counter(got.frames["client"].map(port))
    assert frames == {c["client_port"]: c["expected_ws_frames"] for c in _meta(name)}
    no_problems(got)
    assert "capture.gap" not in set(got.violations["rule"])
    if transform == "duplicate":
        assert report.inserted  # the transform really did something
    if transform == "tiny-segments":
        # Packet numbers follow the new capture: the last piece of each message.
        original = len(pt.read_capture(SAMPLES / name).records)
        assert got.messages["packet"].max() > original * 3
    if transform in ("ipv6",):
        assert got.connections["client"].str.startswith("[").all()


def test_reordered_messages_keep_their_packet_numbers(tmp_path: Path) -> None:
    name = "aiohttp-plain.pcap"
    out = tmp_path / "r.pcap"
    report = pt.reorder(SAMPLES / name, out, seed=5, window=2)
    assert report.swapped
    got = wsanalyze.analyze(out).messages
    ref = reference(name).messages
    # A message's packet is the one carrying its last byte, renumbered.
    moved = {a for pair in report.swapped for a in pair}
    checked = 0
    for conn, direction in {(r.connection, r.direction) for r in ref.itertuples()}:
        def rows(df: pd.DataFrame, c: int = conn, d: str = direction) -> list:
            return list(df[(df["connection"] == c) & (df["direction"] == d)].itertuples())
        for g, r in zip(rows(got), rows(ref), strict=True):
            assert g.payload == r.payload
            if r.packet not in moved:
                assert g.packet == report.new(r.packet)
                checked += 1
    assert checked > len(ref) // 2


def _touching(messages: pd.DataFrame, frames: pd.DataFrame, packet: int) -> set[tuple]:
    """(connection, index) of messages with a frame starting at or spanning ``packet``."""
    out = set()
    for m in messages.itertuples():
        fr = frames[(frames["connection"] == m.connection) & (frames["message"] == m.index)]
        first = int(fr["packet"].min()) if len(fr) else m.packet
        if first <= packet <= m.packet:
            out.add((m.connection, m.index))
    return out


@pytest.mark.parametrize("name", [*PLAIN, "node-ws-fragments.pcap"])
def test_dropped_segment_loses_only_what_it_touched(name: str, tmp_path: Path) -> None:
    ref = reference(name)
    segs = [s for s in pt.tcp_segments(SAMPLES / name) if s.payload_len > 0]
    # A data segment in the middle of the WebSocket traffic, inside a big message.
    big = ref.messages[ref.messages["wire_bytes"] > 3000]
    victim_msg = big.iloc[len(big) // 2]
    victim = next(s.number for s in segs if s.number == int(victim_msg["packet"]) - 1) \
        if any(s.number == int(victim_msg["packet"]) - 1 for s in segs) else \
        int(victim_msg["packet"])
    out = tmp_path / "drop.pcap"
    report = pt.drop_packets(SAMPLES / name, out, [victim])
    got = wsanalyze.analyze(out)
    touched = _touching(ref.messages, ref.frames, victim)
    assert touched
    got_rows = {(r.connection, r.direction, r.type, r.payload) for r in
                got.messages[got.messages["complete"]].itertuples()}
    for r in ref.messages.itertuples():
        if (r.connection, r.index) not in touched:
            assert (r.connection, r.direction, r.type, r.payload) in got_rows, r.index
    incomplete = got.messages[~got.messages["complete"]]
    assert 1 <= len(incomplete) <= len(touched)
    span = report.removed_spans[0]
    gaps = got.violations[got.violations["rule"] == "capture.gap"]
    assert len(gaps) == 1
    # The gap is reported at the first packet after the hole in that direction.
    after = min(s.number for s in segs if s.stream == span.stream and
                s.direction == span.direction and s.offset >= span.end)
    assert int(gaps.iloc[0]["packet"]) == report.new(after)
    assert f"{span.end - span.start} bytes" in gaps.iloc[0]["message"]
    no_problems(got)


def test_dropped_segment_with_deflate_never_yields_wrong_bytes(tmp_path: Path) -> None:
    name = "websockets-deflate.pcap"
    sent = {(p, d, kind, payload) for (p, d), rows in truth_rows(SAMPLES / name).items()
            for kind, payload in rows}
    sent |= {(p, d, "pong", payload) for p, d, payload in expected_pongs(SAMPLES / name)}
    total = sum(map(len, truth_rows(SAMPLES / name).values()))
    segs = [s for s in pt.tcp_segments(SAMPLES / name) if s.payload_len > 0]
    for victim in (segs[len(segs) // 3].number, segs[len(segs) // 2].number):
        out = tmp_path / f"drop{victim}.pcap"
        pt.drop_packets(SAMPLES / name, out, [victim])
        got = wsanalyze.analyze(out)
        ok = got.messages[got.messages["complete"] & got.messages["error"].isna()]
        # Whatever is decoded is exactly what was sent; the rest is marked.
        for r in ok.itertuples():
            assert (port(r.client), r.direction, r.type, r.payload) in sent
        assert len(ok) >= total // 2
        errors = set(got.messages["error"].dropna())
        assert errors <= {"capture.undecodable"}
        no_problems(got)


@pytest.mark.parametrize("name", [*PLAIN, "node-ws-fragments.pcap", "websockets-deflate.pcap"])
def test_capture_starting_mid_stream(name: str, tmp_path: Path) -> None:
    ref = reference(name)
    msgs = ref.messages
    conn0 = msgs[msgs["connection"] == 0]
    # Start the capture at a packet in the middle of the first connection's traffic.
    start = int(conn0.iloc[len(conn0) // 2]["packet"]) - 1
    out = tmp_path / "mid.pcap"
    report = pt.cut_start(SAMPLES / name, out, start)
    got = wsanalyze.analyze(out)
    rows = got.violations
    assert "capture.mid-stream" in set(rows["rule"])
    no_problems(got)
    g0 = got.messages[got.messages["client"] == conn0.iloc[0]["client"]]
    ok = g0[g0["error"].isna() & g0["complete"]]
    sent = truth_rows(SAMPLES / name)
    client = port(conn0.iloc[0]["client"])
    ref_rows = [(d, kind, payload) for d in ("c2s", "s2c")
                for kind, payload in sent.get((client, d), [])]
    got_rows = [(r.direction, r.type, r.payload) for r in ok.itertuples() if r.type != "pong"]
    # Decoded from the first whole frame on: what is decoded is exactly what was
    # sent, in order (a subsequence: a message whose start was not captured is
    # incomplete), and (without deflate history) nothing after the start is lost.
    for d in ("c2s", "s2c"):
        want = [x for x in ref_rows if x[0] == d]
        have = [x for x in got_rows if x[0] == d]
        remaining = iter(want)
        assert all(any(x == w for w in remaining) for x in have), d
        assert have
        if name != "websockets-deflate.pcap":
            after = [m for m in conn0.itertuples() if m.direction == d and m.type != "pong" and
                     report.mapping.get(int(m.packet)) and
                     _first_packet(ref.frames, m) >= start]
            assert len(have) >= len(after)
    assert got.connections.iloc[0]["handshake"] == "not-captured"


def _first_packet(frames: pd.DataFrame, m: object) -> int:
    fr = frames[(frames["connection"] == m.connection) & (frames["message"] == m.index)]
    return int(fr["packet"].min())


def test_snaplen_truncation(tmp_path: Path) -> None:
    name = "aiohttp-plain.pcap"
    out = tmp_path / "snap.pcap"
    report = pt.snaplen(SAMPLES / name, out, 400)
    assert report.truncated
    got = wsanalyze.analyze(out)
    truncated = got.violations[got.violations["rule"] == "capture.truncated"]
    assert set(truncated["packet"]) <= set(report.truncated)
    assert len(truncated) >= 1
    # Messages that fit in their packets are intact; the others are incomplete
    # with the bytes before the cut.
    truth = truth_rows(SAMPLES / name)
    checked = 0
    for (p, d), want in truth.items():
        mine = got.messages[(got.messages["client"].map(port) == p)
                            & (got.messages["direction"] == d)
                            & (got.messages["type"] != "pong")]
        assert len(mine) == len(want), (p, d)
        for r, (kind, payload) in zip(mine.itertuples(), want, strict=True):
            assert r.type == kind
            if r.complete:
                assert r.payload == payload
                checked += 1
            else:
                assert payload.startswith(r.payload) and len(r.payload) < len(payload)
    assert checked >= 10
    incomplete = got.messages[~got.messages["complete"]]
    assert len(incomplete) >= 1
    for r in incomplete.itertuples():
        assert r.truncated
    no_problems(got)
