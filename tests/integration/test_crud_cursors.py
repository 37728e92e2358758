"""Cursor behaviour of the Motor facades (find / command cursors) against real servers."""
from __future__ import annotations

import asyncio
import gc
import inspect

import pytest
from pymongo import ASCENDING, DESCENDING, monitoring
from pymongo.collation import Collation
from pymongo.errors import InvalidOperation, OperationFailure

from amongo.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCursor

from ._crud_helpers import make_client, nx_quirk, unique

DB = "amongo_crud"


async def _seed(client, n=10):
    coll = client[DB][unique("cur")]
    await coll.drop()
    await coll.insert_many([{"_id": i, "x": i, "s": f"s{i:02d}", "g": i % 3} for i in range(n)])
    return coll


async def test_find_options(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client)
        cursor = coll.find({"x": {"$gte": 3}})
        assert isinstance(cursor, AsyncIOMotorCursor) and not inspect.isawaitable(cursor)
        assert [d["x"] async for d in cursor] == list(range(3, 10))
        assert await coll.find({}, {"_id": 0, "x": 1}).sort("x", -1).limit(2).to_list(None) == [{"x": 9}, {"x": 8}]
        assert await coll.find({}, ["s"]).sort([("x", ASCENDING)]).limit(1).to_list(None) == [{"_id": 0, "s": "s00"}]
        assert await coll.find(projection={"x": 1, "_id": 0}, sort=[("x", DESCENDING)], skip=2, limit=2).to_list(None) == [{"x": 7}, {"x": 6}]
        assert [d["x"] for d in await coll.find().sort("x").skip(8).to_list(None)] == [8, 9]
        # negative limit: a single batch, at most |limit| documents, cursor closed
        listener.reset()
        docs = await coll.find().sort("x").limit(-3).to_list(None)
        assert [d["x"] for d in docs] == [0, 1, 2]
        fcmd = listener.commands("find")[-1]
        assert fcmd["limit"] == 3 and fcmd["singleBatch"] is True
        assert not listener.commands("getMore")
        # find_one: filter, projection, by _id
        assert await coll.find_one({"x": 4}) == {"_id": 4, "x": 4, "s": "s04", "g": 1}
        assert await coll.find_one(5, {"_id": 0, "x": 1}) == {"x": 5}
        assert await coll.find_one({"x": 100}) is None
        assert (await coll.find_one(sort=[("x", -1)]))["x"] == 9
        # hint, max_time_ms, comment, collation rendered into the command
        await coll.create_index("x")
        listener.reset()
        await coll.find({"x": 1}).hint([("x", 1)]).max_time_ms(5000).comment("c1").to_list(None)
        await coll.find({"s": "S01"}, collation=Collation("en", strength=2)).to_list(None)
        cmds = listener.commands("find")
        assert cmds[0]["hint"] == {"x": 1} and cmds[0]["maxTimeMS"] == 5000 and cmds[0]["comment"] == "c1"
        assert cmds[1]["collation"]["locale"] == "en" and cmds[1]["collation"]["strength"] == 2
        if server.supports("collation"):
            assert [d["x"] async for d in coll.find({"s": "S01"}, collation=Collation("en", strength=2))] == [1]
        assert [d["x"] async for d in coll.find({"x": 1}, hint="x_1")] == [1]
        with pytest.raises(TypeError):
            coll.find(filter="x")
        with pytest.raises(TypeError):
            coll.find().limit("1")
        with pytest.raises(ValueError):
            coll.find().skip(-1)
    finally:
        client.close()


async def test_to_list_semantics(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client)
        listener.reset()
        cursor = coll.find().sort("x").batch_size(3)
        assert await cursor.to_list(0) == []
        assert len(listener.commands("find")) == 1  # the first batch was fetched
        assert [d["x"] for d in await cursor.to_list(2)] == [0, 1]
        assert [d["x"] for d in await cursor.to_list(2)] == [2, 3]
        assert [d["x"] for d in await cursor.to_list(None)] == list(range(4, 10))
        assert await cursor.to_list(None) == []
        with pytest.raises(ValueError):
            await coll.find().to_list(-1)
        assert [d["x"] for d in await coll.find().sort("x").to_list(length=100)] == list(range(10))
        # next() and StopAsyncIteration
        c = coll.find({"x": {"$lt": 2}}).sort("x")
        assert (await c.next())["x"] == 0
        assert (await c.next())["x"] == 1
        with pytest.raises(StopAsyncIteration):
            await c.next()
        assert not c.alive
    finally:
        client.close()


async def test_get_more_honours_batch_size(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client, 20)
        listener.reset()
        docs = [d async for d in coll.find().batch_size(4)]
        assert len(docs) == 20
        assert listener.commands("find")[0]["batchSize"] == 4
        gms = listener.commands("getMore")
        assert len(gms) >= 4
        assert all(g["batchSize"] == 4 for g in gms)
        assert all(g["collection"] == coll.name and g["$db"] == DB for g in gms)
        # limit + batch_size: the last getMore asks only for what remains
        listener.reset()
        docs = await coll.find().sort("x").batch_size(4).limit(10).to_list(None)
        assert [d["x"] for d in docs] == list(range(10))
        sizes = [listener.commands("find")[0]["batchSize"]] + [g["batchSize"] for g in listener.commands("getMore")]
        assert sizes[0] == 4 and sum(sizes) <= 12 and sizes[-1] <= 4
    finally:
        client.close()


