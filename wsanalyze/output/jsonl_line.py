"""The JSON Lines line of a message row, built directly as UTF-8 bytes.

The reference for every JSON Lines line is :class:`json.JSONEncoder` (``", "``
and ``": "`` separators, non-ASCII as it is) with U+2028, U+2029 and U+0085
escaped (:func:`wsanalyze.speedups.json_string`).  Running that encoder over a
21-column dict per message, then re-encoding the line to UTF-8, was most of the
cost of ``messages --format jsonl``.  :func:`message_line` writes the same bytes
with one f-string: every column of a message row has a known JSON type
(output/schema.py), so each value is checked for exactly that type and written
as the encoder would (``int.__repr__``, ``float.__repr__``, ``true``/``false``,
``null``); the payload is base64 as bytes and the text goes through orjson as
bytes.  A value of any other type (a NaN time, a bool where an int belongs, a
text orjson refuses) makes it return None, and the caller writes the line the
reference way: the two paths cannot disagree on a row the fast one accepts
(tests/test_jsonl_line.py compares them on the samples and on hostile rows).
"""

from __future__ import annotations

import codecs
from binascii import b2a_base64
from typing import Any

from wsanalyze.speedups import json_bytes, json_string

BIG_FIELD = 1 << 20
"""A payload or text longer than this (bytes or characters) is written to the
stream in pieces rather than built into one line in memory: a 64 MiB message of
NUL characters is 384 MB of JSON-escaped text.  See README, Limits."""

STRINGS_KEPT = 1 << 14
"""Encoded endpoint/direction/type strings cached (one per distinct value; the
cache is emptied when full, so a capture with millions of endpoints stays bounded)."""

_BOOL = {True: "true", False: "false"}
# The two possible middles of a line, between the base64 and the text.
_MID = {True: b'", "truncated": true, "text": ', False: b'", "truncated": false, "text": '}
_NULL = b"null"


def cut(record: dict[str, Any], max_payload: int | None) -> tuple[Any, Any, Any]:
    """The payload and text as files carry them: cut to ``max_payload`` bytes when
    asked (the text re-decoded from the cut bytes), and the ``truncated`` flag.
    (Typed Any: compiled, a declared type would be checked, and raise, at run time.)"""
    payload = record["payload"]
    text = record["text"]
    if max_payload is not None and len(payload) > max_payload:
        payload = payload[:max_payload]
        if text is not None:
            text = _prefix_text(payload)
    return payload, text, record["truncated"] or len(payload) < record["length"]


def _prefix_text(payload: Any) -> str:
    """The text of a cut payload: a character cut at the end is dropped."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(payload)


def is_big(payload: Any, text: Any) -> bool:
    return len(payload) > BIG_FIELD or (text is not None and len(text) > BIG_FIELD)


class LineEncoder:
    """:meth:`message` for message rows; keeps the small per-endpoint strings encoded."""

    __slots__ = ("_strings", "max_payload")

    def __init__(self, max_payload: int | None = None) -> None:
        self.max_payload = max_payload
        self._strings: dict[str, str] = {}

    def message(self, record: dict[str, Any]) -> bytes | None:
        """The line of a message row, its payload cut to ``max_payload``; None for
        a big row (written in pieces) or an unusual value (see :meth:`line`)."""
        # Typed object: mypyc would check (and raise) where the checks below decline.
        payload: object = record["payload"]
        text: object = record["text"]
        max_payload = self.max_payload
        if type(payload) is not bytes or not (text is None or type(text) is str):
            return None
        if max_payload is not None and len(payload) > max_payload:
            payload = payload[:max_payload]
            if text is not None:
                text = _prefix_text(payload)
        truncated = record["truncated"] or len(payload) < record["length"]
        if len(payload) > BIG_FIELD or (text is not None and len(text) > BIG_FIELD):
            return None
        return self.line(record, payload, text, truncated)

    def _str(self, value: object) -> str | None:
        """``value`` as a JSON string literal, or None when it is not a str."""
        if type(value) is not str:
            return None
        done = self._strings.get(value)
        if done is None:
            if len(self._strings) >= STRINGS_KEPT:
                self._strings.clear()
            done = self._strings[value] = json_string(value)
        return done

    def line(self, record: dict[str, Any], payload: bytes, text: str | None,
             truncated: object) -> bytes | None:
        """The JSON Lines line (newline included) of a message row whose payload and
        text are ``payload`` and ``text`` (cut already), or None when a value is
        not of its column's usual type: the caller then writes it the general way."""
        # One assignment per value: mypyc builds a real tuple for ``a, b = x, y``.
        connection = record["connection"]
        index = record["index"]
        packet = record["packet"]
        frames = record["frames"]
        wire = record["wire_bytes"]
        raw = record["raw_length"]
        length = record["length"]
        ts_start = record["ts_start"]
        ts = record["ts"]
        compressed = record["compressed"]
        complete = record["complete"]
        close_code = record["close_code"]
        # Every check is an identity test: no value of another type slips through
        # (True is an int to isinstance; NaN and infinities fail ``x - x == 0``).
        if not (type(connection) is int and type(index) is int and type(packet) is int
                and type(frames) is int and type(wire) is int and type(raw) is int
                and type(length) is int and type(ts_start) is float
                and type(ts) is float and ts_start - ts_start == 0.0 and ts - ts == 0.0
                and type(compressed) is bool and type(complete) is bool
                and type(truncated) is bool
                and (close_code is None or type(close_code) is int)):
            return None
        ts_json = repr(ts)
        # Most messages start and end in one packet: one float repr (not for 0.0,
        # which equals -0.0 but is not written alike).
        ts_start_json = ts_json if ts_start == ts and ts != 0.0 else repr(ts_start)
        client_json = self._str(record["client"])
        server_json = self._str(record["server"])
        direction_json = self._str(record["direction"])
        kind_json = self._str(record["type"])
        if client_json is None or server_json is None or direction_json is None \
                or kind_json is None:
            return None
        if text is None:
            text_json = _NULL
        else:
            encoded = json_bytes(text)
            if encoded is None:
                return None
            text_json = encoded
        close_reason = record["close_reason"]
        error = record["error"]
        reason = "null" if close_reason is None else \
            json_string(close_reason) if type(close_reason) is str else None
        err = "null" if error is None else json_string(error) if type(error) is str else None
        if reason is None or err is None:
            return None
        head = (f'{{"connection": {connection}, "client": {client_json}, '
                f'"server": {server_json}, "direction": {direction_json}, '
                f'"index": {index}, "ts_start": {ts_start_json}, "ts": {ts_json}, '
                f'"packet": {packet}, "type": {kind_json}, "frames": {frames}, '
                f'"compressed": {_BOOL[compressed]}, "wire_bytes": {wire}, '
                f'"raw_length": {raw}, "length": {length}, "payload_b64": "')
        tail = (f', "close_code": {"null" if close_code is None else close_code}, '
                f'"close_reason": {reason}, "complete": {_BOOL[complete]}, '
                f'"error": {err}}}\n')
        try:
            return b"".join((head.encode(), b2a_base64(payload, newline=False),
                             _MID[truncated], text_json, tail.encode()))
        except UnicodeEncodeError:  # a lone surrogate: the stream's own error policy
            return None
