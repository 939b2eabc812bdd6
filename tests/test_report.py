"""``wsanalyze report``: bug-ticket reports in Markdown and HTML on crafted violation
captures (tests/rulecases.py), checked against what the case sent and against tshark;
the HTML opened in headless Chromium; bad input."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib import image as mpimg

from tests.pcaptools import write_conversations
from tests.reportcaptures import http_then_websocket, offending_frame, plain_http, rule_case
from wsanalyze.cli import main
from wsanalyze.rules import RULES

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
CLEAN = SAMPLES / "websockets-deflate.pcap"


def header_length(frame: bytes) -> int:
    n = 2 + {126: 2, 127: 8}.get(frame[1] & 0x7F, 0)
    return n + (4 if frame[1] & 0x80 else 0)


def unmasked_start(frame: bytes, n: int) -> bytes:
    hlen = header_length(frame)
    payload = frame[hlen:hlen + n]
    if not frame[1] & 0x80:
        return payload
    key = frame[hlen - 4:hlen]
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def hexes(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def report(capture: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["report", str(capture), "-o", str(out), "-q", *extra])
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


CASES = ["frame.client-unmasked", "frame.reserved-bits", "frame.non-minimal-length/64-bit",
         "close.invalid-code", "control.too-long"]


@pytest.mark.parametrize("name", CASES)
def test_report_makes_the_case(name: str, tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case(name, capture)
    row = case.rows[0]
    rule = RULES[row.rule]
    frame = offending_frame(case)
    header = hexes(frame[:header_length(frame)])
    payload = hexes(unmasked_start(frame, 16))
    client, server = case.conv.client, case.conv.server
    address_filter = (f"ip.addr eq {client[0]} and ip.addr eq {server[0]} and "
                      f"tcp.port eq {client[1]} and tcp.port eq {server[1]}")
    md_code, md = report(capture, tmp_path / "r.md", "--no-plots")
    html_code, page = report(capture, tmp_path / "r.html", "--no-plots")
    assert md_code == html_code == 0
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    for doc in (md, text):
        assert f"{rule.severity.upper()} `{row.rule}`" in md
        assert row.rule in doc and rule.reference in doc
        assert rule.requirement in doc
        assert f"Packet {row.packet}" in doc
        assert f"frame.number == {row.packet}" in doc
        assert address_filter in doc
        assert f"header   {header}" in doc
        assert payload in doc
        assert f"◀ {row.rule}" in doc
        assert "FAIL" in doc
    # The line pointing at the offending field is highlighted in the HTML.
    marked = re.findall(r"<mark>(.*?)</mark>", page)
    assert any(f"◀ {row.rule}" in m for m in marked)


def test_report_filters_select_the_packet_in_tshark(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case("frame.client-unmasked", capture)
    _, md = report(capture, tmp_path / "r.md", "--no-plots")
    filters = re.findall(r"Wireshark: (.*)", md)[0]
    shown = [f.strip("`") for f in filters.split(" · ")]
    assert shown[0] == f"frame.number == {case.rows[0].packet}"
    out = subprocess.run(["tshark", "-r", str(capture), "-Y", " and ".join(
        f"({f})" for f in shown), "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(case.rows[0].packet)]


def test_reaction_and_context(tmp_path: Path) -> None:
    """close.invalid-code: the server carried on with one message, then closed with
    1002; the client's Close (the offending frame) is marked in the context."""
    capture = tmp_path / "case.pcap"
    case = rule_case("close.invalid-code", capture)
    _, md = report(capture, tmp_path / "r.md", "--no-plots")
    assert re.search(r"Then: The server carried on \(1 more data message\(s\)\), then "
                     r"closed with code 1002", md)
    # The case's Close carries 03 ed (1005) and "closing".
    assert re.search(rf"c2s  packet {case.rows[0].packet} .* close 9 B: code 1005 closing  "
                     r"◀ offending", md)


