"""benchmarks/generate.py: its captures decode to exactly what its truth file says
was sent, the same seed gives the same bytes, and tshark sees the same frames."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import wsanalyze

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "generate.py"
OPCODES = {"1": "text", "2": "binary", "8": "close", "9": "ping", "10": "pong"}


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_generate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load()


def _capture(tmp: Path, name: str, **options: Any) -> tuple[Path, dict[str, Any]]:
    path = tmp / name
    truth = gen.generate(path, **options)
    assert json.loads(gen.truth_path(path).read_text()) == truth
    return path, truth


def _pcap_lengths(path: Path) -> list[tuple[int, int]]:
    """(stored, original) length of every record of a microsecond pcap."""
    data = path.read_bytes()
    assert struct.unpack_from("<I", data)[0] == 0xA1B2C3D4
    off, lengths = 24, []
    while off < len(data):
        stored, orig = struct.unpack_from("<II", data, off + 8)
        lengths.append((stored, orig))
        off += 16 + stored
    assert off == len(data)
    return lengths


@pytest.fixture(scope="module")
def fragmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _capture(tmp_path_factory.mktemp("gen"), "frag.pcap", seed=1, size=2_000_000,
                    concurrency=20)


@pytest.fixture(scope="module")
def unfragmented(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _capture(tmp_path_factory.mktemp("gen"), "nofrag.pcap", seed=2, size=1_000_000,
                    concurrency=20, fragments=False)


def _assert_decodes_to_truth(path: Path, truth: dict[str, Any]) -> None:
    result = wsanalyze.analyze(path)
    m = result.messages
    assert result.warnings == []
    assert len(result.connections) == truth["connections"]
    assert set(result.connections["handshake"]) == {"ok"}
    assert set(result.connections["end"]) == {"close-handshake"}
    assert result.connections["deflate"].all() == truth["params"]["deflate"]
    by_dir = {kind: dict(Counter(m[m["type"] == kind]["direction"])) for kind in gen.TYPES}
    assert by_dir == {k: {d: n for d, n in v.items() if n}
                      for k, v in truth["messages_by_direction"].items()}
    assert {k: int(m[m["type"] == k]["length"].sum()) for k in gen.TYPES} \
        == truth["payload_bytes"]
    assert bool(m["complete"].all())
    assert m["error"].isna().all()
    assert not m["truncated"].any()
    serious = result.violations[result.violations["severity"].isin(["error", "warning"])]
    assert serious.empty, serious[["rule", "message"]].to_string()
    assert len(result.frames) == truth["frames"]
    compressed = m[m["compressed"].astype(bool)]
    assert len(compressed) == truth["compressed_messages"]
    assert int(compressed["raw_length"].sum()) == truth["compressed_bytes"]
    assert int((m["frames"] > 1).sum()) == truth["fragmented_messages"]
    lengths = _pcap_lengths(path)
    assert len(lengths) == truth["packets"]
    full = 14 + 20 + 32 + gen.MSS  # binary messages fill segments; heavy's JSON does not
    top = max(orig for _, orig in lengths)
    assert (top == full) if truth["messages"]["binary"] else (top < full)
    assert path.stat().st_size == truth["file_bytes"]
    assert m[m["type"] == "text"]["length"].between(40, 4096).all()
    assert result.frames.groupby(["connection", "packet"]).size().max() > 1  # frames share
    texts = m[m["type"] == "text"]["text"]
    for text in texts.iloc[:: max(1, len(texts) // 50)]:
        json.loads(text)  # realistic JSON, not filler


def test_fragmented_deflate_capture_decodes_to_truth(
        fragmented: tuple[Path, dict[str, Any]]) -> None:
    path, truth = fragmented
    assert 2_000_000 <= truth["file_bytes"] < 2_400_000
    assert truth["fragmented_messages"] > 0
    assert truth["messages"]["binary"] > 0 and truth["messages"]["ping"] > 0
    assert truth["connections"] > 20  # ended connections were replaced
    _assert_decodes_to_truth(path, truth)


def test_deflate_heavy_profile(tmp_path: Path) -> None:
    path, truth = _capture(tmp_path, "heavy.pcap", seed=4, size=1_500_000, concurrency=20,
                           profile="deflate-heavy")
    assert truth["params"]["profile"] == "deflate-heavy"
    assert truth["messages"]["binary"] == 0
    assert truth["compressed_messages"] == truth["data_messages"] > 1000
    _assert_decodes_to_truth(path, truth)
    m = wsanalyze.analyze(path).messages
    text = m[m["type"] == "text"]
    assert len(text) == truth["data_messages"]
    assert text["compressed"].astype(bool).all()
    assert text["length"].between(*gen.HEAVY_SIZES).all()
    assert text["length"].min() < 150 and text["length"].max() > 1500  # the whole range
    ratio = int(text["length"].sum()) / int(text["raw_length"].sum())
    assert 2.7 <= ratio <= 3.3, ratio
    # Deterministic like the default profile, and different from it.
    again, _ = _capture(tmp_path, "again.pcap", seed=4, size=1_500_000, concurrency=20,
                        profile="deflate-heavy")
    assert again.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="unknown profile"):
        gen.generate(tmp_path / "x.pcap", profile="heavy")


def test_plain_capture_decodes_to_truth(tmp_path: Path) -> None:
    path, truth = _capture(tmp_path, "plain.pcap", seed=3, concurrency=5, messages=40,
                           deflate=False)
    assert truth["connections"] == 5 and truth["data_messages"] == 200
    assert truth["compressed_messages"] == 0
    _assert_decodes_to_truth(path, truth)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def cli(name: str, seed: int) -> bytes:
        out = tmp_path / name
        subprocess.run([sys.executable, str(SCRIPT), str(out), "--connections", "8",
                        "--messages", "30", "--seed", str(seed)],
                       check=True, capture_output=True)
        return out.read_bytes() + gen.truth_path(out).read_bytes()

    first = cli("a.pcap", 7)
    assert cli("b.pcap", 7) == first
    assert cli("c.pcap", 8) != first


def test_snaplen_cuts_stored_bytes_only(tmp_path: Path) -> None:
    options = {"seed": 4, "concurrency": 3, "messages": 10}
    full, truth = _capture(tmp_path, "full.pcap", **options)
    cut, cut_truth = _capture(tmp_path, "cut.pcap", snaplen=128, **options)
    assert {k: v for k, v in cut_truth.items() if k not in ("params", "file_bytes")} \
        == {k: v for k, v in truth.items() if k not in ("params", "file_bytes")}
    whole, stored = _pcap_lengths(full), _pcap_lengths(cut)
    assert [orig for _, orig in stored] == [orig for _, orig in whole]
    assert all(s == min(orig, 128) for s, orig in stored)
    assert struct.unpack_from("<I", cut.read_bytes(), 16)[0] == 128  # header snaplen


def test_tshark_sees_the_same_frames(unfragmented: tuple[Path, dict[str, Any]]) -> None:
    tshark = shutil.which("tshark")
    assert tshark, "tshark must be installed (.ci/run installs it)"
    path, truth = unfragmented
    checks = subprocess.run(
        [tshark, "-n", "-r", str(path), "-o", "ip.check_checksum:TRUE",
         "-o", "tcp.check_checksum:TRUE", "-T", "fields", "-e", "ip.checksum.status",
         "-e", "tcp.checksum.status"], capture_output=True, text=True, check=True).stdout
    assert Counter(checks.splitlines()) == {"1\t1": truth["packets"]}  # all good
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-Y", "websocket", "-T", "fields",
         "-e", "websocket.opcode", "-e", "_ws.expert.message", "-E", "occurrence=a",
         "-E", "separator=\t"], capture_output=True, text=True, check=True).stdout
    opcodes: Counter[str] = Counter()
    for line in out.splitlines():
        ops, _, expert = line.partition("\t")
        assert "Decompression failed" not in expert
        opcodes.update(OPCODES[op] for op in ops.split(","))
    assert sum(opcodes.values()) == truth["frames"]
    assert opcodes == {k: v for k, v in truth["messages"].items() if v}


def test_helpers() -> None:
    assert gen.parse_size("1G") == 10**9
    assert gen.parse_size("100M") == 10**8
    assert gen.parse_size("512Ki") == 512 * 1024
    assert gen.parse_size("2000") == 2000
    key = b"\x01\x02\x03\x04"
    assert gen.mask(gen.mask(b"hello world", key), key) == b"hello world"
    assert gen.mask(b"\x00" * 6, key) == key + key[:2]
    # RFC 6455 §1.3 example
    assert gen.ws_accept(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert gen.frame(gen.OP_TEXT, b"Hello") == b"\x81\x05Hello"
    assert gen.frame(gen.OP_BINARY, b"x" * 256)[:4] == b"\x82\x7e\x01\x00"
    assert gen.frame(gen.OP_BINARY, b"x" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")
    assert gen.frame(gen.OP_TEXT, b"Hello", mask_key=b"\x37\xfa\x21\x3d") \
        == b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"  # RFC 6455 §5.7


def test_compare_script_runs(unfragmented: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """benchmarks/compare.py: one run of each tool; wsanalyze's counts match the truth;
    the wsanalyze command and its environment are the caller's."""
    path, truth = unfragmented
    out = tmp_path / "compare.json"
    wsanalyze = f"{sys.executable} -m wsanalyze"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), str(path),
                           "--runs", "1", "--wsanalyze", wsanalyze,
                           "--env", "WSANALYZE_JOBS_ENGINE=replay", "--json", str(out)],
                          capture_output=True, text=True, check=True)
    assert "wsanalyze-summary" in proc.stdout and "× floor" in proc.stdout
    assert "wsanalyze environment: WSANALYZE_JOBS_ENGINE=replay" in proc.stdout
    rep = json.loads(out.read_text())
    assert rep["packets"] == truth["packets"] and rep["counts_from"] == "truth file"
    assert set(rep["tools"]) == {"wsanalyze-summary", "wsanalyze-jsonl", "wsanalyze-jobs2",
                                 "tshark", "floor"}
    for name in ("wsanalyze-summary", "wsanalyze-jobs2"):
        summary = rep["tools"][name]
        assert summary["status"] == "ok" and summary["decoded_matches_truth"]
        assert summary["decoded"]["packets"] == truth["packets"]
        assert summary["command"][:3] == [sys.executable, "-m", "wsanalyze"]
    assert rep["tools"]["wsanalyze-jobs2"]["command"][-2:] == ["--jobs", "2"]
    assert rep["tools"]["tshark"]["status"] == "ok"
    assert rep["tools"]["floor"]["status"] == "ok"
    assert rep["tools"]["floor"]["times_floor"] == 1.0
    summary = rep["tools"]["wsanalyze-summary"]
    assert summary["speed_vs_tshark"] > 0 and summary["times_floor"] > 0


