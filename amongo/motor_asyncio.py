"""Motor's asyncio names (``motor.motor_asyncio``) over amongo's classes.

Change ``from motor.motor_asyncio import AsyncIOMotorClient`` to
``from amongo.motor_asyncio import AsyncIOMotorClient`` and the rest of the code stays.

The classes are generic in the document type, as in Motor's stubs: ``AsyncIOMotorClient[User]``
gives ``AsyncIOMotorDatabase[User]``, ``AsyncIOMotorCollection[User]``,
``AsyncIOMotorCursor[User]`` (``async for`` yields ``User``), and subscripting works at runtime.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from amongo.change_stream import ChangeStream as AsyncIOMotorChangeStream
from amongo._typing import _DocumentType
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
from amongo.engine.session import ClientSession as AsyncIOMotorClientSession

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


if TYPE_CHECKING:
    # For type checkers the Motor name *is* the client class, so ``db.client`` (typed
    # ``MongoClient[_DocumentType]``) is an ``AsyncIOMotorClient[_DocumentType]``, as in Motor's
    # stubs. At runtime it is a subclass, for its name in reprs and errors.
    AsyncIOMotorClient = _MongoClient
else:

    class AsyncIOMotorClient(_MongoClient[_DocumentType]):
        """A client for asyncio applications (Motor: ``motor.motor_asyncio.AsyncIOMotorClient``)."""
