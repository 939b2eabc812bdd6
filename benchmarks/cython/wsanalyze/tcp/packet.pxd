# Cython declarations for packet.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
#
# The link-layer handlers (_ethernet...) stay plain methods: _BY_LINKTYPE holds
# them as class attributes, and Cython 3.3 turns a cpdef method read that way
# into a C function pointer of the wrong signature (a C compiler warning,
# undefined behaviour).
cimport cython
# An alias: the .py imports RawPacket from sources.records (not compiled), and
# a cimported name cannot be assigned by an import.
from wsanalyze.sources.rawpacket cimport RawPacket as _RawPacket


@cython.final
cdef class PacketParser:
    cdef public dict skipped, first_packet, _bad_linktypes

    cpdef parse(self, _RawPacket pkt)
    @cython.locals(n=Py_ssize_t, start=Py_ssize_t, ip_end=Py_ssize_t, t=Py_ssize_t)
    cpdef _tcp(self, _RawPacket pkt, data, t, ip_end, src, dst)
