"""The human overview printed by ``wsanalyze summary``, built while streaming."""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from wsanalyze.pipeline import Record
from wsanalyze.sequencer import ConnectionSummary
from wsanalyze.timestamps import format_time


class _ConnStats:
    def __init__(self) -> None:
        self.types: Counter[tuple[str, str]] = Counter()
        self.compressed = 0
        self.data_messages = 0
        self.raw = 0
        self.inflated = 0
        self.incomplete = 0
        self.row: dict[str, Any] | None = None
        self.violations: Counter[tuple[str, str]] = Counter()


class _Blocks:
    """The rendered text of ended connections, by connection id.

    Kept in memory up to ``spill`` bytes, then in an anonymous temporary file,
    so that memory stays flat however many connections a capture has (only a
    small index entry per connection stays in memory).
    """

    def __init__(self, spill: int = 256 * 1024) -> None:
        self._spill = spill
        self._mem: dict[int, str] = {}
        self._mem_bytes = 0
        self._file: IO[bytes] | None = None
        """Unbuffered, so that a failed write cannot leave bytes pending."""
        self._index: dict[int, tuple[int, int]] = {}

    def __setitem__(self, conn: int, text: str) -> None:
        if self._file is None:
            self._mem[conn] = text
            self._mem_bytes += len(text)
            if self._mem_bytes <= self._spill:
                return
            try:
                self._file = tempfile.TemporaryFile(buffering=0)  # noqa: SIM115 (see close())
            except OSError:
                self._spill = sys.maxsize  # no usable temporary folder: keep it in memory
                return
            pending, self._mem = self._mem, {}
            for c, t in pending.items():
                self._append(c, t)
            return
        self._append(conn, text)

    def _append(self, conn: int, text: str) -> None:
        assert self._file is not None
        data = text.encode("utf-8", "surrogateescape")
        try:
            offset = self._file.seek(0, 2)
            if self._file.write(data) != len(data):
                raise OSError("short write")
        except OSError:
            # Disk full: this block stays in memory rather than being lost (what a
            # failed write left at the end of the file is never indexed).
            self._mem[conn] = text
            return
        self._index[conn] = (offset, len(data))

    def __len__(self) -> int:
        return len(self._mem) + len(self._index)

    def ids(self) -> Iterator[int]:
        yield from self._mem
        yield from self._index

    def get(self, conn: int) -> str | None:
        text = self._mem.get(conn)
        if text is not None:
            return text
        where = self._index.get(conn)
        if where is None or self._file is None:
            return None
        self._file.seek(where[0])
        return self._file.read(where[1]).decode("utf-8", "surrogateescape")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Summary:
    """Feed it records; :meth:`render` returns the overview text."""

    def __init__(self, spill: int = 256 * 1024) -> None:
        self.conns: dict[int, _ConnStats] = {}
        """Statistics of connections still open."""
        self.blocks = _Blocks(spill)
        """The rendered text of connections that ended."""
        self.total_violations: Counter[str] = Counter()

    def _stats(self, conn: int) -> _ConnStats:
        stats = self.conns.get(conn)
        if stats is None:
            stats = self.conns[conn] = _ConnStats()
        return stats

    TABLES = frozenset(("summary", "violation"))
    """What to ask the pipeline for: no message rows, the counts come with each
    connection (:class:`~wsanalyze.sequencer.ConnectionSummary`)."""

    def add(self, record: Record) -> None:
        table, row = record
        if isinstance(row, ConnectionSummary):
            # A connection's row comes last: render it now and keep only the text.
            conn = row.row["connection"]
            stats = self.conns.pop(conn, None) or _ConnStats()
            stats.row = row.row
            stats.types = row.types
            stats.data_messages = row.data_messages
            stats.compressed = row.compressed
            stats.raw = row.compressed_raw
            stats.inflated = row.compressed_inflated
            stats.incomplete = row.incomplete
            self.blocks[conn] = "\n".join(self._block(conn, stats))
        elif table == "violation":
            self._stats(row["connection"]).violations[(row["severity"], row["rule"])] += 1
            self.total_violations[row["severity"]] += 1

    def write(self, out: IO[str], *, path: str, packets: int, first_ts: float | None,
              last_ts: float | None, warnings: list[str]) -> None:
        """Write the overview to ``out``, a connection at a time."""
        span = (last_ts - first_ts) if first_ts is not None and last_ts is not None else 0.0
        start = format_time(first_ts, "%Y-%m-%d %H:%M:%S UTC")
        ids = sorted(set(self.blocks.ids()) | set(self.conns))
        out.write(f"{path}: {packets} packets, {span:.3f} s from {start}, "
                  f"{len(ids)} WebSocket connection(s)\n")
        sev = self.total_violations
        out.write(f"violations: {sev['error']} error, {sev['warning']} warning, "
                  f"{sev['info']} info\n")
        for conn_id in ids:
            block = self.blocks.get(conn_id)
            if block is None:
                block = "\n".join(self._block(conn_id, self.conns[conn_id]))
            out.write(f"\n{block}\n")
        for w in warnings:
            out.write(f"warning: {w}\n")
        self.blocks.close()

    def _block(self, conn_id: int, s: _ConnStats) -> list[str]:
        row = s.row or {}
        lines: list[str] = []
        lines.append(f"connection {conn_id}: {row.get('client', '?')} → "
                     f"{row.get('server', '?')}  {row.get('path') or ''}".rstrip())
        hs = row.get("handshake", "?")
        rtt = row.get("handshake_rtt")
        lines.append(f"  handshake {hs}" + (f" ({rtt * 1000:.1f} ms)" if rtt is not None
                                            else "")
                     + f"; end {row.get('end', '?')}"
                     + (f"; close {row['close_code']} {row.get('close_reason') or ''}"
                        .rstrip() if row.get("close_code") is not None else ""))
        if row.get("tls_version") or row.get("decrypted") is not None:
            lines.append(f"  {row.get('tls_version') or 'TLS'} {row.get('tls_cipher') or '-'}, "
                         f"SNI {row.get('sni') or '-'}, "
                         + ("decrypted" if row.get("decrypted") else "NOT decrypted")
                         + (f", ALPN {row['alpn']}" if row.get("alpn") else ""))
        if row.get("subprotocol") or row.get("extensions"):
            lines.append(f"  subprotocol {row.get('subprotocol') or '-'}; "
                         f"extensions {row.get('extensions') or '-'}")
        for d in ("c2s", "s2c"):
            counts = ", ".join(f"{n} {t}" for (dd, t), n in sorted(s.types.items())
                               if dd == d)
            nbytes = row.get(f"bytes_{d}", 0)
            lines.append(f"  {d}: {counts or 'no messages'}; {nbytes} bytes on the wire")
        if s.compressed:
            ratio = s.raw / s.inflated if s.inflated else 0.0
            lines.append(f"  compression: {s.compressed}/{s.data_messages} data messages "
                         f"compressed, {s.raw} → {s.inflated} bytes (ratio {ratio:.2f})")
        if s.incomplete:
            lines.append(f"  incomplete messages: {s.incomplete}")
        if s.violations:
            parts = ", ".join(f"{rule} ×{n}" for (_, rule), n in
                              sorted(s.violations.items()))
            lines.append(f"  violations: {parts}")
        return lines
