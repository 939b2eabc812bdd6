"""Every command × closed pipe, Ctrl-C and a full disk: one line, the documented exit code.

Exit codes (cli.py): 141 when the reader of standard output went away (nothing
printed), 130 on Ctrl-C ("wsanalyze: interrupted"), 1 when an output cannot be
written ("wsanalyze: error: cannot write FILE|standard output: ...").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FRAGMENTS = SAMPLES / "node-ws-fragments.pcap"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
TIMEOUT = 120


def _commands(capture: Path, tmp: Path) -> dict[str, list[str]]:
    """Each command with arguments that make it write to standard output."""
    c = str(capture)
    return {
        "summary": ["summary", c],
        "summary-json": ["summary", c, "-F", "json"],
        "report": ["report", c, "-o", "-", "-F", "html", "--no-plots"],
        "export": ["export", c, "-o", "-", "--connection", "0"],
        "connections": ["connections", c],
        "messages": ["messages", c],
        "frames": ["frames", c, "-F", "jsonl"],
        "violations": ["violations", c, "-F", "csv"],
        "follow": ["follow", c, "--connection", "0"],
        "plot": ["plot", c, "-o", str(tmp / "plots"), "--type", "text"],
        "rules": ["rules"],
        "columns": ["columns"],
        "bare": [],
    }


COMMANDS = list(_commands(Path("x"), Path("y")))


def _default_sigint() -> None:
    # As in a terminal: a child of a background job (`make test &`, nohup, some CI
    # runners) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "wsanalyze", *argv], env=ENV,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint,
                            **kw)  # type: ignore[call-overload]


@pytest.mark.parametrize("command", COMMANDS)
def test_closed_pipe_is_a_quiet_141(command: str, tmp_path: Path) -> None:
    # The reader is gone before the first write, as `| head -1` after head exited.
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = _spawn(_commands(FRAGMENTS, tmp_path)[command], stdout=write_end)
    os.close(write_end)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert (proc.returncode, err.decode()) == (141, "")


def test_reader_leaving_mid_output(tmp_path: Path) -> None:
    """`wsanalyze messages big.pcap | head -1`: the first line arrives, then 141."""
    from benchmarks import generate

    big = tmp_path / "big.pcap"
    assert generate.main([str(big), "--connections", "200", "--messages", "10"]) == 0
    proc = _spawn(["messages", str(big), "-F", "jsonl"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith(b'{"connection": ')
    proc.stdout.close()
    assert proc.wait(timeout=TIMEOUT) == 141
    assert proc.stderr is not None and proc.stderr.read() == b""


@pytest.mark.parametrize("command", COMMANDS)
def test_stdout_on_a_full_disk(command: str, tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = _spawn(_commands(FRAGMENTS, tmp_path)[command], stdout=full)
        _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert err.decode() == ("wsanalyze: error: cannot write standard output: "
                            "No space left on device\n")


@pytest.mark.parametrize("argv", [
    ["messages", "-F", "jsonl"], ["frames", "-F", "csv"], ["violations", "-F", "json"],
    ["connections"], ["follow", "--connection", "1"],
])
def test_output_file_on_a_full_disk(argv: list[str]) -> None:
    proc = _spawn([argv[0], str(FRAGMENTS), *argv[1:], "-o", "/dev/full"],
                  stdout=subprocess.PIPE)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert (proc.returncode, out) == (1, b"")
    assert err.decode() == "wsanalyze: error: cannot write /dev/full: No space left on device\n"


def test_parquet_on_a_full_disk() -> None:
    proc = _spawn(["messages", str(FRAGMENTS), "-F", "parquet", "-o", "/dev/full"],
                  stdout=subprocess.PIPE)
    _, err = proc.communicate(timeout=TIMEOUT)
    lines = err.decode().splitlines()
    assert proc.returncode == 1 and len(lines) == 1
    assert lines[0].startswith("wsanalyze: error: cannot write /dev/full: ")
    assert "No space left on device" in lines[0]


SIGINT_COMMANDS = ["summary", "report", "export", "connections", "messages", "frames",
                   "violations", "follow", "plot"]


@pytest.mark.parametrize("command", SIGINT_COMMANDS)
def test_ctrl_c_is_one_line_and_130(command: str, tmp_path: Path) -> None:
    """SIGINT while the command waits for more of the capture (a FIFO we feed)."""
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    data = FRAGMENTS.read_bytes()
    proc = _spawn(_commands(fifo, tmp_path)[command], stdout=subprocess.PIPE)
    # Opening the FIFO for writing returns once the command has opened it: it is
    # running its command code (signal handler installed) and reading packets.
    opened: list[int] = []
    opener = threading.Thread(target=lambda: opened.append(os.open(fifo, os.O_WRONLY)))
    opener.start()
    opener.join(TIMEOUT)
    assert opened, "the command never opened the capture"
    os.write(opened[0], data[: len(data) // 2])
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    os.close(opened[0])
    assert (proc.returncode, err.decode()) == (130, "wsanalyze: interrupted\n")
    assert b"Traceback" not in out


def test_ctrl_c_in_a_terminal_with_worker_processes(tmp_path: Path) -> None:
    """Ctrl-C in a terminal reaches the whole process group, workers (-j 2) included:
    still one line and 130."""
    from benchmarks import generate

    big = tmp_path / "big.pcap"
    assert generate.main([str(big), "--connections", "100", "--messages", "10"]) == 0
    proc = _spawn(["messages", str(big), "-F", "jsonl", "-j", "2"], stdout=subprocess.PIPE,
                  start_new_session=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(b'{"connection": ')
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert (proc.returncode, err.decode()) == (130, "wsanalyze: interrupted\n")
