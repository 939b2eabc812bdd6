"""``wsanalyze export CAPTURE -o out.pcapng (--connection N | --violations | --rule ID |
--since T --until T)``: the packets of chosen connections as a standalone capture.

Exit codes: 0 written, 1 the capture cannot be read or the output cannot be
written, 2 bad usage (no selection, unknown connection or rule, bad time).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

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

Times (--since/--until) are seconds from the capture's first packet (12.5), Unix
epoch seconds (1764662400.25) or ISO 8601 (2026-12-02T07:30:00+00:00).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write the packets of chosen connections to a "
                              "pcapng file", description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", metavar="CAPTURE", help="pcap or pcapng file (may be .gz)")
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="the pcapng file to write")
    add_selection(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no line on standard error")
    p.set_defaults(func=run)
    return p


def add_selection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("choosing connections")
    g.add_argument("--connection", type=int, action="append", metavar="N",
                   help="connection id (repeat for several)")
    g.add_argument("--violations", action="store_true",
                   help="connections with violations of severity error or warning")
    g.add_argument("--rule", action="append", metavar="ID", help="connections where rule ID "
                   "fired (repeat for several; `wsanalyze rules` lists them)")
    g.add_argument("--since", type=time_arg, metavar="T", help="connections active at or "
                   "after T")
    g.add_argument("--until", type=time_arg, metavar="T", help="connections active at or "
                   "before T")


def time_arg(text: str) -> tuple[str, float]:
    """("relative" | "absolute", seconds)."""
    try:
        value = float(text)
    except ValueError:
        try:
            return "absolute", datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a time (seconds from the capture start, Unix seconds "
                "or ISO 8601)") from None
    return ("absolute" if value >= 1e9 else "relative"), value


class SelectionError(Exception):
    """A choice that matches nothing that exists (usage error, exit 2)."""


def choose(args: argparse.Namespace, connections: list[dict[str, Any]],
           violations: list[dict[str, Any]], first_ts: float | None) -> list[dict[str, Any]]:
    """The connection rows chosen by ``args`` (see DESCRIPTION)."""
    from wsanalyze.rules import RULES

    ids = {c["connection"] for c in connections}
    chosen: set[int] = set()
    by_id = args.connection or []
    for n in by_id:
        if n not in ids:
            raise SelectionError(f"no connection {n} in the capture (it has "
                                 f"{_id_range(sorted(ids))})")
    chosen.update(by_id)
    for rule in args.rule or []:
        if rule not in RULES:
            raise SelectionError(f"unknown rule {rule!r} (`wsanalyze rules` lists them)")
        chosen.update(v["connection"] for v in violations if v["rule"] == rule)
    if args.violations:
        chosen.update(v["connection"] for v in violations if v["severity"] != "info")
    window = args.since is not None or args.until is not None
    if not (by_id or args.rule or args.violations or window):
        raise SelectionError("choose connections with --connection, --violations, --rule "
                             "or --since/--until")
    rows = [c for c in connections if c["connection"] in chosen] \
        if (by_id or args.rule or args.violations) else list(connections)
    if window:
        since = _absolute(args.since, first_ts, float("-inf"))
        until = _absolute(args.until, first_ts, float("inf"))
        rows = [c for c in rows if c["ts_end"] >= since and c["ts_start"] <= until]
    return rows


def _absolute(t: tuple[str, float] | None, first_ts: float | None, default: float) -> float:
    if t is None:
        return default
    kind, value = t
    return value + (first_ts or 0.0) if kind == "relative" else value


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


def error(message: str) -> None:
    print(f"wsanalyze: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from wsanalyze.export import Flow, export
    from wsanalyze.sources.records import CaptureError

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
    try:
        with open(args.output, "wb") as out:
            writer = export(args.capture, [Flow.of(r) for r in rows], out,
                            comment=f"wsanalyze export of {args.capture}: connection(s) "
                                    + ", ".join(str(r["connection"]) for r in rows))
    except OSError as exc:
        error(f"cannot write {args.output}: {exc.strerror or exc}")
        return 1
    if not args.quiet:
        for warning in capture.warnings:
            print(f"wsanalyze: warning: {warning}", file=sys.stderr)
        if not rows:
            print("wsanalyze: warning: no connection matched; the export holds no packet",
                  file=sys.stderr)
        print(f"wsanalyze: wrote {writer.packets} packets of {len(rows)} connection(s) to "
              f"{args.output}", file=sys.stderr)
    return 0
