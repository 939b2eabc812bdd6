"""``wsanalyze plot CAPTURE -o DIR``: write every plot of :mod:`wsanalyze.plots`.

Wire it into the command line with :func:`register` (adds the subparser, with
``func=run`` as its default) and call :func:`run` with the parsed arguments.
Exit codes follow the CLI: 0 written, 1 the capture could not be read or DIR
cannot be written, 2 bad usage (e.g. no such connection).  The record filters
(``--connection``, ``--type``, ``--since``...) select what is plotted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DESCRIPTION = """\
Analyse a capture and write one image per plot into DIR (created if missing):
timeline, message sizes, throughput, compression ratio vs size, latency CDFs and
violations over time.  Time axes are seconds from the capture start.  Prints the
paths written, one per line.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``plot`` subcommand to ``subparsers`` (the object
    ``ArgumentParser.add_subparsers`` returns) and return its parser."""
    p = subparsers.add_parser("plot", help="write plots (PNG or SVG) of a capture to a folder",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    from wsanalyze import cli_args
    from wsanalyze.filters import add_filter_arguments

    cli_args.add_capture(p)
    cli_args.add_tls_keylog(p)
    p.add_argument("-o", "--output", "--output-dir", dest="output_dir", metavar="DIR",
                   required=True, help="folder for the images (created if missing)")
    p.add_argument("-F", "--format", dest="image_format", choices=("png", "svg"),
                   default="png", help="image format (default png)")
    p.add_argument("--dpi", type=int, default=120, metavar="N",
                   help="resolution of PNG images (default 120)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line on standard error")
    p.add_argument("-u", "--utc", action="store_true",
                   help="--since/--until times of day in UTC (default: local time)")
    add_filter_arguments(p)
    p.set_defaults(func=run, parser=p)
    return p


def _error(message: str) -> None:
    print(f"wsanalyze: error: {message}", file=sys.stderr)


def _writable_dir(path: str) -> str | None:
    """Create ``path`` if needed; an error message when it cannot hold files."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        return f"{path} exists and is not a folder"
    except OSError as exc:
        return f"cannot create output folder {path}: {exc.strerror or exc}"
    if not os.path.isdir(path):
        return f"{path} is not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"output folder {path} is not writable"
    return None


def _filtered(result: Any, record_filter: Any) -> Any:
    """``result`` with only the rows ``record_filter`` keeps (row by row, as the
    streaming commands decide)."""
    import pandas as pd

    def plain(row: dict[str, Any]) -> dict[str, Any]:
        # DataFrames may hold timestamps as datetimes; the filter compares epochs.
        return {k: (v.timestamp() if isinstance(v, pd.Timestamp) else v)
                for k, v in row.items()}

    for attr, table in (("connections", "connection"), ("messages", "message"),
                        ("frames", "frame"), ("violations", "violation")):
        df = getattr(result, attr)
        if not df.empty:
            mask = [record_filter.keep(table, plain(r)) for r in df.to_dict("records")]
            setattr(result, attr, df[mask])
    return result


def run(args: argparse.Namespace) -> int:
    """Run ``wsanalyze plot`` for parsed ``args``; returns the exit code."""
    from wsanalyze import (
        cli_args,
        plots,  # figures without pyplot: no display, no backend switch
    )
    from wsanalyze.analysis import analyze
    from wsanalyze.filters import RecordFilter
    from wsanalyze.progress import Progress
    from wsanalyze.sources.records import CaptureError

    cli_args.resolve_capture(args.parser, args)
    record_filter = RecordFilter.from_args(args)
    problem = record_filter.check_stream()
    if problem:
        args.parser.error(problem)
    problem = _writable_dir(args.output_dir)
    if problem:
        _error(problem)
        return 1
    progress = Progress(not args.quiet)
    progress.message(f"reading {args.capture}…")
    try:
        result = analyze(args.capture, tls_keylog=args.tls_keylog or None)
    except CaptureError as exc:
        progress.done()
        _error(str(exc))
        return 1
    except OSError as exc:
        progress.done()
        _error(f"cannot read {args.capture}: {exc.strerror or exc}")
        return 1
    progress.done()
    for warning in result.warnings:
        print(f"wsanalyze: warning: {warning}", file=sys.stderr)
    single = record_filter.connections
    if single is not None and len(single) == 1:
        try:
            result = result.select(next(iter(single)))
        except ValueError as exc:
            _error(str(exc))
            return 2
    if record_filter.active():
        record_filter.capture_start = lambda: result.first_ts
        result = _filtered(result, record_filter)
    suffix = "" if single is None or len(single) != 1 else f"-connection{next(iter(single))}"
    for i, (name, function) in enumerate(plots.PLOTS.items(), 1):
        progress.message(f"plot {i}/{len(plots.PLOTS)}: {name}…")
        fig = function(result)
        path = os.path.join(args.output_dir, f"{name}{suffix}.{args.image_format}")
        try:
            fig.savefig(path, format=args.image_format, dpi=args.dpi)
        except OSError as exc:
            progress.done()
            _error(f"cannot write {path}: {exc.strerror or exc}")
            return 1
        progress.done()
        print(path, flush=True)
    return 0
