"""Following the opening handshake across the two directions (RFC 6455 §4).

The HTTP reader (:mod:`~wsanalyze.websocket.http1`) hands over each head; this
module pairs an Upgrade request with its response, records what the
connections table shows, reports what :mod:`~wsanalyze.websocket.handshake`
finds, and switches both directions to frames on a 101.  Captures are not
always in order: a 101 may come before its request, and a request may not have
been captured at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsanalyze import rules as R
from wsanalyze.websocket.deflate import MessageInflater
from wsanalyze.websocket.handshake import (
    DeflateParams,
    negotiate,
    validate_request,
    validate_response,
)
from wsanalyze.websocket.http1 import HttpHead, body_mode, may_be_request
from wsanalyze.websocket.modes import Mode

if TYPE_CHECKING:
    from wsanalyze.websocket.decoder import ConnectionDecoder
    from wsanalyze.websocket.state import Side


def on_request(dec: ConnectionDecoder, side: Side, head: HttpHead, ts: float,
               packet: int) -> None:
    if "websocket" not in head.tokens("upgrade"):
        side.requests.append(head)
        body_mode(dec, side, head, response_to=None)
        return
    late = side.late_response
    if late is not None:
        # The 101 was captured before this request (see start_websocket).
        side.late_response = None
        record_request(dec, side, head, ts, packet)
        response, rts, rpacket = late
        ok = _check_response(dec, response, head, rpacket, rts)
        dec.info.handshake = "ok" if ok and not dec.request_problems else "invalid"
        side.mode = Mode.WS
        side.ws_base = side.buf_off
        side.synced = True
        return
    side.requests.append(head)
    side.upgrade = head
    side.upgrade_ts = ts
    side.mode = Mode.AWAIT
    record_request(dec, side, head, ts, packet)


def record_request(dec: ConnectionDecoder, side: Side, head: HttpHead, ts: float,
                   packet: int) -> None:
    info = dec.info
    info.handshake = "invalid"  # until a valid 101 arrives
    info.host = head.get("host")
    info.path = head.target
    info.origin = head.get("origin") or head.get("sec-websocket-origin")
    info.user_agent = head.get("user-agent")
    info.subprotocols_offered = [t.strip() for v in head.get_all("sec-websocket-protocol")
                                 for t in v.split(",") if t.strip()]
    info.extensions_offered = head.get("sec-websocket-extensions")
    findings = validate_request(head, packet)
    for rule, text in findings:
        dec.violation(rule, "c2s", ts, packet, text)
    dec.request_problems = bool(findings)


def _check_response(dec: ConnectionDecoder, head: HttpHead, request: HttpHead, packet: int,
                    ts: float) -> bool:
    ok, findings = validate_response(head, request, dec.info.subprotocol,
                                     dec.info.subprotocols_offered, packet)
    for rule, text in findings:
        dec.violation(rule, "s2c", ts, packet, text)
    if not ok:
        dec.info.failed = True
    return ok


def on_response(dec: ConnectionDecoder, side: Side, head: HttpHead, ts: float,
                packet: int) -> None:
    status = head.status or 0
    other = dec.sides[1 - side.tcp_dir]
    if 100 <= status < 200 and status != 101:
        side.mode = Mode.HTTP  # interim response; the final one follows
        return
    request = other.requests.popleft() if other.requests else None
    if request is None or request is not other.upgrade:
        if status == 101 and request is None and other.upgrade is None:
            # The request was not captured; the 101 still starts WebSocket.
            start_websocket(dec, client=other, server=side, head=head, request=None,
                            ts=ts, packet=packet)
            return
        if request is not None and not other.requests and other.mode != Mode.AWAIT:
            dec.likely_plain_http = True
        body_mode(dec, side, head, response_to=request.method if request is not None else None)
        return
    if status != 101:
        dec.info.handshake = "rejected"
        dec.set_client(other.tcp_dir, "handshake")
        dec.violation(R.HANDSHAKE_REJECTED, "s2c", ts, packet,
                      f"the server answered the Upgrade request with {status} {head.reason} "
                      f"(packet {packet})")
        other.upgrade = None
        other.mode = Mode.HTTP
        body_mode(dec, side, head, response_to="GET")
        dec.pump(other)
        return
    start_websocket(dec, client=other, server=side, head=head, request=request, ts=ts,
                    packet=packet)


def start_websocket(dec: ConnectionDecoder, *, client: Side, server: Side, head: HttpHead,
                    request: HttpHead | None, ts: float, packet: int) -> None:
    """A 101: record what it agreed, then read both directions as frames."""
    info = dec.info
    dec.set_client(client.tcp_dir, "handshake")
    if request is not None:
        info.handshake_rtt = max(0.0, ts - client.upgrade_ts)
    info.handshake = "ok" if request is not None else "not-captured"
    agreed = negotiate(head, packet)
    info.extensions = agreed.extensions
    info.subprotocol = agreed.subprotocol
    if request is not None and not _check_response(dec, head, request, packet, ts):
        info.handshake = "invalid"
    if request is not None and info.handshake == "ok" and dec.request_problems:
        info.handshake = "invalid"
    if agreed.deflate:
        info.deflate = True
        info.deflate_params = agreed.deflate_params
    for rule, text in agreed.findings:
        dec.violation(rule, "s2c", ts, packet, text)
    client.upgrade = None
    for side in (client, server):
        side.masked = side is client
        if side is client and client.mode == Mode.SCAN:
            # The client's bytes could not be followed (e.g. a head over the
            # limit): find its first frame.
            continue
        if side is client and request is None and client.mode in (Mode.START, Mode.HTTP) and \
                (not client.buf or may_be_request(client.buf)):
            # The request may still come: the capture can hold packets of the
            # two directions out of order.  Until then, wait and see.
            client.late_response = (head, ts, packet)
            client.mode = Mode.START
        else:
            side.mode = Mode.WS
            side.ws_base = side.buf_off
            side.synced = True  # framing is known from the first byte
        if info.deflate:
            side.inflater = new_inflater(dec, info.deflate_params or DeflateParams(),
                                         "c2s" if side is client else "s2c")
    dec.pump(server)
    dec.pump(client)


def new_inflater(dec: ConnectionDecoder, params: DeflateParams,
                 direction: str) -> MessageInflater:
    """The inflater of one direction, checking the sender keeps its agreement."""
    return MessageInflater(dec.limits.max_payload, max_inflate=dec.limits.max_inflate,
                           no_context_takeover=not params.context_takeover(direction),
                           window_bits=params.window_bits(direction))
