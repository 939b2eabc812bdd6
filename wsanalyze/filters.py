"""Record filters shared by the commands: ``--connection``, ``--type``, ``--grep``...

:func:`add_filter_arguments` adds the options to a subcommand's parser;
:meth:`RecordFilter.from_args` builds the filter from the parsed arguments and
:meth:`RecordFilter.keep` decides one ``(table, row)`` record at a time, so a
command applies it while streaming and a filtered output costs no more memory
than an unfiltered one.

A filter constrains only the tables that have what it looks at (``--type`` the
messages and frames, ``--rule`` the violations, ...); rows of other tables pass.
:meth:`RecordFilter.check_table` tells a one-table command that an option does
not apply to its table (a usage error).  A row without the value a filter asks
for (a violation with no direction, say) does not match it.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wsanalyze.where import Expression, WhereError

TYPES = ("text", "binary", "close", "ping", "pong", "continuation")
SEVERITIES = ("error", "warning", "info")
_OPCODE_TYPES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}

# Which tables each option looks at.
APPLIES: dict[str, frozenset[str]] = {
    "connection": frozenset(("connection", "message", "frame", "violation")),
    "stream": frozenset(("connection", "message", "frame", "violation")),
    "direction": frozenset(("message", "frame", "violation")),
    "type": frozenset(("message", "frame")),
    "grep": frozenset(("message", "violation", "connection")),
    "time": frozenset(("connection", "message", "frame", "violation")),
    "rule": frozenset(("violation",)),
    "severity": frozenset(("violation",)),
    "min_length": frozenset(("message", "frame")),
    "where": frozenset(("connection", "message", "frame", "violation")),
}
_OPTION_NAMES = {"connection": "--connection", "stream": "--stream",
                 "direction": "--direction", "type": "--type", "grep": "--grep",
                 "time": "--since/--until", "rule": "--rule", "severity": "--severity",
                 "min_length": "--min-length", "where": "--where"}
_CONNECTION_TEXT = ("client", "server", "host", "path", "origin", "user_agent",
                    "subprotocol", "extensions")

# A plain number below this is seconds from the capture start, above it an epoch.
_EPOCH_FROM = 1e8


def _int_list(text: str) -> frozenset[int]:
    try:
        values = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of whole numbers (example: 0,3)") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers, 0 or more")
    return values


def _choices(allowed: Iterable[str]) -> Callable[[str], frozenset[str]]:
    allowed = tuple(allowed)

    def parse(text: str) -> frozenset[str]:
        values = frozenset(p.strip().lower() for p in text.split(",") if p.strip())
        wrong = sorted(v for v in values if v not in allowed
                       and not re.fullmatch(r"opcode-0x[0-9a-f]", v))
        if wrong or not values:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose from {', '.join(allowed)} (comma-separated)")
        return values
    return parse


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression ({exc})") \
            from None


def _where(text: str) -> Expression:
    try:
        return Expression(text)
    except WhereError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class TimeBound:
    """``--since``/``--until``: absolute (epoch, or a date/time) or relative to the
    capture's first packet (a plain number of seconds)."""

    text: str
    epoch: float | None = None
    offset: float | None = None
    clock: tuple[int, int, int, int] | None = None
    """A time of day without a date, on the day of the capture's first packet."""
    moment: datetime | None = None

    def resolve(self, start: float | None, utc: bool) -> float | None:
        """Seconds since the epoch, given the capture start (None: not known yet)."""
        if self.epoch is not None:
            return self.epoch
        if self.offset is not None:
            return None if start is None else start + self.offset
        tz = _zone(utc)
        if self.moment is not None:
            moment = self.moment if self.moment.tzinfo or tz is None else \
                self.moment.replace(tzinfo=tz)
            return moment.timestamp()  # a naive moment is local time (DST included)
        if start is None or self.clock is None:
            return None
        h, m, s, us = self.clock
        day = datetime.fromtimestamp(start, tz)
        return day.replace(hour=h, minute=m, second=s, microsecond=us).timestamp()


def _zone(utc: bool) -> Any:
    """UTC, or None for local time (naive datetimes are local in Python)."""
    from datetime import UTC

    return UTC if utc else None


