# Cython declarations for events.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.  The frame and message
# records as extension types (see sources/rawpacket.pxd).
cimport cython


@cython.final
cdef class FrameEvent:
    cdef public object direction, index, ts, packet, fin, rsv1, rsv2, rsv3, opcode, masked
    cdef public object mask_key, header_bytes, payload_length, stream_offset, message


@cython.final
cdef class MessageEvent:
    cdef public object direction, index, ts_start, ts, packet, type, opcode, frames
    cdef public object compressed, wire_bytes, raw_length, length, payload, truncated
    cdef public object text, close_code, close_reason, complete, error
