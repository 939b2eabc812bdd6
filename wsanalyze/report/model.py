"""What a bug-ticket report holds, collected from a capture.

:func:`build` analyses the capture once (tables with payload previews), fetches
the bytes of the offending frames with a targeted second pass
(:mod:`wsanalyze.report.framebytes`) and renders the plots; the renderers
(:mod:`~wsanalyze.report.markdown`, :mod:`~wsanalyze.report.html`) only format
what is here.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wsanalyze import failon
from wsanalyze.export import Flow
from wsanalyze.output.summary import CHECK_RULES, Summary
from wsanalyze.output.summary_render import CaptureInfo, capture_doc
from wsanalyze.report import framebytes, hexdump
from wsanalyze.rules import RULES, Rule

DETAILED = 3
"""Violations shown in full per rule and connection; the others are listed."""
LISTED = 50
CONTEXT = 3
"""Messages shown before and after a violation."""
MAX_TIMELINES = 10
DUMP_BYTES = 14 + hexdump.PAYLOAD_SHOWN


@dataclass
class ReportOptions:
    connections: list[int] | None = None
    rules: list[str] | None = None
    severity: str | None = None
    """Include violations of this severity or worse (None: all)."""
    export: str | None = None
    """Path of the evidence capture written beside the report, if any."""
    plots: bool = True
    record_filter: Any = None
    """A :class:`~wsanalyze.filters.RecordFilter` on the violation rows (the shared
    command-line filters), applied with the options above."""
    analysis: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for :func:`~wsanalyze.analysis.analyze` (``limits``,
    ``jobs``, ``max_buffered``, ``max_connections``: the command's -j and limits)."""


@dataclass
class Finding:
    row: dict[str, Any]
    filters: list[tuple[str, str]]
    before: list[dict[str, Any]] = field(default_factory=list)
    after: list[dict[str, Any]] = field(default_factory=list)
    reaction: str = ""
    offending: dict[str, Any] | None = None
    """The messages row holding the offending frame, when known."""
    dump: hexdump.FrameDump | None = None
    dump_lines: list[str] = field(default_factory=list)
    """Instead of ``dump``: the HTTP head of a handshake rule, or bytes at the
    stream offset of a header the decoder could not follow."""
    dump_note: str = ""


@dataclass
class ConnectionGroup:
    conn: dict[str, Any]
    count: int
    findings: list[Finding]
    """The first DETAILED, in full."""
    listed: list[dict[str, Any]]
    """The next LISTED violation rows."""


@dataclass
class RuleGroup:
    rule: Rule
    count: int
    connections: list[ConnectionGroup]


@dataclass
class Report:
    path: str
    summary: dict[str, Any]
    """The capture document of ``wsanalyze summary --format json``."""
    tcp_conversations: int
    connections: list[dict[str, Any]]
    groups: list[RuleGroup]
    notes: list[RuleGroup]
    """capture.* rows: properties of the capture, not of the peers."""
    plots: dict[str, bytes]
    """Overview plots, PNG bytes by name."""
    timelines: dict[int, bytes]
    """Timeline PNG by affected connection."""
    options: ReportOptions
    warnings: list[str]
    checks: int = len(CHECK_RULES)

    @property
    def severities(self) -> Counter[str]:
        """Rows by severity among those the report shows (its filters applied)."""
        counts: Counter[str] = Counter()
        for g in (*self.groups, *self.notes):
            counts[g.rule.severity] += g.count
        return counts

    @property
    def clean(self) -> bool:
        return not any(g.rule.severity != "info" for g in self.groups)


def seconds(value: Any) -> float:
    """A timestamp as float seconds (DataFrames may hold pandas Timestamps)."""
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def _plain(v: Any) -> Any:
    """A value of a typed DataFrame (issue 17: datetime64[ns, UTC], timedelta64,
    categoricals, nullable integers, pd.NA) as the plain value of a record row:
    float seconds for times and durations, None for missing values."""
    if v is None:
        return None
    if isinstance(v, float):
        return None if v != v else v
    if isinstance(v, (str, bytes, bool, int)):
        return v
    if type(v).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(v, "total_seconds"):  # pandas Timedelta / datetime.timedelta
        return float(v.total_seconds())
    if hasattr(v, "timestamp"):  # pandas Timestamp / datetime
        return float(v.timestamp())
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # numpy scalars
        return _plain(v.item())
    return v


def _records(df: Any) -> list[dict[str, Any]]:
    rows = df.to_dict("records")
    for r in rows:
        for k, v in r.items():
            r[k] = _plain(v)
    return rows


def wireshark_filters(conn: dict[str, Any], packet: int | None) -> list[tuple[str, str]]:
    """Display filters: the packet, the TCP stream (when known), the address pair."""
    out = []
    if packet is not None:
        out.append(("packet", f"frame.number == {packet}"))
    if conn.get("tcp_stream") is not None:
        out.append(("connection", f"tcp.stream eq {int(conn['tcp_stream'])}"))
    try:
        (ca, cp), (sa, sp) = split_endpoint(conn["client"]), split_endpoint(conn["server"])
    except ValueError:  # an endpoint a damaged capture left without address or port
        return out
    ip = "ipv6" if ":" in ca else "ip"
    out.append(("addresses", f"{ip}.addr eq {ca} and {ip}.addr eq {sa} and "
                             f"tcp.port eq {cp} and tcp.port eq {sp}"))
    return out


