"""Latency metrics: where time goes on each WebSocket connection.

* :func:`latency_table`: one row per connection: TCP connect RTT, handshake RTT,
  and p50/p90/p99/max of ping → pong RTT, request → response latency, message
  transfer time and idle gaps.
* Detail tables beside it: :func:`ping_pairs`, :func:`request_pairs` and
  :func:`idle_gaps`, one row per pair or gap.

All times are taken from the capture's packet timestamps, so they are what the
capturing host saw: an RTT measured on the client host includes the network, one
measured on the server host mostly the peer's reaction time.  Like the tables,
timestamps are ``datetime64[ns, UTC]`` and durations (RTTs, latencies, gaps and
their percentiles) ``timedelta64[ns]``; each table's dtypes are fixed by its
``*_SPEC`` (see :mod:`wsanalyze.output.schema` for the kinds).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from wsanalyze.metrics.compression import data_messages
from wsanalyze.metrics.tables import Tables
from wsanalyze.output.dataframe import seconds, typed_frame
from wsanalyze.output.schema import Spec
from wsanalyze.websocket.pings import PingLedger

KeyFunction = Callable[[pd.Series], Hashable | None]
"""A user correlation key: called with a data message row (a pandas Series with
the ``messages`` columns), returns a hashable key or None when the message takes
no part in key matching.  A message and the next one with the same key in the
other direction make a request → response pair."""

PERCENTILES = (50, 90, 99)

PING_COLUMNS = ("connection", "direction", "ping_index", "pong_index", "ts_ping", "ts_pong",
                "rtt", "payload_length")
REQUEST_COLUMNS = ("connection", "method", "key", "request_direction", "request_index",
                   "response_index", "ts_request", "ts_response_start", "ts_response",
                   "latency", "latency_first_byte")
GAP_COLUMNS = ("connection", "before_index", "after_index", "ts_start", "ts_end", "gap")

PING_SPEC: Spec = (
    ("connection", "int64"), ("direction", "enum:direction"), ("ping_index", "int64"),
    ("pong_index", "int64?"), ("ts_ping", "timestamp"), ("ts_pong", "timestamp"),
    ("rtt", "duration"), ("payload_length", "int64"))
REQUEST_SPEC: Spec = (
    ("connection", "int64"), ("method", "enum:method"), ("key", "string"),
    ("request_direction", "enum:direction"), ("request_index", "int64"),
    ("response_index", "int64"), ("ts_request", "timestamp"),
    ("ts_response_start", "timestamp"), ("ts_response", "timestamp"), ("latency", "duration"),
    ("latency_first_byte", "duration"))
GAP_SPEC: Spec = (
    ("connection", "int64"), ("before_index", "int64"), ("after_index", "int64"),
    ("ts_start", "timestamp"), ("ts_end", "timestamp"), ("gap", "duration"))

#: graphql-ws (subscriptions-transport-ws) and graphql-transport-ws message types.
GRAPHQL_REQUESTS = frozenset({"start", "subscribe"})
GRAPHQL_RESPONSES = frozenset({"data", "next", "error", "complete"})


def _other(direction: str) -> str:
    return "s2c" if direction == "c2s" else "c2s"


def _ordered(m: pd.DataFrame) -> pd.DataFrame:
    """Rows in stream order: by connection, then ``index``."""
    if m.empty:
        return m
    return m.sort_values(["connection", "index"], kind="stable")


# ---------------------------------------------------------------------------------------
# ping → pong
# ---------------------------------------------------------------------------------------


def ping_pairs(result: Tables) -> pd.DataFrame:
    """One row per Ping: the Pong that answered it and the round-trip time.

    A Pong answers the most recent unanswered Ping of the other direction that has
    the same application data, and with it every older unanswered Ping (RFC 6455
    §5.5.3: a peer may answer only the most recently processed Ping; the same rule
    as the decoder's ``ping.unanswered``, :mod:`wsanalyze.websocket.pings`).  A
    Pong the capture shows slightly *before* its Ping (packets of the two
    directions captured out of order) still matches, with ``rtt`` 0.  Pings never
    answered have ``pong_index`` NA and ``rtt`` NaN; unsolicited Pongs are not
    listed.  ``rtt`` = Pong ``ts`` − Ping ``ts`` (last bytes).
    """
    m = result.messages
    records: list[dict[str, Any]] = []
    if not m.empty:
        control = _ordered(m[m["type"].isin(("ping", "pong"))])
        # The pairing reads plain values: directions as str, ts as epoch seconds.
        control = control[["connection", "index", "type", "length", "payload"]].assign(
            ts=seconds(control["ts"]), direction=control["direction"].astype(object),
            type=control["type"].astype(object))
        for conn, rows in control.groupby("connection", sort=True):
            records.extend(_pair_pings(int(conn), rows))
    return _frame(PING_SPEC, records)


def _frame(spec: Spec, records: list[dict[str, Any]]) -> pd.DataFrame:
    """A metric table from its row dicts, typed by ``spec``."""
    return typed_frame(spec, {name: [r[name] for r in records] for name, _ in spec})


def _pair_pings(conn: int, rows: pd.DataFrame) -> list[dict[str, Any]]:
    # Pending pings per sending direction, under the decoder's rule (one PingLedger),
    # and pongs seen before any matching ping.
    pending: dict[str, PingLedger[dict[str, Any]]] = {"c2s": PingLedger(), "s2c": PingLedger()}
    early: dict[str, list[tuple[tuple[int, bytes], int, float]]] = {"c2s": [], "s2c": []}
    out: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        key = (int(row.length), bytes(row.payload))
        if row.type == "ping":
            rec = dict(connection=conn, direction=row.direction, ping_index=int(row.index),
                       pong_index=None, ts_ping=float(row.ts), ts_pong=float("nan"),
                       rtt=float("nan"), payload_length=int(row.length))
            out.append(rec)
            answers = early[_other(row.direction)]
            hit = next((i for i, (k, _, _) in enumerate(answers) if k == key), None)
            if hit is None:
                pending[row.direction].add(key, rec)
            else:
                _, index, ts = answers.pop(hit)
                rec.update(pong_index=index, ts_pong=ts, rtt=0.0)
            continue
        answered = pending[_other(row.direction)].answer(key)
        if answered is None:
            early[row.direction].append((key, int(row.index), float(row.ts)))
            continue
        for rec in answered:
            rec.update(pong_index=int(row.index), ts_pong=float(row.ts),
                       rtt=max(0.0, float(row.ts) - rec["ts_ping"]))
    return out


# ---------------------------------------------------------------------------------------
# request → response
# ---------------------------------------------------------------------------------------


def _json_tag(text: str | None) -> tuple[str, str, Hashable] | None:
    """(method, role, key) for a JSON-RPC or graphql-ws message, else None.

    ``role`` is ``"request"`` or ``"response"``."""
    if not text:
        return None
    body = text.lstrip()
    if not body.startswith("{"):
        return None
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if isinstance(kind, str):
        ident = obj.get("id")
        if ident is not None and kind in GRAPHQL_REQUESTS:
            return ("graphql-ws", "request", _id_key(ident))
        if ident is not None and kind in GRAPHQL_RESPONSES:
            return ("graphql-ws", "response", _id_key(ident))
        if kind == "connection_init":
            return ("graphql-ws", "request", "connection_init")
        if kind == "connection_ack":
            return ("graphql-ws", "response", "connection_init")
    ident = obj.get("id")
    if ident is None:
        return None
    if "method" in obj:
        return ("json-rpc", "request", _id_key(ident))
    if "result" in obj or "error" in obj:
        return ("json-rpc", "response", _id_key(ident))
    return None


def _id_key(ident: Any) -> str:
    """A hashable, type-preserving form of a JSON id (1 and "1" differ)."""
    return json.dumps(ident, sort_keys=True)


def request_pairs(result: Tables, key: KeyFunction | None = None) -> pd.DataFrame:
    """One row per request → response pair of data messages.

    Messages are correlated, in this order of preference:

    1. ``key`` (method ``"key"``): a user function, see :data:`KeyFunction`.
    2. JSON-RPC (``"json-rpc"``): a text message whose JSON object has ``id`` and
       ``method`` is a request; the first later message of the other direction with
       the same ``id`` and a ``result`` or ``error`` answers it.
    3. graphql-ws / graphql-transport-ws (``"graphql-ws"``): ``start``/``subscribe``
       with an ``id`` is answered by the first ``data``/``next``/``error``/``complete``
       with that ``id``; ``connection_init`` by ``connection_ack``.
    4. Otherwise, on connections where none of the above matched any message
       (``"next-message"``): a client message is answered by the next server
       message, provided no other client message came in between (a burst of client
       messages pairs only its last one).

    A response answers the oldest unanswered request with its key. ``latency`` is
    response ``ts`` − request ``ts`` (last byte to last byte, like
    ``handshake_rtt``); ``latency_first_byte`` uses the response's ``ts_start``.
    """
    data = _ordered(data_messages(result))
    records: list[dict[str, Any]] = []
    if not data.empty:
        # Once, not per connection: float times for the pairing arithmetic, texts as
        # Python objects (the same scalars, str or pd.NA, faster to list per group).
        if key is None:  # a key function sees whole rows; the pairing needs these
            data = data[["connection", "index", "direction", "ts", "ts_start", "text"]]
        data = data.assign(ts=seconds(data["ts"]), ts_start=seconds(data["ts_start"]),
                           text=data["text"].astype(object),
                           direction=data["direction"].astype(object))
        for conn, rows in data.groupby("connection", sort=True):
            records.extend(_pair_requests(int(conn), rows, key))
    records.sort(key=lambda r: (r["connection"], r["request_index"]))
    return _frame(REQUEST_SPEC, records)


def _tags(rows: pd.DataFrame, key: KeyFunction | None
          ) -> list[tuple[str, str, Hashable] | None]:
    tags: list[tuple[str, str, Hashable] | None] = []
    user: list[Hashable | None] = [None] * len(rows)
    if key is not None:
        user = [key(row) for _, row in rows.iterrows()]
    texts = [t if isinstance(t, str) else None for t in rows["text"].tolist()]
    for text, k in zip(texts, user, strict=True):
        if k is not None:
            tags.append(("key", "either", k))
        else:
            tags.append(_json_tag(text))
    return tags


def _pair_requests(conn: int, rows: pd.DataFrame, key: KeyFunction | None
                   ) -> list[dict[str, Any]]:
    tags = _tags(rows, key)
    directions = rows["direction"].astype(object).tolist()
    index = rows["index"].astype("int64").tolist()
    ts_start = rows["ts_start"].tolist()
    ts = rows["ts"].tolist()

    def pair(method: str, k: Hashable | None, req: int, resp: int) -> dict[str, Any]:
        return dict(connection=conn, method=method, key=None if k is None else str(k),
                    request_direction=directions[req], request_index=index[req],
                    response_index=index[resp], ts_request=ts[req],
                    ts_response_start=ts_start[resp], ts_response=ts[resp],
                    latency=ts[resp] - ts[req], latency_first_byte=ts_start[resp] - ts[req])

    out: list[dict[str, Any]] = []
    if any(t is not None for t in tags):
        waiting: dict[tuple[str, Hashable], deque[int]] = {}
        for i, tag in enumerate(tags):
            if tag is None:
                continue
            method, role, k = tag
            queue = waiting.setdefault((method, k), deque())
            if role in ("response", "either"):
                hit = next((j for j in queue if directions[j] != directions[i]), None)
                if hit is not None:
                    queue.remove(hit)
                    out.append(pair(method, k, hit, i))
                    continue
            if role in ("request", "either"):
                queue.append(i)
        return out
    asked: int | None = None
    for i, direction in enumerate(directions):
        if direction == "c2s":
            asked = i
        elif asked is not None:
            out.append(pair("next-message", None, asked, i))
            asked = None
    return out


# ---------------------------------------------------------------------------------------
# idle gaps
# ---------------------------------------------------------------------------------------


def idle_gaps(result: Tables) -> pd.DataFrame:
    """One row per pair of consecutive messages of a connection (any type, either
    direction): ``gap`` = next message's ``ts_start`` − previous message's ``ts``,
    0 when they overlap.  ``before_index``/``after_index`` are the ``index`` of the
    messages around the gap."""
    m = _ordered(result.messages)
    if m.empty:
        return typed_frame(GAP_SPEC, {})
    conn = m["connection"].to_numpy(dtype=np.int64)
    same = conn[1:] == conn[:-1]
    idx = m["index"].to_numpy(dtype=np.int64)
    end = seconds(m["ts"])[:-1][same]
    start = seconds(m["ts_start"])[1:][same]
    return typed_frame(GAP_SPEC, {
        "connection": conn[1:][same],
        "before_index": idx[:-1][same],
        "after_index": idx[1:][same],
        "ts_start": end,
        "ts_end": start,
        "gap": np.maximum(0.0, start - end),
    })


# ---------------------------------------------------------------------------------------
# per-connection table
# ---------------------------------------------------------------------------------------


def _stats(prefix: str, values: Iterable[float]) -> dict[str, float | int]:
    """``{prefix}_count``, p50/p90/p99 and max of the finite ``values``."""
    arr = np.asarray(list(values), dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    out: dict[str, float | int] = {f"{prefix}_count": int(arr.size)}
    if arr.size:
        for q, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES), strict=True):
            out[f"{prefix}_p{q}"] = float(v)
        out[f"{prefix}_max"] = float(arr.max())
    else:
        for q in PERCENTILES:
            out[f"{prefix}_p{q}"] = float("nan")
        out[f"{prefix}_max"] = float("nan")
    return out


def _stat_columns(prefix: str) -> list[str]:
    return [f"{prefix}_count", *(f"{prefix}_p{q}" for q in PERCENTILES), f"{prefix}_max"]


LATENCY_COLUMNS: tuple[str, ...] = (
    "connection", "client", "server", "tcp_connect_rtt", "handshake_rtt",
    *_stat_columns("ping_rtt"), "pings_unanswered",
    *_stat_columns("request_latency"), "request_method",
    *_stat_columns("transfer"),
    *_stat_columns("idle_gap"),
)


LATENCY_SPEC: Spec = tuple(
    (name, "int64" if name.endswith("_count") or name in ("connection", "pings_unanswered")
     else "string" if name in ("client", "server", "request_method") else "duration")
    for name in LATENCY_COLUMNS)


def latency_table(result: Tables, key: KeyFunction | None = None, *,
                  pings: pd.DataFrame | None = None, requests: pd.DataFrame | None = None,
                  gaps: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per connection: where its time went.

    * ``tcp_connect_rtt``: SYN → SYN/ACK → ACK; ``handshake_rtt``: Upgrade request
      → 101 response (both from ``connections``, NaN when not captured).
    * ``ping_rtt_*``: Ping → Pong round trips (:func:`ping_pairs`);
      ``pings_unanswered`` counts Pings no Pong answered.
    * ``request_latency_*``: request → response latency (:func:`request_pairs`,
      ``key`` is passed on); ``request_method`` names how pairs were matched
      (methods joined with ``+`` when several).
    * ``transfer_*``: ``ts - ts_start`` of data messages, the time from the packet
      with a message's first byte to the one with its last.
    * ``idle_gap_*``: gaps between consecutive messages (:func:`idle_gaps`).

    Each ``*_count`` is the number of values, then ``_p50``, ``_p90``, ``_p99``
    (linear interpolation) and ``_max``; NaT when there are none.  Durations.
    ``pings``, ``requests`` and ``gaps`` are the pair tables when already computed
    (``requests`` then replaces ``key``).
    """
    conns = result.connections
    pings = ping_pairs(result) if pings is None else pings
    requests = request_pairs(result, key) if requests is None else requests
    gaps = idle_gaps(result) if gaps is None else gaps
    data = data_messages(result)
    transfer = pd.Series(seconds(data["ts"]) - seconds(data["ts_start"]), index=data.index) \
        if not data.empty else pd.Series(dtype=float)
    by_conn_transfer = transfer.groupby(data["connection"]) if not data.empty else None

    def group(df: pd.DataFrame, column: str) -> dict[int, np.ndarray]:
        if df.empty:
            return {}
        values = seconds(df[column])  # once, then sliced per connection
        return {int(c): values[rows] for c, rows in df.groupby("connection", sort=False)
                .indices.items()}

    ping_rtt = group(pings, "rtt")
    req_lat = group(requests, "latency")
    gap_len = group(gaps, "gap")
    methods: dict[int, str] = {}
    if not requests.empty:
        for c, g in requests.groupby("connection", sort=False):
            methods[int(c)] = "+".join(sorted(g["method"].astype(str).unique()))
    transfers: dict[int, np.ndarray] = {}
    if by_conn_transfer is not None:
        transfers = {int(c): g.to_numpy(dtype=np.float64) for c, g in by_conn_transfer}
    empty = np.empty(0)
    ids = conns["connection"].astype(int).tolist()
    hs_rtt = dict(zip(ids, seconds(conns["handshake_rtt"]).tolist(), strict=True))
    tcp_rtt = dict(zip(ids, seconds(conns["tcp_connect_rtt"]).tolist(), strict=True))
    records: list[dict[str, Any]] = []
    for conn in conns.itertuples(index=False):
        cid = int(conn.connection)
        rtts = ping_rtt.get(cid, empty)
        rec: dict[str, Any] = dict(
            connection=cid, client=conn.client, server=conn.server,
            tcp_connect_rtt=tcp_rtt.get(cid, float("nan")),
            handshake_rtt=hs_rtt.get(cid, float("nan")),
            pings_unanswered=int(np.isnan(rtts).sum()),
            request_method=methods.get(cid),
        )
        rec.update(_stats("ping_rtt", rtts))
        rec.update(_stats("request_latency", req_lat.get(cid, empty)))
        rec.update(_stats("transfer", transfers.get(cid, empty)))
        rec.update(_stats("idle_gap", gap_len.get(cid, empty)))
        records.append(rec)
    return _frame(LATENCY_SPEC, records)
