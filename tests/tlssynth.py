"""A TLS 1.3 session written with known secrets (no key exchange: the secrets are
drawn from an RNG and logged), for crafted captures, fuzz seeds and benchmarks.

The records are what a real TLS 1.3 peer sends (RFC 8446 §5.2): AES-128-GCM or
AES-256-GCM / ChaCha20-Poly1305, nonce = IV xor sequence number, the header as
AAD, the content type after the plaintext; real peers' captures are in
tests/test_tls.py."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from wsanalyze.tls.ciphers import SUITES
from wsanalyze.tls.keyschedule import next_traffic_secret, traffic_key_iv

LABELS = ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
          "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
MAX_PLAIN = 1 << 14


def record(ctype: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes((ctype,)) + version + len(body).to_bytes(2, "big") + body


def handshake(mtype: int, body: bytes) -> bytes:
    return bytes((mtype,)) + len(body).to_bytes(3, "big") + body


def _ext(etype: int, data: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


def client_hello_body(random_: bytes, sni: str | None = "example.com",
                      alpn: tuple[str, ...] = ("http/1.1",)) -> bytes:
    exts = _ext(43, b"\x02\x03\x04")
    if sni:
        name = sni.encode()
        entry = b"\x00" + len(name).to_bytes(2, "big") + name
        exts += _ext(0, len(entry).to_bytes(2, "big") + entry)
    if alpn:
        names = b"".join(bytes((len(a),)) + a.encode() for a in alpn)
        exts += _ext(16, len(names).to_bytes(2, "big") + names)
    return (b"\x03\x03" + random_ + b"\x20" + bytes(32) + b"\x00\x06\x13\x01\x13\x02\x13\x03"
            + b"\x01\x00" + len(exts).to_bytes(2, "big") + exts)


def server_hello_body(random_: bytes, suite: int) -> bytes:
    exts = _ext(43, b"\x03\x04")
    return (b"\x03\x03" + random_ + b"\x20" + bytes(32) + suite.to_bytes(2, "big") + b"\x00"
            + len(exts).to_bytes(2, "big") + exts)


class _Sealer:
    def __init__(self, suite: int, secret: bytes) -> None:
        s = SUITES[suite]
        self.suite = suite
        self.secret = secret
        key, iv = traffic_key_iv(s.hash, secret, s.key_len)
        self.aead = AESGCM(key) if s.kind == "gcm" else ChaCha20Poly1305(key)
        self.iv = int.from_bytes(iv, "big")
        self.seq = 0

    def seal(self, ctype: int, data: bytes, padding: int = 0) -> bytes:
        inner = data + bytes((ctype,)) + bytes(padding)
        header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
        nonce = (self.iv ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        return header + self.aead.encrypt(nonce, inner, header)


class Tls13Session:
    """Both sides of one TLS 1.3 connection; byte strings to put on the wire."""

    def __init__(self, rng: random.Random, suite: int = 0x1301, sni: str | None = "example.com",
                 alpn: tuple[str, ...] = ("http/1.1",)) -> None:
        self.suite = suite
        self.client_random = rng.randbytes(32)
        self.server_random = rng.randbytes(32)
        size = 48 if SUITES[suite].hash == "sha384" else 32
        self.secrets = {label: rng.randbytes(size) for label in LABELS}
        self.sni = sni
        self.alpn = alpn
        self._c = _Sealer(suite, self.secrets["CLIENT_HANDSHAKE_TRAFFIC_SECRET"])
        self._s = _Sealer(suite, self.secrets["SERVER_HANDSHAKE_TRAFFIC_SECRET"])

    def keylog(self) -> str:
        cr = self.client_random.hex()
        return "".join(f"{label} {cr} {self.secrets[label].hex()}\n" for label in LABELS)

    def client_hello(self) -> bytes:
        return record(22, handshake(1, client_hello_body(self.client_random, self.sni,
                                                         self.alpn)), b"\x03\x01")

    def server_flight(self, alpn: str | None = None) -> bytes:
        """ServerHello, ChangeCipherSpec, then EncryptedExtensions and Finished
        under the server handshake key; the server switches to its traffic key."""
        hello = record(22, handshake(2, server_hello_body(self.server_random, self.suite)))
        ee_ext = b""
        if alpn:
            names = bytes((len(alpn),)) + alpn.encode()
            ee_ext = _ext(16, len(names).to_bytes(2, "big") + names)
        ee = handshake(8, len(ee_ext).to_bytes(2, "big") + ee_ext)
        fin = handshake(20, bytes(32))
        out = hello + record(20, b"\x01") + self._s.seal(22, ee + fin)
        self._s = _Sealer(self.suite, self.secrets["SERVER_TRAFFIC_SECRET_0"])
        return out

    def client_finished(self) -> bytes:
        out = record(20, b"\x01") + self._c.seal(22, handshake(20, bytes(32)))
        self._c = _Sealer(self.suite, self.secrets["CLIENT_TRAFFIC_SECRET_0"])
        return out

    def app(self, from_client: bool, data: bytes, padding: int = 0) -> bytes:
        """Application data as records of at most 2^14 plaintext bytes."""
        sealer = self._c if from_client else self._s
        return b"".join(sealer.seal(23, data[i:i + MAX_PLAIN], padding)
                        for i in range(0, len(data), MAX_PLAIN))

    def key_update(self, from_client: bool) -> bytes:
        """A KeyUpdate (update_not_requested); later records use the next secret."""
        sealer = self._c if from_client else self._s
        out = sealer.seal(22, handshake(24, b"\x00"))
        nxt = _Sealer(self.suite, next_traffic_secret(SUITES[self.suite].hash, sealer.secret))
        if from_client:
            self._c = nxt
        else:
            self._s = nxt
        return out
