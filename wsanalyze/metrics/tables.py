"""The tables metrics and plots read: a small protocol, so that neither imports the
result type (dependencies run ``analysis → result ⇢ metrics``, ``plots → metrics``).
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd


class Tables(Protocol):
    """What a metric needs from an analysis: the four tables of OUTPUTS.md (typed as
    :mod:`wsanalyze.output.dataframe` makes them) and the capture's first packet
    time, epoch seconds (the origin of ``t``), None when unknown.
    :class:`wsanalyze.AnalysisResult` is one."""

    connections: pd.DataFrame
    messages: pd.DataFrame
    frames: pd.DataFrame
    violations: pd.DataFrame
    first_ts: float | None


def connection_rows(tables: Tables, connection: int) -> dict[str, pd.DataFrame]:
    """The rows of ``connection`` in each of the four tables, by attribute name
    (ValueError naming the known connections when it is absent)."""
    conns = tables.connections
    if conns.empty or connection not in set(conns["connection"].astype(int)):
        known = ", ".join(str(c) for c in conns["connection"].tolist()) or "none"
        raise ValueError(f"no connection {connection} (connections: {known})")
    out: dict[str, pd.DataFrame] = {}
    for name in ("connections", "messages", "frames", "violations"):
        df: pd.DataFrame = getattr(tables, name)
        out[name] = df[df["connection"] == connection] if not df.empty else df
    return out
