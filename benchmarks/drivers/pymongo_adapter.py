"""PyMongo ``AsyncMongoClient`` adapter (``aggregate`` and ``close`` are coroutines there): used
for PyMongo itself and for amongo's PyMongo-style API (``amongo.AsyncMongoClient``)."""
from __future__ import annotations

from typing import Any, Dict, List

from pymongo import AsyncMongoClient, DeleteOne, InsertOne, UpdateOne

from ..workloads import DB


class PyMongoAdapter:
    def __init__(self, client_cls: Any = AsyncMongoClient) -> None:
        self.client_cls = client_cls
        self.client: Any = None
        self.db: Any = None
        self.admin: Any = None
        self._colls: Dict[str, Any] = {}

    async def connect(self, uri: str, max_pool_size: int) -> None:
        self.client = self.client_cls(uri, maxPoolSize=max_pool_size,
                                      serverSelectionTimeoutMS=20000)
        self.db = self.client[DB]
        self.admin = self.client.admin
        await self.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()

    def _c(self, name: str) -> Any:
        c = self._colls.get(name)
        if c is None:
            c = self._colls[name] = self.db[name]
        return c

    async def drop(self, coll: str) -> None:
        await self._c(coll).drop()

    async def hello(self) -> Any:
        return await self.admin.command("hello")

    async def find_one(self, coll: str, flt: Any) -> Any:
        return await self._c(coll).find_one(flt)

    async def insert_one(self, coll: str, doc: Any) -> Any:
        return await self._c(coll).insert_one(doc)

    async def insert_many(self, coll: str, docs: List[Any]) -> Any:
        return await self._c(coll).insert_many(docs)

    async def find_list(self, coll: str, flt: Any) -> List[Any]:
        return await self._c(coll).find(flt).to_list(None)

    async def aggregate_list(self, coll: str, pipeline: List[Any]) -> List[Any]:
        cursor = await self._c(coll).aggregate(pipeline)
        return await cursor.to_list(None)

    async def bulk_write(self, coll: str, reqs: List[Any]) -> Any:
        ops = [InsertOne(a) if k == "insert" else UpdateOne(a, b) if k == "update" else DeleteOne(a)
               for k, a, b in reqs]
        return await self._c(coll).bulk_write(ops)
