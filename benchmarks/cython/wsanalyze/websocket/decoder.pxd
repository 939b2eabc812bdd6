# Cython declarations for decoder.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython
from wsanalyze.websocket.state cimport Side


@cython.final
cdef class ConnectionDecoder:
    cdef public object _ended, info, likely_plain_http, limits, message_count
    cdef public object not_websocket, request_problems, syn_seen, want_frames, want_messages
    cdef public object frame_count
    cdef public tuple sides
    cdef public list events

    @cython.locals(side=Side)
    cpdef list data(self, ts, packet, direction, offset, data)
    cpdef list _take(self)
