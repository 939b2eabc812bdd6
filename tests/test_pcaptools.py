"""Tests for the capture-crafting toolkit (tests/pcaptools.py), checked against tshark."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import wsproto
import wsproto.events
from wsproto.extensions import PerMessageDeflate

from tests.pcaptools import (
    LINKTYPES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Conversation,
    Link,
    Record,
    cut_start,
    deflate_message,
    drop,
    drop_packets,
    duplicate,
    inflate_message,
    overlap,
    read_capture,
    reorder,
    resegment,
    snaplen,
    tcp_segments,
    to_gzip,
    to_ipv6,
    to_link,
    to_pcap,
    to_pcapng,
    upgrade_request,
    upgrade_response,
    write_capture,
    write_conversations,
    ws_accept,
    ws_close_payload,
    ws_frame,
    ws_key,
    ws_mask,
)

MASK = b"\x37\xfa\x21\x3d"
ALL_LINKS: list[Link] = [
    "ethernet",
    "ethernet+vlan",
    "ethernet+qinq",
    "raw",
    "sll",
    "sll2",
    "null",
    "loop",
]

# --------------------------------------------------------------------------------------------
# tshark helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is required for these tests (apt-get install tshark)")
    return path


def run_tshark(tshark: str, capture: Path, *args: str) -> str:
    """Run tshark on ``capture``.  Port 8765 is always decoded as HTTP (HTTP heuristics miss an
    upgrade request split in tiny segments) and out-of-order segments are reassembled (off by
    default in tshark 4.0; needed to decode reordered captures)."""
    cmd = [
        tshark,
        "-n",
        "-r",
        str(capture),
        "-d",
        "tcp.port==8765,http",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass(frozen=True)
class WsFrame:
    opcode: int
    masked: bool
    payload: bytes


_WS_FIELDS = [
    "frame.number",
    "websocket.opcode",
    "websocket.mask",
    "websocket.payload.text",
    "data.data",
    "websocket.payload.ping",
    "websocket.payload.pong",
    "websocket.payload.close.status_code",
    "websocket.payload.close.reason",
]


def tshark_ws(tshark: str, capture: Path) -> list[tuple[int, WsFrame]]:
    """(frame number, frame) for every (unfragmented) WebSocket frame tshark decodes."""
    out = run_tshark(
        tshark,
        capture,
        "-Y",
        "websocket",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        *[arg for f in _WS_FIELDS for arg in ("-e", f)],
    )
    frames: list[tuple[int, WsFrame]] = []
    for line in out.splitlines():
        number, opcodes, masks, text, data, ping, pong, code, reason = line.split("\t")
        queues = {
            OP_TEXT: [t.encode() for t in text.split("|")] if text else [],
            OP_BINARY: [bytes.fromhex(d) for d in data.split("|")] if data else [],
            OP_PING: [bytes.fromhex(p) for p in ping.split("|")] if ping else [],
            OP_PONG: [bytes.fromhex(p) for p in pong.split("|")] if pong else [],
            OP_CLOSE: [
                ws_close_payload(int(c), r)
                for c, r in zip(code.split("|"), reason.split("|"), strict=False)
            ]
            if code
            else [],
        }
        for opcode_text, mask_text in zip(opcodes.split("|"), masks.split("|"), strict=True):
            opcode = int(opcode_text)
            queue = queues[opcode]
            payload = queue.pop(0) if queue else b""
            frames.append((int(number), WsFrame(opcode, mask_text in ("1", "True"), payload)))
    return frames


def tshark_flags(tshark: str, capture: Path, flt: str = "tcp.analysis.flags") -> list[int]:
    out = run_tshark(tshark, capture, "-Y", flt, "-T", "fields", "-e", "frame.number")
    return [int(n) for n in out.split()]


def tshark_fields(tshark: str, capture: Path, *fields: str, flt: str = "") -> list[list[str]]:
    args = ["-T", "fields", *[a for f in fields for a in ("-e", f)]]
    if flt:
        args += ["-Y", flt]
    return [line.split("\t") for line in run_tshark(tshark, capture, *args).splitlines()]


def tshark_follow(tshark: str, capture: Path, stream: int = 0) -> tuple[bytes, bytes]:
    """(client → server bytes, server → client bytes) of tshark's reassembled stream."""
    out = run_tshark(tshark, capture, "-q", "-z", f"follow,tcp,raw,{stream}")
    body = out.split("=" * 67)[1]
    c2s, s2c = bytearray(), bytearray()
    for line in body.splitlines():
        if not line.strip() or line.startswith(("Follow:", "Filter:", "Node ")):
            continue
        (s2c if line.startswith("\t") else c2s).extend(bytes.fromhex(line.strip()))
    return bytes(c2s), bytes(s2c)


