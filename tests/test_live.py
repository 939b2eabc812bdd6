"""Live capture on loopback: real python-websockets traffic captured by dumpcap or
tcpdump (CI runs as root), decoded as it happens.

Readiness is the "Capturing on" banner; completion is waited for by content
(rows in the output), never by fixed sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas.testing as pdt
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

import wsanalyze.live
from wsanalyze import analyze
from wsanalyze.cli import main
from wsanalyze.sources.capture import open_capture

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TIMEOUT = 120.0
BURST = 20_000
STATS = re.compile(r"wsanalyze: ([\d,]+) packets captured, ([\d,]+) dropped by the kernel")


def _free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _url(host: str, port: int) -> str:
    return f"ws://[{host}]:{port}/" if ":" in host else f"ws://{host}:{port}/"


async def _echo(ws) -> None:  # type: ignore[no-untyped-def]
    async for msg in ws:
        await ws.send(msg)


async def _burst(host: str, port: int, messages: list[str | bytes]) -> int:
    """Send every message as fast as possible while receiving the echoes."""
    async with serve(_echo, host, port, compression=None), \
            connect(_url(host, port), compression=None, max_size=None) as ws:
        async def receive() -> int:
            for _ in messages:
                await ws.recv()
            return len(messages)

        rx = asyncio.create_task(receive())
        for m in messages:
            await ws.send(m)
        return await rx


def _until(check: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait for ``check()`` (content written by another process) to come true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Live:
    """``wsanalyze live`` in a child process, its stderr read by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "wsanalyze", "live", *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=ENV)
        self.lines: list[str] = []
        self.out = ""
        self._banner = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "Capturing on" in line:
                self._banner.set()
        self._banner.set()

    @property
    def err(self) -> str:
        return "".join(self.lines)

    def started(self) -> None:
        assert self._banner.wait(TIMEOUT), "no banner"
        assert self.proc.poll() is None, self.err

    def finish(self, sig: int | None = signal.SIGTERM) -> int:
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()  # stderr is our thread's: no communicate()
        self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


def _rows(path: Path) -> list[dict]:  # type: ignore[type-arg]
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def _data(rows: list[dict]) -> list[tuple[str, bytes]]:  # type: ignore[type-arg]
    return [(r["direction"], base64.b64decode(r["payload_b64"])) for r in rows
            if r["type"] in ("text", "binary")]


def _offline(capture: Path, table: str = "messages") -> str:
    return subprocess.run([sys.executable, "-m", "wsanalyze", table, str(capture), "--format",
                           "jsonl"], capture_output=True, text=True, env=ENV, check=True,
                          timeout=TIMEOUT).stdout


# -- capture engine, bursts ------------------------------------------------------


@pytest.mark.parametrize(("interface", "host"), [("lo", "127.0.0.1"), ("any", "127.0.0.1"),
                                                 ("lo", "::1")])
def test_burst_is_captured_whole_and_w_file_equals_output(tmp_path: Path, interface: str,
                                                          host: str) -> None:
    port = _free_port(host)
    out, pcap = tmp_path / "live.jsonl", tmp_path / "evidence.pcapng"
    live = Live("-i", interface, "-f", f"tcp port {port}", "--format", "jsonl", "-o", str(out),
                "-w", str(pcap))
    try:
        live.started()
        sent: list[str | bytes] = [f"m{i}" for i in range(BURST)]
        assert asyncio.run(_burst(host, port, sent)) == BURST
        _until(lambda: len(_rows(out)) >= 2 * BURST or live.proc.poll() is not None,
               "40,000 message rows")
        status = live.finish()
    finally:
        live.kill()
    stats = STATS.search(live.err)
    assert stats, live.err
    assert stats.group(2) == "0" and status == 0, f"packets were dropped: {live.err}"
    rows = _rows(out)
    want = [(d, m.encode()) for m in sent for d in ("c2s", "s2c")]
    got = _data(rows)
    assert sorted(got) == sorted(want)
    assert [p for d, p in got if d == "c2s"] == [m.encode() for m in sent]
    assert [p for d, p in got if d == "s2c"] == [m.encode() for m in sent]
    server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert {r["server"] for r in rows} == {server}
    assert f"Capturing on '{interface}' (filter: tcp port {port})" in live.err
    # The evidence is exactly what was decoded: offline analysis, row for row.
    assert _offline(pcap) == out.read_text()
    assert open_capture(pcap).format == "pcapng"


