"""atheris harness: the TLS follower (record layer, handshake, decryption), both
directions.

Input (``read_tls``): up to 200 operations on one connection: bytes for
direction 0 (the client) or 1, in chunks of any size, gaps of any size, and the
end.  The key log holds the secrets of the synthetic TLS 1.3 session of
``tests/tlssynth.py`` seeded with 0, so seeds built from that session decrypt
and mutations reach the authenticated paths.

Checked: nothing raises; plaintext chunks and plaintext gaps follow each other
without overlap or hole per direction; every finding's rule is in the catalog;
the record buffer stays within one record and one chunk.

Run: ``python -m fuzz.fuzz_tls [libFuzzer flags] CORPUS_DIR...`` or
``python -m fuzz.run tls``.
"""

from __future__ import annotations

import random
import sys

import atheris

from fuzz.tls_grammar import END, GAP, MAX_CHUNK, TlsOp, read_tls

with atheris.instrument_imports(include=["wsanalyze"]):
    from wsanalyze.rules import RULES
    from wsanalyze.tls.follower import Finding, Plain, PlainGap, TlsFollower
    from wsanalyze.tls.keylog import KeyLog
    from wsanalyze.tls.records import MAX_RECORD_12
    from wsanalyze.tls.session import TlsKeys

def keylog() -> KeyLog:
    from tests.tlssynth import Tls13Session

    log = KeyLog()
    log.add_text(Tls13Session(random.Random(0)).keylog(), "fuzz")
    return log


KEYLOG = keylog()


def run_ops(ops: list[TlsOp]) -> None:
    f = TlsFollower(TlsKeys(KEYLOG), 0)
    offsets = [0, 0]
    plain = [0, 0]
    for packet, op in enumerate(ops, 1):
        d = op.direction
        if op.kind not in (GAP, END):
            out = f.data(d, 1.0 + packet, packet, offsets[d], op.data)
            offsets[d] += len(op.data)
        elif op.kind == GAP:
            out = f.gap(d, 1.0 + packet, packet, offsets[d], op.length)
            offsets[d] += op.length
        else:
            out = f.end(1.0 + packet, packet)
        for o in out:
            if type(o) is Plain or type(o) is PlainGap:
                assert o.offset == plain[o.direction], (o, plain)
                plain[o.direction] += len(o.data) if type(o) is Plain else o.length
            else:
                assert type(o) is Finding and o.rule in RULES, o
        for side in f._dirs:
            assert len(side.reader.buf) <= MAX_RECORD_12 + 5 + MAX_CHUNK, len(side.reader.buf)


def TestOneInput(data: bytes) -> None:
    run_ops(read_tls(atheris.FuzzedDataProvider(data)))


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
