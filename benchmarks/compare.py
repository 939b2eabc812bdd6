"""wsanalyze against tshark on the same capture, each tool a separate process.

Usage::

    python benchmarks/compare.py CAPTURE [--runs 3] [--jobs 2] [--json FILE]
        [--tools wsanalyze-summary,wsanalyze-jsonl,wsanalyze-jobs2,tshark,floor]
        [--wsanalyze "/path/to/venv/bin/wsanalyze"] [--env WSANALYZE_NO_EXTENSIONS=1]

``--wsanalyze`` is the command that runs wsanalyze (split like a shell would;
default: this Python with ``-m wsanalyze``), e.g. a compiled build's entry point;
``--env NAME=VALUE`` (repeatable) is set for the wsanalyze runs only, e.g.
``WSANALYZE_NO_EXTENSIONS=1`` for the pure-Python build or
``WSANALYZE_JOBS_ENGINE=replay`` for the other ``--jobs`` engine.

Tools (standard output goes to /dev/null, except the summary's, which is small and
is read back to check the decoded message counts against the truth file):

* ``wsanalyze-summary``: ``wsanalyze summary CAPTURE -q`` (full decode and
  validation, no payload output);
* ``wsanalyze-jsonl``: ``wsanalyze messages CAPTURE --format jsonl -q`` (every
  payload, base64, as JSON Lines);
* ``wsanalyze-jobs2``: ``wsanalyze summary CAPTURE -q --jobs N`` (``--jobs``,
  default 2); reported as unavailable if wsanalyze refuses the option;
* ``tshark``: ``tshark -r CAPTURE -Y websocket -T fields -e frame.number -e
  tcp.stream -e websocket.opcode -e websocket.payload_length -e websocket.payload
  -e websocket.payload.text`` with tshark's default preferences;
* ``floor``: ``benchmarks/bench_floor.py CAPTURE --repeat 1`` — reading the
  file's records plus inflating every compressed message once with zlib.  Its
  wall and CPU times are the timed part only (its untimed extraction of the
  compressed messages is left out); its RSS is the whole script's.

Runs alternate between tools (the order rotates each round).  Before the first
run the capture is read once, so every run finds it in the page cache.  For each
tool: the median wall time of its runs, MB/s (file size / wall, 1 MB = 10**6
bytes), packets/s and messages/s (counts from ``CAPTURE.truth.json`` written by
generate.py, else from the summary's output), CPU time (user + system, children
included), peak RSS from ``os.wait4`` (``ru_maxrss``: the largest single process,
so with worker processes not their sum) and the peak RSS of the whole process
tree sampled from /proc every 0.2 s, and the speed relative to tshark (tshark's
wall time / the tool's: above 1 is faster than tshark) and relative to the floor
(the tool's wall time / the floor's: how many floors the tool takes; 1 is the
least possible), in wall time and in CPU seconds.  On a loaded machine compare
the CPU seconds: wall times stretch with the load, CPU seconds much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TOOLS = ("wsanalyze-summary", "wsanalyze-jsonl", "wsanalyze-jobs2", "tshark", "floor")
FLOOR_SCRIPT = Path(__file__).resolve().parent / "bench_floor.py"
TSHARK_FIELDS = ("frame.number", "tcp.stream", "websocket.opcode", "websocket.payload_length",
                 "websocket.payload", "websocket.payload.text")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_SUMMARY_COUNTS = re.compile(r"(\d+) (text|binary|ping|pong|close)\b")
_SUMMARY_HEAD = re.compile(r": (\d+) packets, .*?(\d+) WebSocket connection")
_SUMMARY_VIOLATIONS = re.compile(r"^violations: (\d+) error, (\d+) warning, (\d+) info", re.M)


def tool_command(name: str, capture: str, jobs: int,
                 wsanalyze: list[str] | None = None) -> list[str]:
    """The command line of a tool (wsanalyze: ``wsanalyze``, default this Python
    with ``-m wsanalyze``)."""
    wsanalyze = wsanalyze or [sys.executable, "-m", "wsanalyze"]
    if name == "floor":
        return [sys.executable, str(FLOOR_SCRIPT), capture, "--repeat", "1"]
    if name == "wsanalyze-summary":
        return [*wsanalyze, "summary", capture, "-q"]
    if name == "wsanalyze-jsonl":
        return [*wsanalyze, "messages", capture, "--format", "jsonl", "-q"]
    if name.startswith("wsanalyze-jobs"):
        return [*wsanalyze, "summary", capture, "-q", "--jobs", str(jobs)]
    if name == "tshark":
        tshark = shutil.which("tshark") or "tshark"
        command = [tshark, "-r", capture, "-Y", "websocket", "-T", "fields"]
        for f in TSHARK_FIELDS:
            command += ["-e", f]
        return command
    raise ValueError(f"unknown tool {name!r} (known: {', '.join(DEFAULT_TOOLS)})")


@dataclass
class Run:
    wall: float
    user: float
    system: float
    maxrss_mb: float
    """``ru_maxrss`` of the process (its largest waited-for descendant if larger)."""
    tree_rss_mb: float
    """Peak of the summed RSS of the process and its descendants (sampled)."""
    returncode: int


@dataclass
class ToolResult:
    name: str
    command: list[str]
    status: str = "ok"
    """``ok``, ``unavailable`` (the tool refused the command) or ``failed``."""
    detail: str = ""
    runs: list[Run] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    """What ``wsanalyze summary`` reported (messages per type, packets, violations)."""

    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants from /proc."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self.done = threading.Event()

    @staticmethod
    def _parents() -> dict[int, int]:
        parents = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: fields follow the last ")".
            parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2:].split()[1])
        return parents

    def _tree_rss(self) -> int:
        parents = self._parents()
        tree = {self.pid}
        grew = True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    grew = True
        total = 0
        for pid in tree:
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * _PAGE
            except (OSError, IndexError, ValueError):
                pass
        return total

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, self._tree_rss())


def run_once(command: list[str], stdout_path: str | None, timeout: float | None,
             env: dict[str, str] | None = None) -> tuple[Run, str]:
    """Run ``command`` once; return its measurements and its standard error."""
    with tempfile.TemporaryFile() as err, \
            open(stdout_path or os.devnull, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        if timer:
            timer.cancel()
        sampler.done.set()
        sampler.join()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    maxrss = usage.ru_maxrss / 1024  # KiB on Linux
    return Run(wall=wall, user=usage.ru_utime, system=usage.ru_stime, maxrss_mb=maxrss,
               tree_rss_mb=max(sampler.peak / 2**20, maxrss),
               returncode=proc.returncode), stderr


def parse_summary(text: str) -> dict[str, Any]:
    """Message counts per type, packets, connections and violations from the
    output of ``wsanalyze summary``."""
    counts = dict.fromkeys(("text", "binary", "ping", "pong", "close"), 0)
    # The capture totals; older summaries had only the per-connection lines.
    totals = ("client → server:", "server → client:")
    prefix = totals if text.count(totals[0]) else ("  c2s:", "  s2c:")
    for line in text.splitlines():
        if line.startswith(prefix):
            for n, kind in _SUMMARY_COUNTS.findall(line.split(";")[0]):
                counts[kind] += int(n)
    head = _SUMMARY_HEAD.search(text)
    viol = _SUMMARY_VIOLATIONS.search(text)
    return {"messages": counts, "messages_total": sum(counts.values()),
            "packets": int(head.group(1)) if head else None,
            "connections": int(head.group(2)) if head else None,
            "violations": dict(zip(("error", "warning", "info"),
                                   map(int, viol.groups()), strict=True)) if viol else None}


def warm_cache(path: Path) -> None:
    with path.open("rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def tool_version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) \
        else "?"


def git_state() -> str:
    """The commit of the wsanalyze checkout, "+dirty" with uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    git = ["git", "--no-optional-locks", "-C", str(root)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=30)
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], capture_output=True,
                               timeout=30).returncode
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return head.stdout.strip() + ("+dirty" if dirty else "") if head.returncode == 0 else "?"


