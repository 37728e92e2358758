"""``raw``: the cheapest possible asyncio client, the floor no driver can beat.

A small LIFO set of asyncio TCP connections (at most ``max_pool_size``, opened on demand,
no handshake), pre-encoded OP_MSG frames with the request id patched in, replies received by
a minimal ``asyncio.BufferedProtocol`` (``recv_into`` a reusable buffer; a large reply into a
buffer of its own size) and decoded with ``bson.decode`` (C codec). Write commands encode only
the user's documents, insert_many's in one ``bson.encode`` call; everything constant is
encoded once. No sessions, no retries, no monitoring, no server selection.

(Until 2026-11-25 this read replies with ``StreamReader.readexactly``; under the default
asyncio loop that alone cost more per operation than amongo's whole driver layer, so the
"floor" was not one. benchmarks/README.md has both.)
"""
from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import bson
from bson import ObjectId
from bson.int64 import Int64

from ..wire import INT32, INT64, MSG_PREFIX, OP_MSG, op_msg
from ..workloads import DB

_SENTINEL = 0x7A7A7A7A7A7A7A7A
_MAX_MESSAGE = 48_000_000


class _Template:
    """A pre-encoded OP_MSG frame split around the request id (offset 4)."""

    __slots__ = ("head", "tail")

    def __init__(self, frame: bytes) -> None:
        self.head = frame[:4]
        self.tail = frame[8:]


class _Proto(asyncio.BufferedProtocol):
    """Cuts whole frames out of the byte stream; one reader at a time."""

    def __init__(self) -> None:
        self.buf = bytearray(1 << 16)
        self.view = memoryview(self.buf)
        self.end = 0
        self.big: Optional[bytearray] = None
        self.big_pos = 0
        self.frames: Deque[Any] = deque()
        self.waiter: Optional[asyncio.Future] = None
        self.lost = False

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.big is not None:
            return memoryview(self.big)[self.big_pos:]
        return self.view[self.end:]

    def buffer_updated(self, n: int) -> None:
        if self.big is not None:
            self.big_pos += n
            if self.big_pos < len(self.big):
                return
            self.frames.append(self.big)
            self.big = None
        else:
            self.end += n
            start = 0
            view = self.view
            while self.end - start >= 4:
                length = INT32.unpack_from(view, start)[0]
                if self.end - start < length:
                    if length > len(self.buf):  # receive the rest in place
                        big = self.big = bytearray(length)
                        have = self.end - start
                        big[:have] = view[start:self.end]
                        self.big_pos = have
                        start = self.end
                    break
                self.frames.append(bytes(view[start:start + length]))
                start += length
            rest = self.end - start
            if rest and start:
                self.buf[:rest] = bytes(view[start:self.end])
            self.end = rest
        w = self.waiter
        if w is not None and self.frames and not w.done():
            w.set_result(None)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def read(self) -> Any:
        while not self.frames:
            if self.lost:
                raise ConnectionError("connection lost")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.frames.popleft()


class _Conn:
    __slots__ = ("proto", "transport")

    def __init__(self, proto: Optional[_Proto], transport: Any) -> None:
        self.proto = proto
        self.transport = transport


class CommandError(Exception):
    pass


