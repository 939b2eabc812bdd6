"""The ``wsanalyze`` command line: the parser, dispatch, and errors handled once.

Commands live in their own modules (``register(subparsers)`` adds the parser with
``func=run``; ``run(args) -> int`` returns the exit code) and let
``BrokenPipeError``, ``KeyboardInterrupt`` and output errors propagate: :func:`main`
turns them into one line and the conventional exit code for every command.

Exit codes: 0 success (also when the capture was cut short: a warning says
where), 1 nothing could be read or an output could not be written (or
``--fail-on LEVEL`` found violations of LEVEL or worse), 2 bad usage,
130 interrupted (Ctrl-C), 141 the reader of standard output went away (as a
shell reports a process killed by SIGPIPE; nothing is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from wsanalyze import cli_args

DESCRIPTION = """\
Passive WebSocket analyzer for packet captures (pcap, pcapng, gzip-compressed).
It reassembles TCP, follows the RFC 6455 handshake and frames, unmasks,
reassembles fragments, inflates permessage-deflate (RFC 7692) and reports
protocol violations.
"""

EPILOG = """\
examples:
  wsanalyze summary capture.pcapng
  wsanalyze messages capture.pcap                      # human table, terminal width
  wsanalyze messages capture.pcap -o messages.jsonl    # format from the extension
  wsanalyze messages capture.pcap --format jsonl --max-payload 256 | jq .text
  wsanalyze messages -r capture.pcap --connection 2 --type text --grep error
  wsanalyze follow capture.pcap --connection 0         # one conversation, full payloads
  wsanalyze violations capture.pcap --format csv
  wsanalyze frames capture.pcap.gz --format parquet -o frames.parquet
  wsanalyze columns messages                           # what every column means
  wsanalyze rules frame.client-unmasked
  wsanalyze summary capture.pcapng -F json -o summary.json
  wsanalyze report capture.pcapng -o report.html      # bug-ticket report (or .md)
  wsanalyze export capture.pcapng -o bug.pcapng --violations
  wsanalyze violations capture.pcap --fail-on error   # CI gate: exit 1 on errors

Tables and their columns are described in docs/columns.md (`wsanalyze columns`);
in files the payload is base64 in payload_b64.  Exit status: 0 ok (a warning
names where a cut-short capture stopped), 1 nothing could be read or an output
could not be written, 2 bad usage, 130 interrupted, 141 output pipe closed; with
--fail-on LEVEL (summary, violations, report) also 1 when violations of LEVEL or
worse were found.
"""

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the subcommand parsers by name."""
    from wsanalyze import (
        columns_command,
        export_command,
        follow,
        plot_command,
        report_command,
        rules_command,
        summary_command,
        table_command,
    )

    parser = argparse.ArgumentParser(
        prog="wsanalyze", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    summary_command.register(sub)
    report_command.register(sub)
    export_command.register(sub)
    table_command.register(sub)
    follow.register(sub)
    _register_live(sub)
    plot_command.register(sub)
    rules_command.register(sub)
    columns_command.register(sub)
    from wsanalyze.batch import command as batch_command

    batch = batch_command.register(sub)
    batch.set_defaults(parser=batch)
    return parser, dict(sub.choices)


def _add_filters(p: argparse.ArgumentParser) -> None:
    from wsanalyze.filters import add_filter_arguments

    add_filter_arguments(p)


def _version() -> str:
    from wsanalyze import __version__

    return f"wsanalyze {__version__}"


def _command_list(parser: argparse.ArgumentParser,
                  commands: dict[str, argparse.ArgumentParser]) -> str:
    # argparse keeps each command's one-line help on the subparsers action only.
    sub_actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {a.dest: a.help for s in sub_actions for a in getattr(s, "_choices_actions", [])}
    lines = [parser.format_usage().rstrip(), "", "commands:"]
    lines += [f"  {name:12} {helps.get(name) or ''}".rstrip() for name in commands]
    lines += ["", "Run `wsanalyze COMMAND --help` for a command's options, "
              "`wsanalyze --help` for examples."]
    return "\n".join(lines) + "\n"


def parse(argv: list[str]) -> argparse.Namespace | None:
    """Parse ``argv``; an unknown option is reported with its subcommand's usage.
    No arguments at all: print the command list and return None."""
    parser, commands = build_parser()
    if not argv:
        sys.stdout.write(_command_list(parser, commands))
        return None
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error("choose a command: " + ", ".join(commands))
    if extra:
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    from wsanalyze.output.streams import GuardedStdout, OutputError, silence_stdout

    saved = sys.stdout
    reconfigure = getattr(saved, "reconfigure", None)
    if reconfigure is not None:
        # Arrows and ellipses on a terminal that is not UTF-8: escaped, not an error.
        reconfigure(errors="backslashreplace")
    sys.stdout = GuardedStdout(saved)  # type: ignore[assignment]  # names stdout on errors
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
        status = 0 if args is None else int(args.func(args))
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`| head`): quiet, as a process killed by SIGPIPE.
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except OutputError as exc:
        _error(str(exc))
        return 1
    except RuntimeError as exc:
        if type(exc).__name__ != "WorkerError":  # wsanalyze.parallel, imported lazily
            raise
        _error(str(exc))
        return 1
    finally:
        sys.stdout = saved


