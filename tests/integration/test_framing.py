"""The BufferedProtocol frame reader through real sockets.

A tiny asyncio server in the test answers an amongo :class:`Connection`'s handshake and
commands with OP_MSG replies written in awkward ways: a byte at a time, a multi-megabyte reply in
7 KB pieces, two replies in one write, a connection closed or a bad length mid-reply. No
MongoDB server is needed.
"""
from __future__ import annotations

import asyncio
import random
import socket
import ssl
import struct
from typing import Any, Awaitable, Callable, Dict, List, Optional

import bson
import pytest
from pymongo.errors import AutoReconnect, NetworkTimeout, ProtocolError

import amongo.connection as connection_mod
from amongo.connection import Connection, ConnectionOptions
from amongo.protocol import BUFFER_SIZE, FrameProtocol
from amongo.wire.compression import available_compressors, compress_frame, make_compressor
from amongo.wire.message import MORE_TO_COME, OP_COMPRESSED, decode_op_msg, encode_op_msg

HELLO = {
    "helloOk": True,
    "ismaster": True,
    "isWritablePrimary": True,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 1,
    "minWireVersion": 0,
    "maxWireVersion": 21,
    "readOnly": False,
    "ok": 1.0,
}

Writer = asyncio.StreamWriter


class Net:
    """Plain TCP, or TLS with a throwaway CA (the SSL transport feeds a BufferedProtocol its own
    way: decrypted records, ``get_buffer`` with its own size hint)."""

    def __init__(self, kind: str, tls_files: Optional[Dict[str, str]] = None) -> None:
        self.kind = kind
        self.server_ssl: Optional[ssl.SSLContext] = None
        self.client_ssl: Optional[ssl.SSLContext] = None
        if kind == "tls":
            assert tls_files is not None
            self.server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.server_ssl.load_cert_chain(tls_files["server_cert"], tls_files["server_key"])
            self.client_ssl = ssl.create_default_context(cafile=tls_files["ca"])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    from servers import make_tls_files

    return make_tls_files(tmp_path_factory.mktemp("framing-tls"))


@pytest.fixture(params=["tcp", "tls"])
def net(request: pytest.FixtureRequest) -> Net:
    if request.param == "tcp":
        return Net("tcp")
    return Net("tls", request.getfixturevalue("tls_files"))
#: handler(writer, request_id, command_document)
Handler = Callable[[Writer, int, Dict[str, Any]], Awaitable[None]]


def reply_frame(request_id: int, doc: Dict[str, Any], *, flags: int = 0, reply_id: int = 1) -> bytes:
    return encode_op_msg(reply_id, bson.encode(doc), flags=flags, response_to=request_id)


