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


def rule(rule_id: str) -> Rule:
    """Return the rule with this id (KeyError for an unknown id: a bug)."""
    return RULES[rule_id]
