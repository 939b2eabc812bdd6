"""The compiled build and the pure-Python build: which one runs, and the same bytes.

setup.py compiles the hot path with mypyc into extension modules beside the .py
files; ``WSANALYZE_NO_EXTENSIONS=1`` makes every module load from source
(wsanalyze/_build.py).  Under CI (``CI=true``) the compiled build must be the
one under test: a missing or stale build fails instead of silently testing pure
Python twice.  ``make test`` also runs the correctness suites with
``WSANALYZE_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.buildtools import (
    COMMANDS,
    ROOT,
    SAMPLES,
    cli_outputs,
    replay_fuzz_seeds,
    rule_case_captures,
)
from wsanalyze import _build

IN_CI = os.environ.get("CI") == "true"
HOT = ["wsanalyze.tcp.reassembly", "wsanalyze.websocket.framing", "wsanalyze.tracker",
       "wsanalyze.websocket.deflate", "wsanalyze.sources.pcap"]
"""Modules every packet goes through (all in setup.py's COMPILED list)."""


def _python(code: str, **env: str) -> str:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **env}
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    cases = rule_case_captures(tmp_path_factory.mktemp("rulecases"))
    assert len(cases) > 50 and len(SAMPLES) >= 6
    return SAMPLES + cases


def test_the_build_under_test_is_the_one_loaded() -> None:
    compiled = _build.compiled_modules()
    if _build.extensions_disabled():  # make test's second, pure-Python pass
        assert compiled == []
    elif IN_CI:
        assert set(HOT) <= set(compiled), f"CI needs the compiled build (make build): {compiled}"
        assert not _build.stale_modules(), "the compiled build is older than the sources"
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    for name in HOT:
        file = importlib.import_module(name).__file__
        assert file is not None and file.endswith(suffixes) == (name in compiled), file
    version = _python("from wsanalyze.cli import main; main(['--version'])")
    expected = (f"compiled: {_build.compiler(compiled)}, {len(compiled)} modules" if compiled
                else "pure Python")
    assert version.startswith(f"wsanalyze 0.1.0 ({expected}"), version


def test_no_extensions_loads_every_module_from_source() -> None:
    code = ("import importlib, sys\n"
            f"for name in {HOT!r}: print(importlib.import_module(name).__file__)\n"
            "from wsanalyze.cli import main; main(['--version'])")
    out = _python(code, WSANALYZE_NO_EXTENSIONS="1").splitlines()
    assert [Path(p).relative_to(ROOT / "wsanalyze").as_posix() for p in out[:-1]] == [
        "tcp/reassembly.py", "websocket/framing.py", "tracker.py", "websocket/deflate.py",
        "sources/pcap.py"]
    assert out[-1].startswith("wsanalyze 0.1.0 (pure Python (WSANALYZE_NO_EXTENSIONS is set)")
    # "0" and "" mean not set, as at install time (setup.py).
    assert "(pure Python (" not in _python("from wsanalyze.cli import main; main(['--version'])",
                                           WSANALYZE_NO_EXTENSIONS="0")


def test_outputs_are_identical_between_builds(captures: list[Path], tmp_path: Path) -> None:
    compiled, a = cli_outputs(tmp_path / "compiled", captures, WSANALYZE_NO_EXTENSIONS="0")
    pure, b = cli_outputs(tmp_path / "pure", captures, WSANALYZE_NO_EXTENSIONS="1")
    assert pure.startswith("pure Python (WSANALYZE_NO_EXTENSIONS is set)")
    if IN_CI:
        assert compiled.startswith("compiled: mypyc")
    assert len(a) == len(captures) * len(COMMANDS) and a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    # Real outputs: every command succeeded and the tables have rows.
    assert all(out.endswith(b"exit 0") for out in a.values())
    deflate = a["websockets-deflate.pcap.3.messages"].splitlines()
    assert len(deflate) > 10 and b'"compressed": true' in deflate[0]


@pytest.mark.parametrize("pure", [False, True], ids=["this-build", "pure"])
def test_fuzz_seeds_keep_their_invariants(pure: bool, tmp_path: Path) -> None:
    # mypyc turns annotations into checks: hostile input is where a wrong one shows.
    env = {"WSANALYZE_NO_EXTENSIONS": "1"} if pure else {}
    counts = replay_fuzz_seeds(tmp_path, **env)
    assert set(counts) == {"capture", "reassembly", "decoder", "tls"}
    assert min(counts.values()) >= 5 and sum(counts.values()) >= 60, counts
