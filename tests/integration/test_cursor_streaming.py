"""Exhaust cursors (OP_MSG ``exhaustAllowed`` / moreToCome streaming) and the opt-in cursor
read-ahead (``cursor.read_ahead()``).

A small asyncio fake server shows what goes over the wire (one getMore for an exhaust stream,
the read-ahead getMore sent before the application asks, the streaming connection closed on an
early close); SecantusDB (which streams exhaust getMores too) shows the results are right
through both APIs.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import bson
import pytest
from bson import json_util
from pymongo import CursorType, monitoring
from pymongo.errors import AutoReconnect, ConnectionFailure, InvalidOperation, NetworkTimeout, OperationFailure
from pymongo.server_type import SERVER_TYPE

import amongo
from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.wire.message import EXHAUST_ALLOWED, MORE_TO_COME, encode_op_msg
from proxy import msg_document, read_frame

from ._crud_helpers import make_client, unique
from ._rel_server import RecordingListener
from .test_command_logging import command_log

HELLO = {
    "helloOk": True, "ismaster": True, "isWritablePrimary": True,
    "maxBsonObjectSize": 16 * 1024 * 1024, "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000, "logicalSessionTimeoutMinutes": 30, "connectionId": 1,
    "minWireVersion": 0, "maxWireVersion": 21, "readOnly": False, "ok": 1.0,
}
CURSOR_ID = bson.Int64(4242)
SERVICE_ID = bson.ObjectId()


class FakeServer:
    """Answers hello, find (first batch), getMore (ordinary, or streamed with moreToCome when
    the request carries exhaustAllowed), killCursors and endSessions over *docs* in batches.
    Every reply but the hellos' carries a new ``$clusterTime`` (as a replica set's do).

    ``log`` records ``(connection number, command name, flag bits)`` of every command but
    the monitors' hellos; ``closed`` the numbers of the connections the client closed."""

    def __init__(self, docs: List[Dict[str, Any]], *, getmore_delay: float = 0.0,
                 stream_pause: float = 0.0, fail_getmore_at: Optional[int] = None,
                 drop_getmore_at: Optional[int] = None, load_balancer: bool = False,
                 hello: Optional[Dict[str, Any]] = None, fail_with_more_to_come: bool = False) -> None:
        self.hello = dict(HELLO, **(hello or {}))
        self.docs = docs
        self.drop_getmore_at = drop_getmore_at  # the n-th getMore reply: the connection drops
        self.load_balancer = load_balancer  # hello answers as a load balancer's (serviceId)
        self.getmore_delay = getmore_delay
        self.stream_pause = stream_pause
        self.fail_getmore_at = fail_getmore_at  # the n-th getMore reply (1-based) is ok: 0
        self.fail_with_more_to_come = fail_with_more_to_come  # (that ok: 0 reply sets moreToCome)
        self._clock = 0  # the $clusterTime's increment
        self.log: List[Tuple[int, str, int]] = []
        self.closed: List[int] = []
        self.getmore_seen = asyncio.Event()
        self._conns = 0
        self._pos = 0
        self._getmores = 0
        self._server: Optional[asyncio.base_events.Server] = None
        self._handlers: List["asyncio.Task[Any]"] = []
        self._writers: List[asyncio.StreamWriter] = []

    async def __aenter__(self) -> "FakeServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()  # (each handler then ends on its own)
        await asyncio.wait(self._handlers, timeout=5)

    @property
    def uri(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        mode = "loadBalanced=true" if self.load_balancer else "directConnection=true"
        return f"mongodb://127.0.0.1:{port}/?{mode}&serverSelectionTimeoutMS=5000"

    def names(self) -> List[str]:
        return [name for _, name, _ in self.log]

    def _batch(self, size: int, first: bool) -> Dict[str, Any]:
        batch = self.docs[self._pos:self._pos + size]
        self._pos += len(batch)
        done = self._pos >= len(self.docs)
        key = "firstBatch" if first else "nextBatch"
        return {"cursor": {"id": bson.Int64(0) if done else CURSOR_ID, "ns": "db.coll", key: batch}, "ok": 1.0}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns += 1
        number = self._conns
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        self._writers.append(writer)
        try:
            while True:
                frame = await read_frame(reader)  # (tests/proxy.py's framing, not amongo's)
                if frame is None:
                    raise ConnectionResetError
                request_id = frame.request_id
                flags, cmd = msg_document(frame.body)
                name = next(iter(cmd))

                def send(doc: Dict[str, Any], more: bool = False) -> None:
                    if name.lower() not in ("hello", "ismaster"):
                        self._clock += 1
                        doc = dict(doc, **{"$clusterTime": {
                            "clusterTime": bson.Timestamp(1_700_000_000, self._clock),
                            "signature": {"hash": bson.Binary(b"\0" * 20), "keyId": bson.Int64(0)}}})
                    writer.write(encode_op_msg(0, bson.encode(doc), flags=MORE_TO_COME if more else 0,
                                               response_to=request_id))

                if name.lower() in ("hello", "ismaster"):
                    send(dict(self.hello, serviceId=SERVICE_ID) if self.load_balancer else self.hello)
                    continue
                self.log.append((number, name, flags))
                if name == "find":
                    self._pos = 0
                    self._getmores = 0
                    send(self._batch(cmd.get("batchSize") or 101, True))
                elif name == "getMore":
                    self.getmore_seen.set()
                    if self.getmore_delay:
                        await asyncio.sleep(self.getmore_delay)
                    size = cmd.get("batchSize") or 101
                    while True:
                        self._getmores += 1
                        if self._getmores == self.drop_getmore_at:
                            writer.transport.abort()
                            raise ConnectionResetError
                        if self._getmores == self.fail_getmore_at:
                            send({"ok": 0.0, "errmsg": "boom", "code": 2, "codeName": "BadValue"},
                                 self.fail_with_more_to_come)
                            break
                        reply = self._batch(size, False)
                        more = bool(flags & EXHAUST_ALLOWED) and reply["cursor"]["id"] != 0
                        send(reply, more)
                        if not more:
                            break
                        await writer.drain()
                        if self.stream_pause:
                            await asyncio.sleep(self.stream_pause)
                        if reader.at_eof():  # the client closed the streaming connection
                            raise ConnectionResetError
                else:
                    send({"ok": 1.0})
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.append(number)
        finally:
            try:
                writer.close()
            except RuntimeError:  # (the loop is closing)
                pass


DOCS = [{"_id": i} for i in range(10)]


@contextlib.asynccontextmanager
async def fake(client_options: Optional[Dict[str, Any]] = None, *, api: str = "pymongo",
               **kwargs: Any) -> AsyncIterator[Tuple[FakeServer, Any]]:
    """A :class:`FakeServer` over :data:`DOCS` and a client connected to it: an
    ``amongo.AsyncMongoClient`` (*api* ``"pymongo"``) or an ``AsyncIOMotorClient``
    (``"motor"``)."""
    async with FakeServer(DOCS, **kwargs) as srv:
        if api == "motor":
            client: Any = AsyncIOMotorClient(srv.uri, **(client_options or {}))
        else:
            client = amongo.AsyncMongoClient(srv.uri, **(client_options or {}))
        try:
            yield srv, client
        finally:
            closing = client.close()  # (Motor's close() is synchronous, PyMongo's a coroutine)
            if closing is not None:
                await closing


async def test_exhaust_streams_with_one_getmore() -> None:
    async with fake() as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        assert [d["_id"] async for d in cursor] == list(range(10))
        # find, then ONE getMore with exhaustAllowed: the four later batches were streamed
        assert srv.names() == ["find", "getMore"]
        assert not srv.log[0][2] & EXHAUST_ALLOWED and srv.log[1][2] & EXHAUST_ALLOWED
        # the stream ended cleanly: its connection went back to the pool and is reused
        assert await client.db.coll.find_one({}) == {"_id": 0}
        assert srv.log[-1][0] == srv.log[1][0] and srv.closed == []


async def test_exhaust_early_close_closes_the_streaming_connection() -> None:
    async with fake(stream_pause=0.05) as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        got = [await cursor.next() for _ in range(3)]  # first batch + one streamed reply
        assert [d["_id"] for d in got] == [0, 1, 2]
        stream_conn = srv.log[1][0]
        await cursor.close()
        await asyncio.sleep(0.1)
        # closed, never returned to the pool with unread replies; no killCursors (the
        # server drops an exhaust cursor with its connection, as PyMongo relies on)
        assert stream_conn in srv.closed
        assert "killCursors" not in srv.names()
        assert await client.db.coll.find_one({}) == {"_id": 0}
        assert srv.log[-1][0] != stream_conn


@pytest.mark.parametrize("api", ["pymongo", "motor"])
async def test_exhaust_error_mid_stream_surfaces_without_killcursors(api: str) -> None:
    # As PyMongo 4.20 (Cursor._send_message: an exhaust cursor's OperationFailure marks it
    # killed): the server closed the cursor with its ok: 0 reply, so no killCursors is sent,
    # neither then nor by close() or the finalizer. That reply ended the stream (no
    # moreToCome): the connection is clean and goes back to the pool, where the next
    # operation reuses it.
    listener = RecordingListener()
    async with fake(dict(event_listeners=[listener]), api=api, fail_getmore_at=3) as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        seen: List[int] = []
        with pytest.raises(OperationFailure, match="boom"):
            async for d in cursor:
                seen.append(d["_id"])
        assert seen == [0, 1, 2, 3, 4, 5]
        assert not cursor.alive
        await cursor.close()
        del cursor
        gc.collect()
        await asyncio.sleep(0.05)
        assert srv.names() == ["find", "getMore"]
        stream_conn = srv.log[1][0]
        assert srv.closed == []
        assert not [e for e in listener.events if isinstance(e, monitoring.ConnectionClosedEvent)]
        assert await client.db.coll.find_one({}) == {"_id": 0}
        assert srv.log[-1][0] == stream_conn


@pytest.mark.parametrize("at", [1, 3])
async def test_exhaust_getmore_error_sends_no_killcursors_unlike_an_ordinary_cursor(at: int) -> None:
    # An exhaust cursor's getMore failing, the one sent (at=1) or a streamed batch (at=3): no
    # killCursors (as PyMongo); an ordinary cursor whose getMore fails is killed (as PyMongo's
    # close() after the error).
    for cursor_type, killed in ((CursorType.EXHAUST, False), (CursorType.NON_TAILABLE, True)):
        async with fake(fail_getmore_at=at) as (srv, client):
            cursor = client.db.coll.find({}, cursor_type=cursor_type, batch_size=2)
            with pytest.raises(OperationFailure, match="boom"):
                await cursor.to_list(None)
            await cursor.close()
            await asyncio.sleep(0.05)
            assert ("killCursors" in srv.names()) is killed, (cursor_type, srv.names())


async def test_exhaust_error_reply_with_more_to_come_closes_the_connection() -> None:
    # An ok: 0 reply that still sets moreToCome leaves the stream in flight: the connection
    # is closed, never handed out with unread replies (and still no killCursors).
    async with fake(fail_getmore_at=3, fail_with_more_to_come=True) as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        with pytest.raises(OperationFailure, match="boom"):
            await cursor.to_list(None)
        await asyncio.sleep(0.05)
        stream_conn = srv.log[1][0]
        assert stream_conn in srv.closed
        assert await client.db.coll.find_one({}) == {"_id": 0}
        assert srv.log[-1][0] != stream_conn and "killCursors" not in srv.names()


@pytest.mark.parametrize("api", ["pymongo", "motor"])
async def test_streamed_batches_publish_the_getmore_pymongo_publishes(api: str) -> None:
    # As PyMongo 4.20 (AsyncCursorBase._run_with_conn: a streamed batch's getMore is built
    # again, as_command stamps the session's lsid and the client's $clusterTime, $db is added,
    # the request id is 0 (nothing was sent) and the operation id is the getMore's own): each
    # streamed batch's started event (and "Command started" log message) carries the getMore
    # document the sent one does, with the client's latest $clusterTime.
    listener = RecordingListener()
    with command_log() as log:
        async with fake(dict(event_listeners=[listener]), api=api) as (srv, client):
            cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
            assert [d["_id"] async for d in cursor] == list(range(10))
            assert srv.names() == ["find", "getMore"]
    events = [e for e in listener.events if isinstance(e, (monitoring.CommandStartedEvent,
                                                           monitoring.CommandSucceededEvent))]
    started = [e for e in events if isinstance(e, monitoring.CommandStartedEvent)]
    find, sent, *streamed = started
    assert find.command_name == "find" and len(streamed) == 3
    assert {e.command_name for e in started[1:]} == {"getMore"}
    lsid = find.command["lsid"]
    assert sent.request_id != 0 and [e.request_id for e in streamed] == [0, 0, 0]
    op_ids = [e.operation_id for e in started]
    assert 0 not in op_ids and len(set(op_ids)) == len(op_ids)
    assert list(sent.command) == ["getMore", "collection", "batchSize", "lsid", "$clusterTime", "$db"]
    for e in streamed:
        assert list(e.command) == list(sent.command)
        assert e.command["getMore"] == CURSOR_ID and e.command["collection"] == "coll"
        assert e.command["lsid"] == lsid and e.command["$db"] == "db" and e.database_name == "db"
    # each started event carries the $clusterTime of the reply before it (the client's latest)
    for i, e in enumerate(events):
        if isinstance(e, monitoring.CommandStartedEvent) and i:
            assert e.command["$clusterTime"] == events[i - 1].reply["$clusterTime"]
    # each succeeded event pairs with its started event's request and operation ids
    succeeded = [e for e in events if isinstance(e, monitoring.CommandSucceededEvent)]
    assert [(e.request_id, e.operation_id) for e in succeeded] == [(e.request_id, e.operation_id) for e in started]
    logged = [m for m in log.messages() if m["commandName"] == "getMore" and m["message"] == "Command started"]
    assert [m["requestId"] for m in logged] == [e.request_id for e in started[1:]]
    assert [m["operationId"] for m in logged] == op_ids[1:]
    for m in logged:
        cmd = json_util.loads(m["command"])
        assert "lsid" in cmd and "$clusterTime" in cmd and cmd["$db"] == "db"


async def _getmore_network_error(cursor_type: int, client_options: Optional[Dict[str, Any]] = None,
                                 **kwargs: Any) -> Tuple[type, List[Tuple[str, Any]], bool]:
    """Iterate a cursor whose third getMore reply (streamed, or an ordinary getMore's) fails
    as *kwargs* tell the fake server (by default the connection drops). The error's type,
    the pool's clear / connection-closed events (name, reason) and whether the server was
    marked Unknown."""
    listener = RecordingListener()
    options = dict(event_listeners=[listener], heartbeatFrequencyMS=60_000, **(client_options or {}))
    async with fake(options, **(kwargs or {"drop_getmore_at": 3})) as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=cursor_type, batch_size=2)
        seen: List[int] = []
        with pytest.raises(ConnectionFailure) as info:
            async for d in cursor:
                seen.append(d["_id"])
        assert seen == list(range(len(seen))) and len(seen) >= 2
        pool = [(type(e).__name__, getattr(e, "reason", None)) for e in listener.events
                if isinstance(e, (monitoring.PoolClearedEvent, monitoring.ConnectionClosedEvent))]
        unknown = any(isinstance(e, monitoring.ServerDescriptionChangedEvent)
                      and e.new_description.server_type == SERVER_TYPE.Unknown
                      and e.previous_description.server_type != SERVER_TYPE.Unknown for e in listener.events)
        assert await client.db.coll.find_one({}) == {"_id": 0}  # (the client recovers)
    return type(info.value), pool, unknown


