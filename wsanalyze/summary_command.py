"""``wsanalyze summary CAPTURE [-F text|json|md] [-o FILE] [filters] [--fail-on LEVEL]``.

Wire it into the command line with :func:`register` and call :func:`run` with the
parsed arguments.  Exit codes: 0 written, 1 the capture could not be read or the
output not written (or ``--fail-on`` found violations), 2 bad usage; 130 and 141
as every command (:mod:`wsanalyze.cli`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import IO, Any

from wsanalyze import cli_args, failon

FORMATS = ("text", "json", "md")
EXTENSIONS = {".json": "json", ".md": "md", ".markdown": "md", ".txt": "text"}
"""The format picked from ``-o FILE``'s extension when ``--format`` is not given."""
TABLES = frozenset(("connection", "violation"))
"""The tables whose filters the summary applies (connections and violations)."""

DESCRIPTION = """\
The capture at a glance: totals (connections, messages and bytes by type and
direction, compression, handshake and ping→pong latency percentiles, violations by
rule), the top connections by messages, bytes and violations, aggregates per server
(host and path), then one block per connection (always below 20 connections, else
with --connections).  --format json gives the same as a document for scripts
(docs/summary-json.md); --format md pastes into GitHub, GitLab or Jira.

The filters choose the connections summarised (--connection, --since/--until,
--grep, --where over the connection columns) and the violations counted (--rule,
--severity, --direction, ...).
"""

EPILOG = """\
examples:
  wsanalyze summary capture.pcapng
  wsanalyze summary capture.pcapng -F json -o summary.json   # or just -o summary.json
  wsanalyze summary -r capture.pcapng --connection 2,3 -F md
  wsanalyze summary capture.pcapng --fail-on error   # exit 1 when the RFC is broken

Exit status: 0 ok; 1 the capture could not be read or the output not written, or
--fail-on found violations of that severity or worse; 2 bad usage; 130
interrupted; 141 output pipe closed.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    from wsanalyze.filters import add_filter_arguments

    p = subparsers.add_parser(
        "summary", help="overview of connections, messages, compression, latency, violations",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_capture(p)
    p.add_argument("-F", "--format", choices=FORMATS, default=None,
                   help="text (default), json (docs/summary-json.md) or md (Markdown); "
                        "default: from -o FILE's extension (.json .md .txt), else text")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of standard output")
    p.add_argument("--connections", action=argparse.BooleanOptionalAction, default=None,
                   help="one block per connection (default: only below 20 connections)")
    p.add_argument("--latency", action=argparse.BooleanOptionalAction, default=None,
                   help="Ping → Pong round trips (avgLatencyMs, p50/p95/p99); they need "
                        "every message decoded, about a third more CPU (default: on for "
                        "json and md, off for text)")
    p.add_argument("-u", "--utc", action="store_true",
                   help="times of day and dates in --since/--until are UTC (default: local)")
    add_filter_arguments(p)
    failon.add_argument(p)
    cli_args.add_common(p)
    p.set_defaults(func=run, parser=p)
    return p


def width() -> int | None:
    """The width to fit text lines in when standard output is a terminal: COLUMNS
    when set, else the terminal's.  None (no limit) for a pipe or a file, so that
    scripts and grep see whole lines."""
    if not sys.stdout.isatty():
        return None
    if os.environ.get("COLUMNS", "").isdigit():
        return max(int(os.environ["COLUMNS"]), 20)
    return max(shutil.get_terminal_size((100, 24)).columns, 20)


def _check_filters(p: argparse.ArgumentParser, record_filter: Any) -> None:
    """Filters that look only at messages or frames cannot choose what a summary
    counts (its counts come from the decoder, per connection): usage error."""
    from wsanalyze.filters import _OPTION_NAMES, APPLIES

    problem = record_filter.check_stream()
    if problem:
        p.error(problem)
    for key in record_filter.active():
        if not APPLIES[key] & TABLES:
            p.error(f"{_OPTION_NAMES[key]} does not apply to the summary (it filters "
                    "connections and violations)")


def run(args: argparse.Namespace) -> int:
    from wsanalyze.filters import RecordFilter
    from wsanalyze.output.streams import close_output, open_output
    from wsanalyze.output.summary import Summary
    from wsanalyze.progress import Progress, file_size
    from wsanalyze.sequencer import SUMMARY
    from wsanalyze.table_command import finish

    parser: argparse.ArgumentParser = args.parser
    cli_args.resolve_capture(parser, args)
    cli_args.resolve_format(parser, args, EXTENSIONS, default="text")
    record_filter = RecordFilter.from_args(args)
    _check_filters(parser, record_filter)
    latency = args.latency if args.latency is not None else args.format != "text"
    tables = Summary.LATENCY_TABLES if latency else Summary.TABLES
    run_ = cli_args.open_run(args, tables)
    if run_ is None:
        return 1
    record_filter.capture_start = lambda: run_.first_ts
    keep = record_filter.keep
    filtered = bool(record_filter.active())
    progress = Progress(not args.quiet, file_size(args.capture),
                        lambda: run_.reader.bytes_read if run_.jobs == 1 else None)
    summary = Summary(latency=latency)
    try:
        for record in run_:
            table, row = record
            if not filtered:
                summary.add(record)
            elif table == SUMMARY:
                # The connection's row comes after its violations and messages.
                if keep("connection", row.row):
                    summary.add(record)
                else:
                    summary.discard(row.row["connection"])
            elif table != "violation" or keep(table, row):
                summary.add(record)
            progress.tick(run_.packets)
    except BaseException:
        summary.close()
        raise
    finally:
        progress.done()
    if not run_.packets and run_.stopped:
        summary.close()
        return finish(run_)
    out: IO[str] = open_output(args.output)
    try:
        summary.write(out, path=run_.path, packets=run_.packets, first_ts=run_.first_ts,
                      last_ts=run_.last_ts, warnings=run_.warnings, fmt=args.format,
                      width=width() if out is sys.stdout else None,
                      connections=args.connections)
    finally:
        close_output(out)
    return failon.status(args.fail_on, summary.severities)
