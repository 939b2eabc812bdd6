"""``wsanalyze rules [ID]``: the violation catalog, or rules in full.

Without an id: one block per rule (id, severity, RFC section, requirement).  With
ids or wildcards (``deflate.*``): those rules in full, impact included.  An id
that matches nothing is a usage error (exit 2) that suggests close ids.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import sys
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "rules", help="list the violation rules (id, severity, RFC section)",
        description="The catalog of violation rules wsanalyze reports; with ID (wildcards "
        "allowed: 'deflate.*'), the matching rules in full.")
    p.add_argument("ids", nargs="*", metavar="ID", help="rule id(s) to show in full")
    p.add_argument("-F", "--format", choices=("table", "jsonl"), default="table",
                   help="table (default) or jsonl (one JSON object per rule)")
    p.set_defaults(func=run, parser=p)
    return p


def run(args: argparse.Namespace) -> int:
    from wsanalyze.rules import RULES

    rules = list(RULES.values())
    if args.ids:
        chosen = [r for r in rules if any(fnmatch.fnmatchcase(r.id, i) for i in args.ids)]
        if not chosen:
            close = difflib.get_close_matches(args.ids[0], list(RULES), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else \
                " (`wsanalyze rules` lists them)"
            args.parser.error(f"no rule {' '.join(args.ids)}{hint}")
        rules = chosen
    from wsanalyze.output.table import terminal_width
    from wsanalyze.output.textwidth import wrap

    out = sys.stdout
    width = terminal_width()
    for r in rules:
        if args.format == "jsonl":
            out.write(json.dumps({"id": r.id, "severity": r.severity, "reference": r.reference,
                                  "requirement": r.requirement, "impact": r.impact}) + "\n")
        elif args.ids:
            out.write(f"{r.id}\n  severity:    {r.severity}\n  reference:   {r.reference}\n"
                      f"  requirement: {r.requirement}\n  impact:      {r.impact}\n\n")
        else:
            out.write(f"{r.id:34} {r.severity:8} {r.reference}\n")
            for line in wrap(r.requirement, max(20, width - 4)):
                out.write(f"    {line}\n")
    return 0