async def test_exhaust_network_error_mid_stream_is_handled_as_any_network_error() -> None:
    # SDAM "network error after handshake": the server is marked Unknown and its pool cleared,
    # as after an ordinary getMore's network error; the streaming connection is closed (CMAP
    # ConnectionClosedEvent, reason as for any command's connection closed by a network error)
    streamed = await _getmore_network_error(CursorType.EXHAUST)
    ordinary = await _getmore_network_error(CursorType.NON_TAILABLE)
    assert streamed[0] is AutoReconnect and streamed[2] is True
    assert ("PoolClearedEvent", None) in streamed[1]
    assert [n for n, _ in streamed[1]].count("ConnectionClosedEvent") == 1
    assert streamed == ordinary


async def test_exhaust_network_error_mid_stream_in_load_balanced_mode() -> None:
    # The cursor's pinned connection: its service's pool is cleared (load-balancers spec: the
    # balancer is never marked Unknown), as after an ordinary pinned getMore's network error;
    # the streaming connection is closed at once (the ordinary cursor's when it is closed).
    streamed = await _getmore_network_error(CursorType.EXHAUST, load_balancer=True, drop_getmore_at=3)
    ordinary = await _getmore_network_error(CursorType.NON_TAILABLE, load_balancer=True, drop_getmore_at=3)
    assert streamed == (AutoReconnect, [("PoolClearedEvent", None), ("ConnectionClosedEvent", "error")], False)
    assert ordinary == (AutoReconnect, [("PoolClearedEvent", None)], False)


