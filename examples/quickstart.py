"""amongo quickstart: the Motor API over amongo's own wire protocol.

Reads ``MONGODB_URI`` (``make demo`` starts a local SecantusDB and sets it).
"""
from __future__ import annotations

import asyncio
import os

from pymongo import ASCENDING, ReturnDocument, UpdateOne

from amongo.motor_asyncio import AsyncIOMotorClient


async def main() -> None:
    client = AsyncIOMotorClient(os.environ.get("MONGODB_URI", "mongodb://localhost:27017"))
    info = await client.server_info()
    print(f"connected: server {info['version']}")
    coll = client.quickstart.people
    await coll.drop()

    result = await coll.insert_many(
        [{"name": n, "age": a} for n, a in [("Ada", 36), ("Alan", 41), ("Grace", 85), ("Linus", 29)]]
    )
    print(f"inserted {len(result.inserted_ids)} documents")
    await coll.create_index([("name", ASCENDING)], unique=True)

    print("find_one:", await coll.find_one({"name": "Ada"}, {"_id": 0}))
    older = await coll.find({"age": {"$gt": 30}}, {"_id": 0, "name": 1}).sort("age", -1).to_list(None)
    print("age > 30, oldest first:", [d["name"] for d in older])

    updated = await coll.find_one_and_update(
        {"name": "Linus"}, {"$inc": {"age": 1}}, projection={"_id": 0}, return_document=ReturnDocument.AFTER
    )
    print("birthday:", updated)
    bulk = await coll.bulk_write([UpdateOne({"name": n}, {"$set": {"team": "pioneers"}}) for n in ("Ada", "Grace")])
    print("bulk modified:", bulk.modified_count)

    pipeline = [{"$group": {"_id": None, "avg_age": {"$avg": "$age"}, "n": {"$sum": 1}}}]
    async for row in coll.aggregate(pipeline):  # returned without await, as in Motor
        print(f"aggregate: {row['n']} people, average age {row['avg_age']:.1f}")

    async with await client.start_session() as session:
        async with session.start_transaction():
            await coll.insert_one({"name": "Barbara", "age": 86}, session=session)
            await coll.update_one({"name": "Alan"}, {"$set": {"team": "pioneers"}}, session=session)
    print("after transaction:", await coll.count_documents({"team": "pioneers"}), "pioneers")

    await coll.drop()
    client.close()


if __name__ == "__main__":
    asyncio.run(main())
