# Cython declarations for direction.py (WSANALYZE_COMPILER=cython, setup.py):
# Conn and Half become extension types with their attributes in C slots.
# mypyc and the pure-Python build ignore this file.  Numbers stay Python
# objects where they can be None or outgrow 64 bits (stream offsets do not:
# a 2**63-byte stream is not a capture).
cimport cython


@cython.final
cdef class Conn:
    cdef public object closing, connect_rtt, keys, last_ts, open, syn_ts, wait_ack
    cdef public tuple halves
    cdef public object id
    cdef public object last_packet


@cython.final
cdef class Half:
    cdef public object acked, fin_at, fin_off, hole_acked_at, isn, nseq
    cdef public list recent
    cdef public Py_ssize_t recent_at
    cdef public Conn conn
    cdef public Half peer
    cdef public list pending
    cdef public object dir, fast, noff, buffered, conflicts, first_conflict

    cpdef refresh(self)
    @cython.locals(recent=list, at=Py_ssize_t)
    cpdef remember(self, ev)
    cpdef data(self, packet, ts, seq, payload, missing, list out, max_buffered, ack_grace)
    cpdef insert(self, off, end, packet, ts, data, list out)
    cpdef flush(self, list out)
    cpdef gap(self, length, reason, packet, ts, list out)
    cpdef ack_gaps(self, list out, packet, ack_grace)