def test_live_streams_messages_with_each_engine(tmp_path: Path) -> None:
    for engine in ("dumpcap", "tcpdump", "scapy"):
        port = _free_port()
        out = tmp_path / f"{engine}.jsonl"
        live = Live("--engine", engine, "-i", "lo", "-f", f"tcp port {port}", "--format",
                    "jsonl", "-o", str(out))
        try:
            live.started()
            sent: list[str | bytes] = ["hello live", b"\x00\x01binary", "x" * 5000, "ünïcödé"]
            asyncio.run(_burst("127.0.0.1", port, sent))
            _until(lambda out=out: len(_data(_rows(out))) >= 8, f"{engine} rows")
            assert live.finish(signal.SIGINT) == 0, live.err
        finally:
            live.kill()
        want = [(d, m.encode() if isinstance(m, str) else m) for m in sent
                for d in ("c2s", "s2c")]
        assert sorted(_data(_rows(out))) == sorted(want), engine
        assert f"with {engine}" in live.err
        if engine == "scapy":
            assert "may drop" not in live.err  # chosen explicitly: no warning
        else:
            assert STATS.search(live.err), live.err


def test_live_applies_record_filters_and_short_format_option(tmp_path: Path) -> None:
    """Issue 13's options on live: -F/--format (-f stays the BPF filter), the record
    filters applied as rows stream, and --tls-keylog (a missing file: one line)."""
    port = _free_port()
    out = tmp_path / "f.jsonl"
    live = Live("-i", "lo", "-f", f"tcp port {port}", "-F", "jsonl", "-o", str(out),
                "--type", "text", "--direction", "c2s", "--grep", "^keep")
    try:
        live.started()
        sent: list[str | bytes] = ["keep 1", b"keep binary", "drop", "keep 2"]
        asyncio.run(_burst("127.0.0.1", port, sent))
        _until(lambda: len(_rows(out)) >= 2, "the two kept rows")
        assert live.finish(signal.SIGINT) == 0, live.err
    finally:
        live.kill()
    assert _data(_rows(out)) == [("c2s", b"keep 1"), ("c2s", b"keep 2")]
    bad = _run_live("-i", "lo", "--table", "connections", "--type", "text")
    assert bad.returncode == 2
    assert "--type does not apply to the connections table" in bad.stderr
    missing = _run_live("-i", "lo", "-d", "1", "--tls-keylog", str(tmp_path / "none.txt"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("wsanalyze: error: ") and "none.txt" in missing.stderr
    assert len(missing.stderr.splitlines()) == 1


# -- stopping --------------------------------------------------------------------


async def _open_connection(port: int, evidence: Path, stop: asyncio.Event) -> None:
    async with serve(_echo, "127.0.0.1", port, compression=None), \
            connect(_url("127.0.0.1", port), compression=None) as ws:
        await ws.send("still open")
        assert await ws.recv() == "still open"
        # Hold the connection open until the capture has written the (unmasked) echo.
        await asyncio.to_thread(_until, lambda: b"still open" in evidence.read_bytes(),
                                "the echo in the -w file")
        stop.set()
        await asyncio.sleep(TIMEOUT)  # cancelled by the caller once the rows are checked


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, None])
def test_signal_or_duration_flushes_final_rows(tmp_path: Path, sig: int | None) -> None:
    """SIGTERM, SIGINT, or (None) -d ending the capture while a connection is open."""
    port = _free_port()
    out, pcap = tmp_path / "conns.jsonl", tmp_path / "e.pcapng"
    duration = ("-d", "4") if sig is None else ()
    live = Live("-i", "lo", "-f", f"tcp port {port}", "--table", "connections", "--format",
                "jsonl", "-o", str(out), "-w", str(pcap), *duration)
    status: list[int] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(_open_connection(port, pcap, stop))
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # it failed: show why
        # The connection is open: the signal must still produce its row.
        status.append(await asyncio.to_thread(live.finish, sig))
        task.cancel()

    try:
        live.started()
        asyncio.run(scenario())
    finally:
        live.kill()
    assert status == [0], live.err
    (row,) = _rows(out)
    assert row["end"] == "capture-ended"
    assert row["messages_c2s"] == 1 and row["messages_s2c"] == 1
    assert row["server"] == f"127.0.0.1:{port}"
    assert STATS.search(live.err)