async def test_exhaust_timeout_mid_stream_is_handled_as_any_timeout() -> None:
    # socketTimeoutMS while waiting for a streamed batch: the same error and SDAM outcome as
    # an ordinary getMore's (a network timeout: the server is not marked Unknown, the pool
    # not cleared). The streaming connection is closed (its later replies are unread); an
    # ordinary getMore's is drained by the pool instead.
    options = {"socketTimeoutMS": 150}
    streamed = await _getmore_network_error(CursorType.EXHAUST, options, stream_pause=0.4)
    ordinary = await _getmore_network_error(CursorType.NON_TAILABLE, options, getmore_delay=0.4)
    assert streamed[0] is ordinary[0] is NetworkTimeout
    assert streamed[2] is ordinary[2] is False
    assert streamed[1] == [("ConnectionClosedEvent", "error")] and ordinary[1] == []


@pytest.mark.parametrize("fail", [False, True])
async def test_streamed_batches_are_logged_and_traced_as_getmores(fail: bool) -> None:
    # Each streamed batch publishes what a getMore publishes (as PyMongo's exhaust getMores):
    # its command monitoring events, "Command started" / "Command succeeded" (or "Command
    # failed") log messages and OpenTelemetry spans (the getMore's operation and command spans),
    # compared here with an ordinary (non-exhaust) cursor's getMores.
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    async def run(cursor_type: int) -> Tuple[List[Tuple[str, str]], List[Tuple[str, Any]], List[Tuple[str, Any]]]:
        listener = RecordingListener()
        exporter = InMemorySpanExporter()
        provider = sdk.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        options = dict(event_listeners=[listener], tracing={"enabled": True, "tracer_provider": provider})
        with command_log() as log:
            async with fake(options, fail_getmore_at=3 if fail else None) as (srv, client):
                cursor = client.db.coll.find({}, cursor_type=cursor_type, batch_size=2)
                if fail:
                    with pytest.raises(OperationFailure, match="boom"):
                        await cursor.to_list(None)
                else:
                    assert [d["_id"] for d in await cursor.to_list(None)] == list(range(10))
        provider.shutdown()
        logged = [(f["commandName"], f["message"]) for f in log.messages() if f["commandName"] in ("find", "getMore")]
        events = [(e.command_name, type(e).__name__) for e in listener.events
                  if isinstance(e, (monitoring.CommandStartedEvent, monitoring.CommandSucceededEvent,
                                    monitoring.CommandFailedEvent)) and e.command_name in ("find", "getMore")]
        spans = [(sp.name, sp.attributes.get("db.mongodb.cursor_id"), "db.mongodb.lsid" in sp.attributes)
                 for sp in exporter.get_finished_spans() if sp.name.startswith(("find", "getMore"))]
        for (name, message), (ev_name, ev_type) in zip(logged, events):
            assert name == ev_name and message.split()[-1] == ev_type[len("Command"):-len("Event")].lower()
        assert len(logged) == len(events)
        return logged, events, spans

    streamed = await run(CursorType.EXHAUST)
    ordinary = await run(CursorType.NON_TAILABLE)
    assert streamed == ordinary
    # 10 documents in batches of 2: 4 getMores (streamed: one sent); failing: the third fails
    outcome = ["succeeded", "succeeded", "failed"] if fail else ["succeeded"] * 4
    logged, _, spans = streamed
    assert logged[2:] == [("getMore", m) for o in outcome for m in ("Command started", f"Command {o}")]
    # (the command span carries the getMore's lsid, streamed or sent; the operation span none)
    assert spans[2:] == [(n, CURSOR_ID, n == "getMore") for _ in outcome for n in ("getMore", "getMore db.coll")]