async def write_whole(writer: Writer, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def write_pieces(writer: Writer, data: bytes, size: int, pause: bool = True) -> None:
    for i in range(0, len(data), size):
        writer.write(data[i : i + size])
        await writer.drain()
        if pause:
            await asyncio.sleep(0)  # let the client's transport read what is there


async def write_bytewise(writer: Writer, data: bytes) -> None:
    await write_pieces(writer, data, 1)


class TinyServer:
    """Answers the handshake (``hello_writer`` decides how) and hands every other command to
    ``handler``. Records the decoded commands it received."""

    def __init__(
        self,
        handler: Optional[Handler] = None,
        hello_writer: Callable[[Writer, bytes], Awaitable[None]] = write_whole,
        hello_extra: Optional[Dict[str, Any]] = None,
        net: Optional["Net"] = None,
    ) -> None:
        self.net = net or Net("tcp")
        self.handler = handler
        self.hello = {**HELLO, **(hello_extra or {})}
        self.hello_writer = hello_writer
        self.commands: List[Dict[str, Any]] = []
        self.server: Optional[asyncio.AbstractServer] = None
        self.tasks: List[asyncio.Task] = []
        self.writers: List[Writer] = []
        self.read_gate: Optional[asyncio.Event] = None
        #: small kernel receive buffers, so a big request cannot vanish into them
        self.small_rcvbuf = False

    async def __aenter__(self) -> "TinyServer":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.net.server_ssl)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def address(self):
        assert self.server is not None
        return self.server.sockets[0].getsockname()[:2]

    async def _serve(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        self.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        self.writers.append(writer)
        if self.small_rcvbuf:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        try:
            while True:
                if self.commands and self.read_gate is not None:
                    await self.read_gate.wait()  # stop reading requests (after the handshake)
                header = await reader.readexactly(16)
                length, request_id, _rto, _op = struct.unpack("<iiii", header)
                body = await reader.readexactly(length - 16)
                _flags, section0, _seqs = decode_op_msg(header + body)
                cmd = bson.decode(section0)
                self.commands.append(cmd)
                if "isMaster" in cmd or "hello" in cmd:
                    await self.hello_writer(writer, reply_frame(request_id, self.hello))
                else:
                    assert self.handler is not None
                    await self.handler(writer, request_id, cmd)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # __aexit__: end quietly (start_server's callback logs a cancelled task)
        finally:
            writer.close()

    async def connect(self, **opts: Any) -> Connection:
        host, port = self.address
        opts.setdefault("connect_timeout", 5.0)
        opts.setdefault("ssl_context", self.net.client_ssl)
        return await Connection.open((host, port), ConnectionOptions(**opts))


class CountingProtocol(FrameProtocol):
    """FrameProtocol that counts the receives (``buffer_updated`` calls) and bytes."""

    instances: List["CountingProtocol"] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receives = 0
        self.received = 0
        self.big_buffers: List[Any] = []
        self.write_pauses = 0
        CountingProtocol.instances.append(self)

    def get_buffer(self, sizehint: int):
        buf = super().get_buffer(sizehint)
        if buf.obj is not self._buf and (not self.big_buffers or self.big_buffers[-1] is not buf.obj):
            self.big_buffers.append(buf.obj)
        return buf

    def pause_writing(self) -> None:
        self.write_pauses += 1
        super().pause_writing()

    def buffer_updated(self, nbytes: int) -> None:
        self.receives += 1
        self.received += nbytes
        super().buffer_updated(nbytes)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch):
    CountingProtocol.instances = []
    monkeypatch.setattr(connection_mod, "FrameProtocol", CountingProtocol)
    return CountingProtocol.instances


def echo_reply(request_id: int, cmd: Dict[str, Any], **extra: Any) -> bytes:
    return reply_frame(request_id, {"echo": cmd.get("seq"), **extra, "ok": 1.0})


# -- awkward writes ----------------------------------------------------------------------------------
async def test_handshake_and_reply_one_byte_per_write(net: Net, counting) -> None:
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        await write_bytewise(writer, echo_reply(rid, cmd, text="x" * 300))

    async with TinyServer(handler, hello_writer=write_bytewise, net=net) as srv:
        conn = await srv.connect()
        try:
            assert conn.max_wire_version == 21 and conn.is_writable
            (proto,) = counting
            after_hello = proto.receives
            hello_len = len(reply_frame(0, HELLO))
            # the hello reply really came in many receives
            assert after_hello > hello_len // 4, (after_hello, hello_len)
            for seq in range(3):
                reply = await conn.command("admin", {"ping": 1, "seq": seq})
                assert reply == {"echo": seq, "text": "x" * 300, "ok": 1.0}
            assert proto.receives - after_hello > 3 * 300 // 4
            assert not conn.pending_reply and not conn.closed
        finally:
            conn.close()


def cursor_document(target_size: int) -> Dict[str, Any]:
    docs = []
    size = 0
    i = 0
    while size < target_size:
        d = {
            "_id": i,
            "name": f"document number {i}",
            "sub": {"a": i, "b": [i, i + 1, {"c": "y" * 40}], "d": {"e": {"f": float(i)}}},
            "tags": ["t%d" % (i % 7), "u%d" % (i % 11)],
            "blob": bytes([i % 256]) * 64,
        }
        docs.append(d)
        size += len(bson.encode(d))
        i += 1
    return {"cursor": {"id": 0, "ns": "db.coll", "firstBatch": docs}, "ok": 1.0}


async def test_five_megabyte_reply_in_7kb_pieces(net: Net, counting) -> None:
    big = cursor_document(5 * 1024 * 1024)

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        if cmd.get("find"):
            frame = reply_frame(rid, big)
            assert len(frame) > 5 * 1024 * 1024
            await write_pieces(writer, frame, 7 * 1024)
        else:
            await write_whole(writer, echo_reply(rid, cmd))

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            (proto,) = counting
            before = proto.receives
            reply = await conn.command("db", {"find": "coll", "filter": {}})
            assert reply == big
            assert len(reply["cursor"]["firstBatch"]) == len(big["cursor"]["firstBatch"])
            assert proto.receives - before > 5 * 1024 * 1024 // BUFFER_SIZE
            # the body was received into a buffer of its own, of the frame's exact body size
            frame_len = len(reply_frame(0, big))
            assert any(isinstance(b, bytearray) and len(b) == frame_len - 16 for b in proto.big_buffers)
            # and the connection goes on: small reply right after the big one
            assert (await conn.command("admin", {"ping": 1, "seq": 5}))["echo"] == 5
            assert not conn.pending_reply and not conn.closed
        finally:
            conn.close()


