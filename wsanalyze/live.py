"""Live capture for notebooks and scripts: DataFrames of traffic as it flows.

    >>> import wsanalyze.live
    >>> cap = wsanalyze.live.capture("lo", bpf="tcp port 8765", write="run.pcapng")
    >>> cap.snapshot().messages          # the rows decoded so far
    >>> result = cap.stop()              # the final AnalysisResult

The capture runs in dumpcap or tcpdump (as ``wsanalyze live``) and is decoded in
a background thread, so the notebook stays usable.  Memory is bounded by the
payload mode (as :func:`wsanalyze.analyze`) and ``keep`` (rows kept per table,
the newest); the decoder releases connections as they end.  A snapshot holds the
connections that have ended; the final result also those still open at the stop.
"""

from __future__ import annotations

import threading
from collections import deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from wsanalyze.analysis import PayloadMode, build_result
from wsanalyze.config import DecoderLimits
from wsanalyze.output.schema import COLUMNS
from wsanalyze.pipeline import TABLES, Analyzer, Options, Record
from wsanalyze.sources.engine import DEFAULT_BUFFER_MIB, DropStats
from wsanalyze.sources.live import open_live
from wsanalyze.tls.keylog import as_keylog

if TYPE_CHECKING:
    from wsanalyze.result import AnalysisResult

__all__ = ["LiveSession", "capture"]


def capture(interface: str, bpf: str = "tcp", *, payloads: PayloadMode = "full",
            preview_bytes: int = 64, keep: int | None = None, write: str | None = None,
            ring: tuple[int, int] | None = None, count: int | None = None,
            duration: float | None = None, buffer_mib: int = DEFAULT_BUFFER_MIB,
            engine: str | None = None, limits: DecoderLimits | None = None,
            tls_keylog: Any = None) -> LiveSession:
    """Start capturing ``interface`` through the capture filter ``bpf``; returns at
    once (raises :class:`~wsanalyze.sources.CaptureError` when capturing cannot
    start).  ``write`` keeps the packets in a pcapng file (``ring=(N, bytes)``
    rotates it); ``count``/``duration`` stop by themselves, else call
    :meth:`LiveSession.stop`.  ``tls_keylog`` (a path, several paths or a
    ``KeyLog``) decrypts ``wss://``, as for :func:`wsanalyze.analyze`."""
    options = Options(limits=limits or DecoderLimits(), tls_keylog=as_keylog(tls_keylog))
    warnings: list[str] = []
    source = open_live(interface, bpf, engine=engine, count=count, duration=duration,
                       buffer_mib=buffer_mib, write=write, ring=ring, warn=warnings)
    return LiveSession(source, options, payloads=payloads, preview_bytes=preview_bytes,
                       keep=keep, name=f"live:{interface}", warnings=warnings)


class LiveSession:
    """A capture decoding in a background thread; see :func:`capture`."""

    def __init__(self, source: Any, options: Options, *, payloads: PayloadMode = "full",
                 preview_bytes: int = 64, keep: int | None = None, name: str = "live",
                 warnings: list[str] | None = None) -> None:
        self.source = source
        self.name = name
        self.stats: DropStats | None = None
        """The engine's counts, once the capture has ended."""
        self.error: BaseException | None = None
        self._warnings = list(warnings or ())
        self._analyzer = Analyzer(options)
        self._keep_payload = None if payloads == "full" else (
            preview_bytes if payloads == "preview" else 0)
        self._rows: dict[str, deque[tuple[Any, ...]]] = {t: deque(maxlen=keep) for t in TABLES}
        self._getters = {t: itemgetter(*(n for n, _ in COLUMNS[t])) for t in TABLES}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"wsanalyze-{name}")
        self._thread.start()

    # -- the background thread ---------------------------------------------

    def _run(self) -> None:
        feed = self._analyzer.feed
        try:
            for pkt in self.source.packets():
                out = feed(pkt)
                if out:
                    self._add(out)
            self._add(self._analyzer.finish())
        except BaseException as exc:  # shown by stop(), not lost in a thread
            self.error = exc
            self.source.kill()
        finally:
            self.stats = self.source.finish()
            self.source.close()

    def _add(self, records: list[Record]) -> None:
        keep = self._keep_payload
        with self._lock:
            for table, row in records:
                if table == "message" and keep is not None and len(row["payload"]) > keep:
                    row["payload"] = row["payload"][:keep]
                    row["truncated"] = True
                    if row["text"] is not None:
                        row["text"] = row["text"][:keep] if keep else None
                self._rows[table].append(self._getters[table](row))

    # -- the caller's side -------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def packets(self) -> int:
        """Packets decoded so far."""
        return self._analyzer.packets

    def snapshot(self) -> AnalysisResult:
        """The tables of what has been decoded so far (copies: safe to keep)."""
        with self._lock:
            rows = {t: list(self._rows[t]) for t in TABLES}
        return self._result(rows)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a capture with ``count`` or ``duration`` to end by itself."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> AnalysisResult:
        """Stop capturing, decode what was captured, return the final tables."""
        self.source.stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.source.kill()
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.snapshot()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()

    def _result(self, rows: dict[str, list[tuple[Any, ...]]]) -> AnalysisResult:
        warnings = list(self._warnings)
        stats = self.stats
        if stats is not None and stats.dropped:
            warnings.append(f"{stats.text()}: the lost bytes are capture.gap rows")
        # The DataFrames of analyze() (build_result): same dtypes, same order, so a
        # live result equals the analysis of its written capture.
        columns = {t: [list(c) for c in zip(*rows[t], strict=True)] if rows[t]
                   else [[] for _ in COLUMNS[t]] for t in TABLES}
        return build_result(columns, warnings, self.name, self._analyzer.first_ts,
                            self._analyzer.last_ts)
