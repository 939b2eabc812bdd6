"""The ``wsanalyze`` command line: the parser, dispatch, and errors handled once.

Commands live in their own modules (``register(subparsers)`` adds the parser with
``func=run``; ``run(args) -> int`` returns the exit code) and let
``BrokenPipeError``, ``KeyboardInterrupt`` and output errors propagate: :func:`main`
turns them into one line and the conventional exit code for every command.

Exit codes: 0 success (also when the capture was cut short: a warning says
where), 1 nothing could be read or an output could not be written (or
``--fail-on LEVEL`` found violations of LEVEL or worse), 2 bad usage,
3 ``live`` only: packets were dropped (:mod:`wsanalyze.live_command`; Ctrl-C and
SIGTERM stop a live capture cleanly), 130 interrupted (Ctrl-C), 141 the reader
of standard output went away (as a shell reports a process killed by SIGPIPE;
nothing is printed).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

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
  tcpdump -U -w - 'tcp port 8765' | wsanalyze messages - -F jsonl   # - is stdin
  wsanalyze live -i lo -f 'tcp port 8765' -F jsonl     # capture (dumpcap/tcpdump)

Tables and their columns are described in docs/columns.md (`wsanalyze columns`);
in files the payload is base64 in payload_b64.  Exit status: 0 ok (a warning
names where a cut-short capture stopped), 1 nothing could be read or an output
could not be written, 2 bad usage, 3 live: packets were dropped, 130 interrupted,
141 output pipe closed; with --fail-on LEVEL (summary, violations, report) also 1
when violations of LEVEL or worse were found.
"""

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and the subcommand parsers by name."""
    from wsanalyze import (
        columns_command,
        export_command,
        follow,
        live_command,
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
    live_command.register(sub)
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
    from wsanalyze import __version__, _build, speedups

    fast = speedups.describe()
    return f"wsanalyze {__version__} ({_build.describe()}{'; ' + fast if fast else ''})"


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


if __name__ == "__main__":
    raise SystemExit(main())