def test_count_stops_and_flushes(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "c.jsonl"
    live = Live("-i", "lo", "-f", f"tcp port {port}", "-c", "3", "--table", "connections",
                "--format", "jsonl", "-o", str(out))
    try:
        live.started()
        asyncio.run(_burst("127.0.0.1", port, ["a", "b"]))
        status = live.finish(sig=None)  # -c ends it
    finally:
        live.kill()
    assert status == 0, live.err
    assert "3 packets captured, 0 dropped by the kernel on lo" in live.err
    # Three packets are the TCP handshake: a connection that never became WebSocket.
    assert _rows(out) == []


# -- drops -----------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _has_gap(out: Path) -> bool:
    return any(r["rule"] == "capture.gap" for r in _rows(out))


async def _freeze_during_burst(port: int, engine_pid: int, out: Path) -> None:
    """The engine is frozen (SIGSTOP) while 400 × 16 KB go each way, then more
    messages follow on the same connection: the bytes in between are lost.  The
    engine needs a moment to empty its full buffer, so "after" messages are sent
    until the gap shows."""
    async with serve(_echo, "127.0.0.1", port, compression=None), \
            connect(_url("127.0.0.1", port), compression=None, max_size=None) as ws:
        await ws.send("before")
        await ws.recv()
        os.kill(engine_pid, signal.SIGSTOP)
        try:
            for _ in range(400):
                await ws.send(os.urandom(16_000))
                await ws.recv()
        finally:
            os.kill(engine_pid, signal.SIGCONT)
        deadline = time.monotonic() + TIMEOUT
        while not _has_gap(out) and time.monotonic() < deadline:
            await ws.send("after")
            await ws.recv()
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("engine", ["dumpcap", "tcpdump"])
def test_drops_are_counted_reported_and_exit_3(tmp_path: Path, engine: str) -> None:
    """A frozen engine's 1 MiB kernel buffer overflows: the drops must be counted,
    printed (while capturing, and at the end), shown as gaps, and exit 3."""
    port = _free_port()
    out = tmp_path / "v.jsonl"
    live = Live("--engine", engine, "-B", "1", "-i", "lo", "-f", f"tcp port {port}",
                "--table", "violations", "--format", "jsonl", "-o", str(out))
    try:
        live.started()
        (child,) = _children(live.proc.pid)
        asyncio.run(_freeze_during_burst(port, child, out))
        _until(lambda: _has_gap(out), "a gap row")
        _until(lambda: "warning:" in live.err, "a warning while capturing")
        status = live.finish()
    finally:
        live.kill()
    assert status == 3, live.err
    stats = STATS.search(live.err)
    assert stats and int(stats.group(2).replace(",", "")) > 0, live.err
    assert "packets were dropped: their bytes are capture.gap rows" in live.err
    assert live.err.index("warning:") < live.err.index(stats.group(0))


# -- evidence, interfaces, errors --------------------------------------------------


def test_ring_keeps_the_newest_files(tmp_path: Path) -> None:
    port = _free_port()
    base = tmp_path / "ring.pcapng"
    live = Live("-i", "lo", "-f", f"tcp port {port}", "--table", "connections", "--format",
                "jsonl", "-o", str(tmp_path / "c.jsonl"), "-w", str(base), "--ring", "3,64K")
    try:
        live.started()
        asyncio.run(_burst("127.0.0.1", port, [b"r" * 4000 for _ in range(200)]))
        status = live.finish()
    finally:
        live.kill()
    assert status == 0, live.err
    files = sorted(tmp_path.glob("ring_*.pcapng"))
    assert len(files) == 3
    numbers = [int(f.stem.split("_")[1]) for f in files]
    assert numbers == list(range(numbers[0], numbers[0] + 3)) and numbers[0] > 1
    for f in files[:-1]:
        assert f.stat().st_size <= 64 * 1024 + 65_600  # one packet may cross the size
    for f in files:
        reader = open_capture(f)
        assert len(list(reader)) > 0 and reader.stopped is None


def test_list_interfaces_as_dumpcap_does() -> None:
    ours = subprocess.run([sys.executable, "-m", "wsanalyze", "live", "-D"],
                          capture_output=True, text=True, env=ENV, timeout=TIMEOUT)
    theirs = subprocess.run(["dumpcap", "-D"], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert ours.returncode == 0
    assert ours.stdout == theirs.stdout
    assert "lo" in ours.stdout and "any" in ours.stdout


def _run_live(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "wsanalyze", "live", *args],
                          capture_output=True, text=True, env=ENV, timeout=TIMEOUT)


def test_bad_interface_filter_and_privilege_are_one_line() -> None:
    with pytest.raises(SystemExit):
        main(["live", "--format", "xml"])
    missing = _run_live()
    assert missing.returncode == 2
    assert missing.stderr == "wsanalyze: error: live needs -i INTERFACE (wsanalyze live -D " \
        "lists them)\n"
    for engine in ("dumpcap", "tcpdump"):
        proc = _run_live("--engine", engine, "-i", "nosuch0", "-d", "1")
        assert proc.returncode == 1
        assert proc.stderr.startswith("wsanalyze: error: cannot capture on nosuch0: no such "
                                      "interface (available: ")
        assert "lo" in proc.stderr and "wsanalyze live -D lists them" in proc.stderr
        assert len(proc.stderr.splitlines()) == 1
        proc = _run_live("--engine", engine, "-i", "lo", "-f", "tcp portx 80", "-d", "1")
        assert proc.returncode == 1
        assert proc.stderr == ("wsanalyze: error: invalid capture filter 'tcp portx 80': "
                               "can't parse filter expression: syntax error (capture filters "
                               "use tcpdump syntax, see man pcap-filter)\n")
        # Without CAP_NET_RAW/CAP_NET_ADMIN (setpriv drops them from the bounding set,
        # as for an ordinary user; the interpreter lives under /root, out of reach
        # of other users).
        nopriv = ("setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps",
                  "-net_raw,-net_admin")
        path = shutil.which(engine) or engine
        proc = _run_live("--engine", engine, "-i", "lo", "-d", "1", prefix=nopriv)
        assert proc.returncode == 1
        assert proc.stderr == ("wsanalyze: error: cannot capture on lo: permission denied: "
                               "run as root, or grant the capture engine the capabilities "
                               f"once with: sudo setcap cap_net_raw,cap_net_admin+eip "
                               f"{path}\n")
        check = _run_live("--engine", engine, "--check", prefix=nopriv)
        assert check.returncode == 1
        assert check.stdout.splitlines() == [
            f"capture engine: {engine} ({path})",
            f"privileges: permission denied: run as root, or grant the capture engine the "
            f"capabilities once with: sudo setcap cap_net_raw,cap_net_admin+eip {path}"]
    ok = _run_live("--check")
    assert ok.returncode == 0
    assert ok.stdout == f"capture engine: dumpcap ({shutil.which('dumpcap')})\nprivileges: ok\n"


def test_interface_statistics_blocks_are_read(tmp_path: Path) -> None:
    path = tmp_path / "isb.pcapng"
    subprocess.run(["dumpcap", "-q", "-i", "lo", "-f", "tcp port 9", "-c", "1", "-a",
                    "packets:1", "-a", "duration:1", "-w", str(path)], check=True,
                   capture_output=True, timeout=TIMEOUT)
    reader = open_capture(path)
    assert list(reader) == []
    (stats,) = reader.interface_stats.values()
    assert (stats.ifrecv, stats.ifdrop) == (0, 0)


def test_interface_statistics_counters_of_a_crafted_block(tmp_path: Path) -> None:
    def block(btype: int, body: bytes) -> bytes:
        length = 12 + len(body)
        return struct.pack("<II", btype, length) + body + struct.pack("<I", length)

    def option(code: int, value: int) -> bytes:
        return struct.pack("<HHQ", code, 8, value)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 262144))
    isb = block(5, struct.pack("<III", 0, 0, 0) + option(4, 10) + option(5, 3) + option(7, 2)
                + struct.pack("<HH", 0, 0))
    path = tmp_path / "isb.pcapng"
    path.write_bytes(shb + idb + isb)
    reader = open_capture(path)
    assert list(reader) == [] and reader.stopped is None
    stats = reader.interface_stats[0]
    assert (stats.ifrecv, stats.ifdrop, stats.osdrop, stats.filteraccept) == (10, 3, 2, None)


