"""Outputs of the checked-in samples, compared byte for byte with golden files.

The golden files under ``tests/data/golden`` are what ``tools/snapshot_outputs.py``
wrote; a change in them must be on purpose.  Regenerate with::

    PYTHONPATH=$PWD python tools/snapshot_outputs.py tests/data/golden samples/*.pcap*
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.snapshot_outputs import snapshot_one

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
SAMPLES = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_outputs_match_golden(sample: Path, tmp_path: Path) -> None:
    snapshot_one(sample, tmp_path)
    expected_dir = GOLDEN / sample.name
    names = sorted(p.name for p in expected_dir.iterdir())
    assert sorted(p.name for p in (tmp_path / sample.name).iterdir()) == names
    for name in names:
        got = (tmp_path / sample.name / name).read_text()
        assert got == (expected_dir / name).read_text(), f"{sample.name}/{name} differs"
