"""``wsanalyze live``: capture an interface and stream records as they complete.

The capture itself runs in dumpcap or tcpdump (:mod:`wsanalyze.sources.engine`);
this module parses the options, prints the banner and the closing statistics,
and turns signals into a clean stop: Ctrl-C, SIGTERM, ``-d`` and ``-c`` all make
the engine finish, after which the last rows (connections still open) are
written.  Exit status 3 says packets were dropped.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from wsanalyze import cli_args

EXIT_DROPPED = 3
FORMATS = ("table", "jsonl", "csv")

EPILOG = """\
examples:
  wsanalyze live -i lo -f 'tcp port 8765' -F jsonl
  wsanalyze live -i any --table violations --duration 60
  wsanalyze live -i lo -f 'tcp port 8765' --type text --grep error
  wsanalyze live -i eth0 -f 'tcp port 443 or tcp port 80' -w evidence.pcapng
  wsanalyze live -i eth0 -w long.pcapng --ring 10,100M      # keep the last ~1 GB
  wsanalyze live -D                                          # list interfaces
  wsanalyze live --check                                     # engine and privileges

The capture runs in dumpcap (installed with tshark/wireshark) or tcpdump, with a
kernel buffer of -B MiB; without either, scapy is used and may drop packets.
Capturing needs root, or once: sudo setcap cap_net_raw,cap_net_admin+eip
/usr/bin/dumpcap.  Exit status: 0 ok, 1 could not capture, 2 bad usage,
3 packets were dropped (the counts are printed; the lost bytes are capture.gap
rows in the violations table).
"""


def _ring(text: str) -> tuple[int, int]:
    files, _, size = text.partition(",")
    try:
        n = int(files)
    except ValueError:
        n = 0
    if n < 1 or not size:
        raise argparse.ArgumentTypeError(f"{text!r} is not N,SIZE (example: 10,100M)")
    return n, cli_args.size(size)


def _buffer(text: str) -> int:
    value = cli_args.positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("the buffer needs at least 1 MiB")
    return value


def register(sub: Any) -> argparse.ArgumentParser:
    from wsanalyze.filters import add_filter_arguments

    p: argparse.ArgumentParser = sub.add_parser(
        "live", help="capture on an interface and stream records as they complete",
        description="Capture an interface with dumpcap or tcpdump and write records as "
        "messages complete, until --count packets, --duration seconds, Ctrl-C or SIGTERM "
        "(each writes the final rows).  Drops are counted and reported.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--interface", help="interface name, e.g. lo, eth0, any")
    p.add_argument("-f", "--filter", default="tcp", metavar="BPF",
                   help="capture filter in tcpdump syntax (default: tcp)")
    p.add_argument("-c", "--count", type=cli_args.positive_int, metavar="N",
                   help="stop after N packets")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS",
                   help="stop after SECONDS")
    p.add_argument("-B", "--buffer-size", type=_buffer, default=32, metavar="MIB",
                   help="kernel capture buffer in MiB (default 32)")
    p.add_argument("-s", "--snaplen", type=cli_args.positive_int, default=0, metavar="BYTES",
                   help="bytes kept of each packet (default: whole packets)")
    p.add_argument("-w", "--write", metavar="FILE",
                   help="keep every captured packet in FILE (pcapng from dumpcap, pcap "
                        "from tcpdump): exactly what was decoded")
    p.add_argument("--ring", type=_ring, metavar="N,SIZE",
                   help="with -w: at most N files of SIZE bytes (FILE_00001.pcapng, ...), "
                        "the oldest deleted")
    p.add_argument("-D", "--list-interfaces", action="store_true",
                   help="list the interfaces and exit")
    p.add_argument("--check", action="store_true",
                   help="say which capture engine will be used and whether it may capture")
    p.add_argument("--engine", choices=("dumpcap", "tcpdump", "scapy"),
                   help="capture program (default: dumpcap, else tcpdump, else scapy)")
    p.add_argument("--table", choices=("messages", "violations", "frames", "connections"),
                   default="messages", help="which records to write (default messages)")
    # -F/--format as in the file commands: -f is the capture filter here.
    p.add_argument("-F", "--format", choices=FORMATS, default="table",
                   help="table (human, default), jsonl (one JSON object per line) or csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    p.add_argument("--max-payload", type=cli_args.positive_int, metavar="N",
                   help="keep only the first N bytes of each payload in the output")
    add_filter_arguments(p)
    cli_args.add_common(p, with_jobs=False)
    p.set_defaults(func=run, parser=p)
    return p


def _err(text: str) -> None:
    print(f"wsanalyze: error: {text}", file=sys.stderr, flush=True)


def _note(text: str) -> None:
    print(f"wsanalyze: {text}", file=sys.stderr, flush=True)


def _list_interfaces(engine_name: str | None) -> int:
    from wsanalyze.sources.engine import find_engine, list_interfaces

    engine = find_engine(None if engine_name == "scapy" else engine_name)
    if engine is None:
        _err("listing interfaces needs dumpcap or tcpdump (install tshark or tcpdump)")
        return 1
    for i, (name, desc) in enumerate(list_interfaces(engine), 1):
        print(f"{i}. {name}" + (f" {desc}" if desc else ""))
    return 0


def _check(engine_name: str | None) -> int:
    from wsanalyze.sources.engine import find_engine, privilege_problem

    engine = None if engine_name == "scapy" else find_engine(engine_name)
    if engine is None:
        print("capture engine: scapy (neither dumpcap nor tcpdump found: it may drop "
              "packets under load)")
        return 0
    print(f"capture engine: {engine.name} ({engine.path})")
    problem = privilege_problem(engine)
    print(f"privileges: {'ok' if problem is None else problem}")
    return 0 if problem is None else 1


class _Stopper:
    """SIGINT/SIGTERM: the first asks the capture to finish (final rows are
    written), a second one kills it.  Installed before the capture starts, so a
    signal that comes while it starts stops it as soon as it has started."""

    def __init__(self) -> None:
        self.source: Any = None
        self.signals = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stopper:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def attach(self, source: Any) -> None:
        self.source = source
        if self.signals:
            source.stop()

    def _handle(self, signum: int, frame: Any) -> None:
        self.signals += 1
        if self.source is None:
            return
        if self.signals == 1:
            self.source.stop()
        else:
            self.source.kill()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class _DropWatch(threading.Thread):
    """Warns on stderr as soon as the engine reports drops while capturing."""

    def __init__(self, source: Any) -> None:
        super().__init__(daemon=True, name="wsanalyze-dropwatch")
        self.source = source
        self.done = threading.Event()
        self.warned = 0

    def run(self) -> None:
        while not self.done.wait(0.5):
            stats = self.source.running_stats
            if stats is not None and stats.dropped > self.warned:
                self.warned = stats.dropped
                _note(f"warning: packets are being dropped ({stats.text()} so far)")


def run(args: argparse.Namespace) -> int:
    if args.list_interfaces:
        return _list_interfaces(args.engine)
    if args.check:
        return _check(args.engine)
    if not args.interface:
        _err("live needs -i INTERFACE (wsanalyze live -D lists them)")
        return 2
    if args.ring and not args.write:
        _err("--ring needs -w FILE (the name of the ring's files)")
        return 2
    from wsanalyze.filters import RecordFilter
    from wsanalyze.output.schema import column_names
    from wsanalyze.output.streams import close_output, open_output
    from wsanalyze.sources.records import CaptureError
    from wsanalyze.table_command import TABLE_COMMANDS

    table = TABLE_COMMANDS[args.table][0]
    record_filter = RecordFilter.from_args(args)
    problem = record_filter.check_table(table, column_names(table))
    if problem:
        args.parser.error(problem)
    try:
        # Violations are decoded too: a capture.gap while capturing hints at drops.
        options = cli_args.options(args, frozenset((table, "violation")))
    except CaptureError as exc:  # a --tls-keylog file that cannot be read
        _err(str(exc))
        return 1
    stream = open_output(args.output)  # OutputError names the file (cli.main)
    with _Stopper() as stopper:
        source = _start(args)
        if source is None:
            close_output(stream)
            return 1
        stopper.attach(source)
        try:
            decoded = _decode(source, args, table, stream, options, record_filter)
        except BaseException:
            source.close()  # e.g. the reader of our output went away
            raise
        finally:
            close_output(stream)  # every row written before the statistics
        return _finish(source, args, decoded)


def _emitter(writer: Any, stream: IO[str], table: str,
             keep: Callable[[str, dict[str, Any]], bool]) -> Callable[[list[Any]], None]:
    gap_warned = False

    def emit(records: list[Any]) -> None:
        nonlocal gap_warned
        for kind, row in records:
            if kind == table and keep(kind, row):
                writer.write(row)
            if kind == "violation" and row["rule"] == "capture.gap" and not gap_warned:
                gap_warned = True
                _note(f"warning: bytes are missing from a TCP stream at packet "
                      f"{row['packet']}: packets may be dropped")
        if records:
            stream.flush()  # live: each record as soon as it is known

    return emit


def _start(args: argparse.Namespace) -> Any:
    """The started capture, or None after printing why it could not start."""
    from wsanalyze.sources.live import open_live
    from wsanalyze.sources.records import CaptureError

    warnings: list[str] = []
    try:
        source = open_live(args.interface, args.filter, engine=args.engine,
                           count=args.count, duration=args.duration,
                           buffer_mib=args.buffer_size, snaplen=args.snaplen,
                           write=args.write, ring=args.ring, warn=warnings)
    except CaptureError as exc:
        _err(str(exc))
        return None
    for w in warnings:
        _note(f"warning: {w}")
    name = getattr(getattr(source, "engine", None), "name", "scapy")
    _note(f"Capturing on '{args.interface}' (filter: {args.filter or 'none'}) with {name}"
          + (f", writing {args.write}" if args.write else ""))
    return source


def _decode(source: Any, args: argparse.Namespace, table: str, stream: IO[str],
            options: Any, record_filter: Any) -> int:
    """Decode until the capture ends; returns the number of packets decoded."""
    from wsanalyze.output.writers import make_writer
    from wsanalyze.pipeline import Analyzer

    writer = make_writer(args.format, table, stream, None, args.max_payload)
    analyzer = Analyzer(options)
    record_filter.capture_start = lambda: analyzer.first_ts
    record_filter.stream_of = analyzer.streams
    emit = _emitter(writer, stream, table, record_filter.keep)
    watch = _DropWatch(source)
    watch.start()
    feed = analyzer.feed
    try:
        for pkt in source.packets():
            out = feed(pkt)
            if out:
                emit(out)
        emit(analyzer.finish())
    finally:
        watch.done.set()
        writer.close()
    return int(analyzer.packets)


def _finish(source: Any, args: argparse.Namespace, decoded: int) -> int:
    stats = source.finish()
    source.close()
    error = source.error
    if error:
        _err(error)
        return 1
    stopped = source.reader.stopped if source.reader is not None else None
    if stopped:
        _note(f"warning: {stopped}")
    if not args.quiet or stats.dropped:
        _note(f"{stats.text()} on {args.interface}"
              + (f" ({decoded:,} decoded)" if stats.captured != decoded
                 else ""))
    if stats.dropped:
        _note(f"warning: {stats.dropped:,} packets were dropped: their bytes are "
              "capture.gap rows (a larger -B, a narrower -f, or a faster disk may help)")
        return EXIT_DROPPED
    return 0
