"""Motor's ``motor.core`` names over amongo's classes.

Libraries use ``motor.core.Agnostic*`` in annotations and ``isinstance`` checks (Beanie's
aggregation query checks for ``AgnosticCommandCursor``, for instance). Here each name is the
amongo class that both the asyncio and the Tornado flavour derive from (or are), so
``isinstance(AsyncIOMotorClient(...), AgnosticClient)`` holds as it does in Motor.
``AgnosticBase`` / ``AgnosticBaseProperties`` (Motor's common bases) are abstract classes
with amongo's classes registered, for the same checks.
"""
from __future__ import annotations

import abc
from typing import Any

from pymongo.errors import ConfigurationError

from amongo.change_stream import ChangeStream as AgnosticChangeStream
from amongo.client import MongoClient as AgnosticClient
from amongo.collection import Collection as AgnosticCollection
from amongo.command_cursor import CommandCursor as AgnosticCommandCursor
from amongo.command_cursor import LatentCommandCursor as AgnosticLatentCommandCursor
from amongo.command_cursor import _CursorBase as AgnosticBaseCursor
from amongo.cursor import Cursor as AgnosticCursor
from amongo.cursor import RawBatchCursor as AgnosticRawBatchCursor
from amongo.database import Database as AgnosticDatabase
from amongo.engine.session import ClientSession as AgnosticClientSession

__all__ = [
    "AgnosticBase",
    "AgnosticBaseProperties",
    "AgnosticClient",
    "AgnosticClientSession",
    "AgnosticDatabase",
    "AgnosticCollection",
    "AgnosticBaseCursor",
    "AgnosticCursor",
    "AgnosticRawBatchCursor",
    "AgnosticCommandCursor",
    "AgnosticRawBatchCommandCursor",
    "AgnosticLatentCommandCursor",
    "AgnosticChangeStream",
    "AgnosticClientEncryption",
]

# amongo's command cursors return raw batches through the same class
AgnosticRawBatchCommandCursor = AgnosticCommandCursor


class AgnosticBase(abc.ABC):
    """Motor's base of every Motor object (``motor.core.AgnosticBase``): an abstract class
    with amongo's client, session, database, collection, cursor and change-stream classes
    registered, so ``isinstance(obj, AgnosticBase)`` answers as with Motor."""


class AgnosticBaseProperties(AgnosticBase):
    """Motor's base of the client, database and collection (``motor.core.AgnosticBaseProperties``)."""


AgnosticBaseProperties.register(AgnosticClient)
AgnosticBaseProperties.register(AgnosticDatabase)
AgnosticBaseProperties.register(AgnosticCollection)
AgnosticBase.register(AgnosticClientSession)
AgnosticBase.register(AgnosticBaseCursor)
AgnosticBase.register(AgnosticChangeStream)


class AgnosticClientEncryption:
    """Motor's ``ClientEncryption`` (explicit client-side field-level encryption): amongo does
    not implement encryption, so constructing one raises
    :class:`~pymongo.errors.ConfigurationError` instead of writing plaintext."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigurationError(
            "client-side field-level encryption (ClientEncryption) is not supported by amongo")
