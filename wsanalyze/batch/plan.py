"""Planning a batch run: inputs and their fingerprints, the task list, resume,
and the dataset's ``_manifest.json``.

A task is skipped on a re-run when its completion marker (``_tasks/NAME.json``,
written by the worker after its parts) holds the same key: the same inputs
(path, size, SHA-256 of the first MiB), the same options and the same TLS key
logs (path, size, SHA-256 of the whole file).  The key logs are not options: a
run with another key log redoes the tasks in place (more connections decrypted),
where other options would mix incompatible parts and are refused.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from wsanalyze.batch.tasks import TABLE_DIRS, TaskSpec

if TYPE_CHECKING:
    from wsanalyze.tls.keylog import KeyLog

MANIFEST = "_manifest.json"
FORMAT = "wsanalyze-batch/1"
_MIB = 1 << 20
AUTO_SHARD_BYTES = 64 * _MIB
"""With fewer files than workers, a file is split into one shard per this many bytes
(at most one per worker): below it, re-reading the file costs more than it saves."""


class PlanError(Exception):
    """The run cannot start (unreadable input, incompatible dataset); one line."""


@dataclass(frozen=True)
class BatchOptions:
    """What a batch run produces; stored in the manifest, compared on resume."""

    tables: tuple[str, ...] = ("connection", "message", "frame", "violation")
    payloads: str = "full"
    preview_bytes: int = 64
    shards: int | None = None
    """Shards per file (with ``continuous``: in all); None chooses from sizes."""
    continuous: bool = False
    order: str = "given"
    """With ``continuous``: ``"given"`` or ``"time"`` (by first packet)."""


def _open(path: str) -> Any:
    if "://" in path and not path.startswith("file://"):
        import fsspec

        return fsspec.open(path, "rb").open()
    return open(path.removeprefix("file://"), "rb")


def fingerprint(path: str) -> dict[str, Any]:
    """Path, size and SHA-256 of the first MiB: enough to tell a rotated file from
    its successor without reading terabytes."""
    try:
        with _open(path) as fh:
            head = fh.read(_MIB)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from None
    return {"path": path, "size": size, "sha256_first_mib": hashlib.sha256(head).hexdigest()}


def read_keylogs(paths: list[str]) -> tuple[KeyLog | None, list[dict[str, Any]]]:
    """The TLS key logs, parsed here (an unreadable one is a PlanError before any
    task starts), and their fingerprints for the manifest and the tasks' keys."""
    if not paths:
        return None, []
    from wsanalyze.tls.keylog import KeyLogError, load_keylogs

    try:
        keylog = load_keylogs(paths)
    except KeyLogError as exc:
        raise PlanError(str(exc)) from None
    prints = []
    for path in dict.fromkeys(paths):
        with open(path, "rb") as fh:  # readable: load_keylogs just read it
            data = fh.read()
        prints.append({"path": path, "size": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()})
    return keylog, prints


def first_packet_ts(path: str) -> float:
    from wsanalyze.batch.tasks import _local
    from wsanalyze.sources.capture import open_capture
    from wsanalyze.sources.records import CaptureError

    with _local(path) as local:
        try:
            with open_capture(local) as reader:
                for pkt in reader:
                    return pkt.ts
        except CaptureError as exc:
            raise PlanError(str(exc)) from None
    return math.inf


