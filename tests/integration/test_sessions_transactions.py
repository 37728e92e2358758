"""Sessions, transactions and change streams against SecantusDB (a replica set: nx-27017 has
neither per-session transactions nor standard change streams)."""
from __future__ import annotations

import asyncio

import pytest
from pymongo import monitoring
from pymongo.errors import InvalidOperation, OperationFailure

from amongo.motor_asyncio import AsyncIOMotorChangeStream, AsyncIOMotorClient, AsyncIOMotorClientSession


class _Cmds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: list = []

    def started(self, e):
        self.events.append(e)

    def succeeded(self, e):
        pass

    def failed(self, e):
        pass


def _make(dep):
    cmds = _Cmds()
    return AsyncIOMotorClient(dep.uri, event_listeners=[cmds]), cmds


async def test_explicit_session_lsid_and_causal_consistency(secantus_rs) -> None:
    client, cmds = _make(secantus_rs)
    coll = client.amongo_test.sessions
    try:
        await coll.drop()
        s = await client.start_session()
        assert isinstance(s, AsyncIOMotorClientSession)
        async with s:
            await coll.insert_one({"a": 1}, session=s)
            assert s.operation_time is not None and s.cluster_time is not None
            await coll.find_one({"a": 1}, session=s)
            lsids = [e.command["lsid"] for e in cmds.events if e.command_name in ("insert", "find")]
            assert len(lsids) == 2 and lsids[0] == lsids[1] == s.session_id
            find = [e for e in cmds.events if e.command_name == "find"][-1]
            assert find.command["readConcern"]["afterClusterTime"] == s.operation_time
        assert s.has_ended
        with pytest.raises(InvalidOperation):
            await coll.find_one({}, session=s)
    finally:
        client.close()


async def test_implicit_sessions_are_pooled(secantus_rs) -> None:
    client, cmds = _make(secantus_rs)
    try:
        for _ in range(5):
            await client.admin.command("ping")
        lsids = {e.command["lsid"]["id"] for e in cmds.events if e.command_name == "ping"}
        assert len(lsids) == 1  # sequential operations reuse one server session
    finally:
        client.close()


async def test_transaction_commit_and_abort(secantus_rs) -> None:
    client, cmds = _make(secantus_rs)
    coll = client.amongo_test.txn
    try:
        await coll.drop()
        await coll.insert_one({"_id": 0})
        async with await client.start_session() as s:
            async with s.start_transaction():
                await coll.insert_one({"_id": 1}, session=s)
                await coll.insert_one({"_id": 2}, session=s)
                assert s.in_transaction
            assert not s.in_transaction
            s.start_transaction()
            await coll.insert_one({"_id": 3}, session=s)
            await s.abort_transaction()
        ids = sorted(d["_id"] for d in await coll.find().to_list(None))
        assert ids == [0, 1, 2]
        inserts = [e.command for e in cmds.events if e.command_name == "insert" and "txnNumber" in e.command and e.command.get("autocommit") is False]
        assert inserts[0]["startTransaction"] is True and "startTransaction" not in inserts[1]
        assert inserts[0]["txnNumber"] == inserts[1]["txnNumber"] != inserts[2]["txnNumber"]
        names = [e.command_name for e in cmds.events]
        assert "commitTransaction" in names and "abortTransaction" in names
    finally:
        client.close()


async def test_with_transaction_runs_callback(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    coll = client.amongo_test.with_txn
    try:
        await coll.drop()

        async def work(session):
            await coll.insert_one({"x": 1}, session=session)
            return "done"

        async with await client.start_session() as s:
            assert await s.with_transaction(work) == "done"
        assert await coll.count_documents({"x": 1}) == 1
    finally:
        client.close()


async def test_transaction_errors(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    try:
        async with await client.start_session() as s:
            with pytest.raises(InvalidOperation):
                await s.commit_transaction()
            s.start_transaction()
            with pytest.raises(InvalidOperation):
                s.start_transaction()
            await s.abort_transaction()
    finally:
        client.close()


async def test_collection_change_stream(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    coll = client.amongo_test.changes
    try:
        await coll.drop()
        await coll.insert_one({"seed": True})
        stream = coll.watch(max_await_time_ms=200)  # returned without awaiting, as in Motor
        assert isinstance(stream, AsyncIOMotorChangeStream)
        async with stream:
            assert await stream.try_next() is None  # opens the stream
            await coll.insert_one({"_id": "a", "v": 1})
            await coll.update_one({"_id": "a"}, {"$set": {"v": 2}})
            change = await asyncio.wait_for(stream.next(), 10)
            assert change["operationType"] == "insert" and change["fullDocument"]["v"] == 1
            token = stream.resume_token
            assert token is not None
            change2 = await asyncio.wait_for(stream.next(), 10)
            assert change2["operationType"] == "update"
        assert not stream.alive
        # resume after the first change: the update comes again
        async with coll.watch(resume_after=token, max_await_time_ms=200) as resumed:
            again = await asyncio.wait_for(resumed.next(), 10)
            assert again["operationType"] == "update" and again["documentKey"] == {"_id": "a"}
    finally:
        client.close()


async def test_database_and_client_change_streams(secantus_rs) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    db = client.amongo_test
    try:
        async with db.watch(max_await_time_ms=200) as dbs, client.watch(max_await_time_ms=200) as cls:
            assert await dbs.try_next() is None
            assert await cls.try_next() is None
            await db.changes_db.insert_one({"k": 1})
            a = await asyncio.wait_for(dbs.next(), 10)
            b = await asyncio.wait_for(cls.next(), 10)
            assert a["ns"] == {"db": "amongo_test", "coll": "changes_db"} == b["ns"]
    finally:
        client.close()