def checksum_statuses(tshark: str, capture: Path) -> set[str]:
    out = run_tshark(
        tshark,
        capture,
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-T",
        "fields",
        "-e",
        "ip.checksum.status",
        "-e",
        "tcp.checksum.status",
    )
    return {v for line in out.splitlines() for v in line.split("\t") if v}


# --------------------------------------------------------------------------------------------
# crafted traffic
# --------------------------------------------------------------------------------------------

EXPECTED = [
    WsFrame(OP_TEXT, True, b"hello"),
    WsFrame(OP_TEXT, False, b"world"),
    WsFrame(OP_BINARY, True, bytes(range(200))),
    WsFrame(OP_BINARY, False, bytes(range(256)) * 12),  # 3072 bytes: several segments
    WsFrame(OP_PING, True, b"ping?"),
    WsFrame(OP_PONG, False, b"ping?"),
    WsFrame(OP_CLOSE, True, ws_close_payload(1000, "bye")),
    WsFrame(OP_CLOSE, False, ws_close_payload(1000, "bye")),
]


def craft(conv: Conversation | None = None) -> tuple[Conversation, list[list[int]]]:
    """The reference WebSocket conversation; returns it and the packet numbers of each frame."""
    c = conv or Conversation()
    c.handshake()
    c.ws_upgrade(host="localhost:8765", path="/chat")
    numbers = []
    for f in EXPECTED:
        direction = "c2s" if f.masked else "s2c"
        frame = ws_frame(f.opcode, f.payload, mask=MASK if f.masked else None)
        numbers.append(c.send(direction, frame))
    c.close()
    return c, numbers


@pytest.fixture
def reference(tmp_path: Path) -> tuple[Path, Conversation]:
    conv, _ = craft()
    path = tmp_path / "ref.pcap"
    conv.write(path)
    return path, conv


def test_tshark_is_installed(tshark: str) -> None:
    out = subprocess.run([tshark, "--version"], capture_output=True, text=True, check=True)
    assert "TShark" in out.stdout


# --------------------------------------------------------------------------------------------
# WebSocket byte builders
# --------------------------------------------------------------------------------------------


