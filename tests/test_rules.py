"""Every violation rule on a realistic crafted capture, the legal near-misses, and a
second opinion on the crafted bytes from independent libraries.

The captures come from tests/rulecases.py (one per rule, plus variants).  For each:

* the error/warning rows of ``wsanalyze.analyze(path).violations`` are exactly the
  expected ``(rule, direction, packet)`` rows, and so are the info rows;
* decoding went on: a normal text message sent after the violation is decoded byte
  for byte;
* each row carries the OUTPUTS.md fields (RFC reference, a message naming the
  concrete value and the packet, ``frame`` and ``stream_offset`` pointing at the
  offending frame);
* wsproto and/or websockets, fed the same bytes, fail the connection with the
  expected close code (or accept the near-misses).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
import wsproto.extensions
import wsproto.frame_protocol
import wsproto.handshake
import wsproto.utilities
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake, PayloadTooBig, ProtocolError
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.http11 import Request
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri
from wsproto import ConnectionType

import wsanalyze
from tests.rulecases import (
    CASES,
    NEAR_MISSES,
    FrameOracle,
    HandshakeOracle,
    Row,
    RuleCase,
    main,
)
from wsanalyze.analysis import AnalysisResult
from wsanalyze.pipeline import Options
from wsanalyze.rules import RULES

SHARED_RULES_MD = Path(os.environ.get(
    "WSANALYZE_RULES_MD", Path(__file__).resolve().parents[2] / "shared" / "spec" / "RULES.md"))
SNAPSHOT_RULES_MD = Path(__file__).resolve().parent / "data" / "RULES.md"
"""A copy of the contract, so the catalog is checked wherever the suite runs;
test_rules_md_snapshot_is_current compares it with shared/ when that is beside
the checkout."""
RULES_MD = SHARED_RULES_MD if SHARED_RULES_MD.exists() else SNAPSHOT_RULES_MD


def test_rules_md_snapshot_is_current() -> None:
    if SHARED_RULES_MD.exists():
        assert SNAPSHOT_RULES_MD.read_text() == SHARED_RULES_MD.read_text(), \
            "shared/spec/RULES.md changed: copy it to tests/data/RULES.md"
    assert "handshake.bad-accept" in SNAPSHOT_RULES_MD.read_text()

EXCLUDED: dict[str, str] = {
    # Every rule of RULES.md has a case.  This info row has no case of its own: it is
    # asserted as part of the frame.unparseable and frame.length-msb cases.
    "frame.resynchronised": "asserted in the frame.unparseable and length-msb cases",
    # A pcap holds 32-bit seconds (at most year 2106); out-of-calendar times need a
    # pcapng if_tsoffset, which tests/test_timestamps.py crafts and checks row by row.
    "capture.bad-timestamp": "asserted in tests/test_timestamps.py",
    # TLS rows need real TLS traffic: tests/test_tls.py and tests/test_tls_hostile.py.
    "capture.tls-no-key": "tests/test_tls.py (missing, half key log)",
    "capture.tls-bad-key": "tests/test_tls.py (wrong key)",
    "capture.tls-http2": "tests/test_tls.py (ALPN h2)",
    "capture.tls-invalid": "tests/test_tls_hostile.py",
    "capture.tls-renegotiation": "tests/test_tls_openssl.py",
}

# ============================================================================================
# Running the analyzer (cached: each case is decoded once per test process)
# ============================================================================================

_results: dict[str, tuple[RuleCase, AnalysisResult]] = {}


def _run_with_options(path: Path, case: RuleCase) -> AnalysisResult:
    """The out-of-order buffer limit is an ``analyze`` argument, not a DecoderLimits field."""
    return wsanalyze.analyze(path, limits=case.limits,
                             max_buffered=case.max_buffered or Options().max_buffered)


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rulecases")


def _analyzed(name: str, outdir: Path) -> tuple[RuleCase, AnalysisResult]:
    if name not in _results:
        build = CASES.get(name) or NEAR_MISSES[name]
        case = build()
        path = outdir / (name.replace("/", "--") + ".pcap")
        case.write(path)
        if case.max_buffered is not None:
            result = _run_with_options(path, case)
        else:
            result = wsanalyze.analyze(path, limits=case.limits)
        _results[name] = (case, result)
    return _results[name]


def _keys(rows: pd.DataFrame) -> list[tuple[str, str | None, int]]:
    # A missing direction is NaN in the categorical column.
    out = [(r.rule, None if pd.isna(r.direction) else r.direction, int(r.packet))
           for r in rows.itertuples()]
    return sorted(out, key=repr)


def _split(result: AnalysisResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    v = result.violations
    if v.empty:
        return v, v
    return v[v["severity"] != "info"], v[v["severity"] == "info"]


def _expected(rows: list[Row]) -> list[tuple[str, str | None, int]]:
    return sorted((r.key for r in rows), key=repr)


# ============================================================================================
# Rule cases
# ============================================================================================


@pytest.mark.parametrize("name", list(CASES))
def test_rows_are_exactly_the_expected(name: str, outdir: Path) -> None:
    case, result = _analyzed(name, outdir)
    errors, info = _split(result)
    assert _keys(errors) == _expected(case.rows), "\n".join(errors["message"])
    assert _keys(info) == _expected(case.info), "\n".join(info["message"])


@pytest.mark.parametrize("name", list({**CASES, **NEAR_MISSES}))
def test_decoding_continues_after_the_violation(name: str, outdir: Path) -> None:
    case, result = _analyzed(name, outdir)
    after = case.after
    assert after is not None, "every case sends a message after its violation"
    m = result.messages
    hit = m[(m["direction"] == after.direction) & (m["packet"] == after.packet)
            & (m["type"] == "text")]
    assert list(hit["payload"]) == [after.payload], m[["direction", "packet", "type"]]
    row = hit.iloc[0]
    assert row["complete"] and row["text"] == after.payload.decode()
    assert pd.isna(row["error"])


def _row_for(result: AnalysisResult, expected: Row) -> pd.Series:
    v = result.violations
    hit = v[(v["rule"] == expected.rule) & (v["packet"] == expected.packet)]
    hit = hit[hit["direction"].isna()] if expected.direction is None else \
        hit[hit["direction"] == expected.direction]
    assert len(hit) >= 1, f"no {expected.key} row"
    return hit.iloc[0]


def _null(value: object) -> bool:
    return value is None or value is pd.NA or value != value  # NaN


@pytest.mark.parametrize("name", list(CASES))
def test_rows_carry_the_outputs_fields(name: str, outdir: Path) -> None:
    case, result = _analyzed(name, outdir)
    conn = result.connections.iloc[0]
    for expected in [*case.rows, *case.info]:
        if expected.key not in _keys(result.violations):
            continue  # reported by test_rows_are_exactly_the_expected
        row = _row_for(result, expected)
        assert row["severity"] == RULES[expected.rule].severity
        assert row["reference"] == RULES[expected.rule].reference
        assert (row["client"], row["server"]) == (conn["client"], conn["server"])
        assert row["connection"] == conn["connection"]
        assert isinstance(row["ts"], pd.Timestamp) and row["ts"].year >= 1970
        message = row["message"]
        assert isinstance(message, str) and len(message) > 10, message
        if expected.value is not None:
            assert expected.value.lower() in message.lower(), \
                f"{expected.value!r} not in {message!r}"
        if row["severity"] == "info":
            continue
        assert row["reference"].startswith("RFC"), row["reference"]
        assert re.search(rf"(?<!\d){expected.packet}(?!\d)", message), \
            f"packet {expected.packet} not in {message!r}"
        spec = expected.frame
        if expected.rule == "frame.unparseable":
            assert not _null(row["stream_offset"]), "where framing was lost"
        if spec is None:
            continue
        if spec.optional and _null(row["frame"]):
            assert not _null(row["stream_offset"])
            continue
        assert not _null(row["frame"]) and not _null(row["stream_offset"]), row.to_dict()
        frame = result.violation_frame(row)
        assert frame is not None, f"frame {row['frame']} is not in the frames table"
        got = (frame["opcode"], frame["fin"], frame["rsv1"], frame["rsv2"], frame["rsv3"],
               frame["masked"], frame["direction"])
        want = (spec.opcode, spec.fin, spec.rsv1, spec.rsv2, spec.rsv3, spec.masked,
                expected.direction)
        assert got == want, f"{expected.rule} points at the wrong frame {frame}"
        assert frame["stream_offset"] == row["stream_offset"]
        if spec.packet is not None:
            assert frame["packet"] == spec.packet


def test_too_big_message_is_counted_with_its_true_length(outdir: Path) -> None:
    for name in ("message.too-big", "message.too-big/uncompressed"):
        case, result = _analyzed(name, outdir)
        assert case.limits is not None
        limit = case.limits.max_payload
        m = result.messages
        big = m[m["length"] > limit]
        assert len(big) == 1, name
        row = big.iloc[0]
        assert row["truncated"] and len(row["payload"]) == limit
        assert row["length"] == (2 << 20 if row["compressed"] else 100_000)


def test_capture_limit_message_is_incomplete_not_misframed(outdir: Path) -> None:
    _, result = _analyzed("capture.limit", outdir)
    binary = result.messages[result.messages["type"] == "binary"]
    assert list(binary["complete"]) == [True, False]
    assert binary.iloc[1]["raw_length"] == 10_000


def test_overlap_conflict_keeps_the_first_copy(outdir: Path) -> None:
    case, result = _analyzed("capture.overlap-conflict", outdir)
    assert case.after is not None
    texts = set(result.messages["payload"])
    assert case.after.payload in texts and b'{"tick": 7, "bid": 999.99}' not in texts


# ============================================================================================
# Near-misses
# ============================================================================================


@pytest.mark.parametrize("name", list(NEAR_MISSES))
def test_near_miss_is_not_a_violation(name: str, outdir: Path) -> None:
    _, result = _analyzed(name, outdir)
    errors, info = _split(result)
    assert errors.empty, "\n".join(errors["rule"] + ": " + errors["message"])
    assert info.empty, "\n".join(info["rule"] + ": " + info["message"])
    conn = result.connections.iloc[0]
    assert conn["handshake"] == "ok" and conn["end"] == "close-handshake"
    assert conn["violations"] == 0


# ============================================================================================
# Oracles: independent libraries on the same bytes
# ============================================================================================


def _agreement(header: str) -> dict[str, str | None]:
    parts = [p.strip() for p in header.split(";")]
    assert parts[0] == "permessage-deflate", header
    return {n.strip(): (v.strip() or None) for n, _, v in (p.partition("=") for p in parts[1:])}


def wsproto_verdict(oracle: FrameOracle, data: bytes) -> int | None:
    """Close code wsproto fails the connection with, or None if it accepts ``data``."""
    extensions: list[wsproto.extensions.Extension] = []
    if oracle.extensions:
        pmd = wsproto.extensions.PerMessageDeflate()
        pmd.finalize(oracle.extensions)
        extensions.append(pmd)
    proto = wsproto.frame_protocol.FrameProtocol(client=oracle.sender == "s2c",
                                                 extensions=extensions)
    proto.receive_bytes(data)
    try:
        for _ in proto.received_frames():
            pass
    except wsproto.frame_protocol.ParseFailed as exc:
        return int(exc.code)
    return None


def websockets_verdict(oracle: FrameOracle, data: bytes, *, eof: bool = True) -> int | None:
    """Close code websockets' sans-IO protocol fails with, or None if it accepts ``data``
    (followed by the end of the stream when ``eof``)."""
    receiver = Side.SERVER if oracle.sender == "c2s" else Side.CLIENT
    proto = Protocol(receiver, state=State.OPEN, max_size=oracle.max_size)
    if oracle.extensions:
        agreed = _agreement(oracle.extensions)
        remote, local = ("client", "server") if oracle.sender == "c2s" else ("server", "client")
        proto.extensions = [PerMessageDeflate(
            remote_no_context_takeover=f"{remote}_no_context_takeover" in agreed,
            local_no_context_takeover=f"{local}_no_context_takeover" in agreed,
            remote_max_window_bits=int(agreed.get(f"{remote}_max_window_bits") or 15),
            local_max_window_bits=int(agreed.get(f"{local}_max_window_bits") or 15))]
    proto.receive_data(data)
    if eof:
        proto.receive_eof()
    exc = proto.parser_exc
    if exc is None:
        return None
    for kind, code in ((ProtocolError, 1002), (UnicodeDecodeError, 1007),
                       (PayloadTooBig, 1009), (EOFError, 1006)):
        if isinstance(exc, kind):
            return code
    raise AssertionError(f"unexpected websockets failure {exc!r}")


def _head_fields(raw: bytes) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line in raw.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
    return fields


def _client_factory(offer: str) -> ClientPerMessageDeflateFactory:
    agreed = _agreement(offer)
    cmwb = agreed.get("client_max_window_bits", "absent")
    return ClientPerMessageDeflateFactory(
        server_no_context_takeover="server_no_context_takeover" in agreed,
        client_no_context_takeover="client_no_context_takeover" in agreed,
        server_max_window_bits=int(agreed["server_max_window_bits"] or 15)
        if "server_max_window_bits" in agreed else None,
        client_max_window_bits=None if cmwb == "absent" else True if cmwb is None
        else int(cmwb))


def websockets_handshake_ok(request: bytes, response: bytes) -> bool:
    """websockets' server accepts the request and its client accepts the response."""
    fields = _head_fields(request)
    offered = [Subprotocol(p.strip()) for v in fields.get("sec-websocket-protocol", [])
               for p in v.split(",")]
    server = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()],
                            subprotocols=offered or None)
    server.receive_data(request)
    events = server.events_received()
    if server.handshake_exc is not None or not events:
        return False
    assert isinstance(events[0], Request)
    try:
        server.process_request(events[0])
    except InvalidHandshake:
        return False
    offers = fields.get("sec-websocket-extensions")
    client = ClientProtocol(parse_uri("ws://stream.example/feed"),
                            extensions=[_client_factory(offers[0])] if offers else None,
                            subprotocols=offered or None)
    client.key = fields["sec-websocket-key"][0]
    client.receive_data(response)
    return client.handshake_exc is None and client.state is State.OPEN