def test_bench_jobs_script_runs(unfragmented: tuple[Path, dict[str, Any]],
                                tmp_path: Path) -> None:
    """benchmarks/bench_jobs.py: both engines give the one-process output; the costs
    and the model come out positive."""
    path, truth = unfragmented
    out = tmp_path / "jobs.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_jobs.py"), str(path),
                           "--runs", "1", "--model", "2,32", "--json", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(out.read_text())
    assert set(rep["runs"]) == {"one process", "reader --jobs 2", "replay --jobs 2"}
    assert all(run["identical"] for run in rep["runs"].values())
    costs = rep["costs_s_per_packet"]
    assert costs["packets"] == truth["packets"]
    # Costs are differences of CPU times on a small capture: a term can round to 0
    # (the compiled build shrinks decoding), never go negative. Their size is the
    # benchmark's business, not a test's.
    assert min(costs[k] for k in "RSD") >= 0 and costs["R"] + costs["D"] > 0
    assert [row["jobs"] for row in rep["model"]] == [2, 32]
    assert all(row["reader"] > 0 and row["replay"] > 0 for row in rep["model"])


def test_bench_floor_finds_every_compressed_message(
        fragmented: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """benchmarks/bench_floor.py: its own parser finds exactly the compressed messages
    the truth file counts (fragmented ones too), and inflating them gives bytes."""
    path, truth = fragmented
    out = tmp_path / "floor.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_floor.py"),
                           str(path), "--repeat", "1", "--json", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    floor = json.loads(out.read_text())
    assert floor["records"] == truth["packets"]
    assert floor["compressed_messages"] == truth["compressed_messages"]
    assert floor["compressed_bytes"] == truth["compressed_bytes"]
    assert floor["inflated_bytes"] > 2 * floor["compressed_bytes"]
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_floor.py"),
                          str(ROOT / "samples" / "mixed.pcapng")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "not a little-endian pcap file" in bad.stderr


