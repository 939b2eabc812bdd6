"""Build of wsanalyze: pure Python, plus the hot path compiled with mypyc when possible.

The metadata is in pyproject.toml; this file only adds the optional extension
modules.  The same .py sources are compiled by mypyc into C extensions that sit
beside them; ``wsanalyze/_build.py`` decides at import time which one runs.

``WSANALYZE_COMPILER=cython`` compiles the same modules with Cython instead (an
experiment, benchmarks/README.md "Cython against mypyc"): pure-Python mode, with
the C types in ``.pxd`` files that benchmarks/bench_compilers.py lays beside the
hottest modules (they are kept in benchmarks/cython/; without them it is the
untyped Cython build).  Cython is not a build requirement, so that build needs it
installed and ``pip install --no-build-isolation .``.

The compiled build is optional in every way: ``WSANALYZE_NO_EXTENSIONS=1`` (any
value but "" and "0") installs pure Python; a missing mypyc or a failing C
compiler gives a warning and a pure-Python install, never a failed install.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = [
    # Record reading and packet parsing.
    # (Not sources/records.py: it defines the exception classes, see its docstring.)
    "sources/rawpacket.py", "sources/pcap.py", "tcp/packet.py", "tcp/segment.py",
    # TCP reassembly.
    "tcp/events.py", "tcp/reassembly.py", "tcp/direction.py", "tcp/streams.py",
    # WebSocket framing, inflate, message assembly and checks.
    "websocket/frames.py", "websocket/deflate.py", "websocket/scan.py",
    "websocket/decoder.py", "websocket/events.py", "websocket/framing.py",
    "websocket/messages.py", "websocket/checks.py", "websocket/state.py",
    "websocket/modes.py",
    # Connections and row building.
    "tracker.py", "sequencer.py", "pipeline.py",
    # The JSON Lines line of a message row (messages --format jsonl).
    "output/jsonl_line.py",
]
"""The modules compiled by mypyc, relative to wsanalyze/: the per-packet and
per-message path, chosen by profiling ``summary`` and ``messages`` (see
benchmarks/README.md, "The compiled build").  The ONE list: add a module here
(it must pass ``mypy --strict``; see the overrides in pyproject.toml)."""

MYPY_FLAGS = ["--ignore-missing-imports", "--follow-imports=silent", "--no-warn-unused-configs"]
"""The build environment has none of the runtime dependencies (pandas,
cryptography...): mypyc treats them as Any, and reports no errors in the modules
it only follows.  ``make lint`` type-checks everything with them installed."""

OFF_VALUES = ("", "0")


def extensions_disabled() -> bool:
    """``WSANALYZE_NO_EXTENSIONS`` is set to something other than "" or "0"."""
    return os.environ.get("WSANALYZE_NO_EXTENSIONS", "") not in OFF_VALUES


def _warn(message: str) -> None:
    print(f"wsanalyze: {message}; installing the pure-Python build", file=sys.stderr)


BUILDING = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}
"""setup.py commands that compile; the others (egg_info, dist_info, sdist: the
metadata steps of pip and ``python -m build``) skip mypyc, which takes a minute."""


def cython_modules() -> list[Any]:
    """The Cython extensions of the COMPILED modules (WSANALYZE_COMPILER=cython).

    ``annotation_typing`` is off: the annotations are for mypy, and Cython
    would turn ``float`` ones into C doubles (``int`` results printed as
    ``1.0``); the C types come from the ``.pxd`` files only."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        _warn("Cython is not available (WSANALYZE_COMPILER=cython)")
        return []
    directives = {"language_level": "3", "annotation_typing": False}
    return list(cythonize([f"wsanalyze/{m}" for m in COMPILED], compiler_directives=directives,
                          nthreads=os.cpu_count() or 1, quiet=True))


def ext_modules() -> list[Any]:
    """The mypyc (or Cython) extensions, or [] for a pure-Python build or a metadata step."""
    if extensions_disabled() or not BUILDING & set(sys.argv[1:]):
        return []
    compiler = os.environ.get("WSANALYZE_COMPILER", "mypyc") or "mypyc"
    if compiler == "cython":
        return cython_modules()
    if compiler != "mypyc":
        print(f"wsanalyze: unknown WSANALYZE_COMPILER={compiler!r} (mypyc or cython); "
              "using mypyc", file=sys.stderr)
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not available")
        return []
    try:
        # opt_level 3: the build time is ~1 min either way and 3 runs fastest.
        return list(mypycify([*MYPY_FLAGS, *(f"wsanalyze/{m}" for m in COMPILED)],
                             opt_level="3", group_name="wsanalyze",
                             verbose=False))
    except BaseException:  # mypy exits via SystemExit on type errors
        traceback.print_exc()
        _warn("mypyc could not compile the hot path")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that turns a compiler failure into a warning: the .py files
    the extensions were compiled from are installed either way."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any compiler or linker failure
            _warn(f"the C build failed ({exc})")
            # mypyc's modules share one library: all of them or none (and a
            # half-compiled Cython build would be no build to measure).
            for ext in self.extensions:
                path = self.get_ext_fullpath(ext.name)
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []

    def get_outputs(self) -> list[str]:
        return [p for p in super().get_outputs() if os.path.exists(p)]

setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
