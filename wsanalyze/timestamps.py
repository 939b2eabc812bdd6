"""Capture timestamps as dates, for any value a capture file can hold.

pcapng lets a timestamp be almost anything: a 64-bit count in units of
``if_tsresol`` (10^-v or 2^-v seconds, v up to 127) plus an ``if_tsoffset`` of
±2^63 seconds.  ``datetime`` stops at year 9999 and pandas' ``datetime64[ns]``
at 2262, so a crafted or corrupt file can carry a time no calendar holds.  Such
a time must never stop the analysis: it is shown as the raw epoch number,
and the tracker reports the first packet that carries one
(``capture.bad-timestamp``).  Relative times and sorting keep using the float.
"""

from __future__ import annotations

from datetime import UTC, datetime

TS_MIN = -9_223_372_036.0
"""Earliest timestamp (seconds since the Unix epoch) shown as a date: just inside
``datetime64[ns]`` (1677-09-21), the narrowest calendar an output uses."""
TS_MAX = 9_223_372_036.0
"""Latest timestamp shown as a date (2262-04-11)."""


def in_calendar(ts: float) -> bool:
    """True when ``ts`` can be shown as a date everywhere (False for NaN too)."""
    return TS_MIN <= ts <= TS_MAX


def to_datetime(ts: float, *, local: bool = False) -> datetime | None:
    """``ts`` as an aware datetime (UTC, or the local zone), or None when no
    calendar of ours holds it."""
    if not in_calendar(ts):
        return None
    try:
        moment = datetime.fromtimestamp(ts, UTC)
        return moment.astimezone() if local else moment
    except (OverflowError, OSError, ValueError):
        # Platform time_t or zone database limits: treat like out of range.
        return None


def raw_epoch(ts: float) -> str:
    """How an out-of-calendar time is shown: the epoch number, marked as such."""
    return f"epoch {ts:.9g}"


def format_time(ts: float | None, pattern: str, *, local: bool = False) -> str:
    """``ts`` formatted with ``strftime(pattern)``; ``-`` for None and
    :func:`raw_epoch` for a time outside the calendar.  Never raises."""
    if ts is None:
        return "-"
    moment = to_datetime(ts, local=local)
    if moment is None:
        return raw_epoch(ts)
    return moment.strftime(pattern)