def parse_time_bound(text: str) -> TimeBound:
    t = text.strip()
    try:
        number = float(t)
    except ValueError:
        pass
    else:
        if number != number or abs(number) == float("inf"):
            raise argparse.ArgumentTypeError(f"{text!r} is not a time")
        return TimeBound(text, epoch=number) if number >= _EPOCH_FROM else \
            TimeBound(text, offset=number)
    clock = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?", t)
    if clock:
        h, m, s, frac = clock.groups()
        if int(h) < 24 and int(m) < 60 and int(s or 0) < 60:
            return TimeBound(text, clock=(int(h), int(m), int(s or 0),
                                          int((frac or "0").ljust(6, "0"))))
    try:
        moment = datetime.fromisoformat(t.replace("Z", "+00:00") if t.endswith("Z") else t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: give seconds from the capture start (2.5), an epoch "
            "(1700000000.25), a time of day (14:03:07.250) or a date and time "
            "(2026-12-02T14:03:07, local unless -u or a zone is given)") from None
    return TimeBound(text, moment=moment)


def add_filter_arguments(parser: argparse.ArgumentParser, *,
                         connection_required: bool = False) -> None:
    """Add the record filter options to ``parser`` in a "filters" group."""
    g = parser.add_argument_group(
        "filters", "Keep only matching rows; several options must all match.  Applied while "
        "streaming.  Lists are comma-separated.")
    which = g.add_mutually_exclusive_group(required=connection_required)
    which.add_argument("--connection", "--conn", type=_int_list, metavar="N[,M]",
                       help="connection id(s), as in `wsanalyze connections`")
    which.add_argument("--stream", type=_int_list, metavar="K[,L]",
                       help="Wireshark's tcp.stream number(s)")
    g.add_argument("--direction", choices=("c2s", "s2c"),
                   help="c2s (client to server) or s2c")
    g.add_argument("--type", type=_choices(TYPES), metavar="TYPE[,TYPE]",
                   help=f"message or frame type: {', '.join(TYPES)}, opcode-0xN")
    g.add_argument("--grep", type=_regex, metavar="REGEX",
                   help="regular expression searched in message text (binary payloads as "
                        "hex), violation rule and message, connection endpoints/host/path")
    g.add_argument("--since", type=parse_time_bound, metavar="TIME",
                   help="from TIME on: seconds from the capture start (2.5), an epoch, a "
                        "time of day (14:03:07) or an ISO date and time")
    g.add_argument("--until", type=parse_time_bound, metavar="TIME",
                   help="up to TIME (included); same forms as --since")
    g.add_argument("--rule", type=lambda t: tuple(p.strip() for p in t.split(",") if p.strip()),
                   metavar="ID[,ID]", help="violation rule id(s); * wildcards (deflate.*)")
    g.add_argument("--severity", type=_choices(SEVERITIES), metavar="SEV[,SEV]",
                   help="violation severity: error, warning, info")
    g.add_argument("--min-length", type=int, metavar="BYTES",
                   help="messages (decoded length) and frames (payload length) of at least "
                        "BYTES")
    g.add_argument("--where", type=_where, metavar="EXPR",
                   help="expression over the columns (docs/columns.md), e.g. "
                        "\"length > 1000 and compressed\" or \"close_code not in (1000, 1001)\"")


def _row_type(table: str, row: dict[str, Any]) -> str | None:
    if table == "message":
        return str(row["type"])
    opcode = int(row["opcode"])
    return _OPCODE_TYPES.get(opcode, f"opcode-0x{opcode:x}")


def _row_time(table: str, row: dict[str, Any]) -> tuple[float | None, float | None]:
    if table == "connection":
        return row.get("ts_start"), row.get("ts_end")
    ts = row.get("ts")
    return ts, ts


def _grep_text(table: str, row: dict[str, Any]) -> list[str]:
    if table == "message":
        if row.get("text") is not None:
            return [row["text"]]
        parts = [bytes(row.get("payload") or b"").hex()]
        if row.get("close_reason"):
            parts.append(row["close_reason"])
        return parts
    if table == "violation":
        return [row["rule"], row["message"]]
    return [str(row[k]) for k in _CONNECTION_TEXT if row.get(k) is not None]