def _error(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr itself gone: nothing to tell
        print(f"wsanalyze: error: {message}" if message != "interrupted"
              else "wsanalyze: interrupted", file=sys.stderr)


def _register_live(sub: Any) -> None:
    p = sub.add_parser(
        "live", help="capture on an interface and stream records as they complete",
        description="Sniff an interface (root or CAP_NET_RAW needed) and write records as "
        "messages complete, until --count packets, --duration seconds or Ctrl-C.",
        epilog="examples:\n  wsanalyze live -i lo -f 'tcp port 8765' --format jsonl\n"
               "  wsanalyze live -i any --table violations --duration 60",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--interface", required=True, help="interface name, e.g. lo, eth0, any")
    p.add_argument("-f", "--filter", default="tcp", metavar="BPF",
                   help="capture filter in tcpdump syntax (default: tcp)")
    p.add_argument("-c", "--count", type=cli_args.positive_int, metavar="N",
                   help="stop after N packets")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS",
                   help="stop after SECONDS")
    p.add_argument("--table", choices=("messages", "violations", "frames", "connections"),
                   default="messages", help="which records to write (default messages)")
    p.add_argument("-F", "--format", choices=("table", "jsonl", "csv"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    p.add_argument("--max-payload", type=cli_args.positive_int, metavar="N",
                   help="keep only the first N bytes of each payload in the output")
    _add_filters(p)
    cli_args.add_common(p, with_jobs=False)
    p.set_defaults(func=_live, parser=p)


def _live(args: argparse.Namespace) -> int:
    from wsanalyze.filters import RecordFilter
    from wsanalyze.output.schema import column_names
    from wsanalyze.output.streams import close_output, open_output
    from wsanalyze.output.writers import make_writer
    from wsanalyze.pipeline import Analyzer
    from wsanalyze.sources.live import LiveCapture
    from wsanalyze.sources.records import CaptureError
    from wsanalyze.table_command import TABLE_COMMANDS

    table = TABLE_COMMANDS[args.table][0]
    record_filter = RecordFilter.from_args(args)
    problem = record_filter.check_table(table, column_names(table))
    if problem:
        args.parser.error(problem)
    try:
        options = cli_args.options(args, frozenset((table,)))
        capture = LiveCapture(args.interface, bpf_filter=args.filter, count=args.count,
                              duration=args.duration)
    except CaptureError as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    stream = open_output(args.output)
    writer = make_writer(args.format, table, stream, None, args.max_payload)
    analyzer = Analyzer(options)
    record_filter.capture_start = lambda: analyzer.first_ts
    record_filter.stream_of = analyzer.streams

    def write(records: list) -> None:
        for kind, row in records:
            if kind == table and record_filter.keep(kind, row):
                writer.write(row)
        if records:
            stream.flush()  # live: each record as soon as it is known

    try:
        for pkt in capture:
            write(analyzer.feed(pkt))
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a live capture normally: what was decoded is written
    write(analyzer.finish())
    writer.close()
    close_output(stream)
    if not args.quiet:
        print(f"wsanalyze: captured {capture.packets_read} packets on {args.interface}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
