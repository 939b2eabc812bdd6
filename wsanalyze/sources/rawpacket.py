"""The record type every capture source yields.

Its own module so that the compiled build compiles it (setup.py: COMPILED) into a
native class — a C constructor and struct fields, about 10× cheaper than a
NamedTuple's interpreted ``__new__`` — while :mod:`.records`, which holds the
exception classes, stays interpreted (see its docstring).  Import it from
:mod:`wsanalyze.sources.records` or :mod:`wsanalyze.sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final


@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class RawPacket:
    """One captured packet, as stored in the capture file."""

    number: int
    """1-based packet number, as Wireshark shows it."""
    ts: float
    """Seconds since the Unix epoch."""
    linktype: int
    """LINKTYPE_* value of the interface the packet was captured on."""
    data: bytes
    """The captured bytes (``len(data)`` is the captured length)."""
    orig_len: int
    """The packet's length on the wire; larger than ``len(data)`` when the
    snapshot length cut it."""

    def __init__(self, number: int, ts: float, linktype: int, data: bytes,
                 orig_len: int) -> None:
        self.number = number
        self.ts = ts
        self.linktype = linktype
        self.data = data
        self.orig_len = orig_len

    def __reduce__(self) -> tuple[object, ...]:
        return (RawPacket, (self.number, self.ts, self.linktype, self.data, self.orig_len))
