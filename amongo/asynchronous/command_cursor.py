"""``AsyncCommandCursor`` (PyMongo: ``pymongo.asynchronous.command_cursor``)."""
from __future__ import annotations

from typing import Generic

from amongo._typing import _DocumentType
from amongo.command_cursor import CommandCursor

__all__ = ["AsyncCommandCursor", "AsyncRawBatchCommandCursor"]


class _PyMongoToList(Generic[_DocumentType]):
    """PyMongo's ``to_list``: ``to_list(0)`` (or a negative length) raises ValueError, where
    Motor's fetches the first batch and returns ``[]`` (the shared ``to_list`` reads
    ``_min_to_list_length``; no wrapper, so no extra coroutine per call)."""

    __slots__ = ()

    _min_to_list_length = 1


class AsyncCommandCursor(_PyMongoToList[_DocumentType], CommandCursor[_DocumentType]):
    """A cursor over a command's results (PyMongo: ``AsyncCommandCursor``): what
    ``aggregate()``, ``list_collections()``, ``list_indexes()`` return."""

    __slots__ = ()


#: PyMongo's raw-batch command cursor: amongo's command cursors return raw batches through
#: the same class (``aggregate_raw_batches``)
AsyncRawBatchCommandCursor = AsyncCommandCursor