@pytest.mark.parametrize("compressor", ["zlib", "zstd", "snappy"])
async def test_big_compressed_reply_in_pieces(net: Net, compressor: str) -> None:
    if compressor not in available_compressors():
        pytest.skip(f"{compressor} library not installed")
    rng = random.Random(5)
    # incompressible payloads, so the OP_COMPRESSED frame itself is larger than the buffer
    doc = {"cursor": {"id": 0, "ns": "db.c", "firstBatch": [{"_id": i, "r": rng.randbytes(1000)} for i in range(400)]}, "ok": 1.0}
    comp = make_compressor(compressor)
    sent: List[int] = []

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        frame = compress_frame(reply_frame(rid, doc if cmd.get("find") else {"echo": cmd.get("seq"), "ok": 1.0}), comp)
        assert struct.unpack_from("<i", frame, 12)[0] == OP_COMPRESSED
        sent.append(len(frame))
        await write_pieces(writer, frame, 7 * 1024)

    async with TinyServer(handler, hello_extra={"compression": [compressor]}, net=net) as srv:
        conn = await srv.connect(compressors=[compressor])
        try:
            assert conn.compressor is not None
            assert await conn.command("db", {"find": "c"}) == doc
            assert sent[-1] > BUFFER_SIZE
            assert (await conn.command("admin", {"ping": 1, "seq": 7}))["echo"] == 7
        finally:
            conn.close()


async def test_exhaust_big_reply_then_small_replies_in_uneven_pieces(net: Net) -> None:
    big = cursor_document(300 * 1024)

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        if "ping" in cmd:
            await write_whole(writer, echo_reply(rid, cmd))
            return
        frames = [reply_frame(rid, big, flags=MORE_TO_COME, reply_id=20)]
        frames += [reply_frame(20 + i, {"n": i, "ok": 1.0}, flags=MORE_TO_COME if i < 3 else 0, reply_id=21 + i) for i in range(1, 4)]
        await write_pieces(writer, b"".join(frames), BUFFER_SIZE + 3)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            for _ in range(2):
                assert await conn.command("db", {"getMore": 1, "collection": "c"}, exhaust_allowed=True) == big
                got = []
                while conn.pending_reply:
                    got.append((await asyncio.wait_for(conn.read_more(), 5))["n"])
                assert got == [1, 2, 3]
            # drain() reads the whole rest of the stream (three more replies), not just one
            assert await conn.command("db", {"getMore": 1, "collection": "c"}, exhaust_allowed=True) == big
            assert conn.pending_reply
            await asyncio.wait_for(conn.drain(), 5)
            assert not conn.pending_reply
            assert (await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 9}), 5))["echo"] == 9
        finally:
            conn.close()


@pytest.mark.parametrize("big", [False, True])
async def test_exhaust_two_replies_in_one_write(net: Net, big: bool) -> None:
    payload = "p" * (200 * 1024 if big else 10)

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        if cmd.get("getMore"):
            first = reply_frame(rid, {"n": 1, "payload": payload, "ok": 1.0}, flags=MORE_TO_COME, reply_id=10)
            second = reply_frame(10, {"n": 2, "payload": payload, "ok": 1.0}, reply_id=11)
            await write_whole(writer, first + second)
        else:
            await write_whole(writer, echo_reply(rid, cmd))

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            r1 = await conn.command("db", {"getMore": 1, "collection": "c"}, exhaust_allowed=True)
            assert r1["n"] == 1 and r1["payload"] == payload
            assert conn.pending_reply  # moreToCome: the stream goes on
            r2 = await conn.read_more()
            assert r2["n"] == 2 and r2["payload"] == payload
            assert not conn.pending_reply
            assert (await conn.command("admin", {"ping": 1, "seq": 3}))["echo"] == 3

            # the same stream, but the second reply drained instead of read
            await conn.command("db", {"getMore": 1, "collection": "c"}, exhaust_allowed=True)
            assert conn.pending_reply
            await asyncio.wait_for(conn.drain(), 5)
            assert not conn.pending_reply
            assert (await conn.command("admin", {"ping": 1, "seq": 4}))["echo"] == 4
            assert not conn.closed
        finally:
            conn.close()


