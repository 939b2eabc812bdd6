"""The atheris harnesses of fuzz/ run for a bounded time without findings.

Each harness runs in a subprocess for FUZZ_SECONDS (20 s by default; set
WSANALYZE_FUZZ_SECONDS to change it) with a fixed libFuzzer seed, seeded with
the corpora of fuzz/seeds.py; crash, timeout and out-of-memory files go to a
temporary directory.  A crash, an out-of-memory (RSS over fuzz.run.RSS_LIMIT_MB) or
a non-zero exit fails the test with the reproduction command; an input that only
exceeded the per-input time limit is reported (a warning in pytest's summary and a
line on stdout), not a failure, since a loaded machine makes inputs slow.  atheris is
required: without it these tests fail.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import warnings
from pathlib import Path

import pytest

from fuzz.run import HARNESSES, TIMEOUT_PER_INPUT, FuzzResult, run_harness

FUZZ_SECONDS = int(os.environ.get("WSANALYZE_FUZZ_SECONDS", "20"))
LIBFUZZER_SEED = 20240501


def _need_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.fail("atheris is not installed: `pip install atheris` (it is part of the "
                    "test dependencies; the fuzzing tests do not skip)", pytrace=False)


@pytest.fixture(scope="module")
def seed_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _need_atheris()
    from fuzz.seeds import build

    # build() also checks that every structured seed reads back as written.
    return build(tmp_path_factory.mktemp("fuzz-seeds"))


def test_seed_corpora_cover_the_samples_and_crafted_cases(seed_dirs: dict[str, Path]) -> None:
    names = {h: sorted(p.name for p in seed_dirs[h].iterdir()) for h in HARNESSES}
    samples = sorted(p.name for p in (Path(__file__).parent.parent / "samples").glob("*.pcap*"))
    assert len(samples) >= 6
    for sample in samples:
        assert any(n.startswith(sample) for n in names["capture"]), sample
        assert any(n.startswith(sample) for n in names["reassembly"]), sample
        assert any(n.startswith(sample) for n in names["decoder"]), sample
    assert any(n.startswith("crafted.pcapng") for n in names["capture"])
    assert any(n.startswith("crafted.pcap.gz") for n in names["capture"])
    assert any(n.startswith("bomb") for n in names["decoder"])
    assert any(n.startswith("reordered") for n in names["reassembly"])


@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzzer_finds_nothing(harness: str, seed_dirs: dict[str, Path], tmp_path: Path) -> None:
    result = run_harness(harness, seconds=FUZZ_SECONDS, seed=LIBFUZZER_SEED,
                         workdir=tmp_path, seeds=seed_dirs[harness])
    seeds = len(list(seed_dirs[harness].iterdir()))
    if result.slow:
        note = (f"{harness}: slow inputs (over {TIMEOUT_PER_INPUT} s each): "
                + ", ".join(p.name for p in result.slow))
        print(note)
        warnings.warn(note, stacklevel=1)
    if result.failed:
        repro = [f"python -m fuzz.fuzz_{harness} {shlex.quote(str(p))}"
                 for p in result.findings]
        tail = "\n".join(result.log.splitlines()[-60:])
        pytest.fail(f"{result.summary()}\nreproduce with: {'; '.join(repro) or '(no file)'}\n"
                    f"command: {shlex.join(result.command)}\n--- log tail ---\n{tail}",
                    pytrace=False)
    # It ran: the seeds at least (unless a slow input stopped it), and coverage was measured.
    assert result.executions >= (1 if result.slow else seeds), result.summary()
    assert result.coverage > 100, result.summary()
    # Nothing was written outside the temporary work directory.
    assert not any(Path.cwd().glob("crash-*")) and not any(Path.cwd().glob("timeout-*"))


def _result(returncode: int, findings: list[Path], log: str = "") -> FuzzResult:
    return FuzzResult("decoder", ["python"], returncode, 10, 200, 300, 5, 1.0, findings, log)


def test_slow_inputs_are_reported_not_failures(tmp_path: Path) -> None:
    """What the fuzz test fails on: libFuzzer's artifacts and exit, classified."""
    slow = tmp_path / "timeout-3f2a"
    timeout_log = "==12== ERROR: libFuzzer: timeout after 10 seconds\n"
    assert not _result(70, [slow], timeout_log).failed
    assert _result(70, [slow], timeout_log).slow == [slow]
    assert not _result(0, [tmp_path / "slow-unit-9c"]).failed
    assert _result(1, [tmp_path / "crash-77"]).failed
    assert _result(1, [tmp_path / "oom-12"]).failed
    assert _result(1, [slow, tmp_path / "leak-5"], timeout_log).failed
    assert _result(1, []).failed  # a failing exit with nothing to show
    assert _result(-9, [], "fuzz.run: killed after 100 s (the harness hung)").failed
    assert not _result(0, []).failed
