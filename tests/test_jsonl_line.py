"""The direct JSON Lines line of a message row (wsanalyze/output/jsonl_line.py).

Each line must be the bytes of the reference encoding: ``json.dumps`` of the
file row (OUTPUTS.md column order, ``", "``/``": "``, non-ASCII as it is) with
U+2028, U+2029 and U+0085 escaped, UTF-8.  Checked row by row on the message
rows of every sample and rule case (cut and uncut), on rows with values of
unusual types (which must take the general path and still come out right), and
through both output streams: a ``-o`` file and standard output.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.buildtools import ROOT, SAMPLES, rule_case_captures
from wsanalyze.analysis import CaptureRun
from wsanalyze.config import Options
from wsanalyze.output.jsonl_line import LineEncoder
from wsanalyze.output.streams import GuardedStdout, OutputFile
from wsanalyze.output.writers import JsonlWriter, file_row
from wsanalyze.speedups import line_breaks_escaped


def reference(record: dict[str, Any], max_payload: int | None) -> bytes:
    row = file_row("message", record, max_payload)
    text = json.dumps(row, ensure_ascii=False, separators=(", ", ": "))
    return (line_breaks_escaped(text) + "\n").encode("utf-8", "surrogateescape")


def message_rows(capture: Path) -> list[dict[str, Any]]:
    run = CaptureRun(capture, Options(tables=frozenset({"message"})))
    return [row for kind, row in run if kind == "message"]


def test_lines_equal_the_reference_on_samples_and_rule_cases(tmp_path: Path) -> None:
    captures = SAMPLES + rule_case_captures(tmp_path)
    rows = [row for capture in captures for row in message_rows(capture)]
    assert len(rows) > 1000
    declined: dict[int | None, list[int]] = {None: [], 5: []}
    for max_payload in (None, 5):
        encoder = LineEncoder(max_payload)
        for row in rows:
            line = encoder.message(row)
            if line is None:
                declined[max_payload].append(row["length"])
            else:
                assert line == reference(row, max_payload), row
    # Every real row takes the direct path (none has a value of an odd type) but
    # the 2 MiB message of message.too-big, written in pieces unless cut.
    assert declined == {None: [2 << 20], 5: []}
    kinds = {(r["type"], r["text"] is None, r["close_reason"] is None, r["error"] is None)
             for r in rows}
    assert ("text", False, True, True) in kinds and ("close", True, False, True) in kinds
    assert any(not error for *_, error in kinds)  # rows with an error column set


def _row(**changes: Any) -> dict[str, Any]:
    text = changes.pop("text", "héllo \u2603")
    payload = changes.pop("payload", text.encode("utf-8", "surrogatepass")
                          if isinstance(text, str) else b"\x00\x01")
    row = {"connection": 3, "client": "[2001:db8::1]:5000", "server": "10.0.0.2:80",
           "direction": "c2s", "index": 7, "ts_start": 1700000000.25, "ts": 1700000000.5,
           "packet": 12, "type": "text", "frames": 2, "compressed": True,
           "wire_bytes": len(payload) + 6, "raw_length": len(payload) - 1,
           "length": len(payload), "payload": payload, "truncated": False, "text": text,
           "close_code": None, "close_reason": None, "complete": True, "error": None}
    row.update(changes)
    return row


USUAL = [_row(), _row(text=None, type="binary"), _row(text="", payload=b""),
         _row(type="close", text=None, payload=b"\x03\xe8bye", close_code=1000,
              close_reason="bye \u2029 \u00e9"),
         _row(text="line\u2028sep\u2029para\x85nel \x00 \" \\"),
         _row(error="deflate.invalid-data", complete=False, truncated=True),
         _row(ts=1e16, ts_start=1.5e-05), _row(client='odd "endpoint" \u2028')]
"""Rows of the usual types: the direct path writes them."""
UNUSUAL = [_row(ts=math.nan), _row(ts_start=math.inf), _row(ts=-math.inf), _row(ts=17),
           _row(index=True), _row(connection=None), _row(compressed=1),
           _row(close_code=False), _row(client=["a"]), _row(server=None),
           _row(text="lone \udc80 surrogate"), _row(close_reason="\udcff"),
           _row(error=404), _row(truncated=1), _row(payload=bytearray(b"ab"))]
"""Rows with a value of another type: the direct path declines them."""


def test_usual_rows_take_the_direct_path_unusual_ones_decline() -> None:
    encoder = LineEncoder()
    for row in USUAL:
        assert encoder.message(row) == reference(row, None), row
    assert [encoder.message(row) for row in UNUSUAL] == [None] * len(UNUSUAL)


@pytest.mark.parametrize("max_payload", [None, 4])
def test_writer_output_equals_the_reference_on_every_stream(tmp_path: Path,
                                                            max_payload: int | None) -> None:
    # (Not the lone surrogates: a strict UTF-8 stdout refuses them, as ever.)
    rows = [r for r in USUAL + UNUSUAL if not any(
        isinstance(v, str) and any(0xD800 <= ord(c) < 0xE000 for c in v) for v in r.values())]
    assert len(rows) == len(USUAL) + len(UNUSUAL) - 2
    expected = b"".join(reference(r, max_payload) for r in rows)
    assert b"NaN" in expected and b"Infinity" in expected and b'"index": true' in expected
    # -o FILE: lines go in as bytes, declined rows as text, in order.
    out = OutputFile(str(tmp_path / "rows.jsonl"))
    writer = JsonlWriter("message", out, max_payload)  # type: ignore[arg-type]
    for row in rows:
        writer.write(row)
    out.close()
    assert (tmp_path / "rows.jsonl").read_bytes() == expected
    # Standard output (UTF-8): bytes straight to its buffer, text through it.
    raw = io.BytesIO()
    stdout = GuardedStdout(io.TextIOWrapper(raw, encoding="utf-8", newline="\n"))
    writer = JsonlWriter("message", stdout, max_payload)  # type: ignore[arg-type]
    for row in rows:
        writer.write(row)
    stdout.flush()
    assert raw.getvalue() == expected
    # A plain text stream: lines decoded.
    text = io.StringIO()
    writer = JsonlWriter("message", text, max_payload)
    for row in rows:
        writer.write(row)
    assert text.getvalue().encode() == expected


def test_output_file_keeps_text_and_bytes_in_order(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    out = OutputFile(str(path))
    out.write("a\u00e9")
    out.write_bytes(b"b")
    out.write("c" * OutputFile.BUFFER)  # over the buffer: flushed
    out.write_bytes(b"d\n")
    out.write("\udc80")  # surrogateescape, as for text alone
    out.close()
    assert path.read_bytes() == "a\u00e9b".encode() + b"c" * OutputFile.BUFFER + b"d\n\x80"


def test_stdout_and_file_outputs_are_the_same_bytes(tmp_path: Path) -> None:
    sample = ROOT / "samples" / "websockets-deflate.pcap"
    command = [sys.executable, "-m", "wsanalyze", "messages", str(sample), "-F", "jsonl"]
    stdout = subprocess.run(command, capture_output=True, check=True, cwd=ROOT).stdout
    subprocess.run([*command, "-o", str(tmp_path / "m.jsonl")], check=True, cwd=ROOT)
    assert stdout == (tmp_path / "m.jsonl").read_bytes()
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) > 10 and rows[0]["connection"] == 0 and "payload_b64" in rows[0]


def test_line_buffered_stdout_shows_each_line_as_written() -> None:
    # A terminal's stdout is line-buffered: bytes go through it, not around it.
    raw = io.BytesIO()
    terminal = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", line_buffering=True)
    stdout = GuardedStdout(terminal)
    writer = JsonlWriter("message", stdout, None)  # type: ignore[arg-type]
    writer.write(USUAL[0])
    assert raw.getvalue() == reference(USUAL[0], None)
