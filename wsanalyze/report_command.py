"""``wsanalyze report CAPTURE -o report.html|report.md``: a bug-ticket report.

Wire it into the command line with :func:`register` and call :func:`run` with the
parsed arguments.  Exit codes: 0 written, 1 the capture cannot be read or the
report cannot be written (or ``--fail-on`` found violations), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from wsanalyze import failon

DESCRIPTION = """\
Write a report that makes the case on its own: the capture's summary (packets,
time span, connections, messages and bytes by type and direction, compression,
handshake and ping→pong latency), capture-quality notes apart from protocol
violations, then each violation grouped by rule and connection with the RFC's
requirement, the packet, Wireshark display filters that jump there, an annotated
hex dump of the offending frame, the messages around it, what the other peer did
next, and the timeline of the connection.  A clean capture gives a short report
that says which checks passed.

HTML is one self-contained file (inline CSS and images, no script, no network);
Markdown pastes into GitHub, GitLab or Jira, its images in a folder beside it
(REPORT-images/).  The format follows the extension of -o unless --format says.
"""

EPILOG = """\
examples:
  wsanalyze report capture.pcapng -o report.html
  wsanalyze report capture.pcapng -o report.md --severity warning
  wsanalyze report capture.pcapng -o report.html --rule frame.client-unmasked --export
  wsanalyze report capture.pcapng -o report.html --fail-on error   # CI gate

Exit status: 0 written; 1 the capture cannot be read, the report cannot be written,
or --fail-on found violations of that severity or worse; 2 bad usage.
"""

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="write a bug-ticket report (HTML or Markdown)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file (may be .gz)")
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="report.html or report.md")
    p.add_argument("--format", "-f", choices=("html", "md"),
                   help="override the format the extension of -o implies")
    p.add_argument("--connection", type=int, action="append", metavar="N",
                   help="only violations of connection N (repeat for several)")
    p.add_argument("--rule", action="append", metavar="ID",
                   help="only violations of rule ID (repeat for several)")
    p.add_argument("--severity", choices=failon.LEVELS, metavar="LEVEL",
                   help="only violations of LEVEL (error, warning, info) or worse")
    p.add_argument("--export", nargs="?", const="", metavar="FILE",
                   help="also write the packets of the connections shown to FILE (default: "
                        "the report's name with .pcapng) and link it from the report")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="leave the plots out (faster on big captures)")
    failon.add_argument(p)  # on the rows the report shows (after --rule, --severity, ...)
    p.add_argument("-q", "--quiet", action="store_true", help="no line on standard error")
    p.set_defaults(func=run)
    return p


def _error(message: str) -> None:
    print(f"wsanalyze: error: {message}", file=sys.stderr)


def _format(args: argparse.Namespace) -> str | None:
    if args.format:
        return str(args.format)
    return FORMATS.get(os.path.splitext(args.output)[1].lower())


def run(args: argparse.Namespace) -> int:
    from wsanalyze.report.model import ReportOptions, build
    from wsanalyze.rules import RULES
    from wsanalyze.sources.records import CaptureError

    kind = _format(args)
    if kind is None:
        _error(f"cannot tell the format of {args.output}: name it .html or .md, or give "
               "--format html|md")
        return 2
    for rule in args.rule or []:
        if rule not in RULES:
            _error(f"unknown rule {rule!r} (`wsanalyze rules` lists them)")
            return 2
    export = None
    if args.export is not None:
        export = args.export or os.path.splitext(args.output)[0] + ".pcapng"
    try:
        out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        _error(f"cannot write {args.output}: {exc.strerror or exc}")
        return 1
    with out:
        try:
            report = build(args.capture, ReportOptions(args.connection, args.rule,
                                                       args.severity, export, args.plots))
        except CaptureError as exc:
            _error(str(exc))
            out.close()
            os.unlink(args.output)
            return 1
        try:
            if export is not None:
                _export(args.capture, report, export)
            _write(report, out, kind, args.output)
        except OSError as exc:
            _error(f"cannot write {getattr(exc, 'filename', None) or args.output}: "
                   f"{exc.strerror or exc}")
            return 1
    if not args.quiet:
        for warning in report.warnings:
            print(f"wsanalyze: warning: {warning}", file=sys.stderr)
        print(f"wsanalyze: wrote {args.output}" + (f" and {export}" if export else ""),
              file=sys.stderr)
    return failon.status(args.fail_on, report.severities)


def _write(report: Any, out: Any, kind: str, path: str) -> None:
    if kind == "html":
        from wsanalyze.report import html

        html.write(report, out)
    else:
        from wsanalyze.report import markdown

        images = markdown.write_images(report, path) if (report.plots or report.timelines) \
            else {}
        markdown.write(report, out, images)


def _export(capture: str, report: Any, path: str) -> None:
    """The packets of the connections the report shows (all when it shows none)."""
    from wsanalyze.export import Flow, export

    shown = {cg.conn["connection"] for g in report.groups for cg in g.connections}
    rows = [c for c in report.connections if not shown or c["connection"] in shown]
    with open(path, "wb") as f:
        export(capture, [Flow.of(r) for r in rows], f,
               comment=f"wsanalyze report evidence from {capture}")