async def test_exhaust_streams_in_load_balanced_mode() -> None:
    # As PyMongo 4.20 (which refuses exhaust only on a mongos): the stream runs on the
    # cursor's pinned connection (load-balancers spec), which goes back to the pool when the
    # stream ends; closing mid-stream closes it.
    listener = RecordingListener()
    async with fake(dict(event_listeners=[listener]), load_balancer=True) as (srv, client):
        cursor = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        assert [d["_id"] async for d in cursor] == list(range(10))
        assert srv.names() == ["find", "getMore"] and srv.log[0][0] == srv.log[1][0]
        assert srv.log[1][2] & EXHAUST_ALLOWED
        assert await client.db.coll.find_one({}) == {"_id": 0}
        assert srv.log[-1][0] == srv.log[1][0] and srv.closed == []
        out = [e for e in listener.events if isinstance(e, monitoring.ConnectionCheckedOutEvent)]
        back = [e for e in listener.events if isinstance(e, monitoring.ConnectionCheckedInEvent)]
        assert len(out) == len(back) == 2  # (the cursor's pinned connection, then find_one's)
        srv.stream_pause = 0.05
        early = client.db.coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=2)
        assert [(await early.next())["_id"] for _ in range(3)] == [0, 1, 2]
        stream_conn = srv.log[-1][0]
        await early.close()
        await asyncio.sleep(0.1)
        assert stream_conn in srv.closed and "killCursors" not in srv.names()
        assert await client.db.coll.find_one({}) == {"_id": 0}


