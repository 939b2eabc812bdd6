"""``--fail-on LEVEL``: the exit status that gates a CI job on the violations found.

Exit 1 when a violation of LEVEL or a more severe one was found, 0 otherwise.  The
commands keep their other codes: 1 also means the capture could not be read, 2 bad
usage (README, "Gating CI on a capture").
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping

LEVELS = ("error", "warning", "info")
"""Most severe first."""

HELP = ("exit with status 1 when violations of LEVEL or worse were found (error; warning = "
        "warning or error; info = any row), 0 otherwise; 1 is also the status when the "
        "capture cannot be read, 2 for bad usage")


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", choices=LEVELS, metavar="LEVEL", dest="fail_on",
                        help=HELP)


def at_or_above(level: str) -> frozenset[str]:
    """The severities that ``--fail-on level`` fails on."""
    return frozenset(LEVELS[: LEVELS.index(level) + 1])


def failed(level: str | None, severities: Mapping[str, int] | Iterable[str]) -> bool:
    """True when ``level`` is set and a severity at or above it occurs (a count > 0
    in a mapping, or an item of an iterable)."""
    if level is None:
        return False
    worst = at_or_above(level)
    if isinstance(severities, Mapping):
        return any(severities.get(s, 0) > 0 for s in worst)
    return any(s in worst for s in severities)


def status(level: str | None, severities: Mapping[str, int] | Iterable[str]) -> int:
    """The exit status for a run that read the capture: 1 when it fails, else 0."""
    return 1 if failed(level, severities) else 0
