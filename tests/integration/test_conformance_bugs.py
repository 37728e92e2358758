"""Driver bugs the conformance suites found (issue 13), each checked against SecantusDB
(command monitoring shows what amongo sends) or a local socket."""
from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, AsyncIterator

import pytest
from pymongo.errors import AutoReconnect, ConnectionFailure, InvalidOperation, OperationFailure, PyMongoError
from pymongo.operations import InsertOne
from pymongo.read_preferences import ReadPreference

from amongo.connection import Connection, ConnectionOptions
from amongo.motor_asyncio import AsyncIOMotorClient

from .test_retryable import _Cmds, _off

_OVERLOAD = ["RetryableError", "SystemOverloadedError"]


async def _fail(client: AsyncIOMotorClient, mode: Any, **data: Any) -> None:
    await client.admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})


@contextlib.asynccontextmanager
async def _failpoint_client(uri: str) -> AsyncIterator[AsyncIOMotorClient]:
    """A client that sets fail points; it turns failCommand off on exit."""
    client = AsyncIOMotorClient(uri)
    try:
        yield client
    finally:
        try:
            await _off(client)
        finally:
            client.close()


# -- retried transactions carry afterClusterTime -------------------------------------------

@pytest.mark.requires("transactions")
async def test_error_reply_advances_session_operation_time(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    try:
        async with await client.start_session() as s:
            assert s.operation_time is None
            with pytest.raises(OperationFailure) as info:
                await client.amongo_test.bugs.find_one({"$bad": 1}, session=s)
            assert "operationTime" in info.value.details
            # The error reply's operationTime was gossiped into the session (as PyMongo).
            assert s.operation_time == info.value.details["operationTime"]
    finally:
        client.close()


@pytest.mark.requires("fail_command", "transactions")
async def test_retried_transaction_has_after_cluster_time(secantus_rs) -> None:
    async with _failpoint_client(secantus_rs.uri) as setup:
        cmds = _Cmds()
        client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds])
        coll = client.amongo_test.bugs_txn
        try:
            await coll.drop()
            await client.amongo_test.create_collection("bugs_txn")
            await _fail(setup, {"times": 1}, failCommands=["insert"], closeConnection=True)
            async with await client.start_session() as s:

                async def cb(session: Any) -> None:
                    await coll.insert_one({"_id": 1}, session=session)

                cmds.events.clear()
                await s.with_transaction(cb)
            inserts = cmds.named("insert")
            assert len(inserts) == 2 and inserts[1]["startTransaction"] is True
            assert "afterClusterTime" in inserts[1]["readConcern"]
        finally:
            client.close()


# -- causal consistency on DDL and client bulkWrite ----------------------------------------

@pytest.mark.requires("transactions")
async def test_causal_after_cluster_time_on_ddl_and_client_bulk_write(secantus_rs) -> None:
    cmds = _Cmds()
    client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds])
    db = client.amongo_causal
    try:
        await db.coll.insert_one({"x": 1})
        async with await client.start_session(causal_consistency=True) as s:
            await db.coll.find_one({}, session=s)
            cmds.events.clear()
            await db.create_collection("created", session=s, check_exists=False)
            await db.coll.create_index("x", session=s)
            await db.coll.drop_indexes(session=s)
            await db.drop_collection("created", session=s)
            try:
                await client.bulk_write([InsertOne({"y": 1}, namespace="amongo_causal.coll")], session=s)
            except PyMongoError:
                pass  # SecantusDB rejects readConcern on bulkWrite; the command sent is what counts
            await client.drop_database("amongo_causal", session=s)
        for name in ("create", "createIndexes", "dropIndexes", "drop", "bulkWrite", "dropDatabase"):
            sent = cmds.named(name)
            assert sent, name
            assert "afterClusterTime" in sent[0].get("readConcern", {}), (name, sent[0])
            assert "level" not in sent[0]["readConcern"], name
    finally:
        client.close()


# -- overload retries obey retryReads / retryWrites; getMore is retried -----------------------

@pytest.mark.requires("fail_command")
@pytest.mark.parametrize("option, command", [
    ("retryReads", "find"), ("retryWrites", "insert"), ("retryReads", "ping"), ("retryWrites", "ping"),
])
async def test_overload_not_retried_when_retries_disabled(secantus_rs, option, command) -> None:
    async with _failpoint_client(secantus_rs.uri) as setup:
        cmds = _Cmds()
        client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds], **{option: False})
        coll = client.amongo_test.bugs_overload
        try:
            await client.admin.command("ping")
            await _fail(setup, {"times": 1}, failCommands=[command], errorCode=2, errorLabels=_OVERLOAD)
            cmds.events.clear()
            with pytest.raises(OperationFailure) as info:
                if command == "find":
                    await coll.find_one({})
                elif command == "insert":
                    await coll.insert_one({})
                else:
                    await client.admin.command("ping")  # runCommand needs both options
            assert info.value.has_error_label("SystemOverloadedError")
            assert len(cmds.named(command)) == 1
        finally:
            client.close()