def test_ws_frame_rfc6455_examples() -> None:
    # RFC 6455 §5.7
    assert ws_frame(OP_TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
    assert ws_frame(OP_TEXT, b"Hello", mask=MASK) == bytes.fromhex("818537fa213d7f9f4d5158")
    assert ws_frame(OP_TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
    assert ws_frame(OP_CONT, b"lo") == bytes.fromhex("80026c6f")
    assert ws_frame(OP_PING, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert ws_frame(OP_PONG, b"Hello", mask=MASK) == bytes.fromhex("8a8537fa213d7f9f4d5158")
    assert ws_frame(OP_BINARY, bytes(256))[:4] == bytes.fromhex("827e0100")
    assert ws_frame(OP_BINARY, bytes(65536))[:10] == bytes.fromhex("827f0000000000010000")


def test_ws_frame_options() -> None:
    assert ws_frame(OP_TEXT, b"x", length_encoding="16") == bytes.fromhex("817e000178")
    assert ws_frame(OP_TEXT, b"x", length_encoding="64") == bytes.fromhex("817f000000000000000178")
    assert ws_frame(OP_TEXT, b"", rsv1=True, rsv2=True, rsv3=True)[0] == 0xF1
    assert ws_mask(ws_mask(b"payload", MASK), MASK) == b"payload"
    with pytest.raises(ValueError):
        ws_frame(OP_TEXT, b"x", mask=b"abc")
    with pytest.raises(ValueError):
        ws_frame(16)


def test_ws_accept_rfc_example() -> None:
    assert ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert len(ws_key(1)) == 24 and ws_key(1) != ws_key(2)


def test_deflate_message_rfc7692_examples() -> None:
    # RFC 7692 §7.2.3.1: "Hello" compressed, one DEFLATE block, tail stripped.
    first = deflate_message([b"Hello"])
    assert first == [bytes.fromhex("f248cdc9c90700")]
    payloads = [b"Hello", b"Hello", b"Hello world " * 20, b""]
    shared = deflate_message(payloads)
    assert len(shared[1]) < len(shared[0])  # the second "Hello" reuses the shared window
    assert inflate_message(shared) == payloads
    fresh = deflate_message(payloads, context_takeover=False, wbits=9)
    assert fresh[1] == fresh[0]
    assert inflate_message(fresh, context_takeover=False, wbits=9) == payloads
    with pytest.raises(ValueError):
        deflate_message([b"x"], wbits=8)


def test_upgrade_bytes_accepted_by_wsproto() -> None:
    key = ws_key(7)
    server = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
    server.receive_data(
        upgrade_request(
            "example.com",
            "/chat?x=1",
            key,
            extensions="permessage-deflate; client_max_window_bits",
            protocols=["chat", "superchat"],
            extra_headers=[("Origin", "http://example.com")],
        )
    )
    (request,) = list(server.events())
    assert isinstance(request, wsproto.events.Request)
    assert request.host == "example.com" and request.target == "/chat?x=1"
    assert request.subprotocols == ["chat", "superchat"]
    assert request.extensions == ["permessage-deflate; client_max_window_bits"]

    # Client side: wsproto generates its own key; our response must satisfy it.
    client = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    raw = client.send(
        wsproto.events.Request(
            host="example.com", target="/", subprotocols=["chat"], extensions=[PerMessageDeflate()]
        )
    )
    client_key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in raw.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    client.receive_data(
        upgrade_response(client_key, extensions="permessage-deflate", protocol="chat")
    )
    (accepted,) = list(client.events())
    assert isinstance(accepted, wsproto.events.AcceptConnection)
    assert accepted.subprotocol == "chat"

    # ... and our frames, including permessage-deflate ones, decode in wsproto.
    text = "compressible " * 20
    compressed = deflate_message([text.encode(), text.encode()])
    client.receive_data(
        ws_frame(OP_TEXT, compressed[0], rsv1=True)
        + ws_frame(OP_TEXT, compressed[1], rsv1=True)
        + ws_frame(OP_BINARY, b"\x00\x01")
        + ws_frame(OP_PING, b"p")
    )
    events = list(client.events())
    assert [type(e).__name__ for e in events] == [
        "TextMessage",
        "TextMessage",
        "BytesMessage",
        "Ping",
    ]
    assert isinstance(events[0], wsproto.events.TextMessage) and events[0].data == text


def test_upgrade_response_variants() -> None:
    assert upgrade_response("k", status=400).startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Sec-WebSocket-Accept" not in upgrade_response("k", status=400)
    assert b"Sec-WebSocket-Accept: nope\r\n" in upgrade_response("k", accept="nope")
    assert upgrade_response("k").endswith(b"\r\n\r\n")


# --------------------------------------------------------------------------------------------
# Conversation crafter
# --------------------------------------------------------------------------------------------


def test_conversation_packet_numbers_and_state() -> None:
    c = Conversation(client_isn=100, server_isn=900)
    assert c.handshake() == [1, 2, 3]
    # 3000 bytes with MSS 1448: 1448 + 1448 + 104; ACK after the 2nd segment and at the end.
    assert c.send("c2s", b"a" * 3000) == [4, 5, 7]
    assert c.next_seq("c2s") == 101 + 3000
    assert c.send("s2c", b"xyz", segments=[1, 2]) == [9, 10]
    # push_with_next: no final ACK, PSH deferred; the next send continues the flight.
    assert c.send("c2s", b"12", push_with_next=True) == [12]
    assert c.send("c2s", b"34") == [13]
    assert len(c.packets) == 14  # the ACK after packet 13 acks both
    assert c.close() == [15, 16, 17]
    assert c.stream_bytes("c2s") == b"a" * 3000 + b"1234"
    assert c.stream_bytes("s2c") == b"xyz"
    ts = [t for t, _ in c.packets]
    assert ts == sorted(ts) and ts[0] == 1_700_000_000.0
    with pytest.raises(ValueError):
        c.send("c2s", b"abc", segments=[1, 1])
    with pytest.raises(ValueError):
        c.send("up", b"abc")
    r = Conversation()
    r.handshake()
    r.send("c2s", b"hi")
    assert r.reset("s2c") == 6 and r.packets[-1][0] > r.packets[-2][0]


def test_tcp_segments_view(reference: tuple[Path, Conversation]) -> None:
    path, conv = reference
    segs = tcp_segments(path)
    assert [s.number for s in segs] == list(range(1, len(conv.packets) + 1))
    assert [s.flags for s in segs[:3]] == [0x02, 0x12, 0x10]  # SYN, SYN/ACK, ACK
    data = [s for s in segs if s.is_data and s.direction == "c2s"]
    assert b"".join(s.payload for s in data) == conv.stream_bytes("c2s")
    assert data[0].offset == 0 and all(a.end == b.offset for a, b in itertools.pairwise(data))


@pytest.mark.parametrize("link", ALL_LINKS)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_crafted_conversation_decodes_as_websocket(
    tshark: str, tmp_path: Path, link: Link, fmt: str
) -> None:
    conv, numbers = craft()
    path = tmp_path / f"c.{fmt}"
    conv.write(path, link=link, fmt="pcapng" if fmt == "pcapng" else "pcap")
    assert read_capture(path).linktype == LINKTYPES[link]
    frames = tshark_ws(tshark, path)
    assert [f for _, f in frames] == EXPECTED
    # Each frame is reported on the last data segment of its send().
    assert [n for n, _ in frames] == [nums[-1] for nums in numbers]
    assert tshark_flags(tshark, path) == []
    assert checksum_statuses(tshark, path) == {"1"}  # 1 = Good
    assert tshark_follow(tshark, path) == (conv.stream_bytes("c2s"), conv.stream_bytes("s2c"))


def test_link_layer_details(tshark: str, tmp_path: Path) -> None:
    conv, _ = craft()
    conv.write(tmp_path / "q.pcap", link="ethernet+qinq")
    rows = tshark_fields(tshark, tmp_path / "q.pcap", "frame.protocols", "ieee8021ad.id", "vlan.id")
    assert rows[0] == ["eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ip:tcp", "200", "100"]
    conv.write(tmp_path / "s.pcap", link="sll2")
    rows = tshark_fields(tshark, tmp_path / "s.pcap", "sll.pkttype", "tcp.srcport")
    assert rows[0] == ["4", "50000"] and rows[1] == ["0", "8765"]  # outgoing / to us


@pytest.mark.parametrize(
    ("client", "server"), [(("::1", 50000), ("::1", 8765)), (("fd00::1", 40000), ("fd00::2", 8765))]
)
def test_ipv6_conversation(
    tshark: str, tmp_path: Path, client: tuple[str, int], server: tuple[str, int]
) -> None:
    conv, _ = craft(Conversation(client=client, server=server))
    for link in ("ethernet", "null", "raw"):
        path = tmp_path / f"v6_{link}.pcap"
        conv.write(path, link=link)  # type: ignore[arg-type]
        assert [f for _, f in tshark_ws(tshark, path)] == EXPECTED
        assert tshark_flags(tshark, path) == []
        assert checksum_statuses(tshark, path) == {"1"}
        rows = tshark_fields(tshark, path, "ipv6.src", "ipv6.dst")
        assert rows[0] == [client[0], server[0]]


def test_isn_wraparound(tshark: str, tmp_path: Path) -> None:
    conv = Conversation(client_isn=2**32 - 300, server_isn=2**32 - 1000)
    conv, _ = craft(conv)
    path = tmp_path / "wrap.pcap"
    conv.write(path)
    raw_seqs = [int(r[0]) for r in tshark_fields(tshark, path, "tcp.seq_raw")]
    assert max(raw_seqs) > 2**32 - 1000 and min(raw_seqs) < 1000  # really wrapped
    assert [f for _, f in tshark_ws(tshark, path)] == EXPECTED
    assert tshark_flags(tshark, path) == []
    assert tshark_follow(tshark, path) == (conv.stream_bytes("c2s"), conv.stream_bytes("s2c"))
    segs = [s for s in tcp_segments(path) if s.is_data and s.direction == "s2c"]
    assert segs[-1].end == len(conv.stream_bytes("s2c"))  # offsets are wrap-aware


def test_frame_split_across_segments_and_sends(tshark: str, tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade()
    frame = ws_frame(OP_TEXT, b"split across three segments", mask=MASK)
    first = c.send("c2s", frame[:1], push_with_next=True)  # only the first header byte
    rest = c.send("c2s", frame[1:], segments=[3, 10, len(frame) - 14])
    two = ws_frame(OP_BINARY, b"\x01\x02") + ws_frame(OP_PING, b"")  # two frames, one segment
    (both,) = c.send("s2c", two)
    path = tmp_path / "split.pcap"
    c.write(path)
    frames = tshark_ws(tshark, path)
    assert frames == [
        (rest[-1], WsFrame(OP_TEXT, True, b"split across three segments")),
        (both, WsFrame(OP_BINARY, False, b"\x01\x02")),
        (both, WsFrame(OP_PING, False, b"")),
    ]
    assert first == [8] and tshark_flags(tshark, path) == []


def test_permessage_deflate_decoded_by_tshark(tshark: str, tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.ws_upgrade(extensions="permessage-deflate", response_extensions="permessage-deflate")
    texts = [b"Hello", b"Hello", b"Hello world " * 30]
    for payload in deflate_message(texts):
        c.send("s2c", ws_frame(OP_TEXT, payload, rsv1=True))
    path = tmp_path / "pmd.pcap"
    c.write(path)
    assert [f.payload for _, f in tshark_ws(tshark, path)] == texts


def test_timestamps_nanosecond_and_snaplen(tshark: str, tmp_path: Path) -> None:
    c = Conversation(t0=1_700_000_000.25)
    c.handshake(dt=0.000000123)
    c.send("c2s", b"x" * 200)
    for fmt in ("pcap", "pcapng"):
        path = tmp_path / f"ns.{fmt}"
        c.write(path, fmt=fmt, nanosecond=True, snaplen=100)  # type: ignore[arg-type]
        rows = tshark_fields(tshark, path, "frame.time_epoch", "frame.cap_len", "frame.len")
        assert [r[0] for r in rows[:3]] == [
            "1700000000.250000000",
            "1700000000.250000123",
            "1700000000.250000246",
        ]
        assert rows[3][1:] == ["100", "254"]  # 14 + 20 + 20 + 200 bytes, captured 100
        cap = read_capture(path)
        assert cap.nanosecond and cap.records[1].ts_ns == 1_700_000_000_250_000_123
        assert cap.records[3].orig_len == 254 and len(cap.records[3].data) == 100
    c.write(tmp_path / "us.pcap")
    assert read_capture(tmp_path / "us.pcap").records[1].ts_ns == 1_700_000_000_250_000_000


def test_write_conversations_merges_streams(tshark: str, tmp_path: Path) -> None:
    a, _ = craft(Conversation(client=("10.0.0.1", 40001), server=("10.0.0.2", 8765)))
    b, _ = craft(
        Conversation(client=("10.0.0.3", 40002), server=("10.0.0.2", 8765), t0=1_700_000_000.0105)
    )
    path = tmp_path / "two.pcap"
    numbering = write_conversations(path, [a, b])
    assert sorted(numbering[0] + numbering[1]) == list(
        range(1, len(a.packets) + len(b.packets) + 1)
    )
    rows = tshark_fields(tshark, path, "tcp.stream", "tcp.srcport", flt="websocket")
    assert len(rows) == 2 * len(EXPECTED)
    assert tshark_follow(tshark, path, 1) == (b.stream_bytes("c2s"), b.stream_bytes("s2c"))


# --------------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------------


def assert_same_stream(
    tshark: str, path: Path, conv: Conversation, *, websocket: bool = True
) -> None:
    assert tshark_follow(tshark, path) == (conv.stream_bytes("c2s"), conv.stream_bytes("s2c"))
    if websocket:
        assert [f for _, f in tshark_ws(tshark, path)] == EXPECTED
    assert checksum_statuses(tshark, path) == {"1"}


def assert_time_ordered(path: Path) -> None:
    ts = [r.ts_ns for r in read_capture(path).records]
    assert ts == sorted(ts)


def test_resegment(tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]) -> None:
    src, conv = reference
    dst = tmp_path / "reseg.pcap"
    report = resegment(src, dst, seed=5)
    assert_same_stream(tshark, dst, conv)
    assert_time_ordered(dst)
    assert tshark_flags(tshark, dst) == []
    segs = {s.number: s for s in tcp_segments(dst)}
    for old in (4, 6):  # upgrade request / response were split into 1..7 byte pieces
        pieces = report.mapping[old]
        assert len(pieces) > 10 and pieces == list(range(pieces[0], pieces[-1] + 1))
        assert all(1 <= segs[n].payload_len <= 7 for n in pieces)
    assert report.mapping[1] == [1]  # SYN untouched


def test_reorder(tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]) -> None:
    src, conv = reference
    small = tmp_path / "small.pcap"
    resegment(src, small, seed=1)
    dst = tmp_path / "reordered.pcap"
    report = reorder(small, dst, seed=3, window=3)
    assert report.swapped
    for a, b in report.swapped:
        assert report.new(a) == b and report.new(b) == a
    assert_same_stream(tshark, dst, conv)
    assert_time_ordered(dst)
    flagged = set(tshark_flags(tshark, dst))
    assert {b for _, b in report.swapped} & flagged


def test_duplicate(tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]) -> None:
    src, conv = reference
    dst = tmp_path / "dup.pcap"
    report = duplicate(src, dst, seed=2, fraction=0.3)
    assert report.inserted
    assert_same_stream(tshark, dst, conv)
    assert_time_ordered(dst)
    retrans = set(
        tshark_flags(tshark, dst, "tcp.analysis.retransmission || tcp.analysis.out_of_order")
    )
    assert set(report.inserted_numbers) <= retrans
    records = read_capture(dst).records
    for span in report.inserted:
        (original,) = span.source
        assert records[span.packet - 1].data == records[report.new(original) - 1].data


def test_overlap(tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]) -> None:
    src, conv = reference
    dst = tmp_path / "overlap.pcap"
    report = overlap(src, dst, seed=4, fraction=1.0)
    assert len(report.inserted) >= 4
    # tshark's follow handles the overlaps; its PDU reassembly (hence the WebSocket dissector)
    # does not cope with segments that carry new data overlapping later ones, so only bytes
    # are compared here.
    assert_same_stream(tshark, dst, conv, websocket=False)
    assert_time_ordered(dst)
    # tshark's own view of every inserted segment: same bytes at the same stream offset.
    rows = tshark_fields(tshark, dst, "frame.number", "tcp.seq", "tcp.payload")
    by_number = {int(n): (int(seq), bytes.fromhex(data)) for n, seq, data in rows}
    for span in report.inserted:
        seq, data = by_number[span.packet]
        assert (seq - 1, len(data)) == (span.start, span.end - span.start)
        assert data == conv.stream_bytes(span.direction)[span.start : span.end]
    segs = {s.number: s for s in tcp_segments(dst)}
    for span in report.inserted:
        seg = segs[span.packet]
        stream = conv.stream_bytes(span.direction)
        assert (seg.offset, seg.end) == (span.start, span.end)
        assert seg.payload == stream[span.start : span.end]  # same bytes as the originals
        olds = [segs[report.new(n)] for n in span.source]
        assert span.start > olds[0].offset or olds[0].payload_len == 1
        assert span.end > olds[0].end or len(olds) == 1
    assert set(report.inserted_numbers) <= set(tshark_flags(tshark, dst))


def test_drop_and_cut(tshark: str, tmp_path: Path) -> None:
    conv, numbers = craft()
    src = tmp_path / "src.pcap"
    conv.write(src)
    binary_first = numbers[3][0]  # first segment of the 3072-byte server frame
    dst = tmp_path / "drop.pcap"
    report = drop_packets(src, dst, [binary_first])
    assert report.removed == [binary_first]
    (span,) = report.removed_spans
    stream = conv.stream_bytes("s2c")
    assert (span.direction, span.end - span.start) == ("s2c", 1448)
    assert stream[span.start : span.start + 4] == ws_frame(OP_BINARY, EXPECTED[3].payload)[:4]
    lost = tshark_flags(tshark, dst, "tcp.analysis.lost_segment")
    assert lost == [report.new(numbers[3][1])]

    dst2 = tmp_path / "drop_pred.pcap"
    report2 = drop(src, dst2, predicate=lambda s: s.direction == "c2s" and s.flags == 0x10)
    assert report2.removed and all(report2.mapping[n] == [] for n in report2.removed)
    assert tshark_follow(tshark, dst2)[1] == stream

    dst3 = tmp_path / "cut.pcap"
    first_ws = numbers[0][0]
    report3 = cut_start(src, dst3, first_ws)
    assert report3.mapping[first_ws] == [1] and report3.removed == list(range(1, first_ws))
    assert len(read_capture(dst3).records) == len(conv.packets) - first_ws + 1
    segs = tcp_segments(dst3)
    assert segs[0].offset == 0 and segs[0].payload.startswith(b"\x81\x85")


def test_snaplen_transform(
    tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]
) -> None:
    src, _ = reference
    dst = tmp_path / "snap.pcap"
    report = snaplen(src, dst, 60)
    rows = tshark_fields(tshark, dst, "frame.number", "frame.cap_len", "frame.len")
    cut = [int(n) for n, cap, length in rows if int(cap) < int(length)]
    assert cut == report.truncated and cut
    assert all(int(cap) <= 60 for _, cap, _ in rows)
    assert all(s.truncated for s in tcp_segments(dst) if s.number in report.truncated)


