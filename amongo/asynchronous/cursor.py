"""``AsyncCursor`` / ``AsyncRawBatchCursor`` (PyMongo: ``pymongo.asynchronous.cursor``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, Union

from pymongo import CursorType
from pymongo.errors import InvalidOperation

from amongo._typing import _DocumentType
from amongo.asynchronous.command_cursor import _PyMongoToList
from amongo.cursor import Cursor, RawBatchCursor

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from amongo.asynchronous.collection import AsyncCollection

__all__ = ["AsyncCursor", "AsyncRawBatchCursor", "CursorType"]


class AsyncCursor(_PyMongoToList[_DocumentType], Cursor[_DocumentType]):
    """A cursor over the results of ``find`` (PyMongo: ``AsyncCursor``); the chaining
    methods (``sort``, ``limit``...) are called before iteration starts."""

    @property
    def collection(self) -> "AsyncCollection[_DocumentType]":
        """The collection this cursor iterates (PyMongo: ``AsyncCursor.collection``)."""
        return self._collection  # type: ignore[return-value]

    @property
    def retrieved(self) -> int:
        """The number of documents retrieved from the server so far (PyMongo:
        ``AsyncCursor.retrieved``)."""
        return self._returned + len(self._data)

    def __getitem__(self, index: Union[int, slice]) -> NoReturn:
        """Indexing is not supported on an async cursor (PyMongo: ``AsyncCursor.__getitem__``
        raises IndexError); use ``skip()`` / ``limit()``."""
        raise IndexError("AsyncCursor does not support indexing")

    async def rewind(self) -> "Self":  # type: ignore[override]
        """Reset to the unstarted state (PyMongo: ``AsyncCursor.rewind``, a coroutine)."""
        return Cursor.rewind(self)

    async def add_option(self, mask: int) -> "Self":  # type: ignore[override]
        """Set query flag bits (PyMongo: ``AsyncCursor.add_option``, a coroutine)."""
        return Cursor.add_option(self, mask)


class AsyncRawBatchCursor(AsyncCursor[_DocumentType], RawBatchCursor[_DocumentType]):
    """A cursor yielding raw BSON batches (PyMongo: ``AsyncRawBatchCursor``), from
    ``find_raw_batches``."""

    def __getitem__(self, index: Any) -> NoReturn:
        """Not supported (PyMongo: raises InvalidOperation)."""
        raise InvalidOperation("Cannot call __getitem__ on AsyncRawBatchCursor")
