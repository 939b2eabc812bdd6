"""The ``wsanalyze`` command line.

Each command streams records from the pipeline into a writer; nothing here
decodes.  Exit codes: 0 success (also when the capture was cut short: a warning
says where), 1 nothing could be read (missing file, not a capture), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

DESCRIPTION = """\
Passive WebSocket analyzer for packet captures (pcap, pcapng, gzip-compressed).
It reassembles TCP, follows the RFC 6455 handshake and frames, unmasks,
reassembles fragments, inflates permessage-deflate (RFC 7692) and reports
protocol violations.
"""

EPILOG = """\
examples:
  wsanalyze summary capture.pcapng
  wsanalyze messages capture.pcap                      # human table, 100 columns
  wsanalyze messages capture.pcap --format jsonl -o messages.jsonl
  wsanalyze messages capture.pcap --format jsonl --max-payload 256 | jq .text
  wsanalyze violations capture.pcap --format csv
  wsanalyze frames capture.pcap.gz --format parquet -o frames.parquet
  wsanalyze rules --format jsonl

Tables and their columns are described in OUTPUTS.md; in files the payload is
base64 in payload_b64.  Exit status: 0 ok (a warning names where a cut-short
capture stopped), 1 nothing could be read, 2 bad usage.
"""

TABLE_COMMANDS = {
    "connections": ("connection", "one row per TCP connection that carried WebSocket"),
    "messages": ("message", "every data message and control frame, decoded, in order"),
    "frames": ("frame", "every WebSocket frame header"),
    "violations": ("violation", "protocol violations and capture notes, with RFC sections"),
}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsanalyze", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("summary", help="overview of connections, messages, compression, "
                       "violations", description="A human overview of each WebSocket "
                       "connection: endpoints, path, subprotocol, extensions, message "
                       "counts by type and direction, bytes, compression ratio, violations.")
    p.add_argument("capture", metavar="CAPTURE",
                   help="pcap or pcapng file (may be .gz); - is stdin")
    _common(p)

    for name, (_, helptext) in TABLE_COMMANDS.items():
        p = sub.add_parser(name, help=helptext, description=f"Write the {name} table: "
                           f"{helptext}.", formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=EPILOG)
        p.add_argument("capture", metavar="CAPTURE",
                   help="pcap or pcapng file (may be .gz); - is stdin")
        p.add_argument("--format", "-f", choices=("table", "jsonl", "csv", "parquet"),
                       default="table", help="table (human, default), jsonl (one JSON "
                       "object per line), csv, or parquet (needs -o)")
        p.add_argument("-o", "--output", metavar="FILE",
                       help="write to FILE instead of standard output")
        p.add_argument("--max-payload", type=_positive_int, metavar="N",
                       help="keep only the first N bytes of each payload in the output "
                            "(truncated is then true); default: whole payloads")
        _common(p)

    from wsanalyze import live_command

    live_command.register(sub)

    from wsanalyze import plot_command

    plot_command.register(sub)

    p = sub.add_parser("rules", help="list the violation rules (id, severity, RFC section)",
                       description="The catalog of violation rules wsanalyze reports.")
    p.add_argument("--format", "-f", choices=("table", "jsonl"), default="table")
    return parser


def _common(p: argparse.ArgumentParser, *, jobs: bool = True) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line on standard error")
    if jobs:
        p.add_argument("-j", "--jobs", type=_jobs, default=1, metavar="N",
                       help="decode in N processes, connections split by flow (same "
                            "output, same order; default 1)")
    g = p.add_argument_group(
        "limits", "Resource limits for hostile or huge captures; the defaults never bother "
        "normal traffic.  Sizes take K, M or G suffixes.  What a limit drops is reported "
        "(message.too-big, capture.limit rows).")
    g.add_argument("--limit-message", type=_size, default=64 << 20, metavar="BYTES",
                   help="payload bytes kept per message (default 64M); longer messages are "
                        "counted with their true length and cut (truncated)")
    g.add_argument("--limit-inflate", type=_size, default=1 << 30, metavar="BYTES",
                   help="bytes inflated per compressed message before inflating stops "
                        "(decompression bombs; default 1G)")
    g.add_argument("--limit-buffer", type=_size, default=8 << 20, metavar="BYTES",
                   help="out-of-order TCP bytes buffered per direction (default 8M); beyond "
                        "it the missing bytes become a gap")
    g.add_argument("--limit-connections", type=_positive_int, default=100_000, metavar="N",
                   help="TCP connections tracked at once (default 100000); the longest idle "
                        "one is ended beyond it")
    g.add_argument("--limit-http-head", type=_size, default=64 << 10, metavar="BYTES",
                   help="longest HTTP request/response head followed (default 64K)")


_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _SUFFIXES else ""
    number = t[: len(t) - len(unit)]
    try:
        value = int(float(number) * _SUFFIXES[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size (examples: 65536, 64K, 8M, 1G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _jobs(text: str) -> int:
    value = _positive_int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text} must be between 1 and 64")
    return value


def _version() -> str:
    from wsanalyze import __version__

    return f"wsanalyze {__version__}"


class _Progress:
    """A progress line on stderr for long runs (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.next = self.start + 1.0
        self.shown = False

    def tick(self, packets: int) -> None:
        now = time.monotonic()
        if not self.enabled or now < self.next:
            return
        self.next = now + 0.5
        rate = packets / max(now - self.start, 1e-9)
        sys.stderr.write(f"\r{packets:,} packets ({rate:,.0f}/s)…")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _open_output(path: str | None) -> IO[str]:
    if path is None:
        return sys.stdout
    return open(path, "w", encoding="utf-8", newline="")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rules":
        return _rules(args.format)
    if args.command == "live":
        from wsanalyze import live_command

        return live_command.run(args)
    if args.command == "plot":
        from wsanalyze import plot_command

        return plot_command.run(args)
    from wsanalyze.analysis import CaptureRun
    from wsanalyze.parallel import WorkerError
    from wsanalyze.sources.records import CaptureError

    if args.command == "summary":
        from wsanalyze.output.summary import Summary

        tables = Summary.TABLES
    else:
        tables = frozenset((TABLE_COMMANDS[args.command][0],))
    try:
        run = CaptureRun(args.capture, _options(args, tables), args.jobs)
    except CaptureError as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    progress = _Progress(not args.quiet)
    try:
        status = _summary(run, progress) if args.command == "summary" else \
            _table(run, args, progress)
        if status:
            return status
    except BrokenPipeError:
        # The reader of our output went away (e.g. `| head`); that is not an error.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        progress.done()
        print("wsanalyze: interrupted", file=sys.stderr)
        return 130
    except WorkerError as exc:
        progress.done()
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return 1
    progress.done()
    for warning in run.warnings if args.command != "summary" else []:
        print(f"wsanalyze: warning: {warning}", file=sys.stderr)
    return 0


def _options(args: argparse.Namespace, tables: frozenset[str]) -> Any:
    from wsanalyze.pipeline import Options
    from wsanalyze.websocket.decoder import DecoderLimits

    limits = DecoderLimits(max_payload=args.limit_message, max_inflate=args.limit_inflate,
                           max_http_head=args.limit_http_head)
    return Options(limits=limits, tables=tables, max_buffered=args.limit_buffer,
                   max_connections=args.limit_connections)


def _nothing_read(run: Any, progress: _Progress) -> bool:
    """A capture header followed by no readable packet at all is an error (exit
    1), unlike a capture cut short after some packets (a warning)."""
    if run.packets or not run.stopped:
        return False
    progress.done()
    print(f"wsanalyze: error: {run.path}: {run.stopped}", file=sys.stderr)
    return True


def _summary(run: Any, progress: _Progress) -> int:
    from wsanalyze.output.summary import Summary

    summary = Summary()
    for record in run:
        summary.add(record)
        progress.tick(run.packets)
    progress.done()
    if _nothing_read(run, progress):
        return 1
    summary.write(sys.stdout, path=run.path, packets=run.packets, first_ts=run.first_ts,
                  last_ts=run.last_ts, warnings=run.warnings)
    return 0


def _table(run: Any, args: argparse.Namespace, progress: _Progress) -> int:
    from wsanalyze.output.writers import make_writer

    table = TABLE_COMMANDS[args.command][0]
    if args.format == "parquet" and not args.output:
        print("wsanalyze: error: --format parquet needs -o FILE (Parquet is binary)",
              file=sys.stderr)
        return 2
    try:
        stream = None if args.format == "parquet" else _open_output(args.output)
        writer = make_writer(args.format, table, stream, args.output, args.max_payload)
    except OSError as exc:
        print(f"wsanalyze: error: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        for kind, row in run:
            if kind == table:
                writer.write(row)
            progress.tick(run.packets)
    finally:
        writer.close()
        if stream is not None and stream is not sys.stdout:
            stream.close()
        elif stream is sys.stdout:
            sys.stdout.flush()
    return 1 if _nothing_read(run, progress) else 0


def _rules(fmt: str) -> int:
    import json

    from wsanalyze.rules import RULES

    for r in RULES.values():
        if fmt == "jsonl":
            print(json.dumps({"id": r.id, "severity": r.severity, "reference": r.reference,
                              "requirement": r.requirement, "impact": r.impact}))
        else:
            print(f"{r.id:34} {r.severity:8} {r.reference}")
            print(f"    {r.requirement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
