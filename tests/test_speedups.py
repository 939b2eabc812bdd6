"""zlib-ng and orjson give the same bytes as the stdlib (wsanalyze/speedups.py).

Inflate: the CLI runs with each backend over the samples and every rule case,
and both backends inflate the fuzz decoder seeds and crafted error cases
(corrupt streams, window-bits and context-takeover checks, a bomb stopped by
its limit): same payloads, same rows, same error messages.  JSON Lines: the
orjson and stdlib escapers agree on every code point and on the hostile strings
below, and U+2028/U+2029 are written escaped so ``str.splitlines()`` sees one
record per line.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.buildtools import ROOT, SAMPLES, cli_outputs, rule_case_captures
from wsanalyze import speedups
from wsanalyze.output.writers import JsonlWriter

STDLIB = {"WSANALYZE_NO_SPEEDUPS": "1"}

_INFLATE = r"""
import random, zlib
from wsanalyze import speedups
from wsanalyze.websocket.deflate import MessageInflater
from fuzz.seeds import decoder_seeds
from fuzz.fuzz_decoder import run_case

def deflate(data, bits=15, comp=None):
    comp = comp or zlib.compressobj(6, zlib.DEFLATED, -bits)
    out = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]

def show(inf, payload):
    return (payload[:64], len(payload), inf.total, inf.consumed, inf.capped, inf.error,
            inf.error_detail, inf.violation, inf.history_lost)

rnd = random.Random(5)
text = b"".join(b'{"id": %d, "v": "%s"}' % (i, rnd.randbytes(8).hex().encode())
                for i in range(3000))
shared = zlib.compressobj(6, zlib.DEFLATED, -15)
first, second = deflate(text, comp=shared), deflate(text[::-1] + text, comp=shared)
cases = {
    "ok": ([deflate(text)], {}),
    "context kept": ([first, second], {}),
    "no context takeover broken": ([first, second], {"no_context_takeover": True}),
    "window bits exceeded": ([first, second], {"window_bits": 9}),
    "corrupt": ([deflate(text)[:100] + b"\xff" * 40], {}),
    "invalid block type": ([b"\xff\xff\xff\xff"], {}),
    "bomb": ([deflate(b"\0" * (8 << 20))], {"max_inflate": 1 << 20}),
    "kept bytes capped": ([deflate(text)], {"max_keep": 100}),
    "final block then more": ([zlib.compress(text)[2:-4] + deflate(text)], {}),
}
print(speedups.INFLATE)
for name, (messages, opts) in cases.items():
    inf = MessageInflater(opts.pop("max_keep", 1 << 30), **opts)
    for i, m in enumerate(messages):
        inf.begin()
        for part in (m[:7], m[7:]):
            inf.feed(part)
        print(name, i, show(inf, inf.end()))
for name, case in decoder_seeds():
    print(name, run_case(case))
