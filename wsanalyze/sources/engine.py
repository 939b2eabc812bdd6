"""Capture engines: dumpcap or tcpdump run as a child process writing to a pipe.

Python cannot keep up with a burst on a packet socket; libpcap-based C programs
with a large kernel buffer can.  :class:`EngineProcess` starts dumpcap
(preferred: it writes pcapng with Interface Statistics Blocks) or tcpdump with
``-w -``, drains its output into a :class:`~wsanalyze.sources.spool.Spool` so a
slow decoder never back-pressures it, and reads its drop statistics (the ISB and
the closing lines it prints on stderr).  Errors come out as one-line
:class:`CaptureError` messages that say what to do.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wsanalyze.sources.capture import CaptureReader
from wsanalyze.sources.records import CaptureError, RawPacket
from wsanalyze.sources.spool import Ring, Spool

ENGINES = ("dumpcap", "tcpdump")
DEFAULT_BUFFER_MIB = 32
"""Kernel capture buffer: a 20,000-message burst on loopback fits in it many times."""
_SEARCH = "/usr/bin:/usr/sbin:/usr/local/bin:/usr/local/sbin:/bin:/sbin"
_CAP_NET_RAW = 13
_CAP_NET_ADMIN = 12
_START_TIMEOUT = 30.0
_SETTLE = 0.6
"""Seconds dumpcap is given, when asked to stop, to receive the packets still in
the kernel's current ring block (libpcap's 250 ms timeout, with room)."""


@dataclass(frozen=True, slots=True)
class Engine:
    """A capture program found on this machine."""

    name: str
    """``"dumpcap"`` or ``"tcpdump"``."""
    path: str


@dataclass(slots=True)
class DropStats:
    """Packet counts of a capture, from the engine (None: not reported)."""

    captured: int | None = None
    received: int | None = None
    kernel: int = 0
    """Dropped by the kernel (buffer full) or the interface."""
    engine: int = 0
    """Dropped or flushed by the capture program itself."""

    @property
    def dropped(self) -> int:
        return self.kernel + self.engine

    def text(self) -> str:
        captured = "?" if self.captured is None else f"{self.captured:,}"
        return f"{captured} packets captured, {self.kernel:,} dropped by the kernel" + (
            f", {self.engine:,} dropped by the capture engine" if self.engine else "")


def find_engine(name: str | None = None) -> Engine | None:
    """The capture program to use: ``name`` if given, else dumpcap, else tcpdump."""
    path_var = os.environ.get("PATH", "") + os.pathsep + _SEARCH
    for candidate in (name,) if name else ENGINES:
        found = shutil.which(candidate, path=path_var)
        if found:
            return Engine(candidate, found)
    return None


def list_interfaces(engine: Engine) -> list[tuple[str, str]]:
    """(name, description) of each interface the engine can capture on (``-D``)."""
    try:
        out = subprocess.run([engine.path, "-D"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        m = re.match(r"\s*\d+\.\s*(\S+)\s*(.*)", line)
        if m:
            found.append((m.group(1), m.group(2).strip()))
    return found


def _has_caps(text: str, field: str) -> bool:
    for line in text.splitlines():
        if line.startswith(field):
            caps = int(line.split()[1], 16)
            return bool(caps >> _CAP_NET_RAW & 1) and bool(caps >> _CAP_NET_ADMIN & 1)
    return False


def privilege_problem(engine: Engine) -> str | None:
    """None when the engine can open a capture (we hold CAP_NET_RAW and
    CAP_NET_ADMIN, as root does, or the program has them as file capabilities or is
    setuid root);
    otherwise what to do about it."""
    # Effective capabilities, not the uid: root without CAP_NET_RAW cannot capture.
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as f:
        if _has_caps(f.read(), "CapEff:"):
            return None
    with contextlib.suppress(OSError):
        st = os.stat(engine.path)
        if st.st_uid == 0 and st.st_mode & 0o4000:
            return None
        raw = os.getxattr(engine.path, "security.capability")
        permitted = int.from_bytes(raw[4:8], "little")
        if permitted >> _CAP_NET_RAW & 1 and permitted >> _CAP_NET_ADMIN & 1:
            return None
    return privilege_advice(engine)


def privilege_advice(engine: Engine) -> str:
    return (f"permission denied: run as root, or grant the capture engine the "
            f"capabilities once with: sudo setcap cap_net_raw,cap_net_admin+eip {engine.path}")


def build_command(engine: Engine, interface: str, bpf: str, *, count: int | None = None,
                  buffer_mib: int = DEFAULT_BUFFER_MIB, snaplen: int = 0) -> list[str]:
    """The engine's command line: capture ``interface`` through ``bpf``, every
    packet written to standard output as soon as it is captured."""
    cmd = [engine.path, "-i", interface, "-w", "-"]
    if engine.name == "dumpcap":
        cmd += ["-q", "-B", str(buffer_mib)]  # dumpcap flushes each packet to a pipe
    else:
        # -U: flush each packet; --immediate-mode: no batching in the kernel ring;
        # -B counts KiB.
        cmd += ["-U", "--immediate-mode", "-n", "-B", str(buffer_mib * 1024)]
    if interface == "any":
        cmd += ["-y", "LINUX_SLL2"]  # the cooked header that names the interface
    if snaplen:
        cmd += ["-s", str(snaplen)]
    if count:
        cmd += ["-c", str(count)]
    if engine.name == "dumpcap":
        return [*cmd, "-f", bpf] if bpf else cmd
    return cmd + ([bpf] if bpf else [])


_DUMPCAP_DROPS = re.compile(r"Packets received/dropped on interface '.*': (\d+)/(\d+) "
                            r"\(pcap:(\d+)/dumpcap:(\d+)/flushed:(\d+)/ps_ifdrop:(\d+)\)")


def parse_stderr_stats(text: str) -> DropStats | None:
    """The statistics dumpcap or tcpdump print on stderr when they stop (tcpdump
    also on SIGUSR1); the last ones when there are several."""
    stats: DropStats | None = None
    for line in text.splitlines():
        line = line.strip("\r")
        if m := re.match(r"Packets captured: (\d+)", line):
            stats = stats or DropStats()
            stats.captured = int(m.group(1))
        elif m := _DUMPCAP_DROPS.search(line):
            stats = stats or DropStats()
            stats.received = int(m.group(1))
            stats.kernel = int(m.group(3)) + int(m.group(6))
            stats.engine = int(m.group(4)) + int(m.group(5))
        elif m := re.match(r"(\d+) packets? (captured|received by filter|dropped by "
                           r"kernel|dropped by interface)", line):
            if m.group(2) == "captured":
                stats = DropStats(captured=int(m.group(1)))  # a new report starts
                continue
            stats = stats or DropStats()
            if m.group(2) == "received by filter":
                stats.received = int(m.group(1))
            else:
                stats.kernel += int(m.group(1))
    return stats


def explain_failure(engine: Engine, interface: str, bpf: str, stderr: str) -> str:
    """One line from what the engine printed when it could not start."""
    low = stderr.lower()
    if "no device" in low or "no such device" in low or "doesn't exist" in low:
        names = ", ".join(n for n, _ in list_interfaces(engine)[:12])
        return (f"cannot capture on {interface}: no such interface (available: {names}; "
                "wsanalyze live -D lists them)")
    if "capture filter" in low or "syntax error" in low or "can't parse filter" in low:
        m = re.search(r"\((can't parse filter expression: [^)]*|[^)]*syntax error[^)]*)\)",
                      stderr) or re.search(r"(can't parse filter expression: .*)", stderr)
        why = m.group(1).strip() if m else "invalid"
        return (f"invalid capture filter {bpf!r}: {why} (capture filters use tcpdump "
                "syntax, see man pcap-filter)")
    if "permission" in low or "not permitted" in low:
        return f"cannot capture on {interface}: {privilege_advice(engine)}"
    lines = [ln.strip() for ln in stderr.splitlines()
             if ln.strip() and not ln.startswith(("Capturing on", "File:"))]
    first = lines[0].removeprefix(f"{engine.name}: ") if lines else "it exited at once"
    return f"cannot capture on {interface}: {engine.name}: {first}"


def _death_signal() -> Callable[[], None] | None:
    """A function for the child, before exec, that makes Linux SIGTERM it if we
    are killed (kill -9), or an idle engine would capture on forever.  prctl is
    looked up here, in the parent: the child only calls it (no loader locks
    after fork)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def child() -> None:
        prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

    return child


