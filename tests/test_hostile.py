"""Hostile input: corrupt captures, resource limits, and nothing readable lost.

Every capture here is crafted with tests/pcaptools.py; every test asserts the
concrete outcome: the rows and message texts kept, the one warning naming
where reading stopped, the CLI exit status (README: 0 when something was read),
the limit rows, and that memory and time stay bounded.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import random
import re
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

import wsanalyze
from tests.pcaptools import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    Conversation,
    deflate_message,
    write_conversations,
    ws_close_payload,
    ws_frame,
)
from wsanalyze.sources.records import CaptureError
from wsanalyze.websocket.decoder import DecoderLimits

ROOT = Path(__file__).resolve().parent.parent
MASK = b"\x0f\x1e\x2d\x3c"
PMD = "permessage-deflate"
MB = 1 << 20


def _bench_load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "benchmarks" /
                                                  "bench_load.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench_load = _bench_load()


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def data_texts(result: wsanalyze.AnalysisResult) -> list[str]:
    m = result.messages
    return list(m[m["type"].isin(["text", "binary"])]["text"])


def _warm_up() -> None:
    """Import everything a run imports, so tracemalloc sees only the run."""
    list(wsanalyze.iter_records(ROOT / "samples" / "aiohttp-plain.pcap"))


def peak_allocation(fn: Callable[[], object]) -> int:
    """Peak bytes allocated by Python while ``fn`` runs (tracemalloc)."""
    _warm_up()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------ the capture

N_MESSAGES = 6
DAMAGED = 3
"""The message whose packet the corruption hits: messages 0-2 are kept."""


def six_messages() -> tuple[Conversation, list[int]]:
    """A handshake, six server text messages each in its own packet, a close."""
    c = Conversation()
    c.handshake()
    c.ws_upgrade()
    packets = [c.send("s2c", ws_frame(OP_TEXT, f"message {i}".encode()))[0]
               for i in range(N_MESSAGES)]
    c.send("c2s", ws_frame(OP_CLOSE, ws_close_payload(1000), mask=MASK))
    c.send("s2c", ws_frame(OP_CLOSE, ws_close_payload(1000)))
    c.close("s2c")
    return c, packets


EXPECTED = [f"message {i}" for i in range(N_MESSAGES)]
KEPT = EXPECTED[:DAMAGED]


def pcap_records(raw: bytes) -> list[tuple[int, int]]:
    """(offset, caplen) of every record of a little-endian pcap."""
    assert raw[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    out = []
    off = 24
    while off + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, off + 8)[0]
        out.append((off, caplen))
        off += 16 + caplen
    return out


def pcapng_blocks(raw: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, total length) of every block of a little-endian pcapng."""
    out = []
    off = 0
    while off + 8 <= len(raw):
        btype, blen = struct.unpack_from("<II", raw, off)
        out.append((off, btype, blen))
        off += blen
    return out


def packet_block(raw: bytes, number: int) -> tuple[int, int]:
    """(offset, length) of the Enhanced Packet Block of packet ``number``."""
    epbs = [(off, blen) for off, btype, blen in pcapng_blocks(raw) if btype == 6]
    return epbs[number - 1]


def count(n: int) -> str:
    return "no packet was read" if n == 0 else "1 packet was read" if n == 1 else \
        f"{n} packets were read"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def assert_cut_short(path: Path, warning: str, kept: list[str]) -> None:
    """Everything before the damage is decoded; one warning; the CLI exits 0 with
    the same rows and that one warning."""
    result = wsanalyze.analyze(path)
    assert data_texts(result) == kept
    assert result.warnings == [warning]
    conn = result.connections.iloc[0]
    assert conn["handshake"] == "ok" and conn["end"] == "capture-ended"
    assert conn["messages_s2c"] == len(kept)
    proc = cli("messages", str(path), "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in rows if r["type"] == "text"] == kept
    assert proc.stderr.splitlines() == [f"wsanalyze: warning: {warning}"]
    proc = cli("summary", str(path))
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("warning")] == \
        [f"warning: {warning}"]


# ---------------------------------------------------------- corrupt files

