"""Writing a :class:`~wsanalyze.output.summary.Summary` as text, Markdown or JSON.

Totals come first, then the top connections and per-server aggregates; the
per-connection blocks only when asked for or when there are few connections, so
the text stays readable for a capture of 100 000 connections.  Text lines never
exceed the given width.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from wsanalyze.output.summary import (
    CHECK_RULES,
    DIRECTIONS,
    Summary,
    checks,
    percentiles,
)
from wsanalyze.rules import RULES
from wsanalyze.timestamps import format_time

FEW_CONNECTIONS = 20
"""Below this many connections the per-connection blocks are always shown."""


@dataclass
class CaptureInfo:
    path: str
    packets: int
    first_ts: float | None
    last_ts: float | None
    warnings: list[str]


def _ts_text(ts: float | None) -> str | None:
    if ts is None:
        return None
    return format_time(ts, "%Y-%m-%d %H:%M:%S UTC")  # "epoch N" outside the calendar


def capture_doc(s: Summary, info: CaptureInfo) -> dict[str, Any]:
    """Everything but the per-connection documents (docs/summary-json.md)."""
    span = (info.last_ts - info.first_ts
            if info.first_ts is not None and info.last_ts is not None else 0.0)
    t = s.totals
    fired_checks = {r for r in s.rules if RULES[r].severity != "info"}
    passed, failed = checks(fired_checks)
    protocols = list(s.protocols)
    return {
        "capture": {
            "file": info.path, "packets": info.packets, "firstTs": info.first_ts,
            "lastTs": info.last_ts, "durationS": round(span, 6),
            "start": _ts_text(info.first_ts),
            "websocketConnections": len(s.blocks), "warnings": list(info.warnings),
        },
        "handshake": {
            "protocol": protocols[0] if len(protocols) == 1 else None,
            "protocols": dict(s.protocols),
            "extensions": sorted(s.extensions),
            "status": dict(sorted(s.handshake.items())),
        },
        "metrics": {
            "messagesSent": t["messagesSent"], "messagesReceived": t["messagesReceived"],
            "avgLatencyMs": percentiles(s.ping_rtts)["mean"],
            "compressionRatio": (round(t["compressedBytes"] / t["inflatedBytes"], 4)
                                 if t["inflatedBytes"] else None),
            "bytesSent": t["bytesSent"], "bytesReceived": t["bytesReceived"],
            "messagesByType": {d: {k: n for (dd, k), n in sorted(s.types.items()) if dd == d}
                               for d in DIRECTIONS},
            "compressedMessages": t["compressedMessages"],
            "compressedBytes": t["compressedBytes"], "inflatedBytes": t["inflatedBytes"],
            "incompleteMessages": t["incompleteMessages"],
            "handshakeRttMs": percentiles(s.handshake_rtts),
            "pingRttMs": percentiles(s.ping_rtts) if s.latency else None,
        },
        "compliance": {
            "rfc6455": s.severities["error"] == 0,
            "checksApplied": len(CHECK_RULES),
            "checksPassed": passed, "checksFailed": failed,
            "rules": sorted(s.rules),
            "bySeverity": {sev: s.severities[sev] for sev in ("error", "warning", "info")},
            "byRule": {r: {"severity": RULES[r].severity, "reference": RULES[r].reference,
                           "count": n} for r, n in sorted(s.rules.items())},
        },
        "top": {key: [{"connection": c, key: v} for c, v in s.top_ids(key)]
                for key in ("messages", "bytes", "violations")},
        "servers": [{"server": name, "connections": a.connections, "messages": a.messages,
                     "bytes": a.bytes, "violations": a.errors}
                    for name, a in sorted(s.servers.items(),
                                          key=lambda kv: (-kv[1].connections, kv[0]))],
    }


def write_json(out: IO[str], s: Summary, info: CaptureInfo) -> None:
    """The capture document, then ``connections`` one document at a time."""
    doc = capture_doc(s, info)
    out.write("{\n")
    for key, value in doc.items():
        out.write(f'  "{key}": {_indent(json.dumps(value, indent=2, ensure_ascii=False))},\n')
    ids = s.connection_ids()
    out.write('  "connections": [')
    for i, conn in enumerate(ids):
        text = json.dumps(s.connection(conn), indent=2, ensure_ascii=False)
        out.write(("\n    " if i == 0 else ",\n    ") + _indent(text, 4))
    out.write("\n  ]\n}\n" if ids else "]\n}\n")


def _indent(text: str, n: int = 2) -> str:
    return text.replace("\n", "\n" + " " * n)


# ------------------------------------------------------------------ text and Markdown


def _fit(line: str, width: int | None) -> list[str]:
    """``line`` wrapped to ``width`` at spaces, continuation lines indented."""
    if width is None or len(line) <= width:
        return [line]
    lead = " " * (len(line) - len(line.lstrip(" ")) + 4)
    return textwrap.wrap(line, width, subsequent_indent=lead[: max(width // 2, 1)],
                         break_on_hyphens=False, drop_whitespace=True) or [line[:width]]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms" if v >= 1 else f"{v * 1000:.0f} µs"


def _latency(p: dict[str, Any]) -> str:
    if not p["count"]:
        return "none"
    return (f"p50 {_ms(p['p50'])}, p95 {_ms(p['p95'])}, p99 {_ms(p['p99'])} "
            f"(n={p['count']})")


def _types(by_type: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in by_type.items()) or "no messages"


def headline(doc: dict[str, Any]) -> list[str]:
    """The totals as short lines (shared by text, Markdown and the report)."""
    c, m, comp = doc["capture"], doc["metrics"], doc["compliance"]
    sev = comp["bySeverity"]
    lines = [f"{c['file']}: {c['packets']} packets, {c['durationS']:.3f} s from "
             f"{c['start'] or '-'}, {c['websocketConnections']} WebSocket connection(s)",
             f"violations: {sev['error']} error, {sev['warning']} warning, {sev['info']} info"
             f" ({comp['checksApplied']} checks applied)"]
    for d, word in (("c2s", "client → server"), ("s2c", "server → client")):
        key = "bytesSent" if d == "c2s" else "bytesReceived"
        lines.append(f"{word}: {_types(m['messagesByType'][d])}; {m[key]} bytes on the wire")
    if m["compressedMessages"]:
        lines.append(f"compression: {m['compressedMessages']} messages compressed, "
                     f"{m['compressedBytes']} → {m['inflatedBytes']} bytes "
                     f"(ratio {m['compressionRatio']:.2f})")
    hs = doc["handshake"]
    if hs["extensions"] or hs["protocols"]:
        lines.append(f"extensions: {', '.join(hs['extensions']) or '-'}; subprotocols: "
                     f"{', '.join(hs['protocols']) or '-'}")
    lines.append(f"handshake RTT: {_latency(m['handshakeRttMs'])}")
    lines.append(f"ping → pong: {_latency(m['pingRttMs'])}" if m["pingRttMs"] is not None
                 else "ping → pong: not measured (--latency measures it)")
    return lines


def connection_lines(d: dict[str, Any]) -> list[str]:
    """One connection's block (the first line starts ``connection N:``)."""
    hs, m, close = d["handshake"], d["metrics"], d["close"]
    lines = [f"connection {d['connection']}: {d['client']} → {d['server']}  "
             f"{d.get('path') or ''}".rstrip()]
    rtt = hs["rttMs"]
    lines.append(f"  handshake {hs['status']}" + (f" ({rtt:.1f} ms)" if rtt is not None else "")
                 + f"; end {close['end']}"
                 + (f"; close {close['code']} {close['reason'] or ''}".rstrip()
                    if close["code"] is not None else ""))
    tls = d.get("tls")
    if tls:  # wss://: what was negotiated, and whether the key log opened it
        lines.append(f"  {tls['version'] or 'TLS'} {tls['cipher'] or '-'}, "
                     f"SNI {tls['sni'] or '-'}, "
                     + ("decrypted" if tls["decrypted"] else "NOT decrypted (no key)")
                     + (f", ALPN {tls['alpn']}" if tls["alpn"] else ""))
    if hs["protocol"] or hs["extensions"]:
        lines.append(f"  subprotocol {hs['protocol'] or '-'}; "
                     f"extensions {', '.join(hs['extensions']) or '-'}")
    for dd in DIRECTIONS:
        nbytes = m["bytesSent" if dd == "c2s" else "bytesReceived"]
        lines.append(f"  {dd}: {_types(m['messagesByType'][dd])}; {nbytes} bytes on the wire")
    if m["compressedMessages"]:
        data = m["messagesSent"] + m["messagesReceived"]
        lines.append(f"  compression: {m['compressedMessages']}/{data} data messages "
                     f"compressed, {m['compressedBytes']} → {m['inflatedBytes']} bytes "
                     f"(ratio {m['compressionRatio']:.2f})")
    if m["pingRttMs"] and m["pingRttMs"]["count"]:
        lines.append(f"  ping → pong: {_latency(m['pingRttMs'])}")
    if m["incompleteMessages"]:
        lines.append(f"  incomplete messages: {m['incompleteMessages']}")
    if d["compliance"]["violations"]:
        # Most severe first (errors, warnings, info), then by rule id.
        order = ("error", "warning", "info")
        ranked = sorted(d["compliance"]["violations"].items(),
                        key=lambda kv: (order.index(RULES[kv[0]].severity)
                                        if kv[0] in RULES else len(order), kv[0]))
        parts = ", ".join(f"{r} ×{n}" for r, n in ranked)
        lines.append(f"  violations: {parts}")
    return lines


