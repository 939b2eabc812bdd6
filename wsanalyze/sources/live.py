"""Live capture sources: a capture engine, or scapy's packet sockets as a fallback.

:func:`open_live` starts dumpcap or tcpdump (:mod:`wsanalyze.sources.engine`)
and falls back to :class:`LiveCapture` (scapy, which may drop packets under
load) when neither is installed.  Both yield the same :class:`RawPacket`
records as the file readers, numbered from 1, so the sans-IO pipeline decodes
live traffic exactly like a capture file.  Capturing needs root or
CAP_NET_RAW (and CAP_NET_ADMIN for the engines).
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator

from wsanalyze.sources.engine import (
    DEFAULT_BUFFER_MIB,
    DropStats,
    EngineProcess,
    find_engine,
)
from wsanalyze.sources.records import CaptureError, RawPacket

SCAPY_WARNING = ("neither dumpcap nor tcpdump is installed: capturing with scapy, which "
                 "drops packets under load (install tshark's dumpcap or tcpdump)")

# scapy layer class name of a received frame → LINKTYPE_* of its bytes.
_LINKTYPES = {"Ether": 1, "CookedLinux": 113, "CookedLinuxV2": 276, "Loopback": 0,
              "IP": 101, "IPv6": 101, "Raw": 101}


class LiveCapture:
    """Iterate packets from ``interface`` until ``count`` packets or ``duration``
    seconds (either may be None), or until :meth:`stop` or Ctrl-C."""

    def __init__(self, interface: str, *, bpf_filter: str | None = None,
                 count: int | None = None, duration: float | None = None) -> None:
        self.interface = interface
        self.count = count
        self.duration = duration
        self.packets_read = 0
        self.stopped: str | None = None
        self._stop = False
        try:
            from scapy.all import conf
            from scapy.error import Scapy_Exception
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise CaptureError(f"live capture needs scapy: {exc}") from None
        try:
            self._sock = conf.L2listen(iface=interface, filter=bpf_filter)
        except PermissionError:
            raise CaptureError(f"cannot capture on {interface}: permission denied (run as "
                               "root or grant CAP_NET_RAW)") from None
        except (OSError, Scapy_Exception, ValueError) as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CaptureError(f"cannot capture on {interface}: {text}") from None

    def stop(self) -> None:
        self._stop = True

    def __iter__(self) -> Iterator[RawPacket]:
        sock = self._sock
        deadline = time.monotonic() + self.duration if self.duration is not None else None
        number = 0
        try:
            while not self._stop and (self.count is None or number < self.count):
                wait = 0.2
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = min(wait, left)
                ready, _, _ = select.select([sock], [], [], wait)
                if not ready:
                    continue
                cls, data, ts = sock.recv_raw()
                if not data:
                    continue
                number += 1
                self.packets_read = number
                linktype = _LINKTYPES.get(getattr(cls, "__name__", ""), 1)
                yield RawPacket(number, float(ts) if ts else time.time(), linktype, data,
                                len(data))
        finally:
            sock.close()

    def close(self) -> None:
        self._stop = True

    # The interface of EngineProcess, so callers treat both sources alike.
    def packets(self) -> Iterator[RawPacket]:
        return iter(self)

    def finish(self) -> DropStats:
        return DropStats(captured=self.packets_read)

    running_stats = None
    error = None
    spooled = 0
    reader = None

    def kill(self) -> None:
        self._stop = True


LiveSource = EngineProcess | LiveCapture


def open_live(interface: str, bpf: str = "tcp", *, engine: str | None = None,
              count: int | None = None, duration: float | None = None,
              buffer_mib: int = DEFAULT_BUFFER_MIB, snaplen: int = 0,
              write: str | None = None, ring: tuple[int, int] | None = None,
              warn: list[str] | None = None) -> LiveSource:
    """Start capturing (raises :class:`CaptureError` with a one-line message).

    ``engine`` is "dumpcap", "tcpdump" or "scapy"; by default the first found.
    ``duration`` stops the capture after that many seconds (a timer calls
    ``stop()``).  Warnings for the user are appended to ``warn``.
    """
    found = None if engine == "scapy" else find_engine(engine)
    if found is None:
        if engine not in (None, "scapy"):
            raise CaptureError(f"{engine} is not installed (install it, or choose another "
                               "--engine)")
        if write is not None:
            raise CaptureError("-w needs dumpcap or tcpdump (install tshark or tcpdump)")
        if warn is not None and engine is None:
            warn.append(SCAPY_WARNING)
        return LiveCapture(interface, bpf_filter=bpf, count=count, duration=duration)
    source = EngineProcess(found, interface, bpf, count=count, buffer_mib=buffer_mib,
                           snaplen=snaplen, write=write, ring=ring)
    source.start()
    if duration is not None:
        timer = threading.Timer(duration, source.stop)
        timer.daemon = True
        timer.start()
    return source
