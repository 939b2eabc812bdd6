# Cython declarations for rawpacket.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.  The record is an extension
# type (a cdef class dataclass); bench_compilers.py strips the ``@final`` and
# ``slots=True`` of its decorators, which Cython 3.3 rejects on a cdef class.
# The fields are declared in the .py's order: it is the dataclass's field order.
cimport cython


@cython.final
cdef class RawPacket:
    cdef public object number, ts, linktype, data, orig_len
