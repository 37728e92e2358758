"""CRUD API of the Motor facades against real servers (SecantusDB replica set and nx-27017)."""
from __future__ import annotations

import asyncio
import inspect

import pytest
from bson import ObjectId
from bson.son import SON
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    ConfigurationError,
    DuplicateKeyError,
    InvalidName,
    InvalidOperation,
    OperationFailure,
)
from pymongo.operations import DeleteMany, DeleteOne, IndexModel, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)

from amongo import motor_tornado
from amongo.motor_asyncio import (
    AsyncIOMotorClient,
    AsyncIOMotorCollection,
    AsyncIOMotorCommandCursor,
    AsyncIOMotorDatabase,
)

from ._crud_helpers import make_client, nx_quirk, unique

DB = "amongo_crud"


async def _fresh(client, name=None):
    coll = client[DB][name or unique()]
    await coll.drop()
    return coll


# --------------------------------------------------------------------------------------------
# client


async def test_client_classes_and_uri(server):
    host, port = server.host, server.port
    loop = asyncio.get_running_loop()
    c1 = AsyncIOMotorClient(host, port, io_loop=loop, serverSelectionTimeoutMS=10000)
    c2 = motor_tornado.MotorClient(server.uri, io_loop=loop, appname="crud-test", maxPoolSize=7)
    try:
        assert c1.get_io_loop() is loop and c2.io_loop is loop
        assert c2.max_pool_size == 7
        assert (c1.HOST, c1.PORT) == ("localhost", 27017)  # Motor's class constants
        assert isinstance(c1.amongo_crud, AsyncIOMotorDatabase)
        assert c1.amongo_crud.name == "amongo_crud" and c1["x"].name == "x"
        assert c1["x"].client is c1
        info = await c2.server_info()
        assert "version" in info
        if not nx_quirk(server, "buildInfo reply has no versionArray"):
            assert isinstance(info["versionArray"], list)
        info1 = await c1.server_info()
        assert info1["version"] == info["version"]
        with pytest.raises(AttributeError):
            c1._private_thing
    finally:
        c1.close()
        c2.close()
        c2.close()  # idempotent


async def test_tornado_client_inside_asyncio_run(server):
    # motor_tornado must not need tornado; we are inside the loop conftest made (asyncio.run-like)
    client = motor_tornado.MotorClient(server.uri, serverSelectionTimeoutMS=10000)
    try:
        coll = client[DB][unique("tornado")]
        await coll.insert_one({"t": 1})
        assert (await coll.find_one({}, {"_id": 0})) == {"t": 1}
        await coll.drop()
    finally:
        client.close()


def test_tornado_client_in_asyncio_run_fresh(server):
    async def main():
        client = motor_tornado.MotorClient(server.uri, serverSelectionTimeoutMS=10000)
        try:
            return (await client.admin.command("ping"))["ok"]
        finally:
            client.close()

    assert asyncio.run(main()) == 1


async def test_default_database(server):
    uri = server.uri
    base, _, query = uri.partition("?")
    base = base.rstrip("/")
    with_db = f"{base}/uridb" + (f"?{query}" if query else "")
    client = AsyncIOMotorClient(with_db, serverSelectionTimeoutMS=10000)
    plain = AsyncIOMotorClient(uri, serverSelectionTimeoutMS=10000)
    try:
        assert client.get_default_database().name == "uridb"
        assert client.get_default_database(default="other").name == "uridb"  # URI wins
        assert client.get_database().name == "uridb"
        assert plain.get_default_database(default="other").name == "other"
        with pytest.raises(ConfigurationError):
            plain.get_default_database()
        with pytest.raises(ConfigurationError):
            plain.get_database()
        from pymongo.write_concern import WriteConcern

        db = plain.get_database("x", write_concern=WriteConcern(w=1))
        assert db.write_concern == WriteConcern(w=1)
    finally:
        client.close()
        plain.close()


