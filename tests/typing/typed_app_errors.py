"""Mistakes mypy must report on the typed application's classes (``tests/unit/test_typing.py``
expects exactly the errors marked ``# E: <code>``): proof the document type is checked,
not just carried as ``Any``."""
from __future__ import annotations

from typing import List

from typing_extensions import TypedDict, assert_type

from amongo.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection


class User(TypedDict):
    name: str
    age: int


class Movie(TypedDict):
    title: str


async def mistakes(client: AsyncIOMotorClient[User]) -> None:
    users = client.app.users
    assert_type(await users.find_one(), User)  # E: assert-type
    movies: AsyncIOMotorCollection[Movie] = users  # E: assignment
    async for user in users.find():
        user["title"]  # E: typeddict-item
    names: List[str] = await users.find().to_list(None)  # E: assignment
    await users.insert_one({"name": "x", "age": "not an int"})  # E: arg-type
    users.aggregate([], None, None, None, None)  # E: call-arg
    del movies, names
