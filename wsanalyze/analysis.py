"""Running the pipeline over a capture file: records as a stream, or as tables.

``iter_records`` streams (memory follows open connections and messages, not the
capture); ``analyze`` builds pandas DataFrames and so keeps what it returns.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from wsanalyze.config import DecoderLimits
from wsanalyze.output.schema import COLUMNS, dataframe_columns
from wsanalyze.parallel import ParallelRun
from wsanalyze.pipeline import TABLES, Analyzer, Options, Record, run
from wsanalyze.sources.capture import CaptureReader, open_capture
from wsanalyze.tls.keylog import as_keylog

if TYPE_CHECKING:
    import pandas as pd

    from wsanalyze.result import AnalysisResult

__all__ = ["AnalysisResult", "CaptureRun", "PayloadMode", "analyze", "iter_records",
           "table_names"]

PayloadMode = Literal["full", "preview", "none"]


def __getattr__(name: str) -> Any:
    # The result type needs pandas: imported on first use, so that the streaming
    # commands (which use CaptureRun) start without it.
    if name == "AnalysisResult":
        from wsanalyze.result import AnalysisResult

        return AnalysisResult
    raise AttributeError(name)


class CaptureRun:
    """One pass over a capture file.  Iterate it for records; afterwards
    :attr:`warnings` holds what the user must be told (where reading stopped,
    packets skipped).  Opening raises :class:`~wsanalyze.sources.CaptureError`
    when nothing can be read.  ``jobs`` > 1 decodes in that many processes
    (same records, same order)."""

    def __init__(self, path: str | os.PathLike[str], options: Options | None = None,
                 jobs: int = 1) -> None:
        self.path = os.fspath(path)
        self.options = options or Options()
        self.reader: CaptureReader = open_capture(self.path)
        # Standard input can be read only once: workers could not each read it.
        self.jobs = 1 if self.path == "-" else jobs
        self.analyzer = Analyzer(self.options)
        self.streams: dict[int, int] = self.analyzer.streams
        """Connection id → Wireshark's tcp.stream, filled while iterating."""
        self.warnings: list[str] = []
        self.stopped: str | None = None
        """After the run: why reading stopped before the end of the file, if it did."""
        self._parallel: ParallelRun | None = None

    @property
    def packets(self) -> int:
        return self._parallel.packets if self._parallel else self.analyzer.packets

    @property
    def first_ts(self) -> float | None:
        return self._parallel.first_ts if self._parallel else self.analyzer.first_ts

    @property
    def last_ts(self) -> float | None:
        return self._parallel.last_ts if self._parallel else self.analyzer.last_ts

    def __iter__(self) -> Iterator[Record]:
        if self.jobs > 1:
            self.reader.close()
            self._parallel = ParallelRun(self.path, self.options, self.jobs)
            self._parallel.streams = self.streams
            yield from self._parallel
            self.stopped = self._parallel.stopped
            if self.stopped:
                self.warnings.append(self.stopped)
            self.warnings.extend(self._parallel.notes)
            return
        analyzer = self.analyzer
        try:
            with fewer_collections():
                yield from run(self.reader, analyzer=analyzer)
        finally:
            self.reader.close()
        self.stopped = self.reader.stopped
        if self.stopped:
            self.warnings.append(self.stopped)
        self.warnings.extend(analyzer.notes())


GC_GEN0_THRESHOLD = 10_000
"""The cyclic collector's generation-0 threshold during a run (Python's default: 700)."""


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the garbage collector's generation-0 threshold for the packet loop.

    The loop allocates about a million short-lived objects per 100 MB (records,
    segments, events), which the default threshold turns into about a hundred
    collections, each also walking the surviving connection and message state:
    2-3 % of a compiled run (benchmarks/README.md, "Per-packet path").  Almost
    nothing the loop makes is cyclic garbage (the reassembler breaks its cycles
    itself), so collecting every 10,000 allocations instead frees the same
    memory, only a little later.  The caller's threshold is restored when the
    last run ends (a generator abandoned early ends when it is closed or
    collected).  Runs may be iterated interleaved, so the runs in progress are
    counted: restoring at each run's end would undo a later run's setting, or
    leave 10,000 behind for good.
    """
    if _gc_runs.count == 0:
        _gc_runs.saved = gc.get_threshold()
        gc.set_threshold(max(_gc_runs.saved[0], GC_GEN0_THRESHOLD), *_gc_runs.saved[1:])
    _gc_runs.count += 1
    try:
        yield
    finally:
        _gc_runs.count -= 1
        if _gc_runs.count == 0:
            gc.set_threshold(*_gc_runs.saved)


class _GcRuns:
    """The runs in progress and the caller's threshold from before the first."""

    count = 0
    saved: tuple[int, int, int] = (700, 10, 10)