def wsproto_request_ok(request: bytes) -> bool:
    """wsproto's server side accepts the Upgrade request."""
    hs = wsproto.handshake.H11Handshake(ConnectionType.SERVER)
    try:
        hs.receive_data(request)
    except wsproto.utilities.RemoteProtocolError:
        return False
    return any(isinstance(e, wsproto.events.Request) for e in hs.events())


def _check_oracle(oracle: FrameOracle | HandshakeOracle) -> list[str]:
    problems = []
    if isinstance(oracle, HandshakeOracle):
        checks = {"websockets": lambda: websockets_handshake_ok(oracle.request, oracle.response),
                  "wsproto": lambda: wsproto_request_ok(oracle.request)}
        for lib, valid in oracle.expect.items():
            got = checks[lib]()
            if got != valid:
                problems.append(f"{lib}: handshake {'accepted' if got else 'rejected'}")
        return problems
    for lib, code in oracle.expect.items():
        verdict = {"wsproto": wsproto_verdict, "websockets": websockets_verdict}[lib]
        got = verdict(oracle, oracle.data)
        if got != code:
            problems.append(f"{lib} on the {oracle.sender} bytes: {got}, expected {code}")
        if oracle.clean is not None:
            prefix = oracle.data[:oracle.clean]
            early = (wsproto_verdict(oracle, prefix) if lib == "wsproto" else
                     websockets_verdict(oracle, prefix, eof=False))
            if early is not None:
                problems.append(f"{lib} fails before the offending frame: {early}")
    return problems


