"""The record type every capture source yields, and the errors it raises.

Not compiled (setup.py): an exception class compiled by mypyc has no
``__dict__``, and tblib (used by Dask to send errors from workers) pickles the
whole exception chain through ``__dict__``.
"""

from __future__ import annotations

from typing import NamedTuple

NON_PACKET_LINKTYPE = -1
"""Link type given to records that Wireshark numbers as frames but that hold no
network packet (pcapng systemd journal entries, custom blocks, sysdig events)."""
SECRETS_LINKTYPE = -2
"""Link type given to the body of a pcapng Decryption Secrets Block (TLS key log);
such a record is not a packet: its number is 0 and packet numbers go on without it."""


class CaptureError(Exception):
    """Nothing could be read: missing file, not a capture, unknown format.

    ``str(err)`` is a one-line message meant for the user as it is.
    """


class FormatError(ValueError):
    """The file header is invalid; ``str()`` is a short user-facing reason."""


class RawPacket(NamedTuple):
    """One captured packet, as stored in the capture file."""

    number: int
    """1-based packet number, as Wireshark shows it."""
    ts: float
    """Seconds since the Unix epoch."""
    linktype: int
    """LINKTYPE_* value of the interface the packet was captured on."""
    data: bytes
    """The captured bytes (``len(data)`` is the captured length)."""
    orig_len: int
    """The packet's length on the wire; larger than ``len(data)`` when the
    snapshot length cut it."""