def _show_blocks(s: Summary, connections: bool | None) -> bool:
    return connections if connections is not None else len(s.blocks) < FEW_CONNECTIONS


def text_lines(s: Summary, info: CaptureInfo, *,
               connections: bool | None = None) -> Iterator[str]:
    doc = capture_doc(s, info)
    yield from headline(doc)
    by_rule = doc["compliance"]["byRule"]
    for rule, r in by_rule.items():
        yield f"  {r['severity']:7} {rule} ×{r['count']}  ({r['reference']})"
    if len(s.blocks) > 1:
        for key in ("messages", "bytes", "violations"):
            top = doc["top"][key]
            if top:
                yield f"top by {key}: " + ", ".join(f"#{t['connection']} ({t[key]})"
                                                    for t in top)
    if len(doc["servers"]) > 1 or (doc["servers"] and len(s.blocks) > 1):
        yield "servers:"
        for srv in doc["servers"][:20]:
            yield (f"  {srv['server']}: {srv['connections']} conn, {srv['messages']} msg, "
                   f"{srv['bytes']} bytes, {srv['violations']} violations")
        if len(doc["servers"]) > 20:
            yield f"  … and {len(doc['servers']) - 20} more servers"
    if _show_blocks(s, connections):
        for conn in s.connection_ids():
            yield ""
            yield from connection_lines(s.connection(conn))
    elif len(s.blocks):
        yield ""
        yield f"({len(s.blocks)} connections: add --connections for one block each)"
    for w in info.warnings:
        yield f"warning: {w}"


