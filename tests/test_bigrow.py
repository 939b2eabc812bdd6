"""Huge messages are written in pieces, and the pieces make the same output.

A message whose payload or text exceeds ``writers.BIG_FIELD`` is streamed field
by field (benchmarks/bench_bigrow.py measures the memory this saves).  These
tests check the result against the standard library's own encoders (json, csv,
base64) applied to the payload the test crafted, so a piece boundary that
splits an escape, a quote or a base64 group shows.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pcaptools import OP_BINARY, OP_TEXT, Conversation, deflate_message, ws_frame
from wsanalyze.cli import main
from wsanalyze.output import writers

PMD = "permessage-deflate"
MIB = 1 << 20
_MASK = b"\x11\x22\x33\x44"


def tricky_text(size: int) -> bytes:
    """UTF-8 with every character JSON or CSV treats specially, plus 2-, 3- and
    4-byte sequences, repeated past ``size`` and cut at a character boundary."""
    unit = 'a\x00"\\,\n\r\t;\x1f é 漢 😀 \u2028 plain words, "quoted" '.encode()
    data = unit * (size // len(unit) + 1)
    return data[:size].decode("utf-8", "ignore").encode("utf-8")


def capture(path: Path, messages: list[tuple[int, bytes]]) -> Path:
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions=PMD, response_extensions=PMD)
    for opcode, payload in messages:
        (data,) = deflate_message([payload])
        c.send("s2c", ws_frame(opcode, data, rsv1=True))
    c.write(path)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*args, "-q"]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    text = tricky_text(3 * MIB + 7)  # more than BIG_FIELD, not a multiple of a piece
    binary = bytes(range(256)) * (5 * MIB // 256) + b"\x01\x02"
    assert len(text) > writers.BIG_FIELD and len(binary) > writers.BIG_FIELD
    path = capture(tmp_path_factory.mktemp("big") / "big.pcap",
                   [(OP_TEXT, text), (OP_BINARY, binary), (OP_TEXT, b"small one")])
    return path, text, binary


def test_jsonl_pieces_equal_json_dumps(big: tuple[Path, bytes, bytes],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path, text, binary = big
    # The text holds U+2028, written as \u2028: splitlines() sees one record per line.
    lines = run(["messages", str(path), "--format", "jsonl"], capsys).splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["type"] for r in rows] == ["text", "binary", "text"]
    assert rows[0]["text"] == text.decode() and base64.b64decode(rows[0]["payload_b64"]) == text
    assert rows[1]["text"] is None and base64.b64decode(rows[1]["payload_b64"]) == binary
    # Byte for byte what json would write for the whole row at once (U+2028/9 escaped).
    for line, row in zip(lines, rows, strict=True):
        assert line == json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) \
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def test_csv_pieces_equal_csv_module(big: tuple[Path, bytes, bytes],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, text, binary = big
    out = run(["messages", str(path), "--format", "csv"], capsys)
    csv.field_size_limit(1 << 30)
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert rows[0]["text"] == text.decode() and base64.b64decode(rows[0]["payload_b64"]) == text
    assert rows[1]["text"] == "" and base64.b64decode(rows[1]["payload_b64"]) == binary
    assert rows[0]["truncated"] == "false" and rows[0]["length"] == str(len(text))
    # Every other cell of the big rows as the small path writes it.
    small = list(csv.DictReader(io.StringIO(run(["messages", str(path), "--format", "csv",
                                                 "--max-payload", "4"], capsys), newline="")))
    for r, s in zip(rows, small, strict=True):
        assert {k: v for k, v in r.items() if k not in ("payload_b64", "text", "truncated")} \
            == {k: v for k, v in s.items() if k not in ("payload_b64", "text", "truncated")}


def test_max_payload_cuts_big_rows_before_streaming(big: tuple[Path, bytes, bytes],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, text, _ = big
    rows = [json.loads(x) for x in run(["messages", str(path), "--format", "jsonl",
                                        "--max-payload", "10"], capsys).rstrip("\n").split("\n")]
    assert base64.b64decode(rows[0]["payload_b64"]) == text[:10]
    assert rows[0]["truncated"] is True and rows[0]["length"] == len(text)


def test_parquet_and_table_hold_the_big_rows(big: tuple[Path, bytes, bytes], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path, text, binary = big
    out = tmp_path / "m.parquet"
    run(["messages", str(path), "--format", "parquet", "-o", str(out)], capsys)
    rows = pq.read_table(out).to_pylist()
    assert [r["type"] for r in rows] == ["text", "binary", "text"]
    assert rows[0]["text"] == text.decode()
    assert rows[1]["payload"] == binary  # Parquet keeps payloads binary
    assert rows[2]["text"] == "small one"
    table = run(["messages", str(path)], capsys).splitlines()
    assert len(table) == 4
    assert str(len(text)) in table[1].split() and str(len(binary)) in table[2].split()


def test_64_mib_of_nul_text_is_written_whole(tmp_path: Path) -> None:
    """The reported case: 64 MiB of NUL characters (6 bytes each in JSON)."""
    size = 64 * MIB
    path = capture(tmp_path / "nul.pcap", [(OP_TEXT, bytes(size))])
    out = tmp_path / "m.jsonl"
    assert main(["messages", str(path), "--format", "jsonl", "-o", str(out), "-q"]) == 0
    with out.open(encoding="utf-8") as f:
        row = json.loads(f.readline())
        assert f.readline() == ""
    assert row["length"] == size and not row["truncated"]
    assert row["text"] == "\0" * size
    assert base64.b64decode(row["payload_b64"]) == bytes(size)
