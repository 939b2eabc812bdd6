"""A disk spool between a capture engine's pipe and the decoder.

A thread drains the pipe as fast as the engine writes it, into segment files in
a temporary folder, so a decoder slower than a burst delays output instead of
making the engine (and then the kernel) drop packets.  The decoder reads the
spool like a file: :meth:`Spool.read` blocks until bytes are there or the pipe
ended.  Segments are deleted once read, so the disk holds only the backlog.
The same thread copies every byte to the evidence file (``-w``) or :class:`Ring`,
so the evidence is exactly what was decoded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
import threading
from typing import IO, BinaryIO, Protocol

SEGMENT_SIZE = 64 << 20
_READ_SIZE = 1 << 20
_PIPE_SIZE = 1 << 20  # Linux's default ceiling for unprivileged users
_F_SETPIPE_SZ = 1031


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class Spool:
    """Bytes of ``pipe`` (a capture stream), readable in order by one reader."""

    def __init__(self, pipe: IO[bytes], evidence: _Sink | None = None, *,
                 segment_size: int = SEGMENT_SIZE) -> None:
        self._pipe = pipe
        self._evidence = evidence
        self._segment_size = segment_size
        self._dir = tempfile.mkdtemp(prefix="wsanalyze-spool-")
        self._cond = threading.Condition()
        self._sizes: list[int] = []  # bytes written to each segment so far
        self._wfd = -1
        self._rfd = -1
        self._rseg = 0
        self._rpos = 0
        self._written = 0
        self._read = 0
        self._eof = False
        self._closed = False
        self.error: str | None = None
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
        self._new_segment()
        self._thread = threading.Thread(target=self._drain, daemon=True,
                                        name="wsanalyze-spool")
        self._thread.start()

    def _segment_path(self, index: int) -> str:
        return os.path.join(self._dir, f"{index:06d}")

    def _new_segment(self) -> None:
        if self._wfd >= 0:
            os.close(self._wfd)
        path = self._segment_path(len(self._sizes))
        self._wfd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with self._cond:
            self._sizes.append(0)

    def _drain(self) -> None:
        fd = self._pipe.fileno()
        try:
            while True:
                data = os.read(fd, _READ_SIZE)
                if not data:
                    break
                if self._evidence is not None:
                    done = 0
                    while done < len(data):  # an unbuffered file may write a part
                        done += self._evidence.write(data[done:]) or len(data) - done
                view = memoryview(data)
                while view:
                    n = os.write(self._wfd, view)
                    view = view[n:]
                with self._cond:
                    self._sizes[-1] += len(data)
                    self._written += len(data)
                    self._cond.notify_all()
                if self._sizes[-1] >= self._segment_size:
                    self._new_segment()
        except OSError as exc:
            self.error = f"spooling the capture failed ({exc.strerror or exc})"
        finally:
            if self._evidence is not None:
                with contextlib.suppress(OSError):
                    self._evidence.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()
                closed = self._closed
            if closed:
                self._cleanup()

    # -- reader side -------------------------------------------------------

    def wait_data(self, timeout: float) -> bool:
        """True once some bytes arrived; False if the pipe ended (or ``timeout``)
        before any."""
        with self._cond:
            self._cond.wait_for(lambda: self._written or self._eof, timeout)
            return bool(self._written)

    @property
    def behind(self) -> int:
        """Bytes spooled and not yet read."""
        return self._written - self._read

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; waits for at least one unless the pipe ended."""
        with self._cond:
            while True:
                if self._closed:
                    return b""
                avail = self._sizes[self._rseg] - self._rpos
                if avail > 0:
                    break
                if self._rseg < len(self._sizes) - 1:
                    self._next_segment()
                    continue
                if self._eof:
                    return b""
                self._cond.wait()
        if self._rfd < 0:
            self._rfd = os.open(self._segment_path(self._rseg), os.O_RDONLY)
        data = os.pread(self._rfd, min(n, avail), self._rpos)
        self._rpos += len(data)
        self._read += len(data)
        return data

    def _next_segment(self) -> None:
        """The segment read is complete and fully read: free its disk space."""
        if self._rfd >= 0:
            os.close(self._rfd)
            self._rfd = -1
        with contextlib.suppress(OSError):
            os.unlink(self._segment_path(self._rseg))
        self._rseg += 1
        self._rpos = 0

    def close(self) -> None:
        """Stop reading; the files go once the drain thread is done with them
        (at once if the pipe already ended, else when it does)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            if not self._eof:
                return  # the drain thread cleans up when the pipe ends
        self._cleanup()

    def _cleanup(self) -> None:
        for fd in (self._rfd, self._wfd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._rfd = self._wfd = -1
        shutil.rmtree(self._dir, ignore_errors=True)


class Ring:
    """``--ring N,SIZE``: the evidence as at most N files of about SIZE bytes
    (``name_00001.pcapng``, ...), the oldest deleted.  Files are cut at block
    (pcapng) or record (pcap) boundaries and each starts with the capture's
    header, so each is a capture file of its own."""

    def __init__(self, path: str, files: int, size: int) -> None:
        stem, ext = os.path.splitext(path)
        self._stem, self._ext = stem, ext or ".pcapng"
        self._files = max(files, 1)
        self._size = size
        self._index = 0
        self._out: BinaryIO | None = None
        self._out_size = 0
        self._out_has_packets = False
        self._pending = b""
        self._header = b""
        self._header_done = False
        self._pcapng: bool | None = None
        self._bo = "<"
        self.paths: list[str] = []
        self._open_next()

    def _open_next(self) -> None:
        if self._out is not None:
            self._out.close()
        self._index += 1
        path = f"{self._stem}_{self._index:05d}{self._ext}"
        self._out = open(path, "wb")  # noqa: SIM115 - closed on rotation / close()
        self.paths.append(path)
        while len(self.paths) > self._files:
            with contextlib.suppress(OSError):
                os.unlink(self.paths.pop(0))
        self._out.write(self._header)
        self._out_size = len(self._header)
        self._out_has_packets = False

    def _unit(self, buf: bytes, off: int) -> tuple[int, bool] | None:
        """(length, is it a packet) of the block/record at ``off``, or None when
        it is not complete in ``buf`` yet."""
        if self._pcapng is None:
            if len(buf) < 4:
                return None
            self._pcapng = buf[:4] == b"\x0a\x0d\x0d\x0a"
            if not self._pcapng:
                self._bo = "<" if buf[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
                return (24, False) if len(buf) >= 24 else None
        if self._pcapng:
            if len(buf) - off < 12:
                return None
            if buf[off : off + 4] == b"\x0a\x0d\x0d\x0a":
                self._bo = "<" if buf[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(self._bo + "II", buf, off)
            blen = max(blen, 12)
            return (blen, btype in (2, 3, 6)) if len(buf) - off >= blen else None
        if not self._header:
            return (24, False) if len(buf) - off >= 24 else None
        if len(buf) - off < 16:
            return None
        caplen = struct.unpack_from(self._bo + "I", buf, off + 8)[0]
        return (16 + caplen, True) if len(buf) - off >= 16 + caplen else None

    def write(self, data: bytes) -> int:
        buf = self._pending + data
        off = 0
        assert self._out is not None
        while (unit := self._unit(buf, off)) is not None:
            length, packet = unit
            block = buf[off : off + length]
            if not packet and not self._header_done:
                self._header += block  # SHB, IDBs: repeated at the start of each file
            elif packet:
                self._header_done = True
                if self._out_has_packets and self._out_size + length > self._size:
                    self._open_next()
                self._out_has_packets = True
            self._out.write(block)
            self._out_size += length
            off += length
        self._pending = buf[off:]
        self._out.flush()  # each chunk on disk at once, as the -w file
        return len(data)

    def close(self) -> None:
        if self._out is not None:
            self._out.write(self._pending)
            self._out.close()
            self._out = None
