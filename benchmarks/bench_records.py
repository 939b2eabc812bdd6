"""What a record costs to build and to pickle: NamedTuple against the record pattern.

The record pattern (wsanalyze/sources/rawpacket.py): ``@final
@dataclass(init=False, slots=True, unsafe_hash=True)`` with a hand-written
``__init__`` and ``__reduce__``.  This writes one module holding a 6-field event
(the shape of ``StreamData``) in four forms — a NamedTuple, the record pattern,
a plain ``@dataclass(slots=True)`` (its ``__init__`` generated at run time) and
a frozen one — each with a loop that builds it and reads two fields; runs the
loops from source, then compiles the module with mypyc (when installed) and runs
them again, so the loops themselves are compiled as the hot path is.  It also
times pickling a batch of each form (the ``--jobs`` engines ship records).

    python benchmarks/bench_records.py [--n 300000]

Prints the best of 5 per loop in ns per record (CPU time, ``time.process_time``).
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = "conn: int, direction: int, ts: float, packet: int, offset: int, data: bytes"
NAMES = ["conn", "direction", "ts", "packet", "offset", "data"]
BODY = "".join(f"    {f}\n" for f in FIELDS.split(", "))
ASSIGN = "".join(f"        self.{n} = {n}\n" for n in NAMES)
ARGS = ", ".join(f"self.{n}" for n in NAMES)
MODULE = f"""
from __future__ import annotations
from dataclasses import dataclass
from typing import NamedTuple, final


class Tuple(NamedTuple):
{BODY}

@final
@dataclass(init=False, slots=True, unsafe_hash=True)
class Record:
{BODY}
    def __init__(self, {FIELDS}) -> None:
{ASSIGN}
    def __reduce__(self) -> tuple[object, ...]:
        return (Record, ({ARGS}))


@final
@dataclass(slots=True)
class Generated:
{BODY}

@final
@dataclass(frozen=True)
class Frozen:
{BODY}
"""
LOOP = '''

def loop_{name}(n: int) -> int:
    total = 0
    for i in range(n):
        e = {cls}(i, 0, 1.0, i, i, b"")
        total += e.packet + e.offset
    return total
'''
FORMS = {"NamedTuple": "Tuple", "record": "Record", "dataclass": "Generated",
         "frozen dataclass": "Frozen"}


def write_module(where: Path) -> None:
    text = MODULE + "".join(LOOP.format(name=cls.lower(), cls=cls) for cls in FORMS.values())
    (where / "recbench.py").write_text(text)


def best_ns(fn: object, n: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        fn(n)  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best * 1e9 / n


def pickle_ns(mod: object, n: int) -> dict[str, float | str]:
    """Per record, a round trip of a pickled batch; or why it cannot be pickled."""
    out: dict[str, float | str] = {}
    for label, cls_name in FORMS.items():
        cls = getattr(mod, cls_name)
        batch = [cls(i, 0, 1.0, i, i, b"x" * 300) for i in range(min(n, 1000))]
        best = float("inf")
        try:
            for _ in range(5):
                started = time.process_time()
                back = pickle.loads(pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
                best = min(best, time.process_time() - started)
            if back != batch:
                raise ValueError("round trip changed the records")
        except Exception as exc:  # mypyc's frozen dataclasses do not unpickle
            out[label] = f"fails: {type(exc).__name__}"
            continue
        out[label] = f"{best * 1e9 / len(batch):.0f} ns"
    return out


def measure(label: str, n: int) -> None:
    importlib.invalidate_caches()
    sys.modules.pop("recbench", None)
    mod = importlib.import_module("recbench")
    print(f"{label} ({Path(str(mod.__file__)).name}):")
    pickled = pickle_ns(mod, n)
    for form, cls in FORMS.items():
        build = best_ns(getattr(mod, f"loop_{cls.lower()}"), n)
        print(f"  {form:<17} build+read {build:6.0f} ns   pickle round trip {pickled[form]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300_000, help="records per loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        write_module(where)
        sys.path.insert(0, tmp)
        measure("pure Python", args.n)
        built = subprocess.run([sys.executable, "-m", "mypyc", "recbench.py"], cwd=where,
                               capture_output=True, text=True)
        if built.returncode:
            print(f"mypyc build failed or not installed:\n{built.stderr[-500:]}")
            return
        measure("compiled (mypyc)", args.n)


if __name__ == "__main__":
    main()
