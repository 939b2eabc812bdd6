# Cython declarations for framing.py (WSANALYZE_COMPILER=cython, setup.py): the
# per-frame functions take typed state, so its attributes are C slot reads.
# mypyc and the pure-Python build ignore this file.
cimport cython
from wsanalyze.websocket.decoder cimport ConnectionDecoder
from wsanalyze.websocket.deflate cimport MessageInflater
from wsanalyze.websocket.frames cimport FrameHeader
from wsanalyze.websocket.state cimport Message, Side


@cython.locals(pos=Py_ssize_t, size=Py_ssize_t, end=Py_ssize_t, take=Py_ssize_t)
cpdef parse_frames(ConnectionDecoder dec, Side side, buf, here=*)
cpdef is_whole(ConnectionDecoder dec, Side side, FrameHeader h)
@cython.locals(inflater=MessageInflater, msg=Message, pos=Py_ssize_t, end=Py_ssize_t)
cpdef whole_message(ConnectionDecoder dec, Side side, FrameHeader h, buf, pos, end, tuple here)
@cython.locals(msg=Message)
cpdef frame_start(ConnectionDecoder dec, Side side, FrameHeader h, offset, here=*)
@cython.locals(msg=Message)
cpdef payload(ConnectionDecoder dec, Side side, piece)
cpdef _add_frame(Side side, Message msg, FrameHeader h)
@cython.locals(msg=Message)
cpdef frame_done(ConnectionDecoder dec, Side side, ts, packet)
