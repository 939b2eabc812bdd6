"""NSS key log files (``SSLKEYLOGFILE``): secrets by client random.

The format is one ``LABEL <client random hex> <secret hex>`` line per secret;
``#`` starts a comment.  Labels other than those TLS 1.2 and 1.3 traffic
decryption needs are skipped; malformed lines are counted and the first few
described, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from wsanalyze.sources.records import CaptureError

LABELS = frozenset((
    "CLIENT_RANDOM",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0",
))
"""The labels used; OpenSSL's later generations (``*_TRAFFIC_SECRET_N``) are
accepted too but derived from generation 0 anyway (RFC 8446 §7.2)."""
_OTHER_LABELS = frozenset((
    "CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
    "EARLY_EXPORTER_MASTER_SECRET", "RSA", "EXPORTER_MASTER_SECRET",
))
_MAX_PROBLEMS = 3
MAX_FILE = 256 << 20
"""A key log larger than this is refused (it would be held in memory)."""


class KeyLogError(CaptureError):
    """A key log could not be read; ``str(err)`` is a one-line message for the user."""


class KeyLog:
    """Secrets by client random, from any number of key logs and pcapng blocks."""

    def __init__(self) -> None:
        self.secrets: dict[bytes, dict[str, bytes]] = {}
        self.malformed = 0
        self.problems: list[str] = []
        """Descriptions of the first malformed lines (``source:line: why``)."""

    def __len__(self) -> int:
        return len(self.secrets)

    def get(self, client_random: bytes) -> dict[str, bytes]:
        """The secrets logged for a client random (empty when there are none)."""
        return self.secrets.get(client_random, {})

    def merge(self, other: KeyLog) -> None:
        for cr, labels in other.secrets.items():
            self.secrets.setdefault(cr, {}).update(labels)
        self.malformed += other.malformed
        self.problems.extend(other.problems[: _MAX_PROBLEMS - len(self.problems)])

    def add_text(self, text: str | bytes, source: str) -> int:
        """Add the lines of a key log; returns the number of secrets taken."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        taken = 0
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            why = self._add_line(line)
            if why is None:
                taken += 1
            elif why:
                self.malformed += 1
                if len(self.problems) < _MAX_PROBLEMS:
                    self.problems.append(f"{source}:{number}: {why}")
        return taken

    def _add_line(self, line: str) -> str | None:
        """None when taken, "" when skipped on purpose, else why the line is malformed."""
        parts = line.split()
        label = parts[0]
        is_next_gen = (label.startswith(("CLIENT_TRAFFIC_SECRET_", "SERVER_TRAFFIC_SECRET_"))
                       and label.rsplit("_", 1)[1].isdigit())
        if label not in LABELS and not is_next_gen:
            if label in _OTHER_LABELS or label.isupper():
                return ""
            return f"unknown line starting {label[:40]!r}"
        if len(parts) != 3:
            return f"{label} needs a client random and a secret, got {len(parts) - 1} fields"
        try:
            cr = bytes.fromhex(parts[1])
            secret = bytes.fromhex(parts[2])
        except ValueError:
            return f"{label}: not hexadecimal"
        if len(cr) != 32:
            return f"{label}: the client random has {len(cr)} bytes, not 32"
        if label == "CLIENT_RANDOM" and len(secret) != 48:
            return f"CLIENT_RANDOM: the master secret has {len(secret)} bytes, not 48"
        if label != "CLIENT_RANDOM" and len(secret) not in (32, 48):
            return f"{label}: a {len(secret)}-byte secret (32 or 48 expected)"
        self.secrets.setdefault(cr, {})[label] = secret
        return None

    def summary(self) -> str | None:
        """One line about malformed lines, or None."""
        if not self.malformed:
            return None
        first = "; ".join(self.problems)
        return f"{self.malformed} malformed key log line(s) were skipped ({first})"


def load_keylogs(paths: Iterable[str | os.PathLike[str]]) -> KeyLog:
    """Read key log files; raises :class:`KeyLogError` when one cannot be read."""
    log = KeyLog()
    for path in paths:
        name = os.fspath(path)
        try:
            size = os.path.getsize(name)
            if size > MAX_FILE:
                raise KeyLogError(f"key log {name} is too large ({size} bytes; at most "
                                  f"{MAX_FILE} are read)")
            with open(name, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise KeyLogError(f"cannot read key log {name}: {exc.strerror or exc}") from None
        if b"\x00" in data[:4096]:
            raise KeyLogError(f"key log {name} is not a text file (an NSS key log, "
                              "SSLKEYLOGFILE, is expected)")
        log.add_text(data, name)
    return log


def as_keylog(arg: object) -> KeyLog | None:
    """The ``tls_keylog`` argument of the Python API: a path, several paths, a
    :class:`KeyLog` or None."""
    if arg is None or isinstance(arg, KeyLog):
        return arg
    if isinstance(arg, (str, os.PathLike)):
        return load_keylogs([arg])
    return load_keylogs(arg)  # type: ignore[arg-type]
