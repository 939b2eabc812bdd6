"""The whole command line on mutated captures: seeded, bounded, every command.

Each mutant is a sample or a crafted rule case changed the way corrupt or
hostile files are: bits flipped, words set to extreme values (lengths, times),
records dropped or duplicated, files cut or spliced, timestamps pushed outside
the calendar.  Every command must answer with exit 0, 1 or 2, at most one
``wsanalyze: error:`` line and nothing else but ``wsanalyze: warning:`` lines on
stderr, no exception, and valid JSON Lines; ``analyze()`` may raise only
:class:`~wsanalyze.sources.CaptureError`.  A failure names the mutant's seed
and saves the file.  tests/data/regress/ keeps inputs that once crashed.

The atheris harnesses in fuzz/ search deeper in one layer; this checks the
product as a user runs it.
"""

from __future__ import annotations

import contextlib
import json
import random
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

import wsanalyze
from tests._capture_writers import IDB, block, epb, options, shb
from tests.rulecases import CASES, NEAR_MISSES
from wsanalyze.cli import main
from wsanalyze.sources.records import CaptureError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))
REGRESS = ROOT / "tests" / "data" / "regress"
MUTANTS = 320
CHUNKS = 8
SEED = 20261202
COMMANDS: list[list[str]] = [
    ["summary"],
    ["connections", "--format", "jsonl"],
    ["messages", "--format", "jsonl"],
    ["frames", "--format", "jsonl"],
    ["violations", "--format", "jsonl"],
    ["messages"],  # the human table (timestamps, previews)
    ["violations", "--format", "csv"],
    ["summary", "-F", "json"],
    ["report", "-o", "{out}.md", "--no-plots"],
    ["export", "-o", "{out}.pcapng", "--violations"],
]

Mutator = Callable[[random.Random, bytes, bytes], bytes]


def _flip_bits(rnd: random.Random, data: bytes, _: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        i = rnd.randrange(len(b))
        b[i] ^= 1 << rnd.randrange(8)
    return bytes(b)


_EXTREMES = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f", b"\x7f\xff\xff\xff",
             b"\x00\x00\x01\x00", b"\x10\x00\x00\x00", b"\xfe\xff\xff\xff")


