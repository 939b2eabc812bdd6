"""The WebSocket opening handshake as pure functions (RFC 6455 §4, RFC 7692 §5, §7.1).

Given parsed HTTP heads (:mod:`wsanalyze.websocket.http1`):
:func:`validate_request` and :func:`validate_response` return the rules the
heads break as findings, :func:`negotiate` what the 101 response agreed
(:class:`Negotiated`).  Also the Sec-WebSocket-Accept computation, the
Sec-WebSocket-Extensions grammar, and the one :class:`DeflateParams` (the
decoder and the compression metrics both use it).  Following the handshake
across the two directions is :mod:`wsanalyze.websocket.upgrade`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from wsanalyze import rules as R
from wsanalyze.websocket.http1 import (  # noqa: F401 (re-exported: the old home)
    MAX_HEAD,
    HttpHead,
    HttpParseError,
    find_head_end,
    parse_head,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The GUID of RFC 6455 §1.3, appended to the key to compute the accept value."""

def accept_for_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 item 5.4)."""
    digest = hashlib.sha1(key.strip().encode("latin-1") + GUID).digest()
    return base64.b64encode(digest).decode("ascii")


Extension = tuple[str, list[tuple[str, str | None]]]
"""(extension name lower-cased, [(parameter name lower-cased, value or None)])."""


def parse_extensions(values: list[str]) -> list[Extension]:
    """Parse Sec-WebSocket-Extensions values (RFC 6455 §9.1 grammar, leniently).

    Quoted-string values are unquoted; the caller validates parameter values.
    """
    out: list[Extension] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            parts = _split_outside_quotes(item, ";")
            name = parts[0].strip().lower()
            if not name:
                continue
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                pname, sep, pvalue = part.partition("=")
                pname = pname.strip().lower()
                if not pname:
                    continue
                if not sep:
                    params.append((pname, None))
                    continue
                pvalue = pvalue.strip()
                if len(pvalue) >= 2 and pvalue[0] == pvalue[-1] == '"':
                    pvalue = pvalue[1:-1].replace('\\"', '"')
                params.append((pname, pvalue))
            out.append((name, params))
    return out


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()] if sep == "," else parts


@dataclass(slots=True, frozen=True)
class DeflateParams:
    """The agreed permessage-deflate parameters (RFC 7692 §7.1); an absent window
    size is 15 bits, the largest."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def context_takeover(self, direction: str) -> bool:
        """Whether the sender of ``direction`` (``"c2s"``: the client) may keep its
        LZ77 window across messages."""
        if direction == "c2s":
            return not self.client_no_context_takeover
        return not self.server_no_context_takeover

    def window_bits(self, direction: str) -> int:
        """The LZ77 window (bits) the sender of ``direction`` agreed to stay within."""
        return self.client_max_window_bits if direction == "c2s" else \
            self.server_max_window_bits


