"""Metrics computed from the tables of an analysis (any :class:`Tables`, such as
:class:`wsanalyze.AnalysisResult`, which caches them as properties).

* :mod:`wsanalyze.metrics.compression`: is permessage-deflate worth it, per
  connection and direction, and per message; what it would save where it was
  not negotiated.
* :mod:`wsanalyze.metrics.latency`: TCP connect and handshake RTT, ping → pong
  RTT, request → response latency, transfer times and idle gaps.

Every function takes the tables and returns a pandas DataFrame whose dtypes are
fixed by the module's ``*_SPEC`` (timestamps ``datetime64[ns, UTC]``, durations
``timedelta64[ns]``); none of them modifies its input.
"""

from __future__ import annotations

from wsanalyze.metrics.compression import (
    DeflateParams,
    compression_table,
    message_compression,
    parse_deflate_params,
)
from wsanalyze.metrics.latency import (
    KeyFunction,
    idle_gaps,
    latency_table,
    ping_pairs,
    request_pairs,
)
from wsanalyze.metrics.tables import Tables

__all__ = [
    "DeflateParams",
    "KeyFunction",
    "Tables",
    "compression_table",
    "idle_gaps",
    "latency_table",
    "message_compression",
    "parse_deflate_params",
    "ping_pairs",
    "request_pairs",
]
