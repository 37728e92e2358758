"""``AsyncCollection`` (PyMongo: ``pymongo.asynchronous.collection``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, MutableMapping, Optional, Sequence

from amongo._typing import _DocumentType
from amongo.asynchronous._common import _AsyncWatch, _NotIterable
from amongo.command_cursor import started as _started
from amongo.asynchronous.change_stream import AsyncCollectionChangeStream
from amongo.asynchronous.command_cursor import AsyncCommandCursor, AsyncRawBatchCommandCursor
from amongo.asynchronous.cursor import AsyncCursor, AsyncRawBatchCursor
from amongo.collection import Collection

if TYPE_CHECKING:  # pragma: no cover
    from amongo.asynchronous.client_session import AsyncClientSession
    from amongo.asynchronous.database import AsyncDatabase

__all__ = ["AsyncCollection", "ReturnDocument"]

from pymongo import ReturnDocument  # noqa: E402  (PyMongo's module exports it too)


class AsyncCollection(_NotIterable, _AsyncWatch[_DocumentType], Collection[_DocumentType]):  # type: ignore[misc]
    """A MongoDB collection (PyMongo: ``AsyncCollection``); get one with ``db[name]``.

    ``find()`` returns an :class:`~amongo.asynchronous.cursor.AsyncCursor` at once;
    ``aggregate()``, ``list_indexes()``, ``list_search_indexes()`` and ``watch()`` are
    coroutines that run their first command and return the cursor / stream, as in PyMongo."""

    __slots__ = ()
    _cursor_class = AsyncCursor
    _raw_batch_cursor_class = AsyncRawBatchCursor
    _command_cursor_class = AsyncCommandCursor
    _change_stream_class = AsyncCollectionChangeStream

    if TYPE_CHECKING:

        @property
        def database(self) -> AsyncDatabase[_DocumentType]: ...

        def __getattr__(self, name: str) -> AsyncCollection[_DocumentType]: ...

        def __getitem__(self, name: str) -> AsyncCollection[_DocumentType]: ...

        def with_options(self, codec_options: Any = None, read_preference: Any = None,
                         write_concern: Any = None, read_concern: Any = None) -> AsyncCollection[_DocumentType]: ...

        def find(self, *args: Any, **kwargs: Any) -> AsyncCursor[_DocumentType]: ...

        def find_raw_batches(self, *args: Any, **kwargs: Any) -> AsyncRawBatchCursor[_DocumentType]: ...

    async def aggregate(  # type: ignore[override]
        self, pipeline: Sequence[Mapping[str, Any]], session: Optional[AsyncClientSession] = None,
        let: Optional[Mapping[str, Any]] = None, comment: Any = None, **kwargs: Any,
    ) -> AsyncCommandCursor[_DocumentType]:
        """Run an aggregation (PyMongo: ``AsyncCollection.aggregate``, a coroutine: the
        command runs at the ``await``)."""
        return await _started(super().aggregate(pipeline, session, let, comment, **kwargs))  # type: ignore[no-any-return]

    async def aggregate_raw_batches(  # type: ignore[override]
        self, pipeline: Sequence[Mapping[str, Any]], session: Optional[AsyncClientSession] = None,
        comment: Any = None, **kwargs: Any,
    ) -> AsyncRawBatchCommandCursor[_DocumentType]:
        """Like :meth:`aggregate`, yielding raw BSON batches (PyMongo:
        ``aggregate_raw_batches``, a coroutine)."""
        return await _started(super().aggregate_raw_batches(pipeline, session, comment, **kwargs))  # type: ignore[no-any-return]

    async def list_indexes(  # type: ignore[override]
        self, session: Optional[AsyncClientSession] = None, **kwargs: Any
    ) -> AsyncCommandCursor[MutableMapping[str, Any]]:
        """A cursor over the index documents (PyMongo: ``list_indexes``, a coroutine)."""
        return await _started(self._list_indexes(session, **kwargs))  # type: ignore[no-any-return]

    async def list_search_indexes(  # type: ignore[override]
        self, name: Optional[str] = None, session: Optional[AsyncClientSession] = None,
        comment: Any = None, **kwargs: Any,
    ) -> AsyncCommandCursor[Mapping[str, Any]]:
        """A cursor over this collection's search indexes (PyMongo: ``list_search_indexes``,
        a coroutine)."""
        return await _started(super().list_search_indexes(name, session, comment, **kwargs))  # type: ignore[no-any-return]

