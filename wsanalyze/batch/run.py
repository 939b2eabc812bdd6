"""Running a batch plan on Dask: a cluster of our own or the caller's client.

Tasks go to the cluster with ``client.map``; Dask reschedules the tasks of a
worker that dies and retries a task that raises (``retries``); a task that still
fails is recorded in the manifest while the others complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from wsanalyze.batch.dataset import Dataset
from wsanalyze.batch.plan import (
    BatchOptions,
    Plan,
    PlanError,
    make_plan,
    read_inputs,
    read_keylogs,
    remove_leftovers,
    write_manifest,
)
from wsanalyze.batch.tasks import run_task

Paths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A path or several (captures, key logs)."""
INSTALL_HINT = "pip install 'wsanalyze[cluster]'"


class MissingDask(ImportError):
    """dask.distributed is not installed; ``str`` says what to install."""


def require_dask() -> None:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise MissingDask(f"batch needs Dask and dask.distributed ({exc.name or 'dask'} cannot "
                          f"be imported): {INSTALL_HINT}") from None


@contextlib.contextmanager
def _client(client: Any, scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """The caller's client, one for ``scheduler``, or a LocalCluster closed at the end."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            own = Client(scheduler, timeout=30)
        except (OSError, ValueError) as exc:
            raise PlanError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from None
        with own:
            yield own
        return
    with (
        LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # The scheduler serves HTTP even without a dashboard: any free port.
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,  # task errors go to the manifest
        ) as cluster,
        Client(cluster) as own,
    ):
        yield own


def _workers(client: Any) -> int:
    info = client.scheduler_info()
    return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))


def run_plan(
    plan: Plan, client: Any, *, retries: int = 1, progress: bool = False
) -> dict[str, dict[str, Any]]:
    """Run the plan's pending tasks; task name → marker, or ``status: failed``."""
    from distributed import as_completed

    todo = [spec for spec in plan.tasks if spec.name not in plan.done]
    results: dict[str, dict[str, Any]] = {}
    if not todo:
        return results
    run_id = uuid.uuid4().hex[:8]
    # The key log goes to each worker once, not pickled into every task.
    keylog = client.scatter(plan.keylog, broadcast=True) if plan.keylog is not None else None
    futures = client.map(
        run_task,
        todo,
        keylog=keylog,
        key=[f"wsanalyze-{s.name}-{run_id}" for s in todo],
        retries=retries,
        pure=False,
    )
    names = {f.key: spec.name for f, spec in zip(futures, todo, strict=True)}
    if progress:
        from distributed import progress as progress_bar

        progress_bar(futures)
    for future in as_completed(futures):
        name = names[future.key]
        if future.status == "finished":
            results[name] = future.result()
        else:
            exc = future.exception()
            results[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return results


def batch(
    paths: Paths,
    out: str | os.PathLike[str],
    client: Any = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    tables: tuple[str, ...] = ("connection", "message", "frame", "violation"),
    payloads: str = "full",
    preview_bytes: int = 64,
    shards: int | None = None,
    continuous: bool = False,
    order: str = "given",
    retries: int = 1,
    progress: bool = False,
    tls_keylog: Paths | None = None,
) -> Dataset:
    """Analyse ``paths`` on Dask into the Parquet dataset ``out`` and return it.

    ``client`` is a ``distributed.Client`` to use (else one for ``scheduler``, else
    a LocalCluster of ``workers`` processes, default one per core, closed at the
    end).  Each (capture, flow-hash shard) is a task; ``shards`` per file defaults
    to 1 when there are at least as many files as workers, else one per 64 MiB.
    ``continuous`` reads the files, in the order given (``order="time"``: by first
    packet), as one capture cut by rotation.  Re-running resumes: completed tasks
    are skipped.  Tasks that failed after ``retries`` are in ``Dataset.failed``.
    ``tls_keylog`` (a path or several: NSS key logs) decrypts ``wss://`` as in
    ``analyze()``; it is read here and sent to the workers, and a re-run with
    another key log redoes the tasks.
    """
    require_dask()
    from wsanalyze import __version__

    out = os.fspath(out)
    files = _paths(paths)
    options = BatchOptions(tuple(tables), payloads, preview_bytes, shards, continuous, order)
    # Both fail before a cluster is started for nothing.
    keylog = read_keylogs(_paths(tls_keylog))
    inputs = read_inputs(files, out, options)
    os.makedirs(out, exist_ok=True)
    with _client(client, scheduler, workers) as cl:
        plan = make_plan(inputs, out, options, _workers(cl), keylog)
        remove_leftovers(out)
        write_manifest(plan, {}, __version__)  # indices and options, before any part
        results = run_plan(plan, cl, retries=retries, progress=progress)
    remove_leftovers(out)  # of attempts whose worker died; what readers of a folder skip
    write_manifest(plan, results, __version__)
    return Dataset(out)


def _paths(arg: Paths | None) -> list[str]:
    if arg is None:
        return []
    if isinstance(arg, str | os.PathLike):
        return [os.fspath(arg)]
    return [os.fspath(p) for p in arg]


def summary_line(dataset: Dataset) -> str:
    tasks = dataset.tasks
    resumed = sum(t["resumed"] for t in tasks)
    done = sum(t["status"] == "done" for t in tasks)
    rows = ", ".join(f"{n} {k}" for k, n in dataset.rows.items())
    return (
        f"{done}/{len(tasks)} tasks done ({resumed} resumed), {len(dataset.failed)} "
        f"failed; {rows} in {dataset.path}"
    )
