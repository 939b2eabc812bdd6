"""The processes of the ``--jobs`` reader engine (see :mod:`wsanalyze.parallel`).

One *reader* process reads the capture's records and does the work every packet
needs whatever its connection — count it, parse its link/IP/TCP headers, number
its conversation (``tcp.stream``, counted before sharding) — with
:meth:`Tracker.route <wsanalyze.tracker.Tracker.route>`, then ships each segment
to the *decoder* process of its flow-hash shard, in pickled batches.  Each
decoder runs :meth:`Tracker.feed_segment <wsanalyze.tracker.Tracker.feed_segment>`
on its segments and sends its items, tagged with their packet numbers, to the
parent, which merges them exactly as with the replay engine.

Progress without deadlock: the reader sends every decoder a batch (empty or not)
every ``flush`` packets, and each decoder answers every batch with its items
followed by a *watermark* — "I have no items at or before packet W" — which the
parent's merge takes in packet order without output.  So the parent never waits
on a decoder that has nothing to say while another decoder's pipe is full and
the reader is stuck behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from multiprocessing.connection import Connection

from wsanalyze.pipeline import FINISH
from wsanalyze.sources.capture import open_capture
from wsanalyze.sources.records import SECRETS_LINKTYPE
from wsanalyze.tcp.segment import TcpSegment
from wsanalyze.tracker import Item, Options, Tracker, shard_of

Tagged = tuple[tuple[float, int], list[Item]]
"""Items with their merge key: (packet number, watermark or FINISH; connection key)."""
SegmentFields = tuple[bytes, int, bytes, int, int, int, int, bytes, int]
"""A :class:`TcpSegment`'s constructor arguments, in order: a plain tuple pickles
about 2.5× faster than the object (no ``__reduce__`` call per segment)."""
Shipped = tuple[int, float, int, SegmentFields] | bytes
"""What the reader ships: (packet number, timestamp, tcp.stream, the segment's
fields), or the body of a TLS key log block (every decoder gets those)."""

FLUSH_PER_JOB = 256
"""Packets read between two batches to every decoder, per job (fewer, larger pickles)."""


def segment_fields(seg: TcpSegment) -> SegmentFields:
    """What the reader ships of a segment; ``TcpSegment(*fields)`` rebuilds it."""
    return (seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack, seg.flags, seg.payload,
            seg.missing)


def finish_groups(items: Iterable[Item]) -> list[Tagged]:
    """The items of the connections still open at the end, one group per
    connection, keyed so that the merge puts them in first-packet order across
    processes."""
    out: list[Tagged] = []
    group: list[Item] = []
    for item in items:
        if group and group[0].key != item.key:
            out.append(((FINISH, group[0].key), group))
            group = []
        group.append(item)
    if group:
        out.append(((FINISH, group[0].key), group))
    return out


def done(tracker: Tracker, stopped: str | None) -> tuple[object, ...]:
    """The capture's facts, for the parent: packets, first and last time, notes,
    where reading stopped."""
    return ("done", tracker.packets, tracker.first_ts, tracker.last_ts, tracker.notes(),
            stopped)


def reader(path: str, options: Options, outs: list[Connection], parent: Connection,
           close: list[Connection]) -> None:
    """Read and route every packet; end with ``None`` to every decoder and the
    capture's facts (packets, times, notes, where reading stopped) to the parent."""
    for conn in close:  # inherited ends of other pipes: EOF must reach their owners
        conn.close()
    try:
        capture = open_capture(path)
        tracker = Tracker(options)
        route = tracker.route
        jobs = len(outs)
        flush = FLUSH_PER_JOB * jobs
        batches: list[list[Shipped]] = [[] for _ in range(jobs)]
        number = 0
        for pkt in capture:
            routed = route(pkt)
            if routed is not None:
                seg, stream = routed
                batches[shard_of(seg, jobs)].append((pkt.number, pkt.ts, stream,
                                                     segment_fields(seg)))
            elif pkt.linktype == SECRETS_LINKTYPE:
                for batch in batches:  # any shard may hold TLS connections these keys open
                    batch.append(pkt.data)
                continue  # not a packet: numbered 0, and watermarks never go back
            number = pkt.number
            if number % flush == 0:
                _send_all(outs, batches, number)
        _send_all(outs, batches, number)
        for out in outs:
            out.send(None)
        parent.send(done(tracker, capture.stopped))
    except BaseException as exc:  # reported to the parent, which fails cleanly
        parent.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        for out in outs:
            out.close()
        parent.close()


def _send_all(outs: list[Connection], batches: list[list[Shipped]], number: int) -> None:
    for i, out in enumerate(outs):
        out.send((number, batches[i]))
        batches[i] = []


def decoder(options: Options, shard: int, jobs: int, inp: Connection, out: Connection,
            close: list[Connection]) -> None:
    """Decode the segments of one shard; answer every batch with its items and a
    watermark; at the end, the items of the connections still open, then "done"."""
    for conn in close:
        conn.close()
    try:
        tracker = Tracker(options, shard=shard, jobs=jobs)
        feed = tracker.feed_segment
        add_keys = tracker.tls_keys.add_block
        while True:
            msg = inp.recv()
            if msg is None:
                break
            watermark, batch = msg
            tagged: list[Tagged] = []
            for entry in batch:
                if type(entry) is bytes:
                    add_keys(entry)
                    continue
                number, ts, stream, fields = entry
                items = feed(number, ts, TcpSegment(*fields), stream)
                if items:
                    tagged.append(((number, 0), items))
            tagged.append(((watermark + 0.5, 0), []))
            out.send(tagged)
        out.send(finish_groups(tracker.finish()))
        out.send(("done",))
    except EOFError:
        out.send(("error", "the reader process stopped"))
    except BaseException as exc:  # reported to the parent, which fails cleanly
        out.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        out.close()
