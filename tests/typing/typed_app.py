"""A small Motor-style application, written as for Motor 3.7 with one import changed.

Not run: ``tests/unit/test_typing.py`` type-checks it with ``mypy --strict`` and expects no
error. Each ``assert_type`` pins a type the document type must flow into (Motor's stubs give
the same, except ``async for`` over a cursor, which they leave ``Any``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, MutableMapping, Optional

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DeleteOne, InsertOne, ReadPreference, ReturnDocument, UpdateOne
from pymongo.results import BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult
from pymongo.write_concern import WriteConcern
from typing_extensions import TypedDict, assert_type

from amongo.motor_asyncio import (
    AsyncIOMotorChangeStream,
    AsyncIOMotorClient,
    AsyncIOMotorClientSession,
    AsyncIOMotorCollection,
    AsyncIOMotorCommandCursor,
    AsyncIOMotorCursor,
    AsyncIOMotorDatabase,
    AsyncIOMotorGridFSBucket,
    AsyncIOMotorLatentCommandCursor,
)
from amongo.motor_tornado import MotorClient, MotorCollection


class User(TypedDict):
    _id: ObjectId
    name: str
    age: int


class Movie(TypedDict, total=False):
    title: str
    year: int


async def crud(client: AsyncIOMotorClient[User]) -> None:
    # types flow client -> database -> collection, by item and by attribute
    db = client["app"]
    assert_type(db, AsyncIOMotorDatabase[User])
    assert_type(client.app, AsyncIOMotorDatabase[User])
    users = db["users"]
    assert_type(users, AsyncIOMotorCollection[User])
    assert_type(client["app"]["users"], AsyncIOMotorCollection[User])
    assert_type(client.app.users, AsyncIOMotorCollection[User])
    assert_type(users.archive, AsyncIOMotorCollection[User])  # a sub-collection
    assert_type(db.get_collection("users"), AsyncIOMotorCollection[User])
    assert_type(client.get_database("app"), AsyncIOMotorDatabase[User])
    assert_type(client.get_default_database("app"), AsyncIOMotorDatabase[User])
    assert_type(users.with_options(read_preference=ReadPreference.SECONDARY), AsyncIOMotorCollection[User])
    assert_type(db.with_options(write_concern=WriteConcern(w=1)), AsyncIOMotorDatabase[User])
    assert_type(users.database, AsyncIOMotorDatabase[User])
    assert_type(db.client, AsyncIOMotorClient[User])
    assert_type(users.name, str)

    # writes: pymongo.results classes
    inserted = await users.insert_one({"_id": ObjectId(), "name": "Ada", "age": 36})
    assert_type(inserted, InsertOneResult)
    assert_type(inserted.inserted_id, Any)
    many = await users.insert_many([User(_id=ObjectId(), name="Bob", age=40)])
    assert_type(many, InsertManyResult)
    assert_type(many.inserted_ids, List[Any])
    assert_type(await users.update_one({"name": "Ada"}, {"$inc": {"age": 1}}), UpdateResult)
    assert_type(await users.update_many({}, {"$set": {"age": 0}}, upsert=True), UpdateResult)
    assert_type(await users.replace_one({"name": "Bob"}, {"name": "Bob", "age": 41}), UpdateResult)
    assert_type(await users.delete_one({"name": "Bob"}), DeleteResult)
    assert_type(await users.delete_many({}), DeleteResult)
    bulk = await users.bulk_write([InsertOne({"name": "C", "age": 1}), UpdateOne({}, {"$set": {"age": 2}}), DeleteOne({})])
    assert_type(bulk, BulkWriteResult)

    # reads: the document type
    found = await users.find_one({"name": "Ada"})
    assert_type(found, Optional[User])
    if found is not None:
        assert_type(found["age"], int)
    assert_type(await users.find_one(), Optional[User])
    assert_type(await users.find_one_and_update({"name": "Ada"}, {"$inc": {"age": 1}},
                                                return_document=ReturnDocument.AFTER), User)
    assert_type(await users.find_one_and_delete({"name": "Ada"}), User)
    assert_type(await users.count_documents({}), int)
    assert_type(await users.estimated_document_count(), int)
    assert_type(await users.distinct("name"), List[Any])

    cursor = users.find({"age": {"$gt": 18}}).sort("age", ASCENDING).skip(1).limit(10)
    assert_type(cursor, AsyncIOMotorCursor[User])
    assert_type(await cursor.to_list(None), List[User])
    assert_type(await users.find().to_list(length=10), List[User])
    async for user in users.find({}, {"name": 1}, 0, 5):  # positional, as Motor/PyMongo
        assert_type(user, User)  # Motor's stubs: Any
        assert_type(user["name"], str)
    assert_type(await users.find().next(), User)
    assert_type(await users.find().try_next(), Optional[User])
    async with users.find().batch_size(2) as in_context:
        assert_type(in_context, AsyncIOMotorCursor[User])

    pipeline: List[Mapping[str, Any]] = [{"$match": {"age": {"$gte": 18}}}]
    agg = users.aggregate(pipeline)
    assert_type(agg, AsyncIOMotorCommandCursor[User])
    assert_type(agg, AsyncIOMotorLatentCommandCursor[User])  # the same class in amongo
    async for doc in users.aggregate(pipeline, None, None, "positional session, let, comment"):
        assert_type(doc, User)
    assert_type(await agg.to_list(None), List[User])
    async for index in users.list_indexes():
        assert_type(index, MutableMapping[str, Any])

    # indexes, names
    assert_type(await users.create_index([("name", ASCENDING)], unique=True), str)
    assert_type(await users.index_information(), Dict[str, Any])
    assert_type(await client.list_database_names(), List[str])
    assert_type(await db.list_collection_names(), List[str])
    dbs = await client.list_databases()
    assert_type(dbs, AsyncIOMotorCommandCursor[Dict[str, Any]])
    colls = await db.list_collections()
    async for info in colls:
        assert_type(info, MutableMapping[str, Any])

    # commands
    assert_type(await db.command("ping"), Dict[str, Any])
    assert_type(await client.server_info(), Dict[str, Any])


async def sessions_and_streams(client: AsyncIOMotorClient[User]) -> None:
    users = client.app.users
    async with await client.start_session() as session:
        assert_type(session, AsyncIOMotorClientSession)
        async with session.start_transaction():
            await users.insert_one({"_id": ObjectId(), "name": "T", "age": 1}, session=session)
            assert_type(await users.find_one({}, session=session), Optional[User])

        async def txn(s: AsyncIOMotorClientSession) -> int:
            await users.delete_many({}, session=s)
            return 1

        assert_type(await session.with_transaction(txn), int)

    stream = users.watch([{"$match": {"operationType": "insert"}}])
    assert_type(stream, AsyncIOMotorChangeStream[User])
    async with stream as changes:
        async for change in changes:
            assert_type(change, User)
            break
        assert_type(await changes.try_next(), Optional[User])


async def document_class_and_annotations() -> None:
    # annotated: the runtime default document class
    plain: AsyncIOMotorClient[Dict[str, Any]] = AsyncIOMotorClient("mongodb://localhost:27017", connect=False)
    assert_type(await plain.db.coll.find_one(), Optional[Dict[str, Any]])
    # document_class infers the type
    raw = AsyncIOMotorClient(document_class=RawBSONDocument, connect=False)
    assert_type(raw, AsyncIOMotorClient[RawBSONDocument])
    assert_type(await raw.db.coll.find().to_list(None), List[RawBSONDocument])
    # subscripted at runtime too
    movies_client = AsyncIOMotorClient[Movie](connect=False)
    assert_type(movies_client, AsyncIOMotorClient[Movie])
    movies = movies_client.db.movies
    await movies.insert_one(Movie(title="Jurassic Park", year=1993))
    movie = await movies.find_one({"title": "Jurassic Park"})
    assert movie is not None
    assert_type(movie.get("year"), Optional[int])
    plain.close()
    # GridFS over a typed database
    bucket = AsyncIOMotorGridFSBucket(movies_client.files)
    assert_type(await bucket.upload_from_stream("f", b"data"), ObjectId)


async def tornado_names(client: MotorClient[Movie]) -> None:
    assert_type(client.db.movies, MotorCollection[Movie])
    assert_type(await client.db.movies.find().to_list(None), List[Movie])
