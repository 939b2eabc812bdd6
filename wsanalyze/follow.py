"""``wsanalyze follow CAPTURE --connection N``: one connection as a conversation.

Like Wireshark's Follow → WebSocket Stream: each message with its time, a
direction arrow (→ client to server, ← server to client), type, size and packet,
then its whole payload: text as text (JSON pretty-printed), binary as a hex dump,
close code and reason; control frames and violations inline, in capture order.
Exit codes: 0 shown, 1 the capture could not be read, 2 bad usage or no such
connection.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import IO, Any

from wsanalyze import cli_args
from wsanalyze.filters import RecordFilter, add_filter_arguments
from wsanalyze.output.textwidth import printable
from wsanalyze.output.timefmt import TimeFormat

ARROWS = {"c2s": "→", "s2c": "←"}
INDENT = "    "
TABLES = frozenset(("connection", "message", "violation"))


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "follow", help="one connection as a conversation with whole payloads (Wireshark's "
        "Follow)", description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  wsanalyze follow capture.pcap --connection 0\n"
               "  wsanalyze follow -r capture.pcap --conn 2 --type text --max-payload 200")
    cli_args.add_capture(p)
    p.add_argument("--max-payload", type=cli_args.positive_int, metavar="N",
                   help="show only the first N bytes of each payload")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    cli_args.add_time_display(p)
    add_filter_arguments(p, connection_required=True)
    cli_args.add_common(p)
    p.set_defaults(func=run, parser=p)
    return p


def hexdump(data: bytes) -> list[str]:
    """``xxd``-like lines: offset, 16 bytes in hex, the printable ASCII."""
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8])
        if len(chunk) > 8:
            hexes += "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}  {hexes:<48}  |{text}|")
    return lines


def _text_lines(text: str) -> list[str]:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(stripped), indent=2, ensure_ascii=False)
    # Escape control characters (a capture must not drive the terminal); keep lines.
    return [printable(line.replace("\t", "    ")) for line in text.split("\n")]


def body(row: dict[str, Any], max_payload: int | None) -> list[str]:
    """The payload lines of a messages row."""
    if row["error"]:
        return [f"<undecodable: {row['error']}>"]
    if row["type"] == "close":
        code = row["close_code"]
        return [f"{code if code is not None else '(no status code)'}"
                + (f" {printable(row['close_reason'])}" if row["close_reason"] else "")]
    payload: bytes = row["payload"]
    cut = max_payload is not None and len(payload) > max_payload
    if cut:
        payload = payload[:max_payload]
    text = row["text"]
    if text is not None or row["type"] in ("ping", "pong", "text"):
        try:
            decoded = payload.decode("utf-8", "strict" if not cut else "ignore")
        except UnicodeDecodeError:
            decoded = None
        if decoded is not None and (row["type"] == "text" or decoded.isprintable()):
            text = decoded
        else:
            text = None
    lines = (_text_lines(text) if text else []) if text is not None else hexdump(payload)
    if cut or row["truncated"]:
        lines.append(f"… ({len(payload)} of {row['length']} bytes shown)")
    return lines


class Conversation:
    """Writes one connection's records as they stream in."""

    def __init__(self, out: IO[str], timefmt: TimeFormat, max_payload: int | None) -> None:
        self.out = out
        self.timefmt = timefmt
        self.max_payload = max_payload
        self.started = False
        self.shown = 0

    def _start(self, row: dict[str, Any]) -> None:
        if not self.started:
            self.started = True
            self.out.write(f"connection {row['connection']}: client {row['client']} "
                           f"⇄ server {row['server']}  (times: {self.timefmt.header()})\n\n")

    def message(self, row: dict[str, Any]) -> None:
        self._start(row)
        details = [f"packet {row['packet']}"]
        if row["frames"] > 1:
            details.append(f"{row['frames']} frames")
        if row["compressed"]:
            details.append(f"compressed {row['raw_length']} B")
        if not row["complete"]:
            details.append("INCOMPLETE (bytes lost)")
        head = (f"{self.timefmt.format(row['ts'])} {ARROWS.get(row['direction'], '?')} "
                f"{row['type']} {row['length']} B  [{', '.join(details)}]")
        self.out.write(head + "\n")
        for line in body(row, self.max_payload):
            self.out.write(f"{INDENT}{line}\n" if line else "\n")
        self.shown += 1

    def violation(self, row: dict[str, Any]) -> None:
        self._start(row)
        where = f"packet {row['packet']}" if row["packet"] is not None else "no packet"
        arrow = ARROWS.get(row["direction"] or "", "·")
        self.out.write(f"{self.timefmt.format(row['ts'])} {arrow} !! {row['severity']} "
                       f"{row['rule']} ({row['reference']}, {where}): "
                       f"{printable(row['message'])}\n")
        self.shown += 1

    def ended(self, row: dict[str, Any]) -> None:
        self._start(row)
        close = "" if row["close_code"] is None else f", close {row['close_code']}"
        self.out.write(
            f"\n== connection {row['connection']} {row['host'] or '-'} {row['path'] or '-'}: "
            f"handshake {row['handshake']}, ended {row['end']}{close}; "
            f"{row['messages_c2s']} messages c2s, {row['messages_s2c']} s2c, "
            f"{row['violations']} error(s)\n")


def run(args: argparse.Namespace) -> int:
    from wsanalyze.output.streams import close_output, open_output
    from wsanalyze.progress import Progress, file_size
    from wsanalyze.table_command import finish

    parser: argparse.ArgumentParser = args.parser
    cli_args.resolve_capture(parser, args)
    record_filter = RecordFilter.from_args(args)
    wanted = record_filter.connections or record_filter.streams or frozenset()
    if len(wanted) != 1:
        parser.error("follow shows one connection: give one number")
    problem = record_filter.check_stream()
    if problem:
        parser.error(problem)
    capture = cli_args.open_run(args, TABLES)
    if capture is None:
        return 1
    record_filter.capture_start = lambda: capture.first_ts
    record_filter.stream_of = capture.streams
    timefmt = TimeFormat(args.time_format, args.utc)
    out = open_output(args.output)
    talk = Conversation(out, timefmt, args.max_payload)
    progress = Progress(not args.quiet, file_size(args.capture),
                        lambda: capture.reader.bytes_read if capture.jobs == 1 else None)
    connections = 0
    try:
        for table, row in capture:
            progress.tick(capture.packets)
            if table == "connection":
                connections += 1
            if not record_filter.keep(table, row):
                continue
            if timefmt.start is None:
                timefmt.start = capture.first_ts
            getattr(talk, {"message": "message", "violation": "violation",
                           "connection": "ended"}[table])(row)
    finally:
        progress.done()
        close_output(out)
    status = finish(capture)
    if status == 0 and not talk.started:
        print(f"wsanalyze: error: no connection {next(iter(wanted))} with matching rows in "
              f"{args.capture} (it has {connections} connection(s): "
              "`wsanalyze connections` lists them)", file=sys.stderr)
        return 2
    return status
