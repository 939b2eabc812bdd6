"""The table commands: ``wsanalyze connections|messages|frames|violations CAPTURE``.

Each streams one table of the capture through the record filters into a writer
(human table, JSON Lines, JSON, CSV or Parquet).  Exit codes: 0 written, 1 the
capture could not be read or the output not written (or, for ``violations``,
``--fail-on LEVEL`` found rows of LEVEL or worse among those written), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from wsanalyze import cli_args, failon
from wsanalyze.filters import RecordFilter, add_filter_arguments

TABLE_COMMANDS = {
    "connections": ("connection", "one row per TCP connection that carried WebSocket"),
    "messages": ("message", "every data message and control frame, decoded, in order"),
    "frames": ("frame", "every WebSocket frame header"),
    "violations": ("violation", "protocol violations and capture notes, with RFC sections"),
}
FORMATS = ("table", "jsonl", "json", "csv", "parquet")

EPILOG = """\
examples:
  wsanalyze {name} capture.pcap                      # human table fitting the terminal
  wsanalyze {name} capture.pcap -o rows.jsonl        # format from the extension
  wsanalyze {name} -r capture.pcap -F csv --connection 0,2
  wsanalyze messages capture.pcap --type text --grep '"error"' --since 2.5 --wide
  wsanalyze violations capture.pcap --severity error --rule 'deflate.*'

Columns are described by `wsanalyze columns {table}` (docs/columns.md).
"""


def register(subparsers: Any) -> dict[str, argparse.ArgumentParser]:
    """Add the four table commands; returns their parsers by command name."""
    parsers = {}
    for name, (table, helptext) in TABLE_COMMANDS.items():
        p = subparsers.add_parser(
            name, help=helptext, description=f"Write the {name} table: {helptext}.",
            epilog=EPILOG.format(name=name, table=name),
            formatter_class=argparse.RawDescriptionHelpFormatter)
        cli_args.add_capture(p)
        cli_args.add_output(p, FORMATS)
        p.add_argument("--max-payload", type=cli_args.positive_int, metavar="N",
                       help="keep only the first N bytes of each payload in the output "
                            "(truncated is then true); default: whole payloads")
        cli_args.add_time_display(p)
        add_filter_arguments(p)
        if table == "violation":
            failon.add_argument(p)  # on the rows written (after the filters)
        cli_args.add_common(p)
        p.set_defaults(func=run, parser=p, table=table)
        parsers[name] = p
    return parsers


def make_writer(args: argparse.Namespace, table: str, stream: Any) -> Any:
    """The writer for ``args.format`` (``--wide``, ``-t`` and ``-u`` for tables)."""
    if args.format == "table":
        from wsanalyze.output.table import TableWriter, terminal_width
        from wsanalyze.output.timefmt import TimeFormat

        width = None if args.wide else terminal_width()
        return TableWriter(table, stream, args.max_payload, width,
                           TimeFormat(args.time_format, args.utc))
    if args.format == "json":
        from wsanalyze.output.json_array import JsonArrayWriter

        return JsonArrayWriter(table, stream, args.max_payload)
    from wsanalyze.output.writers import make_writer as make_file_writer

    return make_file_writer(args.format, table, stream, args.output, args.max_payload)


def prepare(args: argparse.Namespace, table: str) -> RecordFilter:
    """Resolve CAPTURE/-r and the format, check the filters apply to ``table``."""
    from wsanalyze.output.schema import column_names

    parser: argparse.ArgumentParser = args.parser
    cli_args.resolve_capture(parser, args)
    cli_args.resolve_format(parser, args)
    record_filter = RecordFilter.from_args(args)
    problem = record_filter.check_table(table, column_names(table))
    if problem:
        parser.error(problem)
    return record_filter


def run(args: argparse.Namespace) -> int:
    from wsanalyze.output.ordering import in_packet_order
    from wsanalyze.output.streams import OutputError, close_output, open_output
    from wsanalyze.progress import Progress, file_size

    table: str = args.table
    record_filter = prepare(args, table)
    keep = record_filter.keep
    if args.format == "parquet" and not args.output:
        print("wsanalyze: error: --format parquet needs -o FILE (Parquet is binary)",
              file=sys.stderr)
        return 2
    capture = cli_args.open_run(args, frozenset((table,)))
    if capture is None:
        return 1
    record_filter.capture_start = lambda: capture.first_ts
    record_filter.stream_of = capture.streams
    stream = None if args.format == "parquet" else open_output(args.output)
    try:
        writer = make_writer(args, table, stream)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(args.output or "standard output", exc) from None
    progress = Progress(not args.quiet, file_size(args.capture),
                        lambda: capture.reader.bytes_read if capture.jobs == 1 else None)
    timefmt = getattr(writer, "timefmt", None)
    # Per record, only what is in use: no filter calls without filters, no
    # progress ticks when progress is not shown (a few % of a JSON Lines export).
    filtering = bool(record_filter.active())
    ticking = progress.enabled

    def rows() -> Iterator[dict[str, Any]]:
        for kind, row in capture:
            if ticking:
                progress.tick(capture.packets)
            if kind == table and (not filtering or keep(table, row)):
                yield row

    # OUTPUTS.md row order: violations by packet (the pipeline finds some late).
    ordered = in_packet_order(rows()) if table == "violation" else rows()
    fail_on: str | None = getattr(args, "fail_on", None)
    severities: set[str] = set()  # of the violations written, for --fail-on
    try:
        for row in ordered:
            if timefmt is not None and timefmt.start is None:
                timefmt.start = capture.first_ts
            writer.write(row)
            if fail_on is not None:
                severities.add(row["severity"])
        writer.close()
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or stream is not None:
            raise
        raise OutputError(args.output, exc) from None  # Parquet: pyarrow wrote the file
    finally:
        progress.done()
        if stream is not None:
            close_output(stream)
    return finish(capture) or failon.status(fail_on, severities)


def finish(capture: Any) -> int:
    """After the run: exit 1 when no packet could be read, else print the warnings."""
    if not capture.packets and capture.stopped:
        print(f"wsanalyze: error: {capture.path}: {capture.stopped}", file=sys.stderr)
        return 1
    for warning in capture.warnings:
        print(f"wsanalyze: warning: {warning}", file=sys.stderr)
    return 0
