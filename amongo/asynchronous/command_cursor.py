"""``AsyncCommandCursor`` (PyMongo: ``pymongo.asynchronous.command_cursor``)."""
from __future__ import annotations

from typing import Generic, List, Optional

from amongo._typing import _DocumentType
from amongo.command_cursor import CommandCursor

__all__ = ["AsyncCommandCursor", "AsyncRawBatchCommandCursor"]


class _PyMongoToList(Generic[_DocumentType]):
    """PyMongo's ``to_list``: ``to_list(0)`` (or a negative length) raises ValueError, where
    Motor's fetches the first batch and returns ``[]``."""

    __slots__ = ()

    async def to_list(self, length: Optional[int] = None) -> List[_DocumentType]:
        """Read up to *length* documents (all when None) into a list (PyMongo: ``to_list``;
        a length below 1 raises ValueError)."""
        if isinstance(length, int) and length < 1:
            raise ValueError("to_list() length must be greater than 0")
        return await super().to_list(length)  # type: ignore[misc, no-any-return]


class AsyncCommandCursor(_PyMongoToList[_DocumentType], CommandCursor[_DocumentType]):
    """A cursor over a command's results (PyMongo: ``AsyncCommandCursor``): what
    ``aggregate()``, ``list_collections()``, ``list_indexes()`` return."""

    __slots__ = ()


#: PyMongo's raw-batch command cursor: amongo's command cursors return raw batches through
#: the same class (``aggregate_raw_batches``)
AsyncRawBatchCommandCursor = AsyncCommandCursor
