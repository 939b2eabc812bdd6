"""Helpers for the batch tests: generated captures, a pcap splitter, a real Dask
cluster on loopback, and comparing a batch dataset with ``analyze()``."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tests.pcaptools import read_capture, write_capture
from wsanalyze.batch.tasks import FILE_SHIFT, SHARD_SHIFT

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
PY = sys.executable
TABLES = ("connections", "messages", "frames", "violations")
SAMPLES = sorted(str(p) for p in (REPO / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))

SORT = {
    "connections": ["connection"],
    "messages": ["connection", "direction", "index"],
    "frames": ["connection", "direction", "index"],
    "violations": ["connection", "packet", "rule", "message"],
}
ATTR = {
    "connections": "connections",
    "messages": "messages",
    "frames": "frames",
    "violations": "violations",
}


def _generator(script: str, path: Path, connections: int, messages: int, seed: int) -> None:
    subprocess.run(
        [PY, str(REPO / "benchmarks" / script), str(path), "--connections", str(connections),
         "--messages", str(messages), "--seed", str(seed)],
        check=True, capture_output=True, env=ENV,
    )


def generate(path: Path, *, connections: int, messages: int, seed: int) -> Path:
    """A benchmarks/generate.py capture (deflate with context takeover, fragments)."""
    _generator("generate.py", path, connections, messages, seed)
    return path


def generate_tls(path: Path, *, connections: int, messages: int, seed: int) -> tuple[Path, Path]:
    """A benchmarks/generate_tls.py capture (generate.py traffic inside TLS 1.3) and
    its NSS key log."""
    _generator("generate_tls.py", path, connections, messages, seed)
    return path, path.with_name(path.name + ".keys.txt")


def tls_capture(folder: Path) -> tuple[str, str]:
    """8 connections of generate.py traffic inside TLS 1.3, and its key log."""
    path, keys = generate_tls(folder / "wss.pcap", connections=8, messages=12, seed=5)
    return str(path), str(keys)


def split_capture(path: Path, parts: int, out_dir: Path) -> list[tuple[Path, int]]:
    """Cut a capture into ``parts`` files at packet boundaries (equal packet counts);
    returns each file with the number of packets before it."""
    cap = read_capture(path)
    n = len(cap.records)
    size = math.ceil(n / parts)
    files = []
    for i in range(parts):
        chunk = cap.records[i * size : (i + 1) * size]
        dest = out_dir / f"part{i}.pcap"
        write_capture(dest, chunk, fmt="pcap", nanosecond=cap.nanosecond, snaplen=cap.snaplen)
        files.append((dest, i * size))
    return files


def _value(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_value(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def rows(df: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """Rows as plain Python values (None for every kind of missing)."""
    return [{c: _value(r[c]) for c in columns} for r in df[columns].to_dict("records")]


def id_map(dataset_conns: pd.DataFrame, ref_conns: pd.DataFrame) -> dict[int, int]:
    """Dataset connection id → analyze() id, matched on (client, server, ts_start)."""
    def keyed(df: pd.DataFrame) -> list[tuple[tuple[Any, Any, Any], int]]:
        cols = (df["client"], df["server"], df["ts_start"], df["connection"])
        return [((c, s, t), int(i)) for c, s, t, i in zip(*cols, strict=True)]

    ref = dict(keyed(ref_conns))
    assert len(ref) == len(ref_conns)
    mapping = {conn: ref[key] for key, conn in keyed(dataset_conns)}
    assert len(set(mapping.values())) == len(mapping)
    return mapping


def assert_same_as_analyze(
    tables: dict[str, pd.DataFrame], capture: str, ref: Any
) -> dict[str, int]:
    """The dataset rows of ``capture`` equal ``ref`` (an AnalysisResult) row for row,
    per table, ids remapped; returns the row counts compared."""
    mine = {t: df[df["capture"] == capture] for t, df in tables.items()}
    mapping = id_map(mine["connections"], ref.connections)
    counts = {}
    for table, df in mine.items():
        expected = getattr(ref, ATTR[table])
        columns = [c for c in df.columns if c != "capture"]
        got = df.assign(connection=df["connection"].map(mapping))
        got_rows = rows(got.sort_values(SORT[table], kind="stable"), columns)
        want_rows = rows(expected.sort_values(SORT[table], kind="stable"), columns)
        assert got_rows == want_rows, f"{table} of {capture} differ"
        counts[table] = len(got_rows)
    return counts


def tables_of(dataset: Any) -> dict[str, pd.DataFrame]:
    return {t: dataset.to_pandas(t) for t in TABLES}


def shards_used(connections: pd.DataFrame) -> set[int]:
    """The shards whose tasks wrote these connections (from their dataset ids)."""
    mask = (1 << (FILE_SHIFT - SHARD_SHIFT)) - 1
    return {int(c) >> SHARD_SHIFT & mask for c in connections["connection"]}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``wsanalyze batch ARGS`` in a subprocess."""
    return subprocess.run([PY, "-m", "wsanalyze", "batch", *args], capture_output=True,
                          text=True, env=ENV, timeout=300, cwd=REPO)


@contextmanager
def local_client(workers: int) -> Iterator[Any]:
    """A Client of a LocalCluster of ``workers`` processes on 127.0.0.1."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                     dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                     ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def dask_cluster(workers: int, log_dir: Path) -> Iterator[tuple[str, Any, dict[str, int]]]:
    """A real ``dask scheduler`` and ``workers`` ``dask worker`` processes on
    127.0.0.1; yields (address, a connected Client, worker address → pid)."""
    from distributed import Client

    dask = str(Path(PY).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        log = open(log_dir / "scheduler.log", "wb")  # noqa: SIM115 (closed below)
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [
                    dask,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                    "--dashboard-address",
                    ":0",
                ],
                env=ENV,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        for i in range(workers):
            log = open(log_dir / f"worker{i}.log", "wb")  # noqa: SIM115
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=ENV,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        # Client() retries the connection until the scheduler listens.
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
            pids = client.run(os.getpid)
            yield address, client, pids
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
