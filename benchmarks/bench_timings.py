"""Wall-clock figures that used to be asserted in tests (tests now count work instead).

    python benchmarks/bench_timings.py

* ``plots``: each plot of :data:`wsanalyze.plots.PLOTS` on a 100 000-message result
  (tests/test_plots.py checks that what is drawn stays bounded);
* ``mid-stream scan``: 512 KiB of random bytes behind a plausible frame header, fed
  to the decoder in 1448-byte segments (tests/test_hostile.py counts headers parsed);
* ``100 000 frames``: one TCP segment holding 100 000 frames, through iter_records;
* ``binary 320 KiB``: a captured-from-the-start binary TCP stream that is not WebSocket.

Prints one line per figure: name, seconds (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _scan() -> None:
    from wsanalyze.websocket.decoder import ConnectionDecoder

    data = b"\x82\x7f" + struct.pack("!Q", 900_000) + random.Random(3).randbytes(512 << 10)
    dec = ConnectionDecoder(syn_seen=False)
    packet = 0
    for packet, off in enumerate(range(0, len(data), 1448), 1):
        dec.data(0.0, packet, 1, off, data[off : off + 1448])
    dec.end(0.0, packet, "capture-ended")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import wsanalyze
    from benchmarks import bench_load
    from tests.pcaptools import Conversation
    from tests.test_plots import synthetic_result
    from wsanalyze import plots

    result = synthetic_result()
    for name, function in plots.PLOTS.items():
        print(f"plot {name:24} {_best(lambda f=function: f(result), args.repeat):7.2f} s")
    print(f"{'mid-stream scan 512 KiB':29} {_best(_scan, args.repeat):7.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames.pcap"
        bench_load.build_many_frames(frames, 100_000)
        took = _best(lambda: sum(1 for _ in wsanalyze.iter_records(frames)), args.repeat)
        print(f"{'100 000 frames in a segment':29} {took:7.2f} s")
        conv = Conversation()
        conv.handshake()
        conv.send("s2c", random.Random(1).randbytes(256 << 10))
        conv.send("c2s", random.Random(2).randbytes(64 << 10))
        conv.close()
        binary = Path(tmp) / "binary.pcap"
        conv.write(binary)
        took = _best(lambda: wsanalyze.analyze(binary), args.repeat)
        print(f"{'binary 320 KiB (not ws)':29} {took:7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
