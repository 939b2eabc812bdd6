"""Latency: distribution of Ping → Pong and request → response delays."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from wsanalyze.metrics.latency import ping_pairs, request_pairs
from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import (
    AGGREGATE_ABOVE,
    floats,
    new_figure,
    no_data,
    seconds_text,
)


def latency_cdf(result: Tables) -> Figure:
    """Empirical CDFs (log time axis, milliseconds) of ping → pong RTT, request →
    response latency (see :func:`wsanalyze.metrics.request_pairs`), WebSocket
    handshake RTT and TCP connect RTT.  The legend gives each count and median."""
    fig = new_figure(9.0, 5.0)
    title = "Latency distributions"
    series: list[tuple[str, np.ndarray, str]] = []  # (label, seconds, colour)
    pings = ping_pairs(result)
    series.append(("ping → pong RTT", floats(pings["rtt"]), "tab:purple"))
    requests = request_pairs(result)
    if not requests.empty:
        methods = "/".join(sorted(requests["method"].unique()))
        series.append((f"request → response ({methods})", floats(requests["latency"]),
                       "tab:blue"))
    conns = result.connections
    if not conns.empty:
        series.append(("handshake RTT (Upgrade → 101)", floats(conns["handshake_rtt"]),
                       "tab:green"))
        if "tcp_connect_rtt" in conns:
            series.append(("TCP connect RTT (SYN → ACK)", floats(conns["tcp_connect_rtt"]),
                           "tab:gray"))
    series = [(n, v[np.isfinite(v)], c) for n, v, c in series]
    series = [(n, v, c) for n, v, c in series if v.size]
    if not series:
        return no_data(fig, title, "no data: no pings, requests or handshakes in this capture")
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
        median = seconds_text(float(np.median(values)))
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


