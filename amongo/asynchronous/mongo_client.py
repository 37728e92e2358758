"""``AsyncMongoClient`` (PyMongo: ``pymongo.asynchronous.mongo_client``)."""
from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Set, Tuple, Type

from pymongo.driver_info import DriverInfo

from amongo._typing import _DocumentType
from amongo.asynchronous._common import _AsyncWatch, _NotIterable
from amongo.asynchronous.change_stream import AsyncClusterChangeStream
from amongo.asynchronous.client_session import AsyncClientSession
from amongo.asynchronous.command_cursor import AsyncCommandCursor
from amongo.asynchronous.database import AsyncDatabase
from amongo.client import MongoClient
from amongo.topology.description import ServerType

if TYPE_CHECKING:  # pragma: no cover
    from amongo.asynchronous.database import AsyncDatabase as _AsyncDatabase

__all__ = ["AsyncMongoClient"]


class AsyncMongoClient(_NotIterable, _AsyncWatch[_DocumentType], MongoClient[_DocumentType]):  # type: ignore[misc]
    """A client for asyncio applications with PyMongo's async API (PyMongo:
    ``pymongo.AsyncMongoClient``).

    Takes the same arguments as PyMongo's. It binds to the first event loop that uses it
    (monitoring starts when it is built inside a running loop, else on the first operation or
    :meth:`aconnect`); using it from another loop raises PyMongo's "Cannot use
    AsyncMongoClient in different event loop" error. Generic in the document type:
    ``AsyncMongoClient[User]`` (or ``document_class=User``).
    """

    _database_class = AsyncDatabase
    _session_class = AsyncClientSession
    _command_cursor_class = AsyncCommandCursor
    _change_stream_class = AsyncClusterChangeStream

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> _AsyncDatabase[_DocumentType]: ...

        def __getitem__(self, name: str) -> _AsyncDatabase[_DocumentType]: ...

        def get_database(self, name: Optional[str] = None, codec_options: Any = None, read_preference: Any = None,
                         write_concern: Any = None, read_concern: Any = None) -> _AsyncDatabase[_DocumentType]: ...

        def get_default_database(self, default: Optional[str] = None, codec_options: Any = None,
                                 read_preference: Any = None, write_concern: Any = None,
                                 read_concern: Any = None) -> _AsyncDatabase[_DocumentType]: ...

        async def list_databases(self, session: Any = None, comment: Any = None,
                                 **kwargs: Any) -> AsyncCommandCursor[dict[str, Any]]: ...

    # -- topology properties: awaitable, as in PyMongo's async client ---------------------
    # (``await client.address``: the waiting ones await server selection instead of the
    # Motor API's blocking discovery; the others answer from the current description.)
    @property
    async def address(self) -> Optional[Tuple[str, int]]:  # type: ignore[override]
        """(host, port) of the current standalone, primary, mongos or load balancer,
        awaiting discovery (PyMongo: ``await client.address``).

        :raises InvalidOperation: when load balancing among several mongoses.
        :raises ServerSelectionTimeoutError: no such server within serverSelectionTimeoutMS."""
        self._check_single_address()
        return (await self._select_writable()).address

    @property
    async def primary(self) -> Optional[Tuple[str, int]]:  # type: ignore[override]
        """The replica set primary's address, or None (PyMongo: ``await client.primary``)."""
        return MongoClient.primary.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    async def secondaries(self) -> Set[Tuple[str, int]]:  # type: ignore[override]
        """The replica set's known secondaries (PyMongo: ``await client.secondaries``)."""
        return MongoClient.secondaries.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    async def arbiters(self) -> Set[Tuple[str, int]]:  # type: ignore[override]
        """The replica set's known arbiters (PyMongo: ``await client.arbiters``)."""
        return MongoClient.arbiters.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    async def is_primary(self) -> bool:  # type: ignore[override]
        """Whether the server writes go to accepts writes, awaiting discovery (PyMongo:
        ``await client.is_primary``)."""
        return (await self._select_writable()).is_writable

    @property
    async def is_mongos(self) -> bool:  # type: ignore[override]
        """Whether the client is connected to mongos, awaiting discovery (PyMongo:
        ``await client.is_mongos``)."""
        return (await self._select_writable()).server_type == ServerType.Mongos

    async def close(self) -> None:  # type: ignore[override]
        """Close the pools and stop monitoring (PyMongo: ``AsyncMongoClient.close``, a
        coroutine). Pooled server sessions are ended first, as in PyMongo."""
        MongoClient.close(self)

    async def aclose(self) -> None:
        """Alias for :meth:`close` (PyMongo: ``AsyncMongoClient.aclose``)."""
        MongoClient.close(self)

    async def aconnect(self) -> None:
        """Connect now instead of on the first operation (PyMongo: ``aconnect``): start
        monitoring on the running loop (which binds the client to it)."""
        await self._topology.open()

    async def __aenter__(self) -> "AsyncMongoClient[_DocumentType]":
        """``async with AsyncMongoClient(...) as client`` (PyMongo: ``__aenter__``)."""
        await self.aconnect()
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc_val: Optional[BaseException],
                        exc_tb: Optional[TracebackType]) -> None:
        """Close the client (PyMongo: ``__aexit__``)."""
        MongoClient.close(self)

    def start_session(  # type: ignore[override]
        self,
        causal_consistency: Optional[bool] = None,
        default_transaction_options: Any = None,
        snapshot: Optional[bool] = False,
    ) -> AsyncClientSession:
        """Start a logical session: ``async with client.start_session() as s`` (PyMongo:
        ``start_session``, synchronous)."""
        return self._start_session(causal_consistency, default_transaction_options, snapshot)  # type: ignore[return-value]

    def append_metadata(self, driver_info: DriverInfo) -> None:
        """Append *driver_info* to the handshake's driver metadata; connections opened from
        now on send it (PyMongo: ``append_metadata``)."""
        if not isinstance(driver_info, DriverInfo):
            raise TypeError(f"driver_info must be an instance of DriverInfo, not {type(driver_info)}")
        key = (driver_info.name, driver_info.version, driver_info.platform)
        appended = self.__dict__.setdefault("_appended_drivers", [])
        if key in appended:
            return
        appended.append(key)
        opts = self._connection_options
        old = opts.metadata
        new = {**old, "driver": dict(old["driver"])}
        new["driver"]["name"] = f"{old['driver']['name']}|{driver_info.name or ''}"
        new["driver"]["version"] = f"{old['driver']['version']}|{driver_info.version or ''}"
        if driver_info.platform:
            new["platform"] = f"{old['platform']}|{driver_info.platform}" if old.get("platform") else driver_info.platform
        opts.metadata = new

    def eq_props(self) -> Tuple[Tuple[Tuple[str, int], ...], Optional[str], Optional[str], str]:
        """What two clients compare equal on (PyMongo: ``eq_props``): the seeds, the replica
        set name, the SRV name and SRV service name."""
        return (
            tuple(sorted(self._seeds)),
            self._options.get("replicaSet"),
            self._topology_settings.srv_fqdn,
            self._topology_settings.srv_service_name,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, self.__class__):
            return self.eq_props() == other.eq_props()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.eq_props())