async def test_exhaust_refused_by_mongos() -> None:
    # As PyMongo 4.20: InvalidOperation before anything is sent to a mongos
    async with fake(hello={"msg": "isdbgrid"}) as (srv, client):
        with pytest.raises(InvalidOperation, match="not supported by mongos"):
            await client.db.coll.find({}, cursor_type=CursorType.EXHAUST).to_list(None)
        assert srv.names() == []
        assert [d["_id"] async for d in client.db.coll.find({}, batch_size=4)] == list(range(10))


async def test_exhaust_argument_rules() -> None:
    client = amongo.AsyncMongoClient("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100", connect=False)
    coll = client.db.coll
    with pytest.raises(InvalidOperation, match="limit and exhaust"):
        coll.find({}, cursor_type=CursorType.EXHAUST, limit=3)
    with pytest.raises(InvalidOperation, match="limit and exhaust"):
        coll.find({}, cursor_type=CursorType.EXHAUST).limit(3)
    with pytest.raises(InvalidOperation, match="limit and exhaust"):
        await coll.find({}, limit=3).add_option(CursorType.EXHAUST)  # (PyMongo's: a coroutine)
    with pytest.raises(TypeError):
        coll.find({}).read_ahead(1)  # type: ignore[arg-type]
    await client.close()


