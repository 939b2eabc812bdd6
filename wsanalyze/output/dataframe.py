"""Typed pandas columns from the schema's kinds: the dtype of a column is fixed by
its kind (:mod:`wsanalyze.output.schema`), never by the values it holds.

* ``timestamp`` → ``datetime64[ns, UTC]``; values outside its range (years
  before 1677 or after 2262, NaN, None) become NaT instead of raising.
* ``duration`` → ``timedelta64[ns]`` (from float seconds).
* ``enum:NAME`` → a categorical with the fixed categories of the vocabulary.
* ``string`` → :data:`STRING` (``string[pyarrow]``, missing values are ``pd.NA``).
* ``int64?`` / ``bool?`` → nullable ``Int64`` / ``boolean``.
* ``binary`` and ``list<string>`` stay ``object`` columns (bytes, lists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from wsanalyze.output.schema import VOCABULARIES, Spec

#: The one string dtype of every table and metric table.
STRING = pd.StringDtype("pyarrow")
TIMESTAMP = pd.DatetimeTZDtype("ns", "UTC")
DURATION = np.dtype("timedelta64[ns]")
_NAT = np.iinfo(np.int64).min
_LIMIT_S = 9.2e9  # datetime64[ns] spans ±9.22e9 s around 1970
_PLAIN: dict[str, Any] = {"int64": "int64", "int64?": "Int64", "float64": "float64",
                          "bool": "bool", "bool?": "boolean", "string": STRING,
                          "binary": object, "list<string>": object,
                          "timestamp": TIMESTAMP, "duration": DURATION}


def dtype(kind: str) -> Any:
    """The pandas dtype of a schema kind."""
    if kind.startswith("enum:"):
        return pd.CategoricalDtype(list(VOCABULARIES[kind[5:]]))
    return _PLAIN[kind]


def _nanoseconds(values: Any) -> np.ndarray:
    """Float seconds (None/NaN allowed) → int64 nanoseconds, NaT where out of range.
    Whole and fractional seconds are scaled apart: ``x * 1e9`` in float would lose
    up to 256 ns at today's epoch values."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x) & (np.abs(x) < _LIMIT_S)
    x = np.where(ok, x, 0.0)
    whole = np.floor(x)
    ns = whole.astype(np.int64) * 1_000_000_000 + np.round((x - whole) * 1e9).astype(np.int64)
    ns[~ok] = _NAT
    return ns


def timestamps(values: Any) -> pd.Series:
    """Float epoch seconds → ``datetime64[ns, UTC]`` (NaT when missing or out of range)."""
    return pd.Series(_nanoseconds(values).view("datetime64[ns]")).dt.tz_localize("UTC")


def durations(values: Any) -> pd.Series:
    """Float seconds → ``timedelta64[ns]`` (NaT when missing or out of range)."""
    return pd.Series(_nanoseconds(values).view("timedelta64[ns]"))


def seconds(series: pd.Series) -> np.ndarray:
    """Float seconds of a column: epoch seconds of timestamps, seconds of durations,
    numbers as they are; NaN where missing."""
    kind = series.dtype
    if isinstance(kind, pd.DatetimeTZDtype) or kind.kind in "mM":
        # asi8: the int64 values since the epoch (UTC for tz-aware), NaT as min int64.
        values = series.array
        if values.unit != "ns":
            values = values.as_unit("ns")
        ns = np.asarray(values.asi8)
        out = (ns // 1_000_000_000).astype(np.float64) + (ns % 1_000_000_000) / 1e9
        out[ns == _NAT] = np.nan
        return out
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def column(kind: str, values: Any) -> pd.Series:
    """A column of ``kind`` from a list (or array) of plain values."""
    if kind == "timestamp":
        return timestamps(values)
    if kind == "duration":
        return durations(values)
    if kind.startswith("enum:"):
        vocabulary = VOCABULARIES[kind[5:]]
        inferred = pd.Categorical(values)
        # Never lose a value the vocabulary lacks: add it after the fixed categories.
        unknown = sorted(set(inferred.categories) - set(vocabulary))
        return pd.Series(inferred.set_categories((*vocabulary, *unknown)))
    want = dtype(kind)
    if want is object:
        # Keep None (not NaN) for missing bytes and lists.
        series = pd.Series(values, dtype=object)
        return series.where(series.notna(), None) if len(series) else series
    return pd.Series(values, dtype=want)


def typed_frame(spec: Spec, data: Mapping[str, Any], length: int | None = None
                ) -> pd.DataFrame:
    """A DataFrame with the columns of ``spec`` in order, each of its kind's dtype.
    ``data`` maps names to value lists, arrays or Series; missing names give
    all-missing columns (``length`` rows)."""
    cols: dict[str, pd.Series] = {}
    for name, kind in spec:
        if name in data:
            values = data[name]
            if isinstance(values, pd.Series):
                values = _plain(values, kind)
            cols[name] = column(kind, values)
        else:
            cols[name] = column(kind, [None] * (length or 0))
    frame = pd.DataFrame(cols, columns=[n for n, _ in spec])
    return frame


def _plain(series: pd.Series, kind: str) -> Any:
    """Values of an existing Series in the form :func:`column` expects."""
    if kind in ("timestamp", "duration"):
        return seconds(series)
    if kind in ("binary", "list<string>") or kind.startswith("enum:"):
        return series.astype(object).where(series.notna(), None).tolist()
    return series.reset_index(drop=True)


def conform(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """``frame`` with every column of ``spec`` cast to its kind's dtype (other columns
    kept as they are, index kept)."""
    out = frame.copy()
    for name, kind in spec:
        if name in out.columns and out[name].dtype != dtype(kind):
            values = _plain(out[name], kind)
            out[name] = column(kind, values).set_axis(out.index)
    return out


def check(frame: pd.DataFrame, spec: Sequence[tuple[str, str]]) -> list[str]:
    """Columns of ``frame`` whose dtype is not their kind's (``"name: got != want"``)."""
    problems = []
    for name, kind in spec:
        if name not in frame.columns:
            problems.append(f"{name}: missing")
        elif frame[name].dtype != dtype(kind):
            problems.append(f"{name}: {frame[name].dtype} != {dtype(kind)}")
    return problems
