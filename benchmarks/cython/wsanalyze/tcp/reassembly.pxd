# Cython declarations for reassembly.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython
from wsanalyze.tcp.direction cimport Conn, Half
from wsanalyze.tcp.events cimport StreamData
from wsanalyze.tcp.segment cimport TcpSegment


@cython.final
cdef class _Closed:
    cdef public object isns, keys, ts


@cython.final
cdef class TcpReassembler:
    cdef public object _max_buffered, _ack_grace, _max_connections, _closed_fifo, _next_id
    cdef public dict _halves, _open, _closed
    cdef public list _lru

    @cython.locals(h=Half, conn=Conn, peer=Half, out=list, ev=StreamData)
    cpdef list feed(self, packet, ts, TcpSegment seg)
    @cython.locals(conn=Conn, peer=Half, out=list)
    cpdef list _slow(self, packet, ts, TcpSegment seg, Half h)
