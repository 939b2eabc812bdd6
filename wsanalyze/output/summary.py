"""The structured summary of a capture, built while streaming records.

:class:`Summary` is fed ``connection``, ``message`` and ``violation`` records and
keeps memory flat: open connections hold a few counters, an ended connection is
reduced to its JSON document (kept in memory up to ``spill`` bytes, then in a
temporary file), and only capture totals, top-N heaps and per-server aggregates
stay in memory.  :mod:`wsanalyze.output.summary_render` writes it as text,
Markdown or JSON (docs/summary-json.md).
"""

from __future__ import annotations

import heapq
import json
import sys
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from wsanalyze.pipeline import Record
from wsanalyze.rules import RULES
from wsanalyze.sequencer import SUMMARY, ConnectionSummary

DIRECTIONS = ("c2s", "s2c")
DATA_TYPES = frozenset(("text", "binary"))
TOP_N = 5
PENDING_PINGS = 16
"""Unanswered pings remembered per direction (a Pong may answer the latest only)."""

CHECK_RULES: tuple[str, ...] = tuple(r.id for r in RULES.values() if r.severity != "info")
"""Rules that judge the peers (errors and warnings); info rules describe the capture."""


def family(rule_id: str) -> str:
    return rule_id.split(".", 1)[0]


def checks(fired: set[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Checks passed and failed by rule family, given the rule ids that fired."""
    passed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for rid in CHECK_RULES:
        (failed if rid in fired else passed)[family(rid)] += 1
    return dict(passed), dict(failed)


def percentiles(values: Any) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99 (nearest rank) of ``values`` in milliseconds."""
    data = sorted(values)
    if not data:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None}

    def rank(p: int) -> float:
        # Nearest rank: the ceil(n * p / 100)-th smallest value.
        return round(data[max(0, -(-len(data) * p // 100) - 1)] * 1000, 3)

    return {"count": len(data), "mean": round(sum(data) / len(data) * 1000, 3),
            "p50": rank(50), "p95": rank(95), "p99": rank(99)}


@dataclass
class Counters:
    """What the summary counts for one connection while it is open."""

    types: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Rows of the messages table by (direction, type)."""
    compressed: int = 0
    compressed_raw: int = 0
    compressed_inflated: int = 0
    incomplete: int = 0
    violations: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(severity, rule) → rows."""
    pings: dict[str, list[tuple[bytes, float | None]]] = field(default_factory=dict)
    rtts: list[float] = field(default_factory=list)
    """Ping → Pong round trips, seconds."""


def counters_from_info(c: Counters, row: ConnectionSummary) -> None:
    """The single place the decoder's per-connection counters (a ``summary``
    record, :class:`~wsanalyze.sequencer.ConnectionSummary`) become summary
    counters."""
    c.types = Counter(row.types)
    c.compressed = row.compressed
    c.compressed_raw = row.compressed_raw
    c.compressed_inflated = row.compressed_inflated
    c.incomplete = row.incomplete


def count_message(c: Counters, row: dict[str, Any]) -> None:
    """Count a messages row (when no decoder counters come with the connection, as
    from a DataFrame) and pair Pings with Pongs."""
    d, kind = row["direction"], row["type"]
    c.types[(d, kind)] += 1
    if not row["complete"]:
        c.incomplete += 1
    if kind in DATA_TYPES and row["compressed"]:
        c.compressed += 1
        c.compressed_raw += row["raw_length"]
        c.compressed_inflated += row["length"]
    else:
        pair_ping(c, row)


def pair_ping(c: Counters, row: dict[str, Any]) -> None:
    """Remember a Ping; match a Pong to the latest unanswered Ping with its payload."""
    d, kind = row["direction"], row["type"]
    if kind == "ping":
        pending = c.pings.setdefault(d, [])
        pending.append((bytes(row["payload"]), row["ts"]))
        del pending[:-PENDING_PINGS]
    elif kind == "pong":
        pending = c.pings.get("s2c" if d == "c2s" else "c2s") or []
        payload = bytes(row["payload"])
        for i in range(len(pending) - 1, -1, -1):
            if pending[i][0] == payload:
                if row["ts"] is not None and pending[i][1] is not None:  # None: NaT
                    c.rtts.append(row["ts"] - pending[i][1])
                del pending[: i + 1]  # earlier pings count as answered by this one
                break


def _extensions(header: str | None) -> list[str]:
    """``"permessage-deflate; x=1, foo"`` → ``["permessage-deflate; x=1", "foo"]``."""
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def connection_doc(row: dict[str, Any], c: Counters) -> dict[str, Any]:
    """The JSON document of one ended connection (docs/summary-json.md)."""
    fired = {rule for (_, rule) in c.violations}
    passed, failed = checks({r for (s, r) in c.violations if s != "info"})
    by_type = {d: {t: n for (dd, t), n in sorted(c.types.items()) if dd == d}
               for d in DIRECTIONS}
    rtt = row.get("handshake_rtt")
    tls = None if row.get("decrypted") is None else {
        "version": row.get("tls_version"), "cipher": row.get("tls_cipher"),
        "sni": row.get("sni"), "alpn": row.get("alpn"), "decrypted": row.get("decrypted")}
    return {
        "tls": tls,
        "connection": row["connection"],
        "tcpStream": row.get("tcp_stream"),
        "client": row["client"], "server": row["server"],
        "host": row.get("host"), "path": row.get("path"),
        "tsStart": row.get("ts_start"), "tsEnd": row.get("ts_end"),
        "handshake": {
            "status": row.get("handshake"),
            "protocol": row.get("subprotocol"),
            "extensions": _extensions(row.get("extensions")),
            "protocolsOffered": list(row.get("subprotocols_offered") or []),
            "extensionsOffered": _extensions(row.get("extensions_offered")),
            "origin": row.get("origin"), "userAgent": row.get("user_agent"),
            "rttMs": None if rtt is None else round(rtt * 1000, 3),
        },
        "metrics": {
            "messagesSent": row.get("messages_c2s", 0),
            "messagesReceived": row.get("messages_s2c", 0),
            "avgLatencyMs": percentiles(c.rtts)["mean"],
            "compressionRatio": (round(c.compressed_raw / c.compressed_inflated, 4)
                                 if c.compressed_inflated else None),
            "bytesSent": row.get("bytes_c2s", 0), "bytesReceived": row.get("bytes_s2c", 0),
            "messagesByType": by_type,
            "compressedMessages": c.compressed,
            "compressedBytes": c.compressed_raw, "inflatedBytes": c.compressed_inflated,
            "incompleteMessages": c.incomplete,
            "pingRttMs": percentiles(c.rtts),
        },
        "close": {"code": row.get("close_code"), "reason": row.get("close_reason"),
                  "end": row.get("end")},
        "compliance": {
            "rfc6455": not any(s == "error" for (s, _) in c.violations),
            "checksPassed": passed, "checksFailed": failed,
            "rules": sorted(fired),
            "violations": {r: n for (_, r), n in sorted(c.violations.items(),
                                                        key=lambda kv: kv[0][1])},
        },
    }


class _Blocks:
    """Text of ended connections, by connection id.

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


@dataclass
class Server:
    """Aggregates of the connections to one host and path (query string dropped)."""

    connections: int = 0
    messages: int = 0
    bytes: int = 0
    errors: int = 0


class Summary:
    """Feed it records; then render with :mod:`wsanalyze.output.summary_render`."""

    TABLES = frozenset((SUMMARY, "violation"))
    """What to ask the pipeline for: no message rows, the counts come with each
    connection (:class:`~wsanalyze.sequencer.ConnectionSummary`): fast."""
    LATENCY_TABLES = TABLES | {"message"}
    """Also the message rows, for Ping → Pong round trips (slower)."""

    def __init__(self, spill: int = 256 * 1024, *, with_info: bool = True,
                 latency: bool = True) -> None:
        self._with_info = with_info
        """Counts come with ``summary`` records (:class:`ConnectionSummary`); else
        from message rows."""
        self.latency = latency
        """Ping → Pong round trips are measured (message rows are fed)."""
        self.open: dict[int, Counters] = {}
        """Counters of connections still open."""
        self.blocks = _Blocks(spill)
        """JSON documents of connections that ended."""
        self.types: Counter[tuple[str, str]] = Counter()
        self.totals: Counter[str] = Counter()
        self.severities: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self.handshake: Counter[str] = Counter()
        self.protocols: Counter[str] = Counter()
        self.extensions: Counter[str] = Counter()
        self.handshake_rtts = array("d")
        self.ping_rtts = array("d")
        self.servers: dict[str, Server] = {}
        self.top: dict[str, list[tuple[int, int]]] = {"messages": [], "bytes": [],
                                                       "violations": []}

    def _counters(self, conn: int) -> Counters:
        c = self.open.get(conn)
        if c is None:
            c = self.open[conn] = Counters()
        return c

    def add(self, record: Record) -> None:
        table, row = record
        if table == "message":
            c = self._counters(row["connection"])
            if self._with_info:
                pair_ping(c, row)  # the counts come with the connection
            else:
                count_message(c, row)
        elif table == "violation":
            # Capture totals are counted when the connection ends (it may be discarded).
            self._counters(row["connection"]).violations[(row["severity"], row["rule"])] += 1
        elif table == SUMMARY:
            # A connection's row comes last, with the decoder's counters.
            conn = row.row["connection"]
            c = self.open.pop(conn) if conn in self.open else Counters()
            counters_from_info(c, row)
            self._end(row.row, c)
        elif table == "connection":
            conn = row["connection"]
            self._end(row, self.open.pop(conn) if conn in self.open else Counters())

    def discard(self, conn: int) -> None:
        """Forget what was counted for connection ``conn`` (filtered out)."""
        self.open.pop(conn, None)

    def _end(self, row: dict[str, Any], c: Counters) -> None:
        for (severity, rule), n in c.violations.items():
            self.severities[severity] += n
            self.rules[rule] += n
        doc = connection_doc(row, c)
        if not self.latency:
            doc["metrics"]["pingRttMs"] = None
        self.blocks[row["connection"]] = json.dumps(doc, ensure_ascii=False)
        m = doc["metrics"]
        self.types.update(c.types)
        for key in ("messagesSent", "messagesReceived", "bytesSent", "bytesReceived",
                    "compressedMessages", "compressedBytes", "inflatedBytes",
                    "incompleteMessages"):
            self.totals[key] += m[key]
        self.handshake[doc["handshake"]["status"] or "?"] += 1
        if doc["handshake"]["protocol"]:
            self.protocols[doc["handshake"]["protocol"]] += 1
        for ext in doc["handshake"]["extensions"]:
            self.extensions[ext.split(";")[0].strip()] += 1
        if row.get("handshake_rtt") is not None:
            self.handshake_rtts.append(row["handshake_rtt"])
        self.ping_rtts.extend(c.rtts)
        messages = m["messagesSent"] + m["messagesReceived"]
        nbytes = m["bytesSent"] + m["bytesReceived"]
        errors = sum(n for (s, _), n in c.violations.items() if s != "info")
        host = row.get("host") or row["server"]
        server = self.servers.setdefault(f"{host}{(row.get('path') or '').split('?')[0]}",
                                         Server())
        server.connections += 1
        server.messages += messages
        server.bytes += nbytes
        server.errors += errors
        for key, value in (("messages", messages), ("bytes", nbytes), ("violations", errors)):
            heap = self.top[key]
            # Ties go to the lower id: the key is (value, -id).
            item = (value, -row["connection"])
            if len(heap) < TOP_N:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)

    def finish(self) -> None:
        """End connections whose row never came (a truncated record stream)."""
        for conn in sorted(self.open):
            self._end({"connection": conn, "client": "?", "server": "?"}, self.open.pop(conn))

    def connection_ids(self) -> list[int]:
        return sorted(self.blocks.ids())

    def connection(self, conn: int) -> dict[str, Any]:
        text = self.blocks.get(conn)
        assert text is not None, conn
        return json.loads(text)  # type: ignore[no-any-return]

    def top_ids(self, key: str) -> list[tuple[int, int]]:
        """(connection, value) of the top connections by ``key``, largest first."""
        return [(-neg, v) for v, neg in sorted(self.top[key], reverse=True) if v > 0]

    def write(self, out: IO[str], *, path: str, packets: int, first_ts: float | None,
              last_ts: float | None, warnings: list[str], fmt: str = "text",
              width: int | None = None, connections: bool | None = None) -> None:
        """Write the summary as ``fmt`` (text, md or json) and release the spill file."""
        from wsanalyze.output import summary_render as render

        self.finish()
        info = render.CaptureInfo(path, packets, first_ts, last_ts, warnings)
        try:
            if fmt == "json":
                render.write_json(out, self, info)
            elif fmt == "md":
                render.write_markdown(out, self, info, connections=connections)
            else:
                render.write_text(out, self, info, width=width, connections=connections)
        finally:
            self.close()

    def close(self) -> None:
        self.blocks.close()
