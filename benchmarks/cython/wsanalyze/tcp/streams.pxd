# Cython declarations for streams.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython
from wsanalyze.tcp.segment cimport TcpSegment


@cython.final
cdef class _Conversation:
    cdef public object closing, index, last


@cython.final
cdef class StreamNumbers:
    cdef public dict _streams
    cdef public object _next
    cdef public Py_ssize_t _count

    @cython.locals(entry=_Conversation)
    cpdef number(self, TcpSegment seg, ts)
