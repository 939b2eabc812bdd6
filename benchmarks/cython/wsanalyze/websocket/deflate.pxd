# Cython declarations for deflate.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython

@cython.final
cdef class MessageInflater:
    cdef public object _check, _d, _history, _kept, _known, _tail_fed, capped, consumed
    cdef public object error, error_detail, history_lost, lost_by_capture, max_inflate
    cdef public object max_keep, no_context_takeover, total, violation, window_bits
    cdef public list _parts, _raw
