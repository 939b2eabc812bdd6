"""Rule ids are named by constants of wsanalyze.rules, one per registry entry."""

from __future__ import annotations

import re
from pathlib import Path

from wsanalyze import rules

ROOT = Path(__file__).resolve().parents[2]


def test_one_constant_per_rule() -> None:
    constants = {name: value for name, value in vars(rules).items()
                 if re.fullmatch(r"[A-Z][A-Z0-9_]+", name) and isinstance(value, str)
                 and "." in value}
    assert sorted(constants.values()) == sorted(rules.RULES)
    for name, value in constants.items():
        assert name == value.upper().replace(".", "_").replace("-", "_")
    assert rules.PONG_PAYLOAD_MISMATCH == "pong.payload-mismatch"


def test_decoder_names_rules_through_the_constants() -> None:
    # No rule id as a string literal in the decoder, tracker, TCP or TLS code.
    ids = set(rules.RULES)
    paths = [*(ROOT / "wsanalyze" / "websocket").glob("*.py"),
             *(ROOT / "wsanalyze" / "tcp").glob("*.py"),
             *(ROOT / "wsanalyze" / "tls").glob("*.py"),
             ROOT / "wsanalyze" / "tracker.py", ROOT / "wsanalyze" / "sequencer.py"]
    found = [(p.name, lit) for p in paths
             for lit in re.findall(r'"([a-z]+\.[a-z0-9-]+)"', p.read_text()) if lit in ids]
    assert found == []
