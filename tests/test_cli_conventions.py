"""Command-line conventions: the command list, usage errors, -r, -F, -o FILE's
extension, -j 0, `rules ID`, `columns`, the progress line."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from wsanalyze.cli import main
from wsanalyze.output.schema import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FRAGMENTS = SAMPLES / "node-ws-fragments.pcap"
COMMANDS = ("summary", "report", "export", "connections", "messages", "frames", "violations",
            "follow", "live", "plot", "rules", "columns", "batch")


def out_of(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> str:
    assert main(argv) == code
    return capsys.readouterr().out


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_bare_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    text = out_of(capsys, [])
    listed = re.findall(r"^  (\S+) ", text, re.M)
    assert tuple(listed) == COMMANDS
    assert "wsanalyze COMMAND --help" in text


def test_unknown_option_prints_the_subcommand_usage(capsys: pytest.CaptureFixture[str]
                                                    ) -> None:
    err = usage_error(capsys, ["messages", str(FRAGMENTS), "--bogus"])
    assert err.startswith("usage: wsanalyze messages ")
    assert err.endswith("wsanalyze messages: error: unrecognized arguments: --bogus\n")
    # -f is no longer --format in the file commands (it is the BPF filter of `live`).
    err = usage_error(capsys, ["messages", str(FRAGMENTS), "-f", "jsonl"])
    assert "unrecognized arguments: -f" in err or "wsanalyze messages: error" in err


def test_read_option_is_the_capture(capsys: pytest.CaptureFixture[str]) -> None:
    positional = out_of(capsys, ["frames", str(FRAGMENTS), "-F", "jsonl"])
    assert out_of(capsys, ["frames", "-r", str(FRAGMENTS), "-F", "jsonl"]) == positional
    assert "not both" in usage_error(capsys, ["frames", str(FRAGMENTS), "-r", str(FRAGMENTS)])
    assert "capture file is missing" in usage_error(capsys, ["frames"])


def test_jobs_zero_means_all_cores(capsys: pytest.CaptureFixture[str]) -> None:
    one = out_of(capsys, ["messages", str(FRAGMENTS), "-F", "jsonl"])
    assert out_of(capsys, ["messages", str(FRAGMENTS), "-F", "jsonl", "-j", "0"]) == one
    assert "between 0 (all cores) and 64" in usage_error(
        capsys, ["messages", str(FRAGMENTS), "-j", "65"])


def test_output_format_from_the_extension(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    jsonl = out_of(capsys, ["messages", str(FRAGMENTS), "-F", "jsonl"])
    rows = [json.loads(line) for line in jsonl.splitlines()]
    csv = out_of(capsys, ["messages", str(FRAGMENTS), "-F", "csv"])
    table = out_of(capsys, ["messages", str(FRAGMENTS)])
    for name, check in (
        ("m.jsonl", lambda p: p.read_text() == jsonl),
        ("m.json", lambda p: json.loads(p.read_text()) == rows),
        ("m.csv", lambda p: p.read_text() == csv),
        ("m.txt", lambda p: p.read_text() == table),
        # Parquet keeps payloads binary (the payload column), JSON Lines as base64.
        ("m.parquet", lambda p: [base64.b64encode(b).decode() for b in
                                 pd.read_parquet(p)["payload"]]
         == [r["payload_b64"] for r in rows]),
    ):
        path = tmp_path / name
        assert out_of(capsys, ["messages", str(FRAGMENTS), "-o", str(path)]) == ""
        assert check(path), name
    # --format wins over the extension.
    forced = tmp_path / "forced.txt"
    out_of(capsys, ["messages", str(FRAGMENTS), "-o", str(forced), "-F", "jsonl"])
    assert forced.read_text() == jsonl
    err = usage_error(capsys, ["messages", str(FRAGMENTS), "-o", str(tmp_path / "m.xml")])
    assert "cannot tell the output format" in err


def test_empty_json_output_is_an_empty_array(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v.json"
    out_of(capsys, ["violations", str(FRAGMENTS), "-o", str(path)])
    assert json.loads(path.read_text()) == []


def test_rules_id_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    from wsanalyze.rules import RULES

    rule = RULES["frame.client-unmasked"]
    text = out_of(capsys, ["rules", rule.id])
    assert text.splitlines() == [rule.id, f"  severity:    {rule.severity}",
                                 f"  reference:   {rule.reference}",
                                 f"  requirement: {rule.requirement}",
                                 f"  impact:      {rule.impact}", ""]
    listed = out_of(capsys, ["rules", "deflate.*"]).split("\n\n")
    assert [b.splitlines()[0] for b in listed if b] == \
        [r for r in RULES if r.startswith("deflate.")]
    err = usage_error(capsys, ["rules", "frame.client-unmask"])
    assert "did you mean frame.client-unmasked" in err


def test_columns_prints_the_shipped_reference(capsys: pytest.CaptureFixture[str]) -> None:
    doc = (ROOT / "docs" / "columns.md").read_text(encoding="utf-8")
    # The copy shipped in the package is the same text.
    assert (ROOT / "wsanalyze" / "columns.md").read_text(encoding="utf-8") == doc
    assert out_of(capsys, ["columns"]) == doc
    section = out_of(capsys, ["columns", "frames"])
    assert section.startswith("## frames\n") and "## violations" not in section
    assert "| mask_key | str or null |" in section
    # Every column of every table is documented in its table's section.
    for table, columns in COLUMNS.items():
        text = out_of(capsys, ["columns", table])
        documented = {name for line in text.splitlines() if line.startswith("| ")
                      for name in re.findall(r"[a-z_0-9]+", line.split("|")[1])}
        for name, _ in columns:
            assert name in documented, (table, name)


def test_help_points_to_the_column_reference(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "docs/columns.md" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["messages", "--help"])
    assert "wsanalyze columns messages" in capsys.readouterr().out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/columns.md" in readme and "OUTPUTS.md" not in readme
    notebook = (ROOT / "notebooks" / "explore.ipynb").read_text(encoding="utf-8")
    assert "docs/columns.md" in notebook


def test_progress_shows_percentage_and_time_left() -> None:
    from wsanalyze.progress import Progress, file_size
    from wsanalyze.sources.capture import open_capture

    reader = open_capture(FRAGMENTS)
    size = file_size(str(FRAGMENTS))
    assert size == FRAGMENTS.stat().st_size
    packets = 0
    for _ in reader:
        packets += 1
        if packets == 60:
            break
    progress = Progress(True, size, lambda: reader.bytes_read)
    done = reader.bytes_read
    assert done is not None and 0 < done <= size
    line = progress.line(packets, progress.start + 3.0)
    percent = min(done / size, 1.0)
    assert line.startswith(f"{percent:.0%} 60 packets (20/s)")
    if percent > 0.01:
        assert re.search(r", \d+(m\d\ds)?s? left$", line)
    reader.close()
    # A pipe has no size: packets and rate only.
    assert file_size("/dev/stdin") is None
    assert Progress(True, None).line(60, 3.0 + Progress(True).start) == "60 packets (20/s)"


def test_non_utf8_terminal_gets_escapes_not_errors() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "wsanalyze", "follow", str(FRAGMENTS),
                           "--conn", "0", "--type", "text", "--max-payload", "20"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "\\u2192 text 30 B  [packet 8]" in proc.stdout


def test_compressed_output_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["messages", str(FRAGMENTS), "-o", "m.jsonl.gz"])
    assert "cannot tell the output format from 'm.jsonl.gz'" in err
