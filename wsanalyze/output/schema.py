"""Columns of the four tables of OUTPUTS.md, in order, with their Arrow types.

One definition serves the DataFrames, CSV, Parquet and the table printer, so the
forms agree column for column.
"""

from __future__ import annotations

CONNECTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("ts_start", "float64"), ("ts_end", "float64"), ("host", "string"), ("path", "string"),
    ("origin", "string"), ("user_agent", "string"), ("subprotocols_offered", "list<string>"),
    ("subprotocol", "string"), ("extensions_offered", "string"), ("extensions", "string"),
    ("handshake", "string"), ("handshake_rtt", "float64"), ("deflate", "bool"),
    ("close_code", "int64"), ("close_reason", "string"), ("end", "string"),
    ("messages_c2s", "int64"), ("messages_s2c", "int64"), ("bytes_c2s", "int64"),
    ("bytes_s2c", "int64"), ("violations", "int64"),
    # Extra columns (OUTPUTS.md allows additions):
    ("tcp_connect_rtt", "float64"),
    ("tls_version", "string"), ("tls_cipher", "string"), ("sni", "string"), ("alpn", "string"),
    ("decrypted", "bool"),
)

MESSAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "string"), ("index", "int64"), ("ts_start", "float64"), ("ts", "float64"),
    ("packet", "int64"), ("type", "string"), ("frames", "int64"), ("compressed", "bool"),
    ("wire_bytes", "int64"), ("raw_length", "int64"), ("length", "int64"),
    ("payload", "binary"), ("truncated", "bool"), ("text", "string"),
    ("close_code", "int64"), ("close_reason", "string"), ("complete", "bool"),
    ("error", "string"),
)

FRAME_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "string"), ("index", "int64"), ("ts", "float64"), ("fin", "bool"),
    ("rsv1", "bool"), ("rsv2", "bool"), ("rsv3", "bool"), ("opcode", "int64"),
    ("masked", "bool"), ("mask_key", "string"), ("header_bytes", "int64"),
    ("packet", "int64"), ("payload_length", "int64"), ("stream_offset", "int64"),
    ("message", "int64"),
)

VIOLATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connection", "int64"), ("client", "string"), ("server", "string"),
    ("direction", "string"), ("ts", "float64"), ("packet", "int64"), ("rule", "string"),
    ("severity", "string"), ("reference", "string"), ("message", "string"),
    ("frame", "int64"), ("stream_offset", "int64"),
)

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "connection": CONNECTION_COLUMNS,
    "message": MESSAGE_COLUMNS,
    "frame": FRAME_COLUMNS,
    "violation": VIOLATION_COLUMNS,
}


def column_names(table: str, *, payload_b64: bool = False) -> list[str]:
    """Column names of a table; files carry ``payload_b64`` where frames hold bytes."""
    names = [name for name, _ in COLUMNS[table]]
    if payload_b64 and "payload" in names:
        names[names.index("payload")] = "payload_b64"
    return names
