"""The record type every capture source yields (defined, compiled, in
:mod:`.rawpacket`), and the errors it raises.

Not compiled (setup.py): an exception class compiled by mypyc has no
``__dict__``, and tblib (used by Dask to send errors from workers) pickles the
whole exception chain through ``__dict__``.
"""

from __future__ import annotations

from wsanalyze.sources.rawpacket import RawPacket

__all__ = ["NON_PACKET_LINKTYPE", "SECRETS_LINKTYPE", "CaptureError", "FormatError", "RawPacket"]

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
