"""Many or huge captures on a Dask cluster, into a Parquet dataset.

``wsanalyze.batch(paths, out, client=None, ...)`` runs the analysis as Dask
tasks of (capture, flow-hash shard) and returns a :class:`Dataset` whose tables
are lazy dask DataFrames.  Dask is an optional extra (``wsanalyze[cluster]``):
importing this package does not need it, calling :func:`batch` does.

The package is callable (``wsanalyze.batch(...)`` is :func:`batch`): the
attribute ``wsanalyze.batch`` is this package once it is imported, so the
module itself must accept the call.  Names are imported on first use so that
``wsanalyze --help`` (which registers the ``batch`` command) stays fast.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__all__ = ["BatchOptions", "Dataset", "MissingDask", "PlanError", "batch"]

if TYPE_CHECKING:
    from wsanalyze.batch.dataset import Dataset
    from wsanalyze.batch.plan import BatchOptions, PlanError
    from wsanalyze.batch.run import MissingDask, batch

_HOME = {"BatchOptions": "plan", "Dataset": "dataset", "MissingDask": "run", "PlanError": "plan",
         "batch": "run"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"wsanalyze.batch.{_HOME[name]}"), name)
    raise AttributeError(name)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Dataset:
        from wsanalyze.batch.run import batch

        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
