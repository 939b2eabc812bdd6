"""permessage-deflate metrics (RFC 7692): what compression did, and what it would do.

Two tables:

* :func:`compression_table`: one row per connection and direction: how many data
  messages were compressed, bytes on the wire against bytes after inflating,
  ratio, bytes saved, messages that grew, the negotiated parameters of that
  direction, and *estimates* of what permessage-deflate would produce
  (computed by compressing the payloads with zlib, see below).
* :func:`message_compression`: per-message columns meant to be joined to
  ``result.messages`` (same index).

Only data messages (text, binary, reserved data opcodes) count: RFC 7692 never
compresses control frames.

Estimates compress each direction's payloads the way a permessage-deflate sender
does (raw DEFLATE, zlib level 6, 32 KiB window, ``Z_SYNC_FLUSH``, trailing
``00 00 ff ff`` removed), once with one compressor kept across messages (context
takeover) and once with a fresh compressor per message (no context takeover).
They need whole payloads: with ``analyze(payloads="preview"|"none")`` they are
missing (NaN).  Real peers differ (other levels, smaller windows, compression
thresholds), so the columns are named ``estimate_*``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd

from wsanalyze.metrics.tables import Tables
from wsanalyze.output.dataframe import typed_frame
from wsanalyze.output.schema import Spec
from wsanalyze.websocket.deflate import TAIL as _SYNC_TAIL
from wsanalyze.websocket.handshake import DeflateParams, parse_deflate_params

__all__ = ["DeflateParams", "compression_table", "message_compression", "parse_deflate_params"]

EstimateMode = Literal["uncompressed", "all", "none"]

#: Message types that carry application data (control frames are never compressed).
CONTROL_TYPES = frozenset({"close", "ping", "pong"})
DIRECTIONS = ("c2s", "s2c")
DEFAULT_WINDOW_BITS = 15
ESTIMATE_LEVEL = 6

COMPRESSION_COLUMNS: tuple[str, ...] = (
    "connection", "client", "server", "direction", "deflate",
    "messages", "compressed_messages", "compressed_share",
    "wire_bytes", "payload_bytes", "inflated_bytes", "ratio", "saved_bytes", "saved_share",
    "grew_messages", "grew_bytes", "undecodable_messages",
    "window_bits", "window_bytes", "context_takeover",
    "estimate_bytes_takeover", "estimate_bytes_no_takeover",
    "estimate_saved_takeover", "estimate_saved_no_takeover",
    "estimate_ratio_takeover", "estimate_ratio_no_takeover",
)
_COMPRESSION_KINDS = {"client": "string", "server": "string", "direction": "enum:direction",
                      "deflate": "bool", "context_takeover": "bool?"}
_NULLABLE = ("window_bits", "window_bytes", "estimate_bytes_takeover",
             "estimate_bytes_no_takeover", "estimate_saved_takeover",
             "estimate_saved_no_takeover")
COMPRESSION_SPEC: Spec = tuple(
    (name, _COMPRESSION_KINDS.get(name) or ("int64?" if name in _NULLABLE else
                                            "float64" if "share" in name or "ratio" in name
                                            else "int64"))
    for name in COMPRESSION_COLUMNS)


def estimate_sizes(payloads: Iterable[bytes], *, context_takeover: bool,
                   wbits: int = DEFAULT_WINDOW_BITS, level: int = ESTIMATE_LEVEL) -> list[int]:
    """Sizes of the permessage-deflate payloads a sender would produce for the
    successive messages ``payloads`` of one direction (raw DEFLATE, sync flush,
    ``00 00 ff ff`` tail removed)."""
    sizes: list[int] = []
    comp = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    for payload in payloads:
        if not context_takeover:
            comp = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        out = comp.compress(payload) + comp.flush(zlib.Z_SYNC_FLUSH)
        sizes.append(len(out) - len(_SYNC_TAIL) if out.endswith(_SYNC_TAIL) else len(out))
    return sizes


def data_messages(result: Tables) -> pd.DataFrame:
    """The data message rows (text, binary, reserved data opcodes) of ``result``."""
    m = result.messages
    if m.empty:
        return m
    return m[~m["type"].isin(CONTROL_TYPES)]


def _has_whole_payloads(rows: pd.DataFrame) -> bool:
    """True when every row's ``payload`` holds all ``length`` decoded bytes."""
    if rows.empty:
        return True
    if rows["truncated"].astype(bool).any() or rows["error"].notna().any():
        return False
    lengths = rows["payload"].map(len).to_numpy()
    return bool((lengths == rows["length"].to_numpy(dtype=np.int64)).all())


