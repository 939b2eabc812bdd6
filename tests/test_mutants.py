"""tools/mutants.py stays usable: its list is well-formed, and one mutant run on a copy
of the tree is killed by the test aimed at it, survives a test that does not look,
and leaves the checkout untouched.  (The whole mutation run takes minutes: README,
Tests.)"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import mutants  # noqa: E402

ISSUE_11 = {  # the eleven bugs no test caught, and the SYN one
    "frames.64bit-ffff-minimal", "messages.compressed-cut-utf8", "messages.close-code-5000",
    "handshake.key-longer-than-16", "handshake.post-upgrade", "writers.csv-bool-inverted",
    "summary.inverse-ratio", "compression.saved-share-total",
    "sequencer.connect-rtt-is-handshake", "messages.close-from-last",
    "reassembly.synack-seq-off-by-one", "reassembly.syn-no-sequence-number",
}


def test_list_is_well_formed(capsys: pytest.CaptureFixture[str]) -> None:
    names = [m.name for m in mutants.MUTANTS]
    assert len(names) == len(set(names)) >= 32
    assert set(names) >= ISSUE_11
    for m in mutants.MUTANTS:
        assert m.file.startswith("wsanalyze/") and m.file.endswith(".py"), m.name
        assert m.description and all(old != new for old, new in m.edits), m.name
    assert mutants.main(["--check"]) == 0  # no snippet matches twice
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(names)


def test_every_mutant_applies() -> None:
    """A code move that loses a mutant's snippet fails here, not in review: re-target
    the mutant in tools/mutants.py to where the code lives now (same bug)."""
    lost = {m.name: f"{m.file}: {mutants._status(m, ROOT)}" for m in mutants.MUTANTS
            if mutants._status(m, ROOT) != "applies"}
    assert lost == {}


def _digest() -> str:
    h = hashlib.sha256()
    for path in sorted((ROOT / "wsanalyze").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def test_one_mutant_killed_and_survived_on_a_copy() -> None:
    mutant = next(m for m in mutants.MUTANTS if m.name == "writers.csv-bool-inverted")
    if mutants._status(mutant, ROOT) != "applies":
        pytest.fail("re-target writers.csv-bool-inverted in tools/mutants.py")
    before = _digest()
    verdict, _, failed = mutants._run_one(
        mutant, ["tests/test_outputs.py::test_csv_booleans_are_spelled_out"], timeout=600)
    assert (verdict, failed) == ("killed",
                                 "tests/test_outputs.py::test_csv_booleans_are_spelled_out")
    verdict, _, _ = mutants._run_one(
        mutant, ["tests/test_syn.py::test_request_in_the_syn_is_one_connection"], timeout=600)
    assert verdict == "survived"
    assert _digest() == before
