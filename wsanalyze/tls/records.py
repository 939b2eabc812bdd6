"""The TLS record layer of one direction (RFC 8446 §5.1, RFC 5246 §6.2), sans-IO.

:class:`RecordReader` cuts a byte stream into records, bounded: one record of
ciphertext at most is buffered.  After lost bytes (a capture gap) or a header
that cannot be a record, it resynchronises: it offers *candidate* records,
found by their header pattern, that the caller accepts (they decrypted) or
rejects (the search goes on one byte later).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
HEARTBEAT = 24
_TYPES = frozenset((CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT))

MAX_RECORD_13 = (1 << 14) + 256
"""Largest TLSCiphertext body in TLS 1.3 (RFC 8446 §5.2)."""
MAX_RECORD_12 = (1 << 14) + 2048
"""Largest TLSCiphertext body in TLS 1.2 (RFC 5246 §6.2.3)."""
HEADER = 5


class Record(NamedTuple):
    type: int
    version: int
    header: bytes
    body: bytes | memoryview
    """A memoryview when read straight from a packet's bytes."""
    packet: int
    """The packet that completed the record."""
    ts: float
    offset: int
    """TCP stream offset of the record header."""
    candidate: bool
    """Found while resynchronising: :meth:`RecordReader.accept` or ``reject`` it."""


def plausible_header(data: bytes | bytearray, pos: int, limit: int) -> bool:
    """Do the 5 bytes at ``pos`` look like a record header?"""
    return (data[pos] in _TYPES and data[pos + 1] == 3 and data[pos + 2] <= 4
            and ((data[pos + 3] << 8) | data[pos + 4]) <= limit)


class RecordReader:
    """Records of one direction; see the module docstring."""

    def __init__(self) -> None:
        self.limit = MAX_RECORD_12
        self.buf = bytearray()
        self.base = 0
        """TCP stream offset of ``buf[0]``."""
        self.chunks: deque[tuple[int, int, float]] = deque()
        """(end offset, packet, ts) of the packets whose bytes are in ``buf``."""
        self.syncing = False
        self._scan = 0
        """While syncing: the position in ``buf`` the search for a header resumes at."""
        self.problem: str | None = None
        """Set when a header was impossible; the caller reports and clears it."""

    def push(self, data: bytes, packet: int, ts: float, offset: int) -> None:
        if not self.buf:
            self.base = offset
        self.buf += data
        self.chunks.append((offset + len(data), packet, ts))

    def lost(self, resume: int) -> None:
        """Bytes were lost; the stream goes on at TCP offset ``resume``."""
        self.buf.clear()
        self.chunks.clear()
        self.base = resume
        self.syncing = True
        self._scan = 0

    def next(self) -> Record | None:
        """The next complete record (or candidate), or None until more bytes come."""
        buf = self.buf
        if self.syncing:
            return self._candidate()
        if len(buf) < HEADER:
            return None
        if not plausible_header(buf, 0, self.limit):
            length = (buf[3] << 8) | buf[4]
            self.problem = (f"bytes {bytes(buf[:HEADER]).hex()} at TCP stream offset "
                            f"{self.base} are not a TLS record header"
                            + (f" (a {length}-byte record, more than the {self.limit} allowed)"
                               if buf[0] in _TYPES and buf[1] == 3 else ""))
            self.syncing = True
            self._scan = 1
            return self._candidate()
        return self._take(0, candidate=False)

    def accept(self, rec: Record) -> None:
        """The candidate decrypted: the stream is in sync again."""
        self.syncing = False
        self._consume(rec.offset - self.base + HEADER + len(rec.body))

    def reject(self, rec: Record) -> None:
        self._scan = rec.offset - self.base + 1

    def _take(self, pos: int, *, candidate: bool) -> Record | None:
        buf = self.buf
        length = (buf[pos + 3] << 8) | buf[pos + 4]
        end = pos + HEADER + length
        if len(buf) < end:
            return None
        offset = self.base + pos
        packet, ts = self._locate(offset + HEADER + length)
        header = bytes(buf[pos:pos + HEADER])
        body = bytes(buf[pos + HEADER:end])
        rec = Record(buf[pos], (buf[pos + 1] << 8) | buf[pos + 2], header, body, packet, ts,
                     offset, candidate)
        if not candidate:
            self._consume(end)
        return rec

    def _candidate(self) -> Record | None:
        buf = self.buf
        pos = self._scan
        last = len(buf) - HEADER
        while pos <= last:
            # Encrypted records are what follows a gap; handshake records too at times.
            if buf[pos] in (APPLICATION_DATA, HANDSHAKE, ALERT) and \
                    plausible_header(buf, pos, self.limit) and buf[pos + 2] >= 1:
                self._scan = pos
                if pos:
                    self._consume(pos)
                return self._take(0, candidate=True)
            pos += 1
        # Nothing here can start a record: keep only a possible header's first bytes.
        drop = max(0, len(buf) - HEADER + 1)
        if drop:
            self._consume(drop)
        return None

    def _consume(self, n: int) -> None:
        del self.buf[:n]
        self.base += n
        self._scan = max(0, self._scan - n)
        chunks = self.chunks
        while chunks and chunks[0][0] <= self.base:
            chunks.popleft()

    def _locate(self, end: int) -> tuple[int, float]:
        """The packet holding the byte before stream offset ``end``."""
        for chunk_end, packet, ts in self.chunks:
            if chunk_end >= end:
                return packet, ts
        _, packet, ts = self.chunks[-1]
        return packet, ts
