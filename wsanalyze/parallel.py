"""``--jobs N``: decode connections in N worker processes, merge deterministically.

Connections are split into N shards by flow hash (:func:`wsanalyze.tracker.shard_of`).
Two engines feed the shards:

* ``reader`` (the default of the pure-Python build): one reader process reads the
  records, parses the headers and numbers conversations once, and ships each
  segment to the decoder process of its shard (:mod:`wsanalyze.shards`);
* ``replay`` (the default of the compiled build): each of the N workers reads and
  parses the whole capture (packet numbers must agree) and decodes only its shard.

Either way the workers send their tracker items, tagged with the packet that
caused them, to this process, which merges them in packet order and feeds one
:class:`~wsanalyze.sequencer.Sequencer` — the same code the single-process run
uses — so ids, rows and their order are identical.
"""

from __future__ import annotations

import heapq
import multiprocessing as mp
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, Literal

from wsanalyze import shards
from wsanalyze import tracker as _tracker
from wsanalyze.pipeline import FINISH, decode
from wsanalyze.sequencer import Record, Sequencer
from wsanalyze.shards import Tagged
from wsanalyze.sources.capture import open_capture
from wsanalyze.tracker import Options, Tracker

Engine = Literal["reader", "replay"]
ENGINES: tuple[Engine, ...] = ("reader", "replay")
ENGINE_ENV = "WSANALYZE_JOBS_ENGINE"
"""Environment variable choosing the engine (for benchmarks and tests)."""
_BATCH = 256
"""Packets' worth of items per message to the parent (fewer, larger pickles)."""


class WorkerError(RuntimeError):
    """A worker process failed; the message says why."""


def default_engine() -> Engine:
    """``$WSANALYZE_JOBS_ENGINE`` if set, else the faster engine for the running build.

    Measured on 2 cores (benchmarks/README.md, "--jobs with the compiled build"):
    with pure Python, reading and parsing are a large share of the work and the
    reader engine wins (1.53× against 1.4×); the compiled build makes parsing so
    cheap that pickling every segment to the decoders costs more than every worker
    parsing the whole capture, and replay wins (1.50–1.57× against 1.2–1.5×)."""
    name = os.environ.get(ENGINE_ENV)
    if name == "replay":
        return "replay"
    if name == "reader":
        return "reader"
    compiled = not (_tracker.__file__ or "").endswith(".py")
    return "replay" if compiled else "reader"


def _replay_worker(path: str, options: Options, shard: int, jobs: int,
                   conn: Connection) -> None:
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
            batch.extend(shards.finish_groups(items))
        conn.send(batch)
        conn.send(shards.done(tracker, reader.stopped))
    except BaseException as exc:  # reported to the parent, which fails cleanly
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class ParallelRun:
    """Iterate for records; afterwards ``packets``, ``first_ts``, ``last_ts``,
    ``notes`` and ``stopped`` describe the capture."""

    def __init__(self, path: str, options: Options, jobs: int,
                 engine: Engine | None = None) -> None:
        self.path = path
        self.options = options
        self.jobs = jobs
        self.engine: Engine = engine or default_engine()
        self.packets = 0
        self.streams: dict[int, int] = {}
        """Connection id → tcp.stream (see Sequencer.streams)."""
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.notes: list[str] = []
        self.stopped: str | None = None
        self._facts: Connection | None = None
        """The pipe the capture's facts come from (the reader's, or worker 0's)."""

    def __iter__(self) -> Iterator[Record]:
        ctx = mp.get_context("fork" if os.name == "posix" else "spawn")
        procs: list[Any] = []
        pipes: list[Connection] = []
        try:
            if self.engine == "reader":
                pipes = self._start_reader(ctx, procs)
            else:
                pipes = self._start_replay(ctx, procs)
            sequencer = Sequencer(self.options.tables)
            sequencer.streams = self.streams  # filled as connections get ids
            feed = sequencer.feed
            streams = [self._stream(i, pipe) for i, pipe in enumerate(pipes)]
            for _, items in heapq.merge(*streams, key=lambda entry: entry[0]):
                if items:  # a watermark has none
                    out = feed(items)
                    if out:
                        yield from out
            if self.engine == "reader":
                self._take_facts(self._recv_facts())
            yield from sequencer.finish()
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
                proc.join()
            for pipe in pipes:
                pipe.close()
            if self._facts is not None:
                self._facts.close()

    def _start_replay(self, ctx: Any, procs: list[Any]) -> list[Connection]:
        pipes = []
        for shard in range(self.jobs):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_replay_worker, args=(self.path, self.options, shard,
                                                            self.jobs, send), daemon=True)
            proc.start()
            send.close()
            pipes.append(recv)
            procs.append(proc)
        return pipes

    def _start_reader(self, ctx: Any, procs: list[Any]) -> list[Connection]:
        inputs = [ctx.Pipe(duplex=False) for _ in range(self.jobs)]
        senders = [send for _, send in inputs]
        pipes = []
        for shard, (recv_in, _) in enumerate(inputs):
            recv, send = ctx.Pipe(duplex=False)
            # A decoder closes the reader's ends it inherits, so that it sees EOF
            # if the reader dies.
            proc = ctx.Process(target=shards.decoder, daemon=True, args=(
                self.options, shard, self.jobs, recv_in, send, senders))
            proc.start()
            send.close()
            recv_in.close()
            pipes.append(recv)
            procs.append(proc)
        self._facts, facts_send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=shards.reader, daemon=True, args=(
            self.path, self.options, senders, facts_send, pipes))
        proc.start()
        facts_send.close()
        for send in senders:
            send.close()
        procs.append(proc)
        return pipes

    def _recv_facts(self) -> tuple[Any, ...]:
        assert self._facts is not None
        try:
            msg: tuple[Any, ...] = self._facts.recv()
        except EOFError:
            raise WorkerError("the reader process ended without a result") from None
        if msg[0] == "error":
            raise WorkerError(f"the reader process failed: {msg[1]}")
        return msg

    def _take_facts(self, msg: tuple[Any, ...]) -> None:
        _, self.packets, self.first_ts, self.last_ts, self.notes, self.stopped = msg

    def _stream(self, index: int, pipe: Connection) -> Iterator[Tagged]:
        while True:
            try:
                msg = pipe.recv()
            except EOFError:
                self._reader_failed()
                raise WorkerError(f"worker {index} ended without a result") from None
            if isinstance(msg, list):
                yield from msg
                continue
            if msg[0] == "error":
                self._reader_failed()
                raise WorkerError(f"worker {index} failed: {msg[1]}")
            if index == 0 and self.engine == "replay":
                self._take_facts(msg)
            return

    def _reader_failed(self) -> None:
        """A decoder failed: if the reader's failure is why, say that instead."""
        if self._facts is not None and self._facts.poll(5):
            self._recv_facts()
