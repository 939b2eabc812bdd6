"""Parquet files of the tables, typed like the DataFrames of ``analyze()``.

Timestamps are Parquet timestamps (UTC, nanoseconds), durations Arrow durations,
payloads binary, closed vocabularies dictionary-encoded, and the pandas metadata
is stored, so ``pd.read_parquet`` gives back the dtypes ``analyze()`` returns.
:class:`ParquetWriter` streams records (the CLI's ``--format parquet``);
:func:`write_dataframe` writes a DataFrame (``AnalysisResult.to_parquet``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from wsanalyze.output.dataframe import typed_frame
from wsanalyze.output.schema import COLUMNS, Spec, dataframe_columns
from wsanalyze.output.writers import BIG_FIELD, Writer

_ARROW: dict[str, pa.DataType] = {
    "int64": pa.int64(), "int64?": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
    "bool?": pa.bool_(), "string": pa.string(), "binary": pa.binary(),
    "list<string>": pa.list_(pa.string()), "timestamp": pa.timestamp("ns", tz="UTC"),
    "duration": pa.duration("ns"),
}


_BIG_COLUMNS = frozenset(("payload", "text"))


def _one_value(kind: pa.DataType, data: bytes | None) -> pa.Array:
    """A one-element string or binary Arrow array over ``data`` (zero copy)."""
    if data is None:
        return pa.nulls(1, kind)
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
    return pa.Array.from_buffers(kind, 1, [None, offsets, pa.py_buffer(data)])


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a schema kind."""
    if kind.startswith("enum:"):
        return pa.dictionary(pa.int16(), pa.string())
    return _ARROW[kind]


def arrow_schema(frame: pd.DataFrame, spec: Iterable[tuple[str, str]]) -> pa.Schema:
    """The Arrow schema of ``frame``: schema kinds where known, inferred elsewhere,
    with the pandas metadata of ``frame`` (so reading restores its dtypes)."""
    kinds = dict(spec)
    inferred = pa.Schema.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, arrow_type(kinds[f.name])) if f.name in kinds else f
              for f in inferred]
    return pa.schema(fields, metadata=inferred.metadata)


def arrow_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``frame`` as an Arrow table of ``schema`` (from :func:`arrow_schema`)."""
    return _table(frame, schema)


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame.reset_index(drop=True), schema=schema,
                                preserve_index=False)


def write_dataframe(frame: pd.DataFrame, table: str, path: str) -> None:
    """Write a table's DataFrame (as ``analyze()`` returns it, extra columns kept)."""
    schema = arrow_schema(frame.reset_index(drop=True), dataframe_columns(table))
    pq.write_table(_table(frame, schema), path)


class ParquetWriter(Writer):
    """Records of one table to a Parquet file, in batches of :attr:`BATCH` rows.
    Payloads are the ``payload`` column (binary), cut to ``max_payload`` bytes when
    asked (``truncated`` then set)."""

    BATCH = 20_000
    BATCH_BYTES = 16 << 20
    """A batch is also written once it holds this many payload bytes, so a huge
    message is not joined by thousands of others in memory (README, Limits)."""

    def __init__(self, table: str, path: str, max_payload: int | None) -> None:
        super().__init__(table, path, max_payload)
        self.spec: Spec = COLUMNS[table]
        self.schema = arrow_schema(typed_frame(self.spec, {}), self.spec)
        # Min/max statistics and dictionary pages copy every value of a column:
        # for payload and text, a 64 MiB message would be held several more times.
        small = [n for n in self.schema.names if n not in _BIG_COLUMNS]
        self._writer = pq.ParquetWriter(path, self.schema, write_statistics=small,
                                        use_dictionary=small)
        self._batch: dict[str, list[Any]] = {name: [] for name, _ in self.spec}
        self._batch_bytes = 0

    def write(self, record: dict[str, Any]) -> None:
        if self.table == "message":
            record = self._cut(record)
            if len(record["payload"]) > BIG_FIELD:
                self._flush()
                self._write_big(record)
                self.rows += 1
                return
            self._batch_bytes += len(record["payload"])
        for name, values in self._batch.items():
            values.append(record[name])
        self.rows += 1
        if len(self._batch["connection"]) >= self.BATCH or self._batch_bytes >= self.BATCH_BYTES:
            self._flush()

    def _cut(self, record: dict[str, Any]) -> dict[str, Any]:
        payload: bytes = record["payload"]
        limit = self.max_payload
        if limit is None or len(payload) <= limit:
            return record
        row = dict(record, payload=payload[:limit], truncated=True)
        if row["text"] is not None:
            row["text"] = payload[:limit].decode("utf-8", "replace")
        return row

    def _write_big(self, record: dict[str, Any]) -> None:
        """One huge message as a one-row table whose payload and text columns are
        Arrow arrays over the record's own bytes (no copy)."""
        small = [(n, k) for n, k in self.spec if n not in _BIG_COLUMNS]
        frame = typed_frame(tuple(small), {n: [record[n]] for n, _ in small})
        rest = _table(frame, pa.schema([self.schema.field(n) for n, _ in small]))
        payload: bytes = record["payload"]
        text: str | None = record["text"]
        # A text as long as its payload is ASCII: its UTF-8 bytes are the payload.
        data = {"payload": payload,
                "text": None if text is None else
                payload if len(text) == len(payload) else text.encode("utf-8")}
        arrays = [_one_value(self.schema.field(n).type, data[n]) if n in _BIG_COLUMNS
                  else rest.column(n) for n in self.schema.names]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def _flush(self) -> None:
        if self._batch["connection"]:
            frame = typed_frame(self.spec, self._batch)
            self._writer.write_table(_table(frame, self.schema))
            self._batch = {name: [] for name, _ in self.spec}
            self._batch_bytes = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
