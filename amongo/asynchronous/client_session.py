"""``AsyncClientSession`` (PyMongo: ``pymongo.asynchronous.client_session``)."""
from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar

from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from amongo.engine.session import BOUND_SESSION, ClientSession, SessionOptions, TransactionOptions, _TransactionContext

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

    def bind(self, end_session: bool = True) -> "_BoundSessionContext":
        """Bind this session so it is passed implicitly to every operation inside the block
        (PyMongo 4.17+: ``AsyncClientSession.bind``)::

            async with client.start_session() as s:
                async with s.bind():
                    await client.db.coll.insert_one({"x": 1})   # session=s

        Operations given no session, and cursors created inside the block, use this session;
        using another client there raises :class:`~pymongo.errors.InvalidOperation`.

        :param end_session: end the session when the block exits (default True).
        """
        return _BoundSessionContext(self, end_session)


class _BoundSessionContext:
    """What :meth:`AsyncClientSession.bind` returns: an async context manager that sets the
    bound session for its block (PyMongo: ``_AsyncBoundSessionContext``)."""

    __slots__ = ("_session", "_end_session", "_token")

    def __init__(self, session: AsyncClientSession, end_session: bool) -> None:
        self._session = session
        self._end_session = end_session
        self._token: Optional["Token[Optional[ClientSession]]"] = None

    async def __aenter__(self) -> AsyncClientSession:
        self._token = BOUND_SESSION.set(self._session)
        return self._session

    async def __aexit__(self, *exc: Any) -> None:
        if self._token is not None:
            BOUND_SESSION.reset(self._token)
            self._token = None
        if self._end_session:
            await self._session.end_session()
