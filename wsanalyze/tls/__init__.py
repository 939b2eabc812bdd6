"""TLS decryption for ``wss://`` captures (sans-IO).

A :class:`~wsanalyze.tls.bridge.TlsBridge` sits between the TCP reassembler and
a connection's WebSocket decoder: it follows the TLS records of both directions,
decrypts them with secrets from NSS key logs (:mod:`wsanalyze.tls.keylog`) and
feeds the plaintext to the unchanged decoder.
"""

from wsanalyze.tls.keylog import KeyLog, KeyLogError, load_keylogs

__all__ = ["KeyLog", "KeyLogError", "load_keylogs"]
