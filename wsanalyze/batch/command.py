"""``wsanalyze batch CAPTURE... -o DATASET/``: analyse captures on Dask.

Wire it into the command line with :func:`register` and call :func:`run`.
Exit codes: 0 every task done, 1 some task failed (the manifest says why), no
Dask, or nothing could be planned; 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wsanalyze.cli_args import add_tls_keylog, count

DESCRIPTION = """\
Analyse many or huge captures as Dask tasks of (capture, flow-hash shard) and
write a Parquet dataset: DATASET/connections/, messages/, frames/, violations/
(columns of OUTPUTS.md plus `capture`), and DATASET/_manifest.json (inputs,
options, per-task status and row counts).  Without --scheduler a local cluster
of --workers processes runs the tasks.  Running the same command again resumes:
finished tasks are skipped.  Needs: pip install 'wsanalyze[cluster]'.
"""

_TABLES = {"connections": "connection", "messages": "message", "frames": "frame",
           "violations": "violation"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser("batch", help="analyse many captures on Dask into a Parquet "
                              "dataset", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap/pcapng files (or fsspec URLs the workers can read)")
    p.add_argument("-o", "--output", dest="dataset", metavar="DATASET", required=True,
                   help="dataset folder (created; workers must be able to write it)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=count, metavar="N",
                   help="local worker processes when no --scheduler (default: cores)")
    p.add_argument("--shards", type=count, metavar="N",
                   help="flow-hash shards per capture (default: from sizes and workers)")
    p.add_argument("--tables", nargs="+", choices=tuple(_TABLES), default=list(_TABLES),
                   metavar="TABLE", help="tables to write (default: all four)")
    p.add_argument("--payloads", choices=("full", "preview", "none"), default="full",
                   help="message payloads kept: all, the first --preview-bytes, none")
    p.add_argument("--preview-bytes", type=int, default=64, metavar="N")
    p.add_argument("--continuous", action="store_true",
                   help="the captures are one capture cut by rotation: connections "
                        "crossing files keep their state")
    p.add_argument("--order", choices=("given", "time"), default="given",
                   help="with --continuous: files in the order given or by first packet")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="Dask retries of a failed task (default 1)")
    add_tls_keylog(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``wsanalyze batch`` for parsed ``args``; returns the exit code."""
    from wsanalyze.batch.run import MissingDask, require_dask

    try:
        require_dask()
    except MissingDask as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    from wsanalyze.batch.plan import PlanError
    from wsanalyze.batch.run import batch, summary_line

    try:
        dataset = batch(args.captures, args.dataset, scheduler=args.scheduler,
                        workers=args.workers, tables=tuple(_TABLES[t] for t in args.tables),
                        payloads=args.payloads, preview_bytes=args.preview_bytes,
                        shards=args.shards, continuous=args.continuous, order=args.order,
                        retries=args.retries, progress=sys.stderr.isatty(),
                        tls_keylog=args.tls_keylog)
    except PlanError as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"wsanalyze: error: {args.dataset}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    failed = dataset.failed
    if failed:
        first = failed[0]
        print(f"wsanalyze: error: {len(failed)} of {len(dataset.tasks)} tasks failed "
              f"(first: {first['name']}: {first.get('error')}); {summary_line(dataset)}; "
              f"see {dataset.path}/_manifest.json", file=sys.stderr)
        return 1
    print(f"wsanalyze: batch: {summary_line(dataset)}", file=sys.stderr)
    return 0
