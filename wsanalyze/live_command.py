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

EXIT_DROPPED = 3

EPILOG = """\
examples:
  wsanalyze live -i lo -f 'tcp port 8765' --format jsonl
  wsanalyze live -i any --table violations --duration 60
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
    from wsanalyze.cli import _size

    files, _, size = text.partition(",")
    try:
        n = int(files)
    except ValueError:
        n = 0
    if n < 1 or not size:
        raise argparse.ArgumentTypeError(f"{text!r} is not N,SIZE (example: 10,100M)")
    return n, _size(size)


def _buffer(text: str) -> int:
    from wsanalyze.cli import _positive_int

    value = _positive_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("the buffer needs at least 1 MiB")
    return value


def register(sub: Any) -> None:
    from wsanalyze.cli import _common, _positive_int

    p = sub.add_parser(
        "live", help="capture on an interface and stream records as they complete",
        description="Capture an interface with dumpcap or tcpdump and write records as "
        "messages complete, until --count packets, --duration seconds, Ctrl-C or SIGTERM "
        "(each writes the final rows).  Drops are counted and reported.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-i", "--interface", help="interface name, e.g. lo, eth0, any")
    p.add_argument("-f", "--filter", default="tcp", metavar="BPF",
                   help="capture filter in tcpdump syntax (default: tcp)")
    p.add_argument("-c", "--count", type=_positive_int, metavar="N",
                   help="stop after N packets")
    p.add_argument("-d", "--duration", type=float, metavar="SECONDS",
                   help="stop after SECONDS")
    p.add_argument("-B", "--buffer-size", type=_buffer, default=32, metavar="MIB",
                   help="kernel capture buffer in MiB (default 32)")
    p.add_argument("-s", "--snaplen", type=_positive_int, default=0, metavar="BYTES",
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
    p.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE")
    p.add_argument("--max-payload", type=_positive_int, metavar="N",
                   help="keep only the first N bytes of each payload in the output")
    _common(p, jobs=False)


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
    from wsanalyze.cli import TABLE_COMMANDS, _open_output

    table = TABLE_COMMANDS[args.table][0]
    try:
        stream = _open_output(args.output)
    except OSError as exc:
        _err(f"cannot write {args.output}: {exc.strerror}")
        return 1
    with _Stopper() as stopper:
        source = _start(args)
        if source is None:
            return 1
        stopper.attach(source)
        try:
            decoded = _decode(source, args, table, stream)
        except BaseException:
            source.close()  # e.g. the reader of our output went away
            raise
        finally:
            if stream is not sys.stdout:
                stream.close()
            else:
                sys.stdout.flush()
        return _finish(source, args, decoded)


def _emitter(writer: Any, stream: IO[str], table: str) -> Callable[[list[Any]], None]:
    gap_warned = False

    def emit(records: list[Any]) -> None:
        nonlocal gap_warned
        for kind, row in records:
            if kind == table:
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


def _decode(source: Any, args: argparse.Namespace, table: str, stream: IO[str]) -> int:
    """Decode until the capture ends; returns the number of packets decoded."""
    from wsanalyze.cli import _options
    from wsanalyze.output.writers import make_writer
    from wsanalyze.pipeline import Analyzer

    writer = make_writer(args.format, table, stream, None, args.max_payload)
    # Violations are decoded too: a capture.gap while capturing hints at drops.
    analyzer = Analyzer(_options(args, frozenset((table, "violation"))))
    emit = _emitter(writer, stream, table)
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
