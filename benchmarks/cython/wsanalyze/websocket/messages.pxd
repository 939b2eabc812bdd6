# Cython declarations for messages.py (WSANALYZE_COMPILER=cython, setup.py).
# mypyc and the pure-Python build ignore this file.
cimport cython
from wsanalyze.websocket.decoder cimport ConnectionDecoder
from wsanalyze.websocket.deflate cimport MessageInflater
from wsanalyze.websocket.state cimport Message, Side


@cython.locals(inflater=MessageInflater)
cpdef emit(ConnectionDecoder dec, Side side, Message msg, ts, packet)
@cython.locals(inflater=MessageInflater, parts=list)
cpdef tuple _payload(ConnectionDecoder dec, Side side, Message msg, ts, packet)