def test_to_ipv6(tshark: str, tmp_path: Path) -> None:
    conv, _ = craft(Conversation(client=("10.1.2.3", 40000), server=("127.0.0.1", 8765)))
    src = tmp_path / "v4.pcap"
    for link in ("ethernet", "sll", "null"):
        conv.write(src, link=link)  # type: ignore[arg-type]
        dst = tmp_path / f"v6_{link}.pcap"
        to_ipv6(src, dst)
        assert_same_stream(tshark, dst, conv)
        assert tshark_flags(tshark, dst) == []
        rows = tshark_fields(tshark, dst, "ipv6.src", "ipv6.dst", "ip.src")
        assert rows[0] == ["fd00::a01:203", "::1", ""]


@pytest.mark.parametrize("link", ALL_LINKS)
def test_to_link(
    tshark: str, tmp_path: Path, reference: tuple[Path, Conversation], link: Link
) -> None:
    src, conv = reference
    dst = tmp_path / f"{link}.pcap"
    report = to_link(src, dst, link)
    assert report.removed == []
    assert read_capture(dst).linktype == LINKTYPES[link]
    assert_same_stream(tshark, dst, conv)
    assert tshark_flags(tshark, dst) == []
    # And back to ethernet from there (e.g. sll2 → ethernet).
    back = tmp_path / f"{link}_back.pcap"
    to_link(dst, back, "ethernet")
    assert_same_stream(tshark, back, conv)


