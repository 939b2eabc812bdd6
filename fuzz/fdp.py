"""Reading and writing atheris ``FuzzedDataProvider`` input.

The harnesses read their scenario through the small :class:`Source` interface
(the subset of ``atheris.FuzzedDataProvider`` they use).  Seeds must be bytes
that a ``FuzzedDataProvider`` turns back into the intended scenario, so
:class:`FdpWriter` produces exactly that, following the provider's documented
behaviour (atheris ``src/native/fuzzed_data_provider.cc``):

* ``ConsumeBytes(n)`` takes the next ``n`` bytes from the *front*;
* ``ConsumeIntInRange(lo, hi)`` takes ``ceil(bit_length(hi - lo) / 8)`` bytes from
  the *back*, most significant first, and returns ``lo + value % (hi - lo + 1)``.

So a writer keeps two byte strings, and the input is ``front + reversed(back)``.
The seed builder checks every seed by reading it back (see ``fuzz.seeds``).
"""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    """What the harness grammars read from (``atheris.FuzzedDataProvider`` fits)."""

    def ConsumeIntInRange(self, min: int, max: int) -> int: ...

    def ConsumeBytes(self, count: int) -> bytes: ...

    def remaining_bytes(self) -> int: ...


class FdpWriter:
    """Build the input bytes for which a provider returns the given values."""

    def __init__(self) -> None:
        self._front = bytearray()
        self._back = bytearray()

    def int_in_range(self, lo: int, hi: int, value: int) -> None:
        """Make the next ``ConsumeIntInRange(lo, hi)`` return ``value``."""
        if not lo <= value <= hi:
            raise ValueError(f"{value} is not in [{lo}, {hi}]")
        width = ((hi - lo).bit_length() + 7) // 8
        self._back += (value - lo).to_bytes(width, "big") if width else b""

    def raw(self, data: bytes) -> None:
        """Make the next ``ConsumeBytes(len(data))`` return ``data``."""
        self._front += data

    def getvalue(self) -> bytes:
        return bytes(self._front) + bytes(reversed(self._back))


def choose(src: Source, options: tuple[int, ...] | list[int]) -> int:
    """One of ``options``, picked by an int in range (what :func:`write_choice` writes)."""
    return options[src.ConsumeIntInRange(0, len(options) - 1)]


def write_choice(w: FdpWriter, options: tuple[int, ...] | list[int], value: int) -> None:
    w.int_in_range(0, len(options) - 1, options.index(value))
