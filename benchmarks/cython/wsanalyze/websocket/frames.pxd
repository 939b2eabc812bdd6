# Cython declarations for frames.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.  A record as an extension
# type: see sources/rawpacket.pxd.
cimport cython


@cython.final
cdef class FrameHeader:
    cdef public object fin, rsv1, rsv2, rsv3, opcode, masked, mask_key, length
    cdef public object header_length, minimal_length, length_msb
