"""Cython against mypyc: the same 22 modules compiled each way, timed side by side.

Builds each variant from this tree's files into its own temporary directory
(``setup.py build_ext --inplace``, so nothing is installed anywhere), then runs
``wsanalyze summary CAPTURE -q --format json`` and ``wsanalyze messages CAPTURE
--format jsonl`` under each, interleaved (the order rotates each round), with
this Python and ``PYTHONPATH`` set to the variant's directory:

* ``pure``: the .py files (``WSANALYZE_NO_EXTENSIONS=1``);
* ``mypyc``: setup.py's default build;
* ``cython-untyped``: ``WSANALYZE_COMPILER=cython`` with the .pxd files removed;
* ``cython``: ``WSANALYZE_COMPILER=cython`` with the .pxd files (cdef classes,
  typed attributes, ``cython.locals``; the hot records as cdef class
  dataclasses, see :data:`RECORD`).

``--build-python`` is the interpreter that compiles: it needs setuptools>=77,
Cython 3 and mypy (mypyc), and must be the same Python version as this one.
``--tree NAME=DIR`` times an already built tree instead of building NAME
(e.g. ``--tree mypyc=/tmp/ci4/main`` for main's compiled build).

    python benchmarks/bench_compilers.py /work/data/100m-nofrag.pcap \\
        --build-python /work/venv-cython/bin/python [--runs 3] [--keep DIR]

Prints the median user CPU time (``ru_utime`` of the child; on a shared
machine wall time mostly measures the wait for a core), peak RSS, the speed-up
over pure and over mypyc, ``wsanalyze --version`` of each variant and the load
average before and after.  Every variant's output must be byte-identical
(sha256 of stdout), else it exits with an error.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ["pure", "mypyc", "cython-untyped", "cython"]
COMMANDS = {"summary": ["summary", "-q", "--format", "json"],
            "jsonl": ["messages", "--format", "jsonl"]}
PURE = {"WSANALYZE_NO_EXTENSIONS": "1"}


PXD = Path(__file__).resolve().parent / "cython"
"""The typed variant's .pxd files, laid out like the package.  They live here,
not beside the modules: Cython is an experiment, slower than mypyc, that no
release builds (benchmarks/README.md, "Cython against mypyc").  They declare the
classes of git ``1dfa76c`` (main after the native records, issue 18 session 5); a
later change to one of those classes' attributes, fields or cpdef signatures
needs the same change here before this variant builds (a missing attribute
builds, and fails at run time with an AttributeError)."""


RECORD = "@final\n@dataclass(init=False, slots=True, unsafe_hash=True)\nclass {}:"
CDEF_RECORD = "@dataclass(init=False, unsafe_hash=True)\nclass {}:"
"""A record's decorators (wsanalyze/sources/rawpacket.py), and what the typed
variant compiles instead when a .pxd declares the record a cdef class: Cython
3.3 turns ``dataclass`` on a cdef class into its own extension-type dataclass,
which takes no ``slots`` argument (the fields are C slots anyway) and rejects
``typing.final`` ("Cdef functions/classes cannot take arbitrary decorators";
the .pxd's ``@cython.final`` says the same)."""


def cdef_records(dest: Path) -> None:
    """Rewrite the decorators of the records the .pxd files declare (RECORD →
    CDEF_RECORD) in the copied .py files: two tokens, nothing else changes."""
    for pxd in (PXD / "wsanalyze").rglob("*.pxd"):
        py = dest / pxd.relative_to(PXD).with_suffix(".py")
        text = source = py.read_text()
        for name in re.findall(r"^cdef class (\w+):", pxd.read_text(), re.MULTILINE):
            text = text.replace(RECORD.format(name), CDEF_RECORD.format(name))
        if text != source:
            py.write_text(text)


def copy_tree(dest: Path, *, pxd: bool) -> None:
    """This tree's package and build files (the working copy, not a commit), with
    the .pxd files laid beside the modules for the typed Cython variant."""
    ignore = shutil.ignore_patterns("*.so", "*.c", "*.pxd", "__pycache__")
    shutil.copytree(ROOT / "wsanalyze", dest / "wsanalyze", ignore=ignore)
    if pxd:
        shutil.copytree(PXD / "wsanalyze", dest / "wsanalyze", dirs_exist_ok=True)
        cdef_records(dest)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)