def split_endpoint(text: str | None) -> tuple[str, int]:
    """``"10.0.0.1:80"`` or ``"[::1]:80"`` → (address, port); ValueError otherwise."""
    host, _, port = (text or "").rpartition(":")
    if not host:
        raise ValueError(f"not an endpoint: {text!r}")
    return host.strip("[]"), int(port)


def _context(msgs: list[dict[str, Any]], row: dict[str, Any],
             frame: dict[str, Any] | None) -> tuple[list, list, dict[str, Any] | None]:
    """Messages before and after the violation, and the message holding the
    offending frame (when it points at one)."""
    hit = None
    if frame is not None and frame.get("message") is not None:
        hit = next((m for m in msgs if m["direction"] == frame["direction"]
                    and m["index"] == frame["message"]), None)
    if hit is not None:
        prior = [m for m in msgs if m["index"] < hit["index"]]
        later = [m for m in msgs if m["index"] > hit["index"]]
        return prior[-CONTEXT:], later[:CONTEXT], hit
    packet = row.get("packet")
    ts = row["ts"]

    def before(m: dict[str, Any]) -> bool:
        if packet is not None:
            return bool(m["packet"] <= packet)
        return m["ts"] is not None and ts is not None and m["ts"] <= ts

    prior = [m for m in msgs if before(m)]
    later = [m for m in msgs if not before(m)]
    return prior[-CONTEXT:], later[:CONTEXT], None


def reaction(row: dict[str, Any], conn: dict[str, Any], msgs: list[dict[str, Any]]) -> str:
    """What the peer that did not break the rule did next."""
    if row.get("direction") not in ("c2s", "s2c"):
        return ""
    other = "s2c" if row["direction"] == "c2s" else "c2s"
    who = "the server" if other == "s2c" else "the client"
    packet = row.get("packet") or 0
    later = [m for m in msgs if m["direction"] == other and m["packet"] > packet]
    close = next((m for m in later if m["type"] == "close"), None)
    data = [m for m in later if m["type"] in ("text", "binary")
            and (close is None or m["index"] < close["index"])]
    carried = f"carried on ({len(data)} more data message(s))" if data else ""
    if close is not None:
        code = close.get("close_code")
        what = (f"closed with code {code}" + (f" “{close['close_reason']}”"
                                             if close.get("close_reason") else "")
                if code is not None else "closed without a status code")
        later_by = "" if close["ts"] is None or row["ts"] is None else \
            f", {(close['ts'] - row['ts']) * 1000:.1f} ms later"  # NaT: a time out of range
        return (f"{who} {carried + ', then ' if carried else ''}{what} "
                f"(packet {close['packet']}{later_by})")
    end = conn.get("end")
    if end == "tcp-reset":
        return f"{who} {carried + '; ' if carried else ''}the TCP connection was reset"
    if carried:
        return f"{who} {carried}" + ("; the capture ended" if end == "capture-ended"
                                     else f"; the connection ended ({end})")
    if end == "capture-ended":
        return f"{who}: nothing before the capture ended"
    return f"{who}: no message; the TCP connection ended ({end}) without a Close frame"


def _wanted(row: dict[str, Any], rule: str, opts: ReportOptions) -> bool:
    if opts.connections and row["connection"] not in opts.connections:
        return False
    if opts.rules and rule not in opts.rules:
        return False
    if opts.severity and row["severity"] not in failon.at_or_above(opts.severity):
        return False
    return opts.record_filter is None or bool(opts.record_filter.keep("violation", row))


def _groups(rows: list[dict[str, Any]], conns: dict[int, dict[str, Any]],
            msgs: dict[int, list[dict[str, Any]]],
            frames: dict[tuple[int, int], dict[str, Any]]) -> list[RuleGroup]:
    by_rule: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for r in rows:
        by_rule.setdefault(r["rule"], {}).setdefault(r["connection"], []).append(r)
    order = {"error": 0, "warning": 1, "info": 2}
    groups = []
    for rule_id, per_conn in sorted(by_rule.items(),
                                    key=lambda kv: (order[RULES[kv[0]].severity], kv[0])):
        cgroups = []
        for conn_id, vrows in sorted(per_conn.items()):
            conn = conns.get(conn_id, {"connection": conn_id, "client": "?:0",
                                       "server": "?:0"})
            findings = []
            for r in vrows[:DETAILED]:
                frame = frames.get((conn_id, r["frame"])) if r.get("frame") is not None \
                    else None
                before, after, hit = _context(msgs.get(conn_id, []), r, frame)
                findings.append(Finding(r, wireshark_filters(conn, r.get("packet")), before,
                                        after, reaction(r, conn, msgs.get(conn_id, [])), hit))
            cgroups.append(ConnectionGroup(conn, len(vrows), findings,
                                           vrows[DETAILED:DETAILED + LISTED]))
        groups.append(RuleGroup(RULES[rule_id], sum(len(v) for v in per_conn.values()),
                                cgroups))
    return groups


