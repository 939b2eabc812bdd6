"""``--jobs N``: decode connections in N worker processes, merge deterministically.

Each worker reads the whole capture (packet numbers must agree) but decodes
only the connections whose flow hash falls in its shard
(:func:`wsanalyze.tracker.shard_of`).  Workers send their tracker items, tagged
with the packet that caused them, to this process, which merges them in packet
order and feeds one :class:`~wsanalyze.sequencer.Sequencer` — the same code the
single-process run uses — so ids, rows and their order are identical.
"""

from __future__ import annotations

import heapq
import multiprocessing as mp
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection

from wsanalyze.pipeline import FINISH, decode
from wsanalyze.sequencer import Record, Sequencer
from wsanalyze.sources.capture import open_capture
from wsanalyze.tracker import Item, Options, Tracker

_BATCH = 256
"""Packets' worth of items per message to the parent (fewer, larger pickles)."""
Tagged = tuple[tuple[float, int], list[Item]]
"""Items with their merge key: (packet number or FINISH, connection key)."""


class WorkerError(RuntimeError):
    """A worker process failed; the message says why."""


def _worker(path: str, options: Options, shard: int, jobs: int, conn: Connection) -> None:
    try:
        reader = open_capture(path)
        tracker = Tracker(options, shard=shard, jobs=jobs)
        batch: list[Tagged] = []
        for number, items in decode(reader, tracker):
            if number != FINISH:
                batch.append(((number, 0), items))
                if len(batch) >= _BATCH:
                    conn.send(batch)
                    batch = []
                continue
            # Connections still open at the end, in first-packet order across workers.
            group: list[Item] = []
            for item in items:
                if group and group[0].key != item.key:
                    batch.append(((FINISH, group[0].key), group))
                    group = []
                group.append(item)
            if group:
                batch.append(((FINISH, group[0].key), group))
        conn.send(batch)
        conn.send(("done", tracker.packets, tracker.first_ts, tracker.last_ts,
                   tracker.notes(), reader.stopped))
    except BaseException as exc:  # reported to the parent, which fails cleanly
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class ParallelRun:
    """Iterate for records; afterwards ``packets``, ``first_ts``, ``last_ts``,
    ``notes`` and ``stopped`` describe the capture (from worker 0)."""

    def __init__(self, path: str, options: Options, jobs: int) -> None:
        self.path = path
        self.options = options
        self.jobs = jobs
        self.packets = 0
        self.streams: dict[int, int] = {}
        """Connection id → tcp.stream (see Sequencer.streams)."""
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.notes: list[str] = []
        self.stopped: str | None = None

    def __iter__(self) -> Iterator[Record]:
        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        pipes = []
        procs = []
        for shard in range(self.jobs):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(self.path, self.options, shard,  # type: ignore[attr-defined]
                                                     self.jobs, send), daemon=True)
            proc.start()
            send.close()
            pipes.append(recv)
            procs.append(proc)
        try:
            sequencer = Sequencer(self.options.tables)
            sequencer.streams = self.streams  # filled as connections get ids
            feed = sequencer.feed
            streams = [self._stream(i, pipe) for i, pipe in enumerate(pipes)]
            for (packet, _), items in heapq.merge(*streams, key=lambda entry: entry[0]):
                if packet != FINISH:
                    self.packets = max(self.packets, int(packet))
                out = feed(items)
                if out:
                    yield from out
            yield from sequencer.finish()
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join()
            for pipe in pipes:
                pipe.close()

    def _stream(self, index: int, pipe: Connection) -> Iterator[Tagged]:
        while True:
            try:
                msg = pipe.recv()
            except EOFError:
                raise WorkerError(f"worker {index} ended without a result") from None
            if isinstance(msg, list):
                yield from msg
                continue
            if msg[0] == "error":
                raise WorkerError(f"worker {index} failed: {msg[1]}")
            if index == 0:
                _, self.packets, self.first_ts, self.last_ts, self.notes, self.stopped = msg
            return
