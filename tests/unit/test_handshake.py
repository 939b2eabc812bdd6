"""Pure handshake functions (websocket/handshake.py) and the HTTP head parser (http1.py)."""

from __future__ import annotations

from wsanalyze import rules as R
from wsanalyze.websocket.handshake import (
    DeflateParams,
    accept_for_key,
    deflate_params,
    negotiate,
    parse_deflate_params,
    parse_extensions,
    validate_request,
    validate_response,
)
from wsanalyze.websocket.http1 import find_head_end, parse_head

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example
REQUEST = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY.encode() + b"\r\n"
           b"Sec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")


def response(accept: str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", extra: str = "") -> bytes:
    return (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n").encode()


def test_accept_of_the_rfc_example_key() -> None:
    # §1.3: the example's answer.
    assert accept_for_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_head_parsing() -> None:
    assert find_head_end(REQUEST) == len(REQUEST)
    assert find_head_end(REQUEST[:-1]) == -1
    head = parse_head(REQUEST)
    assert (head.method, head.target, head.version) == ("GET", "/chat", "1.1")
    assert head.get("HOST") == "server.example.com"
    assert head.tokens("connection") == ["upgrade"]


def test_valid_request_has_no_findings() -> None:
    assert validate_request(parse_head(REQUEST), 4) == []


def test_request_findings_name_the_problem() -> None:
    bad = REQUEST.replace(b"GET", b"POST").replace(b"Version: 13", b"Version: 8")
    findings = validate_request(parse_head(bad), 4)
    assert findings == [
        (R.HANDSHAKE_REQUEST_INVALID, "Upgrade request in packet 4: method is POST, not GET"),
        (R.HANDSHAKE_BAD_VERSION, "Sec-WebSocket-Version is '8', not 13 (packet 4)"),
    ]


def test_response_accept_and_extension_checks() -> None:
    request = parse_head(REQUEST)
    ok, findings = validate_response(parse_head(response()), request, None, [], 6)
    assert (ok, findings) == (True, [])
    ok, findings = validate_response(parse_head(response("AAAA")), request, None, [], 6)
    assert not ok and [r for r, _ in findings] == [R.HANDSHAKE_BAD_ACCEPT]
    unoffered = response(extra="Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n")
    ok, findings = validate_response(parse_head(unoffered), request, None, [], 6)
    assert not ok and [r for r, _ in findings] == [R.HANDSHAKE_UNREQUESTED_EXTENSION]


def test_negotiate_deflate() -> None:
    head = parse_head(response(extra="Sec-WebSocket-Extensions: permessage-deflate; "
                                     "server_no_context_takeover; client_max_window_bits=10\r\n"))
    agreed = negotiate(head, 6)
    assert agreed.deflate and agreed.findings == ()
    assert agreed.deflate_params == DeflateParams(server_no_context_takeover=True,
                                                  client_max_window_bits=10)
    assert agreed.deflate_params.window_bits("c2s") == 10
    assert agreed.deflate_params.context_takeover("s2c") is False
    bad = negotiate(parse_head(response(
        extra="Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n")), 6)
    assert bad.findings == ((R.DEFLATE_BAD_NEGOTIATION, "permessage-deflate response in packet "
                             "6: server_max_window_bits=16 is not an integer from 8 to 15"),)


def test_extension_grammar_with_quotes() -> None:
    parsed = parse_extensions(['foo; a="1,2", permessage-deflate; server_max_window_bits="10"'])
    assert parsed == [("foo", [("a", "1,2")]),
                      ("permessage-deflate", [("server_max_window_bits", "10")])]
    assert deflate_params([("client_max_window_bits", None)])[1] == [
        "client_max_window_bits needs a value in the response"]
    assert parse_deflate_params("foo, permessage-deflate; client_no_context_takeover") == \
        DeflateParams(client_no_context_takeover=True)
    assert parse_deflate_params("x-webkit-deflate-frame") is None
