"""Replay server: answers each command with a reply recorded from a real server.

Throughput against it is bound by the client, not the server. Run it in its own process::

    python -m benchmarks.replay serve [--store PATH | --synthetic] [--port 0]
    python -m benchmarks.replay record --uri mongodb://... --out PATH

``serve`` prints ``REPLAY_PORT <port>`` once listening and runs (on uvloop when installed)
until SIGTERM/SIGINT.

Matching: by command name and collection (``(name, collection)``; the first element of the
command). Cursor replies (``find``/``aggregate`` with more batches) get a fresh fake cursor
id and ``getMore`` on it returns the recorded ``nextBatch`` replies in order. ``responseTo``
is patched. ``hello``/``isMaster`` (OP_MSG or legacy OP_QUERY), ``ping``, ``endSessions``,
``killCursors`` etc. are answered locally; the hello is SecantusDB's (a one-node replica-set
primary, maxWireVersion 27) with ``hosts``/``me``/``primary`` rewritten to the replay address,
so direct connections and ``replicaSet=secantus`` both work. Awaitable hellos (streaming
monitoring: ``topologyVersion`` + ``maxAwaitTimeMS``) are answered after ``maxAwaitTimeMS``
like a real server with no topology change. Kind-1 document sequences (``insert_many``) are
counted, not decoded; ``moreToCome`` requests get no reply. Unknown commands get
``{ok: 1}`` (writes get a correct ``n``, reads an empty cursor).

Recording (``record``) runs every workload's set-up and a couple of operations through a
recording TCP proxy in front of a real server (SecantusDB), with PyMongo's AsyncMongoClient,
and stores the first reply per ``(name, collection)`` plus the getMore replies of its cursor.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import os
import signal
import sys
from typing import Any, Dict, List, Optional, Tuple

import bson
from bson import ObjectId, Timestamp
from bson.int64 import Int64

from .wire import (HEADER, INT32, INT64, MORE_TO_COME, MSG_PREFIX, OP_MSG, OP_QUERY, OP_REPLY,
                   REPLY_PREFIX, command_key, count_array, count_docs, first_key, msg_body,
                   query_body)

HELLO_NAMES = frozenset({"hello", "isMaster", "ismaster"})
_SENTINEL = 0x7A7A7A7A7A7A7A7A
_CLUSTER_TIME = {"clusterTime": Timestamp(1795558055, 4),
                 "signature": {"hash": b"\x00" * 20, "keyId": 0}}

# The shape of SecantusDB 0.7's hello reply (one-node replica set "secantus").
SECANTUS_HELLO: Dict[str, Any] = {
    "isWritablePrimary": True, "ismaster": True,
    "topologyVersion": {"processId": ObjectId("6b060aa40eb6a5b0d548d958"), "counter": 0},
    "maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
    "localTime": datetime.datetime(2026, 11, 24, 22, 7, 35, 547000),
    "logicalSessionTimeoutMinutes": 30, "connectionId": 2, "minWireVersion": 0,
    "maxWireVersion": 27, "readOnly": False, "ok": 1.0, "setName": "secantus", "setVersion": 1,
    "hosts": ["127.0.0.1:27017"], "passives": [], "arbiters": [], "secondary": False,
    "primary": "127.0.0.1:27017", "me": "127.0.0.1:27017",
    "electionId": ObjectId("7fffffff0000000000000001"),
    "lastWrite": {"opTime": {"ts": Timestamp(1795558055, 4), "t": 1},
                  "lastWriteDate": datetime.datetime(2026, 11, 24, 22, 7, 35, 547000),
                  "majorityOpTime": {"ts": Timestamp(1795558055, 4), "t": 1},
                  "majorityWriteDate": datetime.datetime(2026, 11, 24, 22, 7, 35, 547000)},
    "$clusterTime": _CLUSTER_TIME, "operationTime": Timestamp(1795558055, 4),
}


#: Commands answered by :meth:`ReplayServer.fallback` on purpose (writes, empty cursors, the
#: set-up's drops and index builds, session/cursor clean-up, pings): not logged as unknown.
_GENERIC = frozenset({
    "insert", "update", "delete", "find", "aggregate", "listCollections", "listIndexes",
    "buildInfo", "buildinfo", "ping", "endSessions", "killCursors", "drop", "dropDatabase",
    "create", "createIndexes", "dropIndexes", "abortTransaction", "commitTransaction",
    "getLastError", "count", "distinct", "listDatabases", "serverStatus", "getParameter",
    "saslStart", "saslContinue", "authenticate", "logout",
})


def _brief(v: Any) -> str:
    """A short repr of a command field for the replay log."""
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _ok(**fields: Any) -> Dict[str, Any]:
    return dict(fields, ok=1.0, **{"$clusterTime": _CLUSTER_TIME,
                                   "operationTime": _CLUSTER_TIME["clusterTime"]})


# ---------------------------------------------------------------------------------------------
# Store
# ---------------------------------------------------------------------------------------------
class Store:
    """Recorded replies: ``hello`` and ``{(name, collection): [reply, getMore replies...]}``."""

    def __init__(self, hello: Dict[str, Any], replies: Dict[Tuple[str, Optional[str]], List[Any]]):
        self.hello = hello
        self.replies = replies

    def save(self, path: str) -> None:
        doc = {"hello": self.hello,
               "replies": [{"name": k[0], "coll": k[1], "replies": v}
                           for k, v in self.replies.items()]}
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(bson.encode(doc))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "Store":
        with open(path, "rb") as f:
            doc = bson.decode(f.read())
        return cls(doc["hello"], {(e["name"], e["coll"]): e["replies"] for e in doc["replies"]})

    @classmethod
    def synthetic(cls) -> "Store":
        """Replies built from the DriverBench documents, for when nothing was recorded."""
        from . import data
        from .workloads import AGG_LIMIT, DB, N_MANY

        tweet = dict(data.load("tweet"), _id=0)
        small = data.load("small_doc")
        docs = [dict(small, _id=ObjectId(), i=i) for i in range(N_MANY)]

        def cursor(coll: str, batch: List[Any], cid: int, first: bool) -> Dict[str, Any]:
            key = "firstBatch" if first else "nextBatch"
            return _ok(cursor={key: batch, "id": Int64(cid), "ns": f"{DB}.{coll}"})

        replies: Dict[Tuple[str, Optional[str]], List[Any]] = {
            ("find", "bench_tweet"): [cursor("bench_tweet", [tweet], 0, True)],
            ("find", "bench_find"): [cursor("bench_find", docs[:101], 1, True),
                                     cursor("bench_find", docs[101:], 0, False)],
            ("aggregate", "bench_find"): [cursor("bench_find", docs[:AGG_LIMIT], 0, True)],
            ("update", "bench_bulk"): [_ok(n=5, nModified=5)],
            ("delete", "bench_bulk"): [_ok(n=5)],
        }
        return cls(dict(SECANTUS_HELLO), replies)


class _Entry:
    """Pre-encoded replies of one key; ``offsets[i]`` locates the cursor id to patch."""

    __slots__ = ("replies", "offsets", "n", "by_n")

    def __init__(self, replies: List[Dict[str, Any]]) -> None:
        self.replies: List[bytes] = []
        self.offsets: List[Optional[int]] = []
        self.by_n: Dict[int, bytes] = {}
        first = replies[0]
        self.n = first.get("n") if isinstance(first.get("n"), int) else None
        for r in replies:
            cur = r.get("cursor")
            if isinstance(cur, dict) and cur.get("id"):
                r = dict(r, cursor=dict(cur, id=Int64(_SENTINEL)))
                b = bson.encode(r)
                self.offsets.append(b.index(INT64.pack(_SENTINEL)))
            else:
                if isinstance(cur, dict) and "id" in cur:
                    # Always an Int64, as a real server sends it (the Rust driver, under
                    # mongojet, rejects an int32 cursor id, even 0).
                    r = dict(r, cursor=dict(cur, id=Int64(0)))
                b = bson.encode(r)
                self.offsets.append(None)
            self.replies.append(b)
        if self.n is not None:
            self.by_n[self.n] = self.replies[0]

    def with_n(self, n: int) -> bytes:
        b = self.by_n.get(n)
        if b is None:
            d = bson.decode(self.replies[0])
            d["n"] = n
            b = self.by_n[n] = bson.encode(d)
        return b


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------
class ReplayServer:
    def __init__(self, store: Store, log_commands: bool = False) -> None:
        self.store = store
        #: print each command name's first request to stderr (``serve --log-commands``)
        self.log_commands = log_commands
        self._logged: "set[str]" = set()
        self.entries = {k: _Entry(v) for k, v in store.replies.items()}
        self.cursors: Dict[int, Tuple[_Entry, int]] = {}
        self.cursor_ids = itertools.count(1_000_001)
        self.conn_ids = itertools.count(1)
        self.req_ids = itertools.count(1)
        self.address = "127.0.0.1:0"
        self._generic: Dict[Any, bytes] = {}
        self.server: Optional[asyncio.base_events.Server] = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _ReplayProtocol(self), host, port,
                                               backlog=4096)
        port = self.server.sockets[0].getsockname()[1]
        self.address = f"{host}:{port}"
        return port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for t in list(_ReplayProtocol.live):
                t.close()

    def hello_bytes(self, conn_id: int) -> bytes:
        h = dict(self.store.hello)
        if "hosts" in h:
            h["hosts"] = [self.address]
        for k in ("me", "primary"):
            if k in h:
                h[k] = self.address
        h["connectionId"] = conn_id
        return bson.encode(h)

    def _const(self, key: Any, doc: Dict[str, Any]) -> bytes:
        b = self._generic.get(key)
        if b is None:
            b = self._generic[key] = bson.encode(doc)
        return b

    def answer(self, body: bytes, seqs: List[Tuple[str, memoryview]],
               proto: "_ReplayProtocol") -> Tuple[bytes, float]:
        """Return ``(reply body, delay seconds)`` for a command body."""
        name, btype, off = first_key(body)
        if self.log_commands and name not in self._logged:
            self._log(name, "first request", body, seqs)
        if name in HELLO_NAMES:
            delay = 0.0
            if b"maxAwaitTimeMS" in body:
                cmd = bson.decode(body)
                if "topologyVersion" in cmd:
                    delay = cmd.get("maxAwaitTimeMS", 0) / 1000.0
            return proto.hello(), delay
        if name == "getMore":
            cid = (INT64 if btype == 0x12 else INT32).unpack_from(body, off)[0]
            state = self.cursors.pop(cid, None)
            if state is None:
                return self._const(("nocursor", cid), {
                    "ok": 0.0, "code": 43, "codeName": "CursorNotFound",
                    "errmsg": f"cursor id {cid} not found"}), 0.0
            entry, idx = state
            return self._cursor_reply(entry, min(idx, len(entry.replies) - 1), cid), 0.0
        coll = None
        if btype == 0x02:
            n = INT32.unpack_from(body, off)[0]
            coll = body[off + 4:off + 3 + n].decode()
        entry = self.entries.get((name, coll))
        if entry is None:
            return self.fallback(name, coll, body, seqs), 0.0
        if name == "insert" and entry.n is not None:
            n = count_docs(seqs[0][1]) if seqs else count_array(body, "documents")
            return entry.with_n(n), 0.0
        if entry.offsets[0] is not None:
            return self._cursor_reply(entry, 0, next(self.cursor_ids)), 0.0
        return entry.replies[0], 0.0

    def _cursor_reply(self, entry: _Entry, idx: int, cid: int) -> bytes:
        b = entry.replies[idx]
        off = entry.offsets[idx]
        if off is None:
            return b
        self.cursors[cid] = (entry, idx + 1)
        return b"".join((b[:off], INT64.pack(cid), b[off + 8:]))

    def _log(self, name: str, what: str, body: bytes, seqs: List[Tuple[str, memoryview]]) -> None:
        self._logged.add(name)
        try:
            cmd = bson.decode(body)
            fields = ", ".join(f"{k}={_brief(v)}" for k, v in cmd.items())
        except Exception as exc:  # (a log line must not break the reply)
            fields = f"<undecodable: {exc!r}>"
        if seqs:
            fields += "; sequences " + ", ".join(f"{i}: {count_docs(d)} docs" for i, d in seqs)
        print(f"replay: {what}: {fields}", file=sys.stderr, flush=True)

    def fallback(self, name: str, coll: Optional[str], body: bytes,
                 seqs: List[Tuple[str, memoryview]]) -> bytes:
        if name not in _GENERIC and name not in self._logged:
            # Not recorded and not one the replay server knows: answered {ok: 1}, said once.
            self._log(name, "no recorded reply, answering {ok: 1} to", body, seqs)
        if name in ("insert", "update", "delete"):
            if seqs:
                n = count_docs(seqs[0][1])
            else:
                field = {"insert": "documents", "update": "updates", "delete": "deletes"}[name]
                n = count_array(body, field)
            extra = {"nModified": n} if name == "update" else {}
            return self._const((name, n), _ok(n=n, **extra))
        if name in ("find", "aggregate", "listCollections", "listIndexes"):
            db = bson.decode(body).get("$db", "test")
            return self._const(("cursor", db, coll), _ok(cursor={
                "firstBatch": [], "id": Int64(0), "ns": f"{db}.{coll}"}))
        if name == "buildInfo" or name == "buildinfo":
            return self._const("buildInfo", _ok(version="8.0.0", versionArray=[8, 0, 0, 0]))
        return self._const("ok", _ok())


class _ReplayProtocol(asyncio.Protocol):
    live: "set[asyncio.Transport]" = set()

    def __init__(self, server: ReplayServer) -> None:
        self.s = server
        self.buf = bytearray()
        self.transport: Any = None
        self.conn_id = next(server.conn_ids)
        self._hello: Optional[bytes] = None
        self._loop = asyncio.get_running_loop()

    def hello(self) -> bytes:
        if self._hello is None:
            self._hello = self.s.hello_bytes(self.conn_id)
        return self._hello

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        _ReplayProtocol.live.add(transport)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        _ReplayProtocol.live.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if not buf and len(data) >= 16 and INT32.unpack_from(data)[0] == len(data):
            self.handle(data)
            return
        buf += data
        while len(buf) >= 16:
            length = INT32.unpack_from(buf)[0]
            if len(buf) < length:
                return
            frame = bytes(buf[:length])
            del buf[:length]
            self.handle(frame)

    def handle(self, frame: bytes) -> None:
        _, req_id, _, opcode = HEADER.unpack_from(frame)
        try:
            if opcode == OP_MSG:
                flags, body, seqs = msg_body(frame)
                reply, delay = self.s.answer(body, seqs, self)
                if flags & MORE_TO_COME:
                    return
                prefix = MSG_PREFIX.pack(21 + len(reply), next(self.s.req_ids), req_id, OP_MSG, 0)
                if delay:
                    self._loop.call_later(delay, self._write, prefix, reply)
                else:
                    self.transport.writelines((prefix, b"\x00", reply))
            elif opcode == OP_QUERY:
                reply, _ = self.s.answer(query_body(frame), [], self)
                self.transport.writelines((REPLY_PREFIX.pack(
                    36 + len(reply), next(self.s.req_ids), req_id, OP_REPLY, 0, 0, 0, 1), reply))
            else:  # OP_COMPRESSED etc.: not negotiated by the benchmark clients
                self.transport.close()
        except Exception as exc:  # a bug here must not hang the client
            print(f"replay: error answering a request: {exc!r}", file=sys.stderr)
            self.transport.close()

    def _write(self, prefix: bytes, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.writelines((prefix, b"\x00", reply))


async def _serve(store: Store, host: str, port: int, log_commands: bool = False) -> None:
    server = ReplayServer(store, log_commands)
    port = await server.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"REPLAY_PORT {port}", flush=True)
    await stop.wait()
    await server.close()


# ---------------------------------------------------------------------------------------------
# Recording proxy
# ---------------------------------------------------------------------------------------------
class _Recorder:
    def __init__(self, upstream: Tuple[str, int]) -> None:
        self.upstream = upstream
        self.hello: Optional[Dict[str, Any]] = None
        self.replies: Dict[Tuple[str, Optional[str]], List[Any]] = {}
        self.cursor_origin: Dict[int, Tuple[str, Optional[str]]] = {}

    async def handle(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(*self.upstream)
        pending: Dict[int, Tuple[str, Optional[str], int]] = {}

        async def read_frame(r: asyncio.StreamReader) -> bytes:
            h = await r.readexactly(16)
            return h + await r.readexactly(INT32.unpack_from(h)[0] - 16)

        async def c2s() -> None:
            while True:
                frame = await read_frame(cr)
                _, rid, _, op = HEADER.unpack_from(frame)
                body = msg_body(frame)[1] if op == OP_MSG else query_body(frame)
                name, coll = command_key(body)
                cid = 0
                if name == "getMore":
                    cid = INT64.unpack_from(body, first_key(body)[2])[0]
                pending[rid] = (name, coll, cid)
                uw.write(frame)

        async def s2c() -> None:
            while True:
                frame = await read_frame(ur)
                _, _, resp_to, op = HEADER.unpack_from(frame)
                cw.write(frame)
                body = msg_body(frame)[1] if op == OP_MSG else frame[36:]
                req = pending.get(resp_to)
                if req is not None:
                    self.record(req, bson.decode(body))

        tasks = [asyncio.ensure_future(c2s()), asyncio.ensure_future(s2c())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            uw.close()
            cw.close()

    def record(self, req: Tuple[str, Optional[str], int], reply: Dict[str, Any]) -> None:
        name, coll, cid = req
        if name in HELLO_NAMES:
            if self.hello is None and reply.get("ok"):
                self.hello = reply
            return
        cur = reply.get("cursor") if isinstance(reply.get("cursor"), dict) else None
        if name == "getMore":
            key = self.cursor_origin.pop(cid, None)
            if key is not None:
                self.replies[key].append(reply)
                if cur and cur.get("id"):
                    self.cursor_origin[int(cur["id"])] = key
            return
        if name in ("endSessions", "killCursors", "ping", "drop") or not reply.get("ok"):
            return
        key = (name, coll)
        if key in self.replies:
            return
        self.replies[key] = [reply]
        if cur and cur.get("id"):
            self.cursor_origin[int(cur["id"])] = key


async def record(uri: str, out: str) -> Store:
    """Run every workload once through a recording proxy in front of *uri*; save to *out*."""
    from urllib.parse import urlsplit

    from .drivers.pymongo_adapter import PyMongoAdapter
    from .workloads import WORKLOADS

    host = urlsplit(uri).netloc.split(",")[0].rsplit("@", 1)[-1]
    h, _, p = host.rpartition(":")
    rec = _Recorder((h or host, int(p or 27017)))
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = PyMongoAdapter()
    await adapter.connect(f"mongodb://127.0.0.1:{port}/?directConnection=true", 10)
    try:
        for wl in WORKLOADS.values():
            await wl.setup(adapter)
            op = wl.make_op(adapter)
            for i in range(2):
                await op(i)
    finally:
        await adapter.close()
        server.close()
    if rec.hello is None:
        raise RuntimeError("no hello reply recorded")
    store = Store(rec.hello, rec.replies)
    store.save(out)
    return store


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.replay")
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--store", help="recorded store (BSON) written by 'record'")
    s.add_argument("--synthetic", action="store_true", help="no recording: synthesize replies")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--log-commands", action="store_true",
                   help="print the first request of each command name to stderr")
    r = sub.add_parser("record")
    r.add_argument("--uri", required=True)
    r.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    loop = _new_loop()
    try:
        if args.mode == "serve":
            store = Store.load(args.store) if args.store and not args.synthetic else Store.synthetic()
            loop.run_until_complete(_serve(store, args.host, args.port, args.log_commands))
        else:
            loop.run_until_complete(record(args.uri, args.out))
    finally:
        loop.close()


if __name__ == "__main__":
    main()
