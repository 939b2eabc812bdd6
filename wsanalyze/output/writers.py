"""Writing table records as JSON Lines, CSV or Parquet (the human table: output/table.py).

Every writer streams: it takes records one at a time and keeps at most a batch
in memory, so a capture larger than memory can be exported.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import operator
from collections.abc import Callable, Iterator
from typing import IO, Any

from wsanalyze.output.jsonl_line import BIG_FIELD, LineEncoder, cut, is_big
from wsanalyze.output.schema import column_names
from wsanalyze.speedups import json_string, line_breaks_escaped

_PIECE = 3 << 18
"""Bytes of payload base64-encoded at a time (a multiple of 3: the pieces join
into exactly the base64 of the whole)."""


def file_row(table: str, record: dict[str, Any], max_payload: int | None) -> dict[str, Any]:
    """A record as it appears in files: the payload as ``payload_b64`` (cut to
    ``max_payload`` bytes when asked, ``truncated`` then set), text cut alike."""
    if table != "message":
        return record
    payload, text, truncated = cut(record, max_payload)
    # Keep the OUTPUTS.md column order with payload_b64 in payload's place.
    out: dict[str, Any] = {}
    for name in column_names("message", payload_b64=True):
        if name == "payload_b64":
            out[name] = base64.b64encode(payload).decode("ascii")
        elif name == "text":
            out[name] = text
        elif name == "truncated":
            out[name] = truncated
        else:
            out[name] = record[name]
    return out


def _b64_pieces(payload: bytes) -> Iterator[str]:
    view = memoryview(payload)
    for i in range(0, len(payload), _PIECE):
        yield base64.b64encode(view[i : i + _PIECE]).decode("ascii")


def _str_pieces(text: str) -> Iterator[str]:
    for i in range(0, len(text), BIG_FIELD):
        yield text[i : i + BIG_FIELD]


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
    """One JSON object per line, ``", "``/``": "`` separators, non-ASCII as it is.

    U+2028/U+2029 (and U+0085) are written ``\\u2028``/``\\u2029`` so that readers splitting
    on Unicode line ends (``str.splitlines()``, JavaScript) see one record per
    line.  A message row is encoded without its two big fields, which are then
    spliced in: base64 needs no escaping, and the text goes through
    :func:`wsanalyze.speedups.json_string` (orjson when installed, else the
    stdlib's C escaper: the same bytes either way).
    """

    def __init__(self, table: str, stream: IO[str], max_payload: int | None) -> None:
        super().__init__(table, stream, max_payload)
        self.stream = stream
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
        names = column_names(table, payload_b64=True)
        # The record's values in file column order, payload in payload_b64's place.
        self._names = names
        self._values = operator.itemgetter(*(n if n != "payload_b64" else "payload"
                                             for n in names))
        self._line = LineEncoder(max_payload).message
        # Streams of output/streams.py take encoded lines as they are; others
        # (io.StringIO...) get them decoded.
        self._write_bytes: Callable[[bytes], object] | None = \
            getattr(stream, "write_bytes", None)

    def write(self, record: dict[str, Any]) -> None:
        if self.table == "message":
            self._write_message(record)
        else:
            self.stream.write(line_breaks_escaped(self._dumps(record)) + "\n")
        self.rows += 1

    def _write_message(self, record: dict[str, Any]) -> None:
        line = self._line(record)
        if line is None:  # a big row, or an unusual value (jsonl_line.py)
            payload, text, truncated = cut(record, self.max_payload)
            if is_big(payload, text):
                self._write_big(record, payload, text, truncated)
            else:
                self.stream.write(self._message_line(record, payload, text, truncated))
        elif self._write_bytes is not None:
            self._write_bytes(line)
        else:
            self.stream.write(line.decode())

    def _message_line(self, record: dict[str, Any], payload: bytes, text: str | None,
                      truncated: bool) -> str:
        row = dict(zip(self._names, self._values(record), strict=True))
        row["payload_b64"], row["text"], row["truncated"] = "", None, truncated
        line = line_breaks_escaped(self._dumps(row))
        # The first ', "name": ' is the key itself: in a string, '"' is escaped.
        at = line.index(_B64_AT) + len(_B64_AT) - 1
        b64 = base64.b64encode(payload).decode("ascii")
        if text is None:
            return f"{line[:at]}{b64}{line[at:]}\n"
        end = line.index(_TEXT_AT, at) + len(_TEXT_AT) - 4
        return f"{line[:at]}{b64}{line[at:end]}{json_string(text)}{line[end + 4:]}\n"

    def _write_big(self, record: dict[str, Any], payload: bytes, text: str | None,
                   truncated: bool) -> None:
        """The same line as :meth:`write` would build, written field by field with
        the payload and text in pieces (JSON escapes character by character, so
        the pieces join into exactly the escaping of the whole)."""
        write = self.stream.write

        def dumps(value: Any) -> str:
            return line_breaks_escaped(self._dumps(value))

        sep = "{"
        for name in self._names:
            write(f"{sep}{dumps(name)}: ")
            sep = ", "
            if name == "payload_b64":
                write('"')
                for piece in _b64_pieces(payload):
                    write(piece)
                write('"')
            elif name == "text" and text is not None:
                write('"')
                for piece in _str_pieces(text):
                    write(json_string(piece)[1:-1])
                write('"')
            else:
                write(dumps(truncated if name == "truncated" else
                            None if name == "text" else record[name]))
        write("}\n")


_B64_AT = ', "payload_b64": ""'
_TEXT_AT = ', "text": null'


class CsvWriter(Writer):
    def __init__(self, table: str, stream: IO[str], max_payload: int | None) -> None:
        super().__init__(table, stream, max_payload)
        self.stream = stream
        self.names = column_names(table, payload_b64=True)
        self.csv = csv.writer(stream, lineterminator="\n")
        self.csv.writerow(self.names)

    def write(self, record: dict[str, Any]) -> None:
        if self.table == "message":
            payload, text, truncated = cut(record, self.max_payload)
            if is_big(payload, text):
                self._write_big(record, payload, text, truncated)
                self.rows += 1
                return
        row = file_row(self.table, record, self.max_payload)
        self.csv.writerow([_csv_cell(row[n]) for n in self.names])
        self.rows += 1

    def _write_big(self, record: dict[str, Any], payload: bytes, text: str | None,
                   truncated: bool) -> None:
        """The row :mod:`csv` would write, with the payload and text in pieces:
        small cells go through the csv module, the text is quoted by the same
        rule (:data:`_CSV_QUOTE_IF`) with quotes doubled piece by piece."""
        write = self.stream.write
        for i, name in enumerate(self.names):
            if i:
                write(",")
            if name == "payload_b64":
                for piece in _b64_pieces(payload):  # base64 never needs quoting
                    write(piece)
            elif name == "text" and text is not None:
                quote = any(c in text for c in _CSV_QUOTE_IF)
                if quote:
                    write('"')
                for piece in _str_pieces(text):
                    write(piece.replace('"', '""') if quote else piece)
                if quote:
                    write('"')
            else:
                value = truncated if name == "truncated" else None if name == "text" \
                    else record[name]
                write(_csv_line([_csv_cell(value)]))
        write("\n")


def _csv_line(cells: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


def _quoting_chars() -> frozenset[str]:
    """The characters that make :mod:`csv` quote a cell (asked of the csv module
    itself, so the big-row path writes exactly what it would)."""
    return frozenset(c for c in ',"\n\r\t \x00;' if _csv_line([f"a{c}b"]).startswith('"'))


_CSV_QUOTE_IF = _quoting_chars()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return value


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
    from wsanalyze.output.table import TableWriter, terminal_width

    return TableWriter(table, stream, max_payload, terminal_width())  # type: ignore[return-value]
