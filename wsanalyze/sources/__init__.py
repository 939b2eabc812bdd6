"""Capture sources: the only part of wsanalyze that does I/O.

A source yields :class:`RawPacket` records numbered 1.. exactly as Wireshark
numbers them. Everything downstream is fed from these records.
"""

from wsanalyze.sources.records import CaptureError, RawPacket

__all__ = ["CaptureError", "RawPacket"]