def _our_tasks() -> List["asyncio.Task[Any]"]:
    return [t for t in asyncio.all_tasks()
            if not t.done() and "_fetch_more" in repr(t.get_coro())]


async def test_read_ahead_sends_the_next_getmore_before_it_is_needed() -> None:
    async with fake() as (srv, client):
        cursor = client.db.coll.find({}, batch_size=4).read_ahead()
        assert (await cursor.next())["_id"] == 0
        # the application has not asked for the second batch yet, and iterating a buffered
        # batch never yields to the loop: the getMore is already on the wire (its connection
        # checked out) when the first document is returned
        (server,) = client._topology.servers.values()
        assert len(server.pool._in_use) == 1
        await asyncio.wait_for(srv.getmore_seen.wait(), 5)
        assert srv.names() == ["find", "getMore"]
        assert [d["_id"] async for d in cursor] == list(range(1, 10))
        assert srv.names() == ["find", "getMore", "getMore"]
        assert _our_tasks() == []


async def test_read_ahead_error_surfaces_on_the_next_iteration() -> None:
    async with fake(fail_getmore_at=1) as (srv, client):
        cursor = client.db.coll.find({}, batch_size=4).read_ahead()
        first = [await cursor.next() for _ in range(4)]
        assert [d["_id"] for d in first] == [0, 1, 2, 3]
        await asyncio.wait_for(srv.getmore_seen.wait(), 5)
        await asyncio.sleep(0.05)  # the read-ahead failed by now; nothing is lost
        with pytest.raises(OperationFailure, match="boom"):
            await cursor.next()
        assert not cursor.alive