# -- failures mid-reply --------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", ["header", "small-body", "big-body"])
async def test_server_closes_mid_reply(net: Net, cut: str) -> None:
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        size = 300 * 1024 if cut == "big-body" else 100
        frame = echo_reply(rid, cmd, payload="z" * size)
        part = frame[:9] if cut == "header" else frame[: len(frame) // 2]
        await write_pieces(writer, part, 7 * 1024)
        writer.close()

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            with pytest.raises(AutoReconnect) as info:
                await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 5)
            assert info.value.__cause__ is None  # a clean close: no transport error
            assert conn.closed
            with pytest.raises(AutoReconnect):  # and it stays unusable
                await conn.command("admin", {"ping": 1, "seq": 2})
        finally:
            conn.close()


async def test_server_resets_mid_reply(net: Net) -> None:
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        frame = echo_reply(rid, cmd, payload="z" * 1000)
        await write_whole(writer, frame[:500])
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            with pytest.raises(AutoReconnect) as info:
                await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 5)
            assert isinstance(info.value.__cause__, ConnectionResetError), repr(info.value.__cause__)
            assert conn.closed
        finally:
            conn.close()


@pytest.mark.parametrize("length", [0, 16, -5, 2**31 - 1])
async def test_bad_reply_length_is_a_protocol_error(net: Net, length: int) -> None:
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        await write_whole(writer, struct.pack("<iiii", length, 1, rid, 2013) + b"\x00" * 64)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            with pytest.raises(ProtocolError):
                await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 5)
            assert conn.closed
            with pytest.raises(AutoReconnect):
                await conn.command("admin", {"ping": 1, "seq": 2})
        finally:
            conn.close()


async def test_bad_length_after_a_good_reply_in_the_same_write(net: Net) -> None:
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        bad = struct.pack("<iiii", 3, 1, rid, 2013)
        await write_whole(writer, echo_reply(rid, cmd) + bad)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            # the good reply is returned; the garbage after it closed the transport, so the
            # next command fails: with the protocol error when the write to the closed
            # transport is dropped (asyncio), or AutoReconnect when it raises (uvloop)
            assert (await conn.command("admin", {"ping": 1, "seq": 1}))["echo"] == 1
            with pytest.raises((ProtocolError, AutoReconnect)):
                await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 2}), 5)
            assert conn.closed
            assert [c.get("seq") for c in srv.commands if "ping" in c][:1] == [1]
        finally:
            conn.close()


async def test_bytes_after_a_bad_length_are_not_returned_as_a_reply(net: Net) -> None:
    """After a frame with an impossible length the rest of the stream is garbage. Here the
    garbage after the bad header happens to contain a well-formed reply: the command must still
    fail with ProtocolError, not return that "reply". (Under TLS, asyncio's SSL transport
    hands the protocol the data it has already decrypted while it is being closed.)"""

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        bad = struct.pack("<iiii", 2**31 - 1, 1, rid, 2013)
        fake = reply_frame(rid, {"fake": True, "ok": 1.0})
        writer.write(bad + b"\x00" * (BUFFER_SIZE - 16) + fake * 4)  # one write, one send
        await writer.drain()

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            try:
                reply = await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 5)
            except ProtocolError:
                pass
            else:
                pytest.fail(f"the bytes after a bad length were returned as a reply: {reply!r}")
            assert conn.closed
        finally:
            conn.close()


# -- cancellation and drain ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [200, 300 * 1024])
async def test_reply_cancelled_halfway_then_drained(net: Net, counting, size: int) -> None:
    release = asyncio.Event()

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        frame = echo_reply(rid, cmd, payload="q" * size)
        if cmd["seq"] == 1:
            half = len(frame) // 2
            await write_pieces(writer, frame[:half], 7 * 1024)
            await release.wait()
            await write_pieces(writer, frame[half:], 7 * 1024)
        else:
            await write_whole(writer, frame)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            (proto,) = counting
            before = proto.received
            task = asyncio.ensure_future(conn.command("admin", {"ping": 1, "seq": 1}))
            expected_half = len(echo_reply(0, {"seq": 1}, payload="q" * size)) // 2
            for _ in range(500):  # until the first half of the reply has arrived
                if proto.received - before >= expected_half:
                    break
                await asyncio.sleep(0.01)
            assert proto.received - before == expected_half
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert conn.pending_reply
            assert not conn.closed
            release.set()
            await asyncio.wait_for(conn.drain(), 5)
            assert not conn.pending_reply
            reply = await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 2}), 5)
            assert reply["echo"] == 2 and reply["payload"] == "q" * size
            assert not conn.closed
        finally:
            conn.close()


