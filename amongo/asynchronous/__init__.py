"""PyMongo's asyncio API (``pymongo.asynchronous``) over amongo's engine.

Change ``from pymongo import AsyncMongoClient`` to ``from amongo import AsyncMongoClient`` and
the rest of the code stays: the modules here mirror :mod:`pymongo.asynchronous` module by
module and name by name (``mongo_client.AsyncMongoClient``, ``database.AsyncDatabase``,
``collection.AsyncCollection``, ``cursor.AsyncCursor``, ``command_cursor.AsyncCommandCursor``,
``change_stream.AsyncChangeStream``, ``client_session.AsyncClientSession``; GridFS in
:mod:`amongo.asynchronous.gridfs`), with PyMongo 4.20's awaitable-ness for every member
(``await coll.aggregate()``, ``await coll.watch()``, ``async with client.start_session()``,
``await client.close()``...).

Each class is a thin subclass of the class behind amongo's Motor API (one implementation of
the behaviour, two sets of public names); the subclasses only change what the two APIs
expose differently. :mod:`amongo.asynchronous._differences` lists the deliberate differences
from PyMongo.
"""
from __future__ import annotations

from amongo.asynchronous.change_stream import (
    AsyncChangeStream,
    AsyncClusterChangeStream,
    AsyncCollectionChangeStream,
    AsyncDatabaseChangeStream,
)
from amongo.asynchronous.client_session import AsyncClientSession
from amongo.asynchronous.collection import AsyncCollection
from amongo.asynchronous.command_cursor import AsyncCommandCursor, AsyncRawBatchCommandCursor
from amongo.asynchronous.cursor import AsyncCursor, AsyncRawBatchCursor
from amongo.asynchronous.database import AsyncDatabase
from amongo.asynchronous.mongo_client import AsyncMongoClient

__all__ = [
    "AsyncMongoClient",
    "AsyncDatabase",
    "AsyncCollection",
    "AsyncCursor",
    "AsyncRawBatchCursor",
    "AsyncCommandCursor",
    "AsyncRawBatchCommandCursor",
    "AsyncChangeStream",
    "AsyncCollectionChangeStream",
    "AsyncDatabaseChangeStream",
    "AsyncClusterChangeStream",
    "AsyncClientSession",
]
