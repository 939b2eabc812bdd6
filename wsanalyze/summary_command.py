"""``wsanalyze summary CAPTURE [--format text|json|md] [-o FILE] [--fail-on LEVEL]``.

Wire it into the command line with :func:`register` and call :func:`run` with the
parsed arguments.  Exit codes: 0 written, 1 the capture could not be read (or
``--fail-on`` found violations), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import IO, Any

from wsanalyze import failon

DESCRIPTION = """\
The capture at a glance: totals (connections, messages and bytes by type and
direction, compression, handshake and ping→pong latency percentiles, violations by
rule), the top connections by messages, bytes and violations, aggregates per server
(host and path), then one block per connection (always below 20 connections, else
with --connections).  --format json gives the same as a document for scripts
(docs/summary-json.md); --format md pastes into GitHub, GitLab or Jira.
"""

EPILOG = """\
examples:
  wsanalyze summary capture.pcapng
  wsanalyze summary capture.pcapng --format json -o summary.json
  wsanalyze summary capture.pcapng --fail-on error   # exit 1 when the RFC is broken

Exit status: 0 ok; 1 the capture could not be read, or --fail-on found violations of
that severity or worse; 2 bad usage.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    from wsanalyze.cli import _common

    p = subparsers.add_parser(
        "summary", help="overview of connections, messages, compression, latency, violations",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file (may be .gz)")
    p.add_argument("--format", "-f", choices=("text", "json", "md"), default="text",
                   help="text (default), json (docs/summary-json.md) or md (Markdown)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of standard output")
    p.add_argument("--connections", action=argparse.BooleanOptionalAction, default=None,
                   help="one block per connection (default: only below 20 connections)")
    p.add_argument("--latency", action=argparse.BooleanOptionalAction, default=None,
                   help="Ping → Pong round trips (avgLatencyMs, p50/p95/p99); they need "
                        "every message decoded, about a third more CPU (default: on for "
                        "json and md, off for text)")
    failon.add_argument(p)
    _common(p)
    p.set_defaults(func=run)
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


def run(args: argparse.Namespace) -> int:
    from wsanalyze.analysis import CaptureRun
    from wsanalyze.cli import _nothing_read, _options, _Progress
    from wsanalyze.output.summary import Summary
    from wsanalyze.parallel import WorkerError
    from wsanalyze.sources.records import CaptureError

    try:
        latency = args.latency if args.latency is not None else args.format != "text"
        tables = Summary.LATENCY_TABLES if latency else Summary.TABLES
        run_ = CaptureRun(args.capture, _options(args, tables), args.jobs)
    except CaptureError as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    out: IO[str] = sys.stdout
    if args.output:
        try:
            out = open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            print(f"wsanalyze: error: cannot write {args.output}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
    progress = _Progress(not args.quiet)
    summary = Summary(latency=latency)
    try:
        for record in run_:
            summary.add(record)
            progress.tick(run_.packets)
        progress.done()
        if _nothing_read(run_, progress):
            summary.close()
            return 1
        summary.write(out, path=run_.path, packets=run_.packets, first_ts=run_.first_ts,
                      last_ts=run_.last_ts, warnings=run_.warnings, fmt=args.format,
                      width=width() if out is sys.stdout else None,
                      connections=args.connections)
    except WorkerError as exc:
        progress.done()
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if out is not sys.stdout:
            out.close()
    return failon.status(args.fail_on, summary.severities)
