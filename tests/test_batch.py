"""``wsanalyze batch`` / ``wsanalyze.batch()`` on real Dask clusters on 127.0.0.1.

The dataset read back must equal ``analyze()`` of each capture, row for row, per
table (connection ids remapped), whatever the workers, shards, faults or resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import wsanalyze
from tests.batchtools import (
    ENV,
    PY,
    SAMPLES,
    SORT,
    TABLES,
    assert_same_as_analyze,
    cli,
    dask_cluster,
    generate,
    id_map,
    local_client,
    rows,
    shards_used,
    split_capture,
    tables_of,
    tls_capture,
)
from tests.pcaptools import read_capture


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("captures")
    generated = [
        generate(folder / f"gen{seed}.pcap", connections=6, messages=25, seed=seed)
        for seed in (1, 2)
    ]
    return SAMPLES + [str(p) for p in generated]


@pytest.fixture(scope="module")
def wss(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return tls_capture(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def refs(captures: list[str]) -> dict[str, Any]:
    return {path: wsanalyze.analyze(path) for path in captures}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_client(2) as c:
        yield c


@pytest.fixture(scope="module")
def local2(client: Any, captures: list[str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The dataset of the captures with 2 shards each, made on the LocalCluster."""
    return wsanalyze.batch(
        captures, tmp_path_factory.mktemp("local2") / "ds", client=client, shards=2
    )


def assert_all_equal(dataset: Any, captures: list[str], refs: dict[str, Any]) -> int:
    tables = tables_of(dataset)
    assert tables["connections"]["connection"].is_unique
    total = 0
    for path in captures:
        counts = assert_same_as_analyze(tables, path, refs[path])
        assert counts["messages"] == len(refs[path].messages)
        total += counts["messages"]
    assert len(tables["messages"]) == total  # no row of another capture, none twice
    return total


def test_two_workers_three_shards_equal_analyze(
    client: Any, captures: list[str], refs: dict[str, Any], tmp_path: Path
) -> None:
    ds = wsanalyze.batch(captures, tmp_path / "ds", client=client, shards=3)
    assert ds.failed == []
    assert len(ds.tasks) == 3 * len(captures)
    total = assert_all_equal(ds, captures, refs)
    assert total == sum(len(r.messages) for r in refs.values())
    assert ds.rows["messages"] == total
    conns = tables_of(ds)["connections"]
    for path in captures[-2:]:  # the generated captures: their connections in 3 shards
        assert shards_used(conns[conns["capture"] == path]) == {0, 1, 2}
    # The lazy dask tables read the same parts.
    lazy = ds.messages[["connection", "index", "payload"]].compute()
    assert len(lazy) == total
    assert sorted(lazy["payload"]) == sorted(tables_of(ds)["messages"]["payload"])
    assert ds.violations["rule"].compute().tolist() == tables_of(ds)["violations"]["rule"].tolist()
    # Manifest: inputs with size and checksum of the first MiB.
    manifest = json.loads((tmp_path / "ds" / "_manifest.json").read_text())
    for entry, path in zip(manifest["inputs"], captures, strict=True):
        data = Path(path).read_bytes()
        assert entry["path"] == path
        assert entry["size"] == len(data)
        assert entry["sha256_first_mib"] == hashlib.sha256(data[: 1 << 20]).hexdigest()
    assert {t["status"] for t in manifest["tasks"]} == {"done"}
    assert manifest["options"]["shards"] == 3


def test_one_worker_cli_two_shards_a_corrupt_capture_and_a_key_log(
    captures: list[str], refs: dict[str, Any], wss: tuple[str, str], tmp_path: Path
) -> None:
    tls, keys = wss
    captures = [*captures[:2], captures[-1], tls]
    refs = {**refs, tls: wsanalyze.analyze(tls, tls_keylog=keys)}
    assert refs[tls].connections["decrypted"].all()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture file at all\n" * 4)
    out = tmp_path / "ds"
    proc = cli(*captures, str(bad), "-o", str(out), "--workers", "1", "--shards", "2",
               "--tls-keylog", keys)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    index = len(captures)
    n = 2 * (index + 1)
    assert lines[0].startswith(
        f"wsanalyze: error: 2 of {n} tasks failed (first: "
        f"f{index:05d}-s000of002: TaskFailed: cannot read {bad}: not a pcap"
    )
    assert f"; {n - 2}/{n} tasks done (0 resumed), 2 failed; " in lines[0]
    ds = wsanalyze.batch.Dataset(out)
    assert [t["name"] for t in ds.failed] == [f"f{index:05d}-s000of002", f"f{index:05d}-s001of002"]
    assert all(t["inputs"] == [index] for t in ds.failed)
    assert all("not a pcap or pcapng file" in t["error"] for t in ds.failed)
    assert sum(t["status"] == "done" for t in ds.tasks) == n - 2
    assert_all_equal(ds, captures, refs)
    conns = ds.to_pandas("connections")
    for path in captures[-2:]:  # a generated capture, and the TLS one decrypted
        assert shards_used(conns[conns["capture"] == path]) == {0, 1}


