"""Timeline: client and server lanes per connection, messages, violations and idle gaps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from wsanalyze.metrics.latency import idle_gaps
from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import (
    AGGREGATE_ABOVE,
    DIRECTION_LABELS,
    MAX_TIMELINE_CONNECTIONS,
    SEVERITY_COLORS,
    SEVERITY_ORDER,
    TIME_BINS,
    TYPE_STYLE,
    axis_bytes,
    floats,
    new_figure,
    no_data,
    seconds_text,
    select_connection,
    size_area,
    time_axis,
    time_origin,
    type_style,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Lanes = dict[tuple[int, str], int]


def timeline(result: Tables, connection: int | None = None) -> Figure:
    """Client and server lanes of one connection (or of the first
    :data:`MAX_TIMELINE_CONNECTIONS`), messages as markers whose shape and colour
    give the type and whose area grows with the payload size.  Violations are
    vertical ticks coloured by severity on the lane of the side that broke the
    rule; the longest idle gaps are shaded and labelled."""
    if connection is not None:
        result = select_connection(result, connection)
    conns = result.connections
    fig = new_figure()
    if conns.empty:
        return no_data(fig, "Timeline", "no data: no WebSocket connection in this capture")
    conns = conns.sort_values("connection")
    ids = [int(c) for c in conns.head(MAX_TIMELINE_CONNECTIONS)["connection"]]
    n = len(ids)
    fig.set_size_inches(10.0, min(2.4 + 1.0 * n, 14.0))
    ax = fig.add_subplot()
    t0 = time_origin(result)
    lane = {(c, d): 2 * k + j for k, c in enumerate(ids) for j, d in enumerate(("c2s", "s2c"))}
    _draw_lanes(ax, ids)
    m = result.messages
    m = m[m["connection"].isin(ids)] if not m.empty else m
    v = result.violations
    v = v[v["connection"].isin(ids)] if not v.empty else v
    handles = _draw_messages(ax, m, lane, t0)
    handles += _draw_violations(ax, v, lane, t0)
    lo, hi = ax.get_xlim() if (not m.empty or not v.empty) else (0.0, 1.0)
    handles += _draw_gaps(ax, result, ids, t0, hi - lo)
    _draw_legends(fig, handles)
    time_axis(ax)
    if m.empty and v.empty:
        ax.text(0.5, 0.5, "no messages", ha="center", va="center", color="0.4",
                transform=ax.transAxes)
    ax.set_title(_timeline_title(conns, ids, len(m)))
    return fig


def _draw_lanes(ax: Axes, ids: list[int]) -> None:
    """Alternating bands, two lanes (c2s, s2c) per connection, labelled."""
    n = len(ids)
    for k in range(n):
        ax.axhspan(2 * k - 0.5, 2 * k + 1.5, color="0.96" if k % 2 else "white", zorder=0)
        if k:
            ax.axhline(2 * k - 0.5, color="0.75", lw=0.8, zorder=1)
    if n == 1:
        labels = [DIRECTION_LABELS["c2s"], DIRECTION_LABELS["s2c"]]
    else:
        labels = [f"#{c} {d}" for c in ids for d in ("c2s", "s2c")]
    ax.set_yticks(range(2 * n), labels)
    ax.set_ylim(2 * n - 0.5, -0.5)


def _draw_messages(ax: Axes, m: pd.DataFrame, lane: Lanes, t0: float) -> list[Any]:
    """Messages as markers per type (binned above AGGREGATE_ABOVE); legend handles."""
    handles: list[Any] = []
    if m.empty:
        return handles
    x = floats(m["ts"]) - t0
    y = np.array([lane[(int(c), str(d))] for c, d in zip(m["connection"], m["direction"],
                                                         strict=True)], dtype=float)
    size = floats(m["length"])
    kinds = m["type"].astype(str).to_numpy()
    df = pd.DataFrame({"x": x, "y": y, "size": size, "kind": kinds})
    if len(m) > AGGREGATE_ABOVE:
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        width = (hi - lo) / TIME_BINS or 1e-3
        df["bin"] = np.floor((df["x"] - lo) / width)
        df = (df.groupby(["y", "kind", "bin"], sort=False)
              .agg(size=("size", "max")).reset_index())
        df["x"] = lo + (df["bin"] + 0.5) * width
    order = [k for k in (*TYPE_STYLE, *sorted(set(kinds) - set(TYPE_STYLE)))
             if k in set(kinds)]
    for kind in order:
        rows = df[df["kind"] == kind]
        marker, color = type_style(kind)
        count = int((kinds == kind).sum())
        ax.scatter(rows["x"], rows["y"], s=size_area(rows["size"].to_numpy()),
                   marker=marker, c=color, alpha=0.75, edgecolors="white", linewidths=0.4,
                   zorder=3)
        handles.append(Line2D([], [], ls="", marker=marker, color=color, markersize=8,
                              label=f"{kind} ({count})"))
    return handles


def _draw_violations(ax: Axes, v: pd.DataFrame, lane: Lanes, t0: float) -> list[Any]:
    """Violations as ticks coloured by severity on the lane of the side at fault."""
    handles: list[Any] = []
    if v.empty:
        return handles
    vx = floats(v["ts"]) - t0
    vy = np.array([lane[(int(c), d)] if d in ("c2s", "s2c") else lane[(int(c), "c2s")] + 0.5
                   for c, d in zip(v["connection"], v["direction"], strict=True)])
    sev = v["severity"].astype(str).to_numpy()
    many = len(v) > 200
    for s in SEVERITY_ORDER:
        hit = sev == s
        if hit.any():
            ax.scatter(vx[hit], vy[hit], marker="|", s=500, linewidths=1.0 if many else 2.2,
                       c=SEVERITY_COLORS[s], alpha=0.6 if many else 1.0, zorder=4)
            handles.append(Line2D([], [], ls="", marker="|", markersize=14,
                                  markeredgewidth=2.2, color=SEVERITY_COLORS[s],
                                  label=f"violation: {s} ({int(hit.sum())})"))
    return handles


def _draw_gaps(ax: Axes, result: Tables, ids: list[int], t0: float, span: float) -> list[Any]:
    """The three longest idle gaps per connection that exceed 5% of the time span."""
    gaps = idle_gaps(result)
    gaps = gaps[gaps["connection"].isin(ids)]
    gaps = gaps.assign(start=floats(gaps["ts_start"]) - t0, length=floats(gaps["gap"]))
    marked = False
    for c, g in gaps.groupby("connection", sort=False):
        big = g[g["length"] > 0.05 * span].nlargest(3, "length")
        k = ids.index(int(c))
        for start, length in zip(big["start"].tolist(), big["length"].tolist(), strict=True):
            ax.broken_barh([(start, length)], (2 * k - 0.45, 1.9),
                           facecolors="#e3ecf5", edgecolors="#9bb7d4", zorder=2)
            if length > 0.15 * span:  # room for a label
                ax.text(start + length / 2, 2 * k + 0.5,
                        f"idle {seconds_text(length)}", ha="center", va="center",
                        fontsize=8, color="#2b4a6b", zorder=5,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
            marked = True
    return [Patch(facecolor="#e3ecf5", edgecolor="#9bb7d4", label="idle gap")] if marked else []


def _draw_legends(fig: Figure, handles: list[Any]) -> None:
    """The marks' legend (when any) and the payload size key."""
    size_keys = [Line2D([], [], ls="", marker="o", color="0.5", label=axis_bytes(b),
                        markersize=math.sqrt(float(size_area(np.array([b]))[0])))
                 for b in (10, 1000, 100_000, 10_000_000)]
    if handles:
        fig.legend(handles=handles, loc="outside right upper", title="message type / mark",
                   fontsize=8, title_fontsize=8, frameon=False)
    fig.legend(handles=size_keys, loc="outside right lower", title="payload size", fontsize=8,
               title_fontsize=8, frameon=False, labelspacing=1.2)


def _timeline_title(conns: pd.DataFrame, ids: list[int], messages: int) -> str:
    n = len(ids)
    if n == 1:
        row = conns.iloc[0]
        title = f"Connection {ids[0]}: {row['client']} → {row['server']}"
    else:
        title = f"Timeline of {n} connection{'s' if n != 1 else ''}"
        if len(conns) > n:
            title += f" (first {n} of {len(conns)}; pass connection= for others)"
    if messages > AGGREGATE_ABOVE:
        title += (f"\n{messages:,} messages aggregated: the largest of each type per "
                  f"1/{TIME_BINS} of the time axis")
    return title