"""


def _run(code: str, **env: str) -> str:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p), **env}
    return subprocess.run([sys.executable, "-c", code], env=full, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def test_both_inflate_backends_are_installed() -> None:
    # The test extra installs zlib-ng and orjson: the comparisons below are real.
    assert (speedups.INFLATE, speedups.JSON) == ("zlib-ng", "orjson")


def test_inflate_backends_agree_on_errors_limits_and_fuzz_seeds() -> None:
    fast, slow = _run(_INFLATE).splitlines(), _run(_INFLATE, **STDLIB).splitlines()
    assert (fast[0], slow[0]) == ("zlib-ng", "zlib")
    assert fast[1:] == slow[1:]
    rows = dict(line.split(" (", 1) for line in fast[1:13])
    assert rows["no context takeover broken 1"].endswith(
        "('deflate.context-takeover-violated', 'it refers to data of an earlier message "
        "although the sender agreed to no context takeover'), False)")
    assert "('deflate.window-bits-exceeded', 'it refers back about 565 bytes, beyond the " \
        "agreed window of 512 bytes (max_window_bits=9)')" in rows["window bits exceeded 1"]
    assert rows["invalid block type 0"] == ("b'', 0, 0, 0, False, 'deflate.decompression-failed',"
                                            " 'Error -3 while decompressing data: invalid block "
                                            "type', None, True)")
    assert "invalid distance too far back" in rows["corrupt 0"]
    assert rows["bomb 0"].endswith(", 1048576, 1048576, 1030, True, None, '', None, False)")
    # And the fuzz decoder seeds (samples' streams, crafted cases), event for event.
    seeds = fast[13:]
    assert len(seeds) > 20 and any(line.startswith("websockets-deflate.pcap") and
                                   "MessageEvent(" in line for line in seeds)


def test_cli_outputs_identical_with_zlib_ng_and_zlib(tmp_path: Path) -> None:
    captures = SAMPLES + rule_case_captures(tmp_path / "cases")
    fast_build, fast = cli_outputs(tmp_path / "fast", captures)
    slow_build, slow = cli_outputs(tmp_path / "slow", captures, **STDLIB)
    assert fast_build.endswith("zlib-ng, orjson") and slow_build.endswith("zlib, json")
    assert fast.keys() == slow.keys() and len(fast) > 300
    assert [name for name in fast if fast[name] != slow[name]] == []


HOSTILE = ["plain", "", "line\u2028sep\u2029para", "nul\x00 and \x01\x1f\x7f", 'quote " \\',
           "lone \ud800 and \udfff surrogates", "non-ASCII é ü 漢字 😀", "\n\r\t\b\f",
           "\u2028" * 3, "\u0085 NEL \u000b VT \u000c FF \u001c FS \u001d \u001e"]


@pytest.mark.parametrize("escape", ["orjson", "stdlib"])
def test_json_string_escapes_like_the_stdlib(escape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "_escape", getattr(speedups, f"_escape_{escape}"))
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    for text in [*HOSTILE, every]:
        expected = json.dumps(text, ensure_ascii=False)
        expected = expected.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") \
            .replace("\x85", "\\u0085")
        assert speedups.json_string(text) == expected
    assert speedups.json_string("a\u2028b") == '"a\\u2028b"'


def _jsonl(monkeypatch: pytest.MonkeyPatch, escape: str, max_payload: int | None) -> str:
    monkeypatch.setattr(speedups, "_escape", getattr(speedups, f"_escape_{escape}"))
    out = io.StringIO()
    writer = JsonlWriter("message", out, max_payload)
    for i, text in enumerate(HOSTILE):
        payload = text.encode("utf-8", "surrogatepass")
        writer.write({"connection": 0, "client": "10.0.0.1:5000", "server": "10.0.0.2:80",
                      "direction": "c2s", "index": i, "ts_start": 1.5e-05, "ts": 1e16,
                      "packet": i + 4, "type": "text", "frames": 1, "compressed": False,
                      "wire_bytes": len(payload) + 6, "raw_length": len(payload),
                      "length": len(payload), "payload": payload, "truncated": False,
                      "text": text, "close_code": None, "close_reason": "bye\u2029",
                      "complete": True, "error": None})
    return out.getvalue()


@pytest.mark.parametrize("max_payload", [None, 5])
def test_jsonl_same_bytes_with_and_without_orjson(monkeypatch: pytest.MonkeyPatch,
                                                  max_payload: int | None) -> None:
    fast = _jsonl(monkeypatch, "orjson", max_payload)
    assert fast == _jsonl(monkeypatch, "stdlib", max_payload)
    lines = fast.splitlines()
    assert len(lines) == len(HOSTILE) == fast.count("\n")
    assert not {"\u2028", "\u2029", "\x85"} & set(fast)
    assert '"close_reason": "bye\\u2029"' in lines[0]
    assert '"ts_start": 1.5e-05, "ts": 1e+16' in lines[0]  # floats as json writes them
    rows = [json.loads(line) for line in lines]
    if max_payload is None:
        assert [r["text"] for r in rows] == HOSTILE
        assert rows[5]["text"] == "lone \ud800 and \udfff surrogates"
    else:
        # Cut inside U+2028's three bytes: the incomplete character is dropped.
        assert rows[2]["text"] == "line" and rows[2]["truncated"] is True
    # Each line is what json writes for the same row, with U+2029 escaped.
    assert lines[3] == json.dumps(rows[3], ensure_ascii=False, separators=(", ", ": ")) \
        .replace("\u2029", "\\u2029")


def test_version_names_the_accelerators() -> None:
    code = "from wsanalyze.cli import main; main(['--version'])"
    assert _run(code).rstrip().endswith("; zlib-ng, orjson)")
    assert "zlib-ng" not in _run(code, **STDLIB)
    assert zlib.ZLIB_RUNTIME_VERSION  # the fallback is the interpreter's zlib
