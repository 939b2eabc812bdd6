"""Secrets a tracker knows: key logs, pcapng Decryption Secrets Blocks, and
TLS 1.2 master secrets remembered for resumption (by session id and ticket)."""

from __future__ import annotations

from collections import OrderedDict

from wsanalyze.tls.keylog import KeyLog

SECRETS_TLS_KEY_LOG = 0x544C534B
"""Secrets type of a pcapng Decryption Secrets Block holding an NSS key log."""
MAX_SESSIONS = 4096


class TlsKeys:
    """The key material of one capture run (one per tracker)."""

    def __init__(self, keylog: KeyLog | None = None) -> None:
        self.log = KeyLog()
        if keylog is not None:
            self.log.merge(keylog)
        self.by_session: OrderedDict[bytes, bytes] = OrderedDict()
        self.by_ticket: OrderedDict[bytes, bytes] = OrderedDict()
        self.blocks = 0

    def add_block(self, body: bytes) -> str | None:
        """Take a Decryption Secrets Block's body; returns a problem, or None."""
        if len(body) < 8:
            return "a decryption secrets block is too short"
        stype = int.from_bytes(body[:4], "little")
        length = int.from_bytes(body[4:8], "little")
        if stype != SECRETS_TLS_KEY_LOG:
            # Big-endian sections store the type swapped.
            if int.from_bytes(body[:4], "big") != SECRETS_TLS_KEY_LOG:
                return None  # WireGuard, ZigBee... keys: not ours
            length = int.from_bytes(body[4:8], "big")
        if length > len(body) - 8:
            return "a decryption secrets block claims more bytes than it holds"
        self.blocks += 1
        self.log.add_text(body[8:8 + length], f"decryption secrets block {self.blocks}")
        return None

    def remember(self, table: OrderedDict[bytes, bytes], key: bytes, master: bytes) -> None:
        if not key:
            return
        table[key] = master
        table.move_to_end(key)
        if len(table) > MAX_SESSIONS:
            table.popitem(last=False)