def message_compression(result: Tables, *, estimate: bool = False) -> pd.DataFrame:
    """Per-message compression figures, indexed like ``result.messages`` (join them).

    Columns:

    * ``compression_ratio``: ``raw_length / length`` of a compressed message
      (carried bytes per inflated byte: 0.25 means a quarter of the size); NaN for
      uncompressed messages, control frames, empty messages and undecodable ones.
    * ``compression_saved``: ``length - raw_length`` (bytes saved, negative when the
      message grew); 0 for uncompressed messages, NA when undecodable.
    * ``compression_grew``: a compressed message whose carried payload is larger
      than its inflated payload.

    With ``estimate=True`` two more columns give, for data messages of connections
    without permessage-deflate whose payloads are whole, the estimated compressed
    size: ``estimate_bytes_no_takeover`` (message compressed alone) and
    ``estimate_bytes_takeover`` (compressor kept across the direction's messages).
    """
    m = result.messages
    out = pd.DataFrame(index=m.index)
    if m.empty:
        out["compression_ratio"] = pd.Series(dtype="float64")
        out["compression_saved"] = pd.Series(dtype="Int64")
        out["compression_grew"] = pd.Series(dtype="bool")
        if estimate:
            out["estimate_bytes_takeover"] = pd.Series(dtype="Int64")
            out["estimate_bytes_no_takeover"] = pd.Series(dtype="Int64")
        return out
    compressed = m["compressed"].astype(bool).to_numpy()
    raw = m["raw_length"].to_numpy(dtype=np.int64)
    length = m["length"].to_numpy(dtype=np.int64)
    error = m["error"].notna().to_numpy()
    usable = compressed & ~error & (length > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(usable, raw / np.where(length > 0, length, 1), np.nan)
    out["compression_ratio"] = ratio
    saved = pd.array(np.where(compressed, length - raw, 0), dtype="Int64")
    saved[error] = pd.NA
    out["compression_saved"] = saved
    out["compression_grew"] = compressed & ~error & (raw > length)
    if estimate:
        takeover = pd.array([pd.NA] * len(m), dtype="Int64")
        alone = pd.array([pd.NA] * len(m), dtype="Int64")
        positions = pd.Series(np.arange(len(m)), index=m.index)
        plain = _plain_connections(result)
        data = data_messages(result)
        data = data[data["connection"].isin(plain)]
        for _, rows in data.groupby(["connection", "direction"], sort=False):
            rows = rows.sort_values("index")
            if not _has_whole_payloads(rows):
                continue
            pos = positions.loc[rows.index].to_numpy()
            payloads = rows["payload"].tolist()
            takeover[pos] = estimate_sizes(payloads, context_takeover=True)
            alone[pos] = estimate_sizes(payloads, context_takeover=False)
        out["estimate_bytes_takeover"] = takeover
        out["estimate_bytes_no_takeover"] = alone
    return out


def _negotiated(conn: Any) -> DeflateParams | None:
    """The permessage-deflate parameters on a connections row (None when inferred
    mid-stream: the handshake was not seen)."""
    client_bits = conn.deflate_client_max_window_bits
    if client_bits is None or client_bits is pd.NA or client_bits != client_bits:
        return None
    return DeflateParams(
        server_no_context_takeover=bool(conn.deflate_server_no_context_takeover),
        client_no_context_takeover=bool(conn.deflate_client_no_context_takeover),
        server_max_window_bits=int(conn.deflate_server_max_window_bits),
        client_max_window_bits=int(client_bits))


def _plain_connections(result: Tables) -> set[int]:
    """Ids of connections without permessage-deflate."""
    c = result.connections
    if c.empty:
        return set()
    return set(c.loc[~c["deflate"].astype(bool), "connection"].astype(int))


def compression_table(result: Tables, *,
                      estimate: EstimateMode = "uncompressed") -> pd.DataFrame:
    """One row per connection and direction describing permessage-deflate.

    Columns (bytes are payload bytes unless the name says ``wire``):

    * ``deflate``: permessage-deflate in effect on the connection.
    * ``messages``, ``compressed_messages``, ``compressed_share``: data messages,
      those sent compressed (RSV1), and their share.
    * ``wire_bytes``: bytes of the data messages' frames on the wire (headers
      included); ``payload_bytes``: payload as carried; ``inflated_bytes``: after
      inflating.
    * ``ratio`` = ``payload_bytes / inflated_bytes`` (lower is better; 1 without
      compression); ``saved_bytes`` = ``inflated_bytes - payload_bytes``;
      ``saved_share`` = ``saved_bytes / inflated_bytes``.
    * ``grew_messages``, ``grew_bytes``: compressed messages larger than their
      inflated payload, and by how many bytes in total.
    * ``undecodable_messages``: messages whose payload could not be decoded; they
      are left out of the byte sums.
    * ``window_bits``, ``window_bytes``, ``context_takeover``: what the sender of
      this direction was allowed to use, parsed from the 101 response's
      ``Sec-WebSocket-Extensions`` (``client_*`` parameters for c2s, ``server_*``
      for s2c). A window costs ``window_bytes`` of memory on each side for the life
      of the connection when context is kept; without context takeover every
      message starts from an empty window. NA without permessage-deflate, or when
      the handshake was not captured.
    * ``estimate_bytes_takeover`` / ``estimate_bytes_no_takeover``: estimated
      compressed payload bytes (zlib, see the module docstring);
      ``estimate_saved_*`` = ``inflated_bytes - estimate_bytes_*``;
      ``estimate_ratio_*`` = ``estimate_bytes_* / inflated_bytes``.

    ``estimate`` picks the directions that get estimates: ``"uncompressed"``
    (connections without permessage-deflate: what it would have saved), ``"all"``
    (also compressed ones, recompressing the inflated payloads: compare with the
    actual figures to see what the negotiated parameters cost) or ``"none"``.
    """
    conns = result.connections
    data = data_messages(result)
    groups: dict[tuple[int, str], pd.DataFrame] = {}
    if not data.empty:
        # Only the columns the figures read: slicing every string column per group
        # would cost more than the figures.
        data = data[["connection", "direction", "index", "compressed", "error", "truncated",
                     "wire_bytes", "raw_length", "length", "payload"]]
        for (conn, direction), rows in data.groupby(["connection", "direction"], sort=False,
                                                    observed=True):
            groups[(int(conn), str(direction))] = rows
    records: list[dict[str, Any]] = []
    for conn in conns.itertuples(index=False):
        params = _negotiated(conn) if conn.deflate else None
        for direction in DIRECTIONS:
            rows = groups.get((int(conn.connection), direction))
            rec = _direction_stats(rows)
            rec.update(connection=int(conn.connection), client=conn.client, server=conn.server,
                       direction=direction, deflate=bool(conn.deflate))
            if params is not None:
                bits = params.window_bits(direction)
                rec.update(window_bits=bits, window_bytes=1 << bits,
                           context_takeover=params.context_takeover(direction))
            want = estimate == "all" or (estimate == "uncompressed" and not conn.deflate)
            if want:
                rec.update(_estimates(rows, rec["inflated_bytes"]))
            records.append(rec)
    return typed_frame(COMPRESSION_SPEC, {name: [r.get(name) for r in records]
                                          for name in COMPRESSION_COLUMNS})


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _direction_stats(rows: pd.DataFrame | None) -> dict[str, Any]:
    if rows is None or rows.empty:
        return dict(messages=0, compressed_messages=0, compressed_share=float("nan"),
                    wire_bytes=0, payload_bytes=0, inflated_bytes=0, ratio=float("nan"),
                    saved_bytes=0, saved_share=float("nan"), grew_messages=0, grew_bytes=0,
                    undecodable_messages=0)
    compressed = rows["compressed"].astype(bool)
    bad = rows["error"].notna()
    good = rows[~bad]
    raw = int(good["raw_length"].sum())
    inflated = int(good["length"].sum())
    gc = good[good["compressed"].astype(bool)]
    growth = gc["raw_length"].astype(np.int64) - gc["length"].astype(np.int64)
    return dict(
        messages=len(rows),
        compressed_messages=int(compressed.sum()),
        compressed_share=float(compressed.mean()),
        wire_bytes=int(rows["wire_bytes"].sum()),
        payload_bytes=raw,
        inflated_bytes=inflated,
        ratio=_ratio(raw, inflated),
        saved_bytes=inflated - raw,
        saved_share=_ratio(inflated - raw, inflated),
        grew_messages=int((growth > 0).sum()),
        grew_bytes=int(growth[growth > 0].sum()),
        undecodable_messages=int(bad.sum()),
    )


def _estimates(rows: pd.DataFrame | None, inflated: int) -> dict[str, Any]:
    if rows is None or rows.empty:
        return dict(estimate_bytes_takeover=0, estimate_bytes_no_takeover=0,
                    estimate_saved_takeover=0, estimate_saved_no_takeover=0)
    if not _has_whole_payloads(rows):
        return {}
    payloads = rows.sort_values("index")["payload"].tolist()
    with_ctx = sum(estimate_sizes(payloads, context_takeover=True))
    alone = sum(estimate_sizes(payloads, context_takeover=False))
    return dict(
        estimate_bytes_takeover=with_ctx,
        estimate_bytes_no_takeover=alone,
        estimate_saved_takeover=inflated - with_ctx,
        estimate_saved_no_takeover=inflated - alone,
        estimate_ratio_takeover=_ratio(with_ctx, inflated),
        estimate_ratio_no_takeover=_ratio(alone, inflated),
    )
