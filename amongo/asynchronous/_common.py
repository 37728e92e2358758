"""What the PyMongo-style classes share: the members PyMongo's async client, database and
collection have and amongo's Motor-style classes do not (``__iter__ = None``, ``next``), and
the coroutine ``watch`` of all three."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NoReturn, Optional

from amongo._typing import _DocumentType
from amongo.change_stream import opened

if TYPE_CHECKING:  # pragma: no cover
    from amongo.asynchronous.change_stream import AsyncChangeStream


class _NotIterable:
    """PyMongo's ``__iter__ = None`` / ``__next__`` / ``next`` on the client, database and
    collection: ``for x in coll`` is a TypeError (not an endless ``coll.__getitem__(0)``)."""

    __slots__ = ()

    __iter__ = None

    def __next__(self) -> NoReturn:
        """Raise TypeError (PyMongo: ``__next__``; these objects are not iterable)."""
        raise TypeError(f"'{type(self).__name__}' object is not iterable")

    next = __next__


class _AsyncWatch(Generic[_DocumentType]):
    """``await target.watch(...)`` (PyMongo: ``AsyncMongoClient.watch``,
    ``AsyncDatabase.watch``, ``AsyncCollection.watch``, coroutines): the Motor-style
    ``watch`` builds the stream (of the class the target names), and the coroutine opens it,
    so a bad pipeline or an unsupported server raises at the ``await``, as in PyMongo."""

    __slots__ = ()

    async def watch(
        self,
        pipeline: Any = None,
        full_document: Optional[str] = None,
        resume_after: Any = None,
        max_await_time_ms: Optional[int] = None,
        batch_size: Optional[int] = None,
        collation: Any = None,
        start_at_operation_time: Any = None,
        session: Any = None,
        start_after: Any = None,
        comment: Any = None,
        full_document_before_change: Optional[str] = None,
        show_expanded_events: Optional[bool] = None,
    ) -> "AsyncChangeStream[_DocumentType]":
        """Open a change stream on this client, database or collection (PyMongo:
        ``watch``, a coroutine)."""
        stream: AsyncChangeStream[_DocumentType] = super().watch(  # type: ignore[misc]
            pipeline, full_document, resume_after, max_await_time_ms, batch_size, collation,
            start_at_operation_time, session, start_after, comment, full_document_before_change,
            show_expanded_events,
        )
        await opened(stream)
        return stream
