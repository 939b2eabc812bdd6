"""What every figure of :mod:`wsanalyze.plots` shares: sizes, colours, the time
origin, axis formatting, bins, and the per-connection view."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

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




def new_figure(width: float = 10.0, height: float = 4.8) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def no_data(fig: Figure, title: str, note: str = "no data") -> Figure:
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


def time_origin(result: Tables) -> float:
    """Origin of the time axes: the capture's first packet when known, else the
    earliest timestamp of the tables (0 when there is none)."""
    first = result.first_ts
    if first is not None and first == first:
        return float(first)
    candidates: list[float] = []
    for df, col in ((result.connections, "ts_start"), (result.messages, "ts_start"),
                    (result.messages, "ts"), (result.violations, "ts")):
        if not df.empty and col in df:
            v = np.nanmin(floats(df[col]), initial=np.inf)
            if np.isfinite(v):
                candidates.append(float(v))
    return min(candidates) if candidates else 0.0


def floats(series: pd.Series) -> np.ndarray:
    """Float values of a column; timestamps as epoch seconds, durations as seconds."""
    return seconds(series)


def time_axis(ax: Axes, label: str = TIME_LABEL) -> None:
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    ax.xaxis.set_major_formatter(fmt)
    ax.set_xlabel(label)


def bytes_text(n: float) -> str:
    """1536 → '1.54 kB' (decimal units, like the axes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def time_end(result: Tables, t0: float) -> float:
    """Last timestamp of the tables, relative to ``t0``."""
    ends = [0.0]
    for df, col in ((result.connections, "ts_end"), (result.messages, "ts"),
                    (result.violations, "ts")):
        if not df.empty and col in df:
            v = np.nanmax(floats(df[col]), initial=-np.inf)
            if np.isfinite(v):
                ends.append(float(v) - t0)
    return max(ends)


def axis_bytes(v: float, _pos: Any = None) -> str:
    """Axis tick label with decimal units, so decades read 1 kB, 10 kB, 1 MB."""
    if v < 0:
        return ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} B"


def seconds_text(s: float) -> str:
    """0.00025 → '250 µs'."""
    if s != s:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def size_area(length: np.ndarray) -> np.ndarray:
    """Marker area (points²) growing with the square of log10 of the size:
    0 B → 20, 100 B → 44, 10 kB → 116, 1 MB → 236."""
    return 20.0 + 6.0 * np.log10(1.0 + np.maximum(length, 0.0)) ** 2


def type_style(kind: str) -> tuple[str, str]:
    return TYPE_STYLE.get(kind, OTHER_TYPE_STYLE)


def nice_bin(span: float, bins: int = 100) -> float:
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


def log_bins(values: np.ndarray, per_decade: int = 4) -> np.ndarray:
    lo = max(1.0, float(np.nanmin(values)))
    hi = max(lo * 1.01, float(np.nanmax(values)))
    n = max(2, math.ceil(math.log10(hi / lo) * per_decade) + 1)
    return np.logspace(math.log10(lo), math.log10(hi) + 1e-9, n)


@dataclass
class Subset:
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
    return Subset(**connection_rows(result, connection), first_ts=time_origin(result))


