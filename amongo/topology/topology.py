"""The topology owner (I/O side of SDAM and server selection).

:class:`Topology` owns the current immutable
:class:`~amongo.topology.description.TopologyDescription` and replaces it with
:func:`~amongo.topology.sdam.updated_topology_description` whenever a monitor reports a
check or an application error marks a server Unknown.  On every change it, synchronously:

- creates a :class:`Server` (a paused :class:`~amongo.pool.Pool` and a
  :class:`~amongo.topology.monitor.Monitor`) for each new address, and closes the pool and
  monitor of each removed one;
- marks pools ready once their server is known and clears a pool (after publishing the
  SDAM events) when the monitor's check failed or the application error's decision says so (SDAM
  "Connection Pool Management");
- publishes the SDAM events (:func:`~amongo.topology.sdam.topology_events`) to
  ``settings.listeners``;
- drops the selection cache and wakes selection waiters (one :class:`asyncio.Event` per
  change, no polling).

Interface used by the executor and the client:

- ``Topology(settings)``; ``await open()`` (also done lazily by the first selection);
  ``await close()`` / ``close_nowait()``.
- ``await select_server(read_preference=None, *, deadline=None, address=None) -> Server``;
  ``None`` selects a writable server.  The candidates for a selector are cached until the
  description changes, so the common case is a dict lookup.
- ``handle_error(server, error, connection_generation, *, service_id=None)``
  (SDAM "Error handling", via :func:`~amongo.topology.sdam.error_handling_decision`).
  Errors while *opening* a pooled connection are handled here too (the pool's connect
  factory reports them with the "before handshake" phase).
- ``description`` (the current TopologyDescription), ``servers`` (address -> Server),
  ``Server.address/.pool/.description/.operation_count``.
- For the client's synchronous topology properties: ``select_server_sync(read_preference)``
  answers from the description when it can, else runs a **blocking** discovery
  (:mod:`amongo.topology.sync_probe`, bounded by ``serverSelectionTimeoutMS``; it blocks the
  event loop, as Motor's properties do) whose results go through
  ``apply_description_sync(sd)`` / ``apply_check_failure_sync(...)``, the monitors' code
  path minus awaiting; ``open_nowait()`` starts monitoring when a loop is running.  Used
  outside a running loop, the Servers are created (paused pools) and their monitors start
  at :meth:`open`.

``mongodb+srv``: when ``settings.srv_fqdn`` is set (and no seeds are given) :meth:`open`
resolves SRV and TXT records with :func:`amongo.srv.resolve_srv` (resolver injectable as
``settings.srv_resolver``) before any selection succeeds.  TXT ``replicaSet`` and
``loadBalanced`` are applied here (unless the client already set them); all TXT options
are exposed as :attr:`Topology.srv_txt_options`; ``authSource`` goes to the client's
``srv_txt_hook``, whose credential then replaces the one in the connection options the
pools use.  A waiting topology property resolves SRV synchronously
(:func:`amongo.topology.sync_probe.resolve_srv_sync`) when that has not happened yet.  Sharded and Unknown topologies then poll SRV
every ``settings.srv_rescan_interval`` seconds (60 s, the spec's minimum: the resolver
interface reports no TTLs; tests lower it) and apply :func:`amongo.srv.updated_srv_hosts`.

Load-balanced mode: one LoadBalancer server, no monitor, selection returns it at once.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bson.objectid import ObjectId
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    InvalidOperation,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from amongo import _logging
from amongo.connection import Connection, ConnectionOptions
from amongo.monitoring import EventListeners
from amongo.pool import Pool, PoolOptions
from amongo.topology import sdam
from amongo.topology.description import (
    Address,
    ServerDescription,
    invalid_hello,
    ServerType,
    TopologyDescription,
    TopologyType,
)
from amongo.topology.monitor import Monitor, MonitorCallbacks, monitor_connection_options
from amongo.topology.selection import WRITABLE, address_selector, choose_in_window, select_servers

__all__ = ["Topology", "TopologySettings", "Server"]


class TopologySettings:
    __slots__ = (
        "seeds",
        "replica_set_name",
        "direct_connection",
        "load_balanced",
        "server_selection_timeout",
        "local_threshold_ms",
        "heartbeat_frequency",
        "min_heartbeat_frequency",
        "server_monitoring_mode",
        "pool_options",
        "connection_options",
        "listeners",
        "srv_fqdn",
        "srv_service_name",
        "srv_max_hosts",
        "srv_resolver",
        "srv_rescan_interval",
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
        min_heartbeat_frequency: float = 0.5,
        server_monitoring_mode: str = "auto",
        pool_options: Optional[PoolOptions] = None,
        connection_options: Optional[ConnectionOptions] = None,
        listeners: Optional[EventListeners] = None,
        srv_fqdn: Optional[str] = None,
        srv_service_name: str = "mongodb",
        srv_max_hosts: int = 0,
        srv_resolver: Any = None,
        srv_rescan_interval: float = 60.0,
    ) -> None:
        self.seeds = list(seeds)
        self.replica_set_name = replica_set_name
        self.direct_connection = direct_connection
        self.load_balanced = load_balanced
        self.server_selection_timeout = server_selection_timeout
        self.local_threshold_ms = local_threshold_ms
        self.heartbeat_frequency = heartbeat_frequency
        self.min_heartbeat_frequency = min_heartbeat_frequency
        self.server_monitoring_mode = server_monitoring_mode
        self.pool_options = pool_options or PoolOptions()
        self.connection_options = connection_options or ConnectionOptions()
        self.listeners = listeners or EventListeners()
        self.srv_fqdn = srv_fqdn
        self.srv_service_name = srv_service_name
        self.srv_max_hosts = srv_max_hosts
        self.srv_resolver = srv_resolver
        self.srv_rescan_interval = srv_rescan_interval


class Server:
    """One server of the topology: its address, pool and monitor (internal).

    ``description`` is the server's current :class:`ServerDescription` (read from the
    topology's current description).  ``operation_count`` is the number of operations
    using or waiting for one of its connections (used by the selection's "power of two
    choices").
    """

    __slots__ = ("address", "pool", "monitor", "_topology", "_removed")

    def __init__(self, address: Address, pool: Pool, topology: "Topology", monitor: Optional[Monitor]) -> None:
        self.address = address
        self.pool = pool
        self.monitor = monitor
        self._topology = topology
        self._removed = False

    @property
    def description(self) -> ServerDescription:
        """The server's current :class:`~amongo.topology.description.ServerDescription`."""
        sd = self._topology._td.servers.get(self.address)
        return sd if sd is not None else ServerDescription.unknown(self.address)

    @property
    def operation_count(self) -> int:
        """Operations in flight on this server (selection's in-window choice prefers fewer)."""
        pool = self.pool
        return pool.in_use_connections + pool.waiting

    def request_check(self) -> None:
        """Ask the server's monitor to check it now (rate-limited by minHeartbeatFrequencyMS)."""
        if self.monitor is not None:
            self.monitor.request_check()

    def __repr__(self) -> str:
        return f"<Server {self.address[0]}:{self.address[1]} {self.description.server_type_name}>"


def _event_method(event: Any) -> Tuple[str, str]:
    name = type(event).__name__
    kind = "server" if name.startswith("Server") else "topology"
    if name.endswith("OpeningEvent") or name.endswith("OpenedEvent"):
        return kind, "opened"
    if name.endswith("ClosedEvent"):
        return kind, "closed"
    return kind, "description_changed"


def _check_compatible(td: TopologyDescription) -> None:
    # ``TopologyDescription.compatible`` also judges PossiblePrimary servers (never checked
    # yet, wire versions 0); ignore those.
    from amongo.topology import description as _d

    ok, err = _d._compatibility(
        [s for s in td.servers.values() if s.server_type != ServerType.PossiblePrimary]
    )
    if not ok:
        raise ConfigurationError(err or "incompatible server")


_READY_TYPES = frozenset(
    t for t in ServerType if t not in (ServerType.Unknown, ServerType.PossiblePrimary)
)


_topology_log_enabled = _logging.TOPOLOGY_LOGGER.isEnabledFor


def _fmt_seconds(value: float) -> str:
    return f"{value:g}"


class Topology:
    """The deployment as the client sees it (internal)."""

    def __init__(self, settings: TopologySettings) -> None:
        self.settings = settings
        self.servers: Dict[Address, Server] = {}
        self._topology_id = ObjectId()
        self._listeners = settings.listeners
        self._monitor_options = monitor_connection_options(settings.connection_options)
        self._pool_options = settings.pool_options
        self._connection_options = settings.connection_options
        self._selection_cache: Dict[Any, Tuple[Any, List[Server]]] = {}
        self._changed: Optional[asyncio.Event] = None
        self._opened = False
        self._closed = False
        self._srv_task: Optional["asyncio.Task[Any]"] = None
        self._srv_error: Optional[BaseException] = None
        self._srv_hosts: List[Address] = []
        #: The options of the SRV name's TXT record (empty unless mongodb+srv).
        self.srv_txt_options: Dict[str, str] = {}
        #: Called with the TXT options once SRV is resolved (``mongodb+srv``); returns a new
        #: credential for the connections (the client's TXT ``authSource`` hook) or None.
        self.srv_txt_hook: Optional[Callable[[Dict[str, str]], Any]] = None
        self._srv_resolved = False
        self._opening_published = False
        #: The loop the monitors run on (set when monitoring starts).
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        #: ``id()`` of the owning client, carried by the ``amongo.topology`` /
        #: ``amongo.connection`` / ``amongo.serverSelection`` log messages (set by the client).
        self.log_client_id = 0
        self._td = self._initial_description(settings.seeds)

    # -- construction ----------------------------------------------------------------------
    def _initial_description(self, seeds: Sequence[Address]) -> TopologyDescription:
        s = self.settings
        if not seeds:
            return TopologyDescription(topology_type=TopologyType.Unknown, servers={})
        return sdam.initial_topology_description(
            seeds,
            replica_set_name=s.replica_set_name,
            direct_connection=s.direct_connection,
            load_balanced=s.load_balanced,
        )

    @property
    def opened(self) -> bool:
        """Whether monitoring was started."""
        return self._opened

    @property
    def closed(self) -> bool:
        """Whether the topology was closed."""
        return self._closed

    @property
    def description(self) -> TopologyDescription:
        """The current :class:`TopologyDescription` (Motor: ``topology_description``)."""
        return self._td

    @property
    def _primary(self) -> Optional[Server]:
        """The writable server of the current description, if any (compatibility helper for
        callers that want "the" server without selecting)."""
        for sd in self._td.servers.values():
            if sd.is_writable:
                return self.servers.get(sd.address)
        return None

    def _server_description(self, address: Address) -> ServerDescription:
        sd = self._td.servers.get(address)
        return sd if sd is not None else ServerDescription.unknown(address)

    def _publish(self, events: List[Any]) -> None:
        if _topology_log_enabled(_logging.DEBUG):
            _logging.log_sdam_events(self.log_client_id, events)
        listeners = self._listeners
        if not (listeners.enabled_for_server or listeners.enabled_for_topology):
            return
        for event in events:
            kind, method = _event_method(event)
            if kind == "server":
                if listeners.enabled_for_server:
                    listeners.publish(listeners.server, method, event)
            elif listeners.enabled_for_topology:
                listeners.publish(listeners.topology, method, event)

    # -- opening / closing -----------------------------------------------------------------
    async def open(self) -> None:
        """Start monitoring (and, for ``mongodb+srv``, resolve the seeds)."""
        self.open_sync()
        if self._srv_task is not None and not self._srv_task.done() and not self._td.servers:
            # Let the resolution finish (selection would wait for it anyway).
            await asyncio.wait([self._srv_task], timeout=self.settings.server_selection_timeout)

    def open_sync(self) -> None:
        """Start monitoring now, from synchronous code inside a running loop (idempotent;
        nothing after close)."""
        if self._opened or self._closed:
            return
        self._opened = True
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        s = self.settings
        self._publish_opening()
        if s.srv_fqdn and not s.seeds:
            # Resolve (unless a topology property already did, synchronously), then poll.
            self._srv_task = asyncio.get_running_loop().create_task(self._srv_init())
            if not self._srv_resolved:
                return
        self._sync_servers(None, self._td)
        # Servers created before opening (by a topology property outside a running loop)
        # get their monitors now.
        for srv in self.servers.values():
            if srv.monitor is not None:
                srv.monitor.start()

    def _publish_opening(self) -> None:
        """TopologyOpening (+ ServerOpening for the seeds, once known), once."""
        if self._opening_published:
            return
        self._opening_published = True
        s = self.settings
        events = sdam.opening_events(self._td, self._topology_id)
        if s.srv_fqdn and not s.seeds and not self._srv_resolved:
            events = events[:1]  # the seeds' events follow the SRV resolution
        self._publish(events)

    async def _srv_init(self) -> None:
        s = self.settings
        from amongo import srv as _srv

        if not self._srv_resolved:
            try:
                hosts, txt = await _srv.resolve_srv(
                    s.srv_fqdn,  # type: ignore[arg-type]
                    srv_service_name=s.srv_service_name,
                    srv_max_hosts=s.srv_max_hosts,
                    resolver=s.srv_resolver,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported by select_server
                if not self._srv_resolved:
                    self._srv_error = exc
                    self._notify()
                    return
            else:
                if self._closed:
                    return
                if not self._srv_resolved:  # a topology property may have resolved meanwhile
                    try:
                        self._apply_srv_result(hosts, txt)
                    except ConfigurationError as exc:
                        self._srv_error = exc
                        self._notify()
                        return
        await self._srv_poll()

    def _apply_srv_result(self, hosts: Sequence[Address], txt: Dict[str, str]) -> None:
        """Seed the topology from an SRV answer and apply the TXT options (both the async
        resolution and a topology property's synchronous one end here).

        :raises ConfigurationError: invalid seeds for the settings.
        """
        s = self.settings
        self.srv_txt_options = dict(txt)
        lowered = {k.lower(): v for k, v in txt.items()}
        if s.replica_set_name is None and lowered.get("replicaset"):
            s.replica_set_name = lowered["replicaset"]
        if not s.load_balanced and str(lowered.get("loadbalanced", "")).lower() == "true":
            s.load_balanced = True
            opts = self._connection_options
            if not opts.load_balanced:
                lb = object.__new__(ConnectionOptions)
                for name in ConnectionOptions.__slots__:
                    object.__setattr__(lb, name, getattr(opts, name, None))
                lb.load_balanced = True
                self._connection_options = lb
        hook = self.srv_txt_hook
        if hook is not None and txt:
            credential = hook(dict(txt))
            if credential is not None:
                self._replace_credential(credential)
        self._srv_hosts = list(hosts)
        new = self._initial_description(hosts)
        self._srv_resolved = True
        old = self._td
        self._td = new
        events = sdam.opening_events(new, self._topology_id)[1:]
        self._publish(events)
        self._sync_servers(old, new)
        self._notify()

    def _replace_credential(self, credential: Any) -> None:
        """Use *credential* for the connections opened from now on (TXT ``authSource``)."""
        opts = self._connection_options
        copy = object.__new__(ConnectionOptions)
        for name in ConnectionOptions.__slots__:
            object.__setattr__(copy, name, getattr(opts, name, None))
        copy.credential = credential
        self._connection_options = copy

    async def _srv_poll(self) -> None:
        from amongo import srv as _srv

        s = self.settings
        while not self._closed:
            await asyncio.sleep(max(s.srv_rescan_interval, 0.01))
            if self._td.topology_type not in (TopologyType.Sharded, TopologyType.Unknown):
                return
            try:
                answer = await _srv.resolve_srv_hosts(
                    s.srv_fqdn,  # type: ignore[arg-type]
                    srv_service_name=s.srv_service_name,
                    resolver=s.srv_resolver,
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep the current hosts, retry later
                continue
            td = self._td
            current = list(td.servers)
            hosts = _srv.updated_srv_hosts(current, answer, s.srv_max_hosts)
            if set(hosts) == set(current):
                continue
            servers = {a: td.servers.get(a) or ServerDescription.unknown(a) for a in hosts}
            new = TopologyDescription(
                topology_type=td.topology_type,
                servers=servers,
                replica_set_name=td.replica_set_name,
                max_set_version=td.max_set_version,
                max_election_id=td.max_election_id,
                seed_count=td.seed_count,
            )
            self._set_description(new)

    def close_nowait(self) -> List["asyncio.Task[Any]"]:
        """Synchronous part of :meth:`close`: stop monitors and SRV polling, close the
        pools' idle connections, publish the closing events, wake selection waiters.
        Returns the cancelled tasks (await them to finish cleanly)."""
        if self._closed:
            return []
        self._closed = True
        if self._loop is not None and self._loop.is_closed():
            # The loop it ran on is gone, and its tasks and transports with it: nothing can be
            # scheduled there any more (cancelling would raise); just stay closed.
            return []
        tasks: List[asyncio.Task[Any]] = []
        if self._srv_task is not None and not self._srv_task.done():
            self._srv_task.cancel()
            tasks.append(self._srv_task)
        for srv in self.servers.values():
            if srv.monitor is not None:
                tasks.extend(srv.monitor.close_nowait())
            tasks.extend(srv.pool.close_nowait())
        if self._opened:
            self._publish(sdam.closing_events(self._td, self._topology_id))
        self._notify()
        return tasks

    def close_from_finalizer(self) -> None:
        """:meth:`close_nowait` for a finalizer (the owning client was garbage-collected
        unclosed): on the monitors' loop, from whatever thread the collection ran in, and
        never raising."""
        loop = self._loop
        try:
            try:
                running: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is None or running is loop or loop.is_closed() or not loop.is_running():
                self.close_nowait()
            else:
                loop.call_soon_threadsafe(self.close_nowait)
        except Exception:  # noqa: BLE001 - (a closed loop: its tasks are gone anyway)
            pass

    async def close(self) -> None:
        """Stop monitoring and close every pool."""
        tasks = self.close_nowait()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.servers.clear()

    # -- description changes -----------------------------------------------------------------
    def _notify(self) -> None:
        self._selection_cache.clear()
        ev = self._changed
        if ev is not None:
            ev.set()
            self._changed = asyncio.Event()

    def _set_description(
        self,
        new: TopologyDescription,
        *,
        address: Optional[Address] = None,
        clear_pool: bool = False,
        interrupt: bool = False,
    ) -> None:
        old = self._td
        if new is old:
            if clear_pool and address is not None:
                srv = self.servers.get(address)
                if srv is not None:
                    srv.pool.clear(interrupt_connections=interrupt)
            return
        self._td = new
        # SDAM events first (ServerDescriptionChanged to Unknown precedes PoolCleared).
        self._publish(sdam.topology_events(old, new, self._topology_id, address=address))
        try:
            self._sync_servers(old, new, cleared=address if clear_pool else None, interrupt=interrupt)
        except Exception as exc:  # noqa: BLE001 - keep the description and the pools in line
            self._sync_failed(address, exc)
        self._notify()

    def _sync_failed(self, address: Optional[Address], exc: BaseException) -> None:
        """Bringing the pools in line with the new description failed: every server whose
        pool is not in line (a known server without a Server or with a paused pool) becomes
        Unknown with the error, and its pool is cleared (paused)."""
        error = invalid_hello(address, f"could not apply the description: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        servers = dict(self._td.servers)
        changed = False
        for a, sd in self._td.servers.items():
            srv = self.servers.get(a)
            if sd.server_type in _READY_TYPES and (srv is None or srv.pool.paused or a == address):
                servers[a] = ServerDescription.unknown(a, error)
                changed = True
        if not changed:
            return
        old = self._td
        self._td = new = replace(old, servers=servers)
        self._publish(sdam.topology_events(old, new, self._topology_id, address=address))
        for a, sd in new.servers.items():
            srv = self.servers.get(a)
            if srv is not None and not sd.is_server_type_known:
                try:
                    srv.pool.clear()
                except Exception:  # noqa: BLE001 - (a pool that cannot even be cleared)
                    pass

    def _apply(self, sd: ServerDescription, *, clear_pool: bool = False, interrupt: bool = False) -> None:
        if self._closed:
            return
        try:
            new = sdam.updated_topology_description(self._td, sd)
        except Exception as exc:  # noqa: BLE001 - a description SDAM cannot process
            # (from_hello validates what SDAM reads; this is the defence in depth): the
            # server is Unknown with that error, its pool cleared.
            error = invalid_hello(sd.address, f"{type(exc).__name__}: {exc}")
            error.__cause__ = exc
            sd = ServerDescription.unknown(sd.address, error)
            new = sdam.updated_topology_description(self._td, sd)
            clear_pool = True
        self._set_description(new, address=sd.address, clear_pool=clear_pool, interrupt=interrupt)

    def _sync_servers(
        self,
        old: Optional[TopologyDescription],
        new: TopologyDescription,
        *,
        cleared: Optional[Address] = None,
        interrupt: bool = False,
    ) -> None:
        """Create/remove Servers and set pool states for the change *old* -> *new*."""
        servers = self.servers
        for address, sd in new.servers.items():
            srv = servers.get(address)
            if srv is None:
                srv = servers[address] = self._make_server(address)
                if srv.monitor is not None and self._opened and not self._closed:
                    srv.monitor.start()
            pool = srv.pool
            if sd.server_type in _READY_TYPES:
                if address == cleared:
                    pool.clear(interrupt_connections=interrupt)
                if pool.paused:
                    pool.ready()
            elif address == cleared:
                # Only the errors that say so clear a pool (a NotWritablePrimary reply from
                # a 4.2+ server marks it Unknown but keeps its connections).
                pool.clear(interrupt_connections=interrupt)
        if old is not None:
            for address in old.servers:
                if address not in new.servers:
                    srv = servers.pop(address, None)
                    if srv is not None:
                        srv._removed = True
                        if srv.monitor is not None:
                            srv.monitor.close_nowait()
                        srv.pool.close_nowait()

    def _make_server(self, address: Address) -> Server:
        settings = self.settings
        lb = settings.load_balanced
        pool_opts = self._pool_options
        if lb and not pool_opts.load_balanced:
            copy = object.__new__(PoolOptions)
            for name in PoolOptions.__slots__:
                object.__setattr__(copy, name, getattr(pool_opts, name))
            copy.load_balanced = True
            pool_opts = self._pool_options = copy
        topology = self

        async def connect(generation: int, conn_id: int = 0) -> Connection:
            try:
                conn = await Connection.open(address, topology._connection_options, conn_id, generation, handshake=False)
            except (ConnectionFailure, OperationFailure) as exc:
                topology._handle_connect_error(address, exc, generation)
                raise
            try:
                await conn.handshake()
            except BaseException as exc:
                conn.close()
                if isinstance(exc, (ConnectionFailure, OperationFailure)):
                    # After the hello (authentication) a load balancer's connection has its
                    # serviceId: that service's connections are cleared (load-balancers spec).
                    topology._handle_connect_error(address, exc, generation, service_id=conn.service_id)
                raise
            return conn

        pool = Pool(address, pool_opts, connect, settings.listeners, paused=not lb,
                    log_client_id=self.log_client_id)
        monitor = None if lb else self._new_monitor(address)
        return Server(address, pool, self, monitor)

    # -- monitor callbacks -------------------------------------------------------------------
    def _new_monitor(self, address: Address) -> Monitor:
        """A monitor for *address*, handed this topology's callbacks and settings."""
        s = self.settings
        return Monitor(
            address,
            MonitorCallbacks(
                self._server_description,
                self._on_check_success,
                self._on_check_failure,
                self._log_heartbeat,
            ),
            self._monitor_options,
            heartbeat_frequency=s.heartbeat_frequency,
            min_heartbeat_frequency=s.min_heartbeat_frequency,
            server_monitoring_mode=s.server_monitoring_mode,
            listeners=s.listeners,
        )

    def _log_heartbeat(
        self, address: Address, message: str, awaited: bool, conn: Any, **fields: Any
    ) -> None:
        _logging.log_heartbeat(
            self.log_client_id, self._topology_id, address, message, awaited, conn, **fields
        )

    def _on_check_success(self, sd: ServerDescription) -> None:
        self._apply(sd)

    def _on_check_failure(
        self,
        address: Address,
        previous: ServerDescription,
        error: BaseException,
        is_network: bool,
        is_timeout: bool,
    ) -> bool:
        """Apply a failed monitor check; returns whether to check again at once."""
        decision = sdam.check_failure_decision(
            previous, is_network_error=is_network, is_timeout=is_timeout
        )
        self._apply(
            ServerDescription.unknown(address, error),
            clear_pool=decision.clear_pool,
            interrupt=decision.interrupt_connections,
        )
        return decision.check_immediately

    # -- application errors ------------------------------------------------------------------
    def handle_error(
        self,
        server: Server,
        error: BaseException,
        connection_generation: Optional[int],
        *,
        service_id: Any = None,
        max_wire_version: Optional[int] = None,
    ) -> None:
        """Update SDAM state after *error* on a connection of *server* (SDAM "Error
        handling"): ignore stale errors, mark the server Unknown, clear its pool, request
        or cancel a monitor check, as :func:`sdam.error_handling_decision` says."""
        self._handle(server.address, error, connection_generation, sdam.ErrorPhase.AFTER_HANDSHAKE,
                     service_id=service_id, max_wire_version=max_wire_version)

    def _handle_connect_error(self, address: Address, error: BaseException, generation: int,
                              service_id: Any = None) -> None:
        self._handle(address, error, generation, sdam.ErrorPhase.BEFORE_HANDSHAKE, service_id=service_id)

    def _handle(
        self,
        address: Address,
        error: BaseException,
        generation: Optional[int],
        phase: "sdam.ErrorPhase",
        *,
        service_id: Any = None,
        max_wire_version: Optional[int] = None,
    ) -> None:
        if self._closed:
            return
        srv = self.servers.get(address)
        if srv is None:
            return
        td = self._td
        current = td.servers.get(address)
        if current is None:
            return
        code = message = topology_version = None
        if isinstance(error, (OperationFailure, NotPrimaryError)):
            kind = sdam.ErrorKind.COMMAND
            details = getattr(error, "details", None) or {}
            fields = sdam.command_error_fields(details) if details else None
            if fields is not None:
                code, message, topology_version = fields
            else:
                code = getattr(error, "code", None)
                message = str(error)
        elif isinstance(error, NetworkTimeout):
            kind = sdam.ErrorKind.TIMEOUT
        elif isinstance(error, ConnectionFailure):
            kind = sdam.ErrorKind.NETWORK
        else:
            return
        pool = srv.pool
        if td.topology_type == TopologyType.LoadBalanced and service_id is not None:
            pool_generation = pool.generation_for(service_id)
        else:
            pool_generation = pool.generation
        labels = getattr(error, "_error_labels", None) or ()
        decision = sdam.error_handling_decision(
            td,
            address,
            kind,
            code=code,
            message=message,
            topology_version=topology_version,
            connection_generation=generation,
            pool_generation=pool_generation,
            max_wire_version=max_wire_version if max_wire_version is not None else current.max_wire_version,
            phase=phase,
            labels=labels,
            service_id=service_id,
        )
        if decision.ignored:
            return
        if decision.mark_unknown:
            self._apply(
                ServerDescription.unknown(address, error, topology_version=decision.topology_version),
                clear_pool=decision.clear_pool,
            )
        elif decision.clear_pool:
            pool.clear(service_id=decision.service_id)
        monitor = srv.monitor
        if monitor is not None:
            if decision.cancel_check:
                monitor.cancel_check()
            if decision.request_check:
                monitor.request_check()

    # -- server selection ----------------------------------------------------------------------
    def _request_checks(self) -> None:
        for srv in self.servers.values():
            if srv.monitor is not None:
                srv.monitor.request_check()

    def _candidates(
        self, read_preference: Any, address: Optional[Address], deprioritized: Sequence[Address] = ()
    ) -> List[Server]:
        """The servers in the latency window for a selector (cached per description; not
        when servers are *deprioritized*: a retry avoiding the server that failed)."""
        key = address if address is not None else id(read_preference)
        cached = None if deprioritized else self._selection_cache.get(key)
        if cached is not None and (address is not None or cached[0] is read_preference):
            return cached[1]
        td = self._td
        if not td.compatible:
            _check_compatible(td)
        if address is not None:
            sd = td.servers.get(address)
            if sd is not None and (sd.is_server_type_known or td.topology_type == TopologyType.LoadBalanced):
                sds = [sd]
            else:
                sds = []
        else:
            selector = WRITABLE if read_preference is None else read_preference
            sds = select_servers(
                td,
                selector,
                self.settings.local_threshold_ms,
                heartbeat_frequency_ms=self.settings.heartbeat_frequency * 1000,
                deprioritized=deprioritized,
            )
        servers = self.servers
        result = [servers[sd.address] for sd in sds if sd.address in servers]
        if deprioritized:
            return result
        cache = self._selection_cache
        if len(cache) > 256:
            cache.clear()
        cache[key] = (read_preference, result)
        return result

    def select_now(
        self, read_preference: Any = None, address: Optional[Address] = None, deprioritized: Sequence[Address] = ()
    ) -> Optional[Server]:
        """:meth:`select_server`'s answer when it needs no waiting (the topology is open and
        a server is suitable now), else None: then await :meth:`select_server`."""
        if self._closed or not self._opened or self._srv_error is not None:
            return None
        if address is None and not deprioritized:  # (the selection cache's hit, inline)
            cached = self._selection_cache.get(id(read_preference))
            if cached is not None and cached[0] is read_preference:
                candidates = cached[1]
                if len(candidates) == 1:
                    return candidates[0]
        candidates = self._candidates(read_preference, address, deprioritized)
        if not candidates:
            return None
        return candidates[0] if len(candidates) == 1 else self._choose(candidates)

    async def select_server(
        self,
        read_preference: Any = None,
        *,
        deadline: Optional[float] = None,
        address: Optional[Address] = None,
        deprioritized: Sequence[Address] = (),
    ) -> Server:
        """A server for *read_preference* (None: a writable server), or the server at
        *address*; waits for the topology to change until *deadline* (``time.monotonic()``)
        or ``serverSelectionTimeoutMS``. Servers in *deprioritized* (a retried operation's
        failed server) are chosen only when no other server is suitable (server-selection
        spec).

        :raises ServerSelectionTimeoutError: no suitable server in time (the message ends
            with the topology description, as PyMongo's does).
        :raises ConfigurationError: incompatible wire versions, or SRV resolution failed.
        """
        server = self._open_and_select(read_preference, address, deprioritized)
        if server is not None:
            return server
        return await self._select_slow(read_preference, deadline, address, deprioritized)

    def _open_and_select(
        self, read_preference: Any, address: Optional[Address], deprioritized: Sequence[Address] = ()
    ) -> Optional[Server]:
        """Open the topology if needed; a suitable server now, or None."""
        if self._closed:
            raise InvalidOperation("Cannot use MongoClient after close")
        if not self._opened:
            self.open_sync()
        candidates = self._candidates(read_preference, address, deprioritized)
        if not candidates:
            return None
        return candidates[0] if len(candidates) == 1 else self._choose(candidates)

    async def select_server_logged(
        self,
        read_preference: Any,
        operation: str,
        operation_id: int,
        *,
        deadline: Optional[float] = None,
        address: Optional[Address] = None,
        deprioritized: Sequence[Address] = (),
    ) -> Server:
        """:meth:`select_server` with the ``amongo.serverSelection`` log messages (the
        executor calls this instead while that logger is enabled for DEBUG): "Server
        selection started", "Waiting for suitable server to become available" (INFO, once,
        when no server is suitable at once), then "Server selection succeeded" or "Server
        selection failed"."""
        fields: Dict[str, Any] = {
            "selector": _logging.selector_text(read_preference, address),
            "operation": operation,
            "operationId": operation_id,
        }
        cid = self.log_client_id
        logger = _logging.SERVER_SELECTION_LOGGER
        _logging.debug(logger, cid, message="Server selection started", clientId=self._topology_id,
                       topologyDescription=repr(self._td), **fields)
        try:
            found = self._open_and_select(read_preference, address, deprioritized)
            if found is not None:
                server = found
            else:
                timeout = self.settings.server_selection_timeout
                remaining = timeout if deadline is None else min(timeout, max(0.0, deadline - time.monotonic()))
                if logger.isEnabledFor(_logging.INFO):
                    _logging.info(
                        logger, cid, message="Waiting for suitable server to become available",
                        clientId=self._topology_id, topologyDescription=repr(self._td),
                        remainingTimeMS=int(remaining * 1000), **fields,
                    )
                server = await self._select_slow(read_preference, deadline, address, deprioritized)
        except Exception as exc:
            if logger.isEnabledFor(_logging.DEBUG):
                _logging.debug(logger, cid, message="Server selection failed", clientId=self._topology_id,
                               topologyDescription=repr(self._td), failure=repr(exc), **fields)
            raise
        if logger.isEnabledFor(_logging.DEBUG):
            _logging.debug(logger, cid, message="Server selection succeeded", clientId=self._topology_id,
                           topologyDescription=repr(self._td), serverHost=server.address[0],
                           serverPort=server.address[1], **fields)
        return server

    def _choose(self, candidates: List[Server]) -> Server:
        sds = [s.description for s in candidates]
        counts = {s.address: s.operation_count for s in candidates}
        chosen = choose_in_window(sds, counts)
        return self.servers.get(chosen.address) or candidates[0]

    async def _select_slow(
        self,
        read_preference: Any,
        deadline: Optional[float],
        address: Optional[Address],
        deprioritized: Sequence[Address] = (),
    ) -> Server:
        timeout = self.settings.server_selection_timeout
        now = time.monotonic()
        if deadline is None or deadline > now + timeout:
            deadline = now + timeout
            shown = timeout
        else:
            shown = max(0.0, deadline - now)
        while True:
            if self._closed:
                raise InvalidOperation("Cannot use MongoClient after close")
            if self._srv_error is not None:
                raise self._srv_error
            candidates = self._candidates(read_preference, address, deprioritized)
            if candidates:
                return candidates[0] if len(candidates) == 1 else self._choose(candidates)
            self._request_checks()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(read_preference, address, shown)
            event = self._changed
            assert event is not None
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    def _timeout_error(
        self, read_preference: Any, address: Optional[Address], shown: float
    ) -> ServerSelectionTimeoutError:
        return ServerSelectionTimeoutError(
            f"{self._error_message(read_preference, address)}, Timeout: {_fmt_seconds(shown)}s, "
            f"Topology Description: {self._td!r}"
        )

    # -- synchronous selection (the client's topology properties) ------------------------------
    def open_nowait(self) -> None:
        """Start monitoring if an event loop is running (PyMongo's ``_get_topology()``, as
        the non-waiting topology properties do); otherwise nothing happens yet."""
        if self._opened or self._closed:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.open_sync()

    def _prepare_sync(self) -> None:
        if self._opened:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # No loop: publish the opening events and create the Servers (paused pools,
            # monitors not started); :meth:`open` starts the monitors later.
            self._publish_opening()
            s = self.settings
            if not (s.srv_fqdn and not s.seeds) or self._srv_resolved:
                self._sync_servers(None, self._td)
            return
        self.open_sync()

    def _resolve_srv_sync(self, deadline: float) -> None:
        """``mongodb+srv``: resolve SRV/TXT now, blocking (dnspython's :mod:`dns.resolver`;
        an injected resolver must answer without suspending), unless already resolved."""
        s = self.settings
        if not (s.srv_fqdn and not s.seeds) or self._srv_resolved:
            return
        from amongo import srv as _srv
        from amongo.topology import sync_probe

        if s.srv_resolver is None:
            hosts, txt = sync_probe.resolve_srv_sync(
                s.srv_fqdn,
                srv_service_name=s.srv_service_name,
                srv_max_hosts=s.srv_max_hosts,
                lifetime=max(deadline - time.monotonic(), 0.001),
            )
        else:
            hosts, txt = sync_probe.run_coroutine_sync(
                _srv.resolve_srv(
                    s.srv_fqdn,
                    srv_service_name=s.srv_service_name,
                    srv_max_hosts=s.srv_max_hosts,
                    resolver=s.srv_resolver,
                )
            )
        if self._srv_resolved or self._closed:
            return
        self._publish_opening()
        self._apply_srv_result(hosts, txt)

    def apply_description_sync(self, sd: ServerDescription) -> None:
        """Apply a successful check made outside the monitors (the blocking discovery of
        :meth:`select_server_sync`): the monitors' code path, minus awaiting."""
        self._on_check_success(sd)

    def apply_check_failure_sync(self, address: Address, previous: ServerDescription, error: BaseException) -> None:
        """Apply a failed check made outside the monitors (see :meth:`apply_description_sync`)."""
        self._on_check_failure(
            address,
            previous,
            error,
            is_network=not isinstance(error, (OperationFailure, ConfigurationError)),
            is_timeout=isinstance(error, NetworkTimeout),
        )

    def select_server_sync(self, read_preference: Any = None) -> Server:
        """:meth:`select_server` for synchronous callers (the client's ``address``,
        ``is_primary`` and ``is_mongos``, which wait like Motor's).

        Answers from the current description when it can (no I/O).  Otherwise it runs a
        **blocking** discovery bounded by ``serverSelectionTimeoutMS``
        (:func:`amongo.topology.sync_probe.run_discovery`: blocking sockets, and for
        ``mongodb+srv`` a blocking DNS lookup), applying each result as a monitor's would;
        the event loop does not run meanwhile, as with Motor, whose properties block the
        loop's thread in PyMongo's server selection.

        :raises ServerSelectionTimeoutError: no suitable server in time (PyMongo's message,
            ending with the topology description).
        :raises ConfigurationError: incompatible wire versions, or SRV resolution failed.
        :raises InvalidOperation: the topology is closed.
        """
        if self._closed:
            raise InvalidOperation("Cannot use MongoClient after close")
        self._prepare_sync()
        candidates = self._candidates(read_preference, None)
        if candidates:
            return candidates[0] if len(candidates) == 1 else self._choose(candidates)
        if self._srv_error is not None:
            raise self._srv_error
        timeout = self.settings.server_selection_timeout
        deadline = time.monotonic() + timeout
        self._resolve_srv_sync(deadline)
        from amongo.topology import sync_probe

        found: List[Server] = []

        def done() -> bool:
            if self._closed:
                raise InvalidOperation("Cannot use MongoClient after close")
            result = self._candidates(read_preference, None)
            if result:
                found[:] = result
                return True
            return False

        sync_probe.run_discovery(
            description=lambda: self._td,
            done=done,
            on_success=self.apply_description_sync,
            on_failure=self.apply_check_failure_sync,
            options=sync_probe.ProbeOptions.from_connection_options(self._connection_options),
            deadline=deadline,
            recheck_interval=min(self.settings.min_heartbeat_frequency, self.settings.heartbeat_frequency),
            check=sync_probe.check_server,
        )
        if found:
            return found[0] if len(found) == 1 else self._choose(found)
        raise self._timeout_error(read_preference, None, timeout)

    def _error_message(self, read_preference: Any, address: Optional[Address]) -> str:
        td = self._td
        errors: List[str] = []
        for sd in td.servers.values():
            if sd.error is not None:
                text = str(sd.error)
                if not text.startswith(f"{sd.address[0]}:"):
                    text = f"{sd.address[0]}:{sd.address[1]}: {text}"
                if text not in errors:
                    errors.append(text)
        if errors:
            return ", ".join(errors)
        if not td.servers:
            return "No servers found yet"
        if address is not None:
            return f"No server available at {address[0]}:{address[1]}"
        ttype = td.topology_type
        if read_preference is None:
            if ttype == TopologyType.Sharded:
                return "No mongoses available for writes"
            if ttype in (TopologyType.ReplicaSetNoPrimary, TopologyType.ReplicaSetWithPrimary):
                return "No primary available for writes"
            return "No servers available for writes"
        if ttype in (TopologyType.ReplicaSetNoPrimary, TopologyType.ReplicaSetWithPrimary):
            return f'No replica set members match selector "{read_preference}"'
        return f'No servers match selector "{read_preference}"'
