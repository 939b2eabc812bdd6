"""Argument types and option groups shared by the ``wsanalyze`` commands.

Commands in their own modules build their parsers from these helpers so the
options mean the same everywhere: ``CAPTURE`` or ``-r FILE``, ``-F/--format``,
``-o FILE`` (format from its extension), ``-t``/``-u`` time display, ``-j``,
``-q``, ``--tls-keylog`` and the resource limits.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from wsanalyze.output.timefmt import MODE_HELP, MODES

if TYPE_CHECKING:
    from wsanalyze.analysis import CaptureRun

EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet", ".txt": "table"}
"""Output format picked from ``-o FILE``'s extension when ``--format`` is not given."""


def whole_number(text: str, minimum: int) -> int:
    """``text`` as an int of at least ``minimum``, or an argparse error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text} must be {minimum} or more")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 0)


def count(text: str) -> int:
    """A count of at least 1 (workers, shards)."""
    return whole_number(text, 1)


_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size(text: str) -> int:
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


def jobs(text: str) -> int:
    """``-j N``: 1..64 processes; 0 means one per CPU core."""
    value = positive_int(text)
    if value == 0:
        return max(1, min(64, os.cpu_count() or 1))
    if value > 64:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 (all cores) and 64")
    return value


def add_capture(p: argparse.ArgumentParser) -> None:
    """``CAPTURE`` as a positional argument, or ``-r FILE`` as tshark users type it;
    ``-`` (either way) is standard input."""
    p.add_argument("capture", metavar="CAPTURE", nargs="?",
                   help="pcap or pcapng file (may be .gz); - is standard input, "
                        "decoded as packets arrive (tcpdump -U -w - | ...)")
    p.add_argument("-r", "--read", dest="read", metavar="FILE",
                   help="the capture file (same as CAPTURE, as in tshark -r; - is stdin)")


def resolve_capture(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check that exactly one of CAPTURE and ``-r`` was given; sets ``args.capture``."""
    if args.read is not None and args.capture is not None:
        p.error("give the capture either as CAPTURE or with -r, not both")
    if args.read is None and args.capture is None:
        p.error("the capture file is missing (CAPTURE or -r FILE)")
    if args.capture is None:
        args.capture = args.read


def add_time_display(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", dest="time_format", choices=MODES, default="a", help=MODE_HELP)
    p.add_argument("-u", "--utc", action="store_true",
                   help="show times in UTC (default: local time, zone in the header)")


def add_output(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    p.add_argument("-F", "--format", choices=formats, default=None,
                   help=f"{', '.join(formats)}; default: from -o FILE's extension "
                        "(.jsonl .json .csv .parquet .txt), else table")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE instead of standard output")
    p.add_argument("--wide", action="store_true",
                   help="table: cut nothing (default: fit the terminal width, COLUMNS)")


def resolve_format(p: argparse.ArgumentParser, args: argparse.Namespace,
                   extensions: dict[str, str] = EXTENSIONS, default: str = "table") -> None:
    """Sets ``args.format`` from ``--format`` or the extension of ``-o FILE``
    (``default`` for standard output or a name without extension)."""
    if args.format is not None:
        return
    ext = os.path.splitext(args.output or "")[1].lower()
    if not ext:
        args.format = default
    elif ext in extensions:
        args.format = extensions[ext]
    else:
        p.error(f"cannot tell the output format from {args.output!r}: use an extension "
                f"({', '.join(extensions)}) or --format")


def add_tls_keylog(p: argparse.ArgumentParser) -> None:
    """``--tls-keylog FILE`` (repeatable): NSS key logs to decrypt ``wss://`` with."""
    p.add_argument("--tls-keylog", action="append", default=[], metavar="FILE",
                   help="NSS key log (SSLKEYLOGFILE) to decrypt wss:// with; may be repeated "
                        "(pcapng Decryption Secrets Blocks are used without it)")


def add_common(p: argparse.ArgumentParser, *, with_jobs: bool = True) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress line on standard error")
    add_tls_keylog(p)
    if with_jobs:
        p.add_argument("-j", "--jobs", type=jobs, default=1, metavar="N",
                       help="decode in N processes, connections split by flow (same "
                            "output, same order; 0: one per CPU core; default 1)")
    g = p.add_argument_group(
        "limits", "Resource limits for hostile or huge captures; the defaults never bother "
        "normal traffic.  Sizes take K, M or G suffixes.  What a limit drops is reported "
        "(message.too-big, capture.limit rows).")
    g.add_argument("--limit-message", type=size, default=64 << 20, metavar="BYTES",
                   help="payload bytes kept per message (default 64M); longer messages are "
                        "counted with their true length and cut (truncated)")
    g.add_argument("--limit-inflate", type=size, default=1 << 30, metavar="BYTES",
                   help="bytes inflated per compressed message before inflating stops "
                        "(decompression bombs; default 1G)")
    g.add_argument("--limit-buffer", type=size, default=8 << 20, metavar="BYTES",
                   help="out-of-order TCP bytes buffered per direction (default 8M); beyond "
                        "it the missing bytes become a gap")
    g.add_argument("--limit-connections", type=positive_int, default=100_000, metavar="N",
                   help="TCP connections tracked at once (default 100000); the longest idle "
                        "one is ended beyond it")
    g.add_argument("--limit-http-head", type=size, default=64 << 10, metavar="BYTES",
                   help="longest HTTP request/response head followed (default 64K)")


def options(args: argparse.Namespace, tables: frozenset[str]) -> Any:
    """The pipeline :class:`~wsanalyze.pipeline.Options` for parsed ``args``.

    Reads the ``--tls-keylog`` files: raises :class:`~wsanalyze.tls.keylog.KeyLogError`
    (a :class:`~wsanalyze.sources.records.CaptureError`) when one cannot be read."""
    from wsanalyze.pipeline import Options
    from wsanalyze.tls.keylog import load_keylogs
    from wsanalyze.websocket.decoder import DecoderLimits

    limits = DecoderLimits(max_payload=args.limit_message, max_inflate=args.limit_inflate,
                           max_http_head=args.limit_http_head)
    return Options(limits=limits, tables=tables, max_buffered=args.limit_buffer,
                   max_connections=args.limit_connections,
                   tls_keylog=load_keylogs(args.tls_keylog) if args.tls_keylog else None)


def open_run(args: argparse.Namespace, tables: frozenset[str]) -> CaptureRun | None:
    """The capture of ``args`` opened for decoding ``tables`` (with the command's
    options and ``--jobs``), or None after printing the one-line error."""
    import sys

    from wsanalyze.analysis import CaptureRun
    from wsanalyze.sources.records import CaptureError

    try:
        return CaptureRun(args.capture, options(args, tables), args.jobs)
    except CaptureError as exc:
        print(f"wsanalyze: error: {exc}", file=sys.stderr)
        return None
