"""wsanalyze: a passive WebSocket traffic analyzer for packet captures.

``wsanalyze.analyze(path)`` returns pandas DataFrames of the connections,
messages, frames and protocol violations of a pcap/pcapng capture;
``wsanalyze.iter_records(path)`` streams the same rows for captures larger than
memory.  See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["AnalysisResult", "analyze", "batch", "iter_records"]

if TYPE_CHECKING:
    from wsanalyze import batch
    from wsanalyze.analysis import AnalysisResult, analyze, iter_records


def __getattr__(name: str) -> Any:
    # Imported on first use so `wsanalyze --help` starts without the pipeline.
    if name == "batch":  # a callable package: wsanalyze.batch(paths, out, ...)
        import wsanalyze.batch

        return wsanalyze.batch
    if name in __all__:
        from wsanalyze import analysis

        return getattr(analysis, name)
    raise AttributeError(name)