def read_manifest(out: str) -> dict[str, Any] | None:
    path = os.path.join(out, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise PlanError(f"{path} is not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanError(f"{path} is not a wsanalyze batch manifest")
    return data


@dataclass
class Plan:
    out: str
    options: BatchOptions
    inputs: list[dict[str, Any]]
    """Fingerprints with ``index`` (stable across resumed runs) and ``shards``."""
    tasks: list[TaskSpec]
    done: dict[str, dict[str, Any]]
    """Task name → marker of tasks already complete (skipped)."""
    kept_inputs: list[dict[str, Any]] = field(default_factory=list)
    kept_tasks: list[dict[str, Any]] = field(default_factory=list)
    """Inputs of earlier runs not given this time, and their manifest entries."""
    keylog: KeyLog | None = None
    """The TLS secrets every task gets (``--tls-keylog``)."""
    keylog_files: list[dict[str, Any]] = field(default_factory=list)
    """Fingerprints of the key log files (part of every task's key)."""


def _options(options: BatchOptions) -> dict[str, Any]:
    opts = asdict(options)
    opts["tables"] = list(options.tables)
    return opts


def check_options(out: str, options: BatchOptions) -> dict[str, Any] | None:
    """The manifest already in ``out``, if any; PlanError if made with other options
    (its parts would mix with ours)."""
    old = read_manifest(out)
    if old is not None and old.get("options") != _options(options):
        raise PlanError(f"{out} holds a dataset made with other options "
                        f"({json.dumps(old.get('options'))}); write to another folder")
    return old


def read_inputs(paths: list[str], out: str, options: BatchOptions) -> list[dict[str, Any]]:
    """Fingerprint the inputs and give each its index in the dataset (kept from an
    earlier run of the same dataset); fails before any cluster is started."""
    if not paths:
        raise PlanError("no capture given")
    old = check_options(out, options)
    old_inputs = {i["path"]: i for i in (old or {}).get("inputs", [])}
    next_index = max((i["index"] for i in old_inputs.values()), default=-1) + 1
    inputs = []
    for path in dict.fromkeys(paths):  # a file given twice is read once
        fp = fingerprint(path)
        prev = old_inputs.get(path)
        if prev is not None:
            fp["index"] = prev["index"]
            if all(prev.get(k) == fp[k] for k in ("size", "sha256_first_mib")):
                # The same tasks again, whatever the number of workers now.
                fp["shards"] = prev.get("shards")
        else:
            fp["index"] = next_index
            next_index += 1
        inputs.append(fp)
    if options.continuous and options.order == "time":
        inputs.sort(key=lambda i: first_packet_ts(i["path"]))
    return inputs


def make_plan(inputs: list[dict[str, Any]], out: str, options: BatchOptions, workers: int,
              keylog: tuple[KeyLog | None, list[dict[str, Any]]] = (None, [])) -> Plan:
    """Lay out the tasks for ``workers`` and find those already done; ``keylog`` is
    what :func:`read_keylogs` returned."""
    key = {"options": _options(options), "tls_keylog": keylog[1]}
    tasks = _tasks(inputs, out, options, key, workers)
    done = {}
    for spec in tasks:
        marker = _marker(spec)
        if marker is not None:
            done[spec.name] = marker
    kept_inputs: list[dict[str, Any]] = []
    kept_tasks: list[dict[str, Any]] = []
    old = read_manifest(out)
    if old is not None and not options.continuous:
        # Files of earlier runs not given now stay in the dataset as they were.
        given = {i["index"] for i in inputs}
        kept_inputs = [i for i in old["inputs"] if i["index"] not in given]
        kept = {i["index"] for i in kept_inputs}
        kept_tasks = [t for t in old["tasks"] if t["inputs"][0] in kept]
    plan = Plan(out, options, inputs, tasks, done, kept_inputs, kept_tasks, *keylog)
    _remove_stale_parts(plan)
    return plan


def _remove_stale_parts(plan: Plan) -> None:
    """Parts and markers of all but the tasks kept as they are: of tasks not in the
    dataset any more (a changed file now split into other shards) and of those about
    to run (a changed file or key log, a task that died after some parts).  A reader
    of the folders would see them, and, should the task fail now, mix old rows in."""
    names = set(plan.done) | {t["name"] for t in plan.kept_tasks}
    for folder in (*TABLE_DIRS.values(), "_tasks"):
        for path in glob.glob(os.path.join(plan.out, folder, "*")):
            base = os.path.basename(path)
            name = base.removeprefix("part-").removesuffix(".parquet").removesuffix(".json")
            if base != name and name not in names:
                os.remove(path)


def _tasks(inputs: list[dict[str, Any]], out: str, options: BatchOptions,
           key: dict[str, Any], workers: int) -> list[TaskSpec]:
    common: dict[str, Any] = {"out": out, "tables": options.tables, "payloads": options.payloads,
              "preview_bytes": options.preview_bytes}
    fps = [{k: i[k] for k in ("path", "size", "sha256_first_mib")} for i in inputs]
    if options.continuous:
        n = (options.shards or next((i["shards"] for i in inputs if i.get("shards")), None)
             or max(1, workers))
        for i in inputs:
            i["shards"] = n
        files = tuple((i["index"], i["path"]) for i in inputs)
        return [TaskSpec(f"c-s{s:03d}of{n:03d}", files, s, n,
                         key={"inputs": fps, **key}, **common)
                for s in range(n)]
    tasks: list[TaskSpec] = []
    for i, fp in zip(inputs, fps, strict=True):
        n = options.shards or i.get("shards") or _auto_shards(i["size"], len(inputs), workers)
        i["shards"] = n
        tasks.extend(TaskSpec(f"f{i['index']:05d}-s{s:03d}of{n:03d}", ((i["index"], i["path"]),),
                              s, n, key={"inputs": [fp], **key}, **common)
                     for s in range(n))
    return tasks


def _auto_shards(size: int, files: int, workers: int) -> int:
    if files >= workers:
        return 1  # whole files keep every worker busy, and each file is read once
    return max(1, min(math.ceil(workers / files), math.ceil(size / AUTO_SHARD_BYTES)))


def _marker(spec: TaskSpec) -> dict[str, Any] | None:
    try:
        with open(spec.marker_path(), encoding="utf-8") as fh:
            marker = json.load(fh)
    except (OSError, ValueError):
        return None
    if marker.get("key") != spec.key:
        return None
    if not all(os.path.exists(spec.part_path(t)) for t in spec.tables):
        return None
    return marker


def remove_leftovers(out: str) -> None:
    """Temporary parts of attempts that died (a killed worker, an interrupted run)."""
    for folder in TABLE_DIRS.values():
        for tmp in glob.glob(os.path.join(out, folder, ".part-*.tmp")):
            os.remove(tmp)


def write_manifest(plan: Plan, results: dict[str, dict[str, Any]], version: str) -> str:
    """Write ``_manifest.json``; ``results`` maps task names to their marker (done)
    or ``{"status": "failed", "error": ...}``; tasks missing are ``pending``."""
    tasks: list[dict[str, Any]] = []
    totals = dict.fromkeys((TABLE_DIRS[t] for t in plan.options.tables), 0)
    for spec in plan.tasks:
        entry: dict[str, Any] = {"name": spec.name, "inputs": [i for i, _ in spec.inputs],
                                 "shard": spec.shard, "shards": spec.shards,
                                 "resumed": spec.name in plan.done}
        res = plan.done.get(spec.name) or results.get(spec.name) or {"status": "pending"}
        entry.update({k: v for k, v in res.items() if k not in ("key", "task")})
        if entry["status"] == "done":
            entry["parts"] = {TABLE_DIRS[t]: os.path.relpath(spec.part_path(t), plan.out)
                              for t in spec.tables}
            for table, rows in entry["rows"].items():
                totals[table] += rows
        tasks.append(entry)
    for entry in plan.kept_tasks:
        entry = {**entry, "resumed": True}
        if entry["status"] == "done":
            for table, rows in entry["rows"].items():
                totals[table] += rows
        tasks.append(entry)
    opts = _options(plan.options)
    manifest = {"format": FORMAT, "wsanalyze": version,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "options": opts, "inputs": plan.inputs + plan.kept_inputs,
                "tls_keylog": plan.keylog_files, "tasks": tasks,
                "rows": totals,
                "connection_id": "file index * 2**40 + shard * 2**32 + n (n: the shard's "
                                 "WebSocket connections from 0 by first packet; file index 0 "
                                 "with continuous)"}
    path = os.path.join(plan.out, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
    os.replace(tmp, path)
    return path
