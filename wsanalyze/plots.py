"""Plots of an analysed capture, each returned as a matplotlib :class:`Figure`.

The figures are built with :class:`matplotlib.figure.Figure` directly, not
through ``pyplot``: they work headless (no display, no GUI backend), never pop a
window, and do not pile up in pyplot's figure registry.  Save one with
``fig.savefig("x.png")``; in Jupyter a returned figure displays itself.

Every time axis is in seconds from the start of the capture (the
``first_ts`` of the result when it has one, else the earliest timestamp in its
tables): the ``t`` column of the tables.  Functions take any
:class:`~wsanalyze.metrics.tables.Tables` (an :class:`~wsanalyze.AnalysisResult`
or a per-connection view); timestamp and duration columns may be typed
(``datetime64``/``timedelta64``) or float seconds.  Captures with more than
:data:`AGGREGATE_ABOVE` points per plot are aggregated into time or size bins,
which the figure says, so 100 000 messages plot in about a second.  A result
with nothing to show gives a figure with a "no data" note rather than an error.

Functions: :func:`timeline`, :func:`message_sizes`, :func:`throughput`,
:func:`compression_vs_size`, :func:`latency_cdf`, :func:`violations_over_time`;
:data:`PLOTS` maps their names to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, ScalarFormatter

from wsanalyze.metrics.compression import data_messages, estimate_sizes
from wsanalyze.metrics.latency import idle_gaps, ping_pairs, request_pairs
from wsanalyze.metrics.tables import Tables, connection_rows
from wsanalyze.output.dataframe import seconds

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Above this many points a plot aggregates into bins.
AGGREGATE_ABOVE = 5_000
#: Bins of the time axis when aggregating.
TIME_BINS = 600
#: At most this many connections get lanes in an all-connections timeline.
MAX_TIMELINE_CONNECTIONS = 12
#: Messages compressed for the estimate in :func:`compression_vs_size`, at most.
ESTIMATE_SAMPLE = 2_000

DIRECTION_COLORS = {"c2s": "tab:blue", "s2c": "tab:orange"}
DIRECTION_LABELS = {"c2s": "client → server", "s2c": "server → client"}
TYPE_STYLE: dict[str, tuple[str, str]] = {  # type -> (marker, color)
    "text": ("o", "tab:blue"),
    "binary": ("s", "tab:green"),
    "ping": ("^", "tab:purple"),
    "pong": ("v", "tab:pink"),
    "close": ("X", "black"),
}
OTHER_TYPE_STYLE = ("D", "tab:gray")
SEVERITY_COLORS = {"error": "tab:red", "warning": "darkorange", "info": "tab:gray"}
SEVERITY_ORDER = ("error", "warning", "info")
TIME_LABEL = "time since capture start (s)"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _figure(width: float = 10.0, height: float = 4.8) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _no_data(fig: Figure, title: str, note: str = "no data") -> Figure:
    """Put a centred note on an otherwise empty figure (no axes ticks)."""
    fig.set_size_inches(8.0, 3.0)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=14, color="0.4",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("0.8")
    return fig


def _t0(result: Tables) -> float:
    """Origin of the time axes: the capture's first packet when known, else the
    earliest timestamp of the tables (0 when there is none)."""
    first = result.first_ts
    if first is not None and first == first:
        return float(first)
    candidates: list[float] = []
    for df, col in ((result.connections, "ts_start"), (result.messages, "ts_start"),
                    (result.messages, "ts"), (result.violations, "ts")):
        if not df.empty and col in df:
            v = np.nanmin(_floats(df[col]), initial=np.inf)
            if np.isfinite(v):
                candidates.append(float(v))
    return min(candidates) if candidates else 0.0


def _floats(series: pd.Series) -> np.ndarray:
    """Float values of a column; timestamps as epoch seconds, durations as seconds."""
    return seconds(series)


def _time_axis(ax: Axes, label: str = TIME_LABEL) -> None:
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    ax.xaxis.set_major_formatter(fmt)
    ax.set_xlabel(label)


def _bytes_text(n: float) -> str:
    """1536 → '1.54 kB' (decimal units, like the axes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _t_end(result: Tables, t0: float) -> float:
    """Last timestamp of the tables, relative to ``t0``."""
    ends = [0.0]
    for df, col in ((result.connections, "ts_end"), (result.messages, "ts"),
                    (result.violations, "ts")):
        if not df.empty and col in df:
            v = np.nanmax(_floats(df[col]), initial=-np.inf)
            if np.isfinite(v):
                ends.append(float(v) - t0)
    return max(ends)


def _axis_bytes(v: float, _pos: Any = None) -> str:
    """Axis tick label with decimal units, so decades read 1 kB, 10 kB, 1 MB."""
    if v < 0:
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} B"