@pytest.mark.parametrize(("head", "what"), [
    (b"GARBAGE!", 'it starts with 0x47415242 "GARB"'),
    (b"PK\x03\x04\x14\x00\x00\x00", "a zip archive"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a", "pcapng section header"),
])
def test_wrong_magic_is_an_error_with_exit_code_1(tmp_path: Path, head: bytes,
                                                 what: str) -> None:
    c, _ = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = (tmp_path / "ok.pcap").read_bytes()
    path = write(tmp_path, "bad.pcap", head + raw[len(head):])
    with pytest.raises(CaptureError) as err:
        wsanalyze.analyze(path)
    assert str(err.value).startswith(f"cannot read {path}: ")
    assert what in str(err.value)
    proc = cli("messages", str(path))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"wsanalyze: error: {err.value}\n"


@pytest.mark.parametrize("damage", ["not-multiple-of-4", "below-minimum", "trailer-mismatch",
                                    "beyond-the-file", "huge"])
def test_bad_pcapng_block_length_keeps_what_precedes(tmp_path: Path, damage: str) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcapng", fmt="pcapng")
    raw = bytearray((tmp_path / "ok.pcapng").read_bytes())
    number = packets[DAMAGED]
    off, blen = packet_block(bytes(raw), number)
    where = f"packet {number} at byte offset {off}"
    if damage == "not-multiple-of-4":
        struct.pack_into("<I", raw, off + 4, blen + 1)
        warning = f"capture corrupt: {where} has length {blen + 1}, not a multiple of 4"
    elif damage == "below-minimum":
        struct.pack_into("<I", raw, off + 4, 8)
        warning = f"capture corrupt: {where} has length 8, less than the 12-byte minimum"
    elif damage == "trailer-mismatch":
        struct.pack_into("<I", raw, off + blen - 4, blen + 4)
        warning = (f"capture corrupt: {where} has a trailing length {blen + 4} that does not "
                   f"match its leading length {blen}")
    elif damage == "beyond-the-file":
        struct.pack_into("<I", raw, off + 4, MB)
        warning = (f"capture truncated: {where} is cut short (block claims {MB} bytes, "
                   f"{len(raw) - off} left)")
    else:
        struct.pack_into("<I", raw, off + 4, 0xFFFFFFF0)
        warning = f"capture corrupt: {where} has length {0xFFFFFFF0}, more than the "
        from wsanalyze.sources.pcapng import MAX_BLOCK_LEN

        warning += f"{MAX_BLOCK_LEN}-byte maximum"
    path = write(tmp_path, "bad.pcapng", bytes(raw))
    assert_cut_short(path, f"{warning}; {count(number - 1)}", KEPT)


@pytest.mark.parametrize("cut", ["record-data", "record-header"])
def test_pcap_record_cut_in_the_middle(tmp_path: Path, cut: str) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = (tmp_path / "ok.pcap").read_bytes()
    number = packets[DAMAGED]
    off, caplen = pcap_records(raw)[number - 1]
    where = f"packet {number} at byte offset {off}"
    if cut == "record-data":
        data = raw[: off + 16 + caplen // 2]
        warning = (f"capture truncated: {where} is cut short (record claims {caplen} bytes, "
                   f"{caplen // 2} left)")
    else:
        data = raw[: off + 7]
        warning = f"capture truncated: {where} has an incomplete record header (7 of 16 bytes)"
    path = write(tmp_path, "cut.pcap", data)
    assert_cut_short(path, f"{warning}; {count(number - 1)}", KEPT)


def test_pcapng_block_cut_in_the_middle(tmp_path: Path) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcapng", fmt="pcapng")
    raw = (tmp_path / "ok.pcapng").read_bytes()
    number = packets[DAMAGED]
    off, blen = packet_block(raw, number)
    path = write(tmp_path, "cut.pcapng", raw[: off + 40])
    assert_cut_short(path, f"capture truncated: packet {number} at byte offset {off} is cut "
                     f"short (block claims {blen} bytes, 40 left); {count(number - 1)}", KEPT)


def test_gzip_cut_in_the_middle_keeps_the_decompressed_prefix(tmp_path: Path) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = (tmp_path / "ok.pcap").read_bytes()
    off, _ = pcap_records(raw)[packets[DAMAGED] - 1]
    # Stored (level 0) deflate blocks keep the decompressed prefix exact.
    gz = gzip.compress(raw, compresslevel=0, mtime=0)
    path = write(tmp_path, "cut.pcap.gz", gz[: 10 + 5 + off + 20])
    result = wsanalyze.analyze(path)
    assert data_texts(result) == KEPT
    [warning] = result.warnings
    assert warning.startswith(f"capture truncated: packet {packets[DAMAGED]} at byte offset "
                              f"{off} of the decompressed data ")
    assert warning.endswith(f"; {count(packets[DAMAGED] - 1)}")
    proc = cli("messages", str(path), "--format", "jsonl")
    assert proc.returncode == 0 and len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_caplen_larger_than_the_snaplen_is_read_whole(tmp_path: Path, fmt: str) -> None:
    c, _ = six_messages()
    c.write(tmp_path / f"ok.{fmt}", fmt=fmt)  # type: ignore[arg-type]
    raw = bytearray((tmp_path / f"ok.{fmt}").read_bytes())
    if fmt == "pcap":
        struct.pack_into("<I", raw, 16, 64)  # the header's snaplen
    else:
        idb = next(off for off, btype, _ in pcapng_blocks(bytes(raw)) if btype == 1)
        struct.pack_into("<I", raw, idb + 12, 64)
    path = write(tmp_path, f"snap.{fmt}", bytes(raw))
    result = wsanalyze.analyze(path)
    assert data_texts(result) == EXPECTED
    assert result.warnings == []
    assert result.violations.empty
    assert result.connections.iloc[0]["end"] == "close-handshake"


def test_caplen_larger_than_the_file(tmp_path: Path) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = bytearray((tmp_path / "ok.pcap").read_bytes())
    number = packets[DAMAGED]
    off, _ = pcap_records(bytes(raw))[number - 1]
    struct.pack_into("<I", raw, off + 8, 200_000)  # below the 256 KiB maximum
    path = write(tmp_path, "long.pcap", bytes(raw))
    assert_cut_short(path, f"capture truncated: packet {number} at byte offset {off} is cut "
                     f"short (record claims 200000 bytes, {len(raw) - off - 16} left); "
                     f"{count(number - 1)}", KEPT)


def test_caplen_beyond_any_packet_allocates_nothing(tmp_path: Path) -> None:
    c, packets = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = bytearray((tmp_path / "ok.pcap").read_bytes())
    number = packets[DAMAGED]
    off, _ = pcap_records(bytes(raw))[number - 1]
    struct.pack_into("<I", raw, off + 8, 0x7FFFFFFF)
    struct.pack_into("<I", raw, off + 12, 0x7FFFFFFF)
    path = write(tmp_path, "huge.pcap", bytes(raw))
    peak = peak_allocation(lambda: list(wsanalyze.iter_records(path)))
    assert peak < 4 * MB
    assert_cut_short(path, f"capture corrupt: packet {number} at byte offset {off} claims "
                     f"{0x7FFFFFFF} captured bytes, more than the 262144-byte maximum; "
                     f"{count(number - 1)}", KEPT)


def test_timestamps_going_backwards_decode_in_file_order(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade()
    sent = [("s2c", "one"), ("c2s", "two"), ("s2c", "three"), ("s2c", "four")]
    numbers = []
    for i, (direction, text) in enumerate(sent):
        if i in (1, 3):
            c.wait(-3600 if i == 1 else -10)  # the clock jumps back
        frame = ws_frame(OP_TEXT, text.encode(), mask=MASK if direction == "c2s" else None)
        numbers.append(c.send(direction, frame)[0])
    c.send("c2s", ws_frame(OP_CLOSE, ws_close_payload(1000), mask=MASK))
    c.send("s2c", ws_frame(OP_CLOSE, ws_close_payload(1000)))
    c.close("s2c")
    path = tmp_path / "back.pcap"
    c.write(path)
    result = wsanalyze.analyze(path)
    m = result.messages
    data = m[m["type"] == "text"]
    assert list(data["text"]) == [t for _, t in sent]
    assert list(data["direction"]) == [d for d, _ in sent]
    assert list(data["packet"]) == numbers
    assert list(_epoch(data["ts"])) == pytest.approx([c.frames[n - 1].ts for n in numbers],
                                                     abs=1e-6)
    assert list(m["index"]) == list(range(len(m)))
    assert list(m["packet"]) == sorted(m["packet"])  # file order
    assert result.warnings == []
    assert result.violations.empty
    conn = result.connections.iloc[0]
    assert conn["end"] == "close-handshake"
    start, end = _epoch(result.connections[["ts_start", "ts_end"]].iloc[0])
    assert start == pytest.approx(c.frames[0].ts, abs=1e-6)
    assert min(abs(end - c.frames[-2].ts), abs(end - c.frames[-1].ts)) < 1e-6  # last FIN/ACK
    assert conn["ts_end"] < conn["ts_start"]


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_garbage_after_a_valid_prefix(tmp_path: Path, fmt: str) -> None:
    c, _ = six_messages()
    c.write(tmp_path / f"ok.{fmt}", fmt=fmt)  # type: ignore[arg-type]
    raw = (tmp_path / f"ok.{fmt}").read_bytes()
    path = write(tmp_path, f"garbage.{fmt}", raw + b"\xff" * 64)
    n = len(c.frames)
    if fmt == "pcap":
        warning = (f"capture corrupt: packet {n + 1} at byte offset {len(raw)} claims "
                   f"{0xFFFFFFFF} captured bytes, more than the 262144-byte maximum")
    else:
        warning = (f"capture corrupt: the type 0xffffffff block after packet {n} at byte "
                   f"offset {len(raw)} has length {0xFFFFFFFF}, not a multiple of 4")
    result = wsanalyze.analyze(path)
    assert data_texts(result) == EXPECTED
    assert result.warnings == [f"{warning}; {count(n)}"]
    assert result.connections.iloc[0]["end"] == "close-handshake"
    proc = cli("messages", str(path), "--format", "jsonl")
    assert proc.returncode == 0
    assert [json.loads(line)["text"] for line in proc.stdout.splitlines()][:N_MESSAGES] == \
        EXPECTED
    assert proc.stderr.splitlines() == [f"wsanalyze: warning: {warning}; {count(n)}"]


def test_random_garbage_after_a_valid_prefix(tmp_path: Path) -> None:
    c, _ = six_messages()
    c.write(tmp_path / "ok.pcap")
    raw = (tmp_path / "ok.pcap").read_bytes()
    garbage = random.Random(5).randbytes(5000)
    path = write(tmp_path, "garbage.pcap", raw + garbage)
    result = wsanalyze.analyze(path)
    assert data_texts(result) == EXPECTED
    stops = [w for w in result.warnings if w.startswith("capture ")]
    assert len(stops) == 1
    assert re.search(r"packet \d+ at byte offset \d+ ", stops[0])
    proc = cli("connections", str(path), "--format", "jsonl")
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 1


# ------------------------------------------------------ declared lengths

def test_frame_claiming_2_63_bytes_allocates_nothing(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade()
    c.send("s2c", ws_frame(OP_TEXT, b"before"))
    bogus = c.send("s2c", b"\x82\x7f" + struct.pack("!Q", 1 << 63) + bytes(100))[0]
    c.send("s2c", ws_frame(OP_TEXT, b"after"))
    c.send("c2s", ws_frame(OP_TEXT, b"client", mask=MASK))
    path = tmp_path / "huge-frame.pcap"
    c.write(path)
    peak = peak_allocation(lambda: list(wsanalyze.iter_records(path)))
    assert peak < 4 * MB, f"{peak} bytes allocated"
    result = wsanalyze.analyze(path)
    assert data_texts(result) == ["before", "after", "client"]
    v = result.violations
    assert set(v["rule"]) >= {"frame.length-msb", "frame.unparseable"}
    unparseable = v[v["rule"] == "frame.unparseable"].iloc[0]
    assert unparseable["packet"] == bogus and unparseable["direction"] == "s2c"
    assert f"length {1 << 63}" in unparseable["message"]


@pytest.mark.parametrize("length", [(1 << 63) - 1, 1 << 40])
def test_frame_claiming_huge_lengths_allocates_nothing(tmp_path: Path, length: int) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade()
    c.send("s2c", ws_frame(OP_TEXT, b"before"))
    c.send("s2c", b"\x82\x7f" + struct.pack("!Q", length) + bytes(100))
    c.send("c2s", ws_frame(OP_TEXT, b"client", mask=MASK))
    path = tmp_path / "huge-frame.pcap"
    c.write(path)
    peak = peak_allocation(lambda: list(wsanalyze.iter_records(path)))
    assert peak < 4 * MB, f"{peak} bytes allocated"
    result = wsanalyze.analyze(path)
    assert data_texts(result)[:2] == ["before", "client"]


def test_100000_frames_in_one_tcp_segment(tmp_path: Path) -> None:
    path = tmp_path / "frames.pcap"
    segment = bench_load.build_many_frames(path, 100_000)
    counts: Counter[tuple[str, str | None, int]] = Counter()
    conns = []
    # Anything recursing per frame would exceed the default recursion limit (1000).
    for table, row in wsanalyze.iter_records(path, tables={"message", "connection",
                                                           "violation"}):
        if table == "message":
            counts[(row["direction"], row["text"], row["packet"])] += 1
        elif table == "connection":
            conns.append(row)
        else:
            raise AssertionError(f"unexpected violation {row['rule']}: {row['message']}")
    assert counts == {("s2c", "", segment): 90_000, ("s2c", "x", segment): 10_000,
                      ("c2s", "done", segment + 1): 1}
    [conn] = conns
    assert conn["messages_s2c"] == 100_000 and conn["bytes_s2c"] == 210_000


# ------------------------------------------------------------- the limits

def bomb_capture(path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions=PMD, response_extensions=PMD)
    bomb, after = deflate_message([bytes(50 * MB), b"still here after the bomb"])
    c.send("s2c", ws_frame(OP_BINARY, bomb, rsv1=True))
    c.send("s2c", ws_frame(OP_TEXT, after, rsv1=True))
    c.send("c2s", ws_frame(OP_TEXT, deflate_message([b"client text"])[0], rsv1=True,
                           mask=MASK))
    c.write(path)


def test_decompression_bomb_stops_at_the_inflate_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pcap"
    bomb_capture(path)
    cap = 64 << 10
    proc = cli("messages", str(path), "--format", "jsonl", "--limit-inflate", "64K")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["direction"], r["type"], r["text"]) for r in rows] == [
        ("s2c", "binary", None), ("s2c", "text", "still here after the bomb"),
        ("c2s", "text", "client text")]
    bomb = rows[0]
    assert bomb["compressed"] and bomb["raw_length"] > 50_000
    assert bomb["length"] == cap, "inflating goes on past the --limit-inflate cap"
    assert len(base64.b64decode(bomb["payload_b64"])) == cap
    proc = cli("violations", str(path), "--format", "jsonl", "--limit-inflate", "64K")
    [row] = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (row["rule"], row["severity"], row["direction"]) == \
        ("message.too-big", "warning", "s2c")
    assert f"{cap}-byte cap" in row["message"]
    # The ratio named is the bomb's (about 1000:1 for zeros), not the inflated
    # bytes over the whole compressed message that was never all read.
    ratio = re.search(r"ratio (\d+):1", row["message"])
    assert ratio and int(ratio.group(1)) >= 100, row["message"]
    # 64 KiB is not over the 64 MiB payload limit.
    assert f"over the {64 << 20}-byte limit" not in row["message"], row["message"]
    # The bounded inflate is also the API's: the whole run stays small.
    peak = peak_allocation(lambda: list(wsanalyze.iter_records(
        path, limits=DecoderLimits(max_inflate=cap))))
    assert peak < 4 * MB, f"{peak} bytes allocated"


def test_payload_limit_keeps_the_true_length(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions=PMD, response_extensions=PMD)
    text = "é" * 5000 + "end"
    c.send("s2c", ws_frame(OP_TEXT, text.encode()))
    c.send("s2c", ws_frame(OP_TEXT, deflate_message([text.encode()])[0], rsv1=True))
    c.send("c2s", ws_frame(OP_TEXT, text.encode(), mask=MASK, fin=False))
    c.send("c2s", ws_frame(0, b"tail", mask=MASK))
    c.send("s2c", ws_frame(OP_TEXT, b"short"))
    path = tmp_path / "long.pcap"
    c.write(path)
    result = wsanalyze.analyze(path, limits=DecoderLimits(max_payload=1001))
    m = result.messages
    assert list(m["length"]) == [10003, 10003, 10007, 5]
    assert list(m["truncated"]) == [True, True, True, False]
    assert list(m["complete"]) == [True] * 4
    assert [len(p) for p in m["payload"]] == [1001, 1001, 1001, 5]
    assert list(m["text"]) == ["é" * 500] * 3 + ["short"]
    assert m["raw_length"].iloc[0] == 10003 and m["frames"].iloc[2] == 2
    v = result.violations
    assert list(v["rule"]) == ["message.too-big"] * 3
    assert all("over the 1001-byte limit" in msg for msg in v["message"])
    assert "10003 bytes, inflated from" in v["message"].iloc[1]
    proc = cli("messages", str(path), "--format", "jsonl", "--limit-message", "1001")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["length"], len(base64.b64decode(r["payload_b64"])), r["truncated"])
            for r in rows] == [(10003, 1001, True)] * 2 + [(10007, 1001, True), (5, 5, False)]


