"""Which build runs: the compiled hot path (mypyc, or Cython as an experiment) or pure
Python (one source, two builds).

A compiled install has C extension modules (``reassembly.cpython-311-....so``)
beside the ``.py`` files they were compiled from; Python's import system prefers
the extension.  ``WSANALYZE_NO_EXTENSIONS=1`` (any value but "" and "0") makes
every ``wsanalyze.*`` module load from its ``.py`` instead: :func:`install`, run
by ``wsanalyze/__init__.py`` before any other submodule is imported, puts a
finder first on ``sys.meta_path`` that only knows source files.  This is the
same switch as at install time (setup.py), so one variable gives the pure build
either way, as ``AIOHTTP_NO_EXTENSIONS`` does for aiohttp.

This module and ``wsanalyze/__init__.py`` are never compiled: they must decide
before any compiled code is loaded.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

ENV = "WSANALYZE_NO_EXTENSIONS"
PACKAGE_DIR = Path(__file__).resolve().parent
GROUP_LIBRARY = "wsanalyze__mypyc"
"""The top-level module holding the compiled code of every compiled module
(``group_name`` in setup.py); each ``wsanalyze.*`` extension is a stub into it.
A Cython build (``WSANALYZE_COMPILER=cython``) has no such library: each
extension holds its own code."""


def extensions_disabled() -> bool:
    """``WSANALYZE_NO_EXTENSIONS`` asks for pure Python (set, and not "" or "0")."""
    return os.environ.get(ENV, "") not in ("", "0")


class SourceOnlyFinder(MetaPathFinder):
    """Finds ``wsanalyze.*`` modules among ``.py`` files only, so extension modules
    beside them are ignored (bytecode caching works as usual)."""

    def __init__(self) -> None:
        self._finders: dict[str, importlib.machinery.FileFinder] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if not fullname.startswith("wsanalyze.") or path is None:
            return None
        for entry in path:
            finder = self._finders.get(entry)
            if finder is None:
                finder = importlib.machinery.FileFinder(
                    entry, (importlib.machinery.SourceFileLoader,
                            importlib.machinery.SOURCE_SUFFIXES))
                self._finders[entry] = finder
            spec = finder.find_spec(fullname, target)
            if spec is not None and spec.origin is not None:
                return spec
        return None


def install() -> None:
    """Honour ``WSANALYZE_NO_EXTENSIONS`` for the rest of this process.

    The finder goes just before the standard path finder, not first: finders
    that wrap the ones after them (atheris's coverage instrumentation) must
    still see its specs; setuptools' editable-install finder comes after the
    path finder, so it is overridden as well."""
    if not extensions_disabled() or any(isinstance(f, SourceOnlyFinder) for f in sys.meta_path):
        return
    at = next((i for i, f in enumerate(sys.meta_path) if f is importlib.machinery.PathFinder),
              len(sys.meta_path))
    sys.meta_path.insert(at, SourceOnlyFinder())


def compiled_modules() -> list[str]:
    """The ``wsanalyze`` modules that have a compiled extension beside their .py
    (dotted names, sorted); empty when extensions are disabled."""
    if extensions_disabled():
        return []
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    names = []
    for ext in PACKAGE_DIR.rglob("*"):
        source = ext.with_name(ext.name.split(".")[0] + ".py")
        if ext.name.endswith(suffixes) and source.exists():
            rel = source.relative_to(PACKAGE_DIR).with_suffix("")
            names.append(".".join(("wsanalyze", *rel.parts)))
    return sorted(names)


def _extension(name: str) -> Path | None:
    """The extension file of compiled module ``name`` (dotted), if any."""
    source = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if (ext := source.with_name(source.name + suffix)).exists():
            return ext
    return None


def compiler(names: list[str]) -> str:
    """"mypyc" or "cython": which compiler built the extensions of ``names``.

    mypyc's per-module extensions are stubs that import :data:`GROUP_LIBRARY` by
    name, so the name is in their bytes; Cython's hold their own code.  (Asking
    ``find_spec(GROUP_LIBRARY)`` is not enough: a Cython build in place leaves an
    earlier mypyc build's library where it was.)"""
    ext = _extension(names[0]) if names else None
    return "mypyc" if ext is None or GROUP_LIBRARY.encode() in ext.read_bytes() else "cython"


def stale_modules() -> list[str]:
    """Compiled modules whose .py (or Cython .pxd) changed after the build: the
    extension still runs, so the build must be redone (``make build``).  The
    build time of a mypyc build is that of its shared library
    (:data:`GROUP_LIBRARY`; the per-module files are stubs that a rebuild
    leaves alone when they do not change); a Cython build's is each extension's.
    Only in a source tree (an editable install): installing a wheel gives the
    files new times."""
    if not (PACKAGE_DIR.parent / "setup.py").exists():
        return []
    names = compiled_modules()
    if compiler(names) == "cython":
        built = {name: ext.stat().st_mtime for name in names
                 if (ext := _extension(name)) is not None}
        suffixes: tuple[str, ...] = (".py", ".pxd")
    else:
        spec = importlib.util.find_spec(GROUP_LIBRARY)
        if spec is None or spec.origin is None:
            return []
        built = dict.fromkeys(names, os.stat(spec.origin).st_mtime)
        suffixes = (".py",)
    stale = []
    for name, when in built.items():
        source = PACKAGE_DIR.joinpath(*name.split(".")[1:])
        if any((f := source.with_suffix(s)).exists() and f.stat().st_mtime > when
               for s in suffixes):
            stale.append(name)
    return stale


def describe() -> str:
    """The build in words, for ``wsanalyze --version``."""
    names = compiled_modules()
    if not names:
        why = f" ({ENV} is set)" if extensions_disabled() else ""
        return f"pure Python{why}"
    stale = stale_modules()
    note = f"; {len(stale)} older than their .py: rebuild" if stale else ""
    return f"compiled: {compiler(names)}, {len(names)} modules{note}"