def _extreme_word(rnd: random.Random, data: bytes, _: bytes) -> bytes:
    """A 32-bit field (length, timestamp, sequence number) set to an edge value."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(0, max(1, len(b) - 4)) & ~3
        b[i : i + 4] = rnd.choice(_EXTREMES)
    return bytes(b)


def _cut(rnd: random.Random, data: bytes, _: bytes) -> bytes:
    return data[: rnd.randrange(len(data))]


def _splice(rnd: random.Random, data: bytes, other: bytes) -> bytes:
    return data[: rnd.randrange(len(data))] + other[rnd.randrange(len(other)):]


def _move_chunk(rnd: random.Random, data: bytes, _: bytes) -> bytes:
    """Drop, duplicate or move a chunk: records lost, repeated or out of order."""
    a = rnd.randrange(len(data))
    b = min(len(data), a + rnd.randint(1, 512))
    chunk, rest = data[a:b], data[:a] + data[b:]
    how = rnd.randrange(3)
    if how == 0:
        return rest
    at = rnd.randrange(len(rest) + 1)
    return (rest[:at] + chunk + rest[at:]) if how == 1 else (data[:b] + chunk + data[b:])


def _far_times(rnd: random.Random, data: bytes, _: bytes) -> bytes:
    """Timestamps no calendar holds.  A pcap (32-bit seconds, at most year 2106)
    is rewrapped as pcapng with an extreme if_tsresol/if_tsoffset; in a pcapng,
    some packets get ts_high = 0xffffffff."""
    b = bytearray(data)
    if data[:4] == b"\x0a\x0d\x0d\x0a":  # pcapng, little-endian samples
        i = 0
        while i + 12 <= len(b):
            btype, blen = struct.unpack_from("<II", b, i)
            if btype == 6 and i + 16 <= len(b) and rnd.random() < 0.5:
                b[i + 12 : i + 16] = b"\xff\xff\xff\xff"
            if blen < 12:
                break
            i += blen
        return bytes(b)
    if data[:4] != b"\xd4\xc3\xb2\xa1" or len(data) < 24:
        return data
    resol = rnd.choice((b"\x00", b"\x03", b"\xff", b"\x89"))
    offset = rnd.choice((2**63 - 1, -(2**63), 2**40, -(2**40)))
    linktype = struct.unpack_from("<I", data, 20)[0] & 0xFFFF
    out = [shb(), block(IDB, struct.pack("<HHI", linktype, 0, 0)
                        + options([(9, resol), (14, struct.pack("<q", offset))]))]
    i = 24
    while i + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, i)
        frame = data[i + 16 : i + 16 + incl]
        out.append(epb(0, sec * 1_000_000 + usec, frame))
        i += 16 + incl
    return b"".join(out)


MUTATORS: list[Mutator] = [_flip_bits, _extreme_word, _cut, _splice, _move_chunk, _far_times]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    out = [p.read_bytes() for p in SAMPLES]
    folder = tmp_path_factory.mktemp("cases")
    for i, build in enumerate([*CASES.values(), *NEAR_MISSES.values()]):
        path = folder / f"{i}.pcap"
        build().write(path)
        out.append(path.read_bytes())
    return out


def mutant(originals: list[bytes], index: int) -> bytes:
    rnd = random.Random(SEED + index)
    data = rnd.choice(originals)
    for _ in range(rnd.randint(1, 3)):
        data = rnd.choice(MUTATORS)(rnd, data, rnd.choice(originals)) or b"\0"
    return data


def check_file(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every command on ``path`` as a user runs it; raise AssertionError with why."""
    with tempfile.TemporaryDirectory() as folder:  # report and export write files
        _check_commands(path, Path(folder) / "out", capsys)
    with contextlib.suppress(CaptureError):  # the one exception analyze() may raise
        wsanalyze.analyze(path)


def _check_commands(path: Path, out_stem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        args = [command[0], str(path),
                *(a.replace("{out}", str(out_stem)) for a in command[1:]), "-q"]
        try:
            code = main(args)
        except Exception as exc:  # a traceback for the user
            raise AssertionError(f"{args}: {type(exc).__name__}: {exc}") from exc
        out, err = capsys.readouterr()
        assert code in (0, 1, 2), (args, code, err)
        lines = err.splitlines()
        assert all(x.startswith(("wsanalyze: error: ", "wsanalyze: warning: ")) for x in lines), \
            (args, err[-2000:])
        assert sum(x.startswith("wsanalyze: error: ") for x in lines) == (code != 0), (args, err)
        if "jsonl" in command:
            for line in out.splitlines():
                assert isinstance(json.loads(line), dict)
        if "json" in command and code == 0:
            assert isinstance(json.loads(out), dict)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_mutated_captures_through_every_command(
        chunk: int, originals: list[bytes], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for index in range(chunk, MUTANTS, CHUNKS):
        data = mutant(originals, index)
        path = tmp_path / f"mutant-{index}.pcap"
        path.write_bytes(data)
        try:
            check_file(path, capsys)
        except AssertionError as exc:
            keep = tmp_path / "failed"
            keep.mkdir(exist_ok=True)
            (keep / path.name).write_bytes(data)
            raise AssertionError(f"mutant {index} (seed {SEED + index}, kept as "
                                 f"{keep / path.name}): {exc}") from None
        path.unlink()


@pytest.mark.parametrize("path", sorted(REGRESS.glob("*")), ids=lambda p: p.name)
def test_regression_inputs(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_file(path, capsys)


def test_mutants_differ_and_are_reproducible(originals: list[bytes]) -> None:
    first = [mutant(originals, i) for i in range(40)]
    assert first == [mutant(originals, i) for i in range(40)]
    assert len(set(first)) == 40
    assert sum(m not in originals for m in first) >= 38
