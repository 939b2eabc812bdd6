"""The report as Markdown that pastes into GitHub, GitLab or Jira issues: long parts
in ``<details>``, images as PNG files in a folder beside the ``.md`` file."""

from __future__ import annotations

import os
from typing import IO

from wsanalyze import __version__
from wsanalyze.report import fmt
from wsanalyze.report.model import ConnectionGroup, Finding, Report, RuleGroup


def image_dir(path: str) -> str:
    """``report.md`` → ``report-images`` (beside it)."""
    return os.path.splitext(path)[0] + "-images"


def write_images(report: Report, path: str) -> dict[str, str]:
    """Write the PNGs; returns name → path relative to the Markdown file."""
    folder = image_dir(path)
    os.makedirs(folder, exist_ok=True)
    rel = os.path.basename(folder)
    out = {}
    images = {**report.plots,
              **{f"timeline-connection{c}": png for c, png in report.timelines.items()}}
    for name, png in images.items():
        with open(os.path.join(folder, f"{name}.png"), "wb") as f:
            f.write(png)
        out[name] = f"{rel}/{name}.png"
    return out


def _fence(lines: list[str]) -> str:
    body = "\n".join(lines)
    mark = "~~~~" if "```" in body else "```"
    return f"{mark}text\n{body}\n{mark}\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write(report: Report, out: IO[str], images: dict[str, str]) -> None:
    doc = report.summary
    out.write(f"# WebSocket protocol report: `{os.path.basename(report.path)}`\n\n")
    out.write(f"> **{fmt.status(report)}** — {fmt.verdict(report)}\n\n")
    if report.options.export:
        out.write(f"Evidence capture (the packets of the connections below, for Wireshark): "
                  f"[{os.path.basename(report.options.export)}]"
                  f"({os.path.basename(report.options.export)})\n\n")
    out.write("## Capture\n\n| | |\n|---|---|\n")
    for label, value in fmt.headline_rows(report):
        out.write(f"| {label} | {_cell(value)} |\n")
    out.write("\n### Capture quality\n\n")
    if report.notes:
        out.write(f"{fmt.NOTES_INTRO}\n\n")
        for rule, count, conns, message in fmt.note_lines(report):
            out.write(f"- `{rule}` ×{count} (connection {conns}): {_cell(message)}\n")
        out.write("\n")
    else:
        out.write(f"{fmt.NO_NOTES}\n\n")
    if fmt.incomplete_text(report):
        out.write(f"{fmt.incomplete_text(report)}\n\n")
    for w in report.warnings:
        out.write(f"> warning: {_cell(w)}\n\n")
    out.write("## Violations\n\n")
    if not report.groups:
        out.write(f"None. The {report.checks} checks (`wsanalyze rules`) found nothing.\n\n"
                  f"Checks passed by rule family: {fmt.checks_text(report)}.\n\n")
    for g in report.groups:
        _rule(out, report, g, images)
    if images:
        out.write("## Plots\n\n<details><summary>Overview plots of the capture</summary>\n\n")
        for name in report.plots:
            out.write(f"![{name}]({images[name]})\n\n")
        out.write("</details>\n\n")
    _connections(out, report)
    out.write(f"---\n*wsanalyze {__version__}: {report.checks} checks of RFC 6455 / RFC 7692 "
              f"applied; {doc['capture']['packets']} packets read.*\n")


def _rule(out: IO[str], report: Report, g: RuleGroup, images: dict[str, str]) -> None:
    r = g.rule
    out.write(f"### {r.severity.upper()} `{r.id}` ×{g.count} — {r.reference}\n\n")
    out.write(f"> {r.requirement}\n\n*Impact:* {r.impact}\n\n")
    for cg in g.connections:
        _connection(out, report, cg, images)


def _connection(out: IO[str], report: Report, cg: ConnectionGroup,
                images: dict[str, str]) -> None:
    c = cg.conn
    out.write(f"#### Connection {c['connection']}: {c['client']} → {c['server']} "
              f"`{c.get('path') or ''}` ({cg.count} row(s))\n\n")
    for f in cg.findings:
        _finding(out, report, f, c)
    if cg.listed:
        out.write(f"<details><summary>{len(cg.listed)} more</summary>\n\n"
                  "| packet | time | message |\n|---|---|---|\n")
        t0 = report.summary["capture"]["firstTs"]
        for row in cg.listed:
            out.write(f"| {row['packet']} | {fmt.when(row['ts'], t0)} | "
                      f"{_cell(row['message'])} |\n")
        out.write("\n</details>\n\n")
    more = cg.count - len(cg.findings) - len(cg.listed)
    if more > 0:
        out.write(f"… and {more} more rows (`wsanalyze violations`).\n\n")
    name = f"timeline-connection{c['connection']}"
    if name in images:
        out.write(f"![timeline of connection {c['connection']}]({images[name]})\n\n")


def _finding(out: IO[str], report: Report, f: Finding, conn: dict) -> None:
    row = f.row
    t0 = report.summary["capture"]["firstTs"]
    out.write(f"**Packet {row['packet'] if row['packet'] is not None else '-'}**, "
              f"{fmt.when(row['ts'], t0)}, {fmt.direction_text(row, conn)}\n\n")
    out.write(f"{row['message']}\n\n")
    filters = " · ".join(f"`{flt}`" for _, flt in f.filters)
    out.write(f"- Wireshark: {filters}\n")
    if f.reaction:
        out.write(f"- Then: {fmt.reaction_text(f.reaction)}\n")
    out.write("\n")
    if f.dump is not None:
        out.write(_fence(f.dump.text_lines()) + "\n")
    elif f.dump_lines:
        out.write(_fence(f.dump_lines) + "\n")
    elif f.dump_note:
        out.write(f"*Hex dump: {f.dump_note}.*\n\n")
    if f.before or f.after:
        lines = fmt.context_lines(f, row["packet"], t0)
        out.write("<details><summary>Messages before and after</summary>\n\n"
                  + _fence(lines) + "\n</details>\n\n")


def _connections(out: IO[str], report: Report) -> None:
    if not report.connections:
        return
    out.write(f"<details><summary>{len(report.connections)} WebSocket connection(s)"
              "</summary>\n\n| id | client | server | path | handshake | end | close | "
              "messages c2s/s2c | errors |\n|---|---|---|---|---|---|---|---|---|\n")
    for c in report.connections[:500]:
        out.write(f"| {c['connection']} | {c['client']} | {c['server']} | "
                  f"{_cell(c.get('path') or '')} | {c['handshake']} | {c['end']} | "
                  f"{c.get('close_code') or ''} | {c['messages_c2s']}/{c['messages_s2c']} | "
                  f"{c['violations']} |\n")
    out.write("\n</details>\n\n")