def test_bench_analyze_script_runs(unfragmented: tuple[Path, dict[str, Any]],
                                   tmp_path: Path) -> None:
    """benchmarks/bench_analyze.py: each payload mode keeps every row, and only
    "full" keeps the payload bytes."""
    path, truth = unfragmented
    out = tmp_path / "analyze.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_analyze.py"), str(path),
                    "--json", str(out)], capture_output=True, text=True, check=True)
    results = {r["mode"]: r for r in json.loads(out.read_text())}
    assert set(results) == {"full", "preview", "none"}
    messages = sum(truth["messages"].values())
    for r in results.values():
        assert r["rows"]["messages"] == messages and r["peak_rss_mib"] > 0
    text_bytes = truth["payload_bytes"]["text"] + truth["payload_bytes"]["binary"]
    assert results["full"]["payload_mib"] * 2**20 >= text_bytes
    assert results["none"]["payload_mib"] == 0
    assert 0 < results["preview"]["payload_mib"] < results["full"]["payload_mib"]


def test_generate_creates_the_output_folder(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # benchmarks/data/ is gitignored: the README's first command runs without it.
    out = tmp_path / "benchmarks" / "data" / "small.pcap"
    assert gen.main([str(out), "--connections", "2", "--messages", "3"]) == 0
    truth = json.loads(out.with_name("small.pcap.truth.json").read_text())
    assert truth["connections"] == 2 and out.stat().st_size == truth["file_bytes"]
    capsys.readouterr()
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert gen.main([str(blocked / "x.pcap"), "--connections", "1"]) == 1
    assert capsys.readouterr().err.startswith(f"generate.py: error: cannot write {blocked}")
