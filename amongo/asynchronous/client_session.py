"""``AsyncClientSession`` (PyMongo: ``pymongo.asynchronous.client_session``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

from pymongo.errors import ConfigurationError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from amongo.engine.session import ClientSession, SessionOptions, TransactionOptions, _TransactionContext

if TYPE_CHECKING:  # pragma: no cover
    from amongo.asynchronous.mongo_client import AsyncMongoClient

__all__ = ["AsyncClientSession", "SessionOptions", "TransactionOptions"]

_T = TypeVar("_T")


class AsyncClientSession(ClientSession):
    """A logical session (PyMongo: ``AsyncClientSession``): ``async with
    client.start_session() as s``; ``async with await s.start_transaction():``."""

    __slots__ = ()

    def __class_getitem__(cls, params: Any) -> Any:
        """``AsyncClientSession[...]`` in annotations (PyMongo's class is generic)."""
        return cls

    if TYPE_CHECKING:

        @property
        def client(self) -> AsyncMongoClient[Any]: ...

        async def __aenter__(self) -> AsyncClientSession: ...

    async def start_transaction(  # type: ignore[override]
        self,
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_commit_time_ms: Optional[int] = None,
    ) -> _TransactionContext:
        """Start a transaction: ``async with await s.start_transaction():`` (PyMongo:
        ``start_transaction``, a coroutine)."""
        return self._start_transaction(read_concern, write_concern, read_preference, max_commit_time_ms)

    async def with_transaction(
        self,
        callback: Callable[["AsyncClientSession"], Awaitable[_T]],
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_commit_time_ms: Optional[int] = None,
    ) -> _T:
        """Run ``await callback(session)`` in a transaction with the convenient API's retry
        rules (PyMongo: ``with_transaction``; the first parameter is named ``callback``)."""
        return await ClientSession.with_transaction(
            self, callback, read_concern, write_concern, read_preference, max_commit_time_ms)  # type: ignore[arg-type]

    def bind(self, end_session: bool = True) -> Any:
        """PyMongo 4.20's implicit session binding (``async with s.bind():``) is not
        implemented: raises :class:`~pymongo.errors.ConfigurationError` (pass ``session=``)."""
        raise ConfigurationError("AsyncClientSession.bind() is not supported by amongo; pass session= to each operation")
