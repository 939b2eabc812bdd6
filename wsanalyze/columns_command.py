"""``wsanalyze columns [TABLE]``: the column reference (docs/columns.md), shipped
with the package so it is there wherever wsanalyze is installed."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

SECTIONS = {"connections": "connections", "connection": "connections",
            "messages": "messages", "message": "messages", "frames": "frames",
            "frame": "frames", "violations": "violations", "violation": "violations",
            "filters": "filters"}


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "columns", help="what every column of the tables means (docs/columns.md)",
        description="Print the column reference: every column of a table, its type and "
        "meaning, and the headers of the terminal table.  Without TABLE: everything.")
    p.add_argument("table", nargs="?", choices=sorted(SECTIONS), metavar="TABLE",
                   help="connections, messages, frames, violations or filters")
    p.set_defaults(func=run, parser=p)
    return p


def reference() -> str:
    """The text of docs/columns.md as installed with the package."""
    return resources.files("wsanalyze").joinpath("columns.md").read_text(encoding="utf-8")


def section(text: str, name: str) -> str:
    """The ``## name`` section of ``text`` (heading included)."""
    lines = text.splitlines()
    start = lines.index(f"## {name}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    return "\n".join(lines[start:end]).rstrip() + "\n"


def run(args: argparse.Namespace) -> int:
    text = reference()
    if args.table:
        text = section(text, SECTIONS[args.table])
    sys.stdout.write(text)
    return 0