async def test_read_ahead_close_cancels_the_getmore_and_kills_the_cursor() -> None:
    async with fake(getmore_delay=0.5) as (srv, client):
        cursor = client.db.coll.find({}, batch_size=4).read_ahead()
        await cursor.next()
        await asyncio.wait_for(srv.getmore_seen.wait(), 5)
        assert len(_our_tasks()) == 1
        await cursor.close()
        assert _our_tasks() == []
        await asyncio.sleep(0.05)
        assert srv.names()[-1] == "killCursors"


async def test_read_ahead_of_an_abandoned_cursor_leaks_nothing() -> None:
    async with fake() as (srv, client):
        cursor = client.db.coll.find({}, batch_size=4).read_ahead()
        await cursor.next()
        await asyncio.wait_for(srv.getmore_seen.wait(), 5)
        await asyncio.sleep(0.05)
        del cursor
        gc.collect()
        await asyncio.sleep(0.1)
        assert _our_tasks() == []
        assert srv.names()[-1] == "killCursors"  # (the cursor's finalizer killed it)


# -- against SecantusDB (a real server that streams exhaust getMores) --------------------------


@pytest.mark.parametrize("api", ["motor", "pymongo"])
async def test_exhaust_and_read_ahead_results_on_secantus(secantus_rs: Any, api: str) -> None:
    if api == "motor":
        client: Any = AsyncIOMotorClient(secantus_rs.uri)
    else:
        client = amongo.AsyncMongoClient(secantus_rs.uri)
    try:
        coll = client.amongo_stream[unique("s")]
        await coll.insert_many([{"_id": i, "x": i % 7} for i in range(1200)])
        expect = await coll.find().sort("_id").to_list(None)
        assert len(expect) == 1200
        assert await coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=100).sort("_id").to_list(None) == expect
        assert await coll.find({}, batch_size=100).sort("_id").read_ahead().to_list(None) == expect
        assert [d async for d in coll.find({}, batch_size=150).sort("_id").read_ahead()] == expect
        both = coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=100).sort("_id").read_ahead()
        assert await both.to_list(None) == expect
        pipeline = [{"$match": {"x": {"$gte": 0}}}, {"$sort": {"_id": 1}}]
        agg = coll.aggregate(pipeline, batchSize=100)
        if api == "pymongo":
            agg = await agg
        assert await agg.read_ahead().to_list(None) == expect
        # an exhaust cursor closed mid-stream: the pool keeps working, the data is intact
        early = coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=50)
        for _ in range(120):
            await early.next()
        await early.close()
        assert await coll.count_documents({}) == 1200
        assert _our_tasks() == []
    finally:
        closing = client.close()  # (Motor's close() is synchronous, PyMongo's a coroutine)
        if closing is not None:
            await closing


