"""Run the CLI over many captures in one child process, under a chosen build.

The builds (compiled or pure Python, zlib-ng/orjson or the stdlib) are chosen by
environment variables at import time, so each one runs in its own interpreter:
:func:`cli_outputs` starts one, has it write every command's output for every
capture to files, and returns them by name for a byte-for-byte comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "samples").glob("*.pcap*") if p.is_file())

COMMANDS = (
    ("summary", "--format", "json"),
    ("summary", "--format", "text"),
    *((table, "--format", "jsonl") for table in ("connections", "messages", "frames",
                                                  "violations")),
)
"""Every table in JSON Lines (full payloads, every column) and the summary."""

_RUN = """
import json, sys
from pathlib import Path
from wsanalyze import _build, cli, speedups

out, commands, captures = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:]
(out / "_build").write_text(f"{_build.describe()}; {speedups.INFLATE}, {speedups.JSON}")
for capture in captures:
    for i, command in enumerate(commands):
        dest = out / f"{Path(capture).name}.{i}.{command[0]}"
        status = cli.main([command[0], capture, *command[1:], "-o", str(dest)])
        with dest.open("a") as f:
            f.write(f"exit {status}")
"""


def cli_outputs(outdir: Path, captures: list[Path], **env: str) -> tuple[str, dict[str, bytes]]:
    """(the build's description, {output name: bytes}) for every command of
    :data:`COMMANDS` on every capture, run in a child with ``env`` added."""
    outdir.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **env}
    subprocess.run([sys.executable, "-c", _RUN, str(outdir), json.dumps(COMMANDS),
                    *map(str, captures)], env=child_env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    build = (outdir / "_build").read_text()
    files = {p.name: p.read_bytes() for p in sorted(outdir.iterdir()) if p.name != "_build"}
    return build, files


def rule_case_captures(outdir: Path) -> list[Path]:
    """Every rule case and near-miss of tests/rulecases.py written as a pcap."""
    subprocess.run([sys.executable, "-m", "tests.rulecases", str(outdir)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return sorted(outdir.glob("*.pcap"))


_REPLAY = """
import importlib, sys
from pathlib import Path
# The build under test first: the harnesses' atheris instrumentation then only
# wraps modules not yet loaded.
import wsanalyze.tracker, wsanalyze.sources.capture, wsanalyze.tls.follower
from fuzz.run import HARNESSES
from fuzz.seeds import build

dirs = build(Path(sys.argv[1]))
for harness in HARNESSES:
    module = importlib.import_module(f"fuzz.fuzz_{harness}")
    seeds = sorted(dirs[harness].iterdir())
    for seed in seeds:
        module.TestOneInput(seed.read_bytes())  # raises on a broken invariant
    print(harness, len(seeds))
"""


def replay_fuzz_seeds(workdir: Path, **env: str) -> dict[str, int]:
    """Run every fuzz harness's checks on its seed corpus (fuzz/seeds.py) in a child
    with ``env`` added; {harness: seeds replayed}.  A broken invariant fails."""
    child_env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **env}
    out = subprocess.run([sys.executable, "-c", _REPLAY, str(workdir)], env=child_env,
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return {h: int(n) for h, n in (line.split() for line in out.splitlines())}
