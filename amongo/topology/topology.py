"""The topology owner (I/O side).

Placeholder for the walking skeleton: it discovers the seeds with one ``hello`` each and
selects the primary (or the single server). The SDAM implementation (monitors, pure
description updates, server selection) replaces the internals and keeps this interface:

- ``Topology(settings)``; ``await topology.open()``; ``await topology.close()``
- ``await topology.select_server(read_preference=None, *, deadline=None, address=None) -> Server``
  (``read_preference=None`` selects a writable server)
- ``topology.handle_error(server, error, connection_generation)``
- ``Server.address``, ``Server.pool``, ``Server.description`` (hello fields)
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from amongo.connection import Connection, ConnectionOptions
from amongo.monitoring import EventListeners
from amongo.pool import Pool, PoolOptions

Address = Tuple[str, int]


class TopologySettings:
    __slots__ = (
        "seeds",
        "replica_set_name",
        "direct_connection",
        "load_balanced",
        "server_selection_timeout",
        "local_threshold_ms",
        "heartbeat_frequency",
        "pool_options",
        "connection_options",
        "listeners",
        "srv_fqdn",
        "srv_service_name",
        "srv_max_hosts",
    )

    def __init__(
        self,
        seeds: Sequence[Address],
        *,
        replica_set_name: Optional[str] = None,
        direct_connection: Optional[bool] = None,
        load_balanced: bool = False,
        server_selection_timeout: float = 30.0,
        local_threshold_ms: int = 15,
        heartbeat_frequency: float = 10.0,
        pool_options: Optional[PoolOptions] = None,
        connection_options: Optional[ConnectionOptions] = None,
        listeners: Optional[EventListeners] = None,
        srv_fqdn: Optional[str] = None,
        srv_service_name: str = "mongodb",
        srv_max_hosts: int = 0,
    ) -> None:
        self.seeds = list(seeds)
        self.replica_set_name = replica_set_name
        self.direct_connection = direct_connection
        self.load_balanced = load_balanced
        self.server_selection_timeout = server_selection_timeout
        self.local_threshold_ms = local_threshold_ms
        self.heartbeat_frequency = heartbeat_frequency
        self.pool_options = pool_options or PoolOptions()
        self.connection_options = connection_options or ConnectionOptions()
        self.listeners = listeners or EventListeners()
        self.srv_fqdn = srv_fqdn
        self.srv_service_name = srv_service_name
        self.srv_max_hosts = srv_max_hosts


class Server:
    __slots__ = ("address", "pool", "description", "operation_count", "_topology")

    def __init__(self, address: Address, pool: Pool, topology: "Topology") -> None:
        self.address = address
        self.pool = pool
        self.description: Dict[str, Any] = {}
        self.operation_count = 0
        self._topology = topology


class Topology:
    def __init__(self, settings: TopologySettings) -> None:
        self.settings = settings
        self.servers: Dict[Address, Server] = {}
        self._primary: Optional[Server] = None
        self._opened = False
        self._lock: Optional[asyncio.Lock] = None
        self._last_error: Optional[BaseException] = None
        self._closed = False

    async def open(self) -> None:
        self._opened = True

    def _server(self, address: Address) -> Server:
        srv = self.servers.get(address)
        if srv is None:
            settings = self.settings

            async def connect(generation: int, conn_id: int = 0) -> Connection:
                return await Connection.open(address, settings.connection_options, conn_id, generation)

            pool = Pool(address, settings.pool_options, connect, settings.listeners)
            srv = Server(address, pool, self)
            self.servers[address] = srv
        return srv

    async def _discover(self, deadline: float) -> Server:
        settings = self.settings
        opts = settings.connection_options
        tried: List[Address] = list(settings.seeds)
        seen = set()
        while tried:
            address = tried.pop(0)
            if address in seen:
                continue
            seen.add(address)
            try:
                remaining = max(0.01, deadline - time.monotonic())
                conn = await asyncio.wait_for(
                    Connection.open(address, opts, 0, 0, authenticate=False), remaining
                )
            except (ConnectionFailure, OSError, asyncio.TimeoutError) as exc:
                self._last_error = exc
                continue
            hello = conn.hello
            conn.close()
            if settings.direct_connection or settings.load_balanced or (
                len(settings.seeds) == 1 and not settings.replica_set_name and not hello.get("setName")
            ):
                srv = self._server(address)
                srv.description = hello
                return srv
            if hello.get("msg") == "isdbgrid" or not hello.get("setName"):
                srv = self._server(address)
                srv.description = hello
                return srv
            if hello.get("isWritablePrimary") or hello.get("ismaster"):
                srv = self._server(address)
                srv.description = hello
                return srv
            primary = hello.get("primary")
            if primary:
                host, _, port = primary.rpartition(":")
                tried.insert(0, (host, int(port)))
            for h in hello.get("hosts", []):
                host, _, port = h.rpartition(":")
                tried.append((host, int(port)))
        raise ServerSelectionTimeoutError(
            f"No suitable server found: {self._last_error or 'no primary'}"
        )

    async def select_server(
        self,
        read_preference: Any = None,
        *,
        deadline: Optional[float] = None,
        address: Optional[Address] = None,
    ) -> Server:
        if self._closed:
            from pymongo.errors import InvalidOperation

            raise InvalidOperation("Cannot use MongoClient after close")
        if address is not None:
            return self._server(address)
        primary = self._primary
        if primary is not None:
            return primary
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._primary is not None:
                return self._primary
            if deadline is None:
                deadline = time.monotonic() + self.settings.server_selection_timeout
            while True:
                try:
                    self._primary = await self._discover(deadline)
                    return self._primary
                except ServerSelectionTimeoutError:
                    if time.monotonic() >= deadline:
                        raise
                    await asyncio.sleep(0.2)

    def handle_error(self, server: Server, error: BaseException, generation: int) -> None:
        if isinstance(error, (AutoReconnect, ConnectionFailure)):
            if generation == server.pool.generation:
                server.pool.clear()
                server.pool.ready()  # placeholder topology: no monitor to mark it ready again
            if self._primary is server:
                self._primary = None

    @property
    def description(self) -> Any:
        return None

    async def close(self) -> None:
        self._closed = True
        for srv in list(self.servers.values()):
            await srv.pool.close()
        self.servers.clear()
        self._primary = None
