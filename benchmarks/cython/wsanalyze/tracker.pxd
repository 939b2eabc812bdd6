# Cython declarations for tracker.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython
# An alias: the .py imports RawPacket from sources.records (not compiled), and
# a cimported name cannot be assigned by an import.
from wsanalyze.sources.rawpacket cimport RawPacket as _RawPacket
from wsanalyze.tcp.segment cimport TcpSegment
from wsanalyze.tcp.packet cimport PacketParser
from wsanalyze.tcp.reassembly cimport TcpReassembler
from wsanalyze.tcp.streams cimport StreamNumbers


@cython.final
cdef class _Conn:
    cdef public object decoder, fresh, key, state, stream, tls, ts_end


@cython.final
cdef class Tracker:
    cdef public object options, tls_keys, packets, first_ts, last_ts
    cdef public object _bad_ts_packet, _bad_ts, _bad_ts_conns
    cdef public object _frames, _messages, _shard, _jobs, _stream
    cdef public PacketParser parser
    cdef public TcpReassembler tcp
    cdef public StreamNumbers streams
    cdef public dict _conns
    cdef public list _out

    cpdef feed(self, _RawPacket pkt)
    cpdef route(self, _RawPacket pkt)
    cpdef _parse(self, _RawPacket pkt)
    cpdef list feed_segment(self, number, ts, TcpSegment seg, stream)
    @cython.locals(conn=_Conn)
    cpdef _tcp_event(self, ev)


@cython.locals(dec=object)
cpdef _state(_Conn conn)
