"""``wsanalyze plot CAPTURE -o DIR``: write every plot of :mod:`wsanalyze.plots`.

Wire it into the command line with :func:`register` (adds the subparser, with
``func=run`` as its default) and call :func:`run` with the parsed arguments.
Exit codes follow the CLI: 0 written, 1 the capture could not be read or DIR
cannot be written, 2 bad usage (e.g. no such connection).
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
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file (may be .gz)")
    p.add_argument("--tls-keylog", action="append", default=[], metavar="FILE",
                   help="NSS key log (SSLKEYLOGFILE) to decrypt wss:// with; may be repeated")
    p.add_argument("-o", "--output", "--output-dir", dest="output_dir", metavar="DIR",
                   required=True, help="folder for the images (created if missing)")
    p.add_argument("--connection", type=int, metavar="N",
                   help="plot only connection N (the id in `wsanalyze connections`)")
    p.add_argument("--format", dest="image_format", choices=("png", "svg"), default="png",
                   help="image format (default png)")
    p.add_argument("--dpi", type=int, default=120, metavar="N",
                   help="resolution of PNG images (default 120)")
    p.set_defaults(func=run)
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


def run(args: argparse.Namespace) -> int:
    """Run ``wsanalyze plot`` for parsed ``args``; returns the exit code."""
    from wsanalyze import plots  # figures without pyplot: no display, no backend switch
    from wsanalyze.analysis import analyze
    from wsanalyze.sources.records import CaptureError

    problem = _writable_dir(args.output_dir)
    if problem:
        _error(problem)
        return 1
    try:
        result = analyze(args.capture, tls_keylog=args.tls_keylog or None)
    except CaptureError as exc:
        _error(str(exc))
        return 1
    except OSError as exc:
        _error(f"cannot read {args.capture}: {exc.strerror or exc}")
        return 1
    for warning in result.warnings:
        print(f"wsanalyze: warning: {warning}", file=sys.stderr)
    if args.connection is not None:
        try:
            result = plots.select_connection(result, args.connection)
        except ValueError as exc:
            _error(str(exc))
            return 2
    suffix = "" if args.connection is None else f"-connection{args.connection}"
    for name, function in plots.PLOTS.items():
        fig = function(result)
        path = os.path.join(args.output_dir, f"{name}{suffix}.{args.image_format}")
        try:
            fig.savefig(path, format=args.image_format, dpi=args.dpi)
        except OSError as exc:
            _error(f"cannot write {path}: {exc.strerror or exc}")
            return 1
        print(path)
    return 0