async def test_list_and_drop_databases(server):
    client, listener = make_client(server)
    try:
        name = unique("amongo_dbl")
        await client[name].c.insert_one({"a": 1})
        names = await client.list_database_names()
        assert name in names and all(isinstance(n, str) for n in names)
        assert listener.commands("listDatabases")[-1]["nameOnly"] is True

        cursor_aw = client.list_databases()
        assert inspect.isawaitable(cursor_aw)
        cursor = await cursor_aw
        assert isinstance(cursor, AsyncIOMotorCommandCursor)
        docs = await cursor.to_list(None)
        assert any(d["name"] == name for d in docs)

        listener.reset()
        cursor = await client.list_databases(filter={"name": name}, nameOnly=True)
        cmd = listener.commands("listDatabases")[-1]
        assert cmd["filter"] == {"name": name} and cmd["nameOnly"] is True
        docs = [d async for d in cursor]
        if not nx_quirk(server, "listDatabases ignores filter"):
            assert [d["name"] for d in docs] == [name]

        await client.drop_database(name)
        assert name not in await client.list_database_names()
        await client[name].c.insert_one({"a": 1})
        await client.drop_database(client[name])
        assert name not in await client.list_database_names()
        with pytest.raises(TypeError):
            await client.drop_database(5)
    finally:
        client.close()


@pytest.mark.parametrize("bad", ["", "a b", "a.b", "a$b", "a/b", "a\\b", 'a"b', "a\x00b"])
def test_invalid_database_names(bad):
    client = AsyncIOMotorClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        with pytest.raises(InvalidName):
            client[bad]
        with pytest.raises(InvalidName):
            client.get_database(bad)
    finally:
        client.close()


@pytest.mark.parametrize("bad", ["", "$x", "a$b", ".a", "a.", "a..b", "a\x00b"])
def test_invalid_collection_names(bad):
    client = AsyncIOMotorClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        with pytest.raises(InvalidName):
            client.db[bad]
        with pytest.raises(InvalidName):
            client.db.get_collection(bad)
    finally:
        client.close()


def test_valid_unusual_collection_names():
    client = AsyncIOMotorClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        # PyMongo allows spaces and '$' in 'oplog.$main' / '$cmd' names
        assert client.db["a b"].name == "a b"
        assert client.db["oplog.$main"].name == "oplog.$main"
        assert client.db.a.b.full_name == "db.a.b"
        with pytest.raises(TypeError):
            client.db[5]
        with pytest.raises(TypeError):
            client[5]
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# database


async def test_database_command(server):
    client, listener = make_client(server)
    try:
        db = client[DB]
        assert (await db.command("ping"))["ok"] == 1
        assert (await db.command({"ping": 1}))["ok"] == 1
        coll = await _fresh(client)
        await coll.insert_many([{"x": i} for i in range(3)])
        listener.reset()
        res = await db.command("count", coll.name, query={"x": {"$gte": 1}})
        assert res["n"] == 2
        cmd = listener.commands("count")[-1]
        assert cmd["count"] == coll.name and cmd["query"] == {"x": {"$gte": 1}}
        assert "$readPreference" not in cmd  # primary default (not directly connected)
        res = await db.command(SON([("count", coll.name), ("query", {"x": 0})]))
        assert res["n"] == 1
        if server.supports("command_not_found"):
            with pytest.raises(OperationFailure) as ei:
                await db.command("noSuchCommandXyz")
            assert ei.value.code == 59
            res = await db.command("noSuchCommandXyz", check=False)
            assert res["ok"] == 0
    finally:
        client.close()


