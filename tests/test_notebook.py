"""The tutorial notebook runs top to bottom without errors and draws its figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import ipykernel  # noqa: F401  (the notebook's kernel; the test extra installs it)
import nbclient
import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK = NOTEBOOKS / "explore.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_executes_with_figures() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    assert len(images) >= 7  # timeline ×2, sizes, throughput, compression, latency, violations
    stderr = "".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream" and o.name == "stderr")
    assert "Traceback" not in stderr


def test_demo_capture_is_reproducible(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_demo_capture",
                                                  NOTEBOOKS / "make_demo_capture.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "demo.pcap")
    assert (tmp_path / "demo.pcap").read_bytes() == (NOTEBOOKS / "jsonrpc-demo.pcap").read_bytes()