@pytest.mark.parametrize("how", ["wait_for", "timeout"])
async def test_reply_cancelled_before_any_byte_then_drained(net: Net, how: str) -> None:
    release = asyncio.Event()

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        if cmd["seq"] == 1:
            await release.wait()
        await write_pieces(writer, echo_reply(rid, cmd), 3)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            if how == "wait_for":  # the caller's cancellation
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 0.05)
            else:  # the command's own timeout
                with pytest.raises(NetworkTimeout):
                    await conn.command("admin", {"ping": 1, "seq": 1}, timeout=0.05)
            assert conn.pending_reply and not conn.closed
            release.set()
            await asyncio.wait_for(conn.drain(), 5)
            assert (await conn.command("admin", {"ping": 1, "seq": 2}))["echo"] == 2
        finally:
            conn.close()


async def test_request_larger_than_the_socket_buffers(net: Net) -> None:
    """A request too big for the socket buffers: written while the reply is awaited (no drain
    in the round trip), then a big reply."""
    big = cursor_document(1024 * 1024)

    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        assert len(cmd["docs"]) == 2000
        await write_pieces(writer, reply_frame(rid, big), 7 * 1024)

    async with TinyServer(handler, net=net) as srv:
        conn = await srv.connect()
        try:
            docs = [{"_id": i, "pad": "a" * 2000} for i in range(2000)]
            reply = await asyncio.wait_for(conn.command("db", {"insert": "c", "docs": docs}), 10)
            assert reply == big
        finally:
            conn.close()


# -- write flow control ---------------------------------------------------------------------------------
# Plain TCP only: asyncio's (and uvloop's) SSL transport encrypts a single large write straight
# into the TCP transport's buffer and only pauses the app protocol for later writes, so a single
# big request never makes FrameProtocol.pause_writing run under TLS (stdlib behaviour).
async def test_unacknowledged_big_write_waits_for_the_server_to_read(counting) -> None:
    net = Net("tcp")  # see the note above: TCP only
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        if "ping" in cmd:
            await write_whole(writer, echo_reply(rid, cmd))

    async with TinyServer(handler, net=net) as srv:
        srv.small_rcvbuf = True
        srv.read_gate = asyncio.Event()  # the server reads nothing after the handshake until set
        conn = await srv.connect()
        try:
            (proto,) = counting
            conn._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
            big = {"insert": "c", "documents": [{"_id": 1, "pad": "w" * (15 * 1024 * 1024)}]}
            task = asyncio.ensure_future(conn.command("db", big, unacknowledged=True))
            await asyncio.sleep(0.3)
            assert proto.write_pauses >= 1  # the transport's buffer went over its high-water mark
            assert not task.done()  # drain() is waiting for the server to read
            srv.read_gate.set()
            assert await asyncio.wait_for(task, 10) == {"ok": 1}
            assert (await asyncio.wait_for(conn.command("admin", {"ping": 1, "seq": 1}), 10))["echo"] == 1
            assert len(srv.commands[1]["documents"][0]["pad"]) == 15 * 1024 * 1024
        finally:
            conn.close()


async def test_unacknowledged_big_write_connection_lost_while_draining(counting) -> None:
    net = Net("tcp")  # see the note above: TCP only
    async def handler(writer: Writer, rid: int, cmd: Dict[str, Any]) -> None:
        pass

    async with TinyServer(handler, net=net) as srv:
        srv.small_rcvbuf = True
        srv.read_gate = asyncio.Event()  # the server reads nothing after the handshake until set
        conn = await srv.connect()
        try:
            (proto,) = counting
            conn._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
            big = {"insert": "c", "documents": [{"_id": 1, "pad": "w" * (15 * 1024 * 1024)}]}
            task = asyncio.ensure_future(conn.command("db", big, unacknowledged=True))
            await asyncio.sleep(0.3)
            assert proto.write_pauses >= 1 and not task.done()
            for w in srv.writers:  # the server goes away without reading
                w.transport.abort()
            with pytest.raises(AutoReconnect):
                await asyncio.wait_for(task, 10)
            assert conn.closed
        finally:
            conn.close()