async def test_exhaust_in_a_transaction(secantus_rs: Any) -> None:
    # As PyMongo 4.20: not refused in a transaction; the getMores carry the transaction's
    # lsid/txnNumber, the stream sees the transaction's own writes, and the transaction
    # commits afterwards.
    client, listener = make_client(secantus_rs)
    try:
        coll = client.amongo_stream[unique("t")]
        await coll.insert_many([{"_id": i} for i in range(25)])
        async with await client.start_session() as s:
            async with s.start_transaction():
                await coll.insert_one({"_id": 25}, session=s)
                listener.reset()
                docs = await coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=5, session=s).sort(
                    "_id").to_list(None)
                assert [d["_id"] for d in docs] == list(range(26))
                getmores = listener.commands("getMore")
                assert len(getmores) >= 2
                sent = getmores[0]  # (the one sent: the later batches were streamed)
                assert sent["lsid"] == s.session_id and "txnNumber" in sent and sent["autocommit"] is False
                # the streamed batches' getMores are published with the same fields (as PyMongo)
                for streamed in getmores[1:]:
                    assert streamed["lsid"] == s.session_id and streamed["txnNumber"] == sent["txnNumber"]
                    assert streamed["autocommit"] is False and "$clusterTime" in streamed
        assert await coll.count_documents({}) == 26
    finally:
        client.close()


async def test_exhaust_command_monitoring(secantus_rs: Any) -> None:
    client, listener = make_client(secantus_rs)
    try:
        coll = client.amongo_stream[unique("m")]
        await coll.insert_many([{"_id": i} for i in range(30)])
        listener.reset()
        docs = await coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=10).to_list(None)
        assert len(docs) == 30
        # as PyMongo: one getMore event per streamed batch (the server runs a getMore for each),
        # though one getMore went over the wire (test_exhaust_streams_with_one_getmore)
        assert listener.names()[0] == "find" and set(listener.names()[1:]) == {"getMore"}
        batches = [len(e.reply["cursor"]["nextBatch"]) for e in listener.succeeded_events[1:]]
        assert sum(batches) == 20 and len(listener.commands("getMore")) == len(batches) >= 2
        assert listener.succeeded_events[-1].reply["cursor"]["id"] == 0
    finally:
        client.close()


class _Started(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: List[monitoring.CommandStartedEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.events.append(event)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def test_streamed_started_events_match_pymongo_on_secantus(secantus_rs: Any) -> None:
    # The real PyMongo 4.20 side by side with both amongo APIs over the same exhaust stream:
    # each getMore's started event (the sent one, then the streamed batches') has the same
    # command fields (lsid, $clusterTime, $db...), the same lsid as the find, request id 0
    # for a streamed batch and a non-zero operation id.
    from pymongo import AsyncMongoClient as PyMongoClient

    name = unique("p")
    shapes = {}
    for api, factory in (("pymongo", PyMongoClient), ("amongo", amongo.AsyncMongoClient),
                         ("motor", AsyncIOMotorClient)):
        listener = _Started()
        client: Any = factory(secantus_rs.uri, event_listeners=[listener], serverSelectionTimeoutMS=20000)
        try:
            coll = client.amongo_stream[name]
            if api == "pymongo":
                await coll.insert_many([{"_id": i} for i in range(40)])
            listener.events.clear()
            docs = await coll.find({}, cursor_type=CursorType.EXHAUST, batch_size=10).to_list(None)
            assert len(docs) == 40
        finally:
            closing = client.close()
            if closing is not None:
                await closing
        find, *getmores = [e for e in listener.events if e.command_name in ("find", "getMore")]
        assert find.command_name == "find" and len(getmores) >= 2
        shapes[api] = [
            (sorted(e.command), e.command["lsid"] == find.command["lsid"], e.command["$db"],
             e.request_id == 0, e.operation_id != 0)
            for e in getmores
        ]
    assert shapes["amongo"] == shapes["pymongo"] == shapes["motor"]
    sent, *streamed = shapes["pymongo"]
    assert "$clusterTime" in sent[0] and "lsid" in sent[0] and sent[1:] == (True, "amongo_stream", False, True)
    assert streamed and all(s == (sent[0], True, "amongo_stream", True, True) for s in streamed)


def test_benchmark_script_smoke(secantus_rs: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m benchmarks.cursors`` (tiny: every mode and consumer, through its latency
    proxy) runs and prints its table."""
    from benchmarks import cursors

    assert cursors.main(["--uri", secantus_rs.uri, "--docs", "300", "--batch-size", "100", "--rounds", "1",
                         "--work-us", "1", "--latency-ms", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[-1:] and line.split()[-1].endswith("x")]
    assert len(rows) == 3 * len(cursors.MODES), out
    assert "+2 ms round trip" in out
