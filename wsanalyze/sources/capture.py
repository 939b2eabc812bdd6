"""Opening a capture file: format detection, gzip, and the packet iterator.

:func:`open_capture` (or :class:`CaptureReader`) reads pcap (microsecond or
nanosecond, either byte order) and pcapng files, gzip-compressed or not whatever
their name.  Everything that prevents reading any packet raises
:class:`CaptureError` at open time; problems found later never raise: the packets
read so far are yielded and :attr:`CaptureReader.stopped` tells where and why
reading stopped.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Generator, Iterator
from types import TracebackType
from typing import Any, BinaryIO

from wsanalyze.sources import pcap, pcapng
from wsanalyze.sources.pcap import FormatError, Read, fill
from wsanalyze.sources.records import NON_PACKET_LINKTYPE, CaptureError, RawPacket

__all__ = ["NON_PACKET_LINKTYPE", "STDIN", "CaptureError", "CaptureReader", "RawPacket",
           "open_capture"]

STDIN = "-"
"""The capture path that means standard input (a pipe from tcpdump -U -w -, ssh, ...)."""

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_IN_CHUNK = 256 * 1024

_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"\xa1\xb2\xcd\x34", "a modified (Kuznetzov) pcap file, which is not supported"),
    (b"\x34\xcd\xb2\xa1", "a modified (Kuznetzov) pcap file, which is not supported"),
    (b"snoop\0\0\0", "a snoop capture, which is not supported (convert it to pcapng with "
                     "editcap)"),
    (b"GMBU", "a Network Monitor capture, which is not supported (convert it to pcapng "
              "with editcap)"),
    (b"RTSS", "a Network Monitor capture, which is not supported (convert it to pcapng "
              "with editcap)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed, which is not supported (decompress it first)"),
    (b"\xfd7zXZ\0", "xz-compressed, which is not supported (decompress it first)"),
    (b"BZh", "bzip2-compressed, which is not supported (decompress it first)"),
    (b"\x04\x22\x4d\x18", "lz4-compressed, which is not supported (decompress it first)"),
    (b"PK\x03\x04", "a zip archive (extract the capture from it first)"),
)


def _show_path(path: str | bytes) -> str:
    text = os.fsdecode(path)
    # Keep the message on one line whatever the file name holds.
    return repr(text) if any(c in text for c in "\n\r\t") else text


def _describe_magic(head: bytes) -> str:
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    first = head[:4]
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
    return (
        f'not a pcap or pcapng file (it starts with 0x{first.hex()} "{text}"; a pcap file '
        "starts with 0xa1b2c3d4 or 0xa1b23c4d in either byte order, a pcapng file with "
        "0x0a0d0d0a)"
    )


class _PlainStream:
    """An uncompressed file read in large unbuffered reads."""

    compressed = False

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.error: str | None = None

    def read(self, n: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self._raw.read(n)
        except OSError as exc:
            self.error = f"reading the file failed ({exc.strerror or exc})"
            return b""


class _GzipStream:
    """A gzip stream decoded incrementally with zlib.

    Unlike :mod:`gzip`, every byte decoded before a corrupt or missing part is
    returned; the problem is recorded in :attr:`error` and the stream then ends.
    Concatenated members (``cat a.gz b.gz``) and zero padding between or after
    members are accepted, as gzip(1) does.
    """

    compressed = True

    def __init__(self, raw_read: Read, pending: bytes) -> None:
        self._raw_read = raw_read
        self._in = pending  # compressed bytes not yet given to zlib
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: gzip wrapper, CRC checked
        self._between_members = False
        self._done = False
        self.error: str | None = None

    def _raw(self) -> bytes:
        try:
            return self._raw_read(_GZIP_IN_CHUNK)
        except OSError as exc:
            self.error = f"reading the file failed ({exc.strerror or exc})"
            self._done = True
            return b""

    def _salvage(self, d: Any, data: bytes, exc: zlib.error) -> bytes:
        """Decode ``data`` again from the state ``d`` it failed from, in small
        steps, to keep the output that precedes the error (zlib discards the
        output of a call that fails: a bad CRC would otherwise lose the member's
        last mebibyte)."""
        self.error = f"the gzip stream is corrupt ({exc})"
        self._done = True
        out: list[bytes] = []
        step = 256
        pos = 0
        while pos < len(data) and not d.eof:
            piece = data[pos : pos + step]
            before = d.copy()
            try:
                out.append(d.decompress(piece))
            except zlib.error:
                if step == 1:
                    break
                d, step = before, 1  # narrow down to the failing byte
                continue
            pos += len(piece)
        return b"".join(out)

    def read(self, n: int) -> bytes:
        out: list[bytes] = []
        got = 0
        while got < n and not self._done:
            if not self._in:
                if got:
                    break  # a pipe: hand over what is decoded rather than wait for more
                self._in = self._raw()
                if not self._in:
                    if not self._done and not self._between_members:
                        tail = self._d.flush()
                        if tail:
                            out.append(tail)
                            got += len(tail)
                        self.error = "the gzip stream ends before its end marker"
                    self._done = True
                    break
            if self._between_members:
                rest = self._in.lstrip(b"\0")  # gzip(1) tolerates zero padding
                if len(rest) < 2:
                    more = self._raw()
                    if not more:
                        if rest:
                            self.error = "the data after the gzip stream is not gzip"
                        self._done = True
                        break
                    self._in = rest + more
                    continue
                if not rest.startswith(_GZIP_MAGIC):
                    self.error = "the data after the gzip stream is not gzip"
                    self._done = True
                    break
                self._in = rest
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._between_members = False
            saved = self._d.copy()  # ~40 KB of state, copied once per large read
            try:
                data = self._d.decompress(self._in, n - got)
            except zlib.error as exc:
                data = self._salvage(saved, self._in, exc)
            if self._d.eof:
                self._in = self._d.unused_data
                self._between_members = True
            else:
                self._in = self._d.unconsumed_tail
            if data:
                out.append(data)
                got += len(data)
        return b"".join(out)


def _count(n: int) -> str:
    if n == 0:
        return "no packet was read"
    return "1 packet was read" if n == 1 else f"{n} packets were read"


class CaptureReader:
    """Iterable of the :class:`RawPacket` records of a pcap or pcapng file.

    The constructor opens the file and checks its header; it raises
    :class:`CaptureError` (a one-line message) when nothing can be read.  Iterating
    yields packets numbered 1.. as Wireshark numbers them.  After the iteration,
    :attr:`stopped` is ``None`` when the whole file was read, otherwise one sentence
    naming the packet and byte offset where reading stopped and why; it never
    raises after the header.  A reader can be iterated once.
    """

    stopped: str | None
    """``None`` after a complete read; the reason reading stopped early otherwise."""
    packets_read: int
    """Packet records read so far (the number of the last one)."""
    format: str
    """``"pcap"`` or ``"pcapng"``."""
    compressed: bool
    """True when the file is gzip-compressed."""

    interface_stats: dict[int, pcapng.InterfaceStats]
    """The latest pcapng Interface Statistics Block of each interface (by id), as
    read so far: the capture engine's packet and drop counts."""

    def __init__(self, path: str | os.PathLike[str] | os.PathLike[bytes] | bytes,
                 stream: BinaryIO | None = None) -> None:
        self.path = os.fspath(path)
        self.stopped = None
        self.packets_read = 0
        self.interface_stats = {}
        self._started = False
        shown = "standard input" if self.path == STDIN else _show_path(self.path)
        # A stream (a pipe, a live engine's spool) is read as packets arrive: the
        # readers never ask for more than the record they are completing.
        self._file = stream if stream is not None else self._open(shown)
        try:
            self._packets = self._sniff(shown)
        except BaseException:
            self._file.close()
            raise

    def _open(self, shown: str) -> BinaryIO:
        if self.path == STDIN:
            if os.isatty(0):
                raise CaptureError("cannot read standard input: it is a terminal (pipe a "
                                   "capture into it, e.g. tcpdump -U -w - | wsanalyze ... -)")
            return open(0, "rb", buffering=0, closefd=False)  # fd 0 stays open
        if os.path.isdir(self.path):
            raise CaptureError(f"cannot read {shown}: it is a directory, not a capture file")
        try:
            return open(self.path, "rb", buffering=0)  # closed by close() / at the end
        except FileNotFoundError:
            raise CaptureError(f"cannot read {shown}: no such file") from None
        except PermissionError:
            raise CaptureError(f"cannot read {shown}: permission denied") from None
        except OSError as exc:
            raise CaptureError(f"cannot read {shown}: {exc.strerror or exc}") from None

    def _sniff(self, shown: str) -> Generator[RawPacket, None, None]:
        plain = _PlainStream(self._file)
        head = fill(plain.read, b"", 0, 24)
        stream: _PlainStream | _GzipStream = plain
        if plain.error is not None:
            raise CaptureError(f"cannot read {shown}: {plain.error}")
        if not head:
            raise CaptureError(f"cannot read {shown}: the file is empty")
        if head.startswith(_GZIP_MAGIC):
            stream = _GzipStream(plain.read, head)
            head = fill(stream.read, b"", 0, 24)
            if not head:
                why = stream.error or "it decompresses to nothing"
                raise CaptureError(f"cannot read {shown}: gzip-compressed, but {why}")
        self._stream = stream
        self.compressed = stream.compressed
        read: Callable[[int], bytes] = stream.read
        try:
            if pcap.is_pcap_magic(head):
                self.format = "pcap"
                header = pcap.parse_header(head)
                return pcap.iter_pcap(header, read, head[pcap.HEADER_LEN :], self)
            if pcapng.is_pcapng_magic(head):
                self.format = "pcapng"
                blen = pcapng.check_head(head)
                if len(head) < blen:
                    head = fill(read, head, 0, blen)
                    if len(head) < blen:
                        raise FormatError(
                            f"pcapng section header is cut short ({len(head)} of {blen} bytes)"
                        )
                    pcapng.check_head(head)
                return pcapng.iter_pcapng(read, head, self)
        except FormatError as exc:
            cause = f" because {stream.error}" if stream.error else ""
            raise CaptureError(f"cannot read {shown}: {exc}{cause}") from None
        if len(head) < 4:
            raise CaptureError(
                f"cannot read {shown}: too short to be a capture file ({len(head)} bytes)"
            )
        raise CaptureError(f"cannot read {shown}: {_describe_magic(head)}")

    @property
    def bytes_read(self) -> int | None:
        """Bytes of the file read so far (compressed bytes for gzip), for progress
        display; None when not known (a pipe, a closed file)."""
        try:
            return self._file.tell()
        except (OSError, ValueError):
            return None

    # -- iteration ---------------------------------------------------------

    def __iter__(self) -> Iterator[RawPacket]:
        if self._started:
            raise RuntimeError("a CaptureReader can be iterated only once")
        self._started = True
        return self._packets

    def _where(self, offset: int) -> str:
        if self._stream.compressed:
            return f"byte offset {offset} of the decompressed data"
        return f"byte offset {offset}"

    def record_stop(self, kind: str, subject: str, offset: int, detail: str) -> None:
        """Format-reader callback: reading stops at ``offset`` (see PacketSink)."""
        cause = f" because {self._stream.error}" if self._stream.error else ""
        self.stopped = (
            f"capture {kind}: {subject} at {self._where(offset)} {detail}{cause}; "
            f"{_count(self.packets_read)}"
        )
        self._file.close()

    def record_stats(self, interface: int, stats: pcapng.InterfaceStats) -> None:
        """Format-reader callback: an Interface Statistics Block was read."""
        self.interface_stats[interface] = stats

    def record_end(self, offset: int) -> None:
        """Format-reader callback: the data ended at a record boundary."""
        if self._stream.error:
            self.stopped = (
                f"capture truncated: {self._stream.error} at {self._where(offset)}, where "
                f"packet {self.packets_read + 1} would start; {_count(self.packets_read)}"
            )
        else:
            self.stopped = None
        self._file.close()

    # -- resources ---------------------------------------------------------

    def close(self) -> None:
        """Stop reading and close the file (iteration ends)."""
        self._packets.close()
        self._file.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_capture(path: str | os.PathLike[str] | os.PathLike[bytes] | bytes) -> CaptureReader:
    """Open a pcap or pcapng file (optionally gzip-compressed) for reading; ``"-"``
    reads standard input, packet by packet as they arrive.

    Raises :class:`CaptureError` when nothing can be read from it.
    """
    return CaptureReader(path)