def _seconds_text(s: float) -> str:
    """0.00025 → '250 µs'."""
    if s != s:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def _size_area(length: np.ndarray) -> np.ndarray:
    """Marker area (points²) growing with the square of log10 of the size:
    0 B → 20, 100 B → 44, 10 kB → 116, 1 MB → 236."""
    return 20.0 + 6.0 * np.log10(1.0 + np.maximum(length, 0.0)) ** 2


def _type_style(kind: str) -> tuple[str, str]:
    return TYPE_STYLE.get(kind, OTHER_TYPE_STYLE)


def _nice_bin(span: float, bins: int = 100) -> float:
    """A 1-2-5 bin width giving about ``bins`` bins over ``span`` seconds."""
    if not span > 0:
        return 1e-3
    raw = span / bins
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        width = m * 10.0**exp
        if width >= raw:
            return width
    return 10.0 ** (exp + 1)


def _log_bins(values: np.ndarray, per_decade: int = 4) -> np.ndarray:
    lo = max(1.0, float(np.nanmin(values)))
    hi = max(lo * 1.01, float(np.nanmax(values)))
    n = max(2, math.ceil(math.log10(hi / lo) * per_decade) + 1)
    return np.logspace(math.log10(lo), math.log10(hi) + 1e-9, n)


@dataclass
class _Subset:
    """The tables of one connection (a :class:`Tables`), keeping the time origin."""

    connections: pd.DataFrame
    messages: pd.DataFrame
    frames: pd.DataFrame
    violations: pd.DataFrame
    first_ts: float | None


def select_connection(result: Tables, connection: int) -> Tables:
    """The tables of ``connection`` alone, with the time origin of the whole capture
    (ValueError when absent).  ``AnalysisResult.select`` does the same and keeps
    the result's other attributes."""
    return _Subset(**connection_rows(result, connection), first_ts=_t0(result))