def test_to_pcapng_pcap_gzip(
    tshark: str, tmp_path: Path, reference: tuple[Path, Conversation]
) -> None:
    src, conv = reference
    ng = tmp_path / "split.pcapng"
    to_pcapng(src, ng, split_interfaces=True, nanosecond=True)
    cap = read_capture(ng)
    assert cap.fmt == "pcapng" and cap.nanosecond and len(cap.interfaces) == 2
    assert_same_stream(tshark, ng, conv)
    rows = tshark_fields(tshark, ng, "frame.interface_id", "tcp.srcport")
    assert all(iface == ("0" if port == "50000" else "1") for iface, port in rows)
    back = tmp_path / "back.pcap"
    to_pcap(ng, back)
    assert [r.data for r in read_capture(back).records] == [
        r.data for r in read_capture(src).records
    ]
    gz = tmp_path / "ref.pcap.gz"
    report = to_gzip(ng, gz)
    assert report.mapping[1] == [1] and gz.read_bytes()[:2] == b"\x1f\x8b"
    assert read_capture(gz).gzipped
    assert_same_stream(tshark, gz, conv)
    # Transforms read gzip input and keep the pcapng format / interfaces.
    out = tmp_path / "dup_from_gz.pcapng"
    duplicate(gz, out, seed=1)
    assert read_capture(out).fmt == "pcapng"
    assert_same_stream(tshark, out, conv)


def test_write_capture_roundtrip(tmp_path: Path) -> None:
    records = [
        Record(1_700_000_000_000_000_001, b"\x45" + bytes(39), 101),
        Record(1_700_000_000_000_000_002, b"\x45" + bytes(19), 101, orig_len=60),
    ]
    for fmt in ("pcap", "pcapng"):
        path = tmp_path / f"r.{fmt}"
        write_capture(path, records, fmt=fmt, nanosecond=True)  # type: ignore[arg-type]
        assert read_capture(path).records == records
    with pytest.raises(ValueError):
        write_capture(tmp_path / "x.pcap", [*records, Record(0, b"", 1)])