@pytest.mark.requires("fail_command")
async def test_overload_retried_by_default(secantus_rs) -> None:
    async with _failpoint_client(secantus_rs.uri) as setup:
        cmds = _Cmds()
        client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds])
        try:
            await _fail(setup, {"times": 1}, failCommands=["ping"], errorCode=2, errorLabels=_OVERLOAD)
            await client.admin.command("ping")
            assert len(cmds.named("ping")) == 2
        finally:
            client.close()


@pytest.mark.requires("fail_command")
async def test_get_more_retried_on_overload_and_cursor_killed_after(secantus_rs) -> None:
    async with _failpoint_client(secantus_rs.uri) as setup:
        cmds = _Cmds()
        client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds])
        coll = client.amongo_test.bugs_getmore
        try:
            await coll.drop()
            await coll.insert_many([{"a": i} for i in range(3)])
            await _fail(setup, {"times": 1}, failCommands=["getMore"], errorCode=2, errorLabels=_OVERLOAD)
            cmds.events.clear()
            assert len(await coll.find({}, batch_size=2).to_list(None)) == 3
            assert len(cmds.named("getMore")) == 2
            # Past the retry budget the error surfaces and the cursor is killed on the server.
            await _fail(setup, "alwaysOn", failCommands=["getMore"], errorCode=2, errorLabels=_OVERLOAD)
            cmds.events.clear()
            with pytest.raises(OperationFailure):
                await coll.find({}, batch_size=2).to_list(None)
            assert len(cmds.named("getMore")) == 3
            assert len(cmds.named("killCursors")) == 1
        finally:
            client.close()


# -- explicit read preference inside a transaction -------------------------------------------

@pytest.mark.requires("transactions")
async def test_explicit_secondary_read_preference_in_transaction_fails(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    try:
        async with await client.start_session() as s:
            s.start_transaction()
            with pytest.raises(InvalidOperation, match="read preference in a transaction must be primary"):
                await client.amongo_test.command({"find": "x"}, read_preference=ReadPreference.SECONDARY, session=s)
            await s.abort_transaction()
    finally:
        client.close()


# -- network errors while connecting are overload errors (client-backpressure) ---------------

def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connect_refused_is_labelled_for_application_connections() -> None:
    port = _refused_port()
    with pytest.raises(AutoReconnect) as info:
        await Connection.open(("127.0.0.1", port), ConnectionOptions())
    assert info.value.has_error_label("SystemOverloadedError")
    assert info.value.has_error_label("RetryableError")
    # A monitoring connection (no handshake here) is not labelled.
    with pytest.raises(AutoReconnect) as info:
        await Connection.open(("127.0.0.1", port), ConnectionOptions(), handshake=False)
    assert not info.value.has_error_label("SystemOverloadedError")


async def test_connection_closed_during_hello_is_labelled() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(16)
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionFailure) as info:
            await Connection.open(("127.0.0.1", port), ConnectionOptions())
        assert info.value.has_error_label("SystemOverloadedError")
        assert info.value.has_error_label("RetryableError")
    finally:
        server.close()
        await server.wait_closed()


# -- CSOT: no maxTimeMS on a tailable non-awaitData find -------------------------------------

async def test_tailable_find_under_timeout_sends_no_max_time_ms(secantus_rs) -> None:
    import pymongo
    from pymongo import CursorType

    cmds = _Cmds()
    client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[cmds])
    db = client.amongo_test
    try:
        await db.drop_collection("bugs_capped")
        await db.create_collection("bugs_capped", capped=True, size=4096)
        await db.bugs_capped.insert_one({"x": 1})
        with pymongo.timeout(5):
            cursor = db.bugs_capped.find({}, cursor_type=CursorType.TAILABLE)
            assert (await cursor.next())["x"] == 1
            await cursor.close()
            await db.bugs_capped.find_one({})
        tailable, plain = cmds.named("find")[-2:]
        assert tailable["tailable"] is True and "maxTimeMS" not in tailable
        assert "maxTimeMS" in plain  # (an ordinary find under the deadline still gets it)
    finally:
        client.close()
