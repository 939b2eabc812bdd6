"""Plots render headless on real samples, on an empty capture and on a 100 000-message
result, and the ``plot`` subcommand writes them."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.pcaptools import Conversation
from wsanalyze import plot_command, plots
from wsanalyze.analysis import AnalysisResult, analyze
from wsanalyze.output.schema import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
DEMO = ROOT / "notebooks" / "jsonrpc-demo.pcap"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def deflate_sample() -> AnalysisResult:
    return analyze(SAMPLES / "websockets-deflate.pcap")


@pytest.fixture(scope="module")
def plain_sample() -> AnalysisResult:
    return analyze(SAMPLES / "aiohttp-plain.pcap")


@pytest.fixture(scope="module")
def empty_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A capture with TCP and HTTP but no WebSocket traffic."""
    path = tmp_path_factory.mktemp("empty") / "http-only.pcap"
    conv = Conversation()
    conv.handshake()
    conv.send("c2s", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    conv.send("s2c", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    conv.close()
    conv.write(path)
    return path


def _save_png(fig: Figure, path: Path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000


def _texts(fig: Figure) -> str:
    """Every text of the figure (titles, labels, legends, notes), for assertions."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


@pytest.mark.parametrize("name", list(plots.PLOTS))
def test_plot_on_real_samples(name: str, deflate_sample: AnalysisResult,
                              plain_sample: AnalysisResult, tmp_path: Path) -> None:
    for label, result in (("deflate", deflate_sample), ("plain", plain_sample)):
        fig = plots.PLOTS[name](result)
        _save_png(fig, tmp_path / f"{name}-{label}.png")
        assert "no data" not in _texts(fig) or name == "violations_over_time"


@pytest.mark.parametrize("name", list(plots.PLOTS))
def test_plot_on_empty_capture(name: str, empty_capture: Path, tmp_path: Path) -> None:
    result = analyze(empty_capture)
    assert result.connections.empty
    fig = plots.PLOTS[name](result)
    _save_png(fig, tmp_path / f"{name}.png")
    assert "no data" in _texts(fig)


def test_plots_do_not_use_pyplot(deflate_sample: AnalysisResult) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for function in plots.PLOTS.values():
        function(deflate_sample)
    assert plt.get_fignums() == before


def test_timeline_marks_violations_and_gaps(tmp_path: Path) -> None:
    result = analyze(DEMO)
    fig = plots.timeline(result, connection=0)
    _save_png(fig, tmp_path / "timeline.png")
    text = _texts(fig)
    assert "Connection 0: 127.0.0.1:51000 → 127.0.0.1:8080" in text
    assert "violation: error (2)" in text
    assert "idle 4.9 s" in text
    assert "time since capture start (s)" in text
    with pytest.raises(ValueError, match="no connection 5"):
        plots.timeline(result, connection=5)


def test_timeline_selected_connection_keeps_capture_time(deflate_sample: AnalysisResult) -> None:
    fig = plots.timeline(deflate_sample, connection=2)
    ax = fig.axes[0]
    # Connection 2 starts about 0.1 s into the capture: the axis does not restart at 0.
    assert ax.get_xlim()[0] > 0.05


def test_throughput_bin(deflate_sample: AnalysisResult) -> None:
    fig = plots.throughput(deflate_sample, bin=0.01)
    assert "bins of 10 ms" in _texts(fig)
    with pytest.raises(ValueError):
        plots.throughput(deflate_sample, bin=0)


def test_compression_plot_estimates_uncompressed(plain_sample: AnalysisResult) -> None:
    text = _texts(plots.compression_vs_size(plain_sample))
    assert "estimate if compressed" in text


def synthetic_result(n: int = 100_000, conns: int = 4, seed: int = 1) -> AnalysisResult:
    """An AnalysisResult with ``n`` messages over ten minutes, built directly."""
    rng = np.random.default_rng(seed)
    t0 = 1.7e9
    ts = np.sort(t0 + rng.uniform(0, 600, n))
    conn = rng.integers(0, conns, n)
    kinds = rng.choice(["text", "binary", "ping", "pong"], n, p=[0.6, 0.3, 0.05, 0.05])
    length = rng.lognormal(6, 2, n).astype(np.int64)
    compressed = np.isin(kinds, ["text", "binary"])
    raw = np.where(compressed, (length * rng.uniform(0.1, 1.05, n)).astype(np.int64) + 1,
                   length)
    clients = [f"10.0.0.{c + 1}:50000" for c in range(conns)]
    messages = pd.DataFrame({
        "connection": conn, "client": [clients[c] for c in conn], "server": "10.0.0.100:443",
        "direction": np.where(rng.random(n) < 0.5, "c2s", "s2c"), "index": 0,
        "ts_start": ts - rng.uniform(0, 0.002, n), "ts": ts, "packet": np.arange(1, n + 1),
        "type": kinds, "frames": 1, "compressed": compressed, "wire_bytes": raw + 6,
        "raw_length": raw, "length": length, "payload": [b""] * n, "truncated": True,
        "text": None, "close_code": None, "close_reason": None, "complete": True,
        "error": None,
    })
    messages["index"] = messages.groupby("connection").cumcount()
    connections = pd.DataFrame({name: [None] * conns for name, _ in COLUMNS["connection"]})
    connections["connection"] = range(conns)
    connections["client"] = clients
    connections["server"] = "10.0.0.100:443"
    connections["ts_start"] = t0
    connections["ts_end"] = t0 + 600
    connections["deflate"] = True
    connections["extensions"] = "permessage-deflate"
    connections["handshake_rtt"] = 0.010
    connections["tcp_connect_rtt"] = 0.002
    nv = 2_000
    rules = rng.choice(["frame.reserved-bits", "text.invalid-utf8", "capture.gap"], nv)
    severity = {"frame.reserved-bits": "error", "text.invalid-utf8": "error",
                "capture.gap": "info"}
    violations = pd.DataFrame({
        "connection": rng.integers(0, conns, nv), "client": "", "server": "",
        "direction": rng.choice(["c2s", "s2c"], nv),
        "ts": np.sort(t0 + rng.uniform(0, 600, nv)), "packet": 1, "rule": rules,
        "severity": [severity[r] for r in rules], "reference": "", "message": "",
        "frame": None, "stream_offset": None,
    })
    frames = pd.DataFrame({name: [] for name, _ in COLUMNS["frame"]})
    return AnalysisResult(connections, messages, frames, violations)


def drawn_elements(fig: Figure) -> int:
    """Points, markers, patches, images and texts a figure draws: the work of
    rendering it, counted rather than timed."""
    n = 0
    for ax in fig.axes:
        n += sum(len(line.get_xdata()) for line in ax.get_lines())
        n += sum(len(c.get_offsets()) + len(c.get_paths()) for c in ax.collections)
        n += len(ax.patches) + len(ax.images) + len(ax.texts)
    return n


def test_large_result_plots_stay_bounded(tmp_path: Path) -> None:
    """100 000 messages draw far fewer than one element per message, and five times
    the messages at most double what is drawn (aggregation, not a point per row).
    Times are in benchmarks/bench_plots.py."""
    small, large = synthetic_result(20_000), synthetic_result()
    for name, function in plots.PLOTS.items():
        fig = function(large)
        _save_png(fig, tmp_path / f"{name}.png")
        if name in ("timeline", "message_sizes", "compression_vs_size"):
            assert "aggregated" in _texts(fig) or "per size bin" in _texts(fig), name
        big = drawn_elements(fig)
        assert 0 < big < len(large.messages) // 4, (name, big)
        assert big <= 2 * drawn_elements(function(small)), name


# ---------------------------------------------------------------------------------------
# the plot subcommand
# ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsanalyze")
    sub = parser.add_subparsers(dest="command", required=True)
    plot_command.register(sub)
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return args.func(args)


def test_plot_command_writes_every_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    out = tmp_path / "new" / "dir"
    assert _run(["plot", str(SAMPLES / "mixed.pcapng"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / f"{name}.png") for name in plots.PLOTS]
    for path in printed:
        assert Path(path).read_bytes().startswith(PNG_MAGIC)


def test_plot_command_connection_and_svg(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["plot", str(DEMO), "-o", str(tmp_path), "--connection", "0",
                 "--format", "svg"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / f"{name}-connection0.svg") for name in plots.PLOTS]
    assert b"<svg" in Path(printed[0]).read_bytes()[:500]


def test_plot_command_errors(tmp_path: Path, empty_capture: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _run(["plot", str(DEMO), "-o", str(blocker)]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert _run(["plot", str(DEMO), "-o", str(blocker / "sub")]) == 1
    assert "cannot create output folder" in capsys.readouterr().err
    assert _run(["plot", str(tmp_path / "missing.pcap"), "-o", str(tmp_path / "o")]) == 1
    assert "error" in capsys.readouterr().err
    assert _run(["plot", str(DEMO), "-o", str(tmp_path / "o"), "--connection", "3"]) == 2
    assert "no connection 3" in capsys.readouterr().err
    # An empty capture still gets its (empty) figures.
    assert _run(["plot", str(empty_capture), "-o", str(tmp_path / "e")]) == 0
    assert len(capsys.readouterr().out.split()) == len(plots.PLOTS)
    with pytest.raises(SystemExit):
        _parser().parse_args(["plot", str(DEMO)])  # -o is required
