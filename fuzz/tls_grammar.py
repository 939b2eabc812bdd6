"""The input grammar of fuzz/fuzz_tls.py: operations on one TLS connection, read
from an atheris ``FuzzedDataProvider`` and written back for seeds (fuzz.fdp)."""

from __future__ import annotations

from dataclasses import dataclass

from fuzz.fdp import FdpWriter, Source

MAX_OPS = 200
MAX_CHUNK = 40_000
DATA, GAP, END = 0, 1, 2


@dataclass(frozen=True)
class TlsOp:
    kind: int
    direction: int
    data: bytes = b""
    length: int = 0


def read_tls(src: Source) -> list[TlsOp]:
    ops = []
    for _ in range(src.ConsumeIntInRange(0, MAX_OPS)):
        kind = src.ConsumeIntInRange(0, 2)
        direction = src.ConsumeIntInRange(0, 1)
        if kind == DATA:
            ops.append(TlsOp(DATA, direction, src.ConsumeBytes(
                src.ConsumeIntInRange(0, MAX_CHUNK))))
        elif kind == GAP:
            ops.append(TlsOp(GAP, direction, length=src.ConsumeIntInRange(1, 1 << 20)))
        else:
            ops.append(TlsOp(END, direction))
            break
    return ops


def write_tls(ops: list[TlsOp]) -> bytes:
    w = FdpWriter()
    w.int_in_range(0, MAX_OPS, len(ops))
    for op in ops:
        w.int_in_range(0, 2, op.kind)
        w.int_in_range(0, 1, op.direction)
        if op.kind == DATA:
            w.int_in_range(0, MAX_CHUNK, len(op.data))
            w.raw(op.data)
        elif op.kind == GAP:
            w.int_in_range(1, 1 << 20, op.length)
    return w.getvalue()