def test_out_of_order_buffer_limit_gives_up_the_hole(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    _, [response] = c.ws_upgrade()
    c.send("s2c", ws_frame(OP_TEXT, b"first"))
    payload = bytes(range(256)) * 40
    numbers = c.send("s2c", ws_frame(OP_BINARY, payload))
    c.send("s2c", ws_frame(OP_TEXT, b"after the hole"))
    c.send("c2s", ws_frame(OP_TEXT, b"client", mask=MASK))
    held = c.frames.pop(numbers[1] - 1)  # the second segment of the binary message...
    c.frames.append(held)  # ...is captured last, long after its neighbours
    path = tmp_path / "ooo.pcap"
    c.write(path)
    result = wsanalyze.analyze(path, max_buffered=2000)
    m = result.messages
    assert [None if pd.isna(t) else t for t in m["text"]] == ["first", None, "after the hole",
                                                               "client"]
    assert list(m["complete"]) == [True, False, True, True]
    binary = m.iloc[1]
    assert binary["length"] == len(payload)
    response_len = len(c.frames[response - 1].ip) - 40  # IPv4 and TCP headers
    first = len(ws_frame(OP_TEXT, b"first"))
    hole_at = response_len + first + 1448  # TCP stream offset of the held segment
    prefix = 1448 - 4  # the binary frame's header is 4 bytes
    assert binary["payload"] == payload[:prefix]
    v = result.violations
    assert list(v["rule"]) == ["capture.limit", "capture.limit"]
    assert set(v["direction"]) == {"s2c"} and set(v["severity"]) == {"info"}
    text = " | ".join(v["message"])
    assert "s2c stream: more than 2000 out-of-order bytes buffered" in text
    assert f"1448 bytes of the s2c stream (TCP stream offsets {hole_at}–{hole_at + 1447})" \
        in text
    assert "out-of-order buffer limit" in text
    # Without the limit the late segment fills the hole.
    whole = wsanalyze.analyze(path)
    assert list(whole.messages[whole.messages["type"] == "binary"]["payload"]) == [payload]
    assert whole.violations.empty


def three_connections(plain_first: bool) -> tuple[list[Conversation], int, int]:
    """Three WebSocket connections (after a plain TCP one); the first one says
    something again after the third opened.  Returns the conversations, the
    index of the first WebSocket one and how many packets it had before."""
    convs = []
    if plain_first:
        p = Conversation(client=("10.0.0.9", 1234), server=("10.0.0.2", 80), t0=1_699_999_999)
        p.handshake()
        p.send("c2s", b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        p.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        p.close()
        convs.append(p)
    for i in range(3):
        c = Conversation(client=("10.0.0.1", 50000 + i), server=("10.0.0.2", 80),
                         t0=1_700_000_000 + i)
        c.handshake()
        c.ws_upgrade()
        c.send("s2c", ws_frame(OP_TEXT, f"hello {i}".encode()))
        convs.append(c)
    first = 1 if plain_first else 0
    before = len(convs[first].frames)
    convs[first].wait(5)
    convs[first].send("s2c", ws_frame(OP_TEXT, b"late from 0"))
    return convs, first, before


@pytest.mark.parametrize("plain_first", [False, True])
def test_connection_limit_evicts_the_oldest_idle(tmp_path: Path, plain_first: bool) -> None:
    convs, first, before = three_connections(plain_first)
    path = tmp_path / "conns.pcap"
    numbering = write_conversations(path, convs)
    last_before_idle = numbering[first][before - 1]
    result = wsanalyze.analyze(path, max_connections=2)
    m = result.messages
    assert [(r.connection, r.text) for r in m.itertuples()] == [
        (0, "hello 0"), (1, "hello 1"), (2, "hello 2"), (3, "late from 0")]
    conns = result.connections
    assert list(conns["end"]) == ["capture-ended"] * 4
    assert list(conns["handshake"]) == ["ok", "ok", "ok", "not-captured"]
    assert conns.iloc[3]["client"] == "10.0.0.1:50000"
    v = result.violations
    limit = v[v["rule"] == "capture.limit"]
    assert list(limit["severity"]) == ["info"] * len(limit)
    evicted = limit[limit["connection"] == 0]
    assert len(evicted) == 1
    text = evicted.iloc[0]["message"]
    assert "more than 2 open connections" in text
    assert f"idle since packet {last_before_idle}" in text
    # The row is connection 0: a connection number in its text must be the same.
    assert set(re.findall(r"connection (\d+)", text)) <= {"0"}, text


def test_http_head_over_the_limit_is_not_followed(tmp_path: Path) -> None:
    from tests.pcaptools import upgrade_request, upgrade_response, ws_key

    key = ws_key(1)
    request = upgrade_request("example.com", "/chat", key, extra_headers=[("Cookie", "x" * 3000)])
    for mss in (1448, 9000):  # the head in three segments, then in one
        c = Conversation(mss=mss)
        c.handshake()
        c.send("c2s", request)
        c.send("s2c", upgrade_response(key))
        c.send("s2c", ws_frame(OP_TEXT, b"hello"))
        c.send("c2s", ws_frame(OP_TEXT, b"hi", mask=MASK))
        path = tmp_path / f"head-{mss}.pcap"
        c.write(path)
        result = wsanalyze.analyze(path, limits=DecoderLimits(max_http_head=1024))
        conn = result.connections.iloc[0]
        assert pd.isna(conn["host"]) and pd.isna(conn["path"]), \
            f"MSS {mss}: a {len(request)}-byte head was followed despite the 1024-byte limit"
        m = result.messages
        assert [(r.direction, r.text) for r in m.itertuples()] == [
            ("s2c", "hello"), ("c2s", "hi")], f"MSS {mss}: {m[['direction', 'type']]}"
        v = result.violations
        errors = v[v["severity"] == "error"]
        assert errors.empty, f"MSS {mss}: {errors[['rule', 'message']].to_string()}"
        # With the default limit, the same capture is an ordinary handshake.
        ok = wsanalyze.analyze(path)
        assert ok.connections.iloc[0]["host"] == "example.com"


def test_http_head_that_never_ends_stays_bounded(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Pad: " + b"y" * 60 + b"\r\n"
    c.send("c2s", head + b"X-Pad: " * 30_000)
    c.send("s2c", b"HTTP/1.1 200 OK\r\n")
    c.close()
    path = tmp_path / "endless.pcap"
    c.write(path)
    limits = DecoderLimits(max_http_head=4096)
    peak = peak_allocation(lambda: list(wsanalyze.iter_records(path, limits=limits)))
    assert peak < 8 * MB, f"{peak} bytes allocated"
    result = wsanalyze.analyze(path, limits=limits)
    assert result.connections.empty and result.messages.empty


def test_ten_thousand_connections_with_a_small_limit(tmp_path: Path) -> None:
    path = tmp_path / "conns.pcap"
    bench_load.build_many_connections(path, 10_000, phased=False)
    limit = 500
    ends: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    hellos = set()
    evicted = set()

    def run() -> None:
        for table, row in wsanalyze.iter_records(path, tables={"message", "connection",
                                                               "violation"},
                                                 max_connections=limit):
            if table == "connection":
                ends[row["end"]] += 1
                assert row["handshake"] == "ok" and row["path"] == f"/c/{row['connection']}"
                assert row["messages_c2s"] == row["messages_s2c"] == 1
            elif table == "message":
                if row["direction"] == "c2s":
                    hellos.add(row["text"])
            else:
                rules[row["rule"]] += 1
                evicted.add(row["connection"])

    peak = peak_allocation(run)
    assert ends == {"capture-ended": 10_000}
    assert hellos == {f"hello {i}" for i in range(10_000)}
    assert rules == {"capture.limit": 10_000 - limit}
    assert evicted == set(range(10_000 - limit))  # the oldest idle go first
    assert peak < 64 * MB, f"{peak / MB:.0f} MiB allocated"


# ------------------------------------------------- found by the fuzzers

def test_final_deflate_block_in_a_window_limited_direction_terminates(tmp_path: Path) -> None:
    """RFC 7692 §7.2.3.4 allows a block with BFINAL set (then, by §7.2.1, an empty
    stored block, of which 0x00 remains once 00 00 ff ff is removed); with
    max_window_bits below 15 the window check must still finish (fuzz_decoder
    found a hang there)."""
    params = "permessage-deflate; server_max_window_bits=10"
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions=params, response_extensions=params)
    text = " ".join(f"word{i}" for i in range(100)).encode()
    comp = zlib.compressobj(6, zlib.DEFLATED, -10)
    final = comp.compress(text) + comp.flush(zlib.Z_FINISH) + b"\x00"  # BFINAL set
    c.send("s2c", ws_frame(OP_TEXT, final, rsv1=True))
    c.send("s2c", ws_frame(OP_TEXT, deflate_message([b"next"], wbits=10)[0], rsv1=True))
    path = tmp_path / "bfinal.pcap"
    c.write(path)
    try:
        proc = cli("messages", str(path), "--format", "jsonl", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("wsanalyze hangs on a final deflate block with server_max_window_bits=10")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["text"] for line in proc.stdout.splitlines()] == \
        [text.decode(), "next"]


@pytest.mark.parametrize("traffic", ["random-320K", "length-prefixed"])
def test_binary_tcp_stream_whose_start_was_captured_is_not_websocket(tmp_path: Path,
                                                                     traffic: str) -> None:
    """A connection whose SYN and first bytes were captured and that does not
    start with an HTTP Upgrade cannot be WebSocket: binary traffic must not turn
    into mid-stream WebSocket rows and protocol errors."""
    c = Conversation()
    c.handshake()
    if traffic == "random-320K":
        c.send("s2c", random.Random(1).randbytes(256 << 10))
        c.send("c2s", random.Random(2).randbytes(64 << 10))
    else:  # a length-prefixed request of some binary protocol
        c.send("c2s", b"\x00\x00\x00\x08not http")
    c.close()
    path = tmp_path / "binary.pcap"
    c.write(path)
    result = wsanalyze.analyze(path)
    assert result.connections.empty, result.violations[["rule", "message"]].to_string()
    assert result.messages.empty and result.violations.empty


_SCAN_WORK = """
import random, struct, sys
from wsanalyze.websocket import scan
from wsanalyze.websocket.decoder import ConnectionDecoder

parsed = 0
real = scan.parse_header

def counting(buf, pos=0):
    global parsed
    parsed += 1
    return real(buf, pos)

scan.parse_header = counting
size = int(sys.argv[1])
data = b"\\x82\\x7f" + struct.pack("!Q", 900_000) + random.Random(3).randbytes(size)
dec = ConnectionDecoder(syn_seen=False)
packet = 0
for packet, off in enumerate(range(0, len(data), 1448), 1):
    dec.data(0.0, packet, 1, off, data[off : off + 1448])
dec.end(0.0, packet, "capture-ended")
print(parsed)
"""


def _scan_work(size: int) -> int:
    """Frame headers parsed by the boundary scanner while ``size`` random bytes behind
    a plausible header declaring 900 000 bytes are fed in 1448-byte segments.

    Counted in a pure-Python interpreter (WSANALYZE_NO_EXTENSIONS=1): compiled code
    calls ``parse_header`` directly, past any patch; both builds run this source."""
    env = {**os.environ, "WSANALYZE_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-c", _SCAN_WORK, str(size)], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_mid_stream_scan_is_not_quadratic() -> None:
    """Looking for a frame boundary in a stream whose start was not captured must not
    rescan everything buffered on every segment: doubling the bytes (256 -> 512 KiB)
    about doubles the headers parsed (a rescan per segment would quadruple them).
    Work is counted, not timed (benchmarks/ has the timings)."""
    small = _scan_work(256 << 10)
    large = _scan_work(512 << 10)
    assert small > 256 << 10  # every position was examined at least once
    assert large / small < 2.5, (small, large)


def _epoch(values: pd.Series) -> list[float]:
    """Float epoch seconds of datetime64[ns, UTC] values (the DataFrames type them)."""
    return [(v - pd.Timestamp(0, tz="UTC")).total_seconds() for v in values]
