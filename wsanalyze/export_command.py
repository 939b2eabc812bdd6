"""``wsanalyze export CAPTURE -o out.pcapng (--connection N | --violations | --rule ID |
--since T --until T)``: the packets of chosen connections as a standalone capture.

Exit codes: 0 written, 1 the capture cannot be read or the output cannot be
written, 2 bad usage (no selection, unknown connection or rule, bad time); 130
and 141 as every command (:mod:`wsanalyze.cli`).
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any, cast

from wsanalyze import cli_args

DESCRIPTION = """\
Write the packets of the chosen TCP connections — from the SYN, so the TCP and
WebSocket handshakes are included — unchanged and with their timestamps, to a
pcapng file that tshark, Wireshark and wsanalyze open on their own (attach it to
a bug ticket).  Connections are chosen by id (--connection, as in `wsanalyze
connections`), by having error or warning violations (--violations) or a given
rule (--rule), or by overlapping a time window (--since/--until, which narrows
the other choices when combined with them).
"""

EPILOG = """\
examples:
  wsanalyze export capture.pcapng -o conn3.pcapng --connection 3
  wsanalyze export capture.pcapng -o broken.pcapng --violations
  wsanalyze export capture.pcapng -o unmasked.pcapng --rule frame.client-unmasked
  wsanalyze export capture.pcapng -o window.pcapng --since 12.5 --until 20

  wsanalyze export -r capture.pcapng -o - --violations | tshark -r - -Y websocket

Times (--since/--until), as in the other commands' filters: seconds from the
capture's first packet (12.5), Unix epoch seconds (1764662400.25), a time of day
(14:03:07.250, on the day of the first packet) or ISO 8601
(2026-12-02T07:30:00+00:00; local unless -u or a zone is given).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write the packets of chosen connections to a "
                              "pcapng file", description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    cli_args.add_capture(p)
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="the pcapng file to write (- for standard output, not a terminal)")
    add_selection(p)
    p.add_argument("-u", "--utc", action="store_true",
                   help="times of day and dates in --since/--until are UTC (default: local)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line on standard error")
    p.set_defaults(func=run, parser=p)
    return p


def _id_list(text: str) -> frozenset[int]:
    from wsanalyze.filters import _int_list

    return _int_list(text)


def _rule_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_selection(p: argparse.ArgumentParser) -> None:
    from wsanalyze.filters import parse_time_bound

    g = p.add_argument_group("choosing connections")
    g.add_argument("--connection", "--conn", type=_id_list, action="append", metavar="N[,M]",
                   help="connection id(s), as in `wsanalyze connections` (repeatable)")
    g.add_argument("--stream", type=_id_list, action="append", metavar="K[,L]",
                   help="Wireshark's tcp.stream number(s) (needs the tcp_stream column)")
    g.add_argument("--violations", action="store_true",
                   help="connections with violations of severity error or warning")
    g.add_argument("--rule", type=_rule_list, action="append", metavar="ID[,ID]",
                   help="connections where rule ID fired (* wildcards; repeatable; "
                        "`wsanalyze rules` lists them)")
    g.add_argument("--since", type=parse_time_bound, metavar="TIME",
                   help="connections active at or after TIME")
    g.add_argument("--until", type=parse_time_bound, metavar="TIME",
                   help="connections active at or before TIME")


class SelectionError(Exception):
    """A choice that matches nothing that exists (usage error, exit 2)."""


