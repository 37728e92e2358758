"""amongo's PyMongo-style API (``amongo.AsyncMongoClient``, issue 14) run side by side with
the real PyMongo 4.20 ``AsyncMongoClient`` (``driver`` parameter) against SecantusDB: the same
code, the same awaitable-ness, the same results and errors."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from pymongo import AsyncMongoClient as PyMongoClient
from pymongo.driver_info import DriverInfo
from pymongo.errors import InvalidOperation

import amongo
from amongo.asynchronous.change_stream import AsyncCollectionChangeStream
from amongo.asynchronous.command_cursor import AsyncCommandCursor
from amongo.asynchronous.gridfs import AsyncGridFS, AsyncGridFSBucket, AsyncGridOut

from ._crud_helpers import unique

DRIVERS = {"pymongo": PyMongoClient, "amongo": amongo.AsyncMongoClient}
DB = "amongo_pymongo_api"


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Any:
    return DRIVERS[request.param]


async def test_crud_cursor_and_command_cursors(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        coll = client[DB][unique()]
        await coll.insert_many([{"i": i} for i in range(5)])
        assert await coll.find_one({"i": 3}, {"_id": 0}) == {"i": 3}
        cursor = coll.find({}, {"_id": 0}).sort("i", -1)
        assert [d["i"] for d in await cursor.to_list()] == [4, 3, 2, 1, 0]
        with pytest.raises(ValueError, match="greater than 0"):
            await coll.find().to_list(0)
        await cursor.rewind()
        assert (await cursor.to_list(2)) == [{"i": 4}, {"i": 3}]
        with pytest.raises(IndexError):
            coll.find()[0]
        agg = await coll.aggregate([{"$match": {"i": {"$gte": 3}}}, {"$sort": {"i": 1}}, {"$project": {"_id": 0}}])
        assert await agg.to_list() == [{"i": 3}, {"i": 4}]
        with pytest.raises(ValueError, match="greater than 0"):
            await (await coll.aggregate([])).to_list(0)
        with pytest.raises(ValueError, match="greater than 0"):
            await coll.find().to_list(-1)
        names = [ix["name"] async for ix in await coll.list_indexes()]
        assert names == ["_id_"]
        with pytest.raises(TypeError, match="not iterable"):
            next(coll)
        with pytest.raises(TypeError):
            iter(client)


async def test_aggregate_error_raises_at_the_await(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        coll = client[DB][unique()]
        await coll.insert_one({"a": 1})
        with pytest.raises(Exception) as info:
            await coll.aggregate([{"$bogusStage": {}}])
        assert "bogusStage" in str(info.value) or "Unrecognized" in str(info.value)


async def test_sessions_and_transactions(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        coll = client[DB][unique()]
        await coll.insert_one({"seed": 1})
        async with client.start_session() as s:
            async with await s.start_transaction():
                await coll.insert_one({"t": 1}, session=s)
            assert await coll.count_documents({"t": 1}) == 1

            async def callback(session: Any) -> str:
                await coll.insert_one({"t": 2}, session=session)
                return "done"

            assert await s.with_transaction(callback) == "done"
        assert await coll.count_documents({"t": {"$exists": True}}) == 2


async def test_change_stream_opens_at_the_await(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        coll = client[DB][unique()]
        await coll.insert_one({"before": 1})
        stream = await coll.watch()
        async with stream:
            await coll.insert_one({"x": 1})
            change = None
            for _ in range(50):
                change = await stream.try_next()
                if change is not None:
                    break
            assert change is not None and change["fullDocument"]["x"] == 1


async def test_close_aclose_and_reuse(driver, secantus_rs):
    client = driver(secantus_rs.uri, serverSelectionTimeoutMS=20000)
    await client.aconnect()
    await client.admin.command("ping")
    await client.close()
    await client.aclose()  # idempotent


async def test_append_metadata(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        client.append_metadata(DriverInfo("my-lib", "1.2"))
        client.append_metadata(DriverInfo("my-lib", "1.2"))  # once only
        with pytest.raises(TypeError):
            client.append_metadata({"name": "x"})
        await client.admin.command("ping")


async def test_gridfs_bucket_and_legacy(driver, secantus_rs):
    from gridfs.asynchronous import AsyncGridFS as PyGridFS
    from gridfs.asynchronous import AsyncGridFSBucket as PyBucket
    from gridfs.errors import NoFile

    bucket_cls, fs_cls = (AsyncGridFSBucket, AsyncGridFS) if driver is amongo.AsyncMongoClient else (PyBucket, PyGridFS)
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        db = client[DB + unique()]
        bucket = bucket_cls(db)
        await bucket.upload_from_stream("a.txt", b"one")
        await bucket.upload_from_stream("a.txt", b"two")
        out = await bucket.open_download_stream_by_name("a.txt")
        assert await out.read() == b"two"
        assert await out.seek(0) == 0
        await out.close()
        files = await bucket.find({"filename": "a.txt"}).to_list()
        assert len(files) == 2 and all(type(f).__name__ == "AsyncGridOut" for f in files)
        with pytest.raises(ValueError, match="greater than 0"):
            await bucket.find({"filename": "a.txt"}).to_list(0)
        await bucket.rename_by_name("a.txt", "b.txt")
        assert await (await bucket.open_download_stream_by_name("b.txt", revision=0)).read() == b"one"
        await bucket.delete_by_name("b.txt")
        with pytest.raises(NoFile):
            await bucket.delete_by_name("b.txt")

        fs = fs_cls(db)
        file_id = await fs.put(b"legacy", filename="l.bin")
        assert await (await fs.get(file_id)).read() == b"legacy"
        assert await fs.exists(file_id) and await fs.exists(filename="l.bin")
        assert await fs.list() == ["l.bin"]
        assert (await fs.get_last_version("l.bin"))._id == file_id
        assert (await fs.find_one({"filename": "l.bin"}))._id == file_id
        await fs.delete(file_id)
        assert not await fs.exists(file_id)
        await client.drop_database(db.name)


def test_awaitable_ness_matches_pymongo():
    """Spot checks of the surface test's rule on real objects: coroutines are real async defs."""
    client = amongo.AsyncMongoClient(connect=False)
    coll = client.db.coll
    for obj, name in [(client, "close"), (client, "aclose"), (client, "watch"), (coll, "aggregate"),
                      (coll, "watch"), (coll, "list_indexes"), (coll.find(), "rewind"), (coll.find(), "to_list")]:
        assert inspect.iscoroutinefunction(getattr(obj, name)), name
    assert not inspect.iscoroutinefunction(client.start_session)
    assert isinstance(client.start_session(), amongo.asynchronous.AsyncClientSession)
    assert type(coll.find()).__name__ == "AsyncCursor"
    assert AsyncCollectionChangeStream.__mro__[1].__name__ == "AsyncChangeStream"
    assert AsyncCommandCursor and AsyncGridOut


