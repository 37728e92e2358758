"""An asyncio TCP proxy in front of a real server, for fault injection and compression tests.

It frames MongoDB messages itself (its own code, independent of ``amongo.wire``; pymongo's
``bson`` is used only to decode/encode documents) so tests check amongo against an independent
implementation.

Usage (in the test's event loop)::

    async with Proxy("127.0.0.1", server.port) as p:
        uri = f"mongodb://127.0.0.1:{p.port}/?directConnection=true"
        p.fail_next(command="find", action="close")

or, for synchronous clients (pymongo), with the proxy's loop in a background thread::

    with Proxy("127.0.0.1", server.port, compressors=["zstd", "zlib", "snappy"]) as p:
        ...

Fault actions (``fail_next(command=..., action=..., predicate=..., times=1)``):

``close``              close the client connection when the request arrives (not forwarded)
``close_after_reply``  forward the request, read the reply, then close without sending it
``delay``              deliver the reply after ``delay`` seconds (default 1.0)
``drop``               forward the request and swallow the reply (connection stays open)
``truncate``           send only the first part of the reply (``value`` bytes, default half), then close
``corrupt_length``     reply with a bad messageLength (``value``, default 12: shorter than a header)
``corrupt_opcode``     reply with an unknown opCode (``value``, default 9999)
``corrupt_checksum``   OP_MSG reply with checksumPresent set and a wrong CRC-32C
``reply``              answer with ``reply`` (a document) instead of forwarding the request
``stall``              send the first part of the reply (``value`` bytes, default half), then hold the
                       connection open without sending anything more (a hung peer mid-frame)
``chunked``            deliver the reply in pieces of ``value`` bytes (default 7), 1 ms apart:
                       partial frames that must still be read correctly
``duplicate``          deliver the reply twice (the copy answers no request)
``stale``              deliver the previous reply seen on this connection, then this one (a stale
                       frame ahead of the right one); the reply itself twice when there is none
``reorder``            hold the reply until the next reply on this connection (or ``delay``
                       seconds) and deliver the two swapped
``reset``              forward the request, then reset the client connection (RST) instead of replying
``corrupt``            flip ``value`` (default 3) random bytes of the reply's structure (responseTo,
                       opCode, flagBits, first section kind and length); random with ``seed``

Random faults for campaigns: :meth:`Proxy.chaos` adds a rule that picks, with probability
``rate``, one of ``actions`` for each matching request (a seeded :class:`random.Random`).
:meth:`Proxy.fault_counts` counts the faults applied by kind.

Load-balancer mode (``load_balancer=True``): the proxy plays a load balancer in front of one
mongos, the closest real thing to a load-balanced deployment with a server that has no LB
mode. On a connection whose handshake hello says ``loadBalanced: true``, every hello/isMaster
reply is decoded, made a mongos reply (``msg: "isdbgrid"``; no ``setName``, ``hosts``,
``primary``, ``me``... so nothing looks like a replica set) and given the proxy's
``serviceId`` of the mongos behind it (a real LB-fronted mongos does the same), then
re-encoded. ``mongoses=N`` plays N mongoses behind the balancer: connections are spread over
N service ids round-robin (all reach the same upstream server).
``loadBalanced`` is removed from the hello before it is forwarded. Hellos without
``loadBalanced: true`` get the mongos reply without ``serviceId``.

Compression translation (``compressors=[...]``): the proxy adds ``compression`` to the reply of
a hello that asked for compression (the client's list intersected with ``compressors``, in the
client's order), decompresses OP_COMPRESSED requests before forwarding them, and compresses each
reply with the compressor the request used. :class:`ConnStats` records what happened per
connection (``p.connections``), aggregated by ``p.stats()``.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import bson
from bson import ObjectId

__all__ = ["COMPRESSOR_IDS", "ConnStats", "Proxy", "Rule", "compress", "decompress"]

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1

HELLO_NAMES = {"hello", "ismaster"}
# Commands whose messages must never be compressed (the compression spec's list).
UNCOMPRESSIBLE = {"hello", "ismaster", "saslstart", "saslcontinue", "getnonce", "authenticate",
                  "createuser", "updateuser", "copydbsaslstart", "copydbgetnonce", "copydb"}

# Replica-set fields a mongos's hello reply does not have (load-balancer mode removes them).
RS_HELLO_FIELDS = ("setName", "setVersion", "hosts", "passives", "arbiters", "primary", "me",
                   "secondary", "arbiterOnly", "passive", "hidden", "tags", "electionId",
                   "lastWrite")

COMPRESSOR_IDS = {"noop": 0, "snappy": 1, "zlib": 2, "zstd": 3}
COMPRESSOR_NAMES = {v: k for k, v in COMPRESSOR_IDS.items()}

ACTIONS = {"close", "close_after_reply", "delay", "drop", "truncate", "corrupt_length",
           "corrupt_opcode", "corrupt_checksum", "reply", "stall", "chunked", "duplicate", "stale",
           "reorder", "reset", "corrupt"}


# --------------------------------------------------------------------------------------------
# compression (own implementation over the stdlib / zstandard / python-snappy)


def compress(compressor_id: int, data: bytes, zlib_level: int = -1) -> bytes:
    if compressor_id == 0:
        return data
    if compressor_id == 1:
        import snappy

        return snappy.compress(data)
    if compressor_id == 2:
        return zlib.compress(data, zlib_level)
    if compressor_id == 3:
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(f"unknown compressor id {compressor_id}")


def decompress(compressor_id: int, data: bytes) -> bytes:
    if compressor_id == 0:
        return data
    if compressor_id == 1:
        import snappy

        return snappy.decompress(data)
    if compressor_id == 2:
        return zlib.decompress(data)
    if compressor_id == 3:
        import zstandard

        # A frame may or may not record its content size: stream it.
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(f"unknown compressor id {compressor_id}")


# --------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli), table-driven, only to build deliberately *wrong* checksums and to check


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# framing


@dataclass
class Frame:
    request_id: int
    response_to: int
    opcode: int
    body: bytes  # everything after the 16-byte header

    def to_bytes(self) -> bytes:
        return struct.pack("<iiii", 16 + len(self.body), self.request_id, self.response_to,
                           self.opcode) + self.body


async def read_frame(reader: asyncio.StreamReader) -> Optional[Frame]:
    """Read one message; ``None`` on a clean EOF between messages."""
    try:
        header = await reader.readexactly(16)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    length, request_id, response_to, opcode = struct.unpack("<iiii", header)
    if length < 16 or length > 64 * 1024 * 1024:
        raise ValueError(f"bad message length {length}")
    body = await reader.readexactly(length - 16)
    return Frame(request_id, response_to, opcode, body)


def _cstring_end(buf: bytes, start: int) -> int:
    end = buf.index(b"\x00", start)
    return end


def msg_document(body: bytes) -> tuple[int, dict]:
    """Return ``(flagBits, section-0 document)`` of an OP_MSG body."""
    (flags,) = struct.unpack_from("<I", body, 0)
    pos = 4
    end = len(body) - (4 if flags & MSG_CHECKSUM_PRESENT else 0)
    doc: Optional[dict] = None
    while pos < end:
        kind = body[pos]
        pos += 1
        (size,) = struct.unpack_from("<i", body, pos)
        if kind == 0:
            doc = bson.decode(body[pos:pos + size])
        elif kind != 1:
            raise ValueError(f"unknown OP_MSG section kind {kind}")
        pos += size
    if doc is None:
        raise ValueError("OP_MSG without a kind-0 section")
    return flags, doc


def build_msg(doc: dict, flags: int = 0) -> bytes:
    return struct.pack("<I", flags & ~MSG_CHECKSUM_PRESENT) + b"\x00" + bson.encode(doc)


def query_document(body: bytes) -> dict:
    """The query document of an OP_QUERY body."""
    end = _cstring_end(body, 4)
    pos = end + 1 + 8  # skip numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", body, pos)
    return bson.decode(body[pos:pos + size])


def reply_document(body: bytes) -> tuple[tuple[int, int, int, int], dict]:
    flags, cursor_id, starting_from, n = struct.unpack_from("<iqii", body, 0)
    (size,) = struct.unpack_from("<i", body, 20)
    return (flags, cursor_id, starting_from, n), bson.decode(body[20:20 + size])


def build_reply(fields: tuple[int, int, int, int], doc: dict) -> bytes:
    return struct.pack("<iqii", fields[0], fields[1], fields[2], 1) + bson.encode(doc)


def command_of(opcode: int, body: bytes) -> tuple[str, dict]:
    """Command name and document of a (decompressed) request, or ``("", {})``."""
    try:
        if opcode == OP_MSG:
            doc = msg_document(body)[1]
        elif opcode == OP_QUERY:
            doc = query_document(body)
        else:
            return "", {}
    except Exception:
        return "", {}
    name = next(iter(doc), "")
    return name, doc


# --------------------------------------------------------------------------------------------
# rules and stats


@dataclass
class Rule:
    """A fault: applied to requests matching *command* (case-insensitive) and *predicate*."""

    action: str
    command: Optional[str] = None
    predicate: Optional[Callable[[dict], bool]] = None
    times: Optional[int] = 1  # None: forever
    delay: float = 1.0
    value: Any = None
    reply: Optional[dict] = None
    hits: int = 0
    #: chaos rules: probability of applying one of ``choices`` (chosen with ``rng``)
    rate: Optional[float] = None
    choices: Optional[list] = None
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def matches(self, name: str, doc: dict) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.command is not None and name.lower() != self.command.lower():
            return False
        if self.predicate is not None and not self.predicate(doc):
            return False
        return True

    def pick(self) -> Optional[str]:
        """The action to apply to a matching request (``None``: let this one through)."""
        if self.rate is None:
            return self.action
        if self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.choices or [self.action])

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass
class ConnStats:
    """What the proxy saw on one client connection."""

    id: int
    requests: int = 0
    replies: int = 0
    commands: list = field(default_factory=list)
    compressed_requests: int = 0
    compressed_replies: int = 0
    request_compressors: list = field(default_factory=list)  # names, one per compressed request
    reply_compressors: list = field(default_factory=list)
    client_compression: Optional[list] = None  # what the client's hello asked for
    negotiated: Optional[list] = None  # what the proxy's hello reply advertised
    faults: list = field(default_factory=list)  # actions applied
    closed: bool = False


@dataclass
class _Pending:
    name: str
    compressor_id: Optional[int]
    rule: Optional[Rule]
    hello_compression: Optional[list]
    lb_hello: bool = False  # a hello reply to rewrite as a load balancer's
    action: Optional[str] = None
    doc: Optional[dict] = None  # the request (streamed replies of an exhaust request match it again)


class _Conn:
    def __init__(self, proxy: "Proxy", cid: int, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.stats = ConnStats(cid)
        self.c_reader, self.c_writer = reader, writer
        self.s_reader: Optional[asyncio.StreamReader] = None
        self.s_writer: Optional[asyncio.StreamWriter] = None
        self.pending: dict[int, _Pending] = {}
        self.tasks: list[asyncio.Task] = []
        self.load_balanced = False  # the handshake asked for load-balanced mode
        self.last_reply: Optional[bytes] = None  # the last reply delivered (for ``stale``)
        self.held: Optional[tuple[Frame, _Pending]] = None  # a reply held back (``reorder``)
        self.held_task: Optional[asyncio.Task] = None

    async def run(self) -> None:
        try:
            self.s_reader, self.s_writer = await asyncio.open_connection(
                self.proxy.upstream_host, self.proxy.upstream_port)
        except OSError:
            self.close()
            return
        self.tasks = [asyncio.ensure_future(self._requests()), asyncio.ensure_future(self._replies())]
        try:
            await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.close()
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self) -> None:
        self.stats.closed = True
        if self.held_task is not None:
            self.held_task.cancel()
        for w in (self.c_writer, self.s_writer):
            if w is not None:
                try:
                    w.close()
                except Exception:
                    pass

    async def _send_client(self, data: bytes) -> None:
        self.c_writer.write(data)
        await self.c_writer.drain()

    # client -> server
    async def _requests(self) -> None:
        assert self.s_writer is not None
        while True:
            frame = await read_frame(self.c_reader)
            if frame is None:
                return
            compressor_id: Optional[int] = None
            if frame.opcode == OP_COMPRESSED:
                original_opcode, size, compressor_id = struct.unpack_from("<iiB", frame.body, 0)
                body = decompress(compressor_id, frame.body[9:])
                if len(body) != size:
                    raise ValueError(f"uncompressedSize {size} != {len(body)}")
                frame = Frame(frame.request_id, frame.response_to, original_opcode, body)
                self.stats.compressed_requests += 1
                self.stats.request_compressors.append(COMPRESSOR_NAMES.get(compressor_id, str(compressor_id)))
            name, doc = command_of(frame.opcode, frame.body)
            self.stats.requests += 1
            self.stats.commands.append(name)
            hello_compression = None
            if name.lower() in HELLO_NAMES and "compression" in doc:
                hello_compression = list(doc["compression"])
                self.stats.client_compression = hello_compression
            lb_hello = self.proxy.load_balancer and name.lower() in HELLO_NAMES
            if lb_hello and frame.opcode == OP_MSG and "loadBalanced" in doc:
                self.load_balanced = self.load_balanced or doc["loadBalanced"] is True
                flags = struct.unpack_from("<I", frame.body, 0)[0]
                doc.pop("loadBalanced")
                frame = Frame(frame.request_id, frame.response_to, OP_MSG, build_msg(doc, flags))
            rule, action = self.proxy._match(name, doc)
            self.pending[frame.request_id] = _Pending(name, compressor_id, rule, hello_compression, lb_hello, action, doc)
            if action is not None:
                self.stats.faults.append(action)
                if action == "close":
                    return
                if action == "reply":
                    reply_doc = dict(rule.reply or {"ok": 1})
                    await self._deliver(Frame(self.proxy._next_id(), frame.request_id, OP_MSG,
                                              build_msg(reply_doc)), self.pending.pop(frame.request_id))
                    continue
            self.s_writer.write(frame.to_bytes())
            await self.s_writer.drain()

    # server -> client
    async def _replies(self) -> None:
        assert self.s_reader is not None
        while True:
            frame = await read_frame(self.s_reader)
            if frame is None:
                return
            pend = self.pending.pop(frame.response_to, None)
            if frame.opcode == OP_MSG and pend is not None:
                flags = struct.unpack_from("<I", frame.body, 0)[0]
                if flags & MSG_MORE_TO_COME:  # exhaust: the next reply answers this one
                    # Each streamed reply is matched against the rules again, as if the
                    # request had been sent again (``$moreToCome`` is set in the document).
                    doc = dict(pend.doc or {}, **{"$moreToCome": True})
                    rule, action = self.proxy._match(pend.name, doc)
                    if action is not None:
                        self.stats.faults.append(action)
                    self.pending[frame.request_id] = _Pending(pend.name, pend.compressor_id, rule, None,
                                                              action, doc)
            if pend is None:
                pend = _Pending("", None, None, None)
            rule, action = pend.rule, pend.action
            if action in ("close_after_reply", "close"):  # ("close": a streamed reply)
                return
            if action == "drop":
                continue
            if action == "delay":
                await asyncio.sleep(rule.delay)
            if action == "reset":
                self.reset()
                return
            if action == "reorder" and self.held is None:
                pend.action = None  # deliver it plainly once released
                self.held = (frame, pend)
                self.held_task = asyncio.ensure_future(self._release_held(rule.delay))
                continue
            if await self._deliver(frame, pend) is False:
                return
            if self.held is not None:
                held, self.held = self.held, None
                if self.held_task is not None:
                    self.held_task.cancel()
                    self.held_task = None
                await self._deliver(*held)

    async def _release_held(self, delay: float) -> None:
        await asyncio.sleep(delay)
        held, self.held = self.held, None
        self.held_task = None
        if held is not None:
            try:
                await self._deliver(*held)
            except Exception:
                self.close()

    def reset(self) -> None:
        """Close the client connection with a TCP reset (SO_LINGER 0)."""
        sock = self.c_writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.c_writer.transport.abort()
        self.close()

    def _balanced_hello(self, doc: dict) -> dict:
        """A replica-set member's hello reply as a load-balanced mongos would give it."""
        if not doc.get("ok"):
            return doc
        for key in RS_HELLO_FIELDS:
            doc.pop(key, None)
        doc["msg"] = "isdbgrid"
        if self.load_balanced:
            ids = self.proxy.service_ids
            doc["serviceId"] = ids[(self.stats.id - 1) % len(ids)]  # this connection's mongos
        return doc

    async def _deliver(self, frame: Frame, pend: _Pending) -> Optional[bool]:
        proxy = self.proxy
        # compression negotiation on the hello reply
        if pend.hello_compression is not None and proxy.compressors is not None:
            offered = [c for c in pend.hello_compression if c in proxy.compressors]
            self.stats.negotiated = offered
            try:
                if frame.opcode == OP_MSG:
                    flags, doc = msg_document(frame.body)
                    doc["compression"] = offered
                    frame = Frame(frame.request_id, frame.response_to, OP_MSG, build_msg(doc, flags))
                elif frame.opcode == OP_REPLY:
                    fields, doc = reply_document(frame.body)
                    doc["compression"] = offered
                    frame = Frame(frame.request_id, frame.response_to, OP_REPLY, build_reply(fields, doc))
            except Exception:
                pass
        if pend.lb_hello and frame.opcode == OP_MSG:
            flags, doc = msg_document(frame.body)
            frame = Frame(frame.request_id, frame.response_to, OP_MSG,
                          build_msg(self._balanced_hello(doc), flags))
        rule = pend.rule
        action = pend.action
        if action == "corrupt_checksum" and frame.opcode == OP_MSG:
            flags = struct.unpack_from("<I", frame.body, 0)[0]
            if not flags & MSG_CHECKSUM_PRESENT:
                body = struct.pack("<I", flags | MSG_CHECKSUM_PRESENT) + frame.body[4:]
                header = struct.pack("<iiii", 16 + len(body) + 4, frame.request_id, frame.response_to, OP_MSG)
                good = crc32c(header + body)
                frame = Frame(frame.request_id, frame.response_to, OP_MSG,
                              body + struct.pack("<I", good ^ 0xDEADBEEF))
            else:
                good = struct.unpack_from("<I", frame.body, len(frame.body) - 4)[0]
                frame = Frame(frame.request_id, frame.response_to, OP_MSG,
                              frame.body[:-4] + struct.pack("<I", good ^ 0xDEADBEEF))
        # compress with the compressor the request used
        if pend.compressor_id is not None and pend.name.lower() not in UNCOMPRESSIBLE:
            cid = pend.compressor_id
            payload = compress(cid, frame.body, proxy.zlib_level)
            body = struct.pack("<iiB", frame.opcode, len(frame.body), cid) + payload
            frame = Frame(frame.request_id, frame.response_to, OP_COMPRESSED, body)
            self.stats.compressed_replies += 1
            self.stats.reply_compressors.append(COMPRESSOR_NAMES.get(cid, str(cid)))
        data = frame.to_bytes()
        if action == "corrupt_length":
            bad = 12 if rule.value is None else int(rule.value)
            data = struct.pack("<i", bad) + data[4:]
        elif action == "corrupt_opcode":
            bad = 9999 if rule.value is None else int(rule.value)
            data = data[:12] + struct.pack("<i", bad) + data[16:]
        elif action == "corrupt":
            # Only the frame's structure (responseTo, opCode, flagBits, the first section's
            # kind and length): a flipped byte inside a document's values can give another
            # valid document, which no driver can tell from the real one (no checksum).
            buf = bytearray(data)
            end = min(len(buf), 26)
            for _ in range(3 if rule.value is None else int(rule.value)):
                pos = rule.rng.randrange(8, end) if end > 8 else 4
                buf[pos] ^= rule.rng.randrange(1, 256)
            data = bytes(buf)
        elif action in ("truncate", "stall"):
            n = len(data) // 2 if rule.value is None else int(rule.value)
            await self._send_client(data[:n])
            self.stats.replies += 1
            if action == "stall":
                await asyncio.Event().wait()  # until the connection is closed (task cancelled)
            return False
        elif action == "chunked":
            step = 7 if rule.value is None else max(1, int(rule.value))
            pause = 0.001
            for i in range(0, len(data), step):
                await self._send_client(data[i:i + step])
                await asyncio.sleep(pause)
            self.stats.replies += 1
            self.last_reply = data
            return None
        elif action == "stale":
            await self._send_client(self.last_reply if self.last_reply is not None else data)
        elif action == "duplicate":
            await self._send_client(data)
        await self._send_client(data)
        self.stats.replies += 1
        self.last_reply = data
        return None


