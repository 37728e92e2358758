"""One connection to one server: the handshake and command round trips.

The framing is done by :mod:`amongo.wire`, the socket side by :class:`amongo.protocol.FrameProtocol`
(an asyncio ``BufferedProtocol`` that cuts whole frames); this module encodes commands and
decodes replies. A request whose reply
has not been read (cancellation, timeout) leaves :attr:`Connection.pending_reply` set, and the
pool either drains that reply in the background or closes the connection: it is never handed
out with an unread reply.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
import ssl as _ssl
import struct
import sys
import time
from typing import Any, Awaitable, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    NetworkTimeout,
    ProtocolError,
)

from amongo import _csot
from amongo import handshake as _handshake
from amongo.handshake import client_metadata
from amongo.protocol import ConnectionClosed, FrameProtocol
from amongo.server_errors import command_error
from amongo.topology.description import hello_int as _hello_int
from amongo.wire.batching import EncodedArray
from amongo.wire import message as _msg
from amongo.wire.message import HEADER_SIZE, OP_COMPRESSED, OP_MSG, MORE_TO_COME

try:  # compression is optional at this layer's level
    from amongo.wire import compression as _compression
except ImportError:  # pragma: no cover - the wire layer always ships it
    _compression = None  # type: ignore[assignment]

_request_ids = itertools.count(int.from_bytes(os.urandom(3), "little"))
_HEADER_UNPACK = _msg.HEADER.unpack
_INT32_UNPACK = struct.Struct("<i").unpack_from
_UINT32_UNPACK = struct.Struct("<I").unpack_from
#: Replies above this size skip the copy of the section-0 document (see ``_read_reply``).
_BIG_REPLY = 64 * 1024
_OP_MSG_CODE = struct.pack("<i", OP_MSG)
_MSG_PREFIX = _msg._MSG_PREFIX_KIND0.pack  # header, flagBits, section kind 0 (wire's own)

_INT32_PACK = struct.Struct("<i").pack
# The gossiped times a server appends to its replies, as they are encoded (split_times)
_CT_KEY = b"\x03$clusterTime\x00"
_OT_KEY = b"\x11operationTime\x00"
#: the largest reply whose times are cut off (the rest is copied once: for a large batch that
#: copy costs more than the Timestamps it saves)
_SPLIT_MAX = 16 * 1024
#: ``$db: name`` elements followed by the document's NUL, by database name (see ``tail``).
_DB_ELEMENTS: Dict[str, bytes] = {}


def _db_element(dbname: str) -> bytes:
    element = _msg.string_element("$db", dbname) + b"\x00"
    if len(_DB_ELEMENTS) >= 256:  # (a bound for programs that name databases dynamically)
        _DB_ELEMENTS.clear()
    _DB_ELEMENTS[dbname] = element
    return element


_timeout_ctx = getattr(asyncio, "timeout", None)  # Python 3.11+
# bson.encode / bson.decode minus their Python wrappers (a codec-options type check and a
# typing.cast call): the C functions themselves, when bson has them. Codec options reaching
# here are always CodecOptions (validated where users pass them).
_encode = getattr(bson, "_dict_to_bson", None) or bson.encode
_decode = getattr(bson, "_bson_to_dict", None) or bson.decode
#: Frames whose declared length exceeds the server's maxMessageSizeBytes by more than this
#: are a protocol error (the frame header's length is all a reader can trust).
_LENGTH_SLACK = 16 * 1024 * 1024


def next_request_id() -> int:
    """A process-wide, wrapping 31-bit request id."""
    return next(_request_ids) & 0x7FFFFFFF



#: TCP keepalive caps, as PyMongo sets them: the first probe after at most 120 s idle, then
#: every 10 s, 9 probes, so idle pooled connections are not silently dropped by cloud load
#: balancers / NATs (which commonly forget idle flows after 4-5 minutes; Linux's default
#: idle time is 2 hours).
MAX_TCP_KEEPIDLE = 120
MAX_TCP_KEEPINTVL = 10
MAX_TCP_KEEPCNT = 9


def set_keepalive(sock: Any) -> None:
    """Turn TCP keepalive on for *sock* and lower (never raise) the system's idle time,
    probe interval and probe count to :data:`MAX_TCP_KEEPIDLE` / :data:`MAX_TCP_KEEPINTVL` /
    :data:`MAX_TCP_KEEPCNT` (PyMongo's values). Options the platform lacks are skipped;
    errors are ignored (keepalive is best effort)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        return
    if sys.platform == "win32":  # pragma: no cover - not run on the project's machines
        try:
            sock.ioctl(socket.SIO_KEEPALIVE_VALS, (1, MAX_TCP_KEEPIDLE * 1000, MAX_TCP_KEEPINTVL * 1000))
        except (AttributeError, OSError, ValueError):
            pass
        return
    idle_opt = "TCP_KEEPIDLE" if hasattr(socket, "TCP_KEEPIDLE") else "TCP_KEEPALIVE"  # (macOS)
    for name, cap in ((idle_opt, MAX_TCP_KEEPIDLE), ("TCP_KEEPINTVL", MAX_TCP_KEEPINTVL),
                      ("TCP_KEEPCNT", MAX_TCP_KEEPCNT)):
        opt = getattr(socket, name, None)
        if opt is None:
            continue
        try:
            if sock.getsockopt(socket.IPPROTO_TCP, opt) > cap:
                sock.setsockopt(socket.IPPROTO_TCP, opt, cap)
        except OSError:  # e.g. NetBSD has no getsockopt for these
            pass

class ConnectionOptions:
    """What a connection needs to know to open and handshake (derived from client options)."""

    __slots__ = (
        "connect_timeout",
        "socket_timeout",
        "ssl_context",
        "tls_server_hostname_check",
        "appname",
        "driver_info",
        "compressors",
        "zlib_level",
        "server_api",
        "load_balanced",
        "credential",
        "metadata",
    )

    def __init__(
        self,
        *,
        connect_timeout: Optional[float] = 20.0,
        socket_timeout: Optional[float] = None,
        ssl_context: Optional[_ssl.SSLContext] = None,
        tls_server_hostname_check: bool = True,
        appname: Optional[str] = None,
        driver_info: Any = None,
        compressors: Sequence[str] = (),
        zlib_level: int = -1,
        server_api: Any = None,
        load_balanced: bool = False,
        credential: Any = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.socket_timeout = socket_timeout
        self.ssl_context = ssl_context
        self.tls_server_hostname_check = tls_server_hostname_check
        self.appname = appname
        self.driver_info = driver_info
        self.compressors = list(compressors)
        self.zlib_level = zlib_level
        self.server_api = server_api
        self.load_balanced = load_balanced
        self.credential = credential
        self.metadata = client_metadata(appname, driver_info)




class Connection:
    """A handshaken connection to one server (no Motor equivalent; internal).

    Attributes follow the contract in ARCHITECTURE.md.
    """

    __slots__ = (
        "id",
        "address",
        "generation",
        "service_id",
        "hello",
        "max_wire_version",
        "max_bson_size",
        "max_message_size",
        "max_write_batch_size",
        "closed",
        "pending_reply",
        "last_checkin",
        "compressor",
        "options",
        "is_writable",
        "is_mongos",
        "supports_sessions",
        "supports_retry",
        "server_connection_id",
        "_protocol",
        "_transport",
        "_more_to_come",
        "_pinned",
        "close_reason",
        "auth_state",
        "_awaiting",
        "reply_cluster_time",
    )

    def __init__(
        self,
        protocol: FrameProtocol,
        address: Tuple[str, int],
        options: ConnectionOptions,
        conn_id: int = 0,
        generation: int = 0,
    ) -> None:
        self._protocol = protocol
        self._transport = protocol.transport
        self.address = address
        self.options = options
        self.id = conn_id
        self.generation = generation
        self.service_id: Any = None
        self.hello: Dict[str, Any] = {}
        self.max_wire_version = 0
        self.max_bson_size = 16 * 1024 * 1024
        self.max_message_size = 48_000_000
        self.max_write_batch_size = 100_000
        self.closed = False
        self.pending_reply = False
        #: the last reply's ``$clusterTime`` element, encoded, when ``command(split_times=True)``
        #: took the times out of it (else None)
        self.reply_cluster_time: Optional[bytes] = None
        self.last_checkin = time.monotonic()
        self.compressor: Any = None
        self.is_writable = False
        self.is_mongos = False
        self.supports_sessions = False
        self.supports_retry = False
        self.server_connection_id: Optional[int] = None
        self._more_to_come = False
        self._pinned: Any = False  # "cursor" / "transaction" while pinned (load-balanced mode)
        self.close_reason: Optional[str] = None
        #: mechanism state of this connection's authentication (MONGODB-OIDC: the token
        #: generation it authenticated with; never a secret)
        self.auth_state: Any = None
        #: The requestID (its 4 wire bytes) whose reply is outstanding: the next frame's
        #: responseTo must equal it. None while no request is pending, or within an exhaust /
        #: moreToCome stream (whose later replies answer the server's own previous reply).
        self._awaiting: Optional[bytes] = None

    # -- opening -------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        address: Tuple[str, int],
        options: ConnectionOptions,
        conn_id: int = 0,
        generation: int = 0,
        *,
        handshake: bool = True,
        authenticate: bool = True,
    ) -> "Connection":
        """Open a TCP (or TLS / Unix-socket) connection and run the handshake."""
        host, port = address
        ssl_ctx = options.ssl_context
        loop = asyncio.get_running_loop()
        max_frame = _msg.DEFAULT_MAX_MESSAGE_SIZE + _LENGTH_SLACK

        def factory() -> FrameProtocol:
            return FrameProtocol(loop, max_frame)

        try:
            if host.endswith(".sock"):
                coro = loop.create_unix_connection(factory, host, ssl=ssl_ctx, server_hostname=host if ssl_ctx else None)
            else:
                server_hostname = host if ssl_ctx is not None else None
                coro = loop.create_connection(
                    factory, host, port, ssl=ssl_ctx, server_hostname=server_hostname
                )
            if options.connect_timeout:
                transport, protocol = await asyncio.wait_for(coro, options.connect_timeout)
            else:
                transport, protocol = await coro
        except asyncio.TimeoutError as exc:
            raise _handshake.connect_error(address, exc, timed_out=True, overload=handshake) from None
        except (OSError, ValueError) as exc:  # ValueError: a name the resolver refuses
            raise _handshake.connect_error(address, exc, overload=handshake) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            set_keepalive(sock)
        conn = cls(protocol, address, options, conn_id, generation)
        if handshake:
            try:
                await conn.handshake(authenticate=authenticate)
            except BaseException:
                conn.close()
                raise
        return conn

    def handshake_command(self) -> Dict[str, Any]:
        """The initial ``hello`` (or legacy ``isMaster``) command with the client metadata,
        compression list, ``loadBalanced`` and the Stable API fields
        (:func:`amongo.handshake.hello_command`); :meth:`handshake` adds speculative
        authentication.
        """
        opts = self.options
        return _handshake.hello_command(
            opts.metadata,
            compressors=opts.compressors,
            load_balanced=opts.load_balanced,
            server_api=opts.server_api,
        )

    async def handshake(self, *, authenticate: bool = True) -> Dict[str, Any]:
        """Run the initial hello (handshake spec) and authenticate when credentials are set."""
        cmd = self.handshake_command()
        cred = self.options.credential
        speculative = None
        if cred is not None and authenticate:
            from amongo import auth as _auth

            speculative = _auth.speculative_start(cred, self.address[0])
            if speculative is not None:
                cmd["speculativeAuthenticate"] = speculative.command
            if cred.mechanism in (None, "DEFAULT") and cred.username:
                cmd["saslSupportedMechs"] = f"{cred.source}.{cred.username}"
        # (CSOT: socketTimeoutMS does not apply when the connection is opened for an operation
        # under timeoutMS; connectTimeoutMS bounds the handshake, the caller waits at most the
        # time left of its deadline)
        timeout = self.options.connect_timeout if _csot.get_timeout() else None
        start = time.monotonic()
        try:
            reply = await self.command("admin", cmd, check=True, compress=False, timeout=timeout)
        except (AutoReconnect, NetworkTimeout) as exc:
            if type(exc) in (AutoReconnect, NetworkTimeout):
                _handshake.label_overload(exc)  # the initial hello failed on the network
            raise
        self.set_hello(reply, time.monotonic() - start)
        if cred is not None and authenticate:
            from amongo import auth as _auth

            await _auth.authenticate(self, cred, reply, speculative)
        return reply

    async def reauthenticate(self) -> None:
        """Run the authentication conversation again after the server answered
        ReauthenticationRequired (391); no hello (auth spec). A connection whose
        reauthentication fails is closed (its authentication state is unknown)."""
        cred = self.options.credential
        if cred is None:
            raise ConfigurationError("ReauthenticationRequired on a connection without credentials")
        from amongo import auth as _auth

        try:
            await _auth.reauthenticate(self, cred)
        except BaseException:
            self.close("error")
            raise

    def set_hello(self, reply: Mapping[str, Any], rtt: float = 0.0) -> None:
        """Take the limits and capabilities (wire versions, sizes, sessions, retryable writes,
        ``connectionId``, ``serviceId``) from the handshake reply *reply*.
        """
        self.hello = dict(reply)
        # (an untrusted document: a field of the wrong type is a ProtocolError, never a
        # ValueError from int())
        self.max_wire_version = _hello_int(reply, "maxWireVersion", 0, self.address)
        _handshake.check_wire_version(self.address, self.max_wire_version)
        self.max_bson_size = _hello_int(reply, "maxBsonObjectSize", 16 * 1024 * 1024, self.address)
        self.max_message_size = _hello_int(reply, "maxMessageSizeBytes", 48_000_000, self.address)
        self._protocol.max_message_size = max(self.max_message_size, _msg.DEFAULT_MAX_MESSAGE_SIZE) + _LENGTH_SLACK
        self.max_write_batch_size = _hello_int(reply, "maxWriteBatchSize", 100_000, self.address)
        self.is_writable = bool(reply.get("isWritablePrimary") or reply.get("ismaster"))
        self.is_mongos = reply.get("msg") == "isdbgrid"
        self.supports_sessions = reply.get("logicalSessionTimeoutMinutes") is not None
        # Retryable writes: sessions on a replica set, mongos or load balancer (not standalone).
        self.supports_retry = self.supports_sessions and bool(
            self.is_mongos or reply.get("setName") or self.options.load_balanced
        )
        self.server_connection_id = reply.get("connectionId")
        if self.options.load_balanced:
            self.service_id = reply.get("serviceId")
            if self.service_id is None:
                raise ConfigurationError(
                    "Driver attempted to initialize in load balancing mode, but the server does not "
                    "support this mode"
                )
        compressor = _handshake.negotiate_compressor(
            self.address, self.options.compressors, reply, self.options.zlib_level
        )
        if compressor is not None:
            self.compressor = compressor

    # -- I/O ---------------------------------------------------------------------------------
    def command(
        self,
        dbname: str,
        spec: MutableMapping[str, Any],
        *,
        codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS,
        sequences: Optional[Sequence[Tuple[str, Sequence[bytes]]]] = None,
        unacknowledged: bool = False,
        check: bool = True,
        compress: bool = True,
        timeout: Optional[float] = None,
        exhaust_allowed: bool = False,
        request_id: Optional[int] = None,
        array: Optional[EncodedArray] = None,
        tail: Optional[bytes] = None,
        split_times: bool = False,
    ) -> Awaitable[Dict[str, Any]]:
        """Send one command; await the result for its decoded reply.

        The command is encoded (and too-large documents refused) right away; the returned
        awaitable does the I/O. (Not a coroutine function itself: one frame less on the
        await chain that every operation's reply wakes up.)

        :param spec: the command document; ``$db`` is added here.
        :param sequences: kind-1 document sequences (already BSON-encoded).
        :param unacknowledged: send with moreToCome (w:0) and return ``{"ok": 1}`` at once.
        :param check: raise :class:`~pymongo.errors.OperationFailure` for ``ok: 0``.
        :param timeout: seconds for the whole round trip (None: socketTimeoutMS, if any).
        :param array: pre-encoded documents appended to the command as its last field.
        :param tail: pre-encoded elements (the executor's ``lsid``, ``$clusterTime``,
            ``$readPreference``, API version) appended after *spec*'s fields, followed by
            ``$db`` (also pre-encoded); *spec* is then left without ``$db``.
        :param split_times: the caller needs neither ``$clusterTime`` nor ``operationTime``
            in the decoded reply: when the reply ends with both (as servers send them), they
            are cut off before decoding, and the ``$clusterTime`` element is left encoded in
            :attr:`reply_cluster_time` (None when they were not cut: then the reply has
            them). A reply that is not ``ok: 1`` is always decoded whole.
        """
        if tail is None or "$db" in spec:  # (a command's own $db is replaced, as ever)
            spec["$db"] = dbname
            body = _encode(spec, False, codec_options)
            if tail:
                body = _msg.splice_elements(body, tail)
        else:
            body = _encode(spec, False, codec_options)
            db = _DB_ELEMENTS.get(dbname)
            if db is None:
                db = _db_element(dbname)
            # (elements + NUL: body's length, minus its NUL, plus the rest)
            body = b"".join((_INT32_PACK(len(body) - 1 + len(tail) + len(db)), body[4:-1], tail, db))
        if request_id is None:
            request_id = next(_request_ids) & 0x7FFFFFFF
        flags = MORE_TO_COME if unacknowledged else 0
        if exhaust_allowed:
            flags |= _msg.EXHAUST_ALLOWED
        if sequences:
            if array is not None:
                body = array.append_to(body)
            if len(sequences) == 1 and type(sequences) is tuple:  # (one statement's write)
                frame = _msg.encode_op_msg_sequence(request_id, flags, body, *sequences[0])
            else:
                frame = _msg.encode_op_msg(request_id, body, flags=flags, sequences=sequences)
        elif array is not None:  # (the documents' bytes copied once, into the frame)
            frame = array.op_msg(request_id, flags, body)
            body = memoryview(frame)[21:]
        else:  # (encode_op_msg's plain case, inline)
            frame = _MSG_PREFIX(21 + len(body), request_id, 0, OP_MSG, flags, 0) + body
        if sequences:
            limit = self.max_message_size
            if len(frame) > limit + 16 * 1024:
                from pymongo.errors import DocumentTooLarge

                raise DocumentTooLarge(
                    f"command document too large: message of {len(frame)} bytes exceeds the "
                    f"server's maxMessageSizeBytes {limit}"
                )
        elif len(body) > self.max_bson_size + 16 * 1024:
            from pymongo.errors import DocumentTooLarge

            raise DocumentTooLarge(
                f"command document too large: {len(body)} bytes exceeds the server's "
                f"maxBsonObjectSize {self.max_bson_size}"
            )
        if compress and self.compressor is not None:
            first = next(iter(spec))
            if first.lower() not in _compression.UNCOMPRESSIBLE_COMMANDS and first not in _compression.UNCOMPRESSIBLE_COMMANDS:
                frame = _compression.compress_frame(frame, self.compressor)
        if timeout is None:
            timeout = self.options.socket_timeout
        if unacknowledged:
            self.reply_cluster_time = None  # (no reply)
            return self._send_unacknowledged(frame, timeout)
        if timeout is None:
            return self._round_trip(frame, codec_options, check, split_times)
        return self._round_trip_within(frame, codec_options, check, timeout, split_times)

    async def _send_unacknowledged(self, frame: bytes, timeout: Optional[float]) -> Dict[str, Any]:
        await self._send(frame, timeout)
        return {"ok": 1}

    async def _round_trip_within(
        self, frame: bytes, codec_options: CodecOptions[Any], check: bool, timeout: float,
        split_times: bool = False,
    ) -> Dict[str, Any]:
        try:
            if _timeout_ctx is None:  # Python < 3.11
                return await asyncio.wait_for(self._round_trip(frame, codec_options, check, split_times), timeout)
            async with _timeout_ctx(timeout):
                return await self._round_trip(frame, codec_options, check, split_times)
        except (TimeoutError, asyncio.TimeoutError):
            raise _handshake.timeout_error(self.address) from None

    def send_nowait(self, dbname: str, spec: MutableMapping[str, Any]) -> None:
        """Write an unacknowledged (moreToCome) command without waiting: used for the
        best-effort ``endSessions`` of the synchronous ``client.close()``."""
        if self.closed or self.pending_reply:
            return
        spec["$db"] = dbname
        frame = _msg.encode_op_msg(next_request_id(), bson.encode(spec), flags=MORE_TO_COME)
        self._transport.write(frame)

    async def _send(self, frame: bytes, timeout: Optional[float]) -> None:
        if self.closed:
            raise AutoReconnect(f"{self.address[0]}:{self.address[1]}: connection closed")
        try:
            self._transport.write(frame)
            if timeout is None:
                await self._protocol.drain()
            else:
                await asyncio.wait_for(self._protocol.drain(), timeout)
        except asyncio.TimeoutError:
            self.close("error")
            raise _handshake.timeout_error(self.address) from None
        except (OSError, ConnectionError, RuntimeError) as exc:
            self.close("error")
            raise AutoReconnect(f"{self.address[0]}:{self.address[1]}: {exc}") from exc

    async def _round_trip(
        self, frame: bytes, codec_options: CodecOptions[Any], check: bool, split_times: bool = False,
    ) -> Dict[str, Any]:
        if self.closed:
            raise AutoReconnect(f"{self.address[0]}:{self.address[1]}: connection closed")
        self.pending_reply = True
        expected = self._awaiting = frame[4:8]  # the requestID, as the header carries it
        try:
            # No drain(): the reply is read while a large request is still being written
            # (the server answers only after the whole request), which bounds the buffer.
            self._transport.write(frame)
        except (OSError, ConnectionError, RuntimeError) as exc:
            self.close("error")
            raise AutoReconnect(f"{self.address[0]}:{self.address[1]}: {exc}") from exc
        try:
            header, body = await self._protocol.read_frame()
        except (ConnectionClosed, ProtocolError) as exc:
            raise self._read_failed(exc)
        if header[8:12] != expected:
            raise self._mismatch(header, expected)
        self._awaiting = None
        if (
            header[12:16] == _OP_MSG_CODE
            and len(body) >= 10
            and not body[0] and not body[1] and not body[4]
            and _INT32_UNPACK(body, 5)[0] == len(body) - 5
        ):
            # The common reply: OP_MSG, no flag bits (so no checksum, no moreToCome), one
            # kind-0 section; decode it in place.
            doc: Any = memoryview(body)[5:]
            self._more_to_come = self.pending_reply = False
            if split_times:
                # A reply ends with ``$clusterTime: {...}, operationTime: Timestamp``: cut both
                # off (the document's length field rewritten), keep $clusterTime encoded. The
                # last $clusterTime key before operationTime whose embedded document ends
                # exactly where operationTime starts (anything else, or a large reply:
                # decoded whole).
                ct_elem = None
                n = len(body)
                if n <= _SPLIT_MAX and body[n - 24:n - 9] == _OT_KEY and not body[n - 1]:
                    i = body.rfind(_CT_KEY, 9, n - 24)
                    if i > 0 and _INT32_UNPACK(body, i + 14)[0] == n - 38 - i:
                        ct_elem = bytes(body[i:n - 24])
                        doc = b"".join((_INT32_PACK(i - 4), body[9:i], b"\x00"))
                self.reply_cluster_time = ct_elem
        else:
            self.reply_cluster_time = None
            flags, doc = self._unpack(header, body)
            self._more_to_come = bool(flags & MORE_TO_COME)
            self.pending_reply = self._more_to_come
        try:
            reply: Dict[str, Any] = _decode(doc, codec_options)
            if split_times and self.reply_cluster_time is not None and reply.get("ok") != 1:
                # (an error reply: whole, its times included, as every error path expects)
                self.reply_cluster_time = None
                reply = _decode(memoryview(body)[5:], codec_options)
        except Exception as exc:  # bson.errors.InvalidBSON and friends
            self.close("error")
            raise ProtocolError(f"Invalid BSON in server reply: {exc}") from exc
        if check and reply.get("ok") != 1 and not reply.get("ok"):
            raise command_error(reply, self.max_wire_version)
        return reply

    async def _read_reply(self) -> Tuple[int, Any]:
        try:
            header, body = await self._protocol.read_frame()
        except (ConnectionClosed, ProtocolError) as exc:
            raise self._read_failed(exc)
        expected = self._awaiting
        if expected is not None:
            # The first reply to a request (drained after a cancellation or timeout) must
            # answer it; the later replies of a moreToCome stream are not checked (as PyMongo).
            if header[8:12] != expected:
                raise self._mismatch(header, expected)
            self._awaiting = None
        return self._unpack(header, body)

    def _mismatch(self, header: bytes, expected: bytes) -> ProtocolError:
        """Close the connection (a stale or duplicated frame shifted its replies: none that
        follows can be trusted); the ProtocolError to raise, PyMongo's message."""
        self.close("error")
        return _handshake.response_id_mismatch(
            self.address, _INT32_UNPACK(header, 8)[0], _INT32_UNPACK(expected, 0)[0]
        )

    def _read_failed(self, exc: BaseException) -> BaseException:
        """Close the connection; the exception to raise for a failed read."""
        self.close("error")
        if isinstance(exc, ConnectionClosed):
            err = AutoReconnect(f"{self.address[0]}:{self.address[1]}: {exc}")
            err.__cause__ = exc.__cause__  # the transport's error, if any
            err.__suppress_context__ = True
            return err
        return exc

    def _unpack(self, header: bytes, body: Any) -> Tuple[int, Any]:
        """``(flagBits, section-0 BSON)`` of a reply frame (OP_MSG, OP_REPLY, OP_COMPRESSED)."""
        op_code = _HEADER_UNPACK(header)[3]
        try:
            if op_code == OP_COMPRESSED:
                if _compression is None:
                    raise ProtocolError("Server sent OP_COMPRESSED but compression is unavailable")
                # A decompression bomb is refused at the server's maxMessageSizeBytes
                # (the default before the handshake), not inflated to the 48 MB default.
                op_code, body = _compression.decompress_body(body, self.max_message_size)
            if op_code == OP_MSG:
                n = len(body)
                if n > _BIG_REPLY and body[4] == 0 and body[0] == 0 and body[1] == 0 and _INT32_UNPACK(body, 5)[0] == n - 5:
                    # A large reply (a cursor batch) with one kind-0 section and no checksum:
                    # decode it in place rather than copying megabytes out of the body first.
                    return _UINT32_UNPACK(body, 0)[0], memoryview(body)[5:]
                return _msg.decode_op_msg_body(body, header) if _DECODE_TAKES_HEADER else _msg.decode_op_msg_body(body)
            return _msg.unpack_reply(op_code, header, body)
        except ProtocolError:
            self.close("error")
            raise
        except Exception as exc:
            self.close("error")
            raise ProtocolError(f"Malformed reply from server: {exc}") from exc

    async def read_more(self, codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS) -> Dict[str, Any]:
        """Read the next reply of an exhaust / moreToCome stream (streaming monitors)."""
        flags, doc = await self._read_reply()
        self._more_to_come = bool(flags & MORE_TO_COME)
        self.pending_reply = self._more_to_come
        try:
            return _decode(doc, codec_options)
        except Exception as exc:  # bson.errors.InvalidBSON and friends
            self.close("error")
            raise ProtocolError(f"Invalid BSON in server reply: {exc}") from exc

    async def drain(self) -> None:
        """Read and discard the outstanding reply (or replies, while moreToCome is set)."""
        while self.pending_reply:
            flags, _doc = await self._read_reply()
            self._more_to_come = bool(flags & MORE_TO_COME)
            self.pending_reply = self._more_to_come

    def close(self, reason: Optional[str] = None) -> None:
        """Close the socket; idempotent and never raises."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        try:
            self._transport.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<amongo Connection {self.address[0]}:{self.address[1]} id={self.id} gen={self.generation}>"


def _decode_takes_header() -> bool:
    import inspect

    try:
        return len(inspect.signature(_msg.decode_op_msg_body).parameters) >= 2
    except (TypeError, ValueError):
        return False


_DECODE_TAKES_HEADER = _decode_takes_header()
