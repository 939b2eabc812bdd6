"""The batch dataset as other tools see it, and ``--tls-keylog``.

The dataset is read the ways the README shows (pandas, Dask, Arrow, DuckDB: the
README's own code is run) while a part is being written into it; ``wss://``
captures decrypt with the key log as ``analyze()`` does, and a run with another
key log redoes the tasks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wsanalyze
from tests.batchtools import (
    REPO,
    SAMPLES,
    TABLES,
    assert_same_as_analyze,
    cli,
    local_client,
    shards_used,
    tables_of,
    tls_capture,
)
from wsanalyze.batch.parts import PartWriter


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_client(2) as c:
        yield c


@pytest.fixture(scope="module")
def wss(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return tls_capture(tmp_path_factory.mktemp("tls"))


def readme_reading_example() -> str:
    """The README's code block that reads the dataset, exactly as written there."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Many captures / a cluster"):]
    match = re.search(r"Read the dataset with pandas.*?```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_readers_of_the_folders_as_in_the_readme(
    client: Any, wss: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, keys = wss
    ds = wsanalyze.batch([*SAMPLES, tls], tmp_path / "dataset", client=client, shards=2,
                         tls_keylog=keys)
    assert ds.failed == []
    expected = tables_of(ds)
    assert all(ds.rows[t] == len(expected[t]) > 0 for t in TABLES)
    # A run adding to the dataset: a part half written in every table folder.
    writers = [PartWriter(t, str(tmp_path / "dataset" / f"{t}s" / "part-f09999-s000of001.parquet"))
               for t in ("connection", "message", "frame", "violation")]
    assert len(list((tmp_path / "dataset").glob("*/.part-f09999-*.tmp"))) == 4
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == [
        "_manifest.json", "_tasks", *sorted(TABLES)]
    try:
        namespace: dict[str, Any] = {}
        monkeypatch.chdir(tmp_path)
        exec(readme_reading_example(), namespace)
    finally:
        for writer in writers:
            writer.abort()
    assert len(namespace["messages"]) == ds.rows["messages"]
    assert sorted(namespace["messages"]["payload"]) == sorted(expected["messages"]["payload"])
    violations = namespace["violations"].compute()
    assert sorted(violations["rule"]) == sorted(expected["violations"]["rule"])
    assert namespace["frames"].count_rows() == ds.rows["frames"]
    by_capture = expected["messages"].groupby("capture")["length"]
    want = [(c, n, s) for c, n, s in zip(by_capture.size().index, by_capture.size(),
                                          by_capture.sum(), strict=True)]
    got = [(r.capture, r.messages, r.bytes) for r in namespace["per_capture"].itertuples()]
    assert got == want
    assert tls in {c for c, _, _ in got} and len(got) > 2
    # The same through Arrow's dataset API on the connections folder.
    import pyarrow.dataset

    conns = pyarrow.dataset.dataset(tmp_path / "dataset" / "connections", format="parquet")
    assert conns.count_rows() == ds.rows["connections"]
    assert "capture" in conns.schema.names


def test_tls_keylog_decrypts_and_another_key_log_redoes_the_tasks(
    client: Any, wss: tuple[str, str], tmp_path: Path
) -> None:
    path, keys = wss
    decrypted = wsanalyze.analyze(path, tls_keylog=keys)
    sealed = wsanalyze.analyze(path)
    assert decrypted.connections["decrypted"].all() and len(decrypted.messages) > 0
    assert len(sealed.messages) == 0
    out = tmp_path / "ds"
    data = Path(keys).read_bytes()
    runs = [(keys, decrypted, False), (None, sealed, False), (keys, decrypted, False),
            (keys, decrypted, True)]
    for keylog, ref, resumed in runs:
        ds = wsanalyze.batch([path], out, client=client, shards=2, tls_keylog=keylog)
        assert [(t["status"], t["resumed"]) for t in ds.tasks] == [("done", resumed)] * 2
        tables = tables_of(ds)
        assert_same_as_analyze(tables, path, ref)
        assert shards_used(tables["connections"]) == {0, 1}
        if keylog is None:
            # Without the key log: the no-key rows, nothing decoded.
            assert ds.manifest["tls_keylog"] == []
            assert tables["violations"]["rule"].tolist() == ["capture.tls-no-key"] * 8
            assert not tables["connections"]["decrypted"].any()
            assert ds.rows["messages"] == 0
        else:
            assert ds.manifest["tls_keylog"] == [
                {"path": keys, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
            assert "capture.tls-no-key" not in set(tables["violations"]["rule"])
            assert ds.rows["messages"] == len(decrypted.messages)


def test_unreadable_key_log_is_one_line_before_any_task(tmp_path: Path) -> None:
    binary = tmp_path / "keys.bin"
    binary.write_bytes(b"\x00\x01CLIENT_RANDOM")
    missing = tmp_path / "missing.txt"
    for keylog, why in ((missing, "cannot read key log {}: No such file or directory"),
                        (binary, "key log {} is not a text file (an NSS key log, "
                                 "SSLKEYLOGFILE, is expected)")):
        proc = cli(SAMPLES[0], "-o", str(tmp_path / "ds"), "--tls-keylog", str(keylog))
        assert proc.returncode == 1
        assert proc.stderr == f"wsanalyze: error: {why.format(keylog)}\n"
        assert not (tmp_path / "ds").exists()
