"""TLS handshake messages: reassembly across records and the fields wsanalyze
reports or needs for keys (RFC 8446 §4, RFC 5246 §7.4, RFC 6066, RFC 7301).

Parsers raise :class:`HandshakeError` (a ``ValueError``) on malformed input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

CLIENT_HELLO = 1
SERVER_HELLO = 2
NEW_SESSION_TICKET = 4
ENCRYPTED_EXTENSIONS = 8
FINISHED = 20
KEY_UPDATE = 24
HELLO_REQUEST = 0

EXT_SNI = 0
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_SESSION_TICKET = 35
EXT_PRE_SHARED_KEY = 41
EXT_SUPPORTED_VERSIONS = 43

HRR_RANDOM = hashlib.sha256(b"HelloRetryRequest").digest()
"""A ServerHello with this random is a HelloRetryRequest (RFC 8446 §4.1.3)."""
MAX_MESSAGE = 1 << 18
"""Handshake messages larger than this (certificate chains are the largest) are
skipped rather than buffered."""

VERSION_NAMES = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
                 0x0304: "TLS 1.3"}


class HandshakeError(ValueError):
    pass


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise HandshakeError(f"a field runs {self.pos + n - len(self.data)} bytes past "
                                 "the end of its message")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, len_bytes: int) -> bytes:
        return self.take(self.uint(len_bytes))

    def left(self) -> int:
        return len(self.data) - self.pos


@dataclass(slots=True)
class ClientHello:
    random: bytes
    session_id: bytes
    suites: list[int]
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    ticket: bytes | None = None
    """The session ticket offered for resumption (RFC 5077), if any."""
    psk: bool = False


@dataclass(slots=True)
class ServerHello:
    random: bytes
    session_id: bytes
    suite: int
    version: int
    """The negotiated version (supported_versions when present)."""
    alpn: str | None = None
    encrypt_then_mac: bool = False
    psk: bool = False

    @property
    def is_retry(self) -> bool:
        return self.random == HRR_RANDOM


def _extensions(r: _Reader) -> list[tuple[int, bytes]]:
    if not r.left():
        return []
    block = _Reader(r.vector(2))
    out = []
    while block.left():
        etype = block.uint(2)
        out.append((etype, block.vector(2)))
    return out


def _alpn_list(data: bytes) -> list[str]:
    r = _Reader(_Reader(data).vector(2))
    names = []
    while r.left():
        names.append(r.vector(1).decode("ascii", "replace"))
    return names


def parse_client_hello(body: bytes) -> ClientHello:
    r = _Reader(body)
    r.uint(2)  # legacy_version
    random = r.take(32)
    session_id = r.vector(1)
    suites_raw = r.vector(2)
    suites = [int.from_bytes(suites_raw[i:i + 2], "big") for i in range(0, len(suites_raw) - 1, 2)]
    r.vector(1)  # compression methods
    hello = ClientHello(random, session_id, suites)
    for etype, data in _extensions(r):
        if etype == EXT_SNI and data:
            names = _Reader(_Reader(data).vector(2))
            while names.left():
                kind = names.uint(1)
                name = names.vector(2)
                if kind == 0:
                    hello.sni = name.decode("ascii", "replace")
                    break
        elif etype == EXT_ALPN:
            hello.alpn = _alpn_list(data)
        elif etype == EXT_SUPPORTED_VERSIONS:
            versions = _Reader(data).vector(1)
            hello.versions = [int.from_bytes(versions[i:i + 2], "big")
                              for i in range(0, len(versions) - 1, 2)]
        elif etype == EXT_SESSION_TICKET and data:
            hello.ticket = data
        elif etype == EXT_PRE_SHARED_KEY:
            hello.psk = True
    return hello


def parse_server_hello(body: bytes) -> ServerHello:
    r = _Reader(body)
    version = r.uint(2)
    random = r.take(32)
    session_id = r.vector(1)
    suite = r.uint(2)
    r.uint(1)  # compression method
    hello = ServerHello(random, session_id, suite, version)
    for etype, data in _extensions(r):
        if etype == EXT_SUPPORTED_VERSIONS and len(data) == 2:
            hello.version = int.from_bytes(data, "big")
        elif etype == EXT_ALPN:
            names = _alpn_list(data)
            hello.alpn = names[0] if names else None
        elif etype == EXT_ENCRYPT_THEN_MAC:
            hello.encrypt_then_mac = True
        elif etype == EXT_PRE_SHARED_KEY:
            hello.psk = True
    return hello


def parse_encrypted_extensions(body: bytes) -> str | None:
    """The ALPN protocol selected in a TLS 1.3 EncryptedExtensions, if any."""
    for etype, data in _extensions(_Reader(body)):
        if etype == EXT_ALPN:
            names = _alpn_list(data)
            return names[0] if names else None
    return None


def parse_new_session_ticket12(body: bytes) -> bytes:
    """The ticket of a TLS 1.2 NewSessionTicket (RFC 5077 §3.3)."""
    r = _Reader(body)
    r.uint(4)  # lifetime hint
    return r.vector(2)


class HandshakeBuffer:
    """Handshake messages of one direction, reassembled across records."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.skip = 0
        """Bytes of an oversized message still to be skipped."""

    def clear(self) -> None:
        self.buf.clear()
        self.skip = 0

    def feed(self, data: bytes | memoryview) -> list[tuple[int, bytes]]:
        """(type, body) of the messages completed by ``data``; oversized messages
        come as (type, b"") once their length is known."""
        if self.skip:
            n = min(self.skip, len(data))
            self.skip -= n
            data = data[n:]
        self.buf += data
        out = []
        buf = self.buf
        while len(buf) >= 4:
            length = int.from_bytes(buf[1:4], "big")
            if length > MAX_MESSAGE:
                out.append((buf[0], b""))
                have = len(buf) - 4
                self.skip = max(0, length - have)
                del buf[:4 + min(length, have)]
                continue
            if len(buf) < 4 + length:
                break
            out.append((buf[0], bytes(buf[4:4 + length])))
            del buf[:4 + length]
        return out