class RawAdapter:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._idle: List[_Conn] = []
        self._all: List[_Conn] = []
        self._waiters: Deque[asyncio.Future] = deque()
        self._max = 100
        self._host = "127.0.0.1"
        self._port = 27017
        self._tmpl: Dict[Any, _Template] = {}
        self._getmore: Dict[str, Tuple[bytes, int]] = {}
        self._write_heads: Dict[Tuple[str, str], bytes] = {}
        self._hello = self._template({"hello": 1, "$db": "admin"})
        self._oid_rand = os.urandom(5)
        self._oid_count = int.from_bytes(os.urandom(3), "big")

    # -- connections ---------------------------------------------------------------------------
    async def connect(self, uri: str, max_pool_size: int) -> None:
        parts = urlsplit(uri)
        host = parts.netloc.split(",")[0].rsplit("@", 1)[-1]
        h, _, p = host.rpartition(":")
        self._host, self._port = (h or host), int(p or 27017)
        self._max = max_pool_size
        await self.hello()

    async def close(self) -> None:
        for c in self._all:
            if c.transport is not None:
                c.transport.close()
        self._all.clear()
        self._idle.clear()

    async def _acquire(self) -> _Conn:
        if self._idle:
            return self._idle.pop()
        if len(self._all) < self._max:
            placeholder = _Conn(None, None)  # type: ignore[arg-type]
            self._all.append(placeholder)
            try:
                t, p = await asyncio.get_running_loop().create_connection(
                    _Proto, self._host, self._port)
            except BaseException:
                self._all.remove(placeholder)
                raise
            placeholder.proto, placeholder.transport = p, t
            return placeholder
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut

    def _release(self, conn: _Conn) -> None:
        waiters = self._waiters
        while waiters:
            w = waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return
        self._idle.append(conn)

    async def _roundtrip(self, frame: bytes) -> Dict[str, Any]:
        conn = await self._acquire()
        try:
            conn.transport.write(frame)
            frame = await conn.proto.read()
        except BaseException:
            conn.transport.close()
            self._all.remove(conn)
            raise
        self._release(conn)
        # header (16) + flagBits (4) + section kind 0 (1) + document (one section).
        reply = bson.decode(memoryview(frame)[21:])
        if reply.get("ok") != 1:
            raise CommandError(reply)
        return reply

    # -- frames --------------------------------------------------------------------------------
    @staticmethod
    def _template(cmd: Dict[str, Any]) -> _Template:
        return _Template(op_msg(0, bson.encode(cmd)))

    def _send(self, t: _Template) -> Any:
        return self._roundtrip(b"".join((t.head, INT32.pack(next(self._ids)), t.tail)))

    def _getmore_frame(self, coll: str, cursor_id: int) -> bytes:
        entry = self._getmore.get(coll)
        if entry is None:
            frame = op_msg(0, bson.encode({"getMore": Int64(_SENTINEL), "collection": coll,
                                           "$db": DB}))
            entry = self._getmore[coll] = (frame, frame.index(INT64.pack(_SENTINEL)))
        frame, off = entry
        return b"".join((frame[:4], INT32.pack(next(self._ids)), frame[8:off],
                         INT64.pack(cursor_id), frame[off + 8:]))

    def _write_frame(self, cmd: str, coll: str, ident: str, docs: bytes) -> bytes:
        body = self._write_heads.get((cmd, coll))
        if body is None:
            body = self._write_heads[(cmd, coll)] = bson.encode(
                {cmd: coll, "ordered": True, "$db": DB})
        if len(docs) > _MAX_MESSAGE:
            raise ValueError("batch too large for one message (not needed by these workloads)")
        return op_msg(next(self._ids), body, sequences=((ident, docs),))

    async def _drain_cursor(self, reply: Dict[str, Any], coll: str) -> List[Any]:
        cursor = reply["cursor"]
        docs = cursor["firstBatch"]
        cid = cursor["id"]
        while cid:
            cursor = (await self._roundtrip(self._getmore_frame(coll, cid)))["cursor"]
            docs.extend(cursor["nextBatch"])
            cid = cursor["id"]
        return docs

    @staticmethod
    def _check_write(reply: Dict[str, Any]) -> Dict[str, Any]:
        if "writeErrors" in reply or "writeConcernError" in reply:
            raise CommandError(reply)
        return reply

    # -- adapter API ---------------------------------------------------------------------------
    async def drop(self, coll: str) -> None:
        try:
            await self._send(self._template({"drop": coll, "$db": DB}))
        except CommandError as exc:
            if exc.args[0].get("code") != 26:  # NamespaceNotFound (old servers)
                raise

    def hello(self) -> Any:
        return self._send(self._hello)

    async def find_one(self, coll: str, flt: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        key = ("find_one", coll, flt["_id"]) if len(flt) == 1 and "_id" in flt else None
        t = self._tmpl.get(key) if key is not None else None
        if t is None:
            t = self._template({"find": coll, "filter": flt, "limit": 1, "singleBatch": True,
                                "$db": DB})
            if key is not None:
                self._tmpl[key] = t
        batch = (await self._send(t))["cursor"]["firstBatch"]
        return batch[0] if batch else None

    async def insert_one(self, coll: str, doc: Dict[str, Any]) -> Any:
        if "_id" not in doc:
            doc["_id"] = ObjectId()
        return self._check_write(await self._roundtrip(
            self._write_frame("insert", coll, "documents", bson.encode(doc))))

    async def insert_many(self, coll: str, docs: List[Dict[str, Any]]) -> Any:
        new_id = self._new_id
        for d in docs:
            if "_id" not in d:
                d["_id"] = new_id()
        # The documents in the command itself: one encode call for all (cheaper than one
        # call per document; fits one command for these workloads).
        body = bson.encode({"insert": coll, "ordered": True, "$db": DB, "documents": docs})
        return self._check_write(await self._roundtrip(op_msg(next(self._ids), body)))

    def _new_id(self) -> ObjectId:
        """ObjectId() without its lock and pid check: 4-byte time, 5 random bytes, counter."""
        self._oid_count = c = (self._oid_count + 1) & 0xFFFFFF
        return ObjectId(int(time.time()).to_bytes(4, "big") + self._oid_rand + c.to_bytes(3, "big"))

    async def find_list(self, coll: str, flt: Dict[str, Any]) -> List[Any]:
        key = ("find", coll, repr(flt))
        t = self._tmpl.get(key)
        if t is None:
            t = self._tmpl[key] = self._template({"find": coll, "filter": flt, "$db": DB})
        return await self._drain_cursor(await self._send(t), coll)

    async def aggregate_list(self, coll: str, pipeline: List[Any]) -> List[Any]:
        key = ("aggregate", coll, id(pipeline))
        t = self._tmpl.get(key)
        if t is None:
            t = self._tmpl[key] = self._template(
                {"aggregate": coll, "pipeline": pipeline, "cursor": {}, "$db": DB})
            self._tmpl[("pin", id(pipeline))] = pipeline  # type: ignore[assignment]
        return await self._drain_cursor(await self._send(t), coll)

    async def bulk_write(self, coll: str, reqs: List[Tuple[str, Any, Any]]) -> Any:
        """Ordered bulk write: one command per run of consecutive same-kind requests."""
        i, n = 0, len(reqs)
        while i < n:
            kind = reqs[i][0]
            j = i
            while j < n and reqs[j][0] == kind:
                j += 1
            group = reqs[i:j]
            if kind == "insert":
                for _, d, _ in group:
                    if "_id" not in d:
                        d["_id"] = ObjectId()
                frame = self._write_frame("insert", coll, "documents",
                                          b"".join([bson.encode(d) for _, d, _ in group]))
            elif kind == "update":
                frame = self._write_frame("update", coll, "updates", b"".join(
                    [bson.encode({"q": q, "u": u}) for _, q, u in group]))
            else:
                frame = self._write_frame("delete", coll, "deletes", b"".join(
                    [bson.encode({"q": q, "limit": 1}) for _, q, _ in group]))
            self._check_write(await self._roundtrip(frame))
            i = j


__all__ = ["RawAdapter", "CommandError", "MSG_PREFIX", "OP_MSG"]
