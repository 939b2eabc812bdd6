"""The passive RFC 6455 decoder: handshake, frames, messages, permessage-deflate.

Sans-IO: :class:`~wsanalyze.websocket.decoder.ConnectionDecoder` is fed the
reassembled bytes (and gaps) of one TCP connection and returns events; it never
reads files or sockets.
"""
