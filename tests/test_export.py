"""``wsanalyze export``: the packets of chosen connections as a standalone pcapng,
re-read by tshark (same packets, bytes and timestamps as the chosen streams of the
original) and by wsanalyze (same messages as in the full capture)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import wsanalyze
from tests.pcaptools import write_conversations
from tests.reportcaptures import WS_T0, clean_session
from tests.rulecases import CASES
from wsanalyze.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def tshark_packets(path: Path, display_filter: str | None = None) -> list[tuple[str, ...]]:
    """(epoch time, captured length, frame bytes) of every packet tshark shows."""
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e",
           "frame.cap_len", "-e", "frame.len", "-e", "tcp.srcport", "-e", "tcp.dstport"]
    if display_filter:
        cmd[3:3] = ["-Y", display_filter]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()]


def raw_frames(path: Path, display_filter: str | None = None) -> list[str]:
    cmd = ["tshark", "-r", str(path), "-T", "json", "-x"]
    if display_filter:
        cmd[3:3] = ["-Y", display_filter]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return [p["_source"]["layers"]["frame_raw"][0] for p in out]


def messages(result: wsanalyze.AnalysisResult, connection: int) -> list[tuple]:
    m = result.messages[result.messages["connection"] == connection]
    return [(r.direction, r.type, bytes(r.payload)) for r in m.itertuples()]


@pytest.mark.parametrize("gzipped", [False, True])
def test_connection_of_a_real_capture(gzipped: bool, tmp_path: Path) -> None:
    """mixed.pcapng (dumpcap, nanosecond timestamps): the deflate connection from
    client port 40603, from the file as it is and gzip-compressed."""
    source = SAMPLES / "mixed.pcapng"
    if gzipped:
        source = tmp_path / "mixed.pcapng.gz"
        source.write_bytes(gzip.compress((SAMPLES / "mixed.pcapng").read_bytes()))
    meta = json.loads((SAMPLES / "mixed.meta.json").read_text())
    port = meta["connections"][-1]["client_port"]
    full = wsanalyze.analyze(SAMPLES / "mixed.pcapng")
    conn = int(full.connections[full.connections["client"].str.endswith(f":{port}")]
               ["connection"].iloc[0])
    out = tmp_path / "one.pcapng"
    assert main(["export", str(source), "-o", str(out), "--connection", str(conn), "-q"]) == 0
    expected = tshark_packets(SAMPLES / "mixed.pcapng", f"tcp.port == {port}")
    assert len(expected) > 10
    # Same packets, lengths and (nanosecond) timestamps.
    assert tshark_packets(out) == expected
    assert raw_frames(out) == raw_frames(SAMPLES / "mixed.pcapng", f"tcp.port == {port}")
    again = wsanalyze.analyze(out)
    assert list(again.connections["client"]) == [f"127.0.0.1:{port}"]
    assert messages(again, 0) == messages(full, conn)
    assert len(messages(again, 0)) == 9  # 8 in truth_counts, plus aiohttp's automatic Pong


def _two_connections(path: Path) -> None:
    """A clean connection, then (100 s later) the frame.client-unmasked case."""
    bad = CASES["frame.client-unmasked"]()
    clean = clean_session(40001, WS_T0 - 100)
    write_conversations(path, [clean, bad.conv])


@pytest.mark.parametrize("choice", [["--violations"], ["--rule", "frame.client-unmasked"],
                                    ["--since", "50"], ["--since", "50", "--until", "1e10"],
                                    ["--until", "60", "--violations"]])
def test_choosing_the_violating_connection(choice: list[str], tmp_path: Path) -> None:
    capture = tmp_path / "two.pcap"
    _two_connections(capture)
    out = tmp_path / "bad.pcapng"
    assert main(["export", str(capture), "-o", str(out), "-q", *choice]) == 0
    packets = tshark_packets(out)
    expected = tshark_packets(capture, "tcp.port == 50712")
    if choice == ["--until", "60", "--violations"]:
        assert packets == []  # the violating connection starts 100 s in
        return
    assert packets == expected
    assert {p[3] for p in packets} == {"50712", "8080"}


def test_choices_that_match_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    capture = tmp_path / "two.pcap"
    _two_connections(capture)
    out = tmp_path / "none.pcapng"
    assert main(["export", str(capture), "-o", str(out), "--rule", "ping.unanswered"]) == 0
    assert tshark_packets(out) == []
    assert "no connection matched" in capsys.readouterr().err
    assert main(["export", str(capture), "-o", str(out), "--connection", "5"]) == 2
    assert capsys.readouterr().err == ("wsanalyze: error: no connection 5 in the capture (it "
                                       "has connections 0–1)\n")
    assert main(["export", str(capture), "-o", str(out), "--rule", "no.such-rule"]) == 2
    assert main(["export", str(capture), "-o", str(out)]) == 2
    assert "choose connections with" in capsys.readouterr().err


def test_unwritable_output_and_bad_capture(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    code = main(["export", str(SAMPLES / "mixed.pcapng"), "-o", str(tmp_path / "no" / "x"),
                 "--violations"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wsanalyze: error: cannot write {tmp_path / 'no' / 'x'}: ")
    assert err.count("\n") == 1
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    assert main(["export", str(bad), "-o", str(tmp_path / "x.pcapng"), "--violations"]) == 1
    assert "not a pcap or pcapng file" in capsys.readouterr().err


@pytest.mark.parametrize(("fmt", "nanosecond"), [("pcap", True), ("pcapng", False)])
def test_timestamps_are_exact(fmt: str, nanosecond: bool, tmp_path: Path) -> None:
    """Nanosecond pcap records and microsecond pcapng blocks keep every digit."""
    case = CASES["frame.client-unmasked"]()
    for i, p in enumerate(case.conv.frames):  # odd sub-microsecond times
        p.ts_ns += 123 + 7 * i if nanosecond else 0
    capture = tmp_path / f"case.{fmt}"
    case.conv.write(capture, fmt=fmt, nanosecond=nanosecond)  # type: ignore[arg-type]
    out = tmp_path / "out.pcapng"
    assert main(["export", str(capture), "-o", str(out), "--violations", "-q"]) == 0
    expected = tshark_packets(capture)
    assert tshark_packets(out) == expected
    if nanosecond:
        assert expected[0][0].endswith("123")
    assert raw_frames(out) == raw_frames(capture)


def test_standard_output_and_shared_options(tmp_path: Path) -> None:
    """-o - writes the same pcapng to standard output (for `| tshark -r -`); -r, lists
    of ids and rule wildcards as in the other commands; the capture is not its output."""
    capture = tmp_path / "two.pcap"
    _two_connections(capture)
    out = tmp_path / "bad.pcapng"
    assert main(["export", "-r", str(capture), "-o", str(out), "--rule", "frame.*", "-q"]) == 0
    piped = subprocess.run([sys.executable, "-m", "wsanalyze", "export", str(capture), "-o",
                            "-", "--rule", "frame.*", "-q"], capture_output=True, timeout=120,
                           env={**os.environ,
                                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert (piped.returncode, piped.stderr) == (0, b"")
    assert piped.stdout == out.read_bytes()
    both = tmp_path / "both.pcapng"
    assert main(["export", str(capture), "-o", str(both), "--connection", "0,1", "-q"]) == 0
    assert len(tshark_packets(both)) == len(tshark_packets(capture))
    with pytest.raises(SystemExit) as exc:
        main(["export", str(capture), "-o", str(capture), "--violations"])
    assert exc.value.code == 2
