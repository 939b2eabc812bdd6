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

One module per family of figures: ``lanes`` (timeline), ``traffic`` (sizes,
throughput), ``compressed`` (compression against size), ``delays`` (latency),
``compliance`` (violations); ``base`` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure

from wsanalyze.metrics.tables import Tables
from wsanalyze.plots.base import AGGREGATE_ABOVE, select_connection
from wsanalyze.plots.compliance import violations_over_time
from wsanalyze.plots.compressed import compression_vs_size
from wsanalyze.plots.delays import latency_cdf
from wsanalyze.plots.lanes import timeline
from wsanalyze.plots.traffic import message_sizes, throughput

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