async def test_collections_management(server):
    client, listener = make_client(server)
    try:
        db = client[DB]
        name = unique("mgmt")
        await db.drop_collection(name)
        coll = await db.create_collection(name)
        assert isinstance(coll, AsyncIOMotorCollection) and coll.name == name
        with pytest.raises(CollectionInvalid):
            await db.create_collection(name)
        assert name in await db.list_collection_names()
        cursor = await db.list_collections(filter={"name": name})
        assert isinstance(cursor, AsyncIOMotorCommandCursor)
        infos = await cursor.to_list(None)
        if not nx_quirk(server, "listCollections ignores filter"):
            assert await db.list_collection_names(filter={"name": name}) == [name]
            assert [i["name"] for i in infos] == [name]
        assert isinstance(await coll.options(), dict)
        await db.drop_collection(name)
        assert name not in await db.list_collection_names()
        await db.drop_collection(name)  # dropping a missing collection is fine
        await db.create_collection(name)
        await db.drop_collection(db[name])
        assert name not in await db.list_collection_names()
        with pytest.raises(TypeError):
            await db.drop_collection(5)
        gc = db.get_collection(name)
        assert gc.name == name and gc.database is db or gc.database == db
    finally:
        client.close()


async def test_database_with_options(server):
    from pymongo.read_concern import ReadConcern
    from pymongo.read_preferences import ReadPreference, Secondary
    from pymongo.write_concern import WriteConcern

    client, _ = make_client(server)
    try:
        db = client[DB]
        db2 = db.with_options(write_concern=WriteConcern(w=1, j=True), read_concern=ReadConcern("local"),
                              read_preference=Secondary())
        assert db2.write_concern == WriteConcern(w=1, j=True)
        assert db2.read_concern == ReadConcern("local")
        assert db2.read_preference == Secondary()
        assert db2.codec_options == db.codec_options
        assert db.write_concern == WriteConcern()
        assert db2.name == db.name and db2 == db
        coll = db2.get_collection("x", read_preference=ReadPreference.PRIMARY)
        assert coll.read_preference == ReadPreference.PRIMARY
        assert coll.write_concern == WriteConcern(w=1, j=True)
    finally:
        client.close()


async def test_database_aggregate_and_cursor_command(server):
    client, listener = make_client(server)
    try:
        db = client.admin
        cursor = None
        try:
            cursor = db.aggregate([{"$currentOp": {}}])
            assert not inspect.iscoroutine(cursor)
            ops = await cursor.to_list(None)
            assert isinstance(ops, list)
            cmd = listener.commands("aggregate")[-1]
            assert cmd["aggregate"] == 1 and cmd["pipeline"] == [{"$currentOp": {}}]
        except OperationFailure:
            cursor = client[DB].aggregate([{"$documents": [{"a": 1}, {"a": 2}]}])
            try:
                docs = await cursor.to_list(None)
            except OperationFailure:
                pytest.skip(f"{server.name} supports neither $currentOp nor $documents")
            assert [d["a"] for d in docs] == [1, 2]
        coll = await _fresh(client)
        await coll.insert_many([{"i": i} for i in range(5)])
        listener.reset()
        cc = await client[DB].cursor_command("find", coll.name, filter={"i": {"$lt": 4}}, batchSize=2)
        assert isinstance(cc, AsyncIOMotorCommandCursor)
        got = [d["i"] async for d in cc]
        assert sorted(got) == [0, 1, 2, 3]
        assert listener.commands("find")[0]["batchSize"] == 2
        assert len(listener.commands("getMore")) >= 1
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# collection writes


