"""Motor's Tornado names (``motor.motor_tornado``) over amongo's classes.

Tornado (5+) runs on the asyncio loop, so the same classes serve; ``io_loop`` is accepted.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from amongo.change_stream import ChangeStream as MotorChangeStream
from amongo._typing import _DocumentType
from amongo.client import MongoClient as _MongoClient
from amongo.collection import Collection as MotorCollection
from amongo.command_cursor import CommandCursor as MotorCommandCursor
from amongo.command_cursor import LatentCommandCursor as MotorLatentCommandCursor
from amongo.cursor import Cursor as MotorCursor
from amongo.database import Database as MotorDatabase
from amongo.gridfs import GridFSBucket as MotorGridFSBucket
from amongo.gridfs import GridIn as MotorGridIn
from amongo.gridfs import GridOut as MotorGridOut
from amongo.gridfs import GridOutCursor as MotorGridOutCursor
from amongo.engine.session import ClientSession as MotorClientSession

__all__ = [
    "MotorClient",
    "MotorClientSession",
    "MotorDatabase",
    "MotorCollection",
    "MotorCursor",
    "MotorCommandCursor",
    "MotorChangeStream",
    "MotorGridFSBucket",
    "MotorGridIn",
    "MotorGridOut",
    "MotorGridOutCursor",
]


if TYPE_CHECKING:
    # As in amongo.motor_asyncio: for type checkers the Motor name is the client class.
    MotorClient = _MongoClient
else:

    class MotorClient(_MongoClient[_DocumentType]):
        """A client for Tornado applications (Motor: ``motor.motor_tornado.MotorClient``)."""