def write_text(out: IO[str], s: Summary, info: CaptureInfo, *, width: int | None = None,
               connections: bool | None = None) -> None:
    for line in text_lines(s, info, connections=connections):
        for part in _fit(line, width):
            out.write(part + "\n")


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_markdown(out: IO[str], s: Summary, info: CaptureInfo, *,
                   connections: bool | None = None) -> None:
    doc = capture_doc(s, info)
    lines = headline(doc)
    out.write(f"### wsanalyze summary: `{info.path}`\n\n")
    out.write("".join(f"- {_md_cell(line)}\n" for line in lines[1:]) + "\n")
    out.write(f"{_md_cell(lines[0])}\n\n")
    if doc["compliance"]["byRule"]:
        out.write("| severity | rule | count | reference |\n|---|---|---|---|\n")
        for rule, r in doc["compliance"]["byRule"].items():
            out.write(f"| {r['severity']} | `{rule}` | {r['count']} | {r['reference']} |\n")
        out.write("\n")
    if doc["servers"]:
        out.write("| server | connections | messages | bytes | violations |\n"
                  "|---|---|---|---|---|\n")
        for srv in doc["servers"][:20]:
            out.write(f"| {_md_cell(srv['server'])} | {srv['connections']} | "
                      f"{srv['messages']} | {srv['bytes']} | {srv['violations']} |\n")
        out.write("\n")
    if _show_blocks(s, connections) and len(s.blocks):
        out.write(f"<details><summary>{len(s.blocks)} connection(s)</summary>\n\n```text\n")
        for conn in s.connection_ids():
            out.write("\n".join(connection_lines(s.connection(conn))) + "\n\n")
        out.write("```\n\n</details>\n")
    for w in info.warnings:
        out.write(f"> warning: {_md_cell(w)}\n")
