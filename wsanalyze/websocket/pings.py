"""The one Ping → Pong rule, shared by the decoder's violations and the latency metrics.

RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping frame must have
identical 'Application data' as found in the message body of the Ping frame
being replied to.  If an endpoint receives a Ping frame and has not yet sent
Pong frame(s) in response to previous Ping frame(s), the endpoint MAY elect to
send a Pong frame for only the most recently processed Ping frame."

So a Pong answers the most recent pending Ping with the same payload, and with
it every older pending Ping (the peer may skip those).  "A Pong frame MAY be
sent unsolicited": a Pong that echoes no pending Ping is legal and answers
nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class PingLedger(Generic[T]):
    """Pings one side sent that the other side has not answered yet, oldest first.

    ``T`` is what the caller keeps per Ping (the decoder its packet, the metrics
    their row); ``key`` is what a Pong must echo (the payload).
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[Hashable, T]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[T]:
        return (item for _, item in self._pending)

    def add(self, key: Hashable, item: T) -> None:
        self._pending.append((key, item))

    def answer(self, key: Hashable) -> list[T] | None:
        """The Pings a Pong echoing ``key`` answers — the most recent pending Ping
        with that key and every older one, oldest first — now no longer pending;
        None when no pending Ping has that key (an unsolicited Pong)."""
        pending = self._pending
        for i in range(len(pending) - 1, -1, -1):
            if pending[i][0] == key:
                answered = [item for _, item in pending[: i + 1]]
                del pending[: i + 1]
                return answered
        return None

    def clear(self) -> None:
        self._pending.clear()
