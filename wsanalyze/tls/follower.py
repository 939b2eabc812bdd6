"""Following one TLS connection: both directions' records, the handshake, the
keys, and the plaintext (sans-IO).

Fed a TCP connection's in-order bytes and gaps per direction, a
:class:`TlsFollower` returns :class:`Plain` chunks (application data, attributed
to the packet that completed its record), :class:`PlainGap` (plaintext lost to
a capture gap) and :class:`Finding` rows.  Plaintext is only ever what
authenticated decryption returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from wsanalyze import rules as R
from wsanalyze.tls import handshake as hs
from wsanalyze.tls.ciphers import (
    SUITES,
    Aead13,
    Decryptor,
    suite_name,
    tls12_decryptors,
    tls13_decryptor,
)
from wsanalyze.tls.keyschedule import next_traffic_secret
from wsanalyze.tls.records import (
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    HANDSHAKE,
    MAX_RECORD_13,
    Record,
    RecordReader,
    plausible_header,
)
from wsanalyze.tls.session import TlsKeys

RESYNC_WINDOW = 32
"""After a gap, sequence numbers tried for a candidate record (records lost)."""


class Plain(NamedTuple):
    direction: int
    ts: float
    packet: int
    offset: int
    """Offset in this direction's plaintext stream."""
    data: bytes


class PlainGap(NamedTuple):
    direction: int
    ts: float
    packet: int
    offset: int
    length: int
    """Plaintext bytes lost (exact for AEAD records without padding)."""


class Finding(NamedTuple):
    rule: str
    direction: int | None
    ts: float
    packet: int
    message: str


Output = Plain | PlainGap | Finding


@dataclass(slots=True)
class TlsInfo:
    """What the connections table reports about the TLS layer."""

    version: str | None = None
    cipher: str | None = None
    sni: str | None = None
    alpn: str | None = None
    decrypted: bool = False
    client_random: bytes | None = None
    http2: bool = False
    report: bool = False
    """Report the connection even if no WebSocket is found (keys missing or wrong,
    HTTP/2, unreadable TLS): the user must learn why nothing was decoded."""


class _Dir:
    __slots__ = ("bad", "dec", "hs", "last_end", "lost", "pending", "plain_off", "reader",
                 "secret", "seq", "trial")

    def __init__(self) -> None:
        self.reader = RecordReader()
        self.hs = hs.HandshakeBuffer()
        self.dec: Decryptor | None = None
        self.pending: Decryptor | None = None
        """TLS 1.2: the decryptor ChangeCipherSpec switches to."""
        self.seq = 0
        self.secret: bytes | None = None
        """TLS 1.3: the current application traffic secret (for KeyUpdate)."""
        self.bad = False
        """A record failed authentication: nothing more is decrypted."""
        self.plain_off = 0
        self.last_end = 0
        """TCP stream offset after the last record read."""
        self.lost: tuple[float, int] | None = None
        """(ts, packet) of a gap not yet resynchronised."""
        self.trial = 0
        """Records that may still fail authentication without blame (see _tls13_keys)."""


