"""A table as one JSON document (``-o rows.json``): an array of the JSONL objects.

Streams like the JSON Lines writer: one row at a time, nothing kept.
"""

from __future__ import annotations

import json
from typing import IO, Any

from wsanalyze.output.writers import file_row


class JsonArrayWriter:
    def __init__(self, table: str, stream: IO[str], max_payload: int | None) -> None:
        self.table = table
        self.stream = stream
        self.max_payload = max_payload
        self.rows = 0
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
        stream.write("[")

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(",\n" if self.rows else "\n")
        self.stream.write(self._dumps(file_row(self.table, record, self.max_payload)))
        self.rows += 1

    def close(self) -> None:
        self.stream.write("\n]\n" if self.rows else "]\n")
