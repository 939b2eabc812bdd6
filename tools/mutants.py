"""Mutation testing: put one deliberate bug into a copy of the tree, run a fast subset
of the suite, and see whether a test fails ("killed") or not ("survived").

Each mutant is (file, exact original snippet, replacement, description).  The
snippet must occur exactly once in the file; a mutant whose snippet is not found is
"not applicable" (the code moved: re-target it), one found more than once is an
error of this list.  The worktree is never modified: the tree is copied once into a
temporary folder and each mutant is applied there and reverted.

    python tools/mutants.py --list         # the mutants and whether each applies
    python tools/mutants.py --check        # exit 1 if a snippet is ambiguous
    python tools/mutants.py                # run them all (minutes)
    python tools/mutants.py -k close -j 2  # those whose name contains "close", 2 at a time

A survivor means no test notices that bug: add a test, or explain in
README.md ("Tests that catch bugs") why the mutant is equivalent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST_TESTS = (
    "tests/test_boundaries.py", "tests/test_outputs.py", "tests/test_samples_meta.py",
    "tests/test_syn.py", "tests/test_samples.py", "tests/test_rules.py",
    "tests/test_reassembly.py", "tests/test_metrics.py", "tests/test_decoding.py",
)
COPIED = ("wsanalyze", "tests", "samples", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    description: str
    equivalent: str = ""
    """Why no test can kill it (the behaviour does not change), if so."""
    also: tuple[tuple[str, str], ...] = ()
    """More (snippet, replacement) edits in the same file, for a bug whose check is
    written twice (a cheap gate and the check itself): each must match exactly once."""

    @property
    def edits(self) -> tuple[tuple[str, str], ...]:
        return ((self.old, self.new), *self.also)


def _m(name: str, file: str, old: str, new: str, description: str,
       equivalent: str = "", also: tuple[tuple[str, str], ...] = ()) -> Mutant:
    return Mutant(name, file, old, new, description, equivalent, also)


FRAMES = "wsanalyze/websocket/frames.py"
MESSAGES = "wsanalyze/websocket/messages.py"
CHECKS = "wsanalyze/websocket/checks.py"
FRAMING = "wsanalyze/websocket/framing.py"
HANDSHAKE = "wsanalyze/websocket/handshake.py"
DEFLATE = "wsanalyze/websocket/deflate.py"
REASSEMBLY = "wsanalyze/tcp/reassembly.py"
DIRECTION = "wsanalyze/tcp/direction.py"
WRITERS = "wsanalyze/output/writers.py"
JSONL_LINE = "wsanalyze/output/jsonl_line.py"
SUMMARY = "wsanalyze/output/summary.py"
SUMMARY_RENDER = "wsanalyze/output/summary_render.py"
COMPRESSION = "wsanalyze/metrics/compression.py"
SEQUENCER = "wsanalyze/sequencer.py"

MUTANTS: tuple[Mutant, ...] = (
    # ---- the eleven survivors of issue 11, and the SYN one --------------------------------
    _m("frames.64bit-ffff-minimal", FRAMES, "minimal = length > 0xFFFF",
       "minimal = length >= 0xFFFF", "a 64-bit length holding 0xFFFF accepted as minimal"),
    _m("messages.compressed-cut-utf8", MESSAGES, "if truncated or not msg.complete:",
       "if truncated or not msg.complete or msg.compressed:",
       "compressed text ending inside a UTF-8 character accepted"),
    _m("messages.close-code-5000", MESSAGES, "code >= 5000:", "code > 5000:",
       "close code 5000 accepted"),
    _m("handshake.key-longer-than-16", HANDSHAKE,
       "len(base64.b64decode(key[0].strip(), validate=True)) == 16",
       "len(base64.b64decode(key[0].strip(), validate=True)) >= 16",
       "a Sec-WebSocket-Key longer than 16 bytes accepted"),
    _m("handshake.post-upgrade", HANDSHAKE, 'if head.method != "GET":',
       'if head.method not in ("GET", "POST"):', "a POST Upgrade accepted"),
    _m("writers.csv-bool-inverted", WRITERS, 'return "true" if value else "false"',
       'return "false" if value else "true"', "CSV writes every boolean inverted"),
    _m("summary.inverse-ratio", SUMMARY_RENDER,
       'round(t["compressedBytes"] / t["inflatedBytes"], 4)',
       'round(t["inflatedBytes"] / max(1, t["compressedBytes"]), 4)',
       "summary prints the inverse ratio"),
    _m("summary.connection-inverse-ratio", SUMMARY,
       "round(c.compressed_raw / c.compressed_inflated, 4)",
       "round(c.compressed_inflated / max(1, c.compressed_raw), 4)",
       "a connection's summary prints the inverse ratio"),
    _m("compression.saved-share-total", COMPRESSION,
       "saved_share=_ratio(inflated - raw, inflated)", "saved_share=_ratio(inflated - raw, raw)",
       "saved_share divided by the wrong total"),
    _m("sequencer.connect-rtt-is-handshake", SEQUENCER,
       '"tcp_connect_rtt": conn.ended.connect_rtt if conn.ended else None',
       '"tcp_connect_rtt": info.handshake_rtt',
       "tcp_connect_rtt filled with the handshake RTT"),
    _m("messages.close-from-last", MESSAGES,
       "if dec.info.close_code is None and not any(s.close_sent for s in dec.sides):",
       "if True:", "close_code/close_reason taken from the last Close, not the first"),
    _m("reassembly.synack-seq-off-by-one", REASSEMBLY, "peer.nseq = seg.ack & MASK",
       "peer.nseq = (seg.ack + 1) & MASK", "the SYN/ACK-inferred sequence number off by one"),
    _m("reassembly.syn-no-sequence-number", REASSEMBLY,
       "seq = (seq + 1) & MASK  # the SYN occupies one sequence number",
       "seq = seq & MASK", "a SYN no longer occupies a sequence number"),
    # ---- frames ---------------------------------------------------------------------------
    _m("frames.16bit-125-minimal", FRAMES, "minimal = length >= 126", "minimal = length >= 125",
       "125 in a 16-bit length accepted as minimal"),
    _m("frames.16bit-126-not-minimal", FRAMES, "minimal = length >= 126",
       "minimal = length > 126", "126 in a 16-bit length reported as non-minimal"),
    _m("frames.msb-ignored", FRAMES, "msb = bool(length >> 63)", "msb = bool(length >> 64)",
       "the 64-bit length's top bit never seen"),
    _m("frames.rsv3-is-rsv2", FRAMES, "rsv3=bool(b0 & 0x10)", "rsv3=bool(b0 & 0x20)",
       "RSV3 read from the RSV2 bit"),
    _m("frames.mask-phase-ignored", FRAMES, "key = key[phase:] + key[:phase]",
       "key = key", "a payload unmasked in pieces restarts the key at each piece"),
    # ---- handshake ------------------------------------------------------------------------
    _m("handshake.http-1.0-accepted", HANDSHAKE, "if (major, minor) < (1, 1):",
       "if (major, minor) < (1, 0):", "an HTTP/1.0 Upgrade request accepted"),
    _m("handshake.version-8-accepted", HANDSHAKE, 'version.strip() != "13"',
       'version.strip() not in ("13", "8")', "Sec-WebSocket-Version 8 accepted"),
    _m("handshake.window-bits-16", HANDSHAKE, "not 8 <= int(value) <= 15",
       "not 8 <= int(value) <= 16", "max_window_bits=16 accepted"),
    _m("handshake.window-bits-8-refused", HANDSHAKE, "not 8 <= int(value) <= 15",
       "not 9 <= int(value) <= 15", "max_window_bits=8 refused"),
    # ---- messages and close ---------------------------------------------------------------
    _m("messages.close-code-999", MESSAGES, "if code < 1000 or", "if code < 999 or",
       "close code 999 accepted"),
    _m("messages.close-code-1016", MESSAGES, "1016 <= code <= 2999", "1017 <= code <= 2999",
       "close code 1016 accepted"),
    _m("messages.close-code-2999", MESSAGES, "1016 <= code <= 2999", "1016 <= code <= 2998",
       "close code 2999 accepted"),
    _m("messages.close-code-1015", MESSAGES,
       "CLOSE_CODES_RESERVED = frozenset((1004, 1005, 1006, 1015))",
       "CLOSE_CODES_RESERVED = frozenset((1004, 1005, 1006))", "close code 1015 accepted"),
    _m("messages.close-one-byte", MESSAGES, "if len(payload) == 1:", "if len(payload) == 0:",
       "a one-byte Close payload accepted"),
    _m("checks.control-126", CHECKS, "if h.length > 125:", "if h.length > 126:",
       "a 126-byte control frame accepted"),
    _m("messages.reason-utf8-unchecked", MESSAGES, 'reason = payload[2:].decode("utf-8")\n',
       'reason = payload[2:].decode("utf-8", "replace")\n',
       "a close reason that is not UTF-8 accepted"),
    _m("checks.rsv1-without-deflate", CHECKS,
       "if h.rsv2 or h.rsv3 or (h.rsv1 and not deflate):",
       "if h.rsv2 or h.rsv3:", "RSV1 accepted without permessage-deflate"),
    _m("framing.fast-path-control-126", FRAMING,
       "and is_clean(h, side.masked, dec.info.deflate, side.msg is not None, side.close_sent)",
       "and (is_clean(h, side.masked, dec.info.deflate, side.msg is not None, side.close_sent)"
       " or h.opcode >= 8 and h.length == 126)",
       "the whole-message fast path takes a 126-byte control frame"),
    _m("checks.cheap-check-control-126", CHECKS,
       "(op >= 8 and (op > 10 or h.length > 125 or not h.fin))",
       "(op >= 8 and (op > 10 or h.length > 126 or not h.fin))",
       "the cheap pre-check lets a 126-byte control frame skip the header checks"),
    _m("checks.cheap-check-reserved-opcodes", CHECKS,
       "(op == OP_CONTINUATION) == (not in_message)) or 3 <= op <= 7",
       "(op == OP_CONTINUATION) == (not in_message)) or 3 <= op <= 6",
       "the cheap pre-check lets opcode 0x7 skip the header checks"),
    # ---- deflate --------------------------------------------------------------------------
    _m("deflate.new-stream-after-bfinal", DEFLATE, "            data = d.unused_data\n",
       "            data = b''\n", "bytes after a final DEFLATE block dropped"),
    _m("deflate.window-check-off", DEFLATE,
       "self._check = no_context_takeover or window_bits < 15",
       "self._check = no_context_takeover", "the max_window_bits check never runs"),
    _m("deflate.window-one-bit-wider", DEFLATE,
       "d = decompressobj(-bits, zdict=history) if history else",
       "d = decompressobj(-min(bits + 1, 15), zdict=history) if history else",
       "back-references checked against a window twice the agreed size",
       equivalent="the history given to zlib as its dictionary is already cut to the agreed "
       "window (MessageInflater._history), so a wider zlib window sees no more bytes"),
    _m("messages.too-big-at-the-limit", MESSAGES, "if length <= limits.max_payload and not capped:",
       "if length < limits.max_payload and not capped:",
       "a message of exactly the size limit reported as too big",
       also=(("if length > dec.limits.max_payload or (msg.compressed",
              "if length >= dec.limits.max_payload or (msg.compressed"),)),
    # ---- tcp ------------------------------------------------------------------------------
    _m("reassembly.reset-is-fin", REASSEMBLY, 'self._close(conn, "tcp-reset", out, remember=True)',
       'self._close(conn, "tcp-fin", out, remember=True)', "a RST reported as a FIN"),
    _m("reassembly.fin-seq-ignores-payload", REASSEMBLY,
       "h.fin(packet, ts, (seq + len(payload) + seg.missing) & MASK)",
       "h.fin(packet, ts, (seq + seg.missing) & MASK)",
       "a FIN carrying data placed before its data"),
    _m("direction.hole-lost-without-grace", DIRECTION,
       "if packet - self.hole_acked_at < ack_grace:", "if packet - self.hole_acked_at < 0:",
       "a hole the peer acknowledged declared lost at once, not after the grace packets"),
    _m("direction.buffer-limit-off-by-one", DIRECTION,
       "if self.buffered > max_buffered:", "if self.buffered >= max_buffered:",
       "exactly max_buffered out-of-order bytes already given up as over the limit",
       also=(("while pending and self.buffered > max_buffered:",
              "while pending and self.buffered >= max_buffered:"),)),
    _m("direction.bytes-after-fin-kept", DIRECTION,
       "if fin_off is not None and end > fin_off:", "if fin_off is not None and end < fin_off:",
       "bytes after a FIN delivered as stream data"),
    # ---- writers, summary, metrics, tables ------------------------------------------------
    _m("writers.csv-null-as-none", WRITERS, '    if value is None:\n        return ""',
       '    if value is None:\n        return "None"', "CSV writes null as None"),
    _m("writers.jsonl-truncated-flag", JSONL_LINE,
       'return payload, text, record["truncated"] or len(payload) < record["length"]',
       'return payload, text, record["truncated"]', "--max-payload cuts without marking truncated",
       # The direct JSON Lines path computes the flag too.
       also=(('truncated = record["truncated"] or len(payload) < record["length"]',
              'truncated = record["truncated"]'),)),
    _m("compression.ratio-inverted", COMPRESSION, "ratio=_ratio(raw, inflated)",
       "ratio=_ratio(inflated, raw)", "compression ratio inverted"),
    _m("sequencer.bytes-swapped", SEQUENCER,
       '"bytes_c2s": info.bytes["c2s"], "bytes_s2c": info.bytes["s2c"]',
       '"bytes_c2s": info.bytes["s2c"], "bytes_s2c": info.bytes["c2s"]',
       "bytes per direction swapped"),
    _m("sequencer.ts-end-is-start", SEQUENCER, '"ts_start": conn.ts_start, "ts_end": conn.ts_end',
       '"ts_start": conn.ts_start, "ts_end": conn.ts_start', "ts_end equal to ts_start"),
)


def _status(mutant: Mutant, root: Path) -> str:
    path = root / mutant.file
    if not path.exists():
        return "not applicable"
    text = path.read_text(encoding="utf-8")
    counts = [text.count(old) for old, _ in mutant.edits]
    if 0 in counts:
        return "not applicable"
    n = max(counts)
    return "applies" if n == 1 else f"ambiguous ({n} matches)"


def _copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "*.so", "*.pyd"))
        else:
            shutil.copy2(src, dest / name)
    # tests/test_rules.py compares RULES.md with ../shared beside the checkout.
    shared = ROOT.parent / "shared"
    if shared.exists():
        (dest.parent / "shared").symlink_to(shared.resolve())


def _run_one(mutant: Mutant, tests: list[str], timeout: float) -> tuple[str, float, str]:
    """Apply the mutant to a fresh copy, run the tests, return (verdict, seconds, detail)."""
    with tempfile.TemporaryDirectory(prefix="wsanalyze-mutant-") as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        _copy_tree(root)
        path = root / mutant.file
        text = path.read_text(encoding="utf-8")
        for old, new in mutant.edits:
            text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8")
        # The mutant is in a .py file: run the pure-Python build (setup.py, _build.py).
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1",
               "CI": "true", "WSANALYZE_NO_EXTENSIONS": "1"}
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p",
               "no:cacheprovider", "--no-header", "-W", "ignore", *tests]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start, ""
        took = time.monotonic() - start
        failed = [ln.split(" ", 1)[1].split(" - ")[0] for ln in proc.stdout.splitlines()
                  if ln.startswith(("FAILED ", "ERROR "))]
        if proc.returncode == 0:
            return "survived", took, ""
        if proc.returncode == 1 and failed:
            return "killed", took, failed[0]
        return "error", took, proc.stdout[-300:] + proc.stderr[-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a mutant's snippet occurs more than once")
    parser.add_argument("-k", default="", help="only mutants whose name contains this")
    parser.add_argument("-j", type=int, default=1, help="mutants run at a time")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant")
    parser.add_argument("--tests", nargs="+", default=list(FAST_TESTS),
                        help="test files to run against each mutant")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.k in m.name]
    names = [m.name for m in MUTANTS]
    if len(set(names)) != len(names):
        print("mutants: duplicate names", file=sys.stderr)
        return 1
    status = {m.name: _status(m, ROOT) for m in chosen}
    if args.list or args.check:
        for m in chosen:
            note = " [equivalent]" if m.equivalent else ""
            print(f"{m.name:40} {status[m.name]:16} {m.file}: {m.description}{note}")
        bad = [n for n, s in status.items() if s.startswith("ambiguous")]
        return 1 if args.check and bad else 0
    runnable = [m for m in chosen if status[m.name] == "applies"]
    for m in chosen:
        if status[m.name] != "applies":
            print(f"{status[m.name]:9} {m.name}", flush=True)
    counts: dict[str, int] = {}

    def one(m: Mutant) -> tuple[Mutant, tuple[str, float, str]]:
        return m, _run_one(m, args.tests, args.timeout)

    with ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
        for m, (verdict, took, detail) in pool.map(one, runnable):
            if verdict == "survived" and m.equivalent:
                verdict, detail = "equivalent", m.equivalent
            counts[verdict] = counts.get(verdict, 0) + 1
            print(f"{verdict:9} {m.name:40} {took:6.1f}s  {detail}", flush=True)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    scored = len(runnable) - counts.get("equivalent", 0)
    print(f"\n{killed}/{scored} killed (equivalent mutants left out); "
          + ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
          + f"; {len(chosen) - len(runnable)} not applicable")
    return 1 if counts.get("survived") or counts.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
