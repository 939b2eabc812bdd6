"""Capture reading: pcap, pcapng, gzip, truncation and corruption handling."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import dpkt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._capture_writers import (
    CB_COPY,
    DSB,
    block,
    epb,
    ether,
    idb,
    ipv4,
    isb,
    nrb_ipv4,
    obsolete_pb,
    pcap_file,
    pcap_header,
    pcap_record,
    shb,
    spb,
    tcp,
)
from wsanalyze.sources import capture as capture_module
from wsanalyze.sources.capture import (
    NON_PACKET_LINKTYPE,
    CaptureError,
    CaptureReader,
    RawPacket,
    open_capture,
)
from wsanalyze.sources.pcapng import SECRETS_LINKTYPE


def _frame(i: int, size: int = 0) -> bytes:
    payload = bytes((i + k) & 0xFF for k in range(size)) if size else f"pkt{i}".encode()
    return ether(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, 1000 + i, 1, 0x18, payload)))


def _write(tmp_path: Path, data: bytes, name: str = "cap.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path: Path) -> tuple[list[RawPacket], CaptureReader]:
    reader = open_capture(path)
    packets = list(reader)
    return packets, reader


def _error(path: Path | str) -> str:
    with pytest.raises(CaptureError) as info:
        CaptureReader(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_pcap_microseconds_both_byte_orders(tmp_path: Path, byteorder: str) -> None:
    frames = [_frame(i) for i in range(3)]
    data = pcap_file(
        [(1700000000, 123456, frames[0]), (1700000000, 999999, frames[1]),
         (1700000001, 0, frames[2])],
        byteorder=byteorder, snaplen=65535,
    )
    packets, reader = _read(_write(tmp_path, data))
    assert [p.number for p in packets] == [1, 2, 3]
    assert [p.ts for p in packets] == [1700000000.123456, 1700000000.999999, 1700000001.0]
    assert [p.data for p in packets] == frames
    assert [p.orig_len for p in packets] == [len(f) for f in frames]
    assert {p.linktype for p in packets} == {1}
    assert reader.stopped is None
    assert reader.packets_read == 3
    assert reader.format == "pcap"
    assert reader.compressed is False


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_pcap_nanoseconds_exact_timestamps(tmp_path: Path, byteorder: str) -> None:
    data = pcap_file(
        [(1700000000, 123456789, b"a"), (1700000000, 500000000, b"b"), (0, 1, b"c")],
        byteorder=byteorder, nanosecond=True, linktype=101,
    )
    packets, reader = _read(_write(tmp_path, data))
    # The float is the correctly rounded value of the exact decimal time.
    assert [p.ts for p in packets] == [1700000000.123456789, 1700000000.5, 1e-9]
    assert packets[0].ts == float(Decimal("1700000000.123456789"))
    assert [p.linktype for p in packets] == [101, 101, 101]
    assert reader.stopped is None


def test_pcap_linktype_ignores_fcs_bits_of_the_linktype_field(tmp_path: Path) -> None:
    data = pcap_header(linktype=1 | 0x10000000 | 0x04000000) + pcap_record(1, 2, _frame(0))
    packets, _ = _read(_write(tmp_path, data))
    assert packets[0].linktype == 1


def test_pcap_orig_len_larger_than_caplen_is_kept(tmp_path: Path) -> None:
    frame = _frame(0, 100)
    data = pcap_header(snaplen=64) + pcap_record(5, 6, frame[:64], orig_len=len(frame))
    packets, reader = _read(_write(tmp_path, data))
    assert (len(packets[0].data), packets[0].orig_len) == (64, len(frame))
    assert reader.stopped is None


def test_pcap_caplen_slightly_above_snaplen_is_accepted(tmp_path: Path) -> None:
    frame = _frame(0, 200)
    data = pcap_header(snaplen=96) + pcap_record(1, 0, frame) + pcap_record(2, 0, frame)
    packets, reader = _read(_write(tmp_path, data))
    assert [len(p.data) for p in packets] == [len(frame), len(frame)]
    assert reader.stopped is None


def test_pcap_header_only_file_has_no_packets(tmp_path: Path) -> None:
    packets, reader = _read(_write(tmp_path, pcap_header()))
    assert packets == []
    assert reader.stopped is None
    assert reader.packets_read == 0


def test_pcap_zero_length_records_count(tmp_path: Path) -> None:
    data = pcap_file([(1, 0, b""), (2, 0, b"x"), (3, 0, b"")])
    packets, reader = _read(_write(tmp_path, data))
    assert [(p.number, p.data) for p in packets] == [(1, b""), (2, b"x"), (3, b"")]
    assert reader.stopped is None


def test_pcap_truncated_in_record_data(tmp_path: Path) -> None:
    frames = [_frame(i, 60) for i in range(5)]
    data = pcap_file([(100 + i, 0, f) for i, f in enumerate(frames)])
    cut = data[: len(data) - 20]
    packets, reader = _read(_write(tmp_path, cut))
    assert [p.data for p in packets] == frames[:4]
    offset = 24 + 4 * (16 + len(frames[0]))
    assert reader.stopped == (
        f"capture truncated: packet 5 at byte offset {offset} is cut short "
        f"(record claims {len(frames[4])} bytes, {len(frames[4]) - 20} left); "
        "4 packets were read"
    )
    assert reader.packets_read == 4


def test_pcap_truncated_in_record_header(tmp_path: Path) -> None:
    data = pcap_file([(1, 0, b"abcd"), (2, 0, b"efgh")])
    packets, reader = _read(_write(tmp_path, data[:-12]))
    assert [p.data for p in packets] == [b"abcd"]
    assert reader.stopped == (
        "capture truncated: packet 2 at byte offset 44 has an incomplete record header "
        "(8 of 16 bytes); 1 packet was read"
    )


def test_pcap_first_record_cut_reads_nothing_but_does_not_raise(tmp_path: Path) -> None:
    data = pcap_file([(1, 0, _frame(0))])[:30]
    packets, reader = _read(_write(tmp_path, data))
    assert packets == []
    assert reader.stopped is not None
    assert reader.stopped.startswith("capture truncated: packet 1 at byte offset 24 ")
    assert reader.stopped.endswith("; no packet was read")


def test_pcap_absurd_caplen_stops_with_corrupt(tmp_path: Path) -> None:
    good = pcap_file([(1, 0, b"one"), (2, 0, b"two")])
    bad = pcap_record(3, 0, b"x" * 10, caplen=300000)
    packets, reader = _read(_write(tmp_path, good + bad))
    assert [p.data for p in packets] == [b"one", b"two"]
    assert reader.stopped == (
        "capture corrupt: packet 3 at byte offset 62 claims 300000 captured bytes, more "
        "than the 262144-byte maximum; 2 packets were read"
    )


def test_pcap_caplen_larger_than_rest_of_file(tmp_path: Path) -> None:
    good = pcap_file([(1, 0, b"one")])
    bad = pcap_record(2, 0, b"y" * 10, caplen=200000)
    packets, reader = _read(_write(tmp_path, good + bad))
    assert [p.data for p in packets] == [b"one"]
    assert reader.stopped == (
        "capture truncated: packet 2 at byte offset 43 is cut short (record claims 200000 "
        "bytes, 10 left); 1 packet was read"
    )


def test_pcap_garbage_after_valid_prefix(tmp_path: Path) -> None:
    frames = [_frame(i) for i in range(10)]
    good = pcap_file([(1, i, f) for i, f in enumerate(frames)])
    garbage = bytes(random.Random(7).getrandbits(8) for _ in range(4000))
    packets, reader = _read(_write(tmp_path, good + garbage))
    assert [p.data for p in packets][:10] == frames
    assert reader.stopped is not None
    assert f"at byte offset {len(good)} " in reader.stopped
    assert "packet 11 " in reader.stopped


def test_pcap_usb_linktype_allows_large_records(tmp_path: Path) -> None:
    big = bytes(range(256)) * 1200  # 307200 bytes: over the standard maximum
    data = pcap_header(linktype=220) + pcap_record(1, 0, big)
    packets, reader = _read(_write(tmp_path, data))
    assert packets[0].data == big
    assert reader.stopped is None


def test_pcap_many_packets_across_chunk_boundaries(tmp_path: Path) -> None:
    rng = random.Random(1)
    frames = [_frame(i, rng.randrange(0, 1500)) for i in range(3000)]
    frames.insert(1500, b"z" * 250000)  # one record spans a 1 MiB chunk boundary
    data = pcap_file([(1000 + i, i % 1000000, f) for i, f in enumerate(frames)])
    assert len(data) > 2 * (1 << 20)
    packets, reader = _read(_write(tmp_path, data))
    assert len(packets) == len(frames)
    assert all(p.data == f for p, f in zip(packets, frames, strict=True))
    assert [p.number for p in packets] == list(range(1, len(frames) + 1))
    assert packets[2999].ts == 3999.002999
    assert reader.stopped is None


def test_pcap_written_by_dpkt_nanosecond(tmp_path: Path) -> None:
    path = tmp_path / "dpkt.pcap"
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, nano=True, linktype=dpkt.pcap.DLT_EN10MB)
        writer.writepkt(_frame(0), ts=1700000000.25)
        writer.writepkt(_frame(1), ts=1700000002.5)
    packets, reader = _read(path)
    assert reader.stopped is None
    assert [p.ts for p in packets] == [1700000000.25, 1700000002.5]
    assert [p.data for p in packets] == [_frame(0), _frame(1)]


@given(cut=st.integers(min_value=24, max_value=24 + 5 * (16 + 7)))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pcap_any_cut_keeps_every_complete_record(tmp_path: Path, cut: int) -> None:
    data = pcap_file([(i, 0, b"%07d" % i) for i in range(5)])
    path = _write(tmp_path, data[:cut], "cut.pcap")
    packets, reader = _read(path)
    complete = (cut - 24) // 23
    assert [p.data for p in packets] == [b"%07d" % i for i in range(complete)]
    assert (reader.stopped is None) == ((cut - 24) % 23 == 0)
    if reader.stopped:
        assert f"packet {complete + 1} at byte offset {24 + 23 * complete} " in reader.stopped


# ---------------------------------------------------------------------------
# errors at open time
# ---------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pcap"
    assert _error(path) == f"cannot read {path}: no such file"


def test_directory(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"cannot read {tmp_path}: it is a directory, not a capture file"


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, pcap_header())

    def deny(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Tests run as root in CI, where chmod 000 would not stop the read.
    monkeypatch.setattr(capture_module, "open", deny, raising=False)
    assert _error(path) == f"cannot read {path}: permission denied"


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    assert _error(path) == f"cannot read {path}: the file is empty"


def test_random_bytes_name_the_magic(tmp_path: Path) -> None:
    path = _write(tmp_path, b"<html><body>not a capture</body></html>")
    msg = _error(path)
    assert msg.startswith(f"cannot read {path}: not a pcap or pcapng file")
    assert '0x3c68746d "<htm"' in msg


def test_too_short_file(tmp_path: Path) -> None:
    path = _write(tmp_path, b"ab")
    assert _error(path) == f"cannot read {path}: too short to be a capture file (2 bytes)"


def test_pcap_header_cut_short(tmp_path: Path) -> None:
    path = _write(tmp_path, pcap_header()[:20])
    assert _error(path) == f"cannot read {path}: pcap file header is cut short (20 of 24 bytes)"


def test_pcap_unsupported_version(tmp_path: Path) -> None:
    path = _write(tmp_path, struct.pack("<IHHiIII", 0xA1B2C3D4, 1, 0, 0, 0, 65535, 1))
    assert "unsupported pcap version 1.0" in _error(path)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"snoop\0\0\0\0\0\0\x02\0\0\0\x04", "a snoop capture, which is not supported"),
        (b"\x28\xb5\x2f\xfd\0\0\0\0", "zstd-compressed"),
        (b"\x34\xcd\xb2\xa1" + b"\0" * 20, "modified (Kuznetzov) pcap"),
    ],
)
def test_other_formats_are_named(tmp_path: Path, head: bytes, expected: str) -> None:
    assert expected in _error(_write(tmp_path, head))


def test_path_objects_and_strings_are_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, pcap_file([(1, 0, b"x")]))
    for arg in (path, str(path), os.fsencode(path)):
        with open_capture(arg) as reader:
            assert [p.data for p in reader] == [b"x"]


def test_iterating_twice_is_an_error(tmp_path: Path) -> None:
    reader = open_capture(_write(tmp_path, pcap_file([(1, 0, b"x")])))
    list(reader)
    with pytest.raises(RuntimeError):
        iter(reader)


def test_close_mid_iteration(tmp_path: Path) -> None:
    path = _write(tmp_path, pcap_file([(1, 0, b"x"), (2, 0, b"y")]))
    with CaptureReader(path) as reader:
        it = iter(reader)
        assert next(it).data == b"x"
    assert reader._file.closed
    assert list(it) == []
    assert reader.packets_read == 1


# ---------------------------------------------------------------------------
# gzip
# ---------------------------------------------------------------------------


def test_gzip_pcap_whatever_the_name(tmp_path: Path) -> None:
    frames = [_frame(i, 300) for i in range(50)]
    data = pcap_file([(i, 0, f) for i, f in enumerate(frames)])
    packets, reader = _read(_write(tmp_path, gzip.compress(data), "plain-name.pcap"))
    assert [p.data for p in packets] == frames
    assert reader.compressed is True
    assert reader.stopped is None


def test_gzip_pcapng(tmp_path: Path) -> None:
    data = shb() + idb(1) + epb(0, 1_700_000_000_000_000, _frame(0))
    packets, reader = _read(_write(tmp_path, gzip.compress(data), "x.pcapng.gz"))
    assert [(p.number, p.ts, p.data) for p in packets] == [(1, 1700000000.0, _frame(0))]
    assert reader.format == "pcapng"
    assert reader.stopped is None


def test_gzip_multi_member_and_zero_padding(tmp_path: Path) -> None:
    data = pcap_file([(i, 0, b"p%d" % i) for i in range(6)])
    blob = gzip.compress(data[:50]) + gzip.compress(data[50:]) + b"\0" * 64
    packets, reader = _read(_write(tmp_path, blob))
    assert [p.data for p in packets] == [b"p%d" % i for i in range(6)]
    assert reader.stopped is None


def test_gzip_cut_short_keeps_decoded_packets(tmp_path: Path) -> None:
    rng = random.Random(3)
    frames = [bytes(rng.getrandbits(8) for _ in range(200)) for _ in range(200)]
    data = pcap_file([(i, 0, f) for i, f in enumerate(frames)])
    blob = gzip.compress(data)
    packets, reader = _read(_write(tmp_path, blob[: len(blob) // 2]))
    assert 0 < len(packets) < 200
    assert [p.data for p in packets] == frames[: len(packets)]
    assert reader.stopped is not None
    assert reader.stopped.startswith(f"capture truncated: packet {len(packets) + 1} at byte ")
    assert "of the decompressed data" in reader.stopped
    assert "because the gzip stream ends before its end marker" in reader.stopped
    assert reader.stopped.endswith(f"; {len(packets)} packets were read")


def test_gzip_corrupt_member_keeps_earlier_members(tmp_path: Path) -> None:
    data = pcap_file([(i, 0, b"q%d" % i) for i in range(4)])
    # A second member whose first deflate block has the reserved type 3.
    bad_member = gzip.compress(b"")[:10] + b"\xff" * 40
    packets, reader = _read(_write(tmp_path, gzip.compress(data) + bad_member))
    assert [p.data for p in packets] == [b"q%d" % i for i in range(4)]
    assert reader.stopped == (
        f"capture truncated: the gzip stream is corrupt (Error -3 while decompressing data: "
        f"invalid block type) at byte offset {len(data)} of the decompressed data, where "
        "packet 5 would start; 4 packets were read"
    )


def test_gzip_bad_crc_is_reported_after_all_packets(tmp_path: Path) -> None:
    data = pcap_file([(i, 0, b"r%d" % i) for i in range(3)])
    blob = bytearray(gzip.compress(data))
    blob[-8] ^= 0xFF  # CRC32 of the trailer
    packets, reader = _read(_write(tmp_path, bytes(blob)))
    assert len(packets) == 3
    assert reader.stopped is not None
    assert "the gzip stream is corrupt" in reader.stopped
    assert "incorrect data check" in reader.stopped


def test_gzip_trailing_garbage(tmp_path: Path) -> None:
    data = pcap_file([(1, 0, b"s")])
    packets, reader = _read(_write(tmp_path, gzip.compress(data) + b"garbage!"))
    assert [p.data for p in packets] == [b"s"]
    assert reader.stopped is not None
    assert "the data after the gzip stream is not gzip" in reader.stopped


def test_gzip_of_garbage_names_the_magic(tmp_path: Path) -> None:
    path = _write(tmp_path, gzip.compress(b"hello world, not a capture"))
    assert "not a pcap or pcapng file (it starts with 0x68656c6c" in _error(path)


def test_gzip_header_only_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x1f\x8b\x08\x00")
    assert _error(path) == (
        f"cannot read {path}: gzip-compressed, but the gzip stream ends before its end marker"
    )


def test_gzip_of_nothing_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, gzip.compress(b""))
    assert _error(path) == f"cannot read {path}: gzip-compressed, but it decompresses to nothing"


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bo", ["<", ">"])
def test_pcapng_two_interfaces_resolutions_and_offset(tmp_path: Path, bo: str) -> None:
    raw_packet = ipv4("10.0.0.1", "10.0.0.2", tcp(1, 2, 3, 4, 0x02))
    data = (
        shb(bo)
        + idb(1, tsresol=9, byteorder=bo)  # nanoseconds
        + idb(101, tsresol=0x80 | 20, tsoffset=1_600_000_000, byteorder=bo)  # 2^-20 s
        + epb(0, 1_700_000_000_123_456_789, _frame(0), byteorder=bo)
        + epb(1, (100 << 20) + (1 << 19), raw_packet, byteorder=bo)  # 100.5 s + offset
        + epb(0, 1_700_000_001_000_000_001, _frame(1), orig_len=1000, byteorder=bo)
    )
    packets, reader = _read(_write(tmp_path, data, "x.pcapng"))
    assert [p.number for p in packets] == [1, 2, 3]
    assert [p.linktype for p in packets] == [1, 101, 1]
    assert [p.ts for p in packets] == [1700000000.123456789, 1600000100.5, 1700000001.000000001]
    assert [p.data for p in packets] == [_frame(0), raw_packet, _frame(1)]
    assert packets[2].orig_len == 1000
    assert reader.stopped is None
    assert reader.format == "pcapng"


def test_pcapng_default_resolution_is_microseconds(tmp_path: Path) -> None:
    data = shb() + idb(1) + epb(0, 1_700_000_000_654_321, b"abc")
    packets, _ = _read(_write(tmp_path, data))
    assert packets[0].ts == 1700000000.654321


def test_pcapng_simple_packet_block_reuses_previous_timestamp(tmp_path: Path) -> None:
    frame = _frame(0, 100)
    data = (
        shb() + idb(1, snaplen=80)
        + spb(b"first")  # before any timestamp: 0.0
        + epb(0, 1_700_000_000_500_000, b"epb")
        + spb(frame)  # cut to interface 0's snaplen
        + spb(b"abc", orig_len=2)  # padding beyond orig_len is not data
    )
    packets, reader = _read(_write(tmp_path, data))
    assert [(p.number, p.ts) for p in packets] == [
        (1, 0.0), (2, 1700000000.5), (3, 1700000000.5), (4, 1700000000.5)
    ]
    assert packets[0].data == b"first"
    assert (packets[2].data, packets[2].orig_len) == (frame[:80], len(frame))
    assert (packets[3].data, packets[3].orig_len) == (b"ab", 2)
    assert reader.stopped is None


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    data = shb() + idb(1) + idb(113, tsresol=3) + obsolete_pb(1, 1_700_000_000_250, b"sll")
    packets, _ = _read(_write(tmp_path, data))
    assert [(p.number, p.linktype, p.ts, p.data) for p in packets] == [
        (1, 113, 1700000000.25, b"sll")
    ]


def test_pcapng_skips_other_blocks_and_numbers_non_packet_records(tmp_path: Path) -> None:
    data = (
        shb() + idb(1)
        + nrb_ipv4(b"example.com", b"\x0a\0\0\x01")
        + epb(0, 1_000_000, b"p1")
        + isb(0, 2_000_000)
        + block(DSB, struct.pack("<II", 0x544C534B, 4) + b"keys")
        + block(0x80000001, b"local use")
        + block(0x00000009, b"__REALTIME_TIMESTAMP=1\nMESSAGE=hi\n")  # systemd journal
        + epb(0, 3_000_000, b"p3")
        + block(CB_COPY, struct.pack("<I", 32473) + b"data")
        + epb(0, 4_000_000, b"p5")
    )
    packets, reader = _read(_write(tmp_path, data))
    # The Decryption Secrets Block comes through for TLS (not numbered as a packet).
    secrets = [p for p in packets if p.linktype == SECRETS_LINKTYPE]
    assert [(p.number, p.data[8:12]) for p in secrets] == [(0, b"keys")]
    packets = [p for p in packets if p.linktype != SECRETS_LINKTYPE]
    assert [(p.number, p.linktype) for p in packets] == [
        (1, 1), (2, NON_PACKET_LINKTYPE), (3, 1), (4, NON_PACKET_LINKTYPE), (5, 1)
    ]
    assert [p.data for p in packets if p.linktype == 1] == [b"p1", b"p3", b"p5"]
    assert packets[1].ts == 1.0  # records without a timestamp reuse the previous one
    assert reader.stopped is None
    assert reader.packets_read == 5


def test_pcapng_new_section_resets_interfaces_and_byte_order(tmp_path: Path) -> None:
    data = (
        shb("<") + idb(1) + idb(101) + epb(1, 1_000_000, b"a")
        + shb(">") + idb(113, byteorder=">") + epb(0, 2_000_000, b"b", byteorder=">")
        + epb(1, 3_000_000, b"c", byteorder=">")  # interface 1 is gone with section 1
    )
    packets, reader = _read(_write(tmp_path, data))
    assert [(p.number, p.linktype, p.data) for p in packets] == [(1, 101, b"a"), (2, 113, b"b")]
    offset = len(data) - len(epb(1, 3_000_000, b"c"))
    assert reader.stopped == (
        f"capture corrupt: packet 3 at byte offset {offset} refers to interface 1, but its "
        "section describes only 1; 2 packets were read"
    )


def test_pcapng_packet_before_any_interface(tmp_path: Path) -> None:
    data = shb() + epb(0, 1, b"x")
    packets, reader = _read(_write(tmp_path, data))
    assert packets == []
    assert reader.stopped == (
        "capture corrupt: packet 1 at byte offset 28 refers to interface 0, but its section "
        "describes no interface; no packet was read"
    )


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        (block(6, b"\0" * 20, length=30), "has length 30, not a multiple of 4"),
        (block(6, b"", length=8), "has length 8, less than the 12-byte minimum"),
        (block(1, b"\0" * 8, trailer=24),
         "has a trailing length 24 that does not match its leading length 20"),
        (block(6, struct.pack("<IIIII", 0, 0, 0, 100, 100) + b"\0" * 8),
         "claims 100 captured bytes in a 40-byte block"),
    ],
)
def test_pcapng_bad_block_lengths(tmp_path: Path, bad: bytes, detail: str) -> None:
    good = shb() + idb(1) + epb(0, 1, b"ok1") + epb(0, 2, b"ok2")
    packets, reader = _read(_write(tmp_path, good + bad + epb(0, 3, b"never")))
    assert [p.data for p in packets] == [b"ok1", b"ok2"]
    assert reader.stopped is not None
    subject = "packet 3" if bad[:4] == b"\x06\0\0\0" else "the interface description block " \
        "after packet 2"
    assert reader.stopped == (
        f"capture corrupt: {subject} at byte offset {len(good)} {detail}; "
        "2 packets were read"
    )


def test_pcapng_truncated_block(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, b"ok")
    last = epb(0, 2, b"x" * 100)
    packets, reader = _read(_write(tmp_path, good + last[:50]))
    assert [p.data for p in packets] == [b"ok"]
    assert reader.stopped == (
        f"capture truncated: packet 2 at byte offset {len(good)} is cut short (block claims "
        f"{len(last)} bytes, 50 left); 1 packet was read"
    )


def test_pcapng_truncated_block_header(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, b"ok")
    packets, reader = _read(_write(tmp_path, good + b"\x06\0\0\0\x40"))
    assert [p.data for p in packets] == [b"ok"]
    assert reader.stopped == (
        f"capture truncated: the block after packet 1 at byte offset {len(good)} is cut short "
        "(5 bytes, less than a block header); 1 packet was read"
    )


def test_pcapng_garbage_after_valid_prefix(tmp_path: Path) -> None:
    good = shb() + idb(1) + b"".join(epb(0, i, _frame(i)) for i in range(5))
    garbage = bytes(random.Random(11).getrandbits(8) for _ in range(3000))
    packets, reader = _read(_write(tmp_path, good + garbage))
    assert [p.data for p in packets][:5] == [_frame(i) for i in range(5)]
    assert reader.stopped is not None
    assert f" at byte offset {len(good)} " in reader.stopped


def test_pcapng_caplen_over_maximum(tmp_path: Path) -> None:
    good = shb() + idb(1) + epb(0, 1, b"ok")
    big = epb(0, 2, b"\0" * 300000)
    packets, reader = _read(_write(tmp_path, good + big))
    assert [p.data for p in packets] == [b"ok"]
    assert reader.stopped == (
        f"capture corrupt: packet 2 at byte offset {len(good)} claims 300000 captured bytes, "
        "more than the 262144-byte maximum; 1 packet was read"
    )


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (shb()[:10], "pcapng section header is cut short (10 bytes)"),
        (shb()[:8] + b"\x11\x22\x33\x44" + shb()[12:], "pcapng section header has an invalid "
                                                      "byte-order magic 0x11223344"),
        (shb(version=(2, 0)), "pcapng section header has unsupported pcapng version 2.0"),
        (shb()[:4] + struct.pack("<I", 30) + shb()[8:],
         "pcapng section header has length 30, not a multiple of 4"),
        (shb()[:20], "pcapng section header is cut short (20 of 28 bytes)"),
    ],
)
def test_pcapng_bad_section_header_is_an_error(tmp_path: Path, data: bytes,
                                               detail: str) -> None:
    path = _write(tmp_path, data)
    assert _error(path) == f"cannot read {path}: {detail}"


def test_pcapng_written_by_dpkt(tmp_path: Path) -> None:
    path = tmp_path / "dpkt.pcapng"
    with path.open("wb") as f:
        writer = dpkt.pcapng.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        writer.writepkt(_frame(0), ts=1700000000.5)
        writer.writepkt(_frame(1), ts=1700000001.25)
    packets, reader = _read(path)
    assert [(p.ts, p.data) for p in packets] == [(1700000000.5, _frame(0)),
                                                 (1700000001.25, _frame(1))]
    assert reader.stopped is None


_HEAD = shb() + idb(1)
_BLOCKS = [epb(0, i, b"%08d" % i) for i in range(4)]


@given(cut=st.integers(min_value=28, max_value=len(_HEAD) + sum(map(len, _BLOCKS))))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pcapng_any_cut_keeps_every_complete_block(tmp_path: Path, cut: int) -> None:
    size = len(_BLOCKS[0])
    assert {len(b) for b in _BLOCKS} == {size}
    data = _HEAD + b"".join(_BLOCKS)
    packets, reader = _read(_write(tmp_path, data[:cut], "cut.pcapng"))
    complete = max(0, (cut - len(_HEAD)) // size)
    assert [p.data for p in packets] == [b"%08d" % i for i in range(complete)]
    at_boundary = cut in (28, len(_HEAD)) or (cut > len(_HEAD) and (cut - len(_HEAD)) % size == 0)
    assert (reader.stopped is None) == at_boundary


# ---------------------------------------------------------------------------
# cross-check with tshark
# ---------------------------------------------------------------------------


def _tshark(path: Path) -> list[tuple[int, str]]:
    exe = shutil.which("tshark")
    assert exe, "tshark is required for this test (apt-get install tshark)"
    out = subprocess.run(
        [exe, "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    rows = []
    for line in out.splitlines():
        number, _, epoch = line.partition("\t")
        rows.append((int(number), epoch))
    return rows


def test_tshark_agrees_on_pcapng_numbers_and_timestamps(tmp_path: Path) -> None:
    rng = random.Random(5)
    raw = ipv4("192.0.2.1", "192.0.2.2", tcp(5, 6, 7, 8, 0x10, b"raw"))
    parts = [shb(), idb(1, tsresol=9), idb(101, tsresol=0x80 | 20, tsoffset=1_500_000_000)]
    for i in range(40):
        if i % 7 == 3:
            parts.append(block(CB_COPY, struct.pack("<I", 32473) + b"custom"))
        elif i % 11 == 5:
            parts.append(isb(0, 0))
        if i % 2:
            parts.append(epb(0, 1_700_000_000_000_000_000 + rng.randrange(10**15), _frame(i)))
        else:
            parts.append(epb(1, rng.randrange(1 << 50), raw))
    parts.append(shb(">"))  # a second section, other byte order, interfaces reset
    parts.append(idb(1, tsresol=6, byteorder=">"))
    parts.extend(epb(0, 1_600_000_000_000_000 + i, _frame(i), byteorder=">") for i in range(5))
    path = _write(tmp_path, b"".join(parts), "cross.pcapng")

    packets, reader = _read(path)
    rows = _tshark(path)
    assert reader.stopped is None
    assert [p.number for p in packets] == [n for n, _ in rows]
    assert len(rows) > 45
    for pkt, (_, epoch) in zip(packets, rows, strict=True):
        if pkt.linktype == NON_PACKET_LINKTYPE:
            continue  # custom blocks carry no time; tshark shows none
        assert abs(Decimal(repr(pkt.ts)) - Decimal(epoch)) < Decimal("0.000001"), pkt.number


def test_tshark_agrees_on_pcap_nanoseconds_and_truncation(tmp_path: Path) -> None:
    data = pcap_file(
        [(1700000000 + i, (i * 123456789) % 10**9, _frame(i, i * 7)) for i in range(30)],
        nanosecond=True, byteorder=">",
    )
    full = _write(tmp_path, data, "full.pcap")
    packets, reader = _read(full)
    rows = _tshark(full)
    assert [p.number for p in packets] == [n for n, _ in rows] == list(range(1, 31))
    for pkt, (_, epoch) in zip(packets, rows, strict=True):
        assert pkt.ts == float(Decimal(epoch))

    # tshark reads the same complete packets from a truncated file.
    cut = _write(tmp_path, data[:-30], "cut.pcap")
    exe = shutil.which("tshark")
    assert exe
    out = subprocess.run([exe, "-r", str(cut), "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, check=False, timeout=120).stdout
    packets, reader = _read(cut)
    assert [p.number for p in packets] == [int(x) for x in out.split()] == list(range(1, 30))
    assert reader.stopped is not None and "packet 30 " in reader.stopped
