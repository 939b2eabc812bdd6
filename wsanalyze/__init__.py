"""wsanalyze: a passive WebSocket traffic analyzer for packet captures.

``wsanalyze.analyze(path)`` returns pandas DataFrames of the connections,
messages, frames and protocol violations of a pcap/pcapng capture;
``wsanalyze.iter_records(path)`` streams the same rows for captures larger than
memory.  See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wsanalyze import _build

# Before any other submodule loads: WSANALYZE_NO_EXTENSIONS=1 means pure Python.
_build.install()

__version__ = "0.1.0"
__all__ = [
    "AnalysisResult",
    "CaptureError",
    "ConnectionView",
    "DecoderLimits",
    "Options",
    "Tables",
    "analyze",
    "batch",
    "iter_records",
]

if TYPE_CHECKING:
    from wsanalyze import batch
    from wsanalyze.analysis import analyze, iter_records
    from wsanalyze.config import DecoderLimits, Options
    from wsanalyze.metrics.tables import Tables
    from wsanalyze.result import AnalysisResult, ConnectionView
    from wsanalyze.sources.records import CaptureError

# Imported on first use so `wsanalyze --help` starts without pandas and the pipeline.
_LAZY = {
    "AnalysisResult": "wsanalyze.result",
    "CaptureError": "wsanalyze.sources.records",
    "ConnectionView": "wsanalyze.result",
    "DecoderLimits": "wsanalyze.config",
    "Options": "wsanalyze.config",
    "Tables": "wsanalyze.metrics.tables",
    "analyze": "wsanalyze.analysis",
    "iter_records": "wsanalyze.analysis",
}


def __getattr__(name: str) -> Any:
    if name == "batch":  # a callable package: wsanalyze.batch(paths, out, ...)
        import wsanalyze.batch

        return wsanalyze.batch
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wsanalyze' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    # Completion offers the public API (and submodules already imported), not the
    # typing helpers imported above.
    return sorted({*__all__, "__version__", *(k for k, v in globals().items()
                                               if type(v).__name__ == "module"
                                               and not k.startswith("_"))})
