"""Run a harness with atheris for a bounded time and summarise what it did.

    python -m fuzz.run HARNESS [--time SECONDS] [--seed N] [--workdir DIR] [--jobs N]

HARNESS is ``capture``, ``reassembly``, ``decoder``, ``tls`` or ``all``.  The seed
corpora are built afresh (``fuzz.seeds``) under the work directory (a
temporary one by default); new inputs go to ``WORKDIR/corpus/HARNESS`` and
findings (crash-*, timeout-*, oom-* files) to ``WORKDIR/artifacts/HARNESS/``,
never into the repository.  The exit status is 1 when a harness reported a
finding, else 0.  Reproduce a finding with
``python -m fuzz.fuzz_HARNESS ARTIFACT_FILE``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESSES = ("capture", "reassembly", "decoder", "tls")
TIMEOUT_PER_INPUT = 10
"""Seconds one input may take before libFuzzer reports a timeout (a hang)."""
RSS_LIMIT_MB = 2048
MAX_LEN = 131072

_STATS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_FINDING = ("crash-", "timeout-", "oom-", "leak-", "slow-unit-")
_SLOW = ("timeout-", "slow-unit-")
"""Findings that only say an input was slow (a loaded machine can cause them)."""


@dataclass
class FuzzResult:
    harness: str
    command: list[str]
    returncode: int
    executions: int
    coverage: int
    """libFuzzer's ``cov:``: instrumented edges (branches) reached."""
    features: int
    corpus: int
    seconds: float
    findings: list[Path]
    log: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.findings

    @property
    def slow(self) -> list[Path]:
        """Inputs that exceeded the per-input time limit: reported, not failures."""
        return [p for p in self.findings if p.name.startswith(_SLOW)]

    @property
    def failed(self) -> bool:
        """A crash, an out-of-memory or a leak, or an exit not explained by a slow input."""
        if any(not p.name.startswith(_SLOW) for p in self.findings):
            return True
        return self.returncode != 0 and not (self.slow and "libFuzzer: timeout" in self.log)

    def summary(self) -> str:
        found = ", ".join(p.name for p in self.findings) or f"exit {self.returncode}"
        state = "no findings" if self.ok else f"FINDINGS: {found}"
        return (f"{self.harness}: {self.executions} executions in {self.seconds:.0f} s, "
                f"cov {self.coverage}, ft {self.features}, corpus {self.corpus}; {state}")


def libfuzzer_args(*, seconds: int, seed: int, artifacts: Path) -> list[str]:
    return [f"-max_total_time={seconds}", f"-seed={seed}", f"-timeout={TIMEOUT_PER_INPUT}",
            f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={MAX_LEN}",
            f"-artifact_prefix={artifacts}{os.sep}", "-print_final_stats=1"]


def run_harness(harness: str, *, seconds: int, seed: int, workdir: Path,
                seeds: Path | None = None) -> FuzzResult:
    """Fuzz ``harness`` for ``seconds`` in a subprocess (cwd: the repository root)."""
    if harness not in HARNESSES:
        raise ValueError(f"unknown harness {harness!r}")
    if seeds is None:
        from fuzz.seeds import build

        seeds = build(workdir / "seeds")[harness]
    corpus = workdir / "corpus" / harness
    artifacts = workdir / "artifacts" / harness
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", f"fuzz.fuzz_{harness}",
           *libfuzzer_args(seconds=seconds, seed=seed, artifacts=artifacts),
           str(corpus), str(seeds)]
    # atheris measures coverage of Python bytecode: the harness always runs the
    # pure-Python build (the compiled one is made from the same source).
    env = dict(os.environ, WSANALYZE_NO_EXTENSIONS="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        log, _ = proc.communicate(timeout=seconds + 6 * TIMEOUT_PER_INPUT + 60)
        returncode = proc.returncode
    except subprocess.TimeoutExpired:
        # libFuzzer's own -timeout did not fire (stuck outside Python?): a finding too.
        proc.kill()
        log, _ = proc.communicate()
        log += f"\nfuzz.run: killed after {time.monotonic() - start:.0f} s (the harness hung)"
        returncode = -9
    elapsed = time.monotonic() - start
    executions = coverage = features = size = 0
    for line in log.splitlines():
        m = _STATS.match(line)
        if m:
            executions, coverage, features, size = (int(m.group(i)) for i in (1, 3, 4, 5))
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    if m:
        executions = int(m.group(1))
    findings = sorted(p for p in artifacts.iterdir() if p.name.startswith(_FINDING))
    return FuzzResult(harness, cmd, returncode, executions, coverage, features, size,
                      elapsed, findings, log)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("harness", choices=(*HARNESSES, "all"))
    p.add_argument("--time", type=int, default=60, help="seconds per harness (default 60)")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer -seed (default 1)")
    p.add_argument("--workdir", type=Path, help="keep seeds, corpus and artifacts here")
    args = p.parse_args(argv)
    names = HARNESSES if args.harness == "all" else (args.harness,)
    with tempfile.TemporaryDirectory(prefix="wsanalyze-fuzz-") as tmp:
        workdir = args.workdir or Path(tmp)
        from fuzz.seeds import build

        seed_dirs = build(workdir / "seeds")
        failed = False
        for name in names:
            result = run_harness(name, seconds=args.time, seed=args.seed, workdir=workdir,
                                 seeds=seed_dirs[name])
            print(result.summary(), flush=True)
            if not result.ok:
                failed = True
                print("\n".join(result.log.splitlines()[-40:]), file=sys.stderr)
                if args.workdir is None:
                    print("(rerun with --workdir DIR to keep the artifacts)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