# -- standard input ----------------------------------------------------------------


def test_stdin_from_tcpdump_decodes_as_packets_arrive(tmp_path: Path) -> None:
    port = _free_port()
    tcpdump = subprocess.Popen(["tcpdump", "-U", "-i", "lo", "-w", "-", f"tcp port {port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert tcpdump.stdout is not None and tcpdump.stderr is not None
    ours = subprocess.Popen([sys.executable, "-m", "wsanalyze", "messages", "-", "--format",
                             "jsonl"], stdin=tcpdump.stdout, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    tcpdump.stdout.close()  # ours holds the read end now
    assert ours.stdout is not None
    try:
        assert b"listening on lo" in tcpdump.stderr.readline()
        sent: list[str | bytes] = [f"piped {i}" for i in range(50)]
        asyncio.run(_burst("127.0.0.1", port, sent))
        # Every row arrives while tcpdump is still running: decoded as packets come
        # (the 100 echoed messages, then the close handshake).
        rows = [json.loads(ours.stdout.readline()) for _ in range(102)]
        assert tcpdump.poll() is None
        tcpdump.send_signal(signal.SIGINT)
        rest, err = ours.communicate(timeout=TIMEOUT)
    finally:
        for p in (tcpdump, ours):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert ours.returncode == 0, err
    assert rest == ""
    assert [r["type"] for r in rows[100:]] == ["close", "close"]
    got = _data(rows)
    for direction in ("c2s", "s2c"):
        assert [p for d, p in got if d == direction] == [m.encode() for m in sent]


def test_stdin_equals_file_for_pcap_pcapng_and_gzip(tmp_path: Path) -> None:
    port = _free_port()
    pcapng = tmp_path / "c.pcapng"
    live = Live("-i", "lo", "-f", f"tcp port {port}", "--table", "connections", "--format",
                "jsonl", "-o", str(tmp_path / "c.jsonl"), "-w", str(pcapng))
    try:
        live.started()
        asyncio.run(_burst("127.0.0.1", port, ["one", b"two", "three" * 1000]))
        assert live.finish() == 0, live.err
    finally:
        live.kill()
    pcap = tmp_path / "c.pcap"
    subprocess.run(["editcap", "-F", "pcap", str(pcapng), str(pcap)], check=True,
                   timeout=TIMEOUT)
    gz = tmp_path / "c.pcap.gz"
    gz.write_bytes(gzip.compress(pcap.read_bytes()))
    for path in (pcapng, pcap, gz):
        for table in ("messages", "frames", "violations", "connections"):
            with path.open("rb") as stdin:
                piped = subprocess.run([sys.executable, "-m", "wsanalyze", table, "-",
                                        "--format", "jsonl"], stdin=stdin, env=ENV,
                                       capture_output=True, text=True, timeout=TIMEOUT)
            assert piped.returncode == 0, piped.stderr
            assert piped.stdout == _offline(path, table), (path.name, table)
    assert len(_offline(pcapng).splitlines()) == 3 * 2 + 2  # and the two close frames
    with pcapng.open("rb") as stdin:  # --jobs cannot split a pipe: one process reads it
        jobs = subprocess.run([sys.executable, "-m", "wsanalyze", "messages", "-", "-j", "2",
                               "--format", "jsonl"], stdin=stdin, env=ENV,
                              capture_output=True, text=True, timeout=TIMEOUT)
    assert jobs.stdout == _offline(pcapng)


def test_reader_yields_each_packet_before_the_next_is_written() -> None:
    """A real pipe written packet by packet: the reader must hand over packet 1
    while the writer still waits to write packet 2."""
    sample = next((ROOT / "samples").glob("*.pcap"))
    data = sample.read_bytes()
    records = list(open_capture(sample))
    assert len(records) >= 3
    got_first = threading.Event()
    rfd, wfd = os.pipe()

    def writer() -> None:
        first_end = 24 + 16 + len(records[0].data)
        os.write(wfd, data[:first_end])
        got_first.wait(TIMEOUT)
        os.write(wfd, data[first_end:])
        os.close(wfd)

    threading.Thread(target=writer, daemon=True).start()
    saved = os.dup(0)
    os.dup2(rfd, 0)
    os.close(rfd)
    try:
        reader = open_capture("-")
        it = iter(reader)
        first = next(it)
        got_first.set()
        rest = list(it)
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    assert first == records[0]
    assert [first, *rest] == records
    assert reader.stopped is None


# -- the notebook API ------------------------------------------------------------


def test_notebook_capture_snapshot_and_stop_equal_offline(tmp_path: Path) -> None:
    port = _free_port()
    pcap = tmp_path / "nb.pcapng"
    cap = wsanalyze.live.capture("lo", bpf=f"tcp port {port}", write=str(pcap))
    first = threading.Event()
    go_on = threading.Event()

    async def client() -> None:
        async with serve(_echo, "127.0.0.1", port), connect(_url("127.0.0.1", port)) as ws:
            for i in range(20):
                await ws.send(f"phase1 {i}")
                await ws.recv()
            first.set()
            await asyncio.to_thread(go_on.wait, TIMEOUT)
            for i in range(30):
                await ws.send(f"phase2 {i}".encode())
                await ws.recv()

    t = threading.Thread(target=asyncio.run, args=(client(),))
    t.start()
    try:
        assert first.wait(TIMEOUT)
        # While the client is connected, the snapshot already has phase 1.
        _until(lambda: len(cap.snapshot().messages) >= 40, "phase 1 in a snapshot")
        snap = cap.snapshot()
        assert list(snap.messages["payload"]) == [f"phase1 {i}".encode() for i in range(20)
                                                  for _ in (0, 1)]
        assert snap.connections.empty  # the connection has not ended
        assert cap.running and cap.packets > 0
        go_on.set()
        t.join(TIMEOUT)
        result = cap.stop()
    finally:
        go_on.set()
        if cap.running:
            cap.stop()
    assert cap.stats is not None and cap.stats.dropped == 0
    assert len(result.messages) == 100 + 2  # and the close frames
    offline = analyze(pcap)
    for table in ("connections", "messages", "frames", "violations"):
        pdt.assert_frame_equal(getattr(result, table), getattr(offline, table))
    assert result.connections["end"].tolist() == ["close-handshake"]


def test_notebook_capture_bounds_memory_with_keep_and_preview(tmp_path: Path) -> None:
    port = _free_port()
    with wsanalyze.live.capture("lo", bpf=f"tcp port {port}", keep=10,
                                payloads="preview", preview_bytes=4) as cap:
        asyncio.run(_burst("127.0.0.1", port, [f"message {i:03}" for i in range(100)]))
        # The connection's row comes when it has ended: every message is decoded.
        _until(lambda: len(cap.snapshot().connections) == 1, "the connection row")
        result = cap.stop()
    assert len(result.messages) == 10
    assert result.messages["payload"].tolist() == [b"mess"] * 8 + [b"\x03\xe8", b"\x03\xe8"]
    assert result.messages["truncated"].tolist()[:8] == [True] * 8
    assert result.messages["index"].tolist()[-1] == 201