def deflate_params(params: list[tuple[str, str | None]]) -> tuple[DeflateParams, list[str]]:
    """Agreed parameters from a permessage-deflate response, and the problems found
    (RFC 7692 §7.1: known names, no repeats, window bits an integer 8..15)."""
    problems: list[str] = []
    seen: set[str] = set()
    values: dict[str, object] = {}
    for name, value in params:
        if name in seen:
            problems.append(f"parameter {name} repeated")
            continue
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                problems.append(f"{name} takes no value (got {value!r})")
            values[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None:
                # Only the client's offer may omit the client_max_window_bits value.
                problems.append(f"{name} needs a value in the response")
                continue
            if not value.isdigit() or value.startswith("0") or not 8 <= int(value) <= 15:
                problems.append(f"{name}={value} is not an integer from 8 to 15")
                continue
            values[name] = int(value)
        else:
            problems.append(f"unknown parameter {name}")
    return DeflateParams(**values), problems  # type: ignore[arg-type]  # checked above


def parse_deflate_params(extensions: str | None) -> DeflateParams | None:
    """The permessage-deflate parameters a ``Sec-WebSocket-Extensions`` response value
    accepts, or None when it does not accept permessage-deflate (invalid values
    are left at their defaults).

    >>> parse_deflate_params("permessage-deflate; client_max_window_bits=9")
    DeflateParams(server_no_context_takeover=False, client_no_context_takeover=False, \
server_max_window_bits=15, client_max_window_bits=9)
    """
    if not extensions:
        return None
    for name, params in parse_extensions([extensions]):
        if name == "permessage-deflate":
            return deflate_params(params)[0]
    return None


Finding = tuple[str, str]
"""(rule id, the message of its violations row)."""


def validate_request(head: HttpHead, packet: int) -> list[Finding]:
    """The rules an Upgrade request breaks (RFC 6455 §4.1, client requirements)."""
    problems = []
    if head.method != "GET":
        problems.append(f"method is {head.method}, not GET")
    try:
        major, minor = (int(x) for x in head.version.split("."))
        if (major, minor) < (1, 1):
            problems.append(f"HTTP version is {head.version}, below 1.1")
    except ValueError:
        problems.append(f"HTTP version {head.version!r} is not valid")
    if not head.get("host"):
        problems.append("Host is missing")
    if "upgrade" not in head.tokens("connection"):
        problems.append("Connection does not list Upgrade")
    out: list[Finding] = []
    if problems:
        out.append((R.HANDSHAKE_REQUEST_INVALID,
                    f"Upgrade request in packet {packet}: " + "; ".join(problems)))
    key = head.get_all("sec-websocket-key")
    try:
        ok = len(key) == 1 and len(base64.b64decode(key[0].strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        out.append((R.HANDSHAKE_BAD_KEY,
                    f"Sec-WebSocket-Key {key[0]!r} in packet {packet} is not the base64 of 16 "
                    "bytes" if key else
                    f"Sec-WebSocket-Key is missing from the request in packet {packet}"))
    version = head.get("sec-websocket-version")
    if version is None or version.strip() != "13":
        out.append((R.HANDSHAKE_BAD_VERSION,
                    f"Sec-WebSocket-Version is {version!r}, not 13 (packet {packet})"))
    return out


@dataclass(slots=True, frozen=True)
class Negotiated:
    """What a 101 response agreed (RFC 6455 §4.2.2, §9.1; RFC 7692 §5)."""

    extensions: str | None
    """The Sec-WebSocket-Extensions value as sent."""
    subprotocol: str | None
    deflate: bool
    deflate_params: DeflateParams | None
    findings: tuple[Finding, ...]
    """Problems with the permessage-deflate parameters (``deflate.bad-negotiation``)."""


def negotiate(response: HttpHead, packet: int) -> Negotiated:
    """The subprotocol and extensions a 101 ``response`` agreed."""
    protocols = response.get_all("sec-websocket-protocol")
    deflate = False
    params: DeflateParams | None = None
    findings: list[Finding] = []
    for name, ext_params in parse_extensions(response.get_all("sec-websocket-extensions")):
        if name == "permessage-deflate" and not deflate:
            deflate = True
            params, problems = deflate_params(ext_params)
            if problems:
                findings.append((R.DEFLATE_BAD_NEGOTIATION, "permessage-deflate response in "
                                 f"packet {packet}: " + "; ".join(problems)))
    return Negotiated(response.get("sec-websocket-extensions"),
                      ", ".join(p.strip() for p in protocols) if protocols else None,
                      deflate, params, tuple(findings))


def validate_response(head: HttpHead, request: HttpHead, subprotocol: str | None,
                      offered_subprotocols: list[str], packet: int) -> tuple[bool, list[Finding]]:
    """Whether a client accepts this 101 answer to ``request`` (RFC 6455 §4.1: else it
    "MUST _Fail the WebSocket Connection_"), and the rules it breaks."""
    ok = True
    out: list[Finding] = []
    problems = []
    if "websocket" not in head.tokens("upgrade"):
        problems.append("Upgrade is not websocket")
    if "upgrade" not in head.tokens("connection"):
        problems.append("Connection does not list Upgrade")
    if problems:
        ok = False
        out.append((R.HANDSHAKE_RESPONSE_INVALID,
                    f"101 response in packet {packet}: " + "; ".join(problems)))
    key = request.get("sec-websocket-key")
    accept = head.get("sec-websocket-accept")
    if key is not None:
        expected = accept_for_key(key)
        if accept is None or accept.strip() != expected:
            ok = False
            out.append((R.HANDSHAKE_BAD_ACCEPT,
                        f"Sec-WebSocket-Accept is {accept!r} in packet {packet}, expected "
                        f"{expected!r} for key {key.strip()!r}"))
    offered = set(offered_subprotocols)
    if subprotocol is not None and subprotocol not in offered:
        ok = False
        out.append((R.HANDSHAKE_UNREQUESTED_SUBPROTOCOL,
                    f"the server selected subprotocol {subprotocol!r} (packet {packet}); the "
                    f"client offered {sorted(offered) or 'none'}"))
    ext_ok, ext_findings = _check_extensions(head, request, packet)
    return ok and ext_ok, out + ext_findings


def _check_extensions(head: HttpHead, request: HttpHead,
                      packet: int) -> tuple[bool, list[Finding]]:
    """RFC 6455 §9.1: the server accepts only extensions (and, RFC 7692 §5,
    parameters) the client offered."""
    ok = True
    out: list[Finding] = []
    offers = parse_extensions(request.get_all("sec-websocket-extensions"))
    offered_names = {name for name, _ in offers}
    for name, params in parse_extensions(head.get_all("sec-websocket-extensions")):
        if name not in offered_names:
            ok = False
            out.append((R.HANDSHAKE_UNREQUESTED_EXTENSION,
                        f"the server accepted extension {name!r} (packet {packet}) that the "
                        "client did not offer"))
            continue
        if name == "permessage-deflate":
            offered_params = {p for n, ps in offers if n == name for p, _ in ps}
            out.extend(_check_server_window(offers, params, packet))
            if any(p == "client_max_window_bits" for p, _ in params) and \
                    "client_max_window_bits" not in offered_params:
                ok = False
                out.append((R.HANDSHAKE_UNREQUESTED_EXTENSION,
                            f"the server sent client_max_window_bits (packet {packet}) but the "
                            "client did not offer it (RFC 7692 §7.1.2.2)"))
    return ok, out


def _check_server_window(offers: list[Extension], params: list[tuple[str, str | None]],
                         packet: int) -> list[Finding]:
    """RFC 7692 §7.1.2.1: a server accepts server_max_window_bits "with the same
    or smaller value as the offer"."""
    answered = [v for p, v in params if p == "server_max_window_bits"]
    if not answered or not answered[0] or not answered[0].isdigit():
        return []
    limits = []
    for name, ps in offers:
        if name != "permessage-deflate":
            continue
        values = [v for p, v in ps if p == "server_max_window_bits"]
        if not values:
            return []  # an offer without the parameter allows any value
        if values[0] and values[0].isdigit():
            limits.append(int(values[0]))
    if limits and int(answered[0]) > max(limits):
        return [(R.DEFLATE_BAD_NEGOTIATION,
                 f"server_max_window_bits={answered[0]} in the response (packet {packet}) is "
                 f"larger than the {max(limits)} the client offered")]
    return []
