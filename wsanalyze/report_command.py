"""``wsanalyze report CAPTURE -o report.html|report.md``: a bug-ticket report.

Wire it into the command line with :func:`register` and call :func:`run` with the
parsed arguments.  Exit codes: 0 written, 1 the capture cannot be read or the
report cannot be written (or ``--fail-on`` found violations), 2 bad usage; 130
and 141 as every command (:mod:`wsanalyze.cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from wsanalyze import cli_args, failon

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
(REPORT-images/).  The format follows the extension of -o unless --format says;
-o - writes to standard output (--format needed; Markdown then leaves the plots
out, as they are images beside the file).

The filters choose the violations shown (--connection, --rule with * wildcards,
--severity, --since/--until, --direction, --grep, --where over the violation
columns); --fail-on judges the rows shown.
"""

EPILOG = """\
examples:
  wsanalyze report capture.pcapng -o report.html
  wsanalyze report capture.pcapng -o report.md --severity error,warning
  wsanalyze report -r capture.pcapng -o report.html --rule 'frame.*' --connection 3 --export
  wsanalyze report capture.pcapng -o - -F html > report.html
  wsanalyze report capture.pcapng -o report.html --fail-on error   # CI gate

Exit status: 0 written; 1 the capture cannot be read, the report cannot be written,
or --fail-on found violations of that severity or worse; 2 bad usage; 130
interrupted; 141 output pipe closed.
"""

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    from wsanalyze.filters import add_filter_arguments

    p = subparsers.add_parser("report", help="write a bug-ticket report (HTML or Markdown)",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_capture(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="report.html or report.md (- for standard output, with --format)")
    p.add_argument("-F", "--format", choices=("html", "md"),
                   help="override the format the extension of -o implies")
    p.add_argument("--export", nargs="?", const="", metavar="FILE",
                   help="also write the packets of the connections shown to FILE (default: "
                        "the report's name with .pcapng) and link it from the report")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="leave the plots out (faster on big captures)")
    p.add_argument("-u", "--utc", action="store_true",
                   help="times of day and dates in --since/--until are UTC (default: local)")
    add_filter_arguments(p)
    failon.add_argument(p)  # on the rows the report shows (after --rule, --severity, ...)
    cli_args.add_common(p)
    p.set_defaults(func=run, parser=p)
    return p


def _error(message: str) -> None:
    print(f"wsanalyze: error: {message}", file=sys.stderr)


def _format(args: argparse.Namespace) -> str | None:
    if args.format:
        return str(args.format)
    return FORMATS.get(os.path.splitext(args.output)[1].lower())


def _record_filter(p: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """The shared filters, on the violation rows the report shows."""
    import fnmatch

    from wsanalyze.filters import RecordFilter
    from wsanalyze.output.schema import column_names
    from wsanalyze.rules import RULES

    record_filter = RecordFilter.from_args(args)
    problem = record_filter.check_table("violation", column_names("violation"))
    if problem:
        p.error(problem.replace("the violations table", "a report (it shows violations)"))
    for rule in record_filter.rules or ():
        if not any(fnmatch.fnmatchcase(r, rule) for r in RULES):
            p.error(f"unknown rule {rule!r} (`wsanalyze rules` lists them)")
    return record_filter if record_filter.active() else None


def run(args: argparse.Namespace) -> int:
    from wsanalyze.output.streams import close_output, open_output
    from wsanalyze.report.model import ReportOptions, build
    from wsanalyze.sources.records import CaptureError

    parser: argparse.ArgumentParser = args.parser
    cli_args.resolve_capture(parser, args)
    to_stdout = args.output == "-"
    kind = _format(args)
    if kind is None:
        parser.error(f"cannot tell the format of {args.output}: name it .html or .md, or "
                     "give --format html|md")
    record_filter = _record_filter(parser, args)
    export = None
    if args.export is not None:
        if not args.export and to_stdout:
            parser.error("--export needs a FILE when the report goes to standard output")
        export = args.export or os.path.splitext(args.output)[0] + ".pcapng"
    plots = args.plots and not (to_stdout and kind == "md")
    out = open_output(None if to_stdout else args.output)
    try:
        try:
            report = build(args.capture, ReportOptions(export=export, plots=plots,
                                                       record_filter=record_filter,
                                                       analysis=_analysis(args)))
        except CaptureError as exc:
            _error(str(exc))
            if not to_stdout:
                out.close()
                os.unlink(args.output)
            return 1
        if export is not None:
            try:
                _export(args.capture, report, export)
            except OSError as exc:
                _error(f"cannot write {getattr(exc, 'filename', None) or export}: "
                       f"{exc.strerror or exc}")
                return 1
        try:
            _write(report, out, kind, None if to_stdout else args.output)
        except BrokenPipeError:
            raise
        except OSError as exc:  # the images beside a Markdown report
            _error(f"cannot write {getattr(exc, 'filename', None) or args.output}: "
                   f"{exc.strerror or exc}")
            return 1
    finally:
        close_output(out)
    if not args.quiet:
        for warning in report.warnings:
            print(f"wsanalyze: warning: {warning}", file=sys.stderr)
        if not to_stdout or export:
            print(f"wsanalyze: wrote {args.output if not to_stdout else 'the report'}"
                  + (f" and {export}" if export else ""), file=sys.stderr)
    return failon.status(args.fail_on, report.severities)


def _analysis(args: argparse.Namespace) -> dict[str, Any]:
    """The analysis options of -j and the resource limits."""
    options = cli_args.options(args, frozenset())
    return {"limits": options.limits, "jobs": args.jobs,
            "max_buffered": options.max_buffered,
            "max_connections": options.max_connections}


def _write(report: Any, out: Any, kind: str, path: str | None) -> None:
    if kind == "html":
        from wsanalyze.report import html

        html.write(report, out)
    else:
        from wsanalyze.report import markdown

        images = markdown.write_images(report, path) \
            if path is not None and (report.plots or report.timelines) else {}
        markdown.write(report, out, images)


def _export(capture: str, report: Any, path: str) -> None:
    """The packets of the connections the report shows (all when it shows none)."""
    from wsanalyze.export import Flow, export

    shown = {cg.conn["connection"] for g in report.groups for cg in g.connections}
    rows = [c for c in report.connections if not shown or c["connection"] in shown]
    with open(path, "wb") as f:
        export(capture, [Flow.of(r) for r in rows], f,
               comment=f"wsanalyze report evidence from {capture}")
