"""Running the pipeline over a capture file: records as a stream, or as tables.

``iter_records`` streams (memory follows open connections and messages, not the
capture); ``analyze`` builds pandas DataFrames and so keeps what it returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

from wsanalyze.output.schema import COLUMNS
from wsanalyze.parallel import ParallelRun
from wsanalyze.pipeline import TABLES, Analyzer, Options, Record
from wsanalyze.sources.capture import CaptureReader, open_capture
from wsanalyze.websocket.decoder import DecoderLimits

if TYPE_CHECKING:
    import pandas as pd

PayloadMode = Literal["full", "preview", "none"]
_NUMPY_KINDS = frozenset(("int64", "float64", "bool"))


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
            yield from self._parallel
            self.stopped = self._parallel.stopped
            if self.stopped:
                self.warnings.append(self.stopped)
            self.warnings.extend(self._parallel.notes)
            return
        analyzer = self.analyzer
        feed = analyzer.feed
        try:
            for pkt in self.reader:
                out = feed(pkt)
                if out:
                    yield from out
            yield from analyzer.finish()
        finally:
            self.reader.close()
        self.stopped = self.reader.stopped
        if self.stopped:
            self.warnings.append(self.stopped)
        self.warnings.extend(analyzer.notes())


def iter_records(path: str | os.PathLike[str], *, tables: Iterable[str] = TABLES,
                 limits: DecoderLimits | None = None, jobs: int = 1,
                 max_buffered: int = 8 << 20,
                 max_connections: int = 100_000) -> Iterator[Record]:
    """Stream ``(table, row)`` records of a capture without building tables.

    ``table`` is ``"connection"``, ``"message"``, ``"frame"`` or ``"violation"``;
    rows are dicts with the OUTPUTS.md columns (messages carry ``payload`` bytes).
    Messages come as they complete; a connection's row when it ends.  ``limits``,
    ``max_buffered`` (out-of-order bytes per TCP direction) and ``max_connections``
    bound resources (README, Limits); ``jobs`` > 1 decodes in that many processes.
    """
    options = Options(tables=frozenset(tables), limits=limits or DecoderLimits(),
                      max_buffered=max_buffered, max_connections=max_connections)
    yield from CaptureRun(path, options, jobs)


@dataclass
class AnalysisResult:
    """Tables of one capture (OUTPUTS.md), plus warnings about the capture."""

    connections: pd.DataFrame
    messages: pd.DataFrame
    frames: pd.DataFrame
    violations: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    path: str = ""
    first_ts: float | None = None
    """Timestamp of the capture's first packet (plots count time from it)."""

    @property
    def compression(self) -> pd.DataFrame:
        """Compression per connection and direction, with estimates for connections
        that did not compress (see :func:`wsanalyze.metrics.compression_table`)."""
        from wsanalyze.metrics import compression_table

        return compression_table(self)

    @property
    def latency(self) -> pd.DataFrame:
        """Latency per connection: TCP connect, handshake, ping RTT, request →
        response, transfer time, idle gaps (see :func:`wsanalyze.metrics.latency_table`;
        the pair tables are :attr:`ping_pairs`, :meth:`request_pairs`, :attr:`idle_gaps`)."""
        from wsanalyze.metrics import latency_table

        return latency_table(self)

    @property
    def ping_pairs(self) -> pd.DataFrame:
        from wsanalyze.metrics import ping_pairs

        return ping_pairs(self)

    def request_pairs(self, key: Any = None) -> pd.DataFrame:
        """Request → response pairs, by JSON id or ``key(row)``, else next message."""
        from wsanalyze.metrics import request_pairs

        return request_pairs(self, key=key)

    @property
    def idle_gaps(self) -> pd.DataFrame:
        from wsanalyze.metrics import idle_gaps

        return idle_gaps(self)

    def violation_frame(self, row: Any) -> dict[str, Any] | None:
        """The frames row a violation points at (``row`` is a violations row or its
        index), or None when the violation is not about one frame."""
        if not hasattr(row, "rule"):
            row = self.violations.loc[row]
        frame = row["frame"]
        if frame is None or frame != frame:  # None or NaN
            return None
        hit = self.frames[(self.frames["connection"] == row["connection"])
                          & (self.frames["index"] == int(frame))]
        return None if hit.empty else hit.iloc[0].to_dict()


def analyze(path: str | os.PathLike[str], *, payloads: PayloadMode = "full",
            preview_bytes: int = 64, limits: DecoderLimits | None = None,
            jobs: int = 1, max_buffered: int = 8 << 20,
            max_connections: int = 100_000) -> AnalysisResult:
    """Decode a capture into DataFrames (``connections``, ``messages``, ``frames``,
    ``violations``).

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
    import pandas as pd

    # Rows are kept as columns (one list per column), not as dicts: a dict per
    # row costs about 1 KB, several times the values it holds.
    names = {t: [n for n, _ in COLUMNS[t]] for t in TABLES}
    columns: dict[str, list[list[Any]]] = {t: [[] for _ in names[t]] for t in TABLES}
    getters = {t: itemgetter(*names[t]) for t in TABLES}
    run = CaptureRun(path, Options(limits=limits or DecoderLimits(), max_buffered=max_buffered,
                                   max_connections=max_connections), jobs)
    keep = preview_bytes if payloads == "preview" else 0
    for table, row in run:
        if table == "message" and payloads != "full" and len(row["payload"]) > keep:
            row["payload"] = row["payload"][:keep]
            row["truncated"] = True
            if row["text"] is not None:
                row["text"] = row["text"][:keep] if keep else None
        for column, value in zip(columns[table], getters[table](row), strict=True):
            column.append(value)

    def frame(table: str) -> pd.DataFrame:
        data: dict[str, Any] = {}
        lists = columns.pop(table)
        for (name, kind), values in zip(COLUMNS[table], lists, strict=True):
            if not values:
                # An empty table still has the schema's types (pandas would
                # make every column object).
                col = pd.Series(values, dtype=kind if kind in _NUMPY_KINDS else object)
            elif kind == "int64" and None in values:
                col = pd.Series(values, dtype="Int64")
            elif kind in ("string", "list<string>", "binary"):
                # Keep None (not NaN) for missing values, like the rest.
                col = pd.Series(values, dtype=object)
            else:
                col = pd.Series(values)
            values.clear()  # free the list as soon as its column is built
            data[name] = col
        return pd.DataFrame(data, columns=names[table])

    result = AnalysisResult(frame("connection"), frame("message"), frame("frame"),
                            frame("violation"), run.warnings, run.path, run.first_ts)
    from wsanalyze.metrics import message_compression

    # Per-message compression figures as extra columns (OUTPUTS.md allows additions).
    result.messages = result.messages.join(message_compression(result))
    return result