def test_tcp_stream_filter_agrees_with_tshark(tmp_path: Path) -> None:
    capture = tmp_path / "http-then-ws.pcap"
    http_then_websocket("frame.client-unmasked", capture)
    streams = subprocess.run(["tshark", "-r", str(capture), "-Y", "websocket", "-T", "fields",
                              "-e", "tcp.stream"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert set(streams) == {"2"}
    _, md = report(capture, tmp_path / "r.md", "--no-plots")
    assert "`tcp.stream eq 2`" in md


def test_markdown_images_in_a_folder(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    rule_case("frame.client-unmasked", capture)
    code, md = report(capture, tmp_path / "bug.md")
    assert code == 0
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert "bug-images/timeline-connection0.png" in links
    assert "bug-images/throughput.png" in links
    for link in links:
        png = (tmp_path / link).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Long parts are folded for issue trackers.
    assert md.count("<details>") == md.count("</details>") >= 3


def test_clean_capture_is_a_short_certificate(tmp_path: Path) -> None:
    code, md = report(CLEAN, tmp_path / "ok.md", "--no-plots")
    assert code == 0
    assert "**PASS**" in md
    checks = sum(1 for r in RULES.values() if r.severity != "info")
    assert f"{checks} checks of RFC 6455 and RFC 7692 were applied to 3 WebSocket" in md
    assert "## Violations\n\nNone." in md
    assert "Checks passed by rule family: handshake 7, frame 7" in md
    assert len(md.splitlines()) < 60


def test_export_linked_from_the_report(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    rule_case("frame.client-unmasked", capture)
    code, page = report(capture, tmp_path / "r.html", "--no-plots", "--export")
    assert code == 0
    assert '<a href="r.pcapng">r.pcapng</a>' in page
    count = subprocess.run(["tshark", "-r", str(tmp_path / "r.pcapng"), "-T", "fields", "-e",
                            "frame.number"], capture_output=True, text=True, check=True)
    original = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-e",
                               "frame.number"], capture_output=True, text=True, check=True)
    assert len(count.stdout.split()) == len(original.stdout.split())


def test_filters_choose_what_is_shown(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    rule_case("ping.unanswered/no-close", capture)
    _, every = report(capture, tmp_path / "all.md", "--no-plots")
    assert "`ping.unanswered`" in every and "`close.no-close-handshake`" in every
    _, one = report(capture, tmp_path / "one.md", "--no-plots", "--rule", "ping.unanswered")
    assert "`ping.unanswered`" in one and "`close.no-close-handshake`" not in one
    _, errors = report(capture, tmp_path / "e.md", "--no-plots", "--severity", "error")
    assert "## Violations\n\nNone." in errors
    _, other = report(capture, tmp_path / "c.md", "--no-plots", "--connection", "7")
    assert "## Violations\n\nNone." in other


# ------------------------------------------------------------------ headless Chromium

CHROMIUM = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium(page: Path, tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Open ``page``; its standard output and the URLs the page itself requested
    (from Chromium's net log; the browser's own background requests have no origin)."""
    assert Path(CHROMIUM[0]).exists(), "chromium must be installed (.ci/run installs it)"
    profile = tmp_path / f"profile-{page.stem}-{len(args)}"
    netlog = tmp_path / f"net-{page.stem}-{len(args)}.json"
    proc = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", f"--log-net-log={netlog}",
                           *args, page.as_uri()], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {e["params"]["url"] for e in log["events"]
            if e["type"] == start and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"}
    return proc.stdout, urls


def test_network_check_sees_page_requests(tmp_path: Path) -> None:
    """The net-log check of the next test does catch a page loading from the network."""
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><title>c</title><img src="http://example.invalid/x.png">')
    _, urls = chromium(page, tmp_path, "--dump-dom")
    assert urls == {"http://example.invalid/x.png"}


@pytest.mark.parametrize("which", ["violating", "clean"])
def test_html_report_in_headless_chromium(which: str, tmp_path: Path) -> None:
    if which == "violating":
        capture = tmp_path / "case.pcap"
        rule_case("frame.client-unmasked", capture)
    else:
        capture = CLEAN
    page = tmp_path / f"{which}.html"
    code, text = report(capture, page)
    assert code == 0
    # Self-contained: no script, no stylesheet or image to fetch.
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    dom, urls = chromium(page, tmp_path, "--dump-dom")
    assert urls == set()
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    assert title == f"WebSocket protocol report: {capture.name}"
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" '
                        r'height="(\d+)"', dom)
    # Violating: the connection's timeline and the 5 other overview plots; clean: 6.
    assert len(images) == text.count("<img ") == 6
    for data, width, height in images:
        pixels = mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        assert pixels.shape[:2] == (int(height), int(width))
        assert pixels.std() > 0.01  # a picture, not a blank
    shot = tmp_path / f"{which}.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000")
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05


# ------------------------------------------------------------------ bad input


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wsanalyze", *args], capture_output=True,
                          text=True, timeout=300)


def test_empty_capture_is_one_line_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    out = tmp_path / "r.html"
    proc = run("report", str(empty), "-o", str(out))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("wsanalyze: error: ")
    assert "empty" in proc.stderr
    assert not out.exists()


def test_capture_without_packets_gives_a_short_report(tmp_path: Path) -> None:
    header_only = tmp_path / "none.pcap"
    header_only.write_bytes(CLEAN.read_bytes()[:24])
    code, md = report(header_only, tmp_path / "r.md")
    assert code == 0
    assert "**NO WEBSOCKET** — No WebSocket connection in this capture (0 TCP " in md
    assert "| Packets | 0 |" in md


def test_non_websocket_capture(tmp_path: Path) -> None:
    capture = tmp_path / "http.pcap"
    write_conversations(capture, [plain_http(50001, 1_700_000_000.0),
                                  plain_http(50002, 1_700_000_010.0)])
    code, md = report(capture, tmp_path / "r.md", "--fail-on", "info")
    assert code == 0
    assert "No WebSocket connection in this capture (2 TCP conversation(s), " in md
    assert "| TCP conversations | 2 |" in md


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_unwritable_output(where: str, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "r.html" if where == "missing-folder" else tmp_path
    proc = run("report", str(CLEAN), "-o", str(out), "--format", "html")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"wsanalyze: error: cannot write {out}: ")


def test_format_from_extension_or_usage_error(tmp_path: Path) -> None:
    proc = run("report", str(CLEAN), "-o", str(tmp_path / "r.txt"))
    assert proc.returncode == 2
    assert "name it .html or .md" in proc.stderr
    proc = run("report", str(CLEAN), "-o", str(tmp_path / "r.txt"), "--format", "md",
               "--no-plots", "-q")
    assert proc.returncode == 0
    assert (tmp_path / "r.txt").read_text().startswith("# WebSocket protocol report")


@pytest.mark.parametrize(("name", "line"), [
    ("handshake.bad-version", "Sec-WebSocket-Version: 8   ◀ handshake.bad-version"),
    ("handshake.request-invalid/http-1.0", "GET /feed?v=2 HTTP/1.0   ◀ "
                                           "handshake.request-invalid"),
    ("deflate.bad-negotiation/repeated", "Sec-WebSocket-Extensions: permessage-deflate; "
     "server_no_context_takeover; server_no_context_takeover   ◀ deflate.bad-negotiation"),
])
def test_handshake_violations_show_the_http_head(name: str, line: str, tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case(name, capture)
    head = (case.oracles[-1].request if case.rows[0].direction == "c2s"
            else case.oracles[-1].response)
    assert line.split("   ◀")[0].encode() in head  # the line as the case sent it
    _, md = report(capture, tmp_path / "r.md", "--no-plots")
    assert f"\n{line}\n" in md


def test_unfollowable_header_is_dissected(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case("frame.length-msb", capture)
    sent = next(o.data for o in case.oracles if o.sender == "s2c")
    _, md = report(capture, tmp_path / "r.md", "--no-plots")
    start = sent.index(b"\x82\x7f\x80")  # the header with the length's top bit set
    assert f"header   {hexes(sent[start:start + 10])}" in md
    assert "extended length 9223372036854775813   ◀ frame.length-msb" in md


def test_capture_quality_kept_apart_from_violations(tmp_path: Path) -> None:
    capture = tmp_path / "case.pcap"
    case = rule_case("capture.gap", capture)
    gap = case.info[0]
    code, md = report(capture, tmp_path / "r.md", "--no-plots", "--fail-on", "warning")
    assert code == 0
    quality = md.split("### Capture quality")[1].split("## Violations")[0]
    assert "- `capture.gap` ×1 (connection 0): " in quality
    assert f"packet {gap.packet} follows the gap" in quality
    assert "1 message(s) incomplete" in quality
    assert "**PASS**" in md and "## Violations\n\nNone." in md
    assert report(capture, tmp_path / "r.md", "--no-plots", "--fail-on", "info")[0] == 1