@dataclass
class RecordFilter:
    """Which records to keep.  Every field left at its default keeps everything."""

    connections: frozenset[int] | None = None
    streams: frozenset[int] | None = None
    direction: str | None = None
    types: frozenset[str] | None = None
    grep: re.Pattern[str] | None = None
    since: TimeBound | None = None
    until: TimeBound | None = None
    rules: tuple[str, ...] | None = None
    severities: frozenset[str] | None = None
    min_length: int | None = None
    where: Expression | None = None
    utc: bool = False
    capture_start: Callable[[], float | None] = field(default=lambda: None)
    """Gives the capture's first packet time (for relative --since/--until)."""
    stream_of: dict[int, int] = field(default_factory=dict)
    """connection id → tcp.stream, for rows that do not carry ``tcp_stream``."""
    _bounds: tuple[float | None, float | None] | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace,
                  capture_start: Callable[[], float | None] = lambda: None) -> RecordFilter:
        return cls(connections=getattr(args, "connection", None),
                   streams=getattr(args, "stream", None),
                   direction=getattr(args, "direction", None),
                   types=getattr(args, "type", None), grep=getattr(args, "grep", None),
                   since=getattr(args, "since", None), until=getattr(args, "until", None),
                   rules=getattr(args, "rule", None),
                   severities=getattr(args, "severity", None),
                   min_length=getattr(args, "min_length", None),
                   where=getattr(args, "where", None), utc=bool(getattr(args, "utc", False)),
                   capture_start=capture_start)

    def active(self) -> list[str]:
        """The options in use (keys of :data:`APPLIES`)."""
        used = {"connection": self.connections, "stream": self.streams,
                "direction": self.direction, "type": self.types, "grep": self.grep,
                "time": self.since or self.until, "rule": self.rules,
                "severity": self.severities, "min_length": self.min_length,
                "where": self.where}
        return [k for k, v in used.items() if v is not None]

    def check_stream(self) -> str | None:
        """An error message when ``--stream`` is used but connections have no
        ``tcp_stream`` column (and no :attr:`stream_of` map is filled)."""
        from wsanalyze.output.schema import column_names

        if self.streams is not None and "tcp_stream" not in column_names("connection"):
            return "--stream needs the tcp_stream column: use --connection"
        return None

    def check_table(self, table: str, columns: Iterable[str]) -> str | None:
        """An error message when an option in use cannot apply to ``table``."""
        problem = self.check_stream()
        if problem:
            return problem
        for key in self.active():
            if table not in APPLIES[key]:
                return f"{_OPTION_NAMES[key]} does not apply to the {table}s table"
        if self.where is not None:
            return self.where.check(columns, table)
        return None

    def keep(self, table: str, row: dict[str, Any]) -> bool:
        """True when ``row`` of ``table`` passes every option in use."""
        if self.connections is not None and row["connection"] not in self.connections:
            return False
        if self.streams is not None:
            stream = row.get("tcp_stream", self.stream_of.get(row["connection"]))
            if stream not in self.streams:
                return False
        if self.direction is not None and table != "connection" \
                and row.get("direction") != self.direction:
            return False
        if self.types is not None and table in ("message", "frame") \
                and _row_type(table, row) not in self.types:
            return False
        if self.min_length is not None and table in ("message", "frame") \
                and row["length" if table == "message" else "payload_length"] < self.min_length:
            return False
        if table == "violation" and not self._keep_violation(row):
            return False
        if (self.since is not None or self.until is not None) and not self._in_window(table,
                                                                                        row):
            return False
        if self.grep is not None and table != "frame" \
                and not any(self.grep.search(t) for t in _grep_text(table, row)):
            return False
        return self.where is None or self.where.matches(row)

    def _keep_violation(self, row: dict[str, Any]) -> bool:
        if self.severities is not None and row["severity"] not in self.severities:
            return False
        return self.rules is None or any(fnmatch.fnmatchcase(row["rule"], pattern)
                                         for pattern in self.rules)

    def _window(self) -> tuple[float | None, float | None]:
        if self._bounds is not None:
            return self._bounds
        start = self.capture_start()
        bounds = (None if self.since is None else self.since.resolve(start, self.utc),
                  None if self.until is None else self.until.resolve(start, self.utc))
        if start is not None:
            self._bounds = bounds  # fixed once the capture start is known
        return bounds

    def _in_window(self, table: str, row: dict[str, Any]) -> bool:
        first, last = _row_time(table, row)
        since, until = self._window()
        if since is not None and (last is None or last < since):
            return False
        return until is None or (first is not None and first <= until)

