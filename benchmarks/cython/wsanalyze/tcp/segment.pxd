# Cython declarations for segment.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.  A record as an extension
# type: see sources/rawpacket.pxd.
cimport cython


@cython.final
cdef class TcpSegment:
    cdef public object src, sport, dst, dport, seq, ack, flags, payload, missing
