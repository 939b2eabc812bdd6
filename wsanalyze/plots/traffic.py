"""Traffic: message size histograms and throughput over time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from wsanalyze.metrics.compression import data_messages
from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import (
    AGGREGATE_ABOVE,
    DIRECTION_COLORS,
    DIRECTION_LABELS,
    TIME_BINS,
    axis_bytes,
    bytes_text,
    floats,
    new_figure,
    nice_bin,
    no_data,
    seconds_text,
    time_axis,
    time_origin,
)


def message_sizes(result: Tables) -> Figure:
    """Payload size (after inflating) of every data message over time, per
    direction, with the size distribution beside it.  Control frames are left out.
    Above :data:`AGGREGATE_ABOVE` messages the left panel shows the median and the
    maximum per time bin instead of one point per message."""
    fig = new_figure(10.0, 4.6)
    data = data_messages(result)
    title = "Message sizes (data messages)"
    if data.empty:
        return no_data(fig, title, "no data: no data messages in this capture")
    t0 = time_origin(result)
    gs = fig.add_gridspec(1, 2, width_ratios=(4, 1))
    ax = fig.add_subplot(gs[0, 0])
    hx = fig.add_subplot(gs[0, 1], sharey=ax)
    x_all = floats(data["ts"]) - t0
    aggregated = len(data) > AGGREGATE_ABOVE
    lo, hi = float(np.nanmin(x_all)), float(np.nanmax(x_all))
    width = (hi - lo) / (TIME_BINS // 4) or 1e-3
    sizes_all = floats(data["length"])
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
    ax.yaxis.set_major_formatter(FuncFormatter(axis_bytes))
    ax.set_ylabel("payload size (bytes after inflating)")
    time_axis(ax)
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
    fig = new_figure(10.0, 5.4)
    m = result.messages
    title = "Throughput"
    if m.empty:
        return no_data(fig, title, "no data: no WebSocket messages in this capture")
    t0 = time_origin(result)
    x = floats(m["ts"]) - t0
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    width = bin if bin is not None else nice_bin(hi - lo)
    start = math.floor(lo / width) * width
    nbins = max(1, math.ceil((hi - start) / width + 1e-9))
    if nbins > 200_000:
        raise ValueError(f"bin {bin} s gives {nbins} bins; use a wider bin")
    edges = start + width * np.arange(nbins + 1)
    wire = floats(m["wire_bytes"])
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
        label = f"{DIRECTION_LABELS[direction]} ({bytes_text(total)} total)"
        ys = np.append(rate / scale, rate[-1] / scale)
        ax.step(edges, ys, where="post", color=color, lw=1.2, label=label)
        ax.fill_between(edges, ys, step="post", color=color, alpha=0.15)
        cx.step(edges, np.append(msgs, msgs[-1]), where="post", color=color, lw=1.0,
                label=DIRECTION_LABELS[direction])
    ax.set_ylabel(f"wire throughput ({unit})")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"{title} per direction (bins of {seconds_text(width)})")
    cx.set_ylabel("messages/s")
    cx.set_ylim(bottom=0)
    cx.grid(True, alpha=0.3)
    time_axis(cx)
    return fig


