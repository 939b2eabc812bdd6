"""Violations over time, by severity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import (
    SEVERITY_COLORS,
    SEVERITY_ORDER,
    floats,
    new_figure,
    no_data,
    plural,
    time_axis,
    time_end,
    time_origin,
)


def violations_over_time(result: Tables) -> Figure:
    """One row per rule, a mark where it was reported, coloured by severity; the
    mark's area grows with how many reports fall in the same 1/200 of the time
    axis (so floods stay readable).  Rule labels carry their total count."""
    fig = new_figure(10.0, 4.0)
    title = "Violations over time"
    v = result.violations
    if v.empty:
        note = ("no data: no WebSocket connection in this capture"
                if result.connections.empty else "no violations found")
        return no_data(fig, title, note)
    t0 = time_origin(result)
    x = floats(v["ts"]) - t0
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
    end = time_end(result, t0)
    ax.set_xlim(-0.02 * end, 1.02 * end if end > 0 else 1.0)
    time_axis(ax)
    ax.set_title(f"{title}: {plural(len(v), 'report')} of {plural(len(order), 'rule')}")
    return fig