_WITH_ORACLES = [n for n in {**CASES, **NEAR_MISSES} if n not in (
    # No library checks these: both stop reading at a Close (RFC 6455 §1.4 "discards any
    # further data"), and neither tracks Pings awaiting their Pong.
    "close.data-after-close", "close.no-close-handshake/reset", "ping.unanswered",
    "ping.unanswered/no-close", "pong.payload-mismatch",
    # Properties of the capture, not of the bytes the peers exchanged.
    "capture.gap", "capture.mid-stream", "capture.truncated", "capture.undecodable",
    "capture.limit", "capture.overlap-conflict")]


@pytest.mark.parametrize("name", _WITH_ORACLES)
def test_independent_libraries_agree(name: str) -> None:
    build = CASES.get(name) or NEAR_MISSES[name]
    case = build()
    assert case.oracles, f"{name} has no oracle"
    problems = [p for o in case.oracles for p in _check_oracle(o)]
    assert not problems, problems


def test_cases_without_oracles_are_listed() -> None:
    for name, build in {**CASES, **NEAR_MISSES}.items():
        case = build()
        if name not in _WITH_ORACLES:
            assert not case.oracles, name
        for oracle in case.oracles:
            if isinstance(oracle, FrameOracle) and case.rows and 1006 not in \
                    oracle.expect.values():
                assert oracle.clean is not None, f"{name}: where does the violation start?"


