"""Writing table records as JSON Lines, CSV, Parquet or a human-readable table.

Every writer streams: it takes records one at a time and keeps at most a batch
in memory, so a capture larger than memory can be exported.
"""

from __future__ import annotations

import base64
import codecs
import csv
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from wsanalyze.output.schema import column_names

FORMATS = ("table", "jsonl", "csv", "parquet")


def file_row(table: str, record: dict[str, Any], max_payload: int | None) -> dict[str, Any]:
    """A record as it appears in files: the payload as ``payload_b64`` (cut to
    ``max_payload`` bytes when asked, ``truncated`` then set), text cut alike."""
    if table != "message":
        return record
    row = dict(record)
    payload: bytes = row.pop("payload")
    text = row["text"]
    if max_payload is not None and len(payload) > max_payload:
        payload = payload[:max_payload]
        if text is not None:
            text = codecs.getincrementaldecoder("utf-8")("replace").decode(payload)
    row["truncated"] = row["truncated"] or len(payload) < row["length"]
    row["text"] = text
    # Keep the OUTPUTS.md column order with payload_b64 in payload's place.
    out: dict[str, Any] = {}
    for name in column_names("message", payload_b64=True):
        out[name] = base64.b64encode(payload).decode("ascii") if name == "payload_b64" \
            else row[name]
    return out


class Writer:
    """Base class: ``write(record)`` then ``close()``."""

    def __init__(self, table: str, stream: IO[str] | IO[bytes] | str,
                 max_payload: int | None) -> None:
        self.table = table
        self.max_payload = max_payload
        self.rows = 0

    def write(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JsonlWriter(Writer):
    def __init__(self, table: str, stream: IO[str], max_payload: int | None) -> None:
        super().__init__(table, stream, max_payload)
        self.stream = stream
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(self._dumps(file_row(self.table, record, self.max_payload)))
        self.stream.write("\n")
        self.rows += 1


class CsvWriter(Writer):
    def __init__(self, table: str, stream: IO[str], max_payload: int | None) -> None:
        super().__init__(table, stream, max_payload)
        self.names = column_names(table, payload_b64=True)
        self.csv = csv.writer(stream, lineterminator="\n")
        self.csv.writerow(self.names)

    def write(self, record: dict[str, Any]) -> None:
        row = file_row(self.table, record, self.max_payload)
        self.csv.writerow([_csv_cell(row[n]) for n in self.names])
        self.rows += 1


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


Column = tuple[str, int, Callable[[dict[str, Any]], str]]


def _ts(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S.%f")[:-3]


def _preview(record: dict[str, Any]) -> str:
    if record.get("error"):
        return f"<{record['error']}>"
    if record["type"] == "close":
        code = record["close_code"]
        return f"{code if code is not None else '(no code)'} {record['close_reason'] or ''}"
    text = record["text"]
    if text is not None:
        return repr(text)[1:-1] if text else "(empty)"
    payload: bytes = record["payload"]
    if not payload:
        return "(empty)"
    return "0x" + payload[:24].hex()


def _flags(record: dict[str, Any]) -> str:
    return ("Z" if record["compressed"] else "-") + ("-" if record["complete"] else "!")


_TABLE_COLUMNS: dict[str, list[Column]] = {
    "message": [
        ("conn", 4, lambda r: str(r["connection"])),
        ("idx", 5, lambda r: str(r["index"])),
        ("dir", 3, lambda r: r["direction"]),
        ("time", 12, lambda r: _ts(r["ts"])),
        ("packet", 7, lambda r: str(r["packet"])),
        ("type", 6, lambda r: r["type"]),
        ("length", 8, lambda r: str(r["length"])),
        ("zc", 2, _flags),
        ("payload", 0, _preview),
    ],
    "frame": [
        ("conn", 4, lambda r: str(r["connection"])),
        ("idx", 5, lambda r: str(r["index"])),
        ("dir", 3, lambda r: r["direction"]),
        ("time", 12, lambda r: _ts(r["ts"])),
        ("packet", 7, lambda r: str(r["packet"])),
        ("op", 3, lambda r: f"{r['opcode']:X}"),
        ("FRRR", 4, lambda r: "".join("1" if r[k] else "0" for k in ("fin", "rsv1", "rsv2",
                                                                        "rsv3"))),
        ("mask", 8, lambda r: r["mask_key"] or "-"),
        ("hdr", 3, lambda r: str(r["header_bytes"])),
        ("length", 9, lambda r: str(r["payload_length"])),
        ("offset", 10, lambda r: str(r["stream_offset"])),
        ("msg", 0, lambda r: str(r["message"])),
    ],
    "violation": [
        ("conn", 4, lambda r: str(r["connection"])),
        ("packet", 7, lambda r: str(r["packet"]) if r["packet"] is not None else "-"),
        ("dir", 3, lambda r: r["direction"] or "-"),
        ("sev", 4, lambda r: r["severity"][:4]),
        ("rule", 28, lambda r: r["rule"]),
        ("message", 0, lambda r: r["message"]),
    ],
    "connection": [
        ("conn", 4, lambda r: str(r["connection"])),
        ("client", 21, lambda r: r["client"]),
        ("server", 21, lambda r: r["server"]),
        ("path", 12, lambda r: r["path"] or "-"),
        ("hs", 8, lambda r: r["handshake"]),
        ("msgs", 9, lambda r: f"{r['messages_c2s']}/{r['messages_s2c']}"),
        ("defl", 4, lambda r: "yes" if r["deflate"] else "no"),
        ("err", 0, lambda r: str(r["violations"])),
    ],
}


class TableWriter(Writer):
    """Fixed-width rows for a terminal; long cells are shortened with an ellipsis."""

    def __init__(self, table: str, stream: IO[str], max_payload: int | None,
                 width: int = 100) -> None:
        super().__init__(table, stream, max_payload)
        self.stream = stream
        self.columns = _TABLE_COLUMNS[table]
        self.width = width
        self.stream.write(self._line({name: name for name, _, _ in self.columns}, True) + "\n")

    def _line(self, cells: dict[str, str], header: bool = False) -> str:
        parts = []
        used = 0
        for name, w, _ in self.columns:
            text = cells[name]
            if w == 0:
                w = max(8, self.width - used)
            if len(text) > w:
                text = text[: w - 1] + "…"
            parts.append(text.ljust(w))
            used += w + 1
        return " ".join(parts).rstrip()

    def write(self, record: dict[str, Any]) -> None:
        cells = {}
        for name, _, fn in self.columns:
            cells[name] = fn(record).replace("\n", "⏎").replace("\r", "")
        self.stream.write(self._line(cells) + "\n")
        self.rows += 1


def make_writer(fmt: str, table: str, stream: IO[str] | None, path: str | None,
                max_payload: int | None) -> Writer:
    """The writer for ``fmt``; Parquet needs a file path, the others a text stream."""
    if fmt == "parquet":
        assert path is not None
        from wsanalyze.output.parquet import ParquetWriter  # typed like analyze()

        return ParquetWriter(table, path, max_payload)
    assert stream is not None
    if fmt == "jsonl":
        return JsonlWriter(table, stream, max_payload)
    if fmt == "csv":
        return CsvWriter(table, stream, max_payload)
    return TableWriter(table, stream, max_payload)
