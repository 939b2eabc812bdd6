"""``--jobs N``: both engines (reader process + decoders, and every worker
replaying the capture) give the single process's output byte for byte."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from wsanalyze.parallel import ENGINE_ENV, ENGINES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_generate_jobs",
                                                  ROOT / "benchmarks" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str, engine: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(ENGINE_ENV, None)
    if engine is not None:
        env[ENGINE_ENV] = engine
    return subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A busy capture (40 connections at once), a skewed one (a single connection:
    one decoder gets every segment, the others none) and a truncated one."""
    gen = _generator()
    tmp = tmp_path_factory.mktemp("jobs")
    busy, skewed, cut = tmp / "busy.pcap", tmp / "skewed.pcap", tmp / "cut.pcap"
    gen.generate(busy, seed=5, concurrency=40, messages=30)
    gen.generate(skewed, seed=6, concurrency=1, messages=600)
    data = busy.read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])  # ends inside a record
    return {"busy": busy, "skewed": skewed, "cut": cut}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["busy", "skewed", "cut"])
def test_engines_match_one_process(engine: str, name: str, captures: dict[str, Path]) -> None:
    path = str(captures[name])
    for table in ("messages", "frames"):  # messages: payloads, enough to fill the pipes
        one = run(table, path, "--format", "jsonl")
        assert one.returncode == 0, one.stderr
        for jobs in ("2", "3"):
            many = run(table, path, "--format", "jsonl", "--jobs", jobs, engine=engine)
            assert (many.returncode, many.stdout, many.stderr) == (0, one.stdout, one.stderr)
    summary = run("summary", path, "-j", "2", engine=engine)
    assert summary.stdout == run("summary", path).stdout
    if name == "skewed":
        assert "1 WebSocket connection(s)" in summary.stdout
    if name == "cut":  # where reading stopped is told, once, as in one process
        assert summary.stdout.count("is cut short") == 1, summary.stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_on_samples(engine: str) -> None:
    for sample in ("mixed.pcapng", "websockets-deflate.pcap", "ipv6-sll2.pcap"):
        path = str(SAMPLES / sample)
        one = run("messages", path, "--format", "jsonl")
        two = run("messages", path, "--format", "jsonl", "-j", "2", engine=engine)
        assert (two.returncode, two.stdout) == (0, one.stdout) and one.stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_report_an_unreadable_capture(engine: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))  # a header, then nothing readable
    one = run("messages", str(bad))
    two = run("messages", str(bad), "-j", "2", engine=engine)
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)


@pytest.mark.parametrize("engine", ENGINES)
def test_engines_report_bad_timestamps(engine: str, tmp_path: Path) -> None:
    """Times no calendar holds: the capture note once, and a row on each
    connection's first such packet — the reader notes, the decoders make rows."""
    from tests.test_timestamps import retimed_sample

    path = str(retimed_sample(tmp_path / "far.pcapng", tsoffset=2**40))
    one = run("violations", path, "--format", "jsonl")
    assert "capture.bad-timestamp" in one.stdout
    assert "packet 1 has a timestamp outside the calendar" in one.stderr
    for jobs in ("2", "3"):
        many = run("violations", path, "--format", "jsonl", "-j", jobs, engine=engine)
        assert (many.returncode, many.stdout, many.stderr) == (0, one.stdout, one.stderr)


def test_default_engine_follows_the_build() -> None:
    """Unset, the engine is the one measured faster for the running build
    (benchmarks/README.md): replay when the tracker is compiled, else the reader."""
    from wsanalyze import parallel, tracker

    compiled = not tracker.__file__.endswith(".py")
    env = {k: v for k, v in os.environ.items() if k != ENGINE_ENV}
    code = "from wsanalyze import parallel; print(parallel.default_engine())"
    for setting, expected in ((None, "replay" if compiled else "reader"),
                              ("reader", "reader"), ("replay", "replay")):
        child = dict(env) if setting is None else {**env, ENGINE_ENV: setting}
        out = subprocess.run([sys.executable, "-c", code], env=child, capture_output=True,
                             text=True, check=True).stdout
        assert out.strip() == expected, (setting, out)
    assert parallel.default_engine() in parallel.ENGINES