_gc_runs = _GcRuns()


def table_names(tables: Iterable[str] | str) -> frozenset[str]:
    """Record table names (``"message"``) for ``tables``, which may also use the
    DataFrame attribute spelling (``"messages"``); ValueError on any other name."""
    from wsanalyze.result import TABLE_ATTRIBUTES

    names = [tables] if isinstance(tables, str) else list(tables)
    plural = dict(TABLE_ATTRIBUTES)
    unknown = [n for n in names if n not in TABLES and n not in plural]
    if unknown:
        valid = ", ".join(sorted({*TABLES, *plural}))
        raise ValueError(f"unknown table name(s) {', '.join(map(repr, unknown))}; "
                         f"valid names: {valid}")
    return frozenset(plural.get(n, n) for n in names)


def iter_records(path: str | os.PathLike[str], *, tables: Iterable[str] | str = TABLES,
                 limits: DecoderLimits | None = None, jobs: int = 1,
                 max_buffered: int = 8 << 20,
                 max_connections: int = 100_000, tls_keylog: Any = None) -> Iterator[Record]:
    """Stream ``(table, row)`` records of a capture without building tables.

    ``table`` is ``"connection"``, ``"message"``, ``"frame"`` or ``"violation"``;
    ``tables`` picks which (the plural spelling of the DataFrame attributes,
    ``"messages"``, is accepted too; other names raise ValueError).  Rows are dicts
    with the OUTPUTS.md columns as in JSON Lines (timestamps float epoch seconds,
    durations float seconds; messages carry ``payload`` bytes).
    Messages come as they complete; a connection's row when it ends.  ``limits``,
    ``max_buffered`` (out-of-order bytes per TCP direction) and ``max_connections``
    bound resources (README, Limits); ``jobs`` > 1 decodes in that many processes.
    ``tls_keylog`` (a path, several paths or a ``KeyLog``) decrypts ``wss://``.
    """
    # Checked here, not at the first next(): a typo fails where it is written (the
    # key log files too).
    options = Options(tables=table_names(tables), limits=limits or DecoderLimits(),
                      max_buffered=max_buffered, max_connections=max_connections,
                      tls_keylog=as_keylog(tls_keylog))
    return _records(path, options, jobs)


def _records(path: str | os.PathLike[str], options: Options, jobs: int) -> Iterator[Record]:
    # The capture is opened at the first next(), as when iter_records was a generator.
    yield from CaptureRun(path, options, jobs)