def build(variant: str, dest: Path, python: str) -> None:
    """Compile ``variant`` in place in ``dest`` (the pure variant needs nothing)."""
    copy_tree(dest, pxd=variant == "cython")
    if variant == "pure":
        return
    compiler = "mypyc" if variant == "mypyc" else "cython"
    env = {**os.environ, "WSANALYZE_COMPILER": compiler}
    env.pop("WSANALYZE_NO_EXTENSIONS", None)
    print(f"building {variant} in {dest} ...", file=sys.stderr, flush=True)
    subprocess.run([python, "setup.py", "-q", "build_ext", "--inplace", "-j", "2"], cwd=dest,
                   env=env, check=True, stdout=subprocess.DEVNULL)


def variant_env(variant: str, tree: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), **(PURE if variant == "pure" else {})}
    if variant != "pure":
        env.pop("WSANALYZE_NO_EXTENSIONS", None)
    return env


def run_once(env: dict[str, str], args: list[str]) -> tuple[float, float, str]:
    """User CPU seconds, peak RSS (MiB) and sha256 of stdout of one run."""
    # cwd: ``-m`` puts the working directory first on sys.path.
    proc = subprocess.Popen([sys.executable, "-m", "wsanalyze", *args], env=env,
                            cwd=env["PYTHONPATH"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    digest = hashlib.sha256()
    while chunk := proc.stdout.read(1 << 20):
        digest.update(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        sys.exit(f"{args[0]} failed (status {status}) with PYTHONPATH={env['PYTHONPATH']}")
    return usage.ru_utime, usage.ru_maxrss / 1024, digest.hexdigest()


def describe(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "wsanalyze", "--version"], env=env,
                          cwd=env["PYTHONPATH"], capture_output=True, text=True,
                          check=True).stdout.strip()


def time_all(trees: dict[str, Path], capture: Path, runs: int, commands: list[str]) -> None:
    """Interleaved runs of every variant; a table per command."""
    names = list(trees)
    envs = {name: variant_env(name, tree) for name, tree in trees.items()}
    for name in names:
        print(f"{name:>15}: {describe(envs[name])}  [{trees[name]}]")
    print(f"load average before: {os.getloadavg()}")
    for cmd in commands:
        args = COMMANDS[cmd]
        results: dict[str, list[tuple[float, float, str]]] = {n: [] for n in names}
        for r in range(runs):
            for name in names[r % len(names):] + names[:r % len(names)]:
                results[name].append(run_once(envs[name], [*args, str(capture)]))
        digests = {d for rs in results.values() for _, _, d in rs}
        if len(digests) != 1:
            sys.exit(f"{cmd}: outputs differ between variants: {digests}")
        user = {n: statistics.median(u for u, _, _ in rs) for n, rs in results.items()}
        print(f"\n{cmd} ({capture.name}, {runs} runs, median user CPU; outputs identical)")
        print(f"{'variant':>15} {'user s':>8} {'RSS MiB':>8} {'vs pure':>8} {'vs mypyc':>9}")
        for n in names:
            rss = max(m for _, m, _ in results[n])
            vs_pure = f"{user['pure'] / user[n]:.2f}x" if "pure" in user else "-"
            vs_mypyc = f"{user['mypyc'] / user[n]:.2f}x" if "mypyc" in user else "-"
            print(f"{n:>15} {user[n]:8.2f} {rss:8.1f} {vs_pure:>8} {vs_mypyc:>9}")
    print(f"\nload average after: {os.getloadavg()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--build-python", default=sys.executable)
    ap.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                    help="time the already built DIR as variant NAME")
    ap.add_argument("--keep", type=Path, help="build into this directory and keep it")
    args = ap.parse_args()
    given = {k: Path(v).resolve() for k, _, v in (t.partition("=") for t in args.tree)}
    base = args.keep or Path(tempfile.mkdtemp(prefix="wsanalyze-compilers-"))
    trees: dict[str, Path] = {}
    try:
        for variant in args.variants.split(","):
            if variant in given:
                trees[variant] = given[variant]
                continue
            if variant not in VARIANTS:
                sys.exit(f"unknown variant {variant!r} (one of {', '.join(VARIANTS)})")
            trees[variant] = base / variant
            if not (trees[variant] / "wsanalyze").exists():
                build(variant, trees[variant], args.build_python)
        time_all(trees, args.capture.resolve(), args.runs, args.commands.split(","))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