# ---------------------------------------------------------------------------------------
# timeline
# ---------------------------------------------------------------------------------------

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
    fig = _figure()
    if conns.empty:
        return _no_data(fig, "Timeline", "no data: no WebSocket connection in this capture")
    conns = conns.sort_values("connection")
    ids = [int(c) for c in conns.head(MAX_TIMELINE_CONNECTIONS)["connection"]]
    n = len(ids)
    fig.set_size_inches(10.0, min(2.4 + 1.0 * n, 14.0))
    ax = fig.add_subplot()
    t0 = _t0(result)
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
    _time_axis(ax)
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
    x = _floats(m["ts"]) - t0
    y = np.array([lane[(int(c), str(d))] for c, d in zip(m["connection"], m["direction"],
                                                         strict=True)], dtype=float)
    size = _floats(m["length"])
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
        marker, color = _type_style(kind)
        count = int((kinds == kind).sum())
        ax.scatter(rows["x"], rows["y"], s=_size_area(rows["size"].to_numpy()),
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
    vx = _floats(v["ts"]) - t0
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
    gaps = gaps.assign(start=_floats(gaps["ts_start"]) - t0, length=_floats(gaps["gap"]))
    marked = False
    for c, g in gaps.groupby("connection", sort=False):
        big = g[g["length"] > 0.05 * span].nlargest(3, "length")
        k = ids.index(int(c))
        for start, length in zip(big["start"].tolist(), big["length"].tolist(), strict=True):
            ax.broken_barh([(start, length)], (2 * k - 0.45, 1.9),
                           facecolors="#e3ecf5", edgecolors="#9bb7d4", zorder=2)
            if length > 0.15 * span:  # room for a label
                ax.text(start + length / 2, 2 * k + 0.5,
                        f"idle {_seconds_text(length)}", ha="center", va="center",
                        fontsize=8, color="#2b4a6b", zorder=5,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
            marked = True
    return [Patch(facecolor="#e3ecf5", edgecolor="#9bb7d4", label="idle gap")] if marked else []


def _draw_legends(fig: Figure, handles: list[Any]) -> None:
    """The marks' legend (when any) and the payload size key."""
    size_keys = [Line2D([], [], ls="", marker="o", color="0.5", label=_axis_bytes(b),
                        markersize=math.sqrt(float(_size_area(np.array([b]))[0])))
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


# ---------------------------------------------------------------------------------------
# message sizes
# ---------------------------------------------------------------------------------------


def message_sizes(result: Tables) -> Figure:
    """Payload size (after inflating) of every data message over time, per
    direction, with the size distribution beside it.  Control frames are left out.
    Above :data:`AGGREGATE_ABOVE` messages the left panel shows the median and the
    maximum per time bin instead of one point per message."""
    fig = _figure(10.0, 4.6)
    data = data_messages(result)
    title = "Message sizes (data messages)"
    if data.empty:
        return _no_data(fig, title, "no data: no data messages in this capture")
    t0 = _t0(result)
    gs = fig.add_gridspec(1, 2, width_ratios=(4, 1))
    ax = fig.add_subplot(gs[0, 0])
    hx = fig.add_subplot(gs[0, 1], sharey=ax)
    x_all = _floats(data["ts"]) - t0
    aggregated = len(data) > AGGREGATE_ABOVE
    lo, hi = float(np.nanmin(x_all)), float(np.nanmax(x_all))
    width = (hi - lo) / (TIME_BINS // 4) or 1e-3
    sizes_all = _floats(data["length"])
    top = max(2.0, float(np.nanmax(sizes_all)))
    zeros = bool((sizes_all < 1).any())
    low = 0.0 if zeros else max(1.0, float(np.nanmin(sizes_all)))
    decades = np.logspace(math.log10(max(low, 1.0)), math.log10(top) + 0.01,
                          max(2, int(math.log10(top / max(low, 1.0)) * 4) + 2))
    edges = np.concatenate(([0.0], decades)) if zeros else decades
    hist_data, hist_colors, hist_labels = [], [], []
    for direction in ("c2s", "s2c"):
        hit = (data["direction"] == direction).to_numpy()
        if not hit.any():
            continue
        x, sizes = x_all[hit], sizes_all[hit]
        color = DIRECTION_COLORS[direction]
        label = f"{DIRECTION_LABELS[direction]} ({int(hit.sum()):,})"
        if aggregated:
            df = pd.DataFrame({"bin": np.floor((x - lo) / width), "size": sizes})
            g = df.groupby("bin")["size"].agg(["median", "max"])
            centers = lo + (g.index.to_numpy() + 0.5) * width
            ax.plot(centers, g["max"], color=color, lw=0.8, alpha=0.6, ls="--",
                    label=f"{label} max")
            ax.plot(centers, g["median"], color=color, lw=1.4, label=f"{label} median")
        else:
            ax.scatter(x, sizes, s=14, color=color, alpha=0.7, label=label,
                       edgecolors="none")
        hist_data.append(sizes)
        hist_colors.append(color)
        hist_labels.append(DIRECTION_LABELS[direction])
    # Side by side bars per size bin, one colour per direction.
    hx.hist(hist_data, bins=edges, orientation="horizontal", color=hist_colors,
            label=hist_labels, alpha=0.8)
    if zeros:  # a linear stretch around 0 keeps empty messages visible
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(bottom=-0.4)
    else:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_axis_bytes))
    ax.set_ylabel("payload size (bytes after inflating)")
    _time_axis(ax)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title + (f": {len(data):,} aggregated into {TIME_BINS // 4} time bins"
                          if aggregated else ""))
    hx.set_xlabel("messages")
    hx.set_title("distribution", fontsize=10)
    hx.tick_params(labelleft=False)
    hx.grid(True, axis="x", alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------
# throughput
# ---------------------------------------------------------------------------------------


def throughput(result: Tables, bin: float | None = None) -> Figure:
    """WebSocket bytes on the wire (frame headers included) per second, per
    direction, and messages per second below it.  ``bin`` is the bin width in
    seconds (default: a 1-2-5 width giving about 100 bins).  Every message
    (control frames too) counts at its last packet's time."""
    if bin is not None and not bin > 0:
        raise ValueError("bin must be a positive number of seconds")
    fig = _figure(10.0, 5.4)
    m = result.messages
    title = "Throughput"
    if m.empty:
        return _no_data(fig, title, "no data: no WebSocket messages in this capture")
    t0 = _t0(result)
    x = _floats(m["ts"]) - t0
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    width = bin if bin is not None else _nice_bin(hi - lo)
    start = math.floor(lo / width) * width
    nbins = max(1, math.ceil((hi - start) / width + 1e-9))
    if nbins > 200_000:
        raise ValueError(f"bin {bin} s gives {nbins} bins; use a wider bin")
    edges = start + width * np.arange(nbins + 1)
    wire = _floats(m["wire_bytes"])
    ax, cx = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    peaks = []
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for direction in ("c2s", "s2c"):
        hit = (m["direction"] == direction).to_numpy()
        nbytes, _ = np.histogram(x[hit], bins=edges, weights=wire[hit])
        count, _ = np.histogram(x[hit], bins=edges)
        series[direction] = (nbytes / width, count / width)
        peaks.append(float((nbytes / width).max()) if hit.any() else 0.0)
    scale, unit = 1.0, "B/s"
    for s, u in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")):
        if max(peaks) >= s:
            scale, unit = s, u
            break
    for direction, (rate, msgs) in series.items():
        color = DIRECTION_COLORS[direction]
        total = int(wire[(m["direction"] == direction).to_numpy()].sum())
        label = f"{DIRECTION_LABELS[direction]} ({_bytes_text(total)} total)"
        ys = np.append(rate / scale, rate[-1] / scale)
        ax.step(edges, ys, where="post", color=color, lw=1.2, label=label)
        ax.fill_between(edges, ys, step="post", color=color, alpha=0.15)
        cx.step(edges, np.append(msgs, msgs[-1]), where="post", color=color, lw=1.0,
                label=DIRECTION_LABELS[direction])
    ax.set_ylabel(f"wire throughput ({unit})")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{title} per direction (bins of {_seconds_text(width)})")
    cx.set_ylabel("messages/s")
    cx.set_ylim(bottom=0)
    cx.grid(True, alpha=0.3)
    _time_axis(cx)
    return fig


# ---------------------------------------------------------------------------------------
# compression vs size
# ---------------------------------------------------------------------------------------


def compression_vs_size(result: Tables) -> Figure:
    """Compression ratio (carried bytes / inflated bytes; below 1 saves) of every
    compressed data message against its inflated size, per direction.  Data
    messages of connections without permessage-deflate appear as hollow markers:
    their *estimated* ratio had each been compressed alone (zlib, see
    :mod:`wsanalyze.metrics.compression`; up to :data:`ESTIMATE_SAMPLE` of them).
    Above :data:`AGGREGATE_ABOVE` points, the median and 10–90 % band per size bin
    are drawn instead."""
    fig = _figure(9.0, 5.0)
    title = "Compression ratio vs message size"
    data = data_messages(result)
    if data.empty:
        return _no_data(fig, title, "no data: no data messages in this capture")
    data = data[data["error"].isna() & (pd.to_numeric(data["length"]) > 0)]
    comp = data[data["compressed"].astype(bool)]
    conns = result.connections
    plain_ids = set(conns.loc[~conns["deflate"].astype(bool), "connection"].astype(int))
    plain = data[data["connection"].isin(plain_ids) & ~data["compressed"].astype(bool)]
    plain = plain[~plain["truncated"].astype(bool)]
    plain = plain[plain["payload"].map(len).to_numpy() == _floats(plain["length"])]
    if len(plain) > ESTIMATE_SAMPLE:
        plain = plain.iloc[np.linspace(0, len(plain) - 1, ESTIMATE_SAMPLE).astype(int)]
    if comp.empty and plain.empty:
        return _no_data(fig, title, "no data: no compressed messages and no payloads to "
                        "estimate from")
    ax = fig.add_subplot()
    aggregated = len(comp) > AGGREGATE_ABOVE
    for direction in ("c2s", "s2c"):
        color = DIRECTION_COLORS[direction]
        rows = comp[comp["direction"] == direction]
        if not rows.empty:
            size = _floats(rows["length"])
            ratio = _floats(rows["raw_length"]) / size
            label = f"{DIRECTION_LABELS[direction]} ({len(rows):,} compressed)"
            if aggregated:
                _binned_ratio(ax, size, ratio, color, label)
            else:
                ax.scatter(size, ratio, s=22, color=color, alpha=0.75, label=label,
                           edgecolors="none")
        est = plain[plain["direction"] == direction]
        if not est.empty:
            size = _floats(est["length"])
            ratio = np.array(estimate_sizes(est["payload"].tolist(), context_takeover=False),
                             dtype=float) / size
            ax.scatter(size, ratio, s=26, facecolors="none", edgecolors=color, linewidths=1.0,
                       label=f"{DIRECTION_LABELS[direction]}: estimate if compressed "
                             f"({len(est):,}, not compressed on the wire)")
    ax.axhline(1.0, color="tab:red", lw=1.0, ls="--", label="ratio 1: no gain (above: grew)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_axis_bytes))
    ax.set_xlabel("message size after inflating (log scale)")
    ax.set_ylabel("compressed size / original size")
    ax.set_ylim(bottom=0, top=max(1.15, ax.get_ylim()[1]))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title + (" (median and 10–90 % band per size bin)" if aggregated else ""))
    return fig


def _binned_ratio(ax: Axes, size: np.ndarray, ratio: np.ndarray, color: str,
                  label: str) -> None:
    edges = _log_bins(size, per_decade=6)
    which = np.clip(np.digitize(size, edges) - 1, 0, len(edges) - 2)
    df = pd.DataFrame({"bin": which, "ratio": ratio})
    g = df.groupby("bin")["ratio"].quantile([0.1, 0.5, 0.9]).unstack()
    centers = np.sqrt(edges[g.index.to_numpy()] * edges[g.index.to_numpy() + 1])
    ax.fill_between(centers, g[0.1], g[0.9], color=color, alpha=0.2)
    ax.plot(centers, g[0.5], color=color, lw=1.5, marker="o", ms=3, label=label)


# ---------------------------------------------------------------------------------------
# latency CDF
# ---------------------------------------------------------------------------------------


def latency_cdf(result: Tables) -> Figure:
    """Empirical CDFs (log time axis, milliseconds) of ping → pong RTT, request →
    response latency (see :func:`wsanalyze.metrics.request_pairs`), WebSocket
    handshake RTT and TCP connect RTT.  The legend gives each count and median."""
    fig = _figure(9.0, 5.0)
    title = "Latency distributions"
    series: list[tuple[str, np.ndarray, str]] = []  # (label, seconds, colour)
    pings = ping_pairs(result)
    series.append(("ping → pong RTT", _floats(pings["rtt"]), "tab:purple"))
    requests = request_pairs(result)
    if not requests.empty:
        methods = "/".join(sorted(requests["method"].unique()))
        series.append((f"request → response ({methods})", _floats(requests["latency"]),
                       "tab:blue"))
    conns = result.connections
    if not conns.empty:
        series.append(("handshake RTT (Upgrade → 101)", _floats(conns["handshake_rtt"]),
                       "tab:green"))
        if "tcp_connect_rtt" in conns:
            series.append(("TCP connect RTT (SYN → ACK)", _floats(conns["tcp_connect_rtt"]),
                           "tab:gray"))
    series = [(n, v[np.isfinite(v)], c) for n, v, c in series]
    series = [(n, v, c) for n, v, c in series if v.size]
    if not series:
        return _no_data(fig, title, "no data: no pings, requests or handshakes in this capture")
    ax = fig.add_subplot()
    floor = 1e-6
    styles = {"tab:purple": "-", "tab:blue": "-", "tab:green": "--", "tab:gray": ":"}
    for name, values, color in series:
        ms = np.sort(np.maximum(values, floor)) * 1e3
        if ms.size > AGGREGATE_ABOVE:
            q = np.linspace(0, 1, 1001)
            xs, ys = np.quantile(ms, q), q
        else:
            xs = np.concatenate(([ms[0]], ms))
            ys = np.concatenate(([0.0], np.arange(1, ms.size + 1) / ms.size))
        median = _seconds_text(float(np.median(values)))
        ax.step(xs, ys, where="post", color=color, lw=2.0, ls=styles.get(color, "-"),
                label=f"{name}: n={values.size:,}, median {median}")
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    if math.log10(hi / lo) <= 3:  # few decades: label 1, 2, 5 of each
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction ≤ latency")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------
# violations over time
# ---------------------------------------------------------------------------------------


def violations_over_time(result: Tables) -> Figure:
    """One row per rule, a mark where it was reported, coloured by severity; the
    mark's area grows with how many reports fall in the same 1/200 of the time
    axis (so floods stay readable).  Rule labels carry their total count."""
    fig = _figure(10.0, 4.0)
    title = "Violations over time"
    v = result.violations
    if v.empty:
        note = ("no data: no WebSocket connection in this capture"
                if result.connections.empty else "no violations found")
        return _no_data(fig, title, note)
    t0 = _t0(result)
    x = _floats(v["ts"]) - t0
    rules = v["rule"].astype(str).to_numpy()
    sev = v["severity"].astype(str).to_numpy()
    order = sorted(set(rules), key=lambda r: (
        min(SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else 3 for s in sev[rules == r]),
        r))
    rank = {r: i for i, r in enumerate(order)}
    fig.set_size_inches(10.0, min(2.2 + 0.4 * len(order), 14.0))
    ax = fig.add_subplot()
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    width = (hi - lo) / 200 or 1e-3
    df = pd.DataFrame({"rule": rules, "sev": sev, "bin": np.floor((x - lo) / width), "x": x})
    g = df.groupby(["rule", "sev", "bin"], sort=False).agg(n=("x", "size"), x=("x", "min"))
    g = g.reset_index()
    for s in (*SEVERITY_ORDER, *sorted(set(sev) - set(SEVERITY_ORDER))):
        rows = g[g["sev"] == s]
        if rows.empty:
            continue
        ax.scatter(rows["x"], rows["rule"].map(rank), s=30 + 20 * np.log2(rows["n"]),
                   marker="D", color=SEVERITY_COLORS.get(s, "tab:brown"), alpha=0.8,
                   label=f"{s} ({int((sev == s).sum())})", zorder=3)
    counts = pd.Series(rules).value_counts()
    ax.set_yticks(range(len(order)), [f"{r} ({counts[r]})" for r in order])
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    fig.legend(title="severity (reports)", fontsize=8, title_fontsize=8,
               loc="outside right upper", frameon=False)
    end = _t_end(result, t0)
    ax.set_xlim(-0.02 * end, 1.02 * end if end > 0 else 1.0)
    _time_axis(ax)
    ax.set_title(f"{title}: {_plural(len(v), 'report')} of {_plural(len(order), 'rule')}")
    return fig


PlotFunction = Callable[[Tables], Figure]

#: Every plot by name, in the order the ``plot`` command writes them.
PLOTS: dict[str, PlotFunction] = {
    "timeline": timeline,
    "message_sizes": message_sizes,
    "throughput": throughput,
    "compression_vs_size": compression_vs_size,
    "latency_cdf": latency_cdf,
    "violations_over_time": violations_over_time,
}

__all__ = [
    "AGGREGATE_ABOVE",
    "PLOTS",
    "compression_vs_size",
    "latency_cdf",
    "message_sizes",
    "select_connection",
    "throughput",
    "timeline",
    "violations_over_time",
]