# ============================================================================================
# The catalog
# ============================================================================================


def _rules_md() -> dict[str, str]:
    """id -> severity from the markdown tables of RULES.md."""
    out: dict[str, str] = {}
    for line in RULES_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[a-z0-9]+(\.[a-z0-9-]+)+", cells[0]):
            out[cells[0]] = cells[1]
    return out


def test_rules_md_parses() -> None:
    rules = _rules_md()
    assert len(rules) >= 38 and "close.invalid-code" in rules and "capture.limit" in rules
    assert set(rules.values()) == {"error", "warning", "info"}


def test_rules_md_ids_are_in_the_registry_with_their_severity() -> None:
    for rule_id, severity in _rules_md().items():
        assert rule_id in RULES, rule_id
        assert RULES[rule_id].severity == severity, rule_id
        assert RULES[rule_id].reference, rule_id


def test_every_rule_has_a_case() -> None:
    covered = {c.split("/")[0] for c in CASES}
    wanted = set(_rules_md()) | set(RULES)
    missing = wanted - covered - set(EXCLUDED)
    assert not missing, sorted(missing)
    assert not covered - wanted, "cases for unknown rules"
    for name, build in CASES.items():
        case = build()
        assert case.rule == name.split("/")[0]
        assert case.rule in {r.rule for r in (*case.rows, *case.info)}, name


def test_every_case_quotes_its_requirement() -> None:
    for name, build in {**CASES, **NEAR_MISSES}.items():
        doc = build.__doc__ or ""
        assert re.search(r"RFC \d+|pcap snapshot|wsanalyze limits", doc), name


def test_main_writes_one_pcap_per_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == len(CASES) + len(NEAR_MISSES)
    assert all(n.endswith(".pcap") for n in written)
    assert capsys.readouterr().out.count("\n") == len(written)
    assert main([]) == 2
