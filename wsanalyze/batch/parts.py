"""Writing one task's rows of one table as a Parquet part file.

The one place that turns rows into Parquet for the batch dataset: the columns
of :data:`wsanalyze.output.schema.COLUMNS` plus ``capture``, typed as
``analyze()`` types them (:mod:`wsanalyze.output.parquet`: UTC timestamps,
durations, categories, binary payloads), so reading the dataset back with
pandas or Dask gives the DataFrames' dtypes.  Rows are
buffered as columns and written in row groups, so a task's memory is one row
group per table, not its whole output.  The part is written under a hidden
temporary name and renamed when complete, so a reader (or a resumed run) never
sees half a part.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from wsanalyze.output.dataframe import typed_frame
from wsanalyze.output.parquet import arrow_schema as frame_schema
from wsanalyze.output.parquet import arrow_table
from wsanalyze.output.schema import COLUMNS, Spec

ROW_GROUP = 50_000
"""Rows per Parquet row group (and per in-memory buffer)."""

def spec(table: str) -> Spec:
    """The columns of a dataset table: OUTPUTS.md columns, then ``capture``."""
    return (*COLUMNS[table], ("capture", "string"))


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a dataset table (with the pandas metadata of its dtypes)."""
    columns = spec(table)
    return frame_schema(typed_frame(columns, {}), columns)


class PartWriter:
    """Append rows (dicts with the table's columns and ``capture``); :meth:`commit`
    renames the finished part to ``path``; :meth:`abort` removes the temporary."""

    def __init__(self, table: str, path: str) -> None:
        self.path = path
        self.spec = spec(table)
        self.schema = arrow_schema(table)
        self.names = self.schema.names
        self.rows = 0
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        # Unique per attempt: a retried task never writes into a dead attempt's file.
        # Hidden and not ending in .parquet: pyarrow (pandas) skips "."-names, Dask
        # and DuckDB's "*.parquet" skip other extensions, so readers of the folder
        # never see a part being written.
        self._tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        self._columns: list[list[Any]] = [[] for _ in self.names]
        self._writer = pq.ParquetWriter(self._tmp, self.schema)

    def append(self, row: dict[str, Any]) -> None:
        for column, name in zip(self._columns, self.names, strict=True):
            column.append(row[name])
        self.rows += 1
        if len(self._columns[0]) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        frame = typed_frame(self.spec, dict(zip(self.names, self._columns, strict=True)))
        self._writer.write_table(arrow_table(frame, self.schema))
        self._columns = [[] for _ in self.names]

    def commit(self) -> None:
        if self._columns[0] or self.rows == 0:
            self._flush()  # an empty part still carries the schema
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if os.path.exists(self._tmp):
                os.remove(self._tmp)
