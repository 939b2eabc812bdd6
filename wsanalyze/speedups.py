"""Optional faster primitives from well-kept libraries, each with a stdlib fallback.

- **Inflate**: ``zlib-ng`` (module ``zlib_ng.zlib_ng``, a drop-in for
  :mod:`zlib` with SIMD inflate) when installed, else :mod:`zlib`.  Both give the
  same bytes and the same error messages (tests/test_speedups.py checks the
  samples, rule cases and fuzz seeds, error cases included).
- **JSON string escaping** for the JSON Lines writer: ``orjson`` when installed,
  else the stdlib's C escaper (what ``json.JSONEncoder(ensure_ascii=False)``
  uses).  Both escape exactly ``"``, ``\\`` and U+0000-U+001F the same way;
  :func:`json_string` adds ``\\u2028``/``\\u2029`` on top (see its docstring).

``pip install 'wsanalyze[fast]'`` installs both.  ``WSANALYZE_NO_SPEEDUPS=1``
(any value but "" and "0") uses the stdlib even when they are installed, to
compare outputs or timings.  This module is never compiled (setup.py): it picks
objects at import, the compiled modules only call them.
"""

from __future__ import annotations

import json.encoder
import os
import zlib
from collections.abc import Callable
from types import ModuleType

ENV = "WSANALYZE_NO_SPEEDUPS"


def disabled() -> bool:
    """``WSANALYZE_NO_SPEEDUPS`` asks for the stdlib (set, and not "" or "0")."""
    return os.environ.get(ENV, "") not in ("", "0")


def _optional(name: str) -> ModuleType | None:
    if disabled():
        return None
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_zlib_ng = _optional("zlib_ng.zlib_ng")
_inflate: ModuleType = _zlib_ng if _zlib_ng is not None else zlib

INFLATE = "zlib-ng" if _zlib_ng is not None else "zlib"
"""The inflate backend in use."""
decompressobj: Callable[..., zlib._Decompress] = _inflate.decompressobj
"""``zlib.decompressobj`` of the backend (same signature, same output)."""
InflateError: type[Exception] = _inflate.error
"""The backend's ``zlib.error``: what a corrupt stream raises."""

_orjson = _optional("orjson")
JSON = "orjson" if _orjson is not None else "json"
"""The JSON string escaper in use."""

_stdlib_escape: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _escape_stdlib(text: str) -> str:
    return _stdlib_escape(text)


def _escape_orjson(text: str) -> str:
    assert _orjson is not None
    try:
        return _orjson.dumps(text).decode()  # type: ignore[no-any-return]
    except TypeError:
        # A lone surrogate (from surrogateescape-decoded fields): orjson refuses
        # it, the stdlib writes it as it is (the output stream then handles it).
        return _stdlib_escape(text)


_escape: Callable[[str], str] = _escape_orjson if _orjson is not None else _escape_stdlib


def json_string(text: str) -> str:
    """``text`` as a JSON string literal, quotes included, as
    ``json.JSONEncoder(ensure_ascii=False)`` writes it except that U+2028 and
    U+2029 are written ``\\u2028``/``\\u2029`` (and U+0085 ``\\u0085``): JSON
    allows them raw, but JavaScript before ES2019 (U+2028/9) and Python's
    ``str.splitlines()`` (all three) treat them as line ends, and a JSON Lines
    record must stay one line for every reader."""
    return line_breaks_escaped(_escape(text))


def json_bytes(text: str) -> bytes | None:
    """:func:`json_string` encoded to UTF-8 (orjson writes the bytes directly), or
    None when the text holds a lone surrogate, which UTF-8 cannot carry: the caller
    then writes the text through its stream, whose error handler decides."""
    if _escape is _escape_orjson and "\u2028" not in text and "\u2029" not in text \
            and "\x85" not in text:
        assert _orjson is not None
        try:
            return _orjson.dumps(text)  # type: ignore[no-any-return]
        except TypeError:  # a lone surrogate
            return None
    try:
        return json_string(text).encode()
    except UnicodeEncodeError:
        return None


def line_breaks_escaped(line: str) -> str:
    """A JSON text with raw U+2028, U+2029 and U+0085 (only possible inside
    strings) escaped: the line ends of ``str.splitlines()`` that JSON leaves raw
    (it escapes the others, all below U+0020)."""
    if "\u2028" in line or "\u2029" in line:  # free on ASCII/Latin-1 strings
        line = line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if "\x85" in line:  # NEL: a line end for splitlines() (not for JavaScript)
        line = line.replace("\x85", "\\u0085")
    return line


def describe() -> str:
    """The accelerators in use, for ``wsanalyze --version`` ("" when none)."""
    names = [INFLATE] if _zlib_ng is not None else []
    return ", ".join(names + ([JSON] if _orjson is not None else []))
