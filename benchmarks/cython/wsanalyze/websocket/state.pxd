# Cython declarations for state.py (WSANALYZE_COMPILER=cython, setup.py): the
# per-direction and per-message state become extension types (C slots, the
# same names as their __slots__).  mypyc and the pure-Python build ignore this file.
cimport cython

@cython.freelist(16)
@cython.final
cdef class Message:
    cdef public object complete, compressed, error, inflate_broken, inflated, opcode
    cdef public object type, ts_start, last_ts, last_packet, raw_length, kept, wire_bytes
    cdef public list frames, parts


@cython.final
cdef class Ping:
    cdef public object frames_then, mismatch, packet, payload, ts


@cython.final
cdef class Side:
    cdef public object body_left, buf_off, chunks, close_sent, early_pongs, f_complete
    cdef public object f_done, f_index, f_left, f_off, f_packet, f_ts, frames_sent, gaps, hdr
    cdef public object inflater, late_response, masked, mode, pings, requests
    cdef public object scan_reason, scanner, skipped, synced, tcp_dir, upgrade
    cdef public object upgrade_ts, ws_base, ws_dir
    cdef public bytearray buf
    cdef public list held_frames
    cdef public Message msg, target