def choose(args: argparse.Namespace, connections: list[dict[str, Any]],
           violations: list[dict[str, Any]], first_ts: float | None) -> list[dict[str, Any]]:
    """The connection rows chosen by ``args`` (see DESCRIPTION)."""
    import fnmatch

    from wsanalyze.filters import RecordFilter
    from wsanalyze.rules import RULES

    ids = {c["connection"] for c in connections}
    chosen: set[int] = set()
    by_id = sorted({n for part in args.connection or [] for n in part})
    streams = {n for part in getattr(args, "stream", None) or [] for n in part}
    rules = [r for part in args.rule or [] for r in part]
    if streams:
        problem = RecordFilter(streams=frozenset(streams)).check_stream()
        if problem:
            raise SelectionError(problem)
        chosen.update(c["connection"] for c in connections if c.get("tcp_stream") in streams)
    for n in by_id:
        if n not in ids:
            raise SelectionError(f"no connection {n} in the capture (it has "
                                 f"{_id_range(sorted(ids))})")
    chosen.update(by_id)
    for rule in rules:
        if not any(fnmatch.fnmatchcase(r, rule) for r in RULES):
            raise SelectionError(f"unknown rule {rule!r} (`wsanalyze rules` lists them)")
        chosen.update(v["connection"] for v in violations
                      if fnmatch.fnmatchcase(v["rule"], rule))
    if args.violations:
        chosen.update(v["connection"] for v in violations if v["severity"] != "info")
    window = args.since is not None or args.until is not None
    picked = bool(by_id or streams or rules or args.violations)
    if not (picked or window):
        raise SelectionError("choose connections with --connection, --violations, --rule "
                             "or --since/--until")
    rows = [c for c in connections if c["connection"] in chosen] if picked \
        else list(connections)
    if window:
        utc = bool(getattr(args, "utc", False))
        since = args.since.resolve(first_ts, utc) if args.since is not None else None
        until = args.until.resolve(first_ts, utc) if args.until is not None else None
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        rows = [c for c in rows if c["ts_end"] >= lo and c["ts_start"] <= hi]
    return rows


def _id_range(ids: list[int]) -> str:
    if not ids:
        return "no WebSocket connection"
    return f"connection {ids[0]}" if len(ids) == 1 else f"connections {ids[0]}–{ids[-1]}"


def first_pass(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """Connection rows and violation rows (without messages) of the capture."""
    from wsanalyze.analysis import CaptureRun
    from wsanalyze.pipeline import Options

    run = CaptureRun(path, Options(tables=frozenset(("connection", "violation"))))
    connections: list[dict[str, Any]] = []
    violations: list[dict[str, Any]] = []
    for table, row in run:
        (connections if table == "connection" else violations).append(row)
    return connections, violations, run


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def error(message: str) -> None:
    print(f"wsanalyze: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from wsanalyze.export import Flow, export
    from wsanalyze.output.streams import STDOUT_NAME, OutputError
    from wsanalyze.sources.records import CaptureError

    cli_args.resolve_capture(args.parser, args)
    to_stdout = args.output == "-"
    if not to_stdout and _same_file(args.capture, args.output):
        args.parser.error(f"-o {args.output} is the capture itself: choose another file")
    if to_stdout and sys.stdout.isatty():
        args.parser.error("will not write a binary capture to a terminal: redirect "
                          "standard output or give -o FILE")
    try:
        connections, violations, capture = first_pass(args.capture)
    except CaptureError as exc:
        error(str(exc))
        return 1
    if not capture.packets and capture.stopped:
        error(f"{capture.path}: {capture.stopped}")
        return 1
    try:
        rows = choose(args, connections, violations, capture.first_ts)
    except SelectionError as exc:
        error(str(exc))
        return 2
    comment = (f"wsanalyze export of {args.capture}: connection(s) "
               + ", ".join(str(r["connection"]) for r in rows))
    flows = [Flow.of(r) for r in rows]
    if to_stdout:
        sys.stdout.flush()
        if sys.__stdout__ is None:
            raise OutputError(STDOUT_NAME, "no standard output")
        stream = cast(IO[bytes], sys.__stdout__.buffer)
        try:
            writer = export(args.capture, flows, stream, comment=comment)
            stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            from wsanalyze.output.streams import silence_stdout

            silence_stdout()
            raise OutputError(STDOUT_NAME, exc) from None
    else:
        try:
            with open(args.output, "wb") as out:
                writer = export(args.capture, flows, out, comment=comment)
        except OSError as exc:
            error(f"cannot write {args.output}: {exc.strerror or exc}")
            return 1
        except CaptureError as exc:  # the capture changed between the two passes
            error(str(exc))
            return 1
    if not args.quiet:
        for warning in capture.warnings:
            print(f"wsanalyze: warning: {warning}", file=sys.stderr)
        if not rows:
            print("wsanalyze: warning: no connection matched; the export holds no packet",
                  file=sys.stderr)
        print(f"wsanalyze: wrote {writer.packets} packets of {len(rows)} connection(s) to "
              f"{STDOUT_NAME if to_stdout else args.output}", file=sys.stderr)
    return 0
