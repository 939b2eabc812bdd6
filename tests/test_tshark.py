"""tshark as a second opinion: on the samples it can decode (no fragments), the
text messages it shows are exactly ours, in the same order, from the same side."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import wsanalyze

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# tshark 4.0 loses its inflate context after fragmented compressed messages, so
# only captures without fragments are compared.
COMPARED = ["aiohttp-plain.pcap", "websockets-deflate.pcap", "websockets-nocontext.pcap",
            "ipv6-sll2.pcap", "mixed.pcapng"]


def tshark_texts(path: Path) -> list[tuple[int, str]]:
    tshark = shutil.which("tshark")
    assert tshark, "tshark must be installed (.ci/run installs it)"
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", "websocket.opcode == 1", "-T", "fields",
         "-e", "tcp.srcport", "-e", "websocket.payload.text", "-E", "occurrence=a",
         "-E", "separator=\t"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        port, _, text = line.partition("\t")
        rows.append((int(port.split(",")[0]), text))
    return rows


@pytest.mark.parametrize("name", COMPARED)
def test_text_messages_agree_with_tshark(name: str) -> None:
    path = SAMPLES / name
    theirs = tshark_texts(path)
    result = wsanalyze.analyze(path)
    m = result.messages[result.messages["type"] == "text"]
    ours = [(int((row.client if row.direction == "c2s" else row.server).rsplit(":", 1)[1]),
             row.text) for row in m.itertuples()]
    assert len(theirs) == len(ours) > 0
    for (tport, ttext), (oport, otext) in zip(theirs, ours, strict=True):
        assert tport == oport
        if "\\" in ttext or not otext.isprintable():
            continue  # tshark escapes control characters in field output
        assert ttext == otext
