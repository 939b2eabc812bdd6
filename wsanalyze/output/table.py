"""The human table printed by the table commands, sized to the terminal.

Every line fits ``width`` display cells (CJK and emoji count two): at narrow
widths optional columns are dropped, endpoints shortened, and a violation's
message moves onto its own indented lines; ``width=None`` (``--wide``) cuts
nothing.  A violation's message and RFC section are never cut, only wrapped.
Headers are explained by ``wsanalyze columns TABLE`` (docs/columns.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import IO, Any

from wsanalyze.output import textwidth as tw
from wsanalyze.output.timefmt import TimeFormat

DEFAULT_WIDTH = 100
"""Width when the output is not a terminal and COLUMNS is not set."""

OPCODE_NAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width, else :data:`DEFAULT_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns


@dataclass(frozen=True)
class Column:
    header: str
    width: int
    """Natural width in cells (the flexible column: its minimum)."""
    cell: Callable[[dict[str, Any]], str]
    right: bool = False
    flex: bool = False
    """Takes the remaining width (one per table, the last)."""
    wrap: bool = False
    """Wrapped onto continuation lines instead of cut."""
    drop: int = 0
    """Dropped at narrow widths, highest first (0: kept)."""
    shrink: int = 0
    """Cells it may give up at narrow widths."""


def _type_name(t: str) -> str:
    if t == "continuation":
        return "cont"
    return t.replace("opcode-", "op-")


_PREVIEW_CHARS = 1 << 16
"""Characters of a text shown even with --wide (JSON Lines carry the whole)."""


def _payload_preview(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"<{r['error']}>"
    if r["type"] == "close":
        code = r["close_code"]
        return f"{code if code is not None else '(no code)'} {r['close_reason'] or ''}".rstrip()
    payload: bytes = r["payload"]
    text = r["text"]
    if text is None and r["type"] in ("ping", "pong") and payload:
        try:
            decoded = payload.decode("utf-8")
        except UnicodeDecodeError:
            decoded = ""
        text = decoded if decoded.isprintable() else None
    if text is not None:
        # Cut before escaping: a cell shows at most a screen of it, and escaping a
        # 64 MiB text would cost gigabytes (README, Limits).
        if len(text) > _PREVIEW_CHARS:
            more = len(text) - _PREVIEW_CHARS
            return f"{tw.printable(text[:_PREVIEW_CHARS])}… ({more:,} more characters)"
        return tw.printable(text) if text else "(empty)"
    if not payload:
        return "(empty)"
    return "0x" + payload[:64].hex()


def _flags(r: dict[str, Any]) -> str:
    return ("Z" if r["compressed"] else "-") + ("T" if r["truncated"] else "-") \
        + ("-" if r["complete"] else "!")


def _frame_op(r: dict[str, Any]) -> str:
    op = int(r["opcode"])
    return OPCODE_NAMES.get(op, f"0x{op:X}")


def _columns(table: str, tf: TimeFormat, rule_width: int) -> list[Column]:
    time = Column(tf.header(), tf.width(), lambda r: tf.format(r["ts"]))
    conn = Column("conn", 4, lambda r: str(r["connection"]), right=True)
    if table == "message":
        return [conn, Column("#", 5, lambda r: str(r["index"]), right=True),
                Column("dir", 3, lambda r: r["direction"]), time,
                Column("packet", 7, lambda r: str(r["packet"]), right=True),
                Column("type", 6, lambda r: _type_name(r["type"])),
                Column("length", 8, lambda r: str(r["length"]), right=True),
                Column("flags", 5, _flags),
                Column("payload", 16, _payload_preview, flex=True)]
    if table == "frame":
        return [conn, Column("#", 5, lambda r: str(r["index"]), right=True),
                Column("dir", 3, lambda r: r["direction"]), time,
                Column("packet", 7, lambda r: str(r["packet"]), right=True),
                Column("opcode", 6, _frame_op),
                Column("fin", 3, lambda r: "1" if r["fin"] else "0"),
                Column("rsv", 3, lambda r: "".join("1" if r[k] else "0"
                                                   for k in ("rsv1", "rsv2", "rsv3"))),
                Column("mask", 8, lambda r: r["mask_key"] or "-", drop=2),
                Column("hdr", 3, lambda r: str(r["header_bytes"]), right=True, drop=1),
                Column("length", 9, lambda r: str(r["payload_length"]), right=True),
                Column("offset", 10, lambda r: str(r["stream_offset"]), right=True, drop=3),
                Column("msg", 5, lambda r: str(r["message"]), right=True)]
    if table == "violation":
        return [conn, Column("packet", 7, lambda r: _opt(r["packet"]), right=True),
                replace(time, drop=1),
                Column("dir", 3, lambda r: r["direction"] or "-"),
                Column("severity", 8, lambda r: r["severity"]),
                Column("rule", rule_width, lambda r: r["rule"]),
                Column("section", 15, lambda r: r["reference"], wrap=True),
                Column("message", 40, lambda r: r["message"], flex=True, wrap=True)]
    return [conn, Column("client", 21, lambda r: r["client"], shrink=6),
            Column("server", 21, lambda r: r["server"], shrink=6),
            Column("start", tf.width(), lambda r: tf.format(r["ts_start"]), drop=2),
            Column("handshake", 12, lambda r: r["handshake"], shrink=4),
            Column("msgs", 9, lambda r: f"{r['messages_c2s']}/{r['messages_s2c']}",
                   right=True),
            Column("deflate", 7, lambda r: "yes" if r["deflate"] else "no", shrink=3),
            Column("errors", 6, lambda r: str(r["violations"]), right=True, shrink=2),
            Column("end", 15, lambda r: r["end"], drop=1),
            Column("path", 8, lambda r: r["path"] or "-", flex=True)]


def _opt(value: Any) -> str:
    return "-" if value is None else str(value)


def _layout(columns: list[Column], width: int) -> tuple[list[Column], bool]:
    """Fit ``columns`` in ``width``: drop, then shrink, then (for a wrapping
    flexible column) move it below the row.  Returns the columns and whether the
    flexible column goes on its own lines."""
    def total(cols: list[Column]) -> int:
        return sum(c.width for c in cols) + len(cols) - 1

    cols = list(columns)
    while total(cols) > width and any(c.drop for c in cols):
        worst = max((c for c in cols if c.drop), key=lambda c: c.drop)
        cols.remove(worst)
    excess = total(cols) - width
    if excess > 0:
        for i, c in enumerate(cols):
            take = min(c.shrink, excess)
            if take:
                cols[i] = replace(c, width=c.width - take)
                excess -= take
    below = False
    if total(cols) > width and cols[-1].flex and cols[-1].wrap:
        below = True
    return cols, below


class TableWriter:
    """Rows of one table for a terminal; ``width=None`` cuts nothing (``--wide``)."""

    def __init__(self, table: str, stream: IO[str], max_payload: int | None = None,
                 width: int | None = DEFAULT_WIDTH, timefmt: TimeFormat | None = None) -> None:
        from wsanalyze.rules import RULES

        self.table = table
        self.stream = stream
        self.max_payload = max_payload
        self.width = width
        self.rows = 0
        self.timefmt = timefmt or TimeFormat()
        rule_width = max(len(r) for r in RULES)
        columns = _columns(table, self.timefmt, rule_width)
        self.below = False
        if width is not None:
            columns, self.below = _layout(columns, width)
        self.columns = columns
        self._flex_width = 0
        if width is not None and not self.below:
            fixed = sum(c.width + 1 for c in columns[:-1])
            self._flex_width = max(1, width - fixed)
        shown = columns[:-1] if self.below else columns
        self._emit([tw.pad(c.header, c.width, c.right) if i < len(shown) - 1 else c.header
                    for i, c in enumerate(shown)])

    def _emit(self, cells: list[str]) -> None:
        line = " ".join(cells).rstrip()
        if self.width is not None:
            line = tw.clip(line, self.width)  # last resort at absurdly small widths
        self.stream.write(line + "\n")

    def write(self, record: dict[str, Any]) -> None:
        values = [tw.printable(c.cell(record)) for c in self.columns]
        self.rows += 1
        if self.width is None:
            self._emit([tw.pad(v, c.width, c.right) if i < len(values) - 1 else v
                        for i, (v, c) in enumerate(zip(values, self.columns, strict=True))])
            return
        cols = self.columns[:-1] if self.below else self.columns
        blocks: list[list[str]] = []
        for i, c in enumerate(cols):
            w = self._flex_width if c.flex and not self.below else c.width
            v = values[i]
            blocks.append(tw.wrap(v, w) if c.wrap else [tw.cut(v, w)])
        for n in range(max(len(b) for b in blocks)):
            cells = []
            for i, c in enumerate(cols):
                part = blocks[i][n] if n < len(blocks[i]) else ""
                last = i == len(cols) - 1
                cells.append(part if last else tw.pad(part, c.width, c.right))
            self._emit(cells)
        if self.below:
            for part in tw.wrap(values[-1], self.width - 4):
                self._emit(["    " + part])

    def close(self) -> None:
        pass
