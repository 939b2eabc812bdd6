"""Time display as tshark's ``-t``: absolute, absolute with date, relative, delta, epoch.

``a`` and ``ad`` show local time (or UTC with ``utc=True``); the zone is part of
the column header (:meth:`TimeFormat.header`).  Formatting never raises: a
timestamp that ``datetime`` cannot represent is printed as the raw epoch number.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from wsanalyze.timestamps import raw_epoch, to_datetime

MODES = ("a", "ad", "r", "d", "e")
MODE_HELP = ("time display, as tshark -t: a absolute time of day (default), ad absolute "
             "with date, r seconds since the first packet, d delta since the previous row "
             "shown, e seconds since the epoch")


class TimeFormat:
    """Formats timestamps for one output; ``d`` (delta) remembers the last one."""

    def __init__(self, mode: str = "a", utc: bool = False,
                 start: float | None = None) -> None:
        self.mode = mode
        self.utc = utc
        self.start = start
        """Time of the capture's first packet (for ``r``); may be set later."""
        self.previous: float | None = None

    @property
    def zone(self) -> tzinfo | None:
        return UTC if self.utc else None

    def zone_name(self) -> str:
        if self.utc:
            return "UTC"
        return datetime.now().astimezone().tzname() or "local"

    def header(self) -> str:
        if self.mode in ("a", "ad"):
            return f"time {self.zone_name()}"
        return {"r": "time rel", "d": "delta", "e": "epoch"}[self.mode]

    def width(self) -> int:
        return {"a": 12, "ad": 23, "r": 11, "d": 10, "e": 17}[self.mode]

    def format(self, ts: float | None) -> str:
        if ts is None or ts != ts:
            return "-"
        mode = self.mode
        if mode == "e":
            return f"{ts:.6f}"
        if mode == "r":
            return "-" if self.start is None else f"{ts - self.start:.6f}"
        if mode == "d":
            previous, self.previous = self.previous, ts
            return f"{0.0 if previous is None else ts - previous:.6f}"
        moment = to_datetime(ts, local=not self.utc)
        if moment is None:  # outside the calendar (wsanalyze/timestamps.py)
            return raw_epoch(ts)
        text = moment.strftime("%Y-%m-%d %H:%M:%S.%f" if mode == "ad" else "%H:%M:%S.%f")
        return text[:-3]