async def test_chaining_after_start_and_rewind_clone(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client)
        cursor = coll.find().sort("x").batch_size(2)
        first = await cursor.next()
        assert first["x"] == 0
        for chain in (lambda c: c.limit(1), lambda c: c.skip(1), lambda c: c.sort("x"),
                      lambda c: c.batch_size(3) and c.hint("x"), lambda c: c.max_time_ms(10),
                      lambda c: c.comment("x"), lambda c: c.collation({"locale": "en"})):
            if chain is not None:
                try:
                    chain(cursor)
                except InvalidOperation:
                    continue
                # batch_size is allowed after start in PyMongo; the hint after it is not
                pytest.fail("chaining after iteration started must raise InvalidOperation")
        clone = cursor.clone()
        assert [d["x"] async for d in clone] == list(range(10))
        cursor.rewind()
        assert [d["x"] async for d in cursor] == list(range(10))
        cursor.rewind()
        cursor.limit(3)  # allowed again after rewind
        assert [d["x"] async for d in cursor] == [0, 1, 2]
        assert sorted(await coll.find({"g": 0}).distinct("x")) == [0, 3, 6, 9]
    finally:
        client.close()


async def test_explain(server):
    client, _ = make_client(server)
    try:
        coll = await _seed(client)
        try:
            plan = await coll.find({"x": 1}).explain()
        except OperationFailure as exc:
            pytest.skip(f"{server.name}: explain unsupported ({exc})")
        assert isinstance(plan, dict) and plan
    finally:
        client.close()


async def test_close_early_sends_kill_cursors(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client, 10)
        listener.reset()
        cursor = coll.find().batch_size(2)
        await cursor.next()
        cid = cursor.cursor_id
        assert cid
        await cursor.close()
        kills = listener.commands("killCursors")
        assert len(kills) == 1 and kills[0]["cursors"] == [cid] and kills[0]["killCursors"] == coll.name
        # as in Motor/PyMongo: the document already buffered is still readable, then the end
        assert cursor.alive
        assert (await cursor.next())["x"] == 1
        assert not cursor.alive
        with pytest.raises(StopAsyncIteration):
            await cursor.next()
        assert len(listener.commands("getMore")) == 0
        # an exhausted cursor sends no killCursors
        listener.reset()
        await coll.find().batch_size(2).to_list(None)
        assert not listener.commands("killCursors")
        # async with closes
        listener.reset()
        async with coll.find().batch_size(2) as c:
            await c.next()
        assert len(listener.commands("killCursors")) == 1
        # aggregate cursor closed early
        listener.reset()
        agg = coll.aggregate([{"$match": {}}], batchSize=2)
        await agg.next()
        await agg.close()
        assert len(listener.commands("killCursors")) == 1
    finally:
        client.close()


async def test_gc_cursor_sends_kill_cursors(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client, 10)
        listener.reset()
        cursor = coll.find().batch_size(2)
        await cursor.next()
        cid = cursor.cursor_id
        assert cid
        del cursor
        gc.collect()
        for _ in range(100):
            if listener.commands("killCursors"):
                break
            await asyncio.sleep(0.02)
        kills = listener.commands("killCursors")
        assert len(kills) == 1 and kills[0]["cursors"] == [cid]
    finally:
        client.close()


async def test_command_cursor_getmore_and_batch_size(server):
    client, listener = make_client(server)
    try:
        coll = await _seed(client, 9)
        listener.reset()
        cursor = coll.aggregate([{"$sort": {"x": 1}}]).batch_size(2)
        assert [d["x"] async for d in cursor] == list(range(9))
        assert listener.commands("aggregate")[0]["cursor"] == {"batchSize": 2} or \
            listener.commands("aggregate")[0]["cursor"] == {}
        assert all(g["batchSize"] == 2 for g in listener.commands("getMore"))
        lc = await client[DB].list_collections(batchSize=1)
        names = [d["name"] async for d in lc]
        assert coll.name in names
        c = coll.aggregate([{"$sort": {"x": 1}}])
        assert await c.to_list(0) == []
        assert len(await c.to_list(None)) == 9
    finally:
        client.close()


async def test_command_events_duration_is_timedelta(server):
    """Regression (executor): command events carry a timedelta duration (pymongo 4.20 calls
    ``duration.total_seconds()``), and listeners see ``duration_micros``."""
    client, listener = make_client(server)
    try:
        await client.admin.command("ping")
        micros = listener.succeeded_events[-1].duration_micros
    finally:
        client.close()
    assert isinstance(micros, int) and micros >= 0