async def test_insert_one_and_many(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        r = await coll.insert_one({"x": 1})
        assert isinstance(r, InsertOneResult) and isinstance(r.inserted_id, ObjectId) and r.acknowledged
        r = await coll.insert_one({"_id": "mine", "x": 2})
        assert r.inserted_id == "mine"
        doc = {"x": 3}
        await coll.insert_one(doc)
        assert "_id" in doc  # PyMongo mutates the input
        rm = await coll.insert_many([{"i": i} for i in range(5)])
        assert isinstance(rm, InsertManyResult) and len(rm.inserted_ids) == 5
        rm = await coll.insert_many(({"g": i} for i in range(3)))  # generator
        assert len(rm.inserted_ids) == 3
        assert await coll.count_documents({}) == 11
        with pytest.raises(TypeError):
            await coll.insert_many([])
        with pytest.raises(TypeError):
            await coll.insert_many({"a": 1})
        with pytest.raises(TypeError):
            await coll.insert_one("not a doc")
        with pytest.raises(DuplicateKeyError) as ei:
            await coll.insert_one({"_id": "mine"})
        assert ei.value.code == 11000
        assert ei.value.details["code"] == 11000
    finally:
        client.close()


async def test_insert_many_ordered_unordered_errors(server):
    client, _ = make_client(server)
    try:
        coll = await _fresh(client)
        docs = [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}, {"_id": 2}, {"_id": 4}]
        with pytest.raises(BulkWriteError) as ei:
            await coll.insert_many([dict(d) for d in docs])
        det = ei.value.details
        assert det["nInserted"] == 2
        assert len(det["writeErrors"]) == 1
        we = det["writeErrors"][0]
        assert we["index"] == 2 and we["code"] == 11000 and we["op"]["_id"] == 1
        assert ei.value.code == 65
        assert sorted(d["_id"] for d in await coll.find().to_list(None)) == [1, 2]

        await coll.drop()
        with pytest.raises(BulkWriteError) as ei:
            await coll.insert_many([dict(d) for d in docs], ordered=False)
        det = ei.value.details
        assert det["nInserted"] == 4
        assert [e["index"] for e in det["writeErrors"]] == [2, 4]
        assert all(e["code"] == 11000 for e in det["writeErrors"])
        assert [e["op"]["_id"] for e in det["writeErrors"]] == [1, 2]
        assert sorted(d["_id"] for d in await coll.find().to_list(None)) == [1, 2, 3, 4]
    finally:
        client.close()