def test_client_bound_to_its_first_event_loop(secantus_rs):
    client = amongo.AsyncMongoClient(secantus_rs.uri, serverSelectionTimeoutMS=20000)

    def run(coro: Any) -> Any:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, 30))
        finally:
            loop.close()

    try:
        run(client.admin.command("ping"))
        with pytest.raises(InvalidOperation, match="Cannot use AsyncMongoClient in different event loop") as info:
            run(client.admin.command("ping"))
        assert isinstance(info.value, RuntimeError)  # what PyMongo raises
    finally:
        amongo.client.MongoClient.close(client)


async def test_bound_session(driver, secantus_rs):
    """``async with s.bind():`` passes the session implicitly (PyMongo 4.17+), to operations and
    to cursors created in the block; another client's operations there raise InvalidOperation."""
    from pymongo import monitoring

    class Lsids(monitoring.CommandListener):
        def __init__(self) -> None:
            self.seen: list = []

        def started(self, event: Any) -> None:
            if event.command_name in ("insert", "find", "getMore"):
                self.seen.append((event.command_name, event.command.get("lsid")))

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    listener = Lsids()
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000, event_listeners=[listener]) as client:
        coll = client[DB][unique()]
        await coll.insert_many([{"i": i} for i in range(5)])
        listener.seen.clear()
        s = client.start_session()
        async with s.bind(end_session=False):
            await coll.insert_one({"i": 5})
            cursor = coll.find({}, batch_size=2)
            first = await cursor.next()
        assert first["i"] == 0
        rest = await cursor.to_list()  # getMores after the block: still the cursor's session
        assert len(rest) == 5
        lsid = s.session_id
        names = [name for name, _ in listener.seen]
        assert names[:2] == ["insert", "find"] and names[2:] and set(names[2:]) == {"getMore"}, names
        assert all(seen == lsid for _, seen in listener.seen), listener.seen
        listener.seen.clear()
        await coll.find_one({})
        assert listener.seen and listener.seen[0][1] != lsid  # outside: an implicit session
        async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as other:
            async with s.bind():
                with pytest.raises(InvalidOperation, match="bound session"):
                    await other[DB].coll.insert_one({"x": 1})
        assert s.has_ended
