"""The report as ONE self-contained HTML file: CSS and images (PNG data: URIs)
inline, no script, no external reference, readable on screen and on paper."""

from __future__ import annotations

import base64
import os
import struct
from html import escape
from typing import IO

from wsanalyze import __version__
from wsanalyze.report import fmt
from wsanalyze.report.model import ConnectionGroup, Finding, Report, RuleGroup

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg2: #f6f8fa;
  --error: #cf222e; --warning: #9a6700; --info: #0969da; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
  color: var(--fg); max-width: 1040px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; border-bottom: 1px solid var(--line); padding-bottom: 4px;
  margin-top: 36px; }
h3 { font-size: 18px; margin: 28px 0 6px; }
h4 { font-size: 15px; margin: 20px 0 6px; color: var(--muted); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono",
  Menlo, Consolas, monospace; font-size: 12.5px; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px;
  padding: 10px 12px; overflow-x: auto; line-height: 1.35; white-space: pre; }
pre mark { background: #ffebe9; color: var(--error); font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0 16px; width: 100%; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: var(--bg2); font-weight: 600; white-space: nowrap; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 16px 0; font-size: 16px;
  border: 1px solid; }
.verdict.pass { background: #dafbe1; border-color: var(--ok); }
.verdict.fail { background: #ffebe9; border-color: var(--error); }
.verdict.none { background: var(--bg2); border-color: var(--line); }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; color: #fff;
  font-size: 12px; font-weight: 600; vertical-align: middle; }
.badge.error { background: var(--error); } .badge.warning { background: var(--warning); }
.badge.info { background: var(--info); }
blockquote { margin: 6px 0; padding: 4px 12px; border-left: 4px solid var(--line);
  color: var(--fg); background: var(--bg2); }
.muted { color: var(--muted); }
.finding { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px;
  margin: 10px 0; page-break-inside: avoid; }
.filters code { background: var(--bg2); padding: 1px 4px; border-radius: 4px; }
img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figure { margin: 12px 0; } figcaption { color: var(--muted); font-size: 13px; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
@media (max-width: 800px) { .plots { grid-template-columns: 1fr; } }
@media print { body { max-width: none; padding: 0; font-size: 11pt; }
  pre { white-space: pre-wrap; } h2, h3 { page-break-after: avoid; }
  figure { page-break-inside: avoid; } }
"""


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])  # type: ignore[return-value]


def _img(png: bytes, alt: str) -> str:
    w, h = png_size(png)
    data = base64.b64encode(png).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" width="{w}" height="{h}" '
            f'alt="{escape(alt)}"><figcaption>{escape(alt)}</figcaption></figure>')


def _pre(lines: list[str]) -> str:
    out = []
    for line in lines:
        text = escape(line)
        out.append(f"<mark>{text}</mark>" if "◀" in line else text)
    return "<pre>" + "\n".join(out) + "</pre>"


def write(report: Report, out: IO[str]) -> None:
    name = os.path.basename(report.path)
    p: list[str] = []
    p.append(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>WebSocket protocol report: {escape(name)}</title>"
             f"<style>{CSS}</style></head><body>")
    p.append(f"<h1>WebSocket protocol report</h1><div class=\"muted mono\">"
             f"{escape(report.path)}</div>")
    status = fmt.status(report)
    css = "fail" if status == "FAIL" else "pass" if status == "PASS" else "none"
    p.append(f"<div class=\"verdict {css}\"><strong>{status}</strong> — "
             f"{escape(fmt.verdict(report))}</div>")
    if report.options.export:
        target = os.path.basename(report.options.export)
        p.append(f"<p>Evidence capture (the packets of the connections below, for "
                 f"Wireshark): <a href=\"{escape(target)}\">{escape(target)}</a></p>")
    p.append("<h2>Capture</h2><table>")
    p.extend(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
             for k, v in fmt.headline_rows(report))
    p.append("</table><h3>Capture quality</h3>")
    if report.notes:
        p.append(f"<p class=\"muted\">{fmt.NOTES_INTRO}</p><ul>")
        p.extend(f"<li><code>{escape(rule)}</code> ×{count} (connection {conns}): "
                 f"{escape(message)}</li>"
                 for rule, count, conns, message in fmt.note_lines(report))
        p.append("</ul>")
    else:
        p.append(f"<p>{fmt.NO_NOTES}</p>")
    if fmt.incomplete_text(report):
        p.append(f"<p>{escape(fmt.incomplete_text(report))}</p>")
    p.extend(f"<p class=\"muted\">warning: {escape(w)}</p>" for w in report.warnings)
    p.append("<h2>Violations</h2>")
    if not report.groups:
        p.append(f"<p>None. The {report.checks} checks (<code>wsanalyze rules</code>) "
                 f"found nothing.</p><p>Checks passed by rule family: "
                 f"{escape(fmt.checks_text(report))}.</p>")
    for g in report.groups:
        p.extend(_rule(report, g))
    if report.plots:
        p.append("<h2>Plots</h2><div class=\"plots\">")
        p.extend(_img(png, name.replace("_", " ")) for name, png in report.plots.items())
        p.append("</div>")
    p.extend(_connections(report))
    p.append(f"<hr><p class=\"muted\">wsanalyze {escape(__version__)}: {report.checks} "
             f"checks of RFC 6455 / RFC 7692 applied; "
             f"{report.summary['capture']['packets']} packets read.</p></body></html>\n")
    out.write("\n".join(p))


def _rule(report: Report, g: RuleGroup) -> list[str]:
    r = g.rule
    p = [f"<h3><span class=\"badge {r.severity}\">{r.severity}</span> "
         f"<code>{escape(r.id)}</code> ×{g.count} — {escape(r.reference)}</h3>",
         f"<blockquote>{escape(r.requirement)}</blockquote>",
         f"<p><em>Impact:</em> {escape(r.impact)}</p>"]
    for cg in g.connections:
        p.extend(_connection(report, cg))
    return p


def _connection(report: Report, cg: ConnectionGroup) -> list[str]:
    c = cg.conn
    p = [f"<h4>Connection {c['connection']}: {escape(c['client'])} → {escape(c['server'])} "
         f"<code>{escape(c.get('path') or '')}</code> ({cg.count} row(s))</h4>"]
    p.extend(_finding(report, f, c) for f in cg.findings)
    t0 = report.summary["capture"]["firstTs"]
    if cg.listed:
        p.append(f"<details><summary>{len(cg.listed)} more</summary><table><tr><th>packet"
                 "</th><th>time</th><th>message</th></tr>")
        p.extend(f"<tr><td>{row['packet']}</td><td>{escape(fmt.when(row['ts'], t0))}</td>"
                 f"<td>{escape(row['message'])}</td></tr>" for row in cg.listed)
        p.append("</table></details>")
    more = cg.count - len(cg.findings) - len(cg.listed)
    if more > 0:
        p.append(f"<p>… and {more} more rows (<code>wsanalyze violations</code>).</p>")
    png = report.timelines.get(c["connection"])
    if png is not None:
        p.append(_img(png, f"timeline of connection {c['connection']}"))
    return p


def _finding(report: Report, f: Finding, conn: dict) -> str:
    row = f.row
    t0 = report.summary["capture"]["firstTs"]
    packet = row["packet"] if row["packet"] is not None else "-"
    p = [f"<div class=\"finding\"><p><strong>Packet {packet}</strong>, "
         f"{escape(fmt.when(row['ts'], t0))}, {escape(fmt.direction_text(row, conn))}</p>",
         f"<p>{escape(row['message'])}</p>",
         "<p class=\"filters\">Wireshark: " + " · ".join(
             f"<code>{escape(flt)}</code>" for _, flt in f.filters) + "</p>"]
    if f.reaction:
        p.append(f"<p>Then: {escape(fmt.reaction_text(f.reaction))}</p>")
    if f.dump is not None:
        p.append(_pre(f.dump.text_lines()))
    elif f.dump_lines:
        p.append(_pre(f.dump_lines))
    elif f.dump_note:
        p.append(f"<p class=\"muted\">Hex dump: {escape(f.dump_note)}.</p>")
    if f.before or f.after:
        lines = fmt.context_lines(f, packet, t0)
        p.append("<details open><summary>Messages before and after</summary>"
                 + _pre(lines) + "</details>")
    p.append("</div>")
    return "".join(p)


def _connections(report: Report) -> list[str]:
    if not report.connections:
        return []
    p = ["<h2>Connections</h2><table><tr><th>id</th><th>client</th><th>server</th>"
         "<th>path</th><th>handshake</th><th>end</th><th>close</th><th>messages c2s/s2c"
         "</th><th>errors</th></tr>"]
    for c in report.connections[:500]:
        p.append(f"<tr><td>{c['connection']}</td><td>{escape(c['client'])}</td>"
                 f"<td>{escape(c['server'])}</td><td>{escape(c.get('path') or '')}</td>"
                 f"<td>{escape(str(c['handshake']))}</td><td>{escape(str(c['end']))}</td>"
                 f"<td>{c.get('close_code') or ''}</td>"
                 f"<td>{c['messages_c2s']}/{c['messages_s2c']}</td>"
                 f"<td>{c['violations']}</td></tr>")
    p.append("</table>")
    if len(report.connections) > 500:
        p.append(f"<p>… and {len(report.connections) - 500} more "
                 "(<code>wsanalyze connections</code>).</p>")
    return p
