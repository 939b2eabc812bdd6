"""Violation rows in the order of OUTPUTS.md: by packet, then as found; rows
without a packet after the last row of their connection.

The pipeline reports a violation when it is found, which is not always in
packet order (a connection's rows wait until it is known to be WebSocket; an
unanswered Ping is known only at the end).  :func:`in_packet_order` sorts a
stream of rows with bounded memory: up to :data:`RUN` rows are sorted in memory,
larger outputs spill sorted runs to temporary files and merge them.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

RUN = 100_000
"""Rows sorted in memory at a time."""

Row = dict[str, Any]
_Key = tuple[int, int, int]


def in_packet_order(rows: Iterable[Row]) -> Iterator[Row]:
    """``rows`` (violation rows) sorted by packet, stably."""
    last_packet: dict[Any, int] = {}
    run: list[tuple[_Key, Row]] = []
    without: list[tuple[int, Row]] = []
    files: list[IO[bytes]] = []
    for seq, row in enumerate(rows):
        packet = row["packet"]
        if packet is None:
            without.append((seq, row))
            continue
        conn = row["connection"]
        if packet > last_packet.get(conn, -1):
            last_packet[conn] = packet
        run.append(((packet, 0, seq), row))
        if len(run) >= RUN:
            files.append(_spill(run))
            run = []
    run.sort(key=lambda entry: entry[0])
    late = sorted((((last_packet.get(r["connection"], 0), 1, seq), r) for seq, r in without),
                  key=lambda entry: entry[0])
    streams = [iter(run), iter(late), *(_read(f) for f in files)]
    for _, row in heapq.merge(*streams, key=lambda entry: entry[0]):
        yield row


def _spill(run: list[tuple[_Key, Row]]) -> IO[bytes]:
    run.sort(key=lambda entry: entry[0])
    f = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _read once merged)
    for entry in run:
        pickle.dump(entry, f, protocol=pickle.HIGHEST_PROTOCOL)
    f.seek(0)
    return f


def _read(f: IO[bytes]) -> Iterator[tuple[_Key, Row]]:
    with f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return