HEAD_BYTES = 16 * 1024


def _want(f: Finding, conn: dict[str, Any],
          frames: dict[tuple[int, int], dict]) -> framebytes.Want | None:
    """The bytes a finding's dump needs, if any."""
    r = f.row
    if "?" in conn["client"] or r.get("direction") not in ("c2s", "s2c"):
        return None
    flow = Flow.of(conn)
    if r.get("frame") is not None:
        frame = frames.get((r["connection"], r["frame"]))
        if frame is None or r.get("stream_offset") is None:
            return None
        return framebytes.Want(flow, frame["direction"], int(r["stream_offset"]), DUMP_BYTES)
    if r.get("stream_offset") is not None:
        return framebytes.Want(flow, r["direction"], int(r["stream_offset"]), DUMP_BYTES)
    if r["rule"] in hexdump.HEAD_RULES:
        return framebytes.Want(flow, r["direction"], None, HEAD_BYTES)
    return None


def _attach_dumps(path: str, groups: list[RuleGroup], frames: dict[tuple[int, int], dict],
                  conns: dict[int, dict[str, Any]]) -> framebytes.Scan:
    """Fetch the bytes the findings point at and dissect them (one pass over the
    capture, which also counts its packets and TCP conversations)."""
    wants: list[tuple[Finding, framebytes.Want]] = []
    for g in groups:
        for cg in g.connections:
            for f in cg.findings:
                w = _want(f, cg.conn, frames)
                if w is not None:
                    wants.append((f, w))
    handshake = {c: row.get("handshake") != "not-captured" for c, row in conns.items()}
    got, scan = framebytes.fetch(path, [w for _, w in wants], handshake)
    for f, w in wants:
        data = got.get(w, b"")
        rule = f.row["rule"]
        if not data:
            f.dump_note = "the bytes were not captured"
        elif w.stream_offset is None:
            f.dump_lines = hexdump.http_head_lines(data, rule)
        elif f.row.get("frame") is None:
            f.dump_lines = hexdump.raw_lines(data, rule)
        else:
            dump = hexdump.parse(data, rule)
            if dump is not None and hexdump.matches(
                    dump, frames[(f.row["connection"], f.row["frame"])]):
                f.dump = dump
            else:
                f.dump_note = "the frame's bytes could not be located in the TCP stream"
    return scan


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _plots(result: Any, affected: list[int]) -> tuple[dict[str, bytes], dict[int, bytes]]:
    from wsanalyze import plots

    overview = {name: _png(fn(result)) for name, fn in plots.PLOTS.items()
                # One connection: its own timeline is the overview's.
                if not (name == "timeline" and affected and len(result.connections) == 1)}
    timelines = {c: _png(plots.timeline(result, c)) for c in affected[:MAX_TIMELINES]}
    return overview, timelines


def build(path: str, opts: ReportOptions) -> Report:
    """Analyse ``path`` and collect the report (raises CaptureError like analyze)."""
    from wsanalyze.analysis import analyze

    # Previews of 128 bytes hold every control frame's payload (Ping/Pong pairing).
    result = analyze(path, payloads="preview", preview_bytes=128, **opts.analysis)
    if opts.record_filter is not None:  # relative --since/--until
        opts.record_filter.capture_start = lambda: result.first_ts
    conns_rows = _records(result.connections)
    conns = {r["connection"]: r for r in conns_rows}
    vrows = _records(result.violations)
    messages = _records(result.messages)
    msgs: dict[int, list[dict[str, Any]]] = {}
    for m in messages:
        msgs.setdefault(m["connection"], []).append(m)
    frames = {(f["connection"], f["index"]): f for f in _records(result.frames)}
    chosen = [v for v in vrows if _wanted(v, v["rule"], opts)]
    groups = _groups([v for v in chosen if not v["rule"].startswith("capture.")], conns, msgs,
                     frames)
    notes = _groups([v for v in chosen if v["rule"].startswith("capture.")], conns, msgs,
                    frames)
    scan = _attach_dumps(path, groups, frames, conns)
    summary = Summary(with_info=False)
    for record in (*(("message", m) for m in messages), *(("violation", v) for v in vrows),
                   *(("connection", c) for c in conns_rows)):
        summary.add(record)
    summary.finish()
    doc = capture_doc(summary, CaptureInfo(path, scan.packets, result.first_ts, scan.last_ts,
                                           list(result.warnings)))
    summary.close()
    affected = sorted({cg.conn["connection"] for g in groups for cg in g.connections
                       if g.rule.severity != "info"})
    overview, timelines = _plots(result, affected) if opts.plots else ({}, {})
    return Report(path, doc, scan.conversations, conns_rows, groups, notes, overview,
                  timelines, opts, list(result.warnings))
