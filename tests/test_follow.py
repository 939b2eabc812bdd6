"""``wsanalyze follow``: one connection as a conversation, checked against the
messages/violations JSONL and independent renderings (json, a hex dump written here)."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests import pcaptools as pt
from wsanalyze.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FRAGMENTS = SAMPLES / "node-ws-fragments.pcap"
DEFLATE = SAMPLES / "websockets-deflate.pcap"
ARROW = {"c2s": "→", "s2c": "←"}


def jsonl(capsys: pytest.CaptureFixture[str], table: str, capture: Path) -> list[dict]:
    assert main([table, str(capture), "-F", "jsonl"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def follow(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["follow", *argv, "-t", "e"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def xxd(data: bytes) -> list[str]:
    out = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        hexes = f"{left}  {right}" if right else left
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        out.append(f"{off:08x}  {hexes.ljust(48)}  |{ascii_}|")
    return out


def expected_body(row: dict[str, Any]) -> list[str]:
    payload = base64.b64decode(row["payload_b64"])
    if row["type"] == "close":
        return [f"{row['close_code']} {row['close_reason']}".rstrip()]
    if row["type"] == "binary":
        return xxd(payload)
    if row["type"] in ("ping", "pong"):
        try:
            shown = payload.decode()
        except UnicodeDecodeError:
            return xxd(payload)
        return [shown] if shown.isprintable() else xxd(payload)
    text = payload.decode()
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text.split("\n") if text else []


def split_entries(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(header line, body lines without the 4-space indent) per entry."""
    entries: list[tuple[str, list[str]]] = []
    for line in lines[2:]:
        if line.startswith("    "):
            entries[-1][1].append(line[4:])
        elif line and not line.startswith("=="):
            entries.append((line, []))
    return entries


@pytest.mark.parametrize(("capture", "connection"), [(FRAGMENTS, 0), (FRAGMENTS, 1),
                                                     (DEFLATE, 1)])
def test_conversation_matches_the_messages(capture: Path, connection: int,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r for r in jsonl(capsys, "messages", capture) if r["connection"] == connection]
    conn = jsonl(capsys, "connections", capture)[connection]
    lines = follow(capsys, str(capture), "--connection", str(connection))
    assert lines[0] == (f"connection {connection}: client {conn['client']} ⇄ server "
                        f"{conn['server']}  (times: epoch)")
    entries = split_entries(lines)
    assert len(entries) == len(rows)
    for (head, body), r in zip(entries, rows, strict=True):
        details = [f"packet {r['packet']}"]
        if r["frames"] > 1:
            details.append(f"{r['frames']} frames")
        if r["compressed"]:
            details.append(f"compressed {r['raw_length']} B")
        assert head == (f"{r['ts']:.6f} {ARROW[r['direction']]} {r['type']} {r['length']} B"
                        f"  [{', '.join(details)}]")
        assert body == expected_body(r), head
    assert lines[-1] == (
        f"== connection {connection} {conn['host']} {conn['path']}: handshake ok, ended "
        f"{conn['end']}, close {conn['close_code']}; {conn['messages_c2s']} messages c2s, "
        f"{conn['messages_s2c']} s2c, 0 error(s)")


def test_fragments_deflate_and_control_frames_are_there(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    lines = follow(capsys, str(FRAGMENTS), "--connection", "1")
    text = "\n".join(lines)
    # A ping sent between two fragments of a message, shown as its text, and its pong.
    assert "→ ping 25 B  [packet 88]\n    mid-fragment-ping-deflate" in text
    assert "← pong 25 B  [packet 91]\n    mid-fragment-ping-deflate" in text
    assert "3 frames, compressed" in text
    assert '    "type": "fragmented",' in text  # JSON pretty-printed


def test_max_payload_and_filters(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r for r in jsonl(capsys, "messages", FRAGMENTS)
            if r["connection"] == 0 and r["type"] == "binary"]
    lines = follow(capsys, str(FRAGMENTS), "--conn", "0", "--type", "binary",
                   "--max-payload", "20")
    entries = split_entries(lines)
    assert len(entries) == len(rows) > 1
    for (_, body), r in zip(entries, rows, strict=True):
        payload = base64.b64decode(r["payload_b64"])
        assert body == [*xxd(payload[:20]), f"… (20 of {r['length']} bytes shown)"]


def test_violations_inline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.pcap"
    pt.cut_start(FRAGMENTS, cut, 30)
    violations = jsonl(capsys, "violations", cut)
    lines = follow(capsys, str(cut), "--connection", "0")
    inline = [line for line in lines if " !! " in line]
    assert inline == [
        f"{v['ts']:.6f} {ARROW[v['direction']]} !! {v['severity']} {v['rule']} "
        f"({v['reference']}, packet {v['packet']}): {v['message']}" for v in violations]


def test_one_existing_connection_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["follow", str(FRAGMENTS), "--connection", "7"]) == 2
    assert "no connection 7" in capsys.readouterr().err
    for argv in (["follow", str(FRAGMENTS)], ["follow", str(FRAGMENTS), "--conn", "0,1"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "usage: wsanalyze follow" in capsys.readouterr().err
