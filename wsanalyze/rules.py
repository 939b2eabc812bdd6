"""The rule registry: every violation id wsanalyze reports, with its severity,
the RFC section it enforces, the requirement in one sentence and its impact.

This is the single source for the violations table, ``wsanalyze rules`` and the
documentation.  Ids listed in ``shared/spec/RULES.md`` are a public interface and
are never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: str
    reference: str
    requirement: str
    """What the RFC requires, in one sentence."""
    impact: str
    """Why a user should care."""


def _r(id: str, severity: str, reference: str, requirement: str, impact: str) -> Rule:
    return Rule(id, severity, reference, requirement, impact)


# Rule ids as constants: code names a rule through these, never a string literal
# (tests/unit/test_rules_registry.py checks they match the registry one to one).
HANDSHAKE_REQUEST_INVALID = 'handshake.request-invalid'
HANDSHAKE_BAD_KEY = 'handshake.bad-key'
HANDSHAKE_BAD_VERSION = 'handshake.bad-version'
HANDSHAKE_BAD_ACCEPT = 'handshake.bad-accept'
HANDSHAKE_RESPONSE_INVALID = 'handshake.response-invalid'
HANDSHAKE_REJECTED = 'handshake.rejected'
HANDSHAKE_UNREQUESTED_SUBPROTOCOL = 'handshake.unrequested-subprotocol'
HANDSHAKE_UNREQUESTED_EXTENSION = 'handshake.unrequested-extension'
FRAME_CLIENT_UNMASKED = 'frame.client-unmasked'
FRAME_SERVER_MASKED = 'frame.server-masked'
FRAME_RESERVED_BITS = 'frame.reserved-bits'
FRAME_RESERVED_OPCODE = 'frame.reserved-opcode'
FRAME_NON_MINIMAL_LENGTH = 'frame.non-minimal-length'
FRAME_LENGTH_MSB = 'frame.length-msb'
FRAME_UNPARSEABLE = 'frame.unparseable'
FRAME_RESYNCHRONISED = 'frame.resynchronised'
CONTROL_TOO_LONG = 'control.too-long'
CONTROL_FRAGMENTED = 'control.fragmented'
FRAGMENT_UNEXPECTED_CONTINUATION = 'fragment.unexpected-continuation'
FRAGMENT_INTERLEAVED = 'fragment.interleaved'
TEXT_INVALID_UTF8 = 'text.invalid-utf8'
CLOSE_ONE_BYTE_PAYLOAD = 'close.one-byte-payload'
CLOSE_INVALID_CODE = 'close.invalid-code'
CLOSE_INVALID_REASON_UTF8 = 'close.invalid-reason-utf8'
CLOSE_DATA_AFTER_CLOSE = 'close.data-after-close'
CLOSE_NO_CLOSE_HANDSHAKE = 'close.no-close-handshake'
PING_UNANSWERED = 'ping.unanswered'
PONG_PAYLOAD_MISMATCH = 'pong.payload-mismatch'
DEFLATE_BAD_NEGOTIATION = 'deflate.bad-negotiation'
DEFLATE_RSV1_ON_CONTINUATION = 'deflate.rsv1-on-continuation'
DEFLATE_RSV1_ON_CONTROL = 'deflate.rsv1-on-control'
DEFLATE_DECOMPRESSION_FAILED = 'deflate.decompression-failed'
DEFLATE_CONTEXT_TAKEOVER_VIOLATED = 'deflate.context-takeover-violated'
DEFLATE_WINDOW_BITS_EXCEEDED = 'deflate.window-bits-exceeded'
MESSAGE_TOO_BIG = 'message.too-big'
CAPTURE_GAP = 'capture.gap'
CAPTURE_MID_STREAM = 'capture.mid-stream'
CAPTURE_TRUNCATED = 'capture.truncated'
CAPTURE_UNDECODABLE = 'capture.undecodable'
CAPTURE_LIMIT = 'capture.limit'
CAPTURE_OVERLAP_CONFLICT = 'capture.overlap-conflict'
CAPTURE_BAD_TIMESTAMP = 'capture.bad-timestamp'
CAPTURE_TLS_NO_KEY = 'capture.tls-no-key'
CAPTURE_TLS_BAD_KEY = 'capture.tls-bad-key'
CAPTURE_TLS_INVALID = 'capture.tls-invalid'
CAPTURE_TLS_RENEGOTIATION = 'capture.tls-renegotiation'
CAPTURE_TLS_HTTP2 = 'capture.tls-http2'

_RULES: tuple[Rule, ...] = (
    # Handshake, RFC 6455 §4
    _r("handshake.request-invalid", ERROR, "RFC 6455 §4.1",
       "The opening handshake MUST be a valid HTTP GET request of version 1.1 or later "
       "with Host, Upgrade: websocket and Connection: Upgrade header fields.",
       "Servers and proxies may refuse or mangle the upgrade."),
    _r("handshake.bad-key", ERROR, "RFC 6455 §4.1",
       "The request MUST include Sec-WebSocket-Key, a base64-encoded random 16-byte value.",
       "A conforming server must reject the handshake."),
    _r("handshake.bad-version", ERROR, "RFC 6455 §4.1",
       "The request MUST include Sec-WebSocket-Version with the value 13.",
       "A conforming server must reject the handshake (426 with the versions it supports)."),
    _r("handshake.bad-accept", ERROR, "RFC 6455 §4.2.2",
       "Sec-WebSocket-Accept MUST be base64(SHA-1(key + 258EAFA5-E914-47DA-95CA-C5AB0DC85B11)).",
       "A conforming client must fail the connection."),
    _r("handshake.response-invalid", ERROR, "RFC 6455 §4.2.2",
       "A 101 response MUST carry Upgrade: websocket and Connection: Upgrade.",
       "A conforming client must fail the connection."),
    _r("handshake.rejected", INFO, "RFC 6455 §4.2.2",
       "Any status other than 101 means the server did not accept the WebSocket upgrade.",
       "No WebSocket connection was established."),
    _r("handshake.unrequested-subprotocol", ERROR, "RFC 6455 §4.1",
       "The server MUST select a subprotocol only from those the client offered.",
       "A conforming client must fail the connection."),
    _r("handshake.unrequested-extension", ERROR, "RFC 6455 §9.1; RFC 7692 §5",
       "The server MUST accept only extensions, and extension parameters, the client offered.",
       "A conforming client must fail the connection."),
    # Framing, RFC 6455 §5
    _r("frame.client-unmasked", ERROR, "RFC 6455 §5.1",
       "A client MUST mask every frame it sends to the server.",
       "A conforming server must close the connection; unmasked traffic exposes "
       "intermediaries to cache poisoning (§10.3)."),
    _r("frame.server-masked", ERROR, "RFC 6455 §5.1",
       "A server MUST NOT mask any frame it sends to the client.",
       "A conforming client must close the connection."),
    _r("frame.reserved-bits", ERROR, "RFC 6455 §5.2",
       "RSV1, RSV2 and RSV3 MUST be 0 unless a negotiated extension defines them.",
       "A conforming receiver must fail the connection."),
    _r("frame.reserved-opcode", ERROR, "RFC 6455 §5.2",
       "Opcodes 0x3-0x7 and 0xB-0xF are reserved and MUST NOT be used.",
       "A conforming receiver must fail the connection."),
    _r("frame.non-minimal-length", WARNING, "RFC 6455 §5.2",
       "The payload length MUST be encoded in the minimal number of bytes.",
       "Strict receivers (and some proxies) reject such frames."),
    _r("frame.length-msb", ERROR, "RFC 6455 §5.2",
       "The most significant bit of a 64-bit payload length MUST be 0.",
       "Receivers may misread the length and lose framing."),
    _r("frame.unparseable", ERROR, "RFC 6455 §5.2",
       "The byte stream of a connection MUST consist of frames as §5.2 defines them.",
       "The receiver loses framing; wsanalyze resumes at the next plausible frame."),
    _r("frame.resynchronised", INFO, "RFC 6455 §5.2",
       "After bytes that are not a frame, decoding resumed at the next plausible frame.",
       "Bytes between the two are not decoded."),
    _r("control.too-long", ERROR, "RFC 6455 §5.5",
       "Control frames MUST have a payload of 125 bytes or less.",
       "A conforming receiver must fail the connection."),
    _r("control.fragmented", ERROR, "RFC 6455 §5.5",
       "Control frames MUST NOT be fragmented (FIN must be set).",
       "A conforming receiver must fail the connection."),
    _r("fragment.unexpected-continuation", ERROR, "RFC 6455 §5.4",
       "A continuation frame is only valid while a fragmented message is in progress.",
       "A conforming receiver must fail the connection."),
    _r("fragment.interleaved", ERROR, "RFC 6455 §5.4",
       "Fragments of one message MUST NOT be interleaved with another data message.",
       "A conforming receiver must fail the connection."),
    _r("text.invalid-utf8", ERROR, "RFC 6455 §5.6, §8.1",
       "A text message MUST contain valid UTF-8 (after any extension decoding).",
       "A conforming receiver must fail the connection with code 1007."),
    _r("close.one-byte-payload", ERROR, "RFC 6455 §5.5.1",
       "A Close payload is empty or starts with a 2-byte status code; one byte is invalid.",
       "A conforming receiver must fail the connection."),
    _r("close.invalid-code", ERROR, "RFC 6455 §7.4",
       "Close codes below 1000, 1004-1006, 1015 and 1016-2999 MUST NOT be sent.",
       "A conforming receiver must fail the connection."),
    _r("close.invalid-reason-utf8", ERROR, "RFC 6455 §5.5.1",
       "The close reason MUST be valid UTF-8.",
       "A conforming receiver must fail the connection."),
    _r("close.data-after-close", ERROR, "RFC 6455 §5.5.1",
       "After sending a Close frame an endpoint MUST NOT send any more data frames.",
       "The receiver must discard the data; it is lost."),
    _r("close.no-close-handshake", WARNING, "RFC 6455 §7.1.5",
       "A connection should end with a Close frame from each side before TCP closes.",
       "The peers see code 1006 (abnormal closure); messages in flight may be lost."),
    _r("ping.unanswered", WARNING, "RFC 6455 §5.5.2",
       "An endpoint receiving a Ping MUST answer with a Pong as soon as practical.",
       "Keep-alive and liveness checks fail; the peer may time the connection out."),
    _r("pong.payload-mismatch", WARNING, "RFC 6455 §5.5.3",
       "A Pong answering a Ping MUST carry the same application data as that Ping.",
       "Round-trip measurements and liveness checks based on the payload fail."),
    # permessage-deflate, RFC 7692
    _r("deflate.bad-negotiation", ERROR, "RFC 7692 §7.1",
       "permessage-deflate parameters MUST be known, not repeated, with valid values "
       "(window bits 8..15).",
       "A conforming client must fail the connection."),
    _r("deflate.rsv1-on-continuation", ERROR, "RFC 7692 §6.1",
       "The Per-Message Compressed bit (RSV1) is set only on the first frame of a message.",
       "A conforming receiver must fail the connection."),
    _r("deflate.rsv1-on-control", ERROR, "RFC 7692 §6.1",
       "Control frames MUST NOT have the Per-Message Compressed bit (RSV1) set.",
       "A conforming receiver must fail the connection."),
    _r("deflate.decompression-failed", ERROR, "RFC 7692 §7.2.2",
       "A compressed message MUST inflate as DEFLATE data once 00 00 ff ff is appended.",
       "The receiver cannot read the message and must fail the connection."),
    _r("deflate.context-takeover-violated", ERROR, "RFC 7692 §7.1.1",
       "A sender that agreed to *_no_context_takeover MUST NOT reference earlier messages.",
       "A receiver that resets its window per message (as allowed) cannot inflate it."),
    _r("deflate.window-bits-exceeded", ERROR, "RFC 7692 §7.1.2",
       "A sender MUST NOT use back-reference distances beyond its agreed *_max_window_bits.",
       "A receiver with the agreed smaller window (as allowed) cannot inflate it."),
    # Limits
    _r("message.too-big", WARNING, "RFC 6455 §10.4",
       "Implementations should bound message sizes; this one exceeds the configured limit.",
       "Its stored payload is cut; this is how a decompression bomb shows."),
    # Properties of the capture
    _r("capture.gap", INFO, "RFC 9293 §3.10",
       "Bytes of a TCP stream were never captured.",
       "Messages touching the missing bytes are incomplete."),
    _r("capture.mid-stream", INFO, "RFC 6455 §4",
       "The connection began before the capture; the handshake was not seen.",
       "Negotiated extensions are inferred; earlier compression history is unknown."),
    _r("capture.truncated", INFO, "pcap snaplen",
       "Packets were cut by the capture's snapshot length.",
       "Payload bytes beyond the snapshot length are missing."),
    _r("capture.undecodable", INFO, "RFC 7692 §7.2.2",
       "Data could not be decoded because of an earlier gap (e.g. lost inflate history).",
       "The message is counted but its payload is unknown."),
    _r("capture.limit", INFO, "wsanalyze limits",
       "State was dropped because a configured limit was reached.",
       "Some bytes or connections were not analysed."),
    _r("capture.overlap-conflict", INFO, "RFC 9293 §3.10.7.4",
       "Retransmitted TCP bytes differed from the bytes first captured; the first were kept.",
       "What the receiver saw may differ from what was decoded."),
    _r("capture.bad-timestamp", INFO, "pcapng if_tsresol/if_tsoffset",
       "A packet's timestamp lies outside the calendar (before 1677 or after 2262).",
       "Its time is shown as the raw epoch number; durations around it are meaningless."),
    # TLS (wss://), decrypted with key logs
    _r("capture.tls-no-key", INFO, "RFC 8446 §7; NSS key log",
       "A TLS connection is decrypted only with its secrets from a key log (or a pcapng "
       "Decryption Secrets Block); none were found for this client random.",
       "Nothing inside this connection is decoded; pass the key log with --tls-keylog."),
    _r("capture.tls-bad-key", INFO, "RFC 8446 §5.2; RFC 5246 §6.2.3",
       "Records must authenticate under the logged key; this one did not.",
       "The key log is wrong or stale for this connection; nothing more of that "
       "direction is decoded."),
    _r("capture.tls-invalid", INFO, "RFC 8446 §5.1; RFC 5246 §6.2",
       "TLS records and handshake messages must be well formed and within size limits.",
       "Bytes were skipped until the next record that authenticates."),
    _r("capture.tls-renegotiation", INFO, "RFC 5246 §7.4.1; RFC 5746",
       "A TLS 1.2 connection renegotiated: a new handshake with new keys.",
       "The new keys need the new client random's line in the key log."),
    _r("capture.tls-http2", INFO, "RFC 7301; RFC 8441",
       "The TLS connection negotiated HTTP/2 by ALPN; WebSocket over HTTP/2 is not decoded.",
       "No messages are reported for this connection."),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