def _run_tool(name: str, command: list[str], tmp: str, timeout: float | None,
              env: dict[str, str] | None) -> tuple[Run, str, str | None]:
    """One run of a tool; the floor's times are those it measured (its untimed
    extraction left out).  Returns the run, its stderr and where its stdout went."""
    summary_out = (os.path.join(tmp, f"{name}.txt")
                   if "summary" in name or "jobs" in name else None)
    if name == "floor":
        figures = os.path.join(tmp, "floor.json")
        run, stderr = run_once([*command, "--json", figures], None, timeout)
        if run.returncode == 0:
            floor = json.loads(Path(figures).read_text())
            run.wall, run.user, run.system = floor["floor_s"], floor["floor_cpu_s"], 0.0
        return run, stderr, None
    wsanalyze_env = {**os.environ, **env} if env and name.startswith("wsanalyze") else None
    run, stderr = run_once(command, summary_out, timeout, wsanalyze_env)
    return run, stderr, summary_out


def compare(capture: Path, tools: list[str], runs: int, jobs: int, timeout: float | None,
            warm: bool = True, log: Any = sys.stderr, wsanalyze: list[str] | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    size = capture.stat().st_size
    truth_file = capture.with_name(capture.name + ".truth.json")
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else None
    results = {name: ToolResult(name, tool_command(name, str(capture), jobs, wsanalyze))
               for name in tools}
    load_before = os.getloadavg()
    if warm:
        warm_cache(capture)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(runs):
            order = tools[round_ % len(tools):] + tools[:round_ % len(tools)]
            for name in order:
                res = results[name]
                if res.status != "ok":
                    continue
                run, stderr, summary_out = _run_tool(name, res.command, tmp, timeout, env)
                print(f"  run {round_ + 1}/{runs} {name}: {run.wall:.2f} s, "
                      f"{run.maxrss_mb:.0f} MB, exit {run.returncode}", file=log, flush=True)
                if run.returncode != 0:
                    refused = "unrecognized arguments" in stderr or "invalid choice" in stderr
                    res.status = "unavailable" if refused or run.returncode == 2 else "failed"
                    res.detail = (stderr.strip().splitlines() or [f"exit {run.returncode}"])[-1]
                    res.runs.clear()
                    continue
                res.runs.append(run)
                if summary_out and res.summary is None:
                    res.summary = parse_summary(Path(summary_out).read_text("utf-8", "replace"))
    rep = report(capture, size, truth, results, runs, wsanalyze)
    rep["machine"]["load_before"] = load_before
    rep["env"] = env or {}
    return rep


def report(capture: Path, size: int, truth: dict[str, Any] | None,
           results: dict[str, ToolResult], runs: int,
           wsanalyze: list[str] | None = None) -> dict[str, Any]:
    decoded = next((r.summary for r in results.values() if r.summary), None)
    if truth is not None:
        packets, messages, source = truth["packets"], truth["messages_total"], "truth file"
    elif decoded is not None:
        packets, messages, source = decoded["packets"], decoded["messages_total"], \
            "wsanalyze summary"
    else:
        packets = messages = None
        source = "unknown"
    tshark = results.get("tshark")
    tshark_wall = tshark.wall() if tshark and tshark.status == "ok" and tshark.runs else None
    floor = results.get("floor")
    floor_ok = floor is not None and floor.status == "ok" and bool(floor.runs)
    floor_wall = floor.wall() if floor_ok and floor else None
    floor_cpu = statistics.median(r.user + r.system for r in floor.runs) \
        if floor_ok and floor else None
    tools: dict[str, Any] = {}
    for name, res in results.items():
        entry: dict[str, Any] = {"command": res.command, "status": res.status}
        if res.detail:
            entry["detail"] = res.detail
        if res.status == "ok" and res.runs:
            wall = res.wall()
            entry.update({
                "wall_s": wall, "wall_min_s": min(r.wall for r in res.runs),
                "mb_per_s": size / 1e6 / wall,
                "packets_per_s": packets / wall if packets else None,
                "messages_per_s": messages / wall if messages else None,
                "cpu_s": statistics.median(r.user + r.system for r in res.runs),
                "peak_rss_mb": max(r.maxrss_mb for r in res.runs),
                "peak_tree_rss_mb": max(r.tree_rss_mb for r in res.runs),
                "speed_vs_tshark": tshark_wall / wall if tshark_wall else None,
                "times_floor": wall / floor_wall if floor_wall else None,
                "cpu_times_floor": (statistics.median(r.user + r.system for r in res.runs)
                                    / floor_cpu if floor_cpu else None),
                "runs": [asdict(r) for r in res.runs],
            })
        if res.summary is not None:
            entry["decoded"] = res.summary
            if truth is not None:
                entry["decoded_matches_truth"] = res.summary["messages"] == truth["messages"]
        tools[name] = entry
    return {
        "capture": str(capture), "file_bytes": size, "packets": packets, "messages": messages,
        "counts_from": source, "runs": runs, "tools": tools,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "load_avg": os.getloadavg(),
                    "tshark": tool_version([shutil.which("tshark") or "tshark", "--version"]),
                    "wsanalyze": tool_version([*(wsanalyze or [sys.executable, "-m",
                                                             "wsanalyze"]), "--version"])},
        "git": git_state(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def render(rep: dict[str, Any]) -> str:
    mb = rep["file_bytes"] / 1e6
    lines = [f"{rep['capture']}: {mb:.1f} MB, {rep['packets'] or '?':,} packets, "
             f"{rep['messages'] or '?':,} messages (counts from the {rep['counts_from']}); "
             f"median of {rep['runs']} run(s)"]
    head = (f"{'tool':<18} {'wall s':>8} {'MB/s':>7} {'kpkt/s':>8} {'kmsg/s':>8} "
            f"{'CPU s':>7} {'RSS MiB':>7} {'tree MiB':>8} {'vs tshark':>10} {'× floor':>8} "
            f"{'CPU×floor':>9}")
    lines += [head, "-" * len(head)]
    for name, t in rep["tools"].items():
        if t["status"] != "ok":
            lines.append(f"{name:<18} {t['status']}: {t.get('detail', '')}"[:len(head) + 40])
            continue
        pps = f"{t['packets_per_s'] / 1e3:8.1f}" if t["packets_per_s"] else f"{'?':>8}"
        mps = f"{t['messages_per_s'] / 1e3:8.1f}" if t["messages_per_s"] else f"{'?':>8}"
        vs = f"{t['speed_vs_tshark']:9.2f}×" if t["speed_vs_tshark"] else f"{'-':>10}"
        floors = f"{t['times_floor']:7.2f}×" if t.get("times_floor") else f"{'-':>8}"
        floors += (f" {t['cpu_times_floor']:8.2f}×" if t.get("cpu_times_floor")
                   else f" {'-':>9}")
        lines.append(f"{name:<18} {t['wall_s']:8.2f} {t['mb_per_s']:7.1f} {pps} {mps} "
                     f"{t['cpu_s']:7.1f} {t['peak_rss_mb']:7.0f} {t['peak_tree_rss_mb']:8.0f} "
                     f"{vs} {floors}")
    for name, t in rep["tools"].items():
        if "decoded" in t:
            d = t["decoded"]
            match = t.get("decoded_matches_truth")
            verdict = "" if match is None else (" = truth" if match else " ≠ truth!")
            lines.append(f"{name} decoded {d['messages_total']:,} messages "
                         f"{d['messages']}{verdict}; violations {d['violations']}")
    m = rep["machine"]
    lines.append(f"{m['cpus']} CPUs, Python {m['python']}, {m['tshark']}, {m['wsanalyze']} "
                 f"(git {rep['git']}), load average {m['load_before'][0]:.2f} before, "
                 f"{m['load_avg'][0]:.2f} after")
    if rep.get("env"):
        lines.append("wsanalyze environment: " + " ".join(f"{k}={v}"
                                                           for k, v in rep["env"].items()))
    lines.append("vs tshark = tshark's wall time / the tool's (above 1: faster than tshark); "
                 "× floor = the tool's wall time / the floor's (CPU×floor: CPU seconds)")
    return "\n".join(lines) + "\n"


def print_and_save(text: str, result: Any, json_path: str | None) -> int:
    """Print a benchmark's table, and write its figures as JSON when asked; exit 0."""
    sys.stdout.write(text)
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def script_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark script's parser: its docstring's first line, the rest as epilog."""
    return argparse.ArgumentParser(description=doc.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n".join(doc.splitlines()[2:]))


def main(argv: list[str] | None = None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("capture", metavar="CAPTURE")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                    help="comma-separated, default %(default)s")
    ap.add_argument("--jobs", type=int, default=2, help="N for wsanalyze-jobs (default 2)")
    ap.add_argument("--timeout", type=float, help="kill a run after this many seconds")
    ap.add_argument("--no-warm", dest="warm", action="store_false",
                    help="do not read the capture into the page cache first")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--wsanalyze", metavar="COMMAND", type=shlex.split,
                    help="how to run wsanalyze (default: this Python -m wsanalyze)")
    ap.add_argument("--env", metavar="NAME=VALUE", action="append", default=[],
                    help="set for the wsanalyze runs (repeatable)")
    args = ap.parse_args(argv)
    env: dict[str, str] = {}
    for item in args.env:
        name, eq, value = item.partition("=")
        if not name or not eq:
            ap.error(f"--env takes NAME=VALUE, not {item!r}")
        env[name] = value
    capture = Path(args.capture)
    if not capture.is_file():
        ap.error(f"{capture}: no such file")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for name in tools:
        try:
            tool_command(name, "", args.jobs)
        except ValueError as exc:
            ap.error(str(exc))
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    rep = compare(capture, tools, args.runs, args.jobs, args.timeout, args.warm,
                  wsanalyze=args.wsanalyze, env=env)
    return print_and_save(render(rep), rep, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