def _executing(dask_worker: Any) -> list[str]:
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_real_cluster_same_dataset_and_a_killed_worker(local2: Any, tmp_path: Path) -> None:
    captures = [entry["path"] for entry in local2.manifest["inputs"]]
    paths = [
        str(generate(tmp_path / f"big{seed}.pcap", connections=15, messages=100, seed=seed))
        for seed in range(10, 14)
    ]
    refs = {p: wsanalyze.analyze(p) for p in paths}
    with dask_cluster(2, tmp_path) as (address, client, pids):
        # 1. The command on a real scheduler and workers gives the local dataset.
        proc = cli(
            *captures, "-o", str(tmp_path / "remote"), "--scheduler", address, "--shards", "2"
        )
        assert proc.returncode == 0, proc.stderr
        n = 2 * len(captures)
        assert proc.stderr.startswith(
            f"wsanalyze: batch: {n}/{n} tasks done (0 resumed), 0 failed;"
        )
        remote = wsanalyze.batch.Dataset(tmp_path / "remote")
        for table in TABLES:
            a, b = local2.to_pandas(table), remote.to_pandas(table)
            assert len(a) == len(b) == local2.rows[table]
            assert rows(a.sort_values([*SORT[table], "capture"]), list(a.columns)) == rows(
                b.sort_values([*SORT[table], "capture"]), list(b.columns)
            )

        # 2. A worker is killed while it runs a task: every row still comes exactly once.
        out = tmp_path / "killed"
        result: dict[str, Any] = {}
        runner = threading.Thread(
            target=lambda: result.update(ds=wsanalyze.batch(paths, out, client=client, shards=2))
        )
        runner.start()
        victim = None
        deadline = time.monotonic() + 120
        while victim is None and time.monotonic() < deadline and runner.is_alive():
            running = client.run(_executing)
            victim = next(
                (
                    addr
                    for addr, keys in running.items()
                    if any(k.startswith("wsanalyze-") for k in keys)
                ),
                None,
            )
        assert victim is not None, "no task ever ran"
        done_before = len(list((out / "_tasks").glob("*.json")))
        os.kill(pids[victim], signal.SIGKILL)
        runner.join(timeout=240)
        assert not runner.is_alive()
        assert done_before < 8
        assert list(client.scheduler_info()["workers"]) == [a for a in pids if a != victim]
    ds = result["ds"]
    assert ds.failed == []
    assert [t["status"] for t in ds.tasks] == ["done"] * 8
    assert not list(out.glob("*/.*.tmp"))  # the dead attempt's part is gone
    assert_all_equal(ds, paths, refs)


