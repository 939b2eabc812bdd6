"""The Parquet dataset a batch run writes, read back.

``DATASET/_manifest.json`` lists the parts of every completed task;
:class:`Dataset` reads exactly those (never a temporary or stale file), as lazy
``dask.dataframe`` objects or, for small results, as pandas DataFrames.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from wsanalyze.batch.plan import PlanError, read_manifest
from wsanalyze.batch.tasks import TABLE_DIRS

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

_NAMES = {**{v: v for v in TABLE_DIRS.values()}, **TABLE_DIRS}
"""``"messages"`` or ``"message"`` → folder name."""


class Dataset:
    """A batch dataset: ``.connections``, ``.messages``, ``.frames``, ``.violations``
    are lazy dask DataFrames; :meth:`to_pandas` loads one table."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        manifest = read_manifest(self.path)
        if manifest is None:
            raise PlanError(f"{self.path} has no {'_manifest.json'} (not a batch dataset)")
        self.manifest: dict[str, Any] = manifest

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return list(self.manifest["tasks"])

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Tasks that failed (after Dask's retries), with their ``error``."""
        return [t for t in self.manifest["tasks"] if t["status"] == "failed"]

    @property
    def rows(self) -> dict[str, int]:
        return dict(self.manifest["rows"])

    def files(self, table: str) -> list[str]:
        """The part files of ``table`` ("messages" or "message"...), in task order."""
        folder = _table(table)
        if folder not in self.manifest["rows"]:
            raise ValueError(f"the dataset has no {folder} table (see --tables)")
        return [os.path.join(self.path, t["parts"][folder]) for t in self.manifest["tasks"]
                if t["status"] == "done"]

    def read(self, table: str) -> dd.DataFrame:
        import dask.dataframe as dd

        files = self.files(table)
        if not files:
            raise ValueError(f"no task of the dataset completed; nothing to read in {table}")
        return dd.read_parquet(files)

    @property
    def connections(self) -> dd.DataFrame:
        return self.read("connections")

    @property
    def messages(self) -> dd.DataFrame:
        return self.read("messages")

    @property
    def frames(self) -> dd.DataFrame:
        return self.read("frames")

    @property
    def violations(self) -> dd.DataFrame:
        return self.read("violations")

    def to_pandas(self, table: str) -> pd.DataFrame:
        """One table in memory (for small results), rows in task then row order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from wsanalyze.batch.parts import arrow_schema

        singular = {v: k for k, v in TABLE_DIRS.items()}[_table(table)]
        files = self.files(table)
        tables = [pq.read_table(f) for f in files] or [arrow_schema(singular).empty_table()]
        return pa.concat_tables(tables).to_pandas()

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}={v}" for k, v in self.manifest["rows"].items())
        return f"Dataset({self.path!r}: {rows}; {len(self.failed)} failed tasks)"


def _table(name: str) -> str:
    try:
        return _NAMES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r} (connections, messages, frames, "
                         "violations)") from None
