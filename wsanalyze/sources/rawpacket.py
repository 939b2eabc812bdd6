"""The record type every capture source yields.

Its own module so that the compiled build compiles it (setup.py: COMPILED) while
:mod:`.records`, which holds the exception classes, stays interpreted (see its
docstring).  Import it from :mod:`wsanalyze.sources.records` or :mod:`wsanalyze.sources`.

**The record pattern.**  Every per-packet and per-message record of the decoding
core — this one, :class:`~wsanalyze.tcp.segment.TcpSegment`, the TCP and
WebSocket events, :class:`~wsanalyze.websocket.frames.FrameHeader`, the
tracker's items — is written the same way, ``@final`` ``@dataclass(init=False,
slots=True, unsafe_hash=True)`` with a hand-written ``__init__`` and ``__reduce__``:

* mypyc compiles such a class into a *native* class: a C constructor and struct
  fields (benchmarks/bench_records.py: about 30 ns to build one, against 290 ns
  for a NamedTuple, whose ``__new__`` stays interpreted, 260 ns with the
  ``__init__`` that ``@dataclass`` generates at run time, 730 ns frozen); pure
  Python builds it in about 210 ns against 340 ns for a NamedTuple;
* the dataclass gives ``==``, ``repr`` and ``hash`` field by field, as the
  NamedTuples did, and :func:`dataclasses.replace`, :func:`~dataclasses.fields`
  where code used ``_replace`` and ``_fields``; there is no tuple API (no
  unpacking or indexing: use the attribute names);
* ``__reduce__`` rebuilds the record from its constructor arguments: mypyc's
  native classes do not pickle by default (``--jobs``, the Dask batch engine;
  a compiled frozen dataclass does not unpickle at all), and this round trip is
  faster than a NamedTuple's.
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
