"""atheris harness: capture reading (pcap, pcapng, gzip) and packet parsing.

The input is a whole capture file.  It is written to an in-memory file
(``memfd_create``; a temporary file elsewhere) and opened by path with
``CaptureReader``; every packet goes through ``PacketParser.parse``.

Checked: opening raises nothing but ``CaptureError``; after a successful open
nothing raises; packets are numbered 1, 2, ... and ``packets_read`` agrees;
``stopped`` is None or one line starting with "capture"; parsed segments are
well-formed; ``notes()`` is a list of lines.

Run: ``python -m fuzz.fuzz_capture [libFuzzer flags] CORPUS_DIR...`` from the
repository root, or ``python -m fuzz.run capture``.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["wsanalyze"]):
    from wsanalyze.sources.capture import CaptureReader
    from wsanalyze.sources.pcapng import SECRETS_LINKTYPE
    from wsanalyze.sources.records import CaptureError
    from wsanalyze.tcp.packet import PacketParser
    from wsanalyze.tcp.segment import TcpSegment


class _InMemoryFile:
    """One file rewritten for every input, readable by path."""

    def __init__(self) -> None:
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("wsanalyze-fuzz")
            self.path = f"/proc/self/fd/{self.fd}"
            if not os.path.exists(self.path):  # no /proc: fall back to a file
                os.close(self.fd)
                self.fd, self.path = tempfile.mkstemp(prefix="wsanalyze-fuzz-")
                atexit.register(os.unlink, self.path)
        else:
            self.fd, self.path = tempfile.mkstemp(prefix="wsanalyze-fuzz-")
            atexit.register(os.unlink, self.path)

    def write(self, data: bytes) -> str:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        return self.path


_FILE: _InMemoryFile | None = None


def check_file(path: str) -> int:
    """Read and parse the capture at ``path``; return the packets read (-1 when
    it could not be opened)."""
    try:
        reader = CaptureReader(path)
    except CaptureError as exc:
        text = str(exc)
        assert text and "\n" not in text, repr(text)
        return -1
    parser = PacketParser()
    count = 0
    with reader:
        for pkt in reader:
            if pkt.linktype == SECRETS_LINKTYPE:
                continue  # a Decryption Secrets Block: not a packet
            count += 1
            assert pkt.number == count, (pkt.number, count)
            assert isinstance(pkt.data, bytes) and pkt.orig_len >= 0, pkt
            seg = parser.parse(pkt)
            if seg is not None:
                assert isinstance(seg, TcpSegment)
                assert len(seg.src) in (4, 16) and len(seg.src) == len(seg.dst), seg
                assert 0 <= seg.seq <= 0xFFFFFFFF and 0 <= seg.ack <= 0xFFFFFFFF, seg
                assert seg.missing >= 0, seg
    assert reader.packets_read == count, (reader.packets_read, count)
    assert reader.format in ("pcap", "pcapng")
    stopped = reader.stopped
    if stopped is not None:
        assert stopped.startswith("capture ") and "\n" not in stopped, repr(stopped)
    notes = parser.notes()
    assert all(isinstance(n, str) and "\n" not in n for n in notes), notes
    return count


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    global _FILE
    if _FILE is None:
        _FILE = _InMemoryFile()
    check_file(_FILE.write(data))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
