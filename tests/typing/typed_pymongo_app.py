"""A small application on PyMongo's async API, written as for PyMongo 4.20 with one import
changed (``from pymongo import AsyncMongoClient`` -> ``from amongo import AsyncMongoClient``).

Not run: ``tests/unit/test_typing.py`` type-checks it with ``mypy --strict`` and expects no
error. Each ``assert_type`` pins a type the document type must flow into.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, MutableMapping, Optional

from bson import ObjectId
from pymongo import ReadPreference
from pymongo.driver_info import DriverInfo
from pymongo.results import InsertOneResult, UpdateResult
from typing_extensions import TypedDict, assert_type

from amongo import AsyncMongoClient
from amongo.asynchronous.change_stream import AsyncChangeStream
from amongo.asynchronous.client_session import AsyncClientSession
from amongo.asynchronous.collection import AsyncCollection
from amongo.asynchronous.command_cursor import AsyncCommandCursor
from amongo.asynchronous.cursor import AsyncCursor
from amongo.asynchronous.database import AsyncDatabase
from amongo.asynchronous.gridfs import AsyncGridFSBucket, AsyncGridOut


class User(TypedDict):
    _id: ObjectId
    name: str
    age: int


async def crud(client: AsyncMongoClient[User]) -> None:
    db = client["app"]
    assert_type(db, AsyncDatabase[User])
    assert_type(client.app, AsyncDatabase[User])
    users = db["users"]
    assert_type(users, AsyncCollection[User])
    assert_type(client.app.users, AsyncCollection[User])
    assert_type(db.get_collection("users"), AsyncCollection[User])
    assert_type(client.get_database("app"), AsyncDatabase[User])
    assert_type(users.with_options(read_preference=ReadPreference.SECONDARY), AsyncCollection[User])
    assert_type(users.database, AsyncDatabase[User])
    assert_type(db.client, AsyncMongoClient[User])

    doc = await users.find_one({"name": "ada"})
    assert_type(doc, Optional[User])
    if doc is not None:
        assert_type(doc["age"], int)
    res = await users.insert_one({"_id": ObjectId(), "name": "ada", "age": 36})
    assert_type(res, InsertOneResult)
    upd = await users.update_one({"name": "ada"}, {"$inc": {"age": 1}})
    assert_type(upd, UpdateResult)

    cursor = users.find({"age": {"$gt": 30}}).sort("age").limit(10)
    assert_type(cursor, AsyncCursor[User])
    async for user in cursor:
        assert_type(user, User)
    everyone = await users.find().to_list()
    assert_type(everyone, List[User])
    assert_type(await users.count_documents({}), int)

    agg = await users.aggregate([{"$match": {"age": 36}}])
    assert_type(agg, AsyncCommandCursor[User])
    async for row in agg:
        assert_type(row, User)
    indexes = await users.list_indexes()
    assert_type(indexes, AsyncCommandCursor[MutableMapping[str, Any]])
    assert_type(await db.list_collection_names(), List[str])

    stream = await users.watch([{"$match": {"operationType": "insert"}}])
    assert_type(stream, AsyncChangeStream[User])
    async with stream:
        change = await stream.try_next()
        assert_type(change, Optional[User])


async def sessions(client: AsyncMongoClient[Dict[str, Any]]) -> None:
    async with client.start_session() as session:
        assert_type(session, AsyncClientSession)
        async with await session.start_transaction():
            await client.app.users.insert_one({"x": 1}, session=session)

        async def callback(s: AsyncClientSession) -> int:
            await client.app.users.insert_one({"x": 2}, session=s)
            return 2

        n = await session.with_transaction(callback)
        assert_type(n, int)


async def gridfs(db: AsyncDatabase[Mapping[str, Any]]) -> None:
    bucket = AsyncGridFSBucket(db)
    file_id = await bucket.upload_from_stream("notes.txt", b"hello")
    out = await bucket.open_download_stream(file_id)
    assert_type(out, AsyncGridOut)
    data: bytes = await out.read()
    assert data


async def lifecycle() -> None:
    async with AsyncMongoClient[Dict[str, Any]]("mongodb://localhost") as client:
        client.append_metadata(DriverInfo("my-library", "1.0"))
        await client.admin.command("ping")
    other: AsyncMongoClient[Dict[str, Any]] = AsyncMongoClient(document_class=dict)
    await other.aconnect()
    await other.close()
