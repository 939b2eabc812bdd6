"""Values formatted the same way by the Markdown and HTML renderers."""

from __future__ import annotations

from typing import Any

from wsanalyze.report.model import Finding, Report
from wsanalyze.timestamps import format_time

PREVIEW = 40


def when(ts: float | None, t0: float | None) -> str:
    """``+1.234567 s (2026-12-02 07:30:00.123456 UTC)``."""
    if ts is None:
        return "-"
    rel = f"+{ts - t0:.6f} s" if t0 is not None else ""
    absolute = format_time(ts, "%Y-%m-%d %H:%M:%S.%f UTC")  # never raises
    return f"{rel} ({absolute})" if rel else absolute


def preview(m: dict[str, Any]) -> str:
    """A short, one-line view of a message's payload."""
    if m.get("type") == "close":
        code = m.get("close_code")
        return f"code {code} {m.get('close_reason') or ''}".strip() if code is not None \
            else "(no status code)"
    text = m.get("text")
    raw = m.get("payload") or b""
    if text is None and raw and all(32 <= b < 127 for b in raw):
        text = repr(bytes(raw))
    if text is None:
        return "(empty)" if not raw else raw[:12].hex(" ") + (" …" if len(raw) > 12 else "")
    text = text.replace("\n", "⏎").replace("\r", "")
    return text[:PREVIEW] + ("…" if len(text) > PREVIEW else "")


def message_line(m: dict[str, Any], t0: float | None) -> str:
    rel = f"+{m['ts'] - t0:.6f} s" if t0 is not None and m["ts"] is not None else ""
    flag = "" if m.get("complete", True) else " (incomplete)"
    comp = " compressed" if m.get("compressed") else ""
    return (f"#{m['index']:<4} {m['direction']}  packet {m['packet']:<6} {rel:>13}  "
            f"{m['type']}{comp} {m['length']} B{flag}: {preview(m)}")


def direction_text(row: dict[str, Any], conn: dict[str, Any]) -> str:
    d = row.get("direction")
    if d == "c2s":
        return f"client → server ({conn['client']} → {conn['server']})"
    if d == "s2c":
        return f"server → client ({conn['server']} → {conn['client']})"
    return "both directions"


def status(report: Report) -> str:
    """``PASS``, ``FAIL`` or ``NO WEBSOCKET`` (nothing was checked)."""
    if not report.summary["capture"]["websocketConnections"]:
        return "NO WEBSOCKET"
    return "PASS" if report.clean else "FAIL"


def verdict(report: Report) -> str:
    sev = report.summary["compliance"]["bySeverity"]
    shown = sum(g.count for g in report.groups)
    if not report.summary["capture"]["websocketConnections"]:
        return (f"No WebSocket connection in this capture ({report.tcp_conversations} TCP "
                f"conversation(s), {report.summary['capture']['packets']} packet(s)): "
                "nothing to check.")
    if report.clean:
        return (f"No protocol violation: {report.checks} checks of RFC 6455 and RFC 7692 "
                f"were applied to {report.summary['capture']['websocketConnections']} "
                "WebSocket connection(s) and none failed.")
    return (f"{sev['error']} error(s), {sev['warning']} warning(s) and {sev['info']} info "
            f"row(s) in the capture; {shown} violation(s) shown below "
            f"({report.checks} checks applied).")


def headline_rows(report: Report) -> list[tuple[str, str]]:
    """(label, value) rows of the capture summary table."""
    doc = report.summary
    c, m = doc["capture"], doc["metrics"]
    hs = doc["handshake"]

    def pct(p: dict[str, Any]) -> str:
        if not p["count"]:
            return "none"
        return (f"p50 {p['p50']:.3f} ms, p95 {p['p95']:.3f} ms, p99 {p['p99']:.3f} ms "
                f"(n={p['count']})")

    def types(d: str) -> str:
        return ", ".join(f"{n} {t}" for t, n in m["messagesByType"][d].items()) or "none"

    rows = [
        ("File", c["file"]),
        ("Packets", str(c["packets"])),
        ("Time span", f"{c['durationS']:.6f} s from {c['start'] or '-'}"),
        ("TCP conversations", str(report.tcp_conversations)),
        ("WebSocket connections", f"{c['websocketConnections']} (handshakes: " + ", ".join(
            f"{n} {k}" for k, n in hs["status"].items()) + ")"),
        ("Client → server", f"{types('c2s')}; {m['bytesSent']} bytes on the wire"),
        ("Server → client", f"{types('s2c')}; {m['bytesReceived']} bytes on the wire"),
        ("Extensions", ", ".join(hs["extensions"]) or "none"),
        ("Subprotocols", ", ".join(hs["protocols"]) or "none"),
        ("Compression", (f"{m['compressedMessages']} messages, {m['compressedBytes']} → "
                         f"{m['inflatedBytes']} bytes (ratio {m['compressionRatio']:.2f})")
         if m["compressedMessages"] else "none"),
        ("Handshake RTT", pct(m["handshakeRttMs"])),
        ("Ping → Pong RTT", pct(m["pingRttMs"])),
    ]
    return rows


def checks_text(report: Report) -> str:
    """``handshake 7, frame 7, …``: the checks that passed, by rule family."""
    passed = report.summary["compliance"]["checksPassed"]
    return ", ".join(f"{family} {n}" for family, n in passed.items())


NOTES_INTRO = "Properties of the capture, not of the peers (they do not make it fail):"
NO_NOTES = "No gaps, snapshot-length truncation or connections begun before the capture."


def note_lines(report: Report) -> list[tuple[str, int, str, str]]:
    """The capture-quality notes: (rule id, count, connection ids, first message)."""
    lines = []
    for g in report.notes:
        conns = ", ".join(str(cg.conn["connection"]) for cg in g.connections)
        lines.append((g.rule.id, g.count, conns, str(g.connections[0].findings[0].row["message"])))
    return lines


def context_lines(f: Finding, packet: object, t0: float | None) -> list[str]:
    """A finding's messages before and after it, with the violation's packet between."""
    lines = [message_line(m, t0) for m in f.before]
    lines.append(f"---- violation at packet {packet} ----")
    if f.offending is not None:
        lines.append(message_line(f.offending, t0) + "  ◀ offending")
    lines += [message_line(m, t0) for m in f.after]
    return lines


def incomplete_text(report: Report) -> str:
    """A capture-quality line about messages that lost bytes, or ''."""
    n = report.summary["metrics"]["incompleteMessages"]
    return f"{n} message(s) incomplete: bytes of them were not captured." if n else ""


def reaction_text(reaction: str) -> str:
    return reaction[:1].upper() + reaction[1:] if reaction else ""
