"""Row order of OUTPUTS.md: connections by id (the order of their first packet),
whatever order they end in; violations by packet, whatever order they are found.

Connection 0 opens first and ends last; its Ping is known to be unanswered only
when it ends.  Connection 1 breaks a rule in between and ends first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import wsanalyze
from tests.pcaptools import OP_CLOSE, OP_PING, OP_TEXT, Conversation, write_conversations, ws_frame
from wsanalyze.output import ordering

MASK = b"\x0a\x0b\x0c\x0d"


def capture(path: Path) -> list[list[int]]:
    long = Conversation(client=("10.1.0.1", 41000), server=("10.1.0.2", 8765), t0=100.0)
    long.handshake()
    long.ws_upgrade()
    long.send("c2s", ws_frame(OP_PING, b"are you there", mask=MASK))
    long.wait(50.0)
    long.send("c2s", ws_frame(OP_TEXT, b"still here", mask=MASK))
    long.send("c2s", ws_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
    long.send("s2c", ws_frame(OP_CLOSE, b"\x03\xe8"))  # the Ping was never answered
    long.close()

    short = Conversation(client=("10.1.0.1", 41001), server=("10.1.0.2", 8765), t0=101.0)
    short.handshake()
    short.ws_upgrade()
    short.send("c2s", ws_frame(OP_TEXT, b"unmasked from a client"))  # frame.client-unmasked
    short.send("c2s", ws_frame(OP_CLOSE, b"\x03\xe8", mask=MASK))
    short.send("s2c", ws_frame(OP_CLOSE, b"\x03\xe8"))
    short.close()
    return write_conversations(path, [long, short])


def cli(*args: str) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "wsanalyze", *args, "-F", "jsonl", "-q"],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def cap(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[int]]]:
    path = tmp_path_factory.mktemp("order") / "order.pcap"
    return path, capture(path)


def test_connections_by_id_though_they_end_in_another_order(
        cap: tuple[Path, list[list[int]]]) -> None:
    path, _ = cap
    for jobs in ("1", "2"):
        rows = cli("connections", str(path), "--jobs", jobs)
        assert [r["connection"] for r in rows] == [0, 1]
        assert [r["client"] for r in rows] == ["10.1.0.1:41000", "10.1.0.1:41001"]
        # Connection 0 really ended last.
        assert rows[0]["ts_end"] > rows[1]["ts_end"]  # type: ignore[operator]


def test_violations_by_packet(cap: tuple[Path, list[list[int]]]) -> None:
    path, numbering = cap
    rows = cli("violations", str(path))
    rules = [(r["connection"], r["rule"], r["packet"]) for r in rows]
    # The unmasked frame (connection 1) at its packet; the Ping found unanswered
    # when connection 0 closed, at the packet of its closing frame, later.
    unmasked = next(r for r in rows if r["rule"] == "frame.client-unmasked")
    ping = next(r for r in rows if r["rule"] == "ping.unanswered")
    assert unmasked["connection"] == 1 and ping["connection"] == 0
    assert rows.index(unmasked) < rows.index(ping)
    assert ping["packet"] in numbering[0] and unmasked["packet"] in numbering[1]
    packets = [r["packet"] for r in rows]
    assert packets == sorted(packets)
    r = wsanalyze.analyze(path).violations
    assert list(zip(r["connection"], r["rule"], r["packet"], strict=True)) == rules


def test_rows_without_packet_follow_their_connection() -> None:
    rows = [{"connection": 0, "packet": 9, "n": 1}, {"connection": 1, "packet": None, "n": 2},
            {"connection": 1, "packet": 3, "n": 3}, {"connection": 0, "packet": 2, "n": 4},
            {"connection": 1, "packet": 7, "n": 5}]
    assert [r["n"] for r in ordering.in_packet_order(rows)] == [4, 3, 5, 2, 1]


def test_spilled_runs_merge_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordering, "RUN", 7)  # spill every 7 rows
    rows = [{"connection": i % 3, "packet": (i * 37) % 101, "n": i} for i in range(100)]
    got = list(ordering.in_packet_order(rows))
    assert [(r["packet"], r["n"]) for r in got] == sorted((r["packet"], r["n"]) for r in rows)


def test_every_rule_case_lists_violations_by_packet(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.rulecases import CASES
    from wsanalyze.cli import main

    checked = 0
    for i, build in enumerate(CASES.values()):
        path = tmp_path / f"{i}.pcap"
        build().write(path)
        assert main(["violations", str(path), "-F", "jsonl", "-q"]) == 0
        rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        for conn in {r["connection"] for r in rows}:
            mine = [r["packet"] for r in rows if r["connection"] == conn]
            known = [p for p in mine if p is not None]
            # Rows without a packet come after their connection's others.
            assert mine == known + [None] * (len(mine) - len(known))
        packets = [r["packet"] for r in rows if r["packet"] is not None]
        assert packets == sorted(packets), path
        # Texts name the capture's packet, never a frames-table index as "frame N".
        assert not any("(frame " in r["message"] for r in rows)
        checked += len(rows)
    assert checked > len(CASES)