class TlsFollower:
    """See the module docstring.  ``client`` is the TCP direction of the ClientHello."""

    def __init__(self, keys: TlsKeys, client: int, *, handshake_seen: bool = True) -> None:
        self.keys = keys
        self.client = client
        self.info = TlsInfo()
        self._dirs = (_Dir(), _Dir())
        self._out: list[Output] = []
        self._suite = 0
        self._version = 0
        self._hello: hs.ClientHello | None = None
        self._retry = False
        self._secrets: dict[str, bytes] = {}
        self._master: bytes | None = None
        self._established = False
        self._told: set[str] = set()
        self.blind = not handshake_seen
        """Keys are missing or wrong for a direction: no plaintext goes on."""
        self.info.report = not handshake_seen

    # ---------------------------------------------------------------- feeding
    def data(self, direction: int, ts: float, packet: int, offset: int,
             data: bytes) -> list[Output]:
        side = self._dirs[direction]
        if self._hello is None and self.info.report and self._once("mid-stream"):
            self._find(R.CAPTURE_TLS_NO_KEY, None, ts, packet,
                       "TLS traffic whose handshake was not captured (the connection began "
                       "before the capture): it cannot be decrypted")
        if self._hello is None and self.info.report:
            return self._take()  # nothing can be decrypted: records are not followed
        reader = side.reader
        if not reader.buf and not reader.syncing:
            # The common case: whole records straight from the packet's bytes, no copy
            # into the buffer; only a record cut by the packet's end is buffered.
            pos = self._whole_records(direction, side, data, packet, ts, offset)
            if pos == len(data):
                return self._take()
            data, offset = data[pos:], offset + pos
        reader.push(data, packet, ts, offset)
        while True:
            rec = reader.next()
            if reader.problem is not None:
                self._find(R.CAPTURE_TLS_INVALID, direction, ts, packet,
                           f"TLS: {reader.problem}; looking for the next record")
                reader.problem = None
                side.lost = side.lost or (ts, packet)
            if rec is None:
                break
            if rec.candidate:
                self._candidate(direction, side, rec)
            else:
                side.last_end = rec.offset + 5 + len(rec.body)
                self._record(direction, side, rec)
        return self._take()

    def _whole_records(self, d: int, side: _Dir, data: bytes, packet: int, ts: float,
                       offset: int) -> int:
        """Handle the complete records at the start of ``data``; return where they end."""
        pos = 0
        n = len(data)
        view = memoryview(data)  # record bodies go to the cipher without a copy
        while n - pos >= 5:
            length = (data[pos + 3] << 8) | data[pos + 4]
            end = pos + 5 + length
            if end > n or not plausible_header(data, pos, side.reader.limit):
                break  # an incomplete record, or not a header: the reader decides
            side.last_end = offset + end
            dec = side.dec
            if dec is not None and data[pos] == APPLICATION_DATA and not side.trial \
                    and not side.bad and not self.blind and not self.info.http2:
                # The hot path: application data under the current key.
                opened = dec.open(side.seq, data[pos:pos + 5], view[pos + 5:end])
                if opened is not None and opened[0] == APPLICATION_DATA:
                    side.seq += 1
                    plain = opened[1]
                    if plain:
                        self.info.decrypted = True
                        self._out.append(Plain(d, ts, packet, side.plain_off, plain))
                        side.plain_off += len(plain)
                    pos = end
                    continue
                # A handshake or alert inside, or a failure: the general path (which
                # opens the record again) handles it.
            self._record(d, side, Record(data[pos], (data[pos + 1] << 8) | data[pos + 2],
                                         data[pos:pos + 5], view[pos + 5:end], packet, ts,
                                         offset + pos, False))
            pos = end
        return pos

    def gap(self, direction: int, ts: float, packet: int, offset: int,
            length: int) -> list[Output]:
        side = self._dirs[direction]
        side.reader.lost(offset + length)
        side.hs.clear()
        side.lost = side.lost or (ts, packet)
        return self._take()

    def end(self, ts: float, packet: int) -> list[Output]:
        if self._hello is not None and not self._version and not self.info.report:
            self.info.report = not self.keys.log.get(self._hello.random)
            if self.info.report:
                self._no_key(ts, packet, "no ServerHello was captured and ")
        return self._take()

    # ------------------------------------------------------------ internals
    def _take(self) -> list[Output]:
        out = self._out
        self._out = []
        return out

    def _find(self, rule: str, direction: int | None, ts: float, packet: int,
              message: str) -> None:
        if rule == R.CAPTURE_TLS_INVALID:
            self.info.report = True  # the row must be seen even if nothing is decoded
        self._out.append(Finding(rule, direction, ts, packet, message))

    def _once(self, key: str) -> bool:
        if key in self._told:
            return False
        self._told.add(key)
        return True

    def _record(self, d: int, side: _Dir, rec: Record) -> None:
        if side.bad:
            return
        if side.dec is not None and rec.type != CHANGE_CIPHER_SPEC:
            opened = side.dec.open(side.seq, rec.header, rec.body)
            if opened is None:
                if side.trial:
                    # Handshake records under keys the log lacks: skipped, not "bad".
                    side.trial -= 1
                    return
                self._bad_key(d, side, rec)
                return
            side.trial = 0
            side.seq += 1
            self._content(d, side, opened[0], opened[1], rec)
        elif rec.type == CHANGE_CIPHER_SPEC:
            if self._version != 0x0304 and side.pending is not None:
                side.dec, side.pending, side.seq = side.pending, None, 0
        elif rec.type == HANDSHAKE:
            self._handshake(d, side, rec.body, rec)
        elif rec.type == APPLICATION_DATA and not self.info.report and self._version:
            # Encrypted records without a key (the finding was written at ServerHello).
            self.blind = True

    def _candidate(self, d: int, side: _Dir, rec: Record) -> None:
        """A record found after lost bytes: accept it only if it authenticates."""
        reader = side.reader
        dec = side.dec
        if dec is None or side.bad:
            if dec is None and rec.type == HANDSHAKE and not self._version:
                reader.accept(rec)
                self._record(d, side, rec)
            elif dec is None:
                reader.accept(rec)
            else:
                reader.reject(rec)
            return
        for seq in range(side.seq, side.seq + RESYNC_WINDOW):
            opened = dec.open(seq, rec.header, rec.body)
            if opened is not None:
                break
        else:
            opened = self._after_lost_key_update(side, rec)
            if opened is None:
                reader.reject(rec)
                return
            seq = 0
        reader.accept(rec)
        lost_records = seq - side.seq
        lost_bytes = max(1, rec.offset - side.last_end - lost_records * dec.overhead)
        ts, packet = side.lost or (rec.ts, rec.packet)
        side.lost = None
        self._find(R.CAPTURE_UNDECODABLE, d, rec.ts, rec.packet,
                   f"TLS records of the \x00dir\x00 stream resumed at packet {rec.packet} "
                   f"after a gap (packet {packet}): {lost_records} record(s) lost")
        if not self.blind and self._established:
            self._out.append(PlainGap(d, ts, packet, side.plain_off, lost_bytes))
            side.plain_off += lost_bytes
        side.seq = seq + 1
        side.last_end = rec.offset + 5 + len(rec.body)
        self._content(d, side, opened[0], opened[1], rec)

    def _after_lost_key_update(self, side: _Dir, rec: Record) -> tuple[int, bytes] | None:
        """TLS 1.3: the gap may have swallowed a KeyUpdate; try the next generation."""
        if side.secret is None:
            return None
        suite = SUITES[self._suite]
        secret = next_traffic_secret(suite.hash, side.secret)
        dec = Aead13(suite, secret)
        for seq in range(RESYNC_WINDOW):
            opened = dec.open(seq, rec.header, rec.body)
            if opened is not None:
                side.secret, side.dec = secret, dec
                return opened
        return None

    def _bad_key(self, d: int, side: _Dir, rec: Record) -> None:
        side.bad = True
        self.info.report = True
        self._find(R.CAPTURE_TLS_BAD_KEY, d, rec.ts, rec.packet,
                   f"a TLS record of the \x00dir\x00 stream in packet {rec.packet} failed "
                   f"authentication with the logged key for client random "
                   f"{self._random_hex()} (wrong or stale key log?); the rest of this "
                   f"direction is not decrypted")

    def _random_hex(self) -> str:
        return self._hello.random.hex() if self._hello else "(unknown)"

    def _content(self, d: int, side: _Dir, ctype: int, plain: bytes, rec: Record) -> None:
        if ctype == APPLICATION_DATA:
            if not plain:
                return
            self.info.decrypted = True
            if self.blind or self.info.http2:
                return
            self._out.append(Plain(d, rec.ts, rec.packet, side.plain_off, plain))
            side.plain_off += len(plain)
        elif ctype == HANDSHAKE:
            self._handshake(d, side, plain, rec)
        elif ctype == CHANGE_CIPHER_SPEC and side.pending is not None:
            # Renegotiation: the new ChangeCipherSpec travels under the old keys.
            side.dec, side.pending, side.seq = side.pending, None, 0
        elif ctype == ALERT:
            pass  # alerts end the connection; TCP tells when

    def _handshake(self, d: int, side: _Dir, data: bytes | memoryview, rec: Record) -> None:
        for mtype, body in side.hs.feed(data):
            try:
                self._message(d, side, mtype, body, rec)
            except hs.HandshakeError as exc:
                self._find(R.CAPTURE_TLS_INVALID, d, rec.ts, rec.packet,
                           f"TLS handshake message of type {mtype} in packet {rec.packet} "
                           f"is malformed: {exc}")

    def _message(self, d: int, side: _Dir, mtype: int, body: bytes, rec: Record) -> None:
        if mtype == hs.CLIENT_HELLO:
            self._client_hello(d, body, rec)
        elif mtype == hs.SERVER_HELLO:
            self._server_hello(body, rec)
        elif mtype == hs.ENCRYPTED_EXTENSIONS:
            self._set_alpn(hs.parse_encrypted_extensions(body), rec)
        elif mtype == hs.FINISHED and self._version == 0x0304:
            self._tls13_finished(d, side, rec)
        elif mtype == hs.FINISHED:
            self._established = True
        elif mtype == hs.NEW_SESSION_TICKET and self._version != 0x0304 and self._master:
            self.keys.remember(self.keys.by_ticket, hs.parse_new_session_ticket12(body),
                               self._master)
        elif mtype == hs.KEY_UPDATE and self._version == 0x0304 and side.secret is not None:
            suite = SUITES[self._suite]
            side.secret = next_traffic_secret(suite.hash, side.secret)
            side.dec, side.seq = Aead13(suite, side.secret), 0

    def _client_hello(self, d: int, body: bytes, rec: Record) -> None:
        hello = hs.parse_client_hello(body)
        if self._established and self._once("renegotiation"):
            self._find(R.CAPTURE_TLS_RENEGOTIATION, d, rec.ts, rec.packet,
                       f"TLS renegotiation: a new ClientHello in packet {rec.packet} "
                       f"(client random {hello.random.hex()})")
        self._hello = hello
        self.info.client_random = hello.random
        self.info.sni = hello.sni or self.info.sni

    def _server_hello(self, body: bytes, rec: Record) -> None:
        server = hs.parse_server_hello(body)
        if server.is_retry:
            self._retry = True  # the client's second ClientHello keeps its random
            return
        hello = self._hello
        if hello is None:
            raise hs.HandshakeError("a ServerHello without a ClientHello")
        self._version, self._suite = server.version, server.suite
        self.info.version = hs.VERSION_NAMES.get(server.version, f"0x{server.version:04X}")
        self.info.cipher = suite_name(server.suite)
        if server.alpn:
            self._set_alpn(server.alpn, rec)
        if server.version == 0x0304:
            self._tls13_keys(rec)
        elif server.suite not in SUITES:
            self._unsupported(rec)
        else:
            self._tls12_keys(hello, server, rec)

    def _tls13_keys(self, rec: Record) -> None:
        hello = self._hello
        assert hello is not None
        self._secrets = self.keys.log.get(hello.random)
        c, s = self._dirs[self.client], self._dirs[1 - self.client]
        if SUITES.get(self._suite) is None:
            self._unsupported(rec)
            return
        for side in self._dirs:
            side.reader.limit = MAX_RECORD_13
        chs = self._secrets.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET")
        shs = self._secrets.get("SERVER_HANDSHAKE_TRAFFIC_SECRET")
        if chs is None or shs is None:
            if not (self._secrets.get("CLIENT_TRAFFIC_SECRET_0")
                    and self._secrets.get("SERVER_TRAFFIC_SECRET_0")):
                self._no_key(rec.ts, rec.packet, "")
                return
            # Application data opens with the traffic secrets alone; the encrypted
            # handshake records before it fail and are skipped.
            self._switch_13(self.client, c, "CLIENT_TRAFFIC_SECRET_0", rec, quiet=True)
            self._switch_13(1 - self.client, s, "SERVER_TRAFFIC_SECRET_0", rec, quiet=True)
            c.trial = s.trial = 16
            self._established = True
            return
        c.dec, c.seq = tls13_decryptor(self._suite, chs), 0
        s.dec, s.seq = tls13_decryptor(self._suite, shs), 0

    def _tls13_finished(self, d: int, side: _Dir, rec: Record) -> None:
        label = "CLIENT_TRAFFIC_SECRET_0" if d == self.client else "SERVER_TRAFFIC_SECRET_0"
        self._switch_13(d, side, label, rec, quiet=False)
        if d == self.client:
            self._established = True

    def _switch_13(self, d: int, side: _Dir, label: str, rec: Record, *, quiet: bool) -> None:
        secret = self._secrets.get(label)
        if secret is None:
            side.dec = None
            self.blind = True
            self.info.report = True
            if not quiet or self._once("no-traffic"):
                self._find(R.CAPTURE_TLS_NO_KEY, d, rec.ts, rec.packet,
                           f"the key log has no {label} for client random "
                           f"{self._random_hex()}: the \x00dir\x00 stream is not decrypted")
            return
        side.secret = secret
        side.dec, side.seq = tls13_decryptor(self._suite, secret), 0

    def _tls12_keys(self, hello: hs.ClientHello, server: hs.ServerHello, rec: Record) -> None:
        master = self.keys.log.get(hello.random).get("CLIENT_RANDOM")
        resumed = bool(hello.session_id) and server.session_id == hello.session_id
        if master is None and resumed:
            # A resumed session: the original connection's master secret opens it.
            master = self.keys.by_session.get(server.session_id)
            if master is None and hello.ticket is not None:
                master = self.keys.by_ticket.get(hello.ticket)
        if master is None:
            self._no_key(rec.ts, rec.packet, "",
                         "the session was resumed and the original session's key is unknown"
                         if resumed else "")
            return
        self._master = master
        self.keys.remember(self.keys.by_session, server.session_id, master)
        pair = tls12_decryptors(server.suite, master, hello.random, server.random,
                                server.encrypt_then_mac)
        if pair is None:
            self._unsupported(rec)
            return
        self._dirs[self.client].pending = pair[0]
        self._dirs[1 - self.client].pending = pair[1]

    def _unsupported(self, rec: Record) -> None:
        self.blind = True
        self.info.report = True
        self._find(R.CAPTURE_TLS_NO_KEY, None, rec.ts, rec.packet,
                   f"the TLS connection uses {self.info.version} with cipher suite "
                   f"{self.info.cipher}, which wsanalyze cannot decrypt")

    def _no_key(self, ts: float, packet: int, prefix: str, why: str = "") -> None:
        self.blind = True
        self.info.report = True
        if not self._once("no-key"):
            return
        self._find(R.CAPTURE_TLS_NO_KEY, None, ts, packet,
                   f"TLS connection not decrypted: {prefix}no key was found for client "
                   f"random {self._random_hex()} (look for CLIENT_RANDOM or "
                   f"*_TRAFFIC_SECRET lines with it in the key log)"
                   + (f"; {why}" if why else ""))

    def _set_alpn(self, alpn: str | None, rec: Record) -> None:
        if alpn is None:
            return
        self.info.alpn = alpn
        if alpn == "h2" and not self.info.http2:
            self.info.http2 = True
            self.info.report = True
            self._find(R.CAPTURE_TLS_HTTP2, None, rec.ts, rec.packet,
                       "the TLS connection negotiated HTTP/2 (ALPN h2); WebSocket over "
                       "HTTP/2 (RFC 8441) is not decoded")
