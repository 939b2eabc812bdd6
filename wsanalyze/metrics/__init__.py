"""Metrics computed from an :class:`~wsanalyze.analysis.AnalysisResult`.

* :mod:`wsanalyze.metrics.compression`: is permessage-deflate worth it, per
  connection and direction, and per message; what it would save where it was
  not negotiated.
* :mod:`wsanalyze.metrics.latency`: TCP connect and handshake RTT, ping → pong
  RTT, request → response latency, transfer times and idle gaps.

Every function takes the result and returns a pandas DataFrame; none of them
modifies the result.
"""

from __future__ import annotations

from wsanalyze.metrics.compression import (
    DeflateParams,
    compression_table,
    message_compression,
    parse_deflate_params,
)
from wsanalyze.metrics.latency import (
    idle_gaps,
    latency_table,
    ping_pairs,
    request_pairs,
)

__all__ = [
    "DeflateParams",
    "compression_table",
    "idle_gaps",
    "latency_table",
    "message_compression",
    "parse_deflate_params",
    "ping_pairs",
    "request_pairs",
]
