"""Traffic keys from logged secrets: TLS 1.3 (RFC 8446 §7.1–7.3) and the TLS 1.2
key block (RFC 5246 §5, §6.3).  Primitives come from ``cryptography``."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256,
                                                  "sha384": hashes.SHA384,
                                                  "sha1": hashes.SHA1}


def hkdf_expand_label(hash_name: str, secret: bytes, label: str, context: bytes,
                      length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1)."""
    full = b"tls13 " + label.encode("ascii")
    info = (length.to_bytes(2, "big") + bytes((len(full),)) + full
            + bytes((len(context),)) + context)
    return HKDFExpand(HASHES[hash_name](), length, info).derive(secret)


def traffic_key_iv(hash_name: str, secret: bytes, key_len: int,
                   iv_len: int = 12) -> tuple[bytes, bytes]:
    """The write key and IV of a traffic secret (RFC 8446 §7.3)."""
    return (hkdf_expand_label(hash_name, secret, "key", b"", key_len),
            hkdf_expand_label(hash_name, secret, "iv", b"", iv_len))


def next_traffic_secret(hash_name: str, secret: bytes) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 §7.2)."""
    return hkdf_expand_label(hash_name, secret, "traffic upd", b"", len(secret))


def prf12(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF, P_hash(secret, label + seed) (RFC 5246 §5)."""
    seed = label + seed
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return bytes(out[:length])


def key_block12(hash_name: str, master: bytes, server_random: bytes, client_random: bytes,
                length: int) -> bytes:
    """The key block (RFC 5246 §6.3), cut by the caller into MAC keys, keys, IVs."""
    return prf12(hash_name, master, b"key expansion", server_random + client_random, length)
