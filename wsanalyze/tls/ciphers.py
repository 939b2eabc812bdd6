"""Record protection: cipher suites and their record decryptors.

AEAD (AES-GCM, ChaCha20-Poly1305) for TLS 1.3 (RFC 8446 §5.2–5.3) and TLS 1.2
(RFC 5288, RFC 7905), and TLS 1.2 CBC with HMAC (RFC 5246 §6.2.3.2), with or
without encrypt_then_mac (RFC 7366).  All cipher and MAC work is done by the
``cryptography`` package; a decryptor returns None for a record that fails
authentication, so such bytes never reach the WebSocket decoder.
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from wsanalyze.tls.keyschedule import key_block12, traffic_key_iv


class Suite(NamedTuple):
    name: str
    kind: str
    """``"gcm"``, ``"chacha"`` or ``"cbc"``."""
    key_len: int
    hash: str
    """The PRF / HKDF hash."""
    mac: str | None = None
    """CBC suites: the HMAC hash."""


def _suites() -> dict[int, Suite]:
    s: dict[int, Suite] = {
        0x1301: Suite("TLS_AES_128_GCM_SHA256", "gcm", 16, "sha256"),
        0x1302: Suite("TLS_AES_256_GCM_SHA384", "gcm", 32, "sha384"),
        0x1303: Suite("TLS_CHACHA20_POLY1305_SHA256", "chacha", 32, "sha256"),
    }
    gcm = {0x009C: "RSA", 0x009E: "DHE_RSA", 0xC02B: "ECDHE_ECDSA", 0xC02F: "ECDHE_RSA"}
    for code, kx in gcm.items():
        s[code] = Suite(f"TLS_{kx}_WITH_AES_128_GCM_SHA256", "gcm", 16, "sha256")
        s[code + 1] = Suite(f"TLS_{kx}_WITH_AES_256_GCM_SHA384", "gcm", 32, "sha384")
    for code, kx in {0xCCA8: "ECDHE_RSA", 0xCCA9: "ECDHE_ECDSA", 0xCCAA: "DHE_RSA"}.items():
        s[code] = Suite(f"TLS_{kx}_WITH_CHACHA20_POLY1305_SHA256", "chacha", 32, "sha256")
    cbc = {
        0x002F: ("RSA", 16, "sha1"), 0x0035: ("RSA", 32, "sha1"),
        0x003C: ("RSA", 16, "sha256"), 0x003D: ("RSA", 32, "sha256"),
        0x0033: ("DHE_RSA", 16, "sha1"), 0x0039: ("DHE_RSA", 32, "sha1"),
        0x0067: ("DHE_RSA", 16, "sha256"), 0x006B: ("DHE_RSA", 32, "sha256"),
        0xC009: ("ECDHE_ECDSA", 16, "sha1"), 0xC00A: ("ECDHE_ECDSA", 32, "sha1"),
        0xC013: ("ECDHE_RSA", 16, "sha1"), 0xC014: ("ECDHE_RSA", 32, "sha1"),
        0xC023: ("ECDHE_ECDSA", 16, "sha256"), 0xC024: ("ECDHE_ECDSA", 32, "sha384"),
        0xC027: ("ECDHE_RSA", 16, "sha256"), 0xC028: ("ECDHE_RSA", 32, "sha384"),
    }
    for code, (kx, key_len, mac) in cbc.items():
        tail = {"sha1": "SHA", "sha256": "SHA256", "sha384": "SHA384"}[mac]
        s[code] = Suite(f"TLS_{kx}_WITH_AES_{key_len * 8}_CBC_{tail}", "cbc", key_len,
                        "sha384" if mac == "sha384" else "sha256", mac)
    return s


SUITES = _suites()
_MAC_LEN = {"sha1": 20, "sha256": 32, "sha384": 48}


def suite_name(code: int) -> str:
    suite = SUITES.get(code)
    return suite.name if suite else f"0x{code:04X}"


class Decryptor:
    """Opens the records of one direction under one key; ``seq`` counts records."""

    overhead = 0
    """Bytes a record adds around its plaintext (used to size lost plaintext)."""

    def open(self, seq: int, header: bytes, body: bytes | memoryview) -> tuple[int, bytes] | None:
        """(content type, plaintext) of a record, or None when it fails authentication."""
        raise NotImplementedError


class Aead13(Decryptor):
    """TLS 1.3: nonce = IV xor sequence number, AAD = the record header, and the
    real content type at the end of the zero-padded inner plaintext."""

    def __init__(self, suite: Suite, secret: bytes) -> None:
        key, iv = traffic_key_iv(suite.hash, secret, suite.key_len)
        self.aead = AESGCM(key) if suite.kind == "gcm" else ChaCha20Poly1305(key)
        self.iv = int.from_bytes(iv, "big")
        self.overhead = 5 + 16 + 1

    def open(self, seq: int, header: bytes, body: bytes | memoryview) -> tuple[int, bytes] | None:
        try:
            inner = self.aead.decrypt((self.iv ^ seq).to_bytes(12, "big"), body, header)
        except InvalidTag:
            return None
        last = inner[-1] if inner else 0
        if last:  # no padding: the usual case, one copy less than rstrip
            return last, inner[:-1]
        end = len(inner.rstrip(b"\x00"))
        if not end:
            return None
        return inner[end - 1], inner[:end - 1]


class Aead12(Decryptor):
    """TLS 1.2 AES-GCM (4-byte implicit salt + 8-byte explicit nonce, RFC 5288) and
    ChaCha20-Poly1305 (IV xor sequence number, RFC 7905)."""

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self.gcm = suite.kind == "gcm"
        self.aead = AESGCM(key) if self.gcm else ChaCha20Poly1305(key)
        self.salt = iv
        self.iv = int.from_bytes(iv, "big")
        self.overhead = 5 + 16 + (8 if self.gcm else 0)

    def open(self, seq: int, header: bytes, body: bytes | memoryview) -> tuple[int, bytes] | None:
        if self.gcm:
            if len(body) < 24:
                return None
            nonce, data = self.salt + body[:8], body[8:]
        else:
            if len(body) < 16:
                return None
            nonce, data = (self.iv ^ seq).to_bytes(12, "big"), body
        aad = seq.to_bytes(8, "big") + header[:3] + (len(data) - 16).to_bytes(2, "big")
        try:
            return header[0], self.aead.decrypt(nonce, data, aad)
        except InvalidTag:
            return None


class Cbc12(Decryptor):
    """TLS 1.1+/1.2 CBC with explicit IV; MAC-then-encrypt or encrypt_then_mac."""

    def __init__(self, suite: Suite, mac_key: bytes, key: bytes, etm: bool) -> None:
        assert suite.mac is not None
        self.mac = suite.mac
        self.mac_len = _MAC_LEN[suite.mac]
        self.mac_key = mac_key
        self.alg = algorithms.AES(key)
        self.etm = etm
        self.overhead = 5 + 16 + self.mac_len + 1

    def _mac(self, seq: int, header: bytes, data: bytes | memoryview) -> bytes:
        pseudo = seq.to_bytes(8, "big") + header[:3] + len(data).to_bytes(2, "big")
        return hmac.digest(self.mac_key, pseudo + data, self.mac)

    def open(self, seq: int, header: bytes, body: bytes | memoryview) -> tuple[int, bytes] | None:
        mlen = self.mac_len
        if self.etm:
            if len(body) < 32 + mlen or (len(body) - mlen) % 16:
                return None
            data, tag = body[:-mlen], body[-mlen:]
            if not hmac.compare_digest(self._mac(seq, header, data), tag):
                return None
            plain = self._decrypt(data)
            pad = plain[-1]
            if pad + 1 > len(plain):
                return None
            return header[0], plain[:len(plain) - pad - 1]
        if len(body) < 32 or len(body) % 16:
            return None
        plain = self._decrypt(body)
        pad = plain[-1]
        if pad + 1 + mlen > len(plain) or plain[len(plain) - pad - 1:] != bytes((pad,)) * (pad + 1):
            return None
        content = plain[:len(plain) - pad - 1 - mlen]
        tag = plain[len(plain) - pad - 1 - mlen:len(plain) - pad - 1]
        if not hmac.compare_digest(self._mac(seq, header, content), tag):
            return None
        return header[0], content

    def _decrypt(self, data: bytes | memoryview) -> bytes:
        dec = Cipher(self.alg, modes.CBC(data[:16])).decryptor()
        return dec.update(data[16:]) + dec.finalize()


def tls13_decryptor(code: int, secret: bytes) -> Decryptor | None:
    suite = SUITES.get(code)
    if suite is None or suite.kind == "cbc" or code >> 8 != 0x13:
        return None
    return Aead13(suite, secret)


def tls12_decryptors(code: int, master: bytes, client_random: bytes, server_random: bytes,
                     etm: bool) -> tuple[Decryptor, Decryptor] | None:
    """(client write, server write) decryptors of a TLS 1.2 session."""
    suite = SUITES.get(code)
    if suite is None or code >> 8 == 0x13:
        return None
    mac_len = _MAC_LEN[suite.mac] if suite.mac else 0
    iv_len = {"gcm": 4, "chacha": 12, "cbc": 16}[suite.kind]
    need = 2 * (mac_len + suite.key_len + iv_len)
    block = key_block12(suite.hash, master, server_random, client_random, need)
    parts = []
    pos = 0
    for n in (mac_len, mac_len, suite.key_len, suite.key_len, iv_len, iv_len):
        parts.append(block[pos:pos + n])
        pos += n
    cmac, smac, ckey, skey, civ, siv = parts
    if suite.kind == "cbc":
        return Cbc12(suite, cmac, ckey, etm), Cbc12(suite, smac, skey, etm)
    return Aead12(suite, ckey, civ), Aead12(suite, skey, siv)
