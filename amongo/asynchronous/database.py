"""``AsyncDatabase`` (PyMongo: ``pymongo.asynchronous.database``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, MutableMapping, Optional, Sequence

from amongo._typing import _DocumentType
from amongo.asynchronous._common import _AsyncWatch, _NotIterable
from amongo.command_cursor import started as _started
from amongo.asynchronous.change_stream import AsyncDatabaseChangeStream
from amongo.asynchronous.collection import AsyncCollection
from amongo.asynchronous.command_cursor import AsyncCommandCursor
from amongo.database import Database

if TYPE_CHECKING:  # pragma: no cover
    from amongo.asynchronous.client_session import AsyncClientSession
    from amongo.asynchronous.mongo_client import AsyncMongoClient

__all__ = ["AsyncDatabase"]


class AsyncDatabase(_NotIterable, _AsyncWatch[_DocumentType], Database[_DocumentType]):  # type: ignore[misc]
    """A MongoDB database (PyMongo: ``AsyncDatabase``); get one with ``client[name]``."""

    __slots__ = ()
    _collection_class = AsyncCollection
    _command_cursor_class = AsyncCommandCursor
    _change_stream_class = AsyncDatabaseChangeStream

    if TYPE_CHECKING:

        @property
        def client(self) -> AsyncMongoClient[_DocumentType]: ...

        def __getattr__(self, name: str) -> AsyncCollection[_DocumentType]: ...

        def __getitem__(self, name: str) -> AsyncCollection[_DocumentType]: ...

        def get_collection(self, name: str, codec_options: Any = None, read_preference: Any = None,
                           write_concern: Any = None, read_concern: Any = None) -> AsyncCollection[_DocumentType]: ...

        def with_options(self, codec_options: Any = None, read_preference: Any = None,
                         write_concern: Any = None, read_concern: Any = None) -> AsyncDatabase[_DocumentType]: ...

        async def create_collection(self, name: str, codec_options: Any = None, read_preference: Any = None,
                                    write_concern: Any = None, read_concern: Any = None,
                                    session: Any = None, check_exists: Optional[bool] = True,
                                    **kwargs: Any) -> AsyncCollection[_DocumentType]: ...

        async def list_collections(self, session: Any = None,
                                   filter: Optional[Mapping[str, Any]] = None, comment: Any = None,
                                   **kwargs: Any) -> AsyncCommandCursor[MutableMapping[str, Any]]: ...

        async def cursor_command(self, command: Any, value: Any = 1, read_preference: Any = None,
                                 codec_options: Any = None, session: Any = None,
                                 comment: Any = None, max_await_time_ms: Optional[int] = None,
                                 **kwargs: Any) -> AsyncCommandCursor[_DocumentType]: ...

    async def aggregate(  # type: ignore[override]
        self, pipeline: Sequence[Mapping[str, Any]], session: Any = None, **kwargs: Any
    ) -> AsyncCommandCursor[_DocumentType]:
        """Run a database-level aggregation (PyMongo: ``AsyncDatabase.aggregate``, a
        coroutine: the command runs at the ``await``)."""
        return await _started(super().aggregate(pipeline, session, **kwargs))  # type: ignore[no-any-return]

