"""The result of :func:`wsanalyze.analyze`: the four tables of a capture, the metric
tables computed from them (once, on first use), per-connection views, a short
``repr`` and an HTML card for Jupyter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from wsanalyze.metrics.tables import connection_rows

if TYPE_CHECKING:
    from wsanalyze.metrics.latency import KeyFunction

#: The tables of a result by attribute name, with the schema table each holds.
TABLE_ATTRIBUTES: dict[str, str] = {"connections": "connection", "messages": "message",
                                    "frames": "frame", "violations": "violation"}


@dataclass(repr=False, eq=False)
class AnalysisResult:
    """Tables of one capture (OUTPUTS.md), plus warnings about the capture.

    Timestamps are ``datetime64[ns, UTC]``, durations ``timedelta64[ns]``, ``t`` is
    float seconds from :attr:`first_ts` (README, "DataFrame types").  The metric tables
    (:attr:`compression`, :attr:`latency`, :attr:`ping_pairs`, :attr:`requests`,
    :attr:`idle_gaps`) are properties computed on first access and kept: replace
    a table and they are stale, build a new result instead.  Metrics that take an
    argument are methods (:meth:`request_pairs`, :meth:`connection`, :meth:`select`).
    """

    connections: pd.DataFrame
    messages: pd.DataFrame
    frames: pd.DataFrame
    violations: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    path: str = ""
    first_ts: float | None = None
    """Epoch seconds of the capture's first packet (the origin of ``t``), or None."""
    last_ts: float | None = None
    """Epoch seconds of the capture's last packet, or None."""

    # -- metric tables ---------------------------------------------------------------

    @cached_property
    def compression(self) -> pd.DataFrame:
        """Compression per connection and direction, with estimates for connections
        that did not compress (see :func:`wsanalyze.metrics.compression_table`)."""
        from wsanalyze import metrics

        return metrics.compression_table(self)

    @cached_property
    def latency(self) -> pd.DataFrame:
        """Latency per connection: TCP connect, handshake, ping RTT, request →
        response, transfer time, idle gaps (see :func:`wsanalyze.metrics.latency_table`)."""
        from wsanalyze import metrics

        return metrics.latency_table(self, requests=self.requests, pings=self.ping_pairs,
                                     gaps=self.idle_gaps)

    @cached_property
    def ping_pairs(self) -> pd.DataFrame:
        """One row per Ping with the Pong that answered it
        (:func:`wsanalyze.metrics.ping_pairs`)."""
        from wsanalyze import metrics

        return metrics.ping_pairs(self)

    @cached_property
    def requests(self) -> pd.DataFrame:
        """Request → response pairs matched by JSON id, else next message: the default
        of :meth:`request_pairs`."""
        from wsanalyze import metrics

        return metrics.request_pairs(self)

    def request_pairs(self, key: KeyFunction | None = None) -> pd.DataFrame:
        """Request → response pairs, by ``key(row)`` when given, else as :attr:`requests`
        (a method because of ``key``; only the default is cached)."""
        if key is None:
            return self.requests
        from wsanalyze import metrics

        return metrics.request_pairs(self, key=key)

    @cached_property
    def idle_gaps(self) -> pd.DataFrame:
        """Gaps between consecutive messages (:func:`wsanalyze.metrics.idle_gaps`)."""
        from wsanalyze import metrics

        return metrics.idle_gaps(self)

    # -- rows and views --------------------------------------------------------------

    def violation_frame(self, row: Any) -> dict[str, Any] | None:
        """The frames row a violation points at (``row`` is a violations row or its
        index), or None when the violation is not about one frame."""
        if not isinstance(row, pd.Series):
            row = self.violations.loc[row]
        frame = row["frame"]
        if pd.isna(frame):
            return None
        f = self.frames
        hit = f[(f["connection"] == row["connection"]) & (f["index"] == int(frame))]
        return None if hit.empty else hit.iloc[0].to_dict()

    def select(self, connection: int) -> AnalysisResult:
        """A result holding only ``connection``'s rows (ValueError when absent); it
        keeps this capture's time origin, so ``t`` and plots line up."""
        return AnalysisResult(**connection_rows(self, connection), warnings=list(self.warnings),
                              path=self.path, first_ts=self.first_ts, last_ts=self.last_ts)

    def connection(self, connection: int) -> ConnectionView:
        """One connection: its rows in every table, its handshake and its metrics
        (ValueError when absent)."""
        return ConnectionView(**connection_rows(self, connection),
                              warnings=list(self.warnings), path=self.path,
                              first_ts=self.first_ts, last_ts=self.last_ts)

    # -- output ----------------------------------------------------------------------

    def to_parquet(self, folder: str | os.PathLike[str]) -> list[str]:
        """Write ``connections.parquet``, ``messages.parquet``, ``frames.parquet`` and
        ``violations.parquet`` into ``folder`` (created if needed); returns the paths.
        ``pd.read_parquet`` gives back these DataFrames with the same dtypes."""
        from wsanalyze.output.parquet import write_dataframe

        os.makedirs(folder, exist_ok=True)
        paths = []
        for name, table in TABLE_ATTRIBUTES.items():
            path = os.path.join(os.fspath(folder), f"{name}.parquet")
            write_dataframe(getattr(self, name), table, path)
            paths.append(path)
        return paths

    def __repr__(self) -> str:
        from wsanalyze.output.card import text_summary

        return text_summary(self)

    def _repr_html_(self) -> str:
        from wsanalyze.output.card import html_card

        return html_card(self)


@dataclass(repr=False, eq=False)
class ConnectionView(AnalysisResult):
    """An :class:`AnalysisResult` restricted to one connection, plus its row."""

    @property
    def id(self) -> int:
        return int(self.connections["connection"].iloc[0])

    @property
    def row(self) -> pd.Series:
        """The connection's row of ``connections``."""
        return self.connections.iloc[0]

    @property
    def handshake(self) -> dict[str, Any]:
        """The opening handshake: status, request fields, negotiated values, RTT."""
        row = self.row
        names = ("handshake", "host", "path", "origin", "user_agent", "subprotocols_offered",
                 "subprotocol", "extensions_offered", "extensions", "deflate", "handshake_rtt")
        return {("status" if n == "handshake" else n): _plain(row[n]) for n in names}


def _plain(value: Any) -> Any:
    """pd.NA and NaN → None and numpy scalars → Python ones, so a dict prints and
    compares plainly."""
    if isinstance(value, list | bytes):
        return value
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
