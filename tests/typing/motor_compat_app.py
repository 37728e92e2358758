"""Motor-typed code that must type-check unchanged on amongo.

``tests/unit/test_typing.py`` runs ``mypy --strict`` on this file as it is (amongo) and on a
copy importing the real ``motor.motor_asyncio``: both must report no error. It collects the
patterns where Motor's stubs leave the document type unsolved or loose, which a stricter
amongo could break: the ``# type: ignore`` on an unannotated client, ``Any`` flowing from an
unsolved client into annotated collections, the examples of Motor's type-hints docs.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from typing_extensions import TypedDict

from amongo.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorCollection, AsyncIOMotorDatabase


class Movie(TypedDict):
    name: str
    year: int


# Motor asks for an annotation here; applications silence it (or annotate)
client = AsyncIOMotorClient("mongodb://localhost:27017", connect=False)  # type: ignore[var-annotated]
typed_client: AsyncIOMotorClient[Dict[str, Any]] = AsyncIOMotorClient(connect=False)


def movies_collection() -> AsyncIOMotorCollection[Movie]:
    # the unsolved document type of an unannotated construction is Any, assignable anywhere
    movies: AsyncIOMotorCollection[Movie] = AsyncIOMotorClient(connect=False).test.movies
    return movies


def database(name: str) -> AsyncIOMotorDatabase[Dict[str, Any]]:
    return typed_client[name]


async def motor_docs_examples() -> None:
    # https://motor.readthedocs.io/en/stable/examples/type_hints.html
    collection = typed_client.test.test
    inserted = await collection.insert_one({"x": 1, "tags": ["dog", "cat"]})
    retrieved = await collection.find_one({"x": 1})
    assert isinstance(retrieved, dict)
    assert inserted.acknowledged

    movie_client: AsyncIOMotorClient[Movie] = AsyncIOMotorClient(connect=False)
    movies = movie_client.test.test
    await movies.insert_one(Movie(name="Jurassic Park", year=1993))
    result = await movies.find_one({"name": "Jurassic Park"})
    assert result is not None
    assert result["year"] == 1993
    found: Optional[Movie] = await movies_collection().find_one({"year": 1993})
    assert found is None or found["name"]
    async for movie in movies.find({"year": {"$gt": 1990}}):
        print(movie["name"])
    docs = await movies.find().to_list(None)
    print(len(docs))
