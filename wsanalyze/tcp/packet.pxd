# Cython declarations for packet.py (WSANALYZE_COMPILER=cython, setup.py): header
# offsets as C integers, so the slices and bound checks of the fast path are C.
# mypyc and the pure-Python build ignore this file.
cimport cython


@cython.final
cdef class PacketParser:
    cdef public dict skipped, first_packet, _bad_linktypes

    cpdef parse(self, pkt)
    @cython.locals(n=Py_ssize_t, ip_end=Py_ssize_t, start=Py_ssize_t)
    cpdef _ethernet(self, pkt)
    @cython.locals(n=Py_ssize_t, start=Py_ssize_t, ip_end=Py_ssize_t, t=Py_ssize_t)
    cpdef _tcp(self, pkt, data, t, ip_end, src, dst)
