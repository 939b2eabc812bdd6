"""The analysis pipeline in one process: packets in, table records out.

:class:`Analyzer` is fed :class:`~wsanalyze.sources.RawPacket` records (by the
offline reader, the live sniffer or a test) and returns the records of the
four tables of OUTPUTS.md as plain dicts.  It does no I/O: a
:class:`~wsanalyze.tracker.Tracker` decodes, a
:class:`~wsanalyze.sequencer.Sequencer` orders (``--jobs`` runs several trackers
in other processes in front of the same sequencer, see :mod:`wsanalyze.parallel`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from wsanalyze.sequencer import Record, Sequencer
from wsanalyze.sources.records import RawPacket
from wsanalyze.tracker import TABLES, Item, Options, Tracker

__all__ = ["FINISH", "TABLES", "Analyzer", "Options", "Record", "decode", "run"]


class Analyzer:
    """Feed packets, get records; call :meth:`finish` at the end of the capture."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.tracker = Tracker(self.options)
        self.sequencer = Sequencer(self.options.tables)

    @property
    def packets(self) -> int:
        return self.tracker.packets

    @property
    def streams(self) -> dict[int, int]:
        """Connection id → tcp.stream, filled as connections get ids."""
        return self.sequencer.streams

    @property
    def first_ts(self) -> float | None:
        return self.tracker.first_ts

    @property
    def last_ts(self) -> float | None:
        return self.tracker.last_ts

    def feed(self, pkt: RawPacket) -> list[Record]:
        items = self.tracker.feed(pkt)
        return self.sequencer.feed(items) if items else []

    def finish(self) -> list[Record]:
        out = self.sequencer.feed(self.tracker.finish())
        out.extend(self.sequencer.finish())
        return out

    def notes(self) -> list[str]:
        """Capture-level remarks (skipped packets) for the user."""
        return self.tracker.notes()


FINISH = float("inf")
"""The tag :func:`decode` gives the items of the end of the capture."""


def decode(packets: Iterable[RawPacket], tracker: Tracker) -> Iterator[tuple[float, list[Item]]]:
    """The one packet loop: each packet's tracker items, tagged with its number, then
    the items of the connections still open at the end, tagged :data:`FINISH`.
    Used by :func:`run` (one process) and by each ``--jobs`` worker."""
    # tracker.feed(pkt), not a bound method kept in a local: compiled, the former is
    # a direct native call, the latter a generic call that parses its arguments.
    for pkt in packets:
        items = tracker.feed(pkt)
        if items:
            yield pkt.number, items
    yield FINISH, tracker.finish()


def run(packets: Iterable[RawPacket], options: Options | None = None, *,
        analyzer: Analyzer | None = None) -> Iterator[Record]:
    """Drive an :class:`Analyzer` (a new one with ``options`` unless given) over
    ``packets``, yielding records as they complete."""
    analyzer = analyzer or Analyzer(options)
    sequencer = analyzer.sequencer  # called directly, as in decode()
    for _, items in decode(packets, analyzer.tracker):
        out = sequencer.feed(items)
        if out:
            yield from out
    yield from analyzer.sequencer.finish()