async def test_update_replace_delete(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        await coll.insert_many([{"_id": i, "x": i, "arr": [1, 2, 3]} for i in range(5)])
        r = await coll.update_one({"_id": 0}, {"$set": {"y": 1}})
        assert isinstance(r, UpdateResult)
        assert (r.matched_count, r.modified_count, r.upserted_id) == (1, 1, None)
        r = await coll.update_many({"x": {"$gte": 2}}, {"$inc": {"x": 10}})
        assert (r.matched_count, r.modified_count) == (3, 3)
        r = await coll.update_one({"_id": 99}, {"$set": {"x": 99}}, upsert=True)
        assert r.upserted_id == 99 and r.matched_count == 0
        assert r.raw_result["n"] == 1
        r = await coll.update_many({"_id": 1}, {"$set": {"arr.$[e]": 0}}, array_filters=[{"e": {"$gte": 2}}])
        assert r.modified_count == 1
        assert (await coll.find_one({"_id": 1}))["arr"] == [1, 0, 0]
        assert listener.commands("update")[-1]["updates"][0]["arrayFilters"] == [{"e": {"$gte": 2}}]
        r = await coll.replace_one({"_id": 1}, {"z": 1})
        assert (r.matched_count, r.modified_count) == (1, 1)
        assert await coll.find_one({"_id": 1}) == {"_id": 1, "z": 1}
        r = await coll.replace_one({"_id": "new"}, {"z": 2}, upsert=True)
        if not nx_quirk(server, "replacement upsert ignores the filter's _id"):
            assert r.upserted_id == "new"
        if not nx_quirk(server, "pipeline updates unsupported"):
            r = await coll.update_one({"_id": 0}, [{"$set": {"p": {"$add": ["$x", 1]}}}])
            assert r.modified_count == 1
            assert (await coll.find_one({"_id": 0}))["p"] == 1
        with pytest.raises(ValueError):
            await coll.update_one({}, {"x": 1})
        with pytest.raises(ValueError):
            await coll.replace_one({}, {"$set": {"x": 1}})
        with pytest.raises(ValueError):
            await coll.update_one({}, {})
        d = await coll.delete_one({"x": {"$gte": 10}})
        assert isinstance(d, DeleteResult) and d.deleted_count == 1
        d = await coll.delete_many({"x": {"$gte": 10}})
        assert d.deleted_count == 3  # two of 12..14, and 99
        d = await coll.delete_many({})
        assert d.deleted_count == 3 and d.raw_result["n"] == 3  # 0, 1, "new"
        assert listener.commands("delete")[-1]["deletes"][0]["limit"] == 0
        with pytest.raises(TypeError):
            await coll.delete_one("x")
    finally:
        client.close()


async def test_counts_and_distinct(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        assert await coll.estimated_document_count() == 0
        await coll.insert_many([{"x": i % 3, "i": i} for i in range(10)])
        assert await coll.count_documents({}) == 10
        assert await coll.count_documents({"x": 0}) == 4
        assert await coll.count_documents({}, skip=3) == 7
        assert await coll.count_documents({}, limit=4) == 4
        assert await coll.count_documents({}, skip=8, limit=5) == 2
        assert await coll.estimated_document_count() == 10
        assert sorted(await coll.distinct("x")) == [0, 1, 2]
        assert sorted(await coll.distinct("i", {"x": 1})) == [1, 4, 7]
        assert await coll.count_documents({"nothing": 1}) == 0
    finally:
        client.close()


async def test_aggregate(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        await coll.insert_many([{"g": i % 2, "v": i} for i in range(10)])
        cursor = coll.aggregate([{"$group": {"_id": "$g", "s": {"$sum": "$v"}}}, {"$sort": {"_id": 1}}])
        assert not inspect.iscoroutine(cursor) and not inspect.isawaitable(cursor)
        assert not listener.commands("aggregate")  # latent: nothing sent yet
        assert await cursor.to_list(None) == [{"_id": 0, "s": 20}, {"_id": 1, "s": 25}]
        listener.reset()
        docs = [d async for d in coll.aggregate([{"$sort": {"v": 1}}], batchSize=3)]
        assert [d["v"] for d in docs] == list(range(10))
        assert listener.commands("aggregate")[0]["cursor"] == {"batchSize": 3}
        gms = listener.commands("getMore")
        assert len(gms) >= 3 and all(g["batchSize"] == 3 for g in gms)
        listener.reset()
        docs = await coll.aggregate([{"$match": {"v": 1}}], comment="hi", maxTimeMS=5000).to_list(None)
        cmd = listener.commands("aggregate")[0]
        assert cmd["comment"] == "hi" and cmd["maxTimeMS"] == 5000
        out = unique("out")
        if nx_quirk(server, "$out unsupported"):
            return
        await coll.aggregate([{"$match": {"g": 0}}, {"$out": out}]).to_list(None)
        assert await client[DB][out].count_documents({}) == 5
        await client[DB].drop_collection(out)
    finally:
        client.close()


async def test_find_one_and_modify(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        await coll.insert_many([{"_id": i, "x": i} for i in range(3)])
        before = await coll.find_one_and_update({"_id": 1}, {"$inc": {"x": 10}})
        assert before == {"_id": 1, "x": 1}
        after = await coll.find_one_and_update({"_id": 1}, {"$inc": {"x": 10}}, return_document=ReturnDocument.AFTER)
        assert after == {"_id": 1, "x": 21}
        proj = await coll.find_one_and_update({"_id": 2}, {"$set": {"y": 1}}, projection={"_id": 0, "y": 1},
                                              return_document=ReturnDocument.AFTER)
        assert proj == {"y": 1}
        proj = await coll.find_one_and_update({"_id": 2}, {"$set": {"y": 2}}, projection=["y"])
        assert proj == {"_id": 2, "y": 1}
        top = await coll.find_one_and_update({}, {"$set": {"top": True}}, sort=[("x", DESCENDING)])
        assert top["_id"] == 1
        up = await coll.find_one_and_update({"_id": 7}, {"$set": {"x": 7}}, upsert=True,
                                            return_document=ReturnDocument.AFTER)
        assert up == {"_id": 7, "x": 7}
        assert await coll.find_one_and_update({"_id": 8}, {"$set": {"x": 8}}) is None
        rep = await coll.find_one_and_replace({"_id": 0}, {"r": 1}, return_document=ReturnDocument.AFTER)
        if not nx_quirk(server, "findAndModify replacement returns _id as a string"):
            assert rep == {"_id": 0, "r": 1}
        rep = await coll.find_one_and_replace({"_id": 9}, {"r": 9}, upsert=True)
        assert rep is None
        if not nx_quirk(server, "findAndModify replacement upsert ignores the filter's _id"):
            assert await coll.find_one({"_id": 9}) == {"_id": 9, "r": 9}
        with pytest.raises(ValueError):
            await coll.find_one_and_replace({"_id": 0}, {"$set": {"r": 1}})
        with pytest.raises(ValueError):
            await coll.find_one_and_update({"_id": 0}, {"r": 1})
        if nx_quirk(server, "findAndModify replacement mangles _id"):
            return
        gone = await coll.find_one_and_delete({"x": {"$gte": 0}}, sort=[("x", ASCENDING)], projection={"x": 1})
        assert gone == {"_id": 2, "x": 2}
        assert await coll.find_one({"_id": 2}) is None
        cmd = listener.commands("findAndModify")[-1]
        assert cmd["remove"] is True and cmd["sort"] == {"x": 1} and cmd["fields"] == {"x": 1}
    finally:
        client.close()


async def test_bulk_write(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        await coll.insert_many([{"_id": i, "x": i} for i in range(4)])
        listener.reset()
        reqs = [
            InsertOne({"_id": 10, "x": 10}),
            UpdateOne({"_id": 0}, {"$set": {"u": 1}}),
            UpdateMany({"x": {"$gte": 2}}, {"$set": {"m": 1}}),
            ReplaceOne({"_id": 1}, {"x": 1, "replaced": True}),
            UpdateOne({"_id": 20}, {"$set": {"x": 20}}, upsert=True),
            ReplaceOne({"_id": 21}, {"x": 21}, upsert=True),
            DeleteOne({"_id": 3}),
            DeleteMany({"x": {"$gte": 20}}),
        ]
        r = await coll.bulk_write(reqs)
        assert isinstance(r, BulkWriteResult) and r.acknowledged
        assert r.inserted_count == 1
        assert r.matched_count == 1 + 3 + 1  # _id 0; 2,3,10; 1
        assert r.modified_count == 5
        assert r.upserted_count == 2
        if not nx_quirk(server, "replacement upsert ignores the filter's _id"):
            assert r.upserted_ids == {4: 20, 5: 21}
        assert set(r.upserted_ids) == {4, 5}
        assert r.deleted_count == 3
        assert len(listener.commands("insert")) == 1
        assert len(listener.commands("update")) == 1
        assert len(listener.commands("delete")) == 1

        listener.reset()
        r = await coll.bulk_write([InsertOne({"_id": 30}), DeleteOne({"_id": 30}), InsertOne({"_id": 31})], ordered=False)
        assert r.inserted_count == 2 and r.deleted_count in (0, 1)
        assert [n for n in listener.names() if n in ("insert", "delete")] == ["insert", "delete"]

        with pytest.raises(BulkWriteError) as ei:
            await coll.bulk_write([InsertOne({"_id": 40}), InsertOne({"_id": 40}), UpdateOne({"_id": 40}, {"$set": {"a": 1}})])
        det = ei.value.details
        assert det["nInserted"] == 1 and det["nMatched"] == 0
        assert det["writeErrors"][0]["index"] == 1 and det["writeErrors"][0]["code"] == 11000
        with pytest.raises(BulkWriteError) as ei:
            await coll.bulk_write([InsertOne({"_id": 41}), InsertOne({"_id": 41}), UpdateOne({"_id": 41}, {"$set": {"a": 1}})], ordered=False)
        det = ei.value.details
        assert det["nInserted"] == 1 and det["nModified"] == 1
        with pytest.raises(InvalidOperation):
            await coll.bulk_write([])
        with pytest.raises(TypeError):
            await coll.bulk_write([{"insertOne": {}}])
    finally:
        client.close()


async def test_indexes(server):
    client, listener = make_client(server)
    try:
        coll = await _fresh(client)
        await coll.insert_one({"a": 1, "b": 2})
        name = await coll.create_index("a")
        assert name == "a_1"
        name = await coll.create_index([("a", ASCENDING), ("b", DESCENDING)], name="ab", unique=True)
        assert name == "ab"
        cmd = listener.commands("createIndexes")[-1]
        assert cmd["indexes"][0]["unique"] is True and cmd["indexes"][0]["key"] == {"a": 1, "b": -1}
        names = await coll.create_indexes([IndexModel([("b", 1)]), IndexModel([("c", -1)], name="cdesc")])
        assert names == ["b_1", "cdesc"]
        cursor = coll.list_indexes()
        assert not inspect.iscoroutine(cursor)
        idx = await cursor.to_list(None)
        if nx_quirk(server, "createIndexes ignores index names"):
            assert len(idx) == 5
            return
        assert {i["name"] for i in idx} == {"_id_", "a_1", "ab", "b_1", "cdesc"}
        info = await coll.index_information()
        assert info["ab"]["key"] == [("a", 1), ("b", -1)]
        assert info["ab"].get("unique") is True
        await coll.drop_index("a_1")
        await coll.drop_index([("b", 1)])
        assert set(await coll.index_information()) == {"_id_", "ab", "cdesc"}
        await coll.drop_indexes()
        assert set(await coll.index_information()) == {"_id_"}
        missing = client[DB][unique("missing")]
        assert await missing.index_information() == {}
        assert await missing.list_indexes().to_list(None) == []
    finally:
        client.close()


async def test_drop_rename_options(server):
    from pymongo.read_concern import ReadConcern
    from pymongo.write_concern import WriteConcern

    client, listener = make_client(server)
    try:
        db = client[DB]
        coll = await _fresh(client)
        await coll.insert_one({"a": 1})
        new = unique("renamed")
        await db.drop_collection(new)
        await coll.rename(new)
        cmd = listener.commands("renameCollection")[-1]
        assert cmd["renameCollection"] == f"{DB}.{coll.name}" and cmd["to"] == f"{DB}.{new}"
        assert cmd["$db"] == "admin"
        if nx_quirk(server, "renameCollection does not move the documents"):
            return
        assert await db[new].count_documents({}) == 1
        assert coll.name not in await db.list_collection_names()
        cmd = listener.commands("renameCollection")[-1]
        assert cmd["renameCollection"] == f"{DB}.{coll.name}" and cmd["to"] == f"{DB}.{new}"
        with pytest.raises(InvalidName):
            await db[new].rename("$bad")
        with pytest.raises(TypeError):
            await db[new].rename(5)
        await db[new].drop()
        assert new not in await db.list_collection_names()
        c2 = coll.with_options(write_concern=WriteConcern(w=1), read_concern=ReadConcern("local"))
        assert c2.write_concern == WriteConcern(w=1) and c2.read_concern == ReadConcern("local")
        assert c2 == coll and c2.full_name == coll.full_name
        await db.create_collection(coll.name, capped=True, size=65536) if server.name != "nx" else None
        if server.name != "nx":
            opts = await coll.options()
            assert opts.get("capped") is True
        assert await db[unique("nope")].options() == {}
    finally:
        client.close()
