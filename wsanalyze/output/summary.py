"""The human overview printed by ``wsanalyze summary``, built while streaming."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from wsanalyze.pipeline import Record


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


class Summary:
    """Feed it records; :meth:`render` returns the overview text."""

    def __init__(self) -> None:
        self.conns: dict[int, _ConnStats] = {}
        """Statistics of connections still open."""
        self.blocks: dict[int, str] = {}
        """The rendered text of connections that ended (memory: a line or so each)."""
        self.total_violations: Counter[str] = Counter()

    def _stats(self, conn: int) -> _ConnStats:
        stats = self.conns.get(conn)
        if stats is None:
            stats = self.conns[conn] = _ConnStats()
        return stats

    TABLES = frozenset(("connection-info", "violation"))
    """What to ask the pipeline for: no message rows, the counts come with each
    connection (ConnectionInfo)."""

    def add(self, record: Record) -> None:
        table, row = record
        if table == "connection-info":
            # A connection's row comes last: render it now and keep only the text.
            conn = row["row"]["connection"]
            info = row["info"]
            stats = self.conns.pop(conn, None) or _ConnStats()
            stats.row = row["row"]
            if info is not None:
                stats.types = info.types
                stats.data_messages = sum(info.messages.values())
                stats.compressed = info.compressed
                stats.raw = info.compressed_raw
                stats.inflated = info.compressed_inflated
                stats.incomplete = info.incomplete
            self.blocks[conn] = "\n".join(self._block(conn, stats))
        elif table == "violation":
            self._stats(row["connection"]).violations[(row["severity"], row["rule"])] += 1
            self.total_violations[row["severity"]] += 1

    def render(self, *, path: str, packets: int, first_ts: float | None,
               last_ts: float | None, warnings: list[str]) -> str:
        lines = []
        span = (last_ts - first_ts) if first_ts is not None and last_ts is not None else 0.0
        start = (datetime.fromtimestamp(first_ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                 if first_ts is not None else "-")
        ids = sorted(set(self.blocks) | set(self.conns))
        lines.append(f"{path}: {packets} packets, {span:.3f} s from {start}, "
                     f"{len(ids)} WebSocket connection(s)")
        sev = self.total_violations
        lines.append(f"violations: {sev['error']} error, {sev['warning']} warning, "
                     f"{sev['info']} info")
        for conn_id in ids:
            lines.append("")
            block = self.blocks.get(conn_id)
            lines.extend([block] if block is not None else
                         self._block(conn_id, self.conns[conn_id]))
        for w in warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines) + "\n"

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
