"""Motor's asyncio names (``motor.motor_asyncio``) over amongo's classes.

Change ``from motor.motor_asyncio import AsyncIOMotorClient`` to
``from amongo.motor_asyncio import AsyncIOMotorClient`` and the rest of the code stays.
"""
from __future__ import annotations

from amongo.change_stream import ChangeStream as AsyncIOMotorChangeStream
from amongo.client import MongoClient as _MongoClient
from amongo.collection import Collection as AsyncIOMotorCollection
from amongo.command_cursor import CommandCursor as AsyncIOMotorCommandCursor
from amongo.command_cursor import LatentCommandCursor as AsyncIOMotorLatentCommandCursor
from amongo.cursor import Cursor as AsyncIOMotorCursor
from amongo.cursor import RawBatchCursor as AsyncIOMotorRawBatchCursor
from amongo.database import Database as AsyncIOMotorDatabase
from amongo.gridfs import GridFSBucket as AsyncIOMotorGridFSBucket
from amongo.gridfs import GridIn as AsyncIOMotorGridIn
from amongo.gridfs import GridOut as AsyncIOMotorGridOut
from amongo.gridfs import GridOutCursor as AsyncIOMotorGridOutCursor
from amongo.session import ClientSession as AsyncIOMotorClientSession

__all__ = [
    "AsyncIOMotorClient",
    "AsyncIOMotorClientSession",
    "AsyncIOMotorDatabase",
    "AsyncIOMotorCollection",
    "AsyncIOMotorCursor",
    "AsyncIOMotorCommandCursor",
    "AsyncIOMotorLatentCommandCursor",
    "AsyncIOMotorRawBatchCursor",
    "AsyncIOMotorChangeStream",
    "AsyncIOMotorGridFSBucket",
    "AsyncIOMotorGridIn",
    "AsyncIOMotorGridOut",
    "AsyncIOMotorGridOutCursor",
]


class AsyncIOMotorClient(_MongoClient):
    """A client for asyncio applications (Motor: ``motor.motor_asyncio.AsyncIOMotorClient``)."""