class EngineProcess:
    """One capture: the engine's child process, its spool, its statistics.

    :meth:`start` returns once the engine has opened the interface (its file
    header arrived) or raises :class:`CaptureError`; :meth:`packets` yields the
    packets; :meth:`stop` (any thread, a signal handler) makes the engine write
    its statistics and exit, which ends :meth:`packets` after the last packet.
    """

    def __init__(self, engine: Engine, interface: str, bpf: str = "tcp", *,
                 count: int | None = None, buffer_mib: int = DEFAULT_BUFFER_MIB,
                 snaplen: int = 0, write: str | None = None,
                 ring: tuple[int, int] | None = None) -> None:
        self.engine = engine
        self.interface = interface
        self.bpf = bpf
        self.command = build_command(engine, interface, bpf, count=count,
                                     buffer_mib=buffer_mib, snaplen=snaplen)
        self.write = write
        self.ring = ring
        self.reader: CaptureReader | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._spool: Spool | None = None
        self._stderr: list[str] = []
        self._stderr_done = threading.Event()
        self._stopping = False
        self._poller: threading.Thread | None = None
        self.on_drops: list[object] = []

    # -- starting ----------------------------------------------------------

    def start(self) -> None:
        evidence = None
        if self.write is not None:
            try:
                # Unbuffered: the file holds every packet as soon as it is spooled.
                evidence = Ring(self.write, *self.ring) if self.ring else open(  # noqa: SIM115
                    self.write, "wb", buffering=0)
            except OSError as exc:
                raise CaptureError(f"cannot write {self.write}: {exc.strerror}") from None
        try:
            # Its own session: a terminal's Ctrl-C reaches only us, and we stop it
            # in order (final rows, statistics).
            self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                          start_new_session=True, preexec_fn=_death_signal())
        except OSError as exc:
            raise CaptureError(f"cannot run {self.engine.path}: {exc.strerror}") from None
        assert self._proc.stdout is not None and self._proc.stderr is not None
        threading.Thread(target=self._drain_stderr, args=(self._proc.stderr,),
                         daemon=True, name="wsanalyze-engine-stderr").start()
        self._spool = Spool(self._proc.stdout, evidence)
        if not self._spool.wait_data(_START_TIMEOUT):
            self._proc.wait(timeout=_START_TIMEOUT)
            self._stderr_done.wait(5)
            self.close()
            raise CaptureError(explain_failure(self.engine, self.interface, self.bpf,
                                               "\n".join(self._stderr)))
        self.reader = CaptureReader(f"live:{self.interface}", stream=self._spool)  # type: ignore[arg-type]
        if self.engine.name == "tcpdump":
            self._poller = threading.Thread(target=self._poll_tcpdump, daemon=True,
                                            name="wsanalyze-engine-poll")
            self._poller.start()

    def _drain_stderr(self, pipe: object) -> None:
        for raw in pipe:  # type: ignore[attr-defined]
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))
        self._stderr_done.set()

    def _poll_tcpdump(self) -> None:
        """tcpdump prints its counters on SIGUSR1: ask each second, so drops are
        seen while they happen (dumpcap reports them only at the end)."""
        proc = self._proc
        # Its SIGUSR1 handler is installed by the time it says "listening on";
        # before that, the signal would kill it.
        while not any("listening on" in line for line in self._stderr):
            if self._stderr_done.wait(0.05):
                return
        while proc is not None and proc.poll() is None and not self._stopping:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGUSR1)
            if self._stderr_done.wait(1.0):
                return

    # -- running -----------------------------------------------------------

    def packets(self) -> Iterator[RawPacket]:
        assert self.reader is not None, "start() first"
        yield from self.reader

    @property
    def running_stats(self) -> DropStats | None:
        """Counters reported so far (tcpdump: each second; dumpcap: at the end)."""
        return parse_stderr_stats("\n".join(self._stderr))

    @property
    def spooled(self) -> int:
        """Bytes captured but not yet decoded."""
        return self._spool.behind if self._spool else 0

    def stop(self) -> None:
        """Ask the engine to finish (it writes its statistics, then exits).
        Returns at once (it may be called from a signal handler)."""
        if self._stopping:
            return
        self._stopping = True
        if self.engine.name == "dumpcap":
            # dumpcap reads the kernel ring block by block, a block being handed
            # over when full or after libpcap's timeout; it does not read the last
            # one when it stops.  Packets of the last moment come after the timeout.
            timer = threading.Timer(_SETTLE, self._interrupt)
            timer.daemon = True
            timer.start()
        else:
            self._interrupt()  # tcpdump runs in immediate mode

    def _interrupt(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    def finish(self) -> DropStats:
        """After :meth:`packets` ended: wait for the engine, return its counts."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None and not self._stopping:
                self._stopping = True  # reading ended first (a corrupt stream)
                self._interrupt()
            try:
                proc.wait(timeout=_START_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._stderr_done.wait(5)
        stats = parse_stderr_stats("\n".join(self._stderr)) or DropStats()
        if self.reader is not None:
            for isb in self.reader.interface_stats.values():
                stats.kernel = max(stats.kernel, isb.ifdrop or 0)
                stats.engine = max(stats.engine, isb.osdrop or 0)
                if stats.received is None:
                    stats.received = isb.ifrecv
            if stats.captured is None:
                stats.captured = self.reader.packets_read
        return stats

    @property
    def error(self) -> str | None:
        """Why the engine ended on its own with an error, if it did."""
        if self._spool is not None and self._spool.error:
            return f"capturing on {self.interface} stopped: {self._spool.error}"
        proc = self._proc
        if proc is None or proc.returncode in (None, 0) or self._stopping:
            return None
        return explain_failure(self.engine, self.interface, self.bpf, "\n".join(self._stderr))

    def close(self) -> None:
        self.kill()
        if self._spool is not None:
            self._spool.close()
