"""Public configuration: what to produce and the resource limits to apply (README, Limits).

:class:`DecoderLimits` bounds one connection's decoder; :class:`Options` is what a
run of the pipeline is given.  Both are plain data, importable without pulling
in the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wsanalyze.websocket.http1 import MAX_HEAD

if TYPE_CHECKING:
    from wsanalyze.tls.keylog import KeyLog

TABLES = ("connection", "message", "frame", "violation")
"""The tables of OUTPUTS.md."""


@dataclass(slots=True)
class DecoderLimits:
    """Resource limits of one connection's decoder (see README, Limits)."""

    max_payload: int = 64 << 20
    """Payload bytes kept per message; beyond it the payload is cut (``truncated``)
    and a ``message.too-big`` row is written."""
    max_inflate: int = 1 << 30
    """Inflated bytes per message after which inflating stops (decompression bombs);
    later messages of that direction may then lack compression history."""
    max_http_head: int = MAX_HEAD
    max_scan_buffer: int = 1 << 20


@dataclass(slots=True)
class Options:
    """What to produce and the limits to apply (see README, Limits)."""

    limits: DecoderLimits = field(default_factory=DecoderLimits)
    tables: frozenset[str] = frozenset(TABLES)
    """Tables whose records are produced; the others are skipped (faster)."""
    max_buffered: int = 8 << 20
    """Out-of-order bytes buffered per TCP direction."""
    max_connections: int = 100_000
    tls_keylog: KeyLog | None = None
    """Secrets for TLS connections (``--tls-keylog``); pcapng blocks add more."""
