"""How fast `wsanalyze live` keeps up, and its memory over a long session.

    python benchmarks/bench_live.py rate [--messages 200000]
    python benchmarks/bench_live.py memory [--seconds 180 --rate 2000] [--png FILE]

``rate``: a burst of echoed messages (benchmarks/live_load.py) far faster than
the decoder; the capture engine never waits for the decoder (the spool takes
the backlog), so the time from the banner until live has written every row
gives the sustained decode rate: packets/s and messages/s that live keeps up
with indefinitely (faster bursts are delayed, not dropped).

``memory``: a paced load for minutes, connections ending and new ones starting;
the RSS of the live process is sampled each second and plotted.

Both need root (or capture privileges) and print one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STATS = re.compile(r"([\d,]+) packets captured, ([\d,]+) dropped by the kernel")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _Live:
    def __init__(self, port: int, out: Path, table: str = "messages") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wsanalyze", "live", "-i", "lo", "-f", f"tcp port {port}",
             "--table", table, "--format", "jsonl", "-o", str(out)],
            stderr=subprocess.PIPE, text=True, env=ENV)
        self.err: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60) or self.proc.poll() is not None:
            raise SystemExit("".join(self.err))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            if "Capturing on" in line:
                self.ready.set()
        self.ready.set()

    def stop(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(600)
        m = STATS.search("".join(self.err))
        if not m:
            raise SystemExit("".join(self.err))
        return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def rate(messages: int, connections: int) -> dict[str, object]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.jsonl"
        live = _Live(port, out)
        start = time.monotonic()
        load = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "live_load.py"),
                               str(port), "--messages", str(messages), "--connections",
                               str(connections)], capture_output=True, text=True, env=ENV,
                              check=True)
        sent = json.loads(load.stdout)
        want = 2 * sent["messages"] + 2 * connections  # echoes and close frames
        while _lines(out) < want:
            if live.proc.poll() is not None:
                raise SystemExit("".join(live.err))
            time.sleep(0.1)
        decoded = time.monotonic() - start
        packets, dropped = live.stop()
    return {"messages": want, "packets": packets, "dropped": dropped,
            "load_seconds": sent["seconds"], "decode_seconds": round(decoded, 2),
            "packets_per_s": round(packets / decoded), "messages_per_s": round(want / decoded)}


def memory(seconds: float, msg_rate: float, connections: int, png: Path) -> dict[str, object]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        live = _Live(port, Path(tmp) / "rows.jsonl", table="connections")
        load = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "live_load.py"),
                                 str(port), "--rate", str(msg_rate), "--seconds",
                                 str(seconds), "--connections", str(connections)],
                                stdout=subprocess.PIPE, text=True, env=ENV)
        start = time.monotonic()
        samples: list[tuple[float, int]] = []
        while load.poll() is None:
            samples.append((time.monotonic() - start, _rss_kib(live.proc.pid)))
            time.sleep(1.0)  # the sampling period, not a wait for an event
        sent = json.loads(load.communicate()[0])
        packets, dropped = live.stop()
    _plot(samples, png, sent["messages"] / sent["seconds"], connections)
    rss = [kib for _, kib in samples]
    tail = rss[len(rss) // 2 :]
    return {"seconds": seconds, "messages": sent["messages"],
            "connections": sent["connections"], "packets": packets, "dropped": dropped,
            "rss_first_mib": round(rss[0] / 1024, 1), "rss_max_mib": round(max(rss) / 1024, 1),
            "rss_second_half_growth_mib": round((tail[-1] - tail[0]) / 1024, 1),
            "png": str(png)}


def _plot(samples: list[tuple[float, int]], png: Path, msg_rate: float,
          connections: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([t for t, _ in samples], [k / 1024 for _, k in samples])
    ax.set_xlabel("seconds")
    ax.set_ylabel("RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"wsanalyze live: RSS, {msg_rate:,.0f} messages/s echoed, "
                 f"{connections} connections at a time", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("rate")
    r.add_argument("--messages", type=int, default=200_000)
    r.add_argument("--connections", type=int, default=8)
    m = sub.add_parser("memory")
    m.add_argument("--seconds", type=float, default=180.0)
    m.add_argument("--rate", type=float, default=2000.0)
    m.add_argument("--connections", type=int, default=20)
    m.add_argument("--png", type=Path, default=ROOT / "benchmarks" / "live_rss.png")
    args = ap.parse_args()
    if args.what == "rate":
        print(json.dumps(rate(args.messages, args.connections)))
    else:
        print(json.dumps(memory(args.seconds, args.rate, args.connections, args.png)))


if __name__ == "__main__":
    main()
