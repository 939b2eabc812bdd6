"""Short descriptions of an analysis for people: the one-paragraph ``repr`` and the
HTML card Jupyter shows (counts, violations by rule, a small timeline as inline SVG).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import numpy as np

from wsanalyze.metrics.tables import Tables
from wsanalyze.output.dataframe import seconds
from wsanalyze.output.schema import VOCABULARIES

SEVERITIES = VOCABULARIES["severity"]
#: Violations by rule shown in the card, at most (the rest are summed up).
CARD_RULES = 12
SVG_WIDTH, SVG_HEIGHT, SVG_BINS = 360, 56, 72


def _span(tables: Tables) -> tuple[float | None, float | None]:
    """First and last epoch seconds of the capture (from the tables when unknown)."""
    first = tables.first_ts
    last = getattr(tables, "last_ts", None)
    stamps = [seconds(df[c]) for df, c in ((tables.connections, "ts_start"),
                                           (tables.connections, "ts_end"),
                                           (tables.messages, "ts")) if c in df and len(df)]
    values = np.concatenate(stamps) if stamps else np.empty(0)
    values = values[np.isfinite(values)]
    if first is None and values.size:
        first = float(values.min())
    if last is None and values.size:
        last = float(values.max())
    return first, last


def _when(ts: float | None) -> str:
    if ts is None or not -9.2e9 < ts < 9.2e9:
        return "?"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _by_severity(tables: Tables) -> dict[str, int]:
    v = tables.violations
    if v.empty:
        return {}
    counts = v["severity"].astype(str).value_counts()
    return {s: int(counts[s]) for s in (*SEVERITIES, *sorted(set(counts.index) - set(SEVERITIES)))
            if s in counts.index}


def _counts(tables: Tables) -> dict[str, int]:
    return {"connections": len(tables.connections), "messages": len(tables.messages),
            "frames": len(tables.frames), "violations": len(tables.violations)}


def text_summary(tables: Tables) -> str:
    """``AnalysisResult('x.pcap': 2026-… UTC, 12.5 s; 3 connections, …)``, 2–3 lines."""
    first, last = _span(tables)
    span = f"{last - first:.3f} s" if first is not None and last is not None else "no packets"
    path = getattr(tables, "path", "") or "?"
    name = type(tables).__name__
    head = f"{name}({path!r}: {_when(first)}, {span}"
    counts = ", ".join(f"{n:,} {k if n != 1 else k[:-1]}" for k, n in _counts(tables).items())
    sev = _by_severity(tables)
    detail = " (" + ", ".join(f"{n} {s}" for s, n in sev.items()) + ")" if sev else ""
    warnings = getattr(tables, "warnings", [])
    tail = f"\n  {len(warnings)} capture warning(s): {warnings[0]}" if warnings else ""
    return f"{head};\n  {counts}{detail}){tail}"


def _timeline_svg(tables: Tables, first: float | None, last: float | None) -> str:
    """Messages per time bin, client → server up and server → client down."""
    m = tables.messages
    if m.empty or first is None or last is None:
        return ""
    t = seconds(m["ts"]) - first
    width = max((last - first) / SVG_BINS, 1e-9)
    which = np.clip(np.nan_to_num(t / width, nan=0.0).astype(np.int64), 0, SVG_BINS - 1)
    up = np.bincount(which[(m["direction"] == "c2s").to_numpy()], minlength=SVG_BINS)
    down = np.bincount(which[(m["direction"] == "s2c").to_numpy()], minlength=SVG_BINS)
    top = max(int(up.max()), int(down.max()), 1)
    mid, bar, half = SVG_HEIGHT / 2, SVG_WIDTH / SVG_BINS, SVG_HEIGHT / 2 - 2
    rects = []
    for i in range(SVG_BINS):
        for n, color, sign in ((up[i], "#1f77b4", -1), (down[i], "#ff7f0e", 1)):
            if n:
                h = max(1.0, half * n / top)
                y = mid - h if sign < 0 else mid
                rects.append(f'<rect x="{i * bar:.1f}" y="{y:.1f}" width="{bar * 0.9:.1f}" '
                             f'height="{h:.1f}" fill="{color}"/>')
    v = tables.violations
    if not v.empty:
        vt = seconds(v["ts"]) - first
        for x in np.unique(np.clip(np.nan_to_num(vt / width), 0, SVG_BINS - 1).astype(int)):
            rects.append(f'<rect x="{x * bar:.1f}" y="0" width="2" height="{SVG_HEIGHT}" '
                         'fill="#d62728" opacity="0.85"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" '
            f'height="{SVG_HEIGHT}" role="img" aria-label="messages over time">'
            f'<line x1="0" y1="{mid}" x2="{SVG_WIDTH}" y2="{mid}" stroke="#999"/>'
            + "".join(rects) + "</svg>")


def _rules_rows(tables: Tables) -> str:
    v = tables.violations
    if v.empty:
        return '<tr><td colspan="3">no violations</td></tr>'
    g = (v.assign(rule=v["rule"].astype(str), severity=v["severity"].astype(str))
         .groupby(["rule", "severity"]).size().reset_index(name="n")
         .sort_values(["n", "rule"], ascending=[False, True]))
    top = g.head(CARD_RULES)
    rows = [f"<tr><td><code>{html.escape(rule)}</code></td><td>{html.escape(severity)}"
            f"</td><td>{n}</td></tr>"
            for rule, severity, n in zip(top["rule"].tolist(), top["severity"].tolist(),
                                         top["n"].tolist(), strict=True)]
    if len(g) > CARD_RULES:
        rest = int(g["n"].iloc[CARD_RULES:].sum())
        rows.append(f"<tr><td>{len(g) - CARD_RULES} more rules</td><td></td><td>{rest}</td></tr>")
    return "".join(rows)


def html_card(tables: Tables) -> str:
    """A compact HTML card: file and span, row counts, violations by severity and
    rule, and a message timeline."""
    first, last = _span(tables)
    path = html.escape(getattr(tables, "path", "") or "?")
    span = f"{last - first:.3f} s" if first is not None and last is not None else "no packets"
    counts = "".join(f"<tr><td>{k}</td><td>{n:,}</td></tr>" for k, n in _counts(tables).items())
    sev = ", ".join(f"{n} {s}" for s, n in _by_severity(tables).items()) or "none"
    svg = _timeline_svg(tables, first, last)
    legend = ('<div style="font-size:smaller">messages per time bin: '
              '<span style="color:#1f77b4">client → server</span> up, '
              '<span style="color:#ff7f0e">server → client</span> down, '
              '<span style="color:#d62728">violations</span> as red lines</div>') if svg else ""
    return (
        '<div class="wsanalyze-card" style="border:1px solid #ccc;padding:8px;'
        'display:inline-block;font-family:sans-serif">'
        f"<b>{html.escape(type(tables).__name__)}</b> <code>{path}</code><br>"
        f"{_when(first)}, {span}"
        '<div style="display:flex;gap:16px;align-items:flex-start;margin-top:6px">'
        f"<table>{counts}</table>"
        f"<table><tr><th>rule</th><th>severity</th><th>rows</th></tr>{_rules_rows(tables)}"
        f"</table></div><div>violations: {html.escape(sev)}</div>{svg}{legend}</div>")

