"""Write every output that matters for every sample and crafted rule case to a folder.

Used to prove a refactoring changes nothing: run it before and after, then
``diff -r BEFORE AFTER``.  For each capture it writes the four tables as JSON
Lines and the ``summary`` text through the real CLI (in this process, so one
run takes seconds, not minutes), plus the metric tables (compression, latency,
ping pairs) as CSV.

    PYTHONPATH=$PWD python tools/snapshot_outputs.py OUTDIR [CAPTURE ...]

Without CAPTURE arguments it covers ``samples/*.pcap*`` and every case of
``tests.rulecases`` (written as pcaps to ``OUTDIR/_cases``).
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("connections", "messages", "frames", "violations")


def _cli(argv: list[str]) -> str:
    from wsanalyze.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return f"{out.getvalue()}--- stderr (exit {code}) ---\n{err.getvalue()}"


def snapshot_one(capture: Path, outdir: Path) -> None:
    """All outputs of one capture into ``outdir/<capture name>/``."""
    from wsanalyze.analysis import analyze

    target = outdir / capture.name
    target.mkdir(parents=True, exist_ok=True)
    for command in COMMANDS:
        text = _cli([command, str(capture), "--format", "jsonl", "-q"])
        (target / f"{command}.jsonl").write_text(text.replace(str(capture), capture.name))
    text = _cli(["summary", str(capture), "-q"])
    # The capture's path is in the summary: keep only its name so folders compare.
    (target / "summary.txt").write_text(text.replace(str(capture), capture.name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = analyze(capture)
        for name in ("compression", "latency", "ping_pairs"):
            (target / f"{name}.csv").write_text(getattr(result, name).to_csv(index=False))


def default_captures(outdir: Path) -> list[Path]:
    from tests.rulecases import main as write_cases

    cases = outdir / "_cases"
    with contextlib.redirect_stdout(io.StringIO()):
        write_cases([str(cases)])
    samples = sorted(p for p in (ROOT / "samples").iterdir()
                     if p.suffix in (".pcap", ".pcapng"))
    return samples + sorted(cases.glob("*.pcap"))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: tools/snapshot_outputs.py OUTDIR [CAPTURE ...]", file=sys.stderr)
        return 2
    outdir = Path(args[0])
    outdir.mkdir(parents=True, exist_ok=True)
    captures = [Path(a) for a in args[1:]] or default_captures(outdir)
    for capture in captures:
        snapshot_one(capture, outdir)
    print(f"{len(captures)} captures written to {outdir}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
