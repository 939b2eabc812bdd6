"""What a Dask worker runs: decode one flow-hash shard of one capture (or of a
rotated series of captures, in order) and write its Parquet parts.

A task is a :class:`TaskSpec` (plain data, pickled to the worker) and
:func:`run_task`, a pure function of it and the files it names.  Every task
reads its whole input but decodes only the connections of its shard
(:func:`wsanalyze.tracker.shard_of`), as ``--jobs`` does, through the same
:class:`~wsanalyze.tracker.Tracker` and :class:`~wsanalyze.sequencer.Sequencer`.

Connection ids are made unique across the dataset from the task's place in it:
``file index · 2**40 + shard · 2**32 + n``, where ``n`` numbers the shard's
WebSocket connections from 0 in order of first packet (with ``--continuous`` the
file index is 0: the files are one capture).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wsanalyze.batch.parts import PartWriter
from wsanalyze.sequencer import Record, Sequencer
from wsanalyze.sources.capture import open_capture
from wsanalyze.tracker import Options, Tracker

if TYPE_CHECKING:
    from wsanalyze.tls.keylog import KeyLog

TABLE_DIRS = {"connection": "connections", "message": "messages", "frame": "frames",
              "violation": "violations"}
"""Table name → folder of the dataset."""
FILE_SHIFT = 40
SHARD_SHIFT = 32


@dataclass(frozen=True)
class TaskSpec:
    """One unit of work: which files (in order), which shard, where to write."""

    name: str
    inputs: tuple[tuple[int, str], ...]
    """(file index in the dataset, path or fsspec URL), read in this order."""
    shard: int
    shards: int
    out: str
    tables: tuple[str, ...]
    payloads: str = "full"
    preview_bytes: int = 64
    key: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Inputs' fingerprints and options, stored with the result to decide on resume."""

    def part_path(self, table: str) -> str:
        return os.path.join(self.out, TABLE_DIRS[table], f"part-{self.name}.parquet")

    def marker_path(self) -> str:
        return os.path.join(self.out, "_tasks", f"{self.name}.json")


class TaskFailed(RuntimeError):
    """A task could not run (unreadable capture...); ``str`` is one line."""


@contextlib.contextmanager
def _local(path: str) -> Iterator[str]:
    """A local file name for ``path``; fsspec URLs are copied to a temporary file."""
    if "://" not in path or path.startswith("file://"):
        yield path.removeprefix("file://")
        return
    import fsspec  # installed with dask

    fd, tmp = tempfile.mkstemp(prefix="wsanalyze-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as dst, fsspec.open(path, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield tmp
    finally:
        os.remove(tmp)


class _Emitter:
    """Turns sequencer records into dataset rows and hands them to part writers."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.writers = {t: PartWriter(t, spec.part_path(t)) for t in spec.tables}
        base = 0 if len(spec.inputs) > 1 else spec.inputs[0][0]
        self.id_base = (base << FILE_SHIFT) + (spec.shard << SHARD_SHIFT)
        self.keep = spec.preview_bytes if spec.payloads == "preview" else 0
        # Where each file starts, in packets of the whole series and in time.
        self.first_packet: list[int] = []
        self.first_ts: list[float] = []
        self.paths: list[str] = []

    def start_file(self, path: str, first_packet: int) -> None:
        self.paths.append(path)
        self.first_packet.append(first_packet)

    def emit(self, records: list[Record]) -> None:
        for table, row in records:
            writer = self.writers.get(table)
            if writer is None:
                continue
            row["connection"] += self.id_base
            if len(self.paths) == 1:
                row["capture"] = self.paths[0]
            elif row.get("packet") is not None:
                # Back from the series' packet numbers to the file's own.
                i = max(0, bisect.bisect_right(self.first_packet, row["packet"] - 1) - 1)
                row["packet"] -= self.first_packet[i]
                row["capture"] = self.paths[i]
            else:
                ts = row["ts_start"] if table == "connection" else row["ts"]
                i = max(0, bisect.bisect_right(self.first_ts, ts) - 1)
                row["capture"] = self.paths[min(i, len(self.paths) - 1)]
            if table == "message" and self.spec.payloads != "full":
                self._cut(row)
            writer.append(row)

    def _cut(self, row: dict[str, Any]) -> None:
        keep = self.keep
        if len(row["payload"]) > keep:
            row["payload"] = row["payload"][:keep]
            row["truncated"] = True
            if row["text"] is not None:
                row["text"] = row["text"][:keep] if keep else None

    def commit(self) -> dict[str, int]:
        for writer in self.writers.values():
            writer.commit()
        return {TABLE_DIRS[t]: w.rows for t, w in self.writers.items()}

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()


def run_task(spec: TaskSpec, keylog: KeyLog | None = None) -> dict[str, Any]:
    """Decode the task's shard with the TLS secrets of ``keylog``, write its parts
    and its completion marker; return the marker's content (row counts per table,
    packets read, warnings)."""
    started, cpu = time.perf_counter(), time.process_time()
    options = Options(tables=frozenset(spec.tables), tls_keylog=keylog)
    tracker = Tracker(options, shard=spec.shard, jobs=spec.shards)
    sequencer = Sequencer(options.tables)
    emitter = _Emitter(spec)
    warnings: list[str] = []
    offset = 0
    try:
        for _index, path in spec.inputs:
            emitter.start_file(path, offset)
            offset = _read_file(path, offset, tracker, sequencer, emitter, warnings)
        emitter.emit(sequencer.feed(tracker.finish()))
        emitter.emit(sequencer.finish())
        warnings.extend(tracker.notes())
        rows = emitter.commit()
    except BaseException:
        emitter.abort()
        raise
    result = {"task": spec.name, "status": "done", "rows": rows, "packets": tracker.packets,
              "warnings": warnings, "wall_s": round(time.perf_counter() - started, 3),
              "cpu_s": round(time.process_time() - cpu, 3), "key": spec.key}
    _write_json(spec.marker_path(), result)
    return result


def _read_file(path: str, offset: int, tracker: Tracker, sequencer: Sequencer,
               emitter: _Emitter, warnings: list[str]) -> int:
    """Feed one file's packets, numbered after ``offset``; the new offset."""
    from wsanalyze.sources.records import CaptureError

    feed = tracker.feed
    count = 0
    last = 0
    with _local(path) as local:
        try:
            reader = open_capture(local)
        except CaptureError as exc:
            raise TaskFailed(str(exc)) from None
        try:
            for pkt in reader:
                count += 1
                last = pkt.number
                if count == 1:
                    emitter.first_ts.append(pkt.ts)
                items = feed(replace(pkt, number=pkt.number + offset) if offset else pkt)
                if items:
                    emitter.emit(sequencer.feed(items))
        finally:
            reader.close()
    if count == 0:
        # Keep first_ts aligned with the file list.
        emitter.first_ts.append(emitter.first_ts[-1] if emitter.first_ts else 0.0)
    if reader.stopped:
        warnings.append(f"{path}: {reader.stopped}")
    return offset + last


def _write_json(path: str, data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
