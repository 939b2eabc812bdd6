"""Peak memory of each output format on one huge message (issue: output memory
that follows the payload cap).

The capture (about 70 KB) holds one permessage-deflate text message that
inflates to exactly the default ``--limit-message`` (64 MiB) of NUL bytes: the
worst case for JSON (each NUL is escaped to six characters) and for the table's
preview.  Each format runs in a fresh process; its peak RSS (``ru_maxrss``) is
printed next to the cap, and the output is checked to hold the whole payload.

    .venv/bin/python benchmarks/bench_bigrow.py [--mib 64] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pcaptools import (  # noqa: E402
    OP_TEXT,
    Conversation,
    deflate_message,
    ws_frame,
)

PMD = "permessage-deflate"
FORMATS = ("jsonl", "csv", "table", "parquet")
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child forked
# from this (large) process would report the parent's peak.
_CHILD = """
import sys
from wsanalyze.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
print(f"PEAK_KIB {peak}", file=sys.stderr)
raise SystemExit(code)
"""


def nul_text_capture(path: Path, size: int) -> None:
    """One compressed text message of ``size`` NUL bytes (valid UTF-8)."""
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions=PMD, response_extensions=PMD)
    (data,) = deflate_message([bytes(size)])
    c.send("s2c", ws_frame(OP_TEXT, data, rsv1=True))
    c.write(path)


def peak_of(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True,
                          text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin"})
    if proc.returncode != 0:
        raise SystemExit(f"{args}: exit {proc.returncode}: {proc.stderr[-500:]}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PEAK_KIB "))
    return int(line.split()[1]) * 1024, proc.stderr


def check_output(fmt: str, path: Path, size: int) -> None:
    """The output holds the whole message: the payload and text, all NULs."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as f:
            row = json.loads(f.readline())
        assert row["length"] == size and row["text"] == "\0" * size
        assert base64.b64decode(row["payload_b64"]) == bytes(size)
    elif fmt == "csv":
        csv.field_size_limit(1 << 31)
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows[0]["text"] == "\0" * size and rows[0]["length"] == str(size)
        assert base64.b64decode(rows[0]["payload_b64"]) == bytes(size)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        assert table[0]["length"] == size and table[0]["text"] == "\0" * size
        assert table[0]["payload"] == bytes(size)
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines[1].split()[6] == str(size), lines[1][:200]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=64, help="message size in MiB (default 64)")
    ap.add_argument("--keep", type=Path, help="folder for the capture and outputs")
    args = ap.parse_args()
    size = args.mib << 20
    work = args.keep or Path(tempfile.mkdtemp(prefix="bigrow-"))
    work.mkdir(parents=True, exist_ok=True)
    cap = work / "nul-text.pcap"
    nul_text_capture(cap, size)
    print(f"capture {cap.stat().st_size:,} bytes; message {size:,} bytes (cap)")
    small = work / "small.pcap"
    nul_text_capture(small, 1024)
    peak, _ = peak_of(["summary", str(cap), "-q"])
    print(f"{'summary':8} peak {peak / 2**20:5.0f} MiB (no output rows; the decoder holds the "
          f"message)")
    print("format   baseline  peak      (peak - baseline) / message   output")
    for fmt in FORMATS:
        out = work / f"out.{fmt}"
        # The same format on a 1 KiB message: interpreter, libraries (pyarrow), buffers.
        base, _ = peak_of(["messages", str(small), "--format", fmt, "-o", str(out), "-q"])
        peak, _ = peak_of(["messages", str(cap), "--format", fmt, "-o", str(out), "-q"])
        check_output(fmt, out, size)
        extra = (peak - base) / size
        print(f"{fmt:8} {base / 2**20:5.0f} MiB {peak / 2**20:5.0f} MiB  {extra:5.2f}×"
              f"                        {out.stat().st_size / 2**20:,.0f} MiB (checked)")
        out.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
