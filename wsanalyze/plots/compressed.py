"""Compression against message size (permessage-deflate)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from wsanalyze.metrics.compression import data_messages, estimate_sizes
from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import (
    AGGREGATE_ABOVE,
    DIRECTION_COLORS,
    DIRECTION_LABELS,
    ESTIMATE_SAMPLE,
    axis_bytes,
    floats,
    log_bins,
    new_figure,
    no_data,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def compression_vs_size(result: Tables) -> Figure:
    """Compression ratio (carried bytes / inflated bytes; below 1 saves) of every
    compressed data message against its inflated size, per direction.  Data
    messages of connections without permessage-deflate appear as hollow markers:
    their *estimated* ratio had each been compressed alone (zlib, see
    :mod:`wsanalyze.metrics.compression`; up to :data:`ESTIMATE_SAMPLE` of them).
    Above :data:`AGGREGATE_ABOVE` points, the median and 10–90 % band per size bin
    are drawn instead."""
    fig = new_figure(9.0, 5.0)
    title = "Compression ratio vs message size"
    data = data_messages(result)
    if data.empty:
        return no_data(fig, title, "no data: no data messages in this capture")
    data = data[data["error"].isna() & (pd.to_numeric(data["length"]) > 0)]
    comp = data[data["compressed"].astype(bool)]
    conns = result.connections
    plain_ids = set(conns.loc[~conns["deflate"].astype(bool), "connection"].astype(int))
    plain = data[data["connection"].isin(plain_ids) & ~data["compressed"].astype(bool)]
    plain = plain[~plain["truncated"].astype(bool)]
    plain = plain[plain["payload"].map(len).to_numpy() == floats(plain["length"])]
    if len(plain) > ESTIMATE_SAMPLE:
        plain = plain.iloc[np.linspace(0, len(plain) - 1, ESTIMATE_SAMPLE).astype(int)]
    if comp.empty and plain.empty:
        return no_data(fig, title, "no data: no compressed messages and no payloads to "
                        "estimate from")
    ax = fig.add_subplot()
    aggregated = len(comp) > AGGREGATE_ABOVE
    for direction in ("c2s", "s2c"):
        color = DIRECTION_COLORS[direction]
        rows = comp[comp["direction"] == direction]
        if not rows.empty:
            size = floats(rows["length"])
            ratio = floats(rows["raw_length"]) / size
            label = f"{DIRECTION_LABELS[direction]} ({len(rows):,} compressed)"
            if aggregated:
                _binned_ratio(ax, size, ratio, color, label)
            else:
                ax.scatter(size, ratio, s=22, color=color, alpha=0.75, label=label,
                           edgecolors="none")
        est = plain[plain["direction"] == direction]
        if not est.empty:
            size = floats(est["length"])
            ratio = np.array(estimate_sizes(est["payload"].tolist(), context_takeover=False),
                             dtype=float) / size
            ax.scatter(size, ratio, s=26, facecolors="none", edgecolors=color, linewidths=1.0,
                       label=f"{DIRECTION_LABELS[direction]}: estimate if compressed "
                             f"({len(est):,}, not compressed on the wire)")
    ax.axhline(1.0, color="tab:red", lw=1.0, ls="--", label="ratio 1: no gain (above: grew)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(axis_bytes))
    ax.set_xlabel("message size after inflating (log scale)")
    ax.set_ylabel("compressed size / original size")
    ax.set_ylim(bottom=0, top=max(1.15, ax.get_ylim()[1]))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title + (" (median and 10–90 % band per size bin)" if aggregated else ""))
    return fig


def _binned_ratio(ax: Axes, size: np.ndarray, ratio: np.ndarray, color: str,
                  label: str) -> None:
    edges = log_bins(size, per_decade=6)
    which = np.clip(np.digitize(size, edges) - 1, 0, len(edges) - 2)
    df = pd.DataFrame({"bin": which, "ratio": ratio})
    g = df.groupby("bin")["ratio"].quantile([0.1, 0.5, 0.9]).unstack()
    centers = np.sqrt(edges[g.index.to_numpy()] * edges[g.index.to_numpy() + 1])
    ax.fill_between(centers, g[0.1], g[0.9], color=color, alpha=0.2)
    ax.plot(centers, g[0.5], color=color, lw=1.5, marker="o", ms=3, label=label)