def analyze(path: str | os.PathLike[str], *, payloads: PayloadMode = "full",
            preview_bytes: int = 64, limits: DecoderLimits | None = None,
            jobs: int = 1, max_buffered: int = 8 << 20,
            max_connections: int = 100_000,
            tables: Iterable[str] | str = TABLES, tls_keylog: Any = None) -> AnalysisResult:
    """Decode a capture into DataFrames (``connections``, ``messages``, ``frames``,
    ``violations``) whose dtypes are fixed by the schema (README, "DataFrame types"):
    timestamps ``datetime64[ns, UTC]``, durations ``timedelta64[ns]``, closed
    vocabularies categorical, strings ``string[pyarrow]``, nullable ``Int64``.

    ``tables`` limits decoding to some tables (the others are empty, with the same
    dtypes); unknown names raise ValueError.
    ``tls_keylog`` (a path, several paths or a ``KeyLog``) decrypts ``wss://``
    (pcapng Decryption Secrets Blocks are used without it).
    ``payloads`` controls memory: ``"full"`` keeps every payload (a capture's
    decoded payloads live in memory), ``"preview"`` keeps the first
    ``preview_bytes`` of each (``truncated`` tells which were cut), ``"none"``
    keeps none (the ``payload`` column holds empty bytes, ``text`` None).

    Memory is what the returned tables hold: about 350 bytes per message and
    per frame, plus the kept payload bytes.  The 1 GB benchmark capture (1.34 M
    messages, 1.6 GiB decoded) peaks at 3.7 GiB with ``"full"``, 1.2 GiB with
    ``"preview"`` and 0.9 GiB with ``"none"`` (benchmarks/bench_analyze.py).
    For captures beyond that, stream with :func:`iter_records`.
    """
    wanted = table_names(tables)
    # Rows are kept as columns (one list per column), not as dicts: a dict per
    # row costs about 1 KB, several times the values it holds.
    names = {t: [n for n, _ in COLUMNS[t]] for t in TABLES}
    columns: dict[str, list[list[Any]]] = {t: [[] for _ in names[t]] for t in TABLES}
    getters = {t: itemgetter(*names[t]) for t in TABLES}
    run = CaptureRun(path, Options(tables=wanted, limits=limits or DecoderLimits(),
                                   max_buffered=max_buffered, max_connections=max_connections,
                                   tls_keylog=as_keylog(tls_keylog)), jobs)
    keep = preview_bytes if payloads == "preview" else 0
    for table, row in run:
        if table == "message" and payloads != "full" and len(row["payload"]) > keep:
            row["payload"] = row["payload"][:keep]
            row["truncated"] = True
            if row["text"] is not None:
                row["text"] = row["text"][:keep] if keep else None
        for column, value in zip(columns[table], getters[table](row), strict=True):
            column.append(value)
    return build_result(columns, run.warnings, run.path, run.first_ts, run.last_ts)


def build_result(columns: dict[str, list[list[Any]]], warnings: list[str], path: str,
                 first_ts: float | None, last_ts: float | None) -> AnalysisResult:
    """The result of a run from its rows kept as column lists (``COLUMNS`` order);
    the lists are emptied as their columns are built."""
    import pandas as pd

    from wsanalyze.metrics import message_compression
    from wsanalyze.output.dataframe import column, conform, seconds
    from wsanalyze.result import AnalysisResult

    def frame(table: str) -> pd.DataFrame:
        data: dict[str, pd.Series] = {}
        for (name, kind), values in zip(COLUMNS[table], columns.pop(table), strict=True):
            data[name] = column(kind, values)
            values.clear()  # free the list as soon as its column is built
        if "ts" in data and table != "connection":
            ts = seconds(data["ts"])
            origin = first_ts if first_ts is not None else (
                float(pd.Series(ts).min()) if len(ts) else 0.0)
            data["t"] = pd.Series(ts - origin, dtype="float64")
        return pd.DataFrame(data)

    result = AnalysisResult(frame("connection"), frame("message"), frame("frame"),
                            _in_packet_order(frame("violation")), warnings, path, first_ts,
                            last_ts)
    # Per-message compression figures as extra columns (OUTPUTS.md allows additions).
    messages = result.messages.join(message_compression(result))
    result.messages = conform(messages, dataframe_columns("message"))
    return result


def _in_packet_order(v: pd.DataFrame) -> pd.DataFrame:
    """Violations by packet, then as found; rows without a packet after the last row
    of their connection (OUTPUTS.md; the CLI: output/ordering.py)."""
    import pandas as pd

    if v.empty:
        return v
    packet = v["packet"].astype("Float64")
    last = packet.groupby(v["connection"].to_numpy()).transform("max").fillna(0)
    key = pd.DataFrame({"at": packet.fillna(last).to_numpy(dtype=float),
                        "late": packet.isna().to_numpy()})
    order = key.sort_values(["at", "late"], kind="stable").index
    return v.iloc[order].reset_index(drop=True)
