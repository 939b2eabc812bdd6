"""Live capture from a network interface (scapy's packet sockets).

Yields the same :class:`RawPacket` records as the file readers, numbered from 1,
so the sans-IO pipeline decodes live traffic exactly like a capture file.
Needs the privileges to open a packet socket (root or CAP_NET_RAW); a BPF
filter is compiled by tcpdump, as scapy does it.
"""

from __future__ import annotations

import select
import time
from collections.abc import Iterator

from wsanalyze.sources.records import CaptureError, RawPacket

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
