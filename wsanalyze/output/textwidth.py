"""Display width of text in a terminal: CJK and emoji take two cells, combining
marks none.  Cutting, padding and wrapping by display width, not by ``len``."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

ELLIPSIS = "…"


@lru_cache(maxsize=4096)
def char_width(c: str) -> int:
    if c < "\u0300":  # ASCII and Latin-1: the common case, one cell
        return 1
    if unicodedata.combining(c) or c in "\u200b\u200c\u200d\ufe0e\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(char_width(c) for c in text)


def cut(text: str, cells: int) -> str:
    """``text`` in at most ``cells`` cells, ending in an ellipsis when shortened."""
    if width(text) <= cells:
        return text
    if cells <= 0:
        return ""
    out, used = [], 0
    for c in text:
        w = char_width(c)
        if used + w > cells - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + ELLIPSIS


def clip(text: str, cells: int) -> str:
    """``text`` cut hard at ``cells`` cells (no ellipsis)."""
    if width(text) <= cells:
        return text
    out, used = [], 0
    for c in text:
        w = char_width(c)
        if used + w > cells:
            break
        out.append(c)
        used += w
    return "".join(out)


def pad(text: str, cells: int, right: bool = False) -> str:
    gap = " " * max(0, cells - width(text))
    return gap + text if right else text + gap


def wrap(text: str, cells: int) -> list[str]:
    """Word-wrap ``text`` to lines of at most ``cells`` cells; words longer than a
    line are broken."""
    cells = max(1, cells)
    lines: list[str] = []
    line, used = "", 0
    for word in text.split(" "):
        w = width(word)
        if line and used + 1 + w <= cells:
            line, used = f"{line} {word}", used + 1 + w
            continue
        if line or used:
            lines.append(line)
        line, used = "", 0
        while w > cells:
            head = clip(word, cells)
            lines.append(head)
            word = word[len(head):]
            w = width(word)
        line, used = word, w
    lines.append(line)
    return lines


def printable(text: str) -> str:
    """Control characters escaped (``\\n``, ``\\x07``) so a cell stays on one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