# --------------------------------------------------------------------------------------------
# the proxy


class Proxy:
    """A MongoDB-aware TCP proxy to ``upstream_host:upstream_port``.

    :param compressors: names ("zstd", "zlib", "snappy", "noop") the proxy negotiates in the
        hello reply on the upstream server's behalf; ``None`` (default) leaves hello alone.
    :param load_balancer: act as a load balancer in front of *mongoses* mongoses (see the
        module docstring); ``service_ids`` are their ``serviceId``s.
    """

    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1",
                 port: int = 0, compressors: Optional[list[str]] = None, zlib_level: int = -1,
                 load_balancer: bool = False, mongoses: int = 1) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.host = host
        self.port = port
        self.compressors = list(compressors) if compressors is not None else None
        self.zlib_level = zlib_level
        self.load_balancer = load_balancer
        self.service_ids = [ObjectId() for _ in range(max(1, mongoses))]
        self.rules: list[Rule] = []
        self.connections: list[ConnStats] = []
        self._conns: set[_Conn] = set()
        self._lock = threading.Lock()
        self._server: Optional[asyncio.base_events.Server] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._id = 0x5000000

    # -- rules -------------------------------------------------------------------------------

    def fail_next(self, command: Optional[str] = None, action: str = "close", *,
                  predicate: Optional[Callable[[dict], bool]] = None, times: Optional[int] = 1,
                  delay: float = 1.0, value: Any = None, reply: Optional[dict] = None,
                  seed: int = 0) -> Rule:
        """Apply *action* to the next *times* requests (``None``: all) matching the rule."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {sorted(ACTIONS)}")
        rule = Rule(action, command, predicate, times, delay, value, reply, seed=seed)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fail_always(self, command: Optional[str] = None, action: str = "close", **kw: Any) -> Rule:
        return self.fail_next(command, action, times=None, **kw)

    def chaos(self, actions: list, rate: float, *, seed: int = 0, command: Optional[str] = None,
              predicate: Optional[Callable[[dict], bool]] = None, delay: float = 1.0,
              value: Any = None) -> Rule:
        """For every matching request, apply one of *actions* with probability *rate*
        (seeded: the same requests in the same order get the same faults)."""
        unknown = set(actions) - ACTIONS
        if unknown or not actions:
            raise ValueError(f"unknown actions {sorted(unknown)}; expected some of {sorted(ACTIONS)}")
        rule = Rule(actions[0], command, predicate, None, delay, value, None, rate=rate,
                    choices=list(actions), seed=seed)
        with self._lock:
            self.rules.append(rule)
        return rule

    def fault_counts(self) -> Counter:
        """Faults applied so far, by kind."""
        with self._lock:
            conns = list(self.connections)
        return Counter(f for c in conns for f in c.faults)

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def _match(self, name: str, doc: dict) -> tuple[Optional[Rule], Optional[str]]:
        with self._lock:
            for rule in self.rules:
                if rule.matches(name, doc):
                    action = rule.pick()
                    if action is None:
                        continue
                    rule.hits += 1
                    return rule, action
        return None, None

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    # -- stats --------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Totals over all connections so far."""
        with self._lock:
            conns = list(self.connections)
        return {
            "connections": len(conns),
            "requests": sum(c.requests for c in conns),
            "replies": sum(c.replies for c in conns),
            "compressed_requests": sum(c.compressed_requests for c in conns),
            "compressed_replies": sum(c.compressed_replies for c in conns),
            "request_compressors": sorted({n for c in conns for n in c.request_compressors}),
            "reply_compressors": sorted({n for c in conns for n in c.reply_compressors}),
            "faults": [f for c in conns for f in c.faults],
        }

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def uri(self, **options: str) -> str:
        """``mongodb://host:port/?directConnection=true`` (``loadBalanced=true`` in load-balancer
        mode) plus *options* (the proxy hides topology)."""
        mode = "loadBalanced" if self.load_balancer else "directConnection"
        opts = {mode: "true", **options}
        return f"mongodb://{self.host}:{self.port}/?" + "&".join(f"{k}={v}" for k, v in opts.items())

    # -- lifecycle ----------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            conn = _Conn(self, len(self.connections) + 1, reader, writer)
            self.connections.append(conn.stats)
        self._conns.add(conn)
        try:
            await conn.run()
        except Exception:
            conn.close()
        finally:
            self._conns.discard(conn)

    async def start(self) -> "Proxy":
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close()
            for t in conn.tasks:
                t.cancel()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except asyncio.TimeoutError:
                pass
            self._server = None

    def close_connections(self) -> None:
        """Close every open client connection (thread-safe)."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_conns)
        else:
            self._close_conns()

    def _close_conns(self) -> None:
        for conn in list(self._conns):
            conn.close()

    async def __aenter__(self) -> "Proxy":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # -- threaded mode for synchronous clients -----------------------------------------------

    def __enter__(self) -> "Proxy":
        started = threading.Event()
        error: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # pragma: no cover
                error.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="amongo-test-proxy", daemon=True)
        self._thread.start()
        started.wait(10)
        if error:
            raise error[0]
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
