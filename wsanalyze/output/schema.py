"""Columns of the four tables of OUTPUTS.md, in order, with their kinds.

One definition serves the DataFrames, CSV, Parquet and the table printer, so the
forms agree column for column.  A column's *kind* fixes its type in every form
(:mod:`wsanalyze.output.dataframe` maps kinds to pandas dtypes, files keep plain
JSON values); adding a column is one line here.

Kinds: ``int64`` (never null), ``int64?`` (nullable), ``float64``, ``bool``,
``bool?``, ``string`` (nullable), ``list<string>``, ``binary``, ``timestamp``
(float epoch seconds in files, ``datetime64[ns, UTC]`` in DataFrames/Parquet),
``duration`` (float seconds in files, ``timedelta64[ns]`` in DataFrames/Parquet)
and ``enum:NAME`` (a string from the closed vocabulary ``VOCABULARIES[NAME]``, a
categorical with fixed categories in DataFrames/Parquet).
"""

from __future__ import annotations

from wsanalyze.rules import RULES

Spec = tuple[tuple[str, str], ...]

#: Closed vocabularies of the ``enum:*`` kinds, in the order categories take.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "direction": ("c2s", "s2c"),
    "type": ("text", "binary", "close", "ping", "pong", "continuation",
             *(f"opcode-0x{op:X}" for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF))),
    "severity": ("error", "warning", "info"),
    "rule": tuple(RULES),
    "end": ("close-handshake", "close-one-sided", "tcp-fin", "tcp-reset", "capture-ended"),
    "handshake": ("ok", "rejected", "invalid", "not-captured"),
    # How request_pairs matched a pair (a metric table, not a file column).
    "method": ("key", "json-rpc", "graphql-ws", "next-message"),
}

CONNECTION_COLUMNS: Spec = (
    ("connection", "int64"), ("tcp_stream", "int64"), ("client", "string"), ("server", "string"),
    ("ts_start", "timestamp"), ("ts_end", "timestamp"), ("host", "string"), ("path", "string"),
    ("origin", "string"), ("user_agent", "string"), ("subprotocols_offered", "list<string>"),
    ("subprotocol", "string"), ("extensions_offered", "string"), ("extensions", "string"),
    ("handshake", "enum:handshake"), ("handshake_rtt", "duration"), ("deflate", "bool"),
    ("close_code", "int64?"), ("close_reason", "string"), ("end", "enum:end"),
    ("messages_c2s", "int64"), ("messages_s2c", "int64"), ("bytes_c2s", "int64"),
    ("bytes_s2c", "int64"), ("violations", "int64"),
    # Extra columns (OUTPUTS.md allows additions):
    ("tcp_connect_rtt", "duration"),
    # The negotiated permessage-deflate parameters (RFC 7692 §7.1): window bits
    # (8-15; null without deflate or when inferred mid-stream), and whether each
    # sender agreed to reset its compressor per message (false without deflate).
    ("deflate_client_max_window_bits", "int64?"), ("deflate_server_max_window_bits", "int64?"),
    ("deflate_client_no_context_takeover", "bool"),
    ("deflate_server_no_context_takeover", "bool"),
    # wss:// (TLS decrypted with key logs): null on plain connections; decrypted
    # is null there too, true or false on TLS connections.
    ("tls_version", "string"), ("tls_cipher", "string"), ("sni", "string"), ("alpn", "string"),
    ("decrypted", "bool?"),
)

MESSAGE_COLUMNS: Spec = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "enum:direction"), ("index", "int64"), ("ts_start", "timestamp"),
    ("ts", "timestamp"), ("packet", "int64"), ("type", "enum:type"), ("frames", "int64"),
    ("compressed", "bool"), ("wire_bytes", "int64"), ("raw_length", "int64"),
    ("length", "int64"), ("payload", "binary"), ("truncated", "bool"), ("text", "string"),
    ("close_code", "int64?"), ("close_reason", "string"), ("complete", "bool"),
    ("error", "string"),
)

FRAME_COLUMNS: Spec = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "enum:direction"), ("index", "int64"), ("ts", "timestamp"), ("fin", "bool"),
    ("rsv1", "bool"), ("rsv2", "bool"), ("rsv3", "bool"), ("opcode", "int64"),
    ("masked", "bool"), ("mask_key", "string"), ("header_bytes", "int64"),
    ("packet", "int64"), ("payload_length", "int64"), ("stream_offset", "int64"),
    ("message", "int64"),
)

VIOLATION_COLUMNS: Spec = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "enum:direction"), ("ts", "timestamp"), ("packet", "int64?"),
    ("rule", "enum:rule"), ("severity", "enum:severity"), ("reference", "string"),
    ("message", "string"), ("frame", "int64?"), ("stream_offset", "int64?"),
)

COLUMNS: dict[str, Spec] = {
    "connection": CONNECTION_COLUMNS,
    "message": MESSAGE_COLUMNS,
    "frame": FRAME_COLUMNS,
    "violation": VIOLATION_COLUMNS,
}

#: Columns only the DataFrames have, after the file columns: ``t`` is seconds
#: from the capture's first packet (an axis for plots), the ``compression_*``
#: columns come from :func:`wsanalyze.metrics.message_compression`.
DATAFRAME_EXTRAS: dict[str, Spec] = {
    "connection": (),
    "message": (("t", "float64"), ("compression_ratio", "float64"),
                ("compression_saved", "int64?"), ("compression_grew", "bool")),
    "frame": (("t", "float64"),),
    "violation": (("t", "float64"),),
}


def dataframe_columns(table: str) -> Spec:
    """Columns of a table's DataFrame, as ``analyze()`` returns it."""
    return COLUMNS[table] + DATAFRAME_EXTRAS[table]


def column_names(table: str, *, payload_b64: bool = False) -> list[str]:
    """Column names of a table; files carry ``payload_b64`` where frames hold bytes."""
    names = [name for name, _ in COLUMNS[table]]
    if payload_b64 and "payload" in names:
        names[names.index("payload")] = "payload_b64"
    return names
