"""The samples' ground truth (``samples/<name>.truth.jsonl``, written by the sending
applications in tools/make_samples.py) in the shape tests compare decoded rows with.

Rows are keyed by the client's port and the direction, in the order the application
sent them: ``(type, payload)`` for data messages, pings and closes.  Pongs are not
logged (the libraries answer pings themselves); every ping must be answered by one
pong echoing its payload (RFC 6455 §5.5.3), which :func:`expected_pongs` states.
"""

from __future__ import annotations

import base64
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

Key = tuple[int, str]
Rows = dict[Key, list[tuple[str, bytes]]]
OTHER = {"c2s": "s2c", "s2c": "c2s"}


def truth_file(capture: Path) -> Path:
    return capture.with_name(capture.name.rsplit(".", 1)[0] + ".truth.jsonl")


def truth_records(capture: Path) -> list[dict[str, Any]]:
    text = truth_file(capture).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def truth_rows(capture: Path) -> Rows:
    out: Rows = defaultdict(list)
    for row in truth_records(capture):
        out[(row["client_port"], row["direction"])].append(
            (row["type"], base64.b64decode(row["payload_b64"])))
    return dict(out)


def expected_pongs(capture: Path) -> Counter[tuple[int, str, bytes]]:
    """(client port, pong direction, payload) for every ping of the truth."""
    return Counter((port, OTHER[d], payload) for (port, d), rows in truth_rows(capture).items()
                   for kind, payload in rows if kind == "ping")


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def decoded_rows(messages: Any, *, complete_only: bool = False) -> tuple[
        Rows, Counter[tuple[int, str, bytes]]]:
    """A messages DataFrame in the same shape: rows other than pongs, and the pongs."""
    rows: Rows = defaultdict(list)
    pongs: Counter[tuple[int, str, bytes]] = Counter()
    for r in messages.itertuples():
        if complete_only and not (r.complete and r.error is None):
            continue
        if r.type == "pong":
            pongs[(port(r.client), r.direction, r.payload)] += 1
        else:
            rows[(port(r.client), r.direction)].append((r.type, r.payload))
    return dict(rows), pongs