def test_resume_writes_only_missing_parts(client: Any, local2: Any, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    shutil.copytree(local2.path, out)
    first = wsanalyze.batch.Dataset(out)
    captures = [entry["path"] for entry in first.manifest["inputs"]]
    before = tables_of(first)
    names = [t["name"] for t in first.tasks]
    # An interrupted run: two tasks never finished, one died after a part.
    for name in names[:2]:
        (out / "_tasks" / f"{name}.json").unlink()
        for table in TABLES:
            (out / table / f"part-{name}.parquet").unlink()
    (out / "frames" / f"part-{names[2]}.parquet").unlink()
    (out / "messages" / f".part-{names[3]}.parquet.dead.tmp").write_bytes(b"half a part")
    kept = {
        p: (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in out.glob("*/part-*.parquet")
        if names[2] not in p.name
    }
    second = wsanalyze.batch(captures, out, client=client, shards=2)
    assert [t["name"] for t in second.tasks if not t["resumed"]] == names[:3]
    assert all(t["status"] == "done" for t in second.tasks)
    for path, stat in kept.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stat, path
    assert not list(out.glob("*/.*.tmp"))
    after = tables_of(second)
    for table in TABLES:
        assert rows(after[table], list(after[table].columns)) == rows(
            before[table], list(before[table].columns)
        )
    # A new file alone: added, every earlier task kept; the folders hold exactly
    # the dataset's parts (what pandas or DuckDB read).
    extra = generate(tmp_path / "extra.pcap", connections=3, messages=10, seed=77)
    third = wsanalyze.batch([str(extra)], out, client=client, shards=2)
    assert [t["name"] for t in third.tasks if not t["resumed"]] == [
        f"f{len(captures):05d}-s000of002", f"f{len(captures):05d}-s001of002"]
    extra_ref = wsanalyze.analyze(extra)
    assert third.rows["messages"] == second.rows["messages"] + len(extra_ref.messages)
    assert len(pd.read_parquet(out / "messages")) == third.rows["messages"]
    assert_same_as_analyze(tables_of(third), str(extra), extra_ref)
    # That file rewritten as garbage: its tasks fail, and its old rows leave the folders.
    extra.write_bytes(b"garbage, no longer a capture\n" * 100)
    fourth = wsanalyze.batch([str(extra)], out, client=client, shards=2)
    assert [t["name"] for t in fourth.failed] == [
        f"f{len(captures):05d}-s000of002", f"f{len(captures):05d}-s001of002"]
    assert fourth.rows["messages"] == second.rows["messages"]
    assert len(pd.read_parquet(out / "messages")) == second.rows["messages"]
    # Other options in the same folder: refused, nothing written.
    proc = cli(*captures, "-o", str(out), "--workers", "1", "--payloads", "none")
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        f"wsanalyze: error: {out} holds a dataset made with other options ("
    )


def test_continuous_rotated_files(client: Any, tmp_path: Path) -> None:
    whole = generate(tmp_path / "whole.pcap", connections=8, messages=40, seed=21)
    ref = wsanalyze.analyze(whole)
    assert ref.connections["deflate"].all()
    parts = split_capture(whole, 5, tmp_path)
    offsets = {str(p): first for p, first in parts}
    paths = [str(p) for p, _ in parts]
    ends = [first for _, first in parts[1:]] + [len(read_capture(whole).records)]
    counts = {p: end - offsets[p] for p, end in zip(paths, ends, strict=True)}
    # Every cut is inside connections that go on compressing messages with the
    # context of earlier ones (context takeover both ways), in both shards.
    takeover = ["deflate_client_no_context_takeover", "deflate_server_no_context_takeover"]
    assert not ref.connections[takeover].to_numpy().any()
    msgs = ref.messages
    live = {}
    for path, cut in list(offsets.items())[1:]:
        before = set(msgs.loc[msgs["packet"] <= cut, "connection"])
        after = set(msgs.loc[(msgs["packet"] > cut) & msgs["compressed"], "connection"])
        live[path] = len(before & after)
        assert live[path] >= 2, cut
    for order, given in (("given", paths), ("time", paths[::-1])):
        ds = wsanalyze.batch(
            given, tmp_path / f"cont-{order}", client=client, shards=2, continuous=True, order=order
        )
        assert ds.failed == []
        tables = tables_of(ds)
        mapping = id_map(tables["connections"], ref.connections)
        assert len(mapping) == len(ref.connections) == 8
        assert shards_used(tables["connections"]) == {0, 1}
        for table in TABLES:
            got = tables[table]
            got = got.assign(connection=got["connection"].map(mapping))
            if "packet" in got and len(got):
                # Packet numbers are the file's own: back to the uncut capture's.
                got = got.assign(packet=got["packet"] + got["capture"].map(offsets))
            columns = [c for c in got.columns if c != "capture"]
            want = getattr(ref, table)
            assert rows(got.sort_values(SORT[table]), columns) == rows(
                want.sort_values(SORT[table]), columns
            ), table
        # Messages carry the file their last packet is in.
        messages = tables["messages"]
        assert messages["capture"].nunique() == 5
        sizes = messages["capture"].map(counts)
        assert ((messages["packet"] >= 1) & (messages["packet"] <= sizes)).all()

    # Without --continuous each file is its own capture.
    ds = wsanalyze.batch(paths, tmp_path / "cut", client=client, shards=1)
    tables = tables_of(ds)
    violations = tables["violations"]
    mid = violations[violations["rule"] == "capture.mid-stream"]
    assert set(mid["capture"]) == set(paths[1:])
    for path, n in live.items():  # at least the connections cut there
        assert (mid["capture"] == path).sum() >= n, path
    truth = {(r.client, r.server, r.direction, bytes(r.payload)) for r in ref.messages.itertuples()}
    decoded = tables["messages"]
    decoded = decoded[decoded["complete"] & decoded["error"].isna()]
    assert len(decoded) > 0
    later = decoded[decoded["capture"] != paths[0]]
    assert len(later) > 0
    wrong = [
        r
        for r in decoded.itertuples()
        if (r.client, r.server, r.direction, bytes(r.payload)) not in truth
    ]
    assert wrong == []


def test_without_dask_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
        "from wsanalyze.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [PY, "-c", code, "batch", SAMPLES[0], "-o", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "wsanalyze: error: batch needs Dask and dask.distributed "
        "(dask.dataframe cannot be imported): "
        "pip install 'wsanalyze[cluster]'\n"
    )
    assert not (tmp_path / "ds").exists()


def test_payload_preview_and_a_subset_of_tables(client: Any, captures: list[str],
                                                 tmp_path: Path) -> None:
    path = captures[-1]
    ref = wsanalyze.analyze(path, payloads="preview", preview_bytes=8)
    url = f"simplecache::file://{path}"  # an fsspec URL: each task copies the file
    ds = wsanalyze.batch([url], tmp_path / "ds", client=client, shards=2,
                         tables=("message",), payloads="preview", preview_bytes=8)
    got = ds.to_pandas("messages")
    assert sorted(os.listdir(tmp_path / "ds")) == ["_manifest.json", "_tasks", "messages"]
    assert len(got) == len(ref.messages) > 0
    assert set(got["capture"]) == {url}
    assert got["payload"].map(len).max() == 8
    assert sorted(zip(got["text"].fillna(""), got["truncated"], strict=True)) == sorted(
        zip(ref.messages["text"].fillna(""), ref.messages["truncated"], strict=True))
    with pytest.raises(ValueError, match="the dataset has no connections table"):
        ds.to_pandas("connections")
