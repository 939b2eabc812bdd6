# Cython declarations for events.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.  StreamData, the one event
# per data packet, as an extension type (see sources/rawpacket.pxd); the rarer
# events stay Python classes.
cimport cython


@cython.final
cdef class StreamData:
    cdef public object conn, direction, ts, packet, offset, data
