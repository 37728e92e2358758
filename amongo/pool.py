"""Connection pool, per the Connection Monitoring and Pooling (CMAP) specification.

One :class:`Pool` per server. It is a plain object driven by the event loop: every decision
(which connection, who waits, who may open a new connection) is made synchronously between
``await`` points, so it needs no lock; I/O (opening, draining) happens afterwards.

Design
------
* **Idle connections** live in a deque, most recently checked in on the right. Check-out
  takes from the right (LIFO keeps hot connections hot) and, when ``maxIdleTimeMS`` is set,
  prunes expired ones from the left. Because ``last_checkin`` only grows left to right, a
  check-out never scans more than the connections it closes.
* **Waiters** are futures in a FIFO deque. A resource is *reserved* the moment it is handed
  out: the first live waiter's future gets either the connection itself or the
  :data:`_CREATE` permit (a slot under ``maxPoolSize`` and ``maxConnecting`` already counted
  for it). A waiter whose task was cancelled after the hand-off passes what it got to the
  next waiter (or back to the idle deque). While anyone waits, new check-outs queue behind
  them (fairness), even if a connection is idle at that instant.
* **Fast path**: ready pool, nobody waiting, an idle connection: no lock, no future, no task,
  no timer; events are built only when a CMAP listener is registered.
* **Connections with an unread reply** (``conn.pending_reply``) are never handed out: check-in
  starts one background task that drains the reply under :attr:`PoolOptions.drain_timeout`
  and then makes the connection available, or closes it if draining fails or times out.
  Draining connections count toward ``maxPoolSize``.
* **minPoolSize** is kept by a background task that exists only while the pool is ready and
  below the minimum; it opens at most ``maxConnecting`` connections at once.
* **States**: a pool is created *paused* when ``paused=True``; :meth:`Pool.ready` makes
  it ready; :meth:`Pool.clear` bumps the generation, pauses the pool, fails every waiter with
  :class:`PoolClearedError` and closes idle connections at once; :meth:`Pool.close` closes
  idle connections, fails waiters with :class:`PoolClosedError` and cancels the pool's tasks.
* **Load-balanced mode** (:attr:`PoolOptions.load_balanced`): generations are kept per
  ``service_id`` (a map of service id to ``[generation, connection count]``, dropped when
  the count reaches 0); ``clear(service_id=...)`` neither pauses the pool nor fails waiters.

Connection factory contract
---------------------------
``connect(generation, conn_id)`` must open, handshake and authenticate a connection and
return it with ``conn.id == conn_id`` and ``conn.generation == generation`` (in
load-balanced mode the pool overwrites ``conn.generation`` from its service map once the
handshake has set ``conn.service_id``). ``conn_id`` is the CMAP connection id, allocated by
the pool (1, 2, 3... per pool). The factory runs in a task of its own, which the pool cancels
when :meth:`Pool.clear` is called with ``interrupt_connections=True`` or the pool is closed;
on cancellation it must close its socket and re-raise.

The pool uses of a connection: ``id``, ``generation``, ``service_id``, ``closed``,
``pending_reply``, ``last_checkin`` (set by the pool), ``close()`` (idempotent, never
raises) and ``async drain()``.

Errors
------
:class:`PoolClearedError` (a :class:`~pymongo.errors.AutoReconnect`, so retryable and not an
error that marks the server Unknown), :class:`PoolClosedError` and
:class:`~pymongo.errors.WaitQueueTimeoutError`. The pool adds no error labels: the CMAP spec
only requires that a PoolClearedError be *retryable*; the executor labels connection
failures (``RetryableWriteError`` / ``TransientTransactionError``) as the retryable-writes and
transactions specs say.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine, Deque, Dict, List, Optional, Set, Tuple

from pymongo.errors import AutoReconnect, NetworkTimeout, WaitQueueTimeoutError
from pymongo.monitoring import (
    ConnectionCheckedInEvent,
    ConnectionCheckedOutEvent,
    ConnectionCheckOutFailedEvent,
    ConnectionCheckOutStartedEvent,
    ConnectionClosedEvent,
    ConnectionCreatedEvent,
    ConnectionReadyEvent,
    PoolClearedEvent,
    PoolClosedEvent,
    PoolCreatedEvent,
    PoolReadyEvent,
)

from amongo import _csot, _logging
from amongo.monitoring import EventListeners

__all__ = ["Pool", "PoolOptions", "PoolClearedError", "PoolClosedError", "PoolState"]

_monotonic = time.monotonic
_publish = EventListeners.publish
_conn_log_enabled = _logging.CONNECTION_LOGGER.isEnabledFor
_DEBUG = _logging.DEBUG

# ConnectionClosedEvent reasons.
_STALE = "stale"
_IDLE = "idle"
_ERROR = "error"
_POOL_CLOSED = "poolClosed"
# ConnectionCheckOutFailedEvent reasons.
_TIMEOUT_REASON = "timeout"
_CONN_ERROR = "connectionError"


class PoolClearedError(AutoReconnect):
    """Checking out failed because the pool is paused (it was cleared and not yet marked
    ready again), or an in-use/pending connection was interrupted by a clear.

    Retryable; it does not mark the server Unknown (CMAP). Subclass of
    :exc:`pymongo.errors.AutoReconnect`, as PyMongo raises ``AutoReconnect`` in this case.
    """


class PoolClosedError(AutoReconnect):
    """Checking out failed because the pool was closed (the server left the topology or the
    client was closed). Subclass of :exc:`pymongo.errors.AutoReconnect`: the operation never
    reached the server, so selecting another server and retrying is safe."""


class PoolState:
    """The three CMAP pool states."""

    PAUSED = 0
    READY = 1
    CLOSED = 2


_PAUSED = PoolState.PAUSED
_READY = PoolState.READY
_CLOSED = PoolState.CLOSED


class _Signal:
    """A sentinel put in a waiter's future instead of a connection."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


_CREATE = _Signal("CREATE")  # a slot was reserved for the waiter: it opens a connection
_TIMEOUT = _Signal("TIMEOUT")
_CLEARED = _Signal("CLEARED")
_CLOSED_SIGNAL = _Signal("CLOSED")


class PoolOptions:
    """Connection pool options (the URI's ``maxPoolSize``, ``minPoolSize``,
    ``maxIdleTimeMS``, ``maxConnecting``, ``waitQueueTimeoutMS``).

    :param max_pool_size: most connections (idle + in use + being opened + draining);
        0 or ``None`` means unlimited.
    :param min_pool_size: connections kept open in the background while the pool is ready.
    :param max_idle_time_ms: idle connections older than this are closed on check-out.
    :param max_connecting: most connections being opened at once.
    :param wait_queue_timeout_ms: default check-out wait bound (``None``: unbounded).
    :param load_balanced: per-``service_id`` generations (load-balancer mode).
    :param drain_timeout: seconds allowed to read and discard an interrupted reply before a
        checked-in connection is closed instead of reused.
    """

    __slots__ = (
        "max_pool_size",
        "min_pool_size",
        "max_idle_time_ms",
        "max_connecting",
        "wait_queue_timeout_ms",
        "load_balanced",
        "drain_timeout",
    )

    def __init__(
        self,
        max_pool_size: Optional[int] = 100,
        min_pool_size: int = 0,
        max_idle_time_ms: Optional[int] = None,
        max_connecting: int = 2,
        wait_queue_timeout_ms: Optional[int] = None,
        *,
        load_balanced: bool = False,
        drain_timeout: float = 5.0,
    ) -> None:
        if max_connecting is None or max_connecting < 1:
            raise ValueError("max_connecting must be at least 1")
        if min_pool_size < 0:
            raise ValueError("min_pool_size must be >= 0")
        self.max_pool_size = max_pool_size
        self.min_pool_size = min_pool_size
        self.max_idle_time_ms = max_idle_time_ms
        self.max_connecting = max_connecting
        self.wait_queue_timeout_ms = wait_queue_timeout_ms
        self.load_balanced = load_balanced
        self.drain_timeout = drain_timeout

    @property
    def non_default_options(self) -> Dict[str, Any]:
        """The options that differ from the defaults, with their URI names (the
        ``PoolCreatedEvent.options`` value)."""
        opts: Dict[str, Any] = {}
        if self.max_pool_size != 100:
            opts["maxPoolSize"] = self.max_pool_size
        if self.min_pool_size:
            opts["minPoolSize"] = self.min_pool_size
        if self.max_idle_time_ms is not None:
            opts["maxIdleTimeMS"] = self.max_idle_time_ms
        if self.max_connecting != 2:
            opts["maxConnecting"] = self.max_connecting
        if self.wait_queue_timeout_ms is not None:
            opts["waitQueueTimeoutMS"] = self.wait_queue_timeout_ms
        return opts

    def __repr__(self) -> str:
        return f"PoolOptions({self.non_default_options!r})"


Connect = Callable[[int, int], Coroutine[Any, Any, Any]]


class Pool:
    """The connections to one server (CMAP).

    :param address: ``(host, port)`` of the server.
    :param options: :class:`PoolOptions`.
    :param connect: ``connect(generation, conn_id)`` opens, handshakes and returns a
        connection (see the module docstring).
    :param listeners: :class:`~amongo.monitoring.EventListeners` to publish CMAP events to.
    :param paused: start paused, as CMAP specifies (the topology passes ``True`` and calls
        :meth:`ready` after a successful server check); the default ``False`` starts ready.
    :param populate_error_handler: called with the exception when opening a connection in
        the background (minPoolSize) fails; SDAM's handler for pre-handshake errors.
    :param log_client_id: ``id()`` of the client, carried by the ``amongo.connection`` log
        messages.
    """

    __slots__ = (
        "address",
        "options",
        "_connect",
        "_listeners",
        "_emit_events",
        "_cmap_events",
        "_cmap_logged",
        "_state",
        "_generation",
        "_services",
        "_idle",
        "_waiters",
        "_in_use",
        "_total",
        "_pending",
        "_draining",
        "_next_id",
        "_max_size",
        "_min_size",
        "_max_connecting",
        "_max_idle",
        "_wait_queue_timeout",
        "_connecting",
        "_tasks",
        "_fill_task",
        "_fill_wakeup",
        "_populate_error_handler",
        "_fill_pending",
    )

    def __init__(
        self,
        address: Tuple[str, int],
        options: PoolOptions,
        connect: Connect,
        listeners: Optional[EventListeners] = None,
        *,
        paused: bool = False,
        populate_error_handler: Optional[Callable[[BaseException], None]] = None,
        log_client_id: int = 0,
    ) -> None:
        self.address = address
        self.options = options
        self._connect = connect
        self._listeners = listeners
        self._emit_events = bool(listeners is not None and listeners.enabled_for_cmap)
        self._cmap_events: List[Any] = listeners.cmap if listeners is not None else []
        # The same listeners plus the ``amongo.connection`` log messages (used while that
        # logger is enabled for DEBUG; checked at each event, so logging can be switched on
        # and off at run time).
        self._cmap_logged: List[Any] = [*self._cmap_events, _logging.CmapLogListener(log_client_id, address)]
        self._state = _PAUSED if paused else _READY
        self._generation = 0
        # load-balanced mode: service_id -> [generation, connection count]
        self._services: Dict[Any, List[int]] = {}
        self._idle: Deque[Any] = deque()
        self._waiters: Deque[asyncio.Future[Any]] = deque()
        self._in_use: Dict[int, Any] = {}
        self._total = 0  # idle + in use + reserved/pending + draining
        self._pending = 0  # being opened (or reserved to be opened)
        self._draining = 0
        self._next_id = 1
        mps = options.max_pool_size
        self._max_size: Optional[int] = mps if mps else None
        self._min_size = options.min_pool_size
        if self._max_size is not None and self._min_size > self._max_size:
            self._min_size = self._max_size
        self._max_connecting = options.max_connecting
        mit = options.max_idle_time_ms
        self._max_idle: Optional[float] = mit / 1000.0 if mit else None
        wq = options.wait_queue_timeout_ms
        self._wait_queue_timeout: Optional[float] = wq / 1000.0 if wq else None
        # connect task -> None, or the error class to raise if the pool cancelled it.
        self._connecting: Dict[asyncio.Task[Any], Optional[type]] = {}
        self._tasks: Set[asyncio.Task[Any]] = set()  # drain tasks
        self._fill_task: Optional[asyncio.Task[Any]] = None
        self._fill_wakeup: Optional[asyncio.Future[Any]] = None
        self._populate_error_handler = populate_error_handler
        self._fill_pending = 0  # connections the minPoolSize task is opening (unclaimed)
        if self._emit:
            _publish(self._cmap, "pool_created", PoolCreatedEvent(address, options.non_default_options))
        if self._state is _READY:
            self._maybe_fill()

    @property
    def _emit(self) -> bool:
        """Whether CMAP events are wanted: by a listener, or for ``amongo.connection`` logs."""
        return self._emit_events or _conn_log_enabled(_DEBUG)

    @property
    def _cmap(self) -> List[Any]:
        return self._cmap_logged if _conn_log_enabled(_DEBUG) else self._cmap_events

    # ------------------------------------------------------------------ introspection
    @property
    def generation(self) -> int:
        """The pool's generation (non-load-balanced); bumped by every :meth:`clear`."""
        return self._generation

    def generation_for(self, service_id: Any) -> int:
        """The generation connections to *service_id* get (load-balanced mode)."""
        if service_id is None or not self.options.load_balanced:
            return self._generation
        entry = self._services.get(service_id)
        return entry[0] if entry is not None else self._generation

    @property
    def state(self) -> int:
        """One of :class:`PoolState`."""
        return self._state

    @property
    def closed(self) -> bool:
        """Whether the pool is closed (CMAP state ``closed``)."""
        return self._state is _CLOSED

    @property
    def paused(self) -> bool:
        """Whether the pool is paused (CMAP state ``paused``: its server is not known usable)."""
        return self._state is _PAUSED

    @property
    def total_connections(self) -> int:
        """Connections counted toward maxPoolSize (idle, in use, opening, draining)."""
        return self._total

    @property
    def available_connections(self) -> int:
        """Idle connections ready to be checked out."""
        return len(self._idle)

    @property
    def pending_connections(self) -> int:
        """Connections being opened (or reserved to be opened)."""
        return self._pending

    @property
    def draining_connections(self) -> int:
        """Checked-in connections whose interrupted reply is being read and discarded."""
        return self._draining

    @property
    def in_use_connections(self) -> int:
        """Checked-out connections."""
        return len(self._in_use)

    @property
    def waiting(self) -> int:
        """Check-outs waiting in the queue (cancelled ones included until removed)."""
        return len(self._waiters)

    def __repr__(self) -> str:
        return (
            f"<Pool {self.address!r} state={self._state} gen={self._generation} "
            f"total={self._total} idle={len(self._idle)} pending={self._pending} "
            f"draining={self._draining} waiting={len(self._waiters)}>"
        )

    # ------------------------------------------------------------------ check-out
    def checkout_now(self) -> Any:
        """An idle connection if :meth:`checkout` would return one without waiting and with
        nothing to report (no CMAP event listener, nobody queued, no idle-time pruning or
        minPoolSize filling due), else None: then await :meth:`checkout`."""
        idle = self._idle
        if (
            not idle
            or self._waiters  # (first: under load the queue is what sends callers to checkout)
            or self._state is not _READY
            or self._max_idle is not None
            or (self._total < self._min_size and self._fill_task is None)
            or self._emit_events or _conn_log_enabled(_DEBUG)  # (self._emit, inline)
        ):
            return None
        conn = idle[-1]
        if conn.closed or conn.generation != self._generation or self.options.load_balanced:
            return None  # (the slow path discards it, or picks the service's generation)
        idle.pop()
        self._in_use[conn.id] = conn
        return conn

    async def checkout(self, timeout: Optional[float] = None) -> Any:
        """Check out a connection (CMAP ``checkOut``).

        :param timeout: seconds to wait for a connection; ``None`` uses the remaining
            operation deadline (``pymongo.timeout()``) if one is set, else
            ``waitQueueTimeoutMS``, else waits without bound. Opening a new connection is
            bounded by the connection's own timeouts, not by this one.
        :raises PoolClearedError: the pool is paused or was cleared while waiting.
        :raises PoolClosedError: the pool is closed.
        :raises pymongo.errors.WaitQueueTimeoutError: no connection within *timeout*.
        """
        # One coroutine, waiting included: a queued check-out (1000 tasks on 100
        # connections) holds one frame, not three, and resumes through one.
        emit = self._emit_events or _conn_log_enabled(_DEBUG)  # (self._emit, inline)
        started = _monotonic() if emit else 0.0
        if emit:
            _publish(self._cmap, "connection_check_out_started", ConnectionCheckOutStartedEvent(self.address))
        if self._total < self._min_size and self._fill_task is None:
            self._maybe_fill()
        # Fast path: ready, nobody queued ahead of us, an idle connection.
        if self._state is _READY and not self._waiters:
            idle = self._idle
            if idle:
                if self._max_idle is not None:
                    self._prune_idle()
                while idle:
                    conn = idle.pop()
                    reason = self._perished(conn)
                    if reason is None:
                        self._in_use[conn.id] = conn
                        if emit:
                            _publish(
                                self._cmap,
                                "connection_checked_out",
                                ConnectionCheckedOutEvent(self.address, conn.id, _monotonic() - started),
                            )
                        return conn
                    self._discard(conn, reason)
                self._after_discard()
        deadline: Optional[float] = None
        have_deadline = False
        waiters = self._waiters
        while True:
            state = self._state
            if state is not _READY:
                raise self._fail_state(state, started)
            result: Any = None
            if not waiters:
                result = self._take_idle()
                if result is None and self._has_slot():
                    self._total += 1
                    self._pending += 1
                    result = _CREATE
            if result is None:
                # Queue as a waiter: the future gets a connection or _CREATE (or a signal).
                if not have_deadline:
                    have_deadline = True
                    if timeout is None:
                        timeout = _csot.remaining()
                        if timeout is None:
                            timeout = self._wait_queue_timeout
                    deadline = None if timeout is None else _monotonic() + timeout
                loop = asyncio.get_running_loop()
                handle = None
                if deadline is not None:
                    delay = deadline - _monotonic()
                    if delay <= 0:
                        raise self._timeout_error(started, timeout)
                    fut: asyncio.Future[Any] = loop.create_future()
                    waiters.append(fut)
                    handle = loop.call_at(loop.time() + delay, self._expire_waiter, fut)
                else:
                    fut = loop.create_future()
                    waiters.append(fut)
                try:
                    result = await fut
                except BaseException:
                    # Cancelled (or the loop is shutting down). If something was handed to us
                    # in the meantime, pass it on.
                    if fut.done() and not fut.cancelled():
                        self._release(fut.result())
                    else:
                        try:
                            waiters.remove(fut)
                        except ValueError:
                            pass
                    raise
                finally:
                    if handle is not None:
                        handle.cancel()
                if result is _TIMEOUT or result is _CLEARED or result is _CLOSED_SIGNAL:
                    raise self._signal_error(result, started, timeout)
            if result is _CREATE:
                try:
                    conn = await self._open_reserved()
                except BaseException as exc:
                    if self._emit:
                        closed = isinstance(exc, PoolClosedError)
                        self._emit_checkout_failed(_POOL_CLOSED if closed else _CONN_ERROR, started)
                    raise
                # A fresh connection is never perished, but the pool may have been
                # closed while it was being opened.
                if self._state is _CLOSED:
                    self._discard(conn, _POOL_CLOSED)
                    self._after_discard()
                    continue
            else:
                conn = result
                # Handed to us by another task: re-check, the pool may have been cleared
                # or closed between the hand-off and now.
                if self._state is _CLOSED:
                    self._discard(conn, _POOL_CLOSED)
                    self._after_discard()
                    continue
                if (
                    conn.generation != self._generation or conn.closed
                    or self._max_idle is not None or self.options.load_balanced
                ):  # (else nothing _perished checks can apply: it was just handed over)
                    reason = self._perished(conn)
                    if reason is not None:
                        self._discard(conn, reason)
                        self._after_discard()
                        continue
            self._in_use[conn.id] = conn
            if emit:  # (as decided at the start: a started event gets its checked-out event)
                _publish(
                    self._cmap,
                    "connection_checked_out",
                    ConnectionCheckedOutEvent(self.address, conn.id, _monotonic() - started),
                )
            return conn

    def _signal_error(self, signal: _Signal, started: float, timeout: Optional[float]) -> BaseException:
        """The error a queued check-out raises for *signal* (timeout, cleared, closed)."""
        if signal is _TIMEOUT:
            return self._timeout_error(started, timeout)
        if signal is _CLEARED:
            if self._emit:
                self._emit_checkout_failed(_CONN_ERROR, started)
            return PoolClearedError(f"{self._addr_str()}: connection pool was cleared while waiting for a connection")
        if self._emit:
            self._emit_checkout_failed(_POOL_CLOSED, started)
        return PoolClosedError("Attempted to check out a connection from closed connection pool")

    def _expire_waiter(self, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            fut.set_result(_TIMEOUT)
            try:
                self._waiters.remove(fut)
            except ValueError:
                pass

    def _release(self, result: Any) -> None:
        """Give back what a cancelled waiter had been handed."""
        if result is _CREATE:
            self._total -= 1
            self._pending -= 1
            self._wake()
        elif not isinstance(result, _Signal):
            conn = result
            if self._state is _CLOSED:
                self._discard(conn, _POOL_CLOSED)
                return
            reason = self._perished(conn) or (_ERROR if conn.pending_reply else None)
            if reason is not None:
                self._discard(conn, reason)
                self._after_discard()
            else:
                self._make_available(conn)

    def _fail_state(self, state: int, started: float) -> BaseException:
        if state is _CLOSED:
            if self._emit:
                self._emit_checkout_failed(_POOL_CLOSED, started)
            return PoolClosedError("Attempted to check out a connection from closed connection pool")
        if self._emit:
            self._emit_checkout_failed(_CONN_ERROR, started)
        return PoolClearedError(f"{self._addr_str()}: connection pool paused")

    def _timeout_error(self, started: float, timeout: Optional[float]) -> WaitQueueTimeoutError:
        if self._emit:
            self._emit_checkout_failed(_TIMEOUT_REASON, started)
        if self.options.load_balanced:
            # load-balancers spec: what holds the connections (pinned by cursors/transactions)
            kinds = [getattr(c, "_pinned", False) for c in self._in_use.values()]
            cursors, txns = kinds.count("cursor"), kinds.count("transaction")
            return WaitQueueTimeoutError(
                "Timed out while checking out a connection from connection pool. "
                f"maxPoolSize: {self._max_size or 0}, connections in use by cursors: {cursors}, "
                f"connections in use by transactions: {txns}, "
                f"connections in use by other operations: {len(kinds) - cursors - txns}, "
                f"timeout: {timeout if timeout is not None else 0:.3f}s"
            )
        return WaitQueueTimeoutError(
            "Timed out while checking out a connection from connection pool. "
            f"maxPoolSize: {self._max_size or 0}, timeout: {timeout if timeout is not None else 0:.3f}s, "
            f"in use: {len(self._in_use)}, opening: {self._pending}, draining: {self._draining}"
        )

    def _emit_checkout_failed(self, reason: str, started: float) -> None:
        _publish(
            self._cmap,
            "connection_check_out_failed",
            ConnectionCheckOutFailedEvent(self.address, reason, _monotonic() - started),
        )

    def _addr_str(self) -> str:
        addr = self.address
        if isinstance(addr, tuple) and len(addr) == 2:
            return f"{addr[0]}:{addr[1]}"
        return str(addr)

    def _interrupted_message(self) -> str:
        return f"Connection to {self._addr_str()} interrupted due to server monitor timeout"

    # ------------------------------------------------------------------ opening
    def _has_slot(self) -> bool:
        return (self._max_size is None or self._total < self._max_size) and self._pending < self._max_connecting

    async def _open_reserved(self) -> Any:
        """Open a connection for a slot already counted in ``_total`` and ``_pending``.

        Runs the factory in its own task so that :meth:`clear` (interrupting) and
        :meth:`close` can cancel it without cancelling the caller; the caller then gets
        :class:`PoolClearedError` or :class:`PoolClosedError`.
        """
        conn_id = self._next_id
        self._next_id += 1
        gen = self._generation
        emit = self._emit
        if emit:
            _publish(self._cmap, "connection_created", ConnectionCreatedEvent(self.address, conn_id))
        created = _monotonic()
        task: "asyncio.Task[Any]" = asyncio.get_running_loop().create_task(self._connect(gen, conn_id))
        self._connecting[task] = None
        remaining = _csot.remaining()
        try:
            if remaining is None:
                conn = await task
            else:
                # CSOT bounds check-out, connection establishment included: on expiry the
                # opening goes on in the background and its connection joins the pool.
                try:
                    conn = await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.0))
                except asyncio.TimeoutError:
                    if task.done():
                        # It finished just as the deadline passed (wait_for then raises
                        # TimeoutError anyway): its connection, or its error, as usual.
                        conn = task.result()
                    else:
                        task.add_done_callback(
                            lambda t: self._finish_background_open(t, conn_id, created)
                        )
                        raise NetworkTimeout(
                            f"{self._addr_str()}: timed out while opening a connection "
                            f"(timeoutMS expired after {remaining * 1000:.0f} ms)"
                        ) from None
        except NetworkTimeout as exc:
            if task in self._connecting and not task.done():
                raise  # handed to the background (above)
            return await self._open_failed(task, exc, conn_id, emit)
        except BaseException as exc:
            interrupted = self._connecting.pop(task, None)
            if task.done() and not task.cancelled() and task.exception() is None:
                # The connection was opened but our caller was cancelled: keep it.
                conn = task.result()
                self._opened(conn, conn_id, created)
                self._offer(conn)
                self._pending_dropped()
                raise
            self._pending -= 1
            self._total -= 1
            if emit:
                _publish(self._cmap, "connection_closed", ConnectionClosedEvent(self.address, conn_id, _ERROR))
            self._pending_dropped()
            if interrupted is not None and isinstance(exc, asyncio.CancelledError) and task.cancelled():
                cur = asyncio.current_task()
                cancelling = getattr(cur, "cancelling", None)
                if cancelling is None or not cancelling():
                    if interrupted is PoolClosedError:
                        raise PoolClosedError("Connection pool was closed while opening a connection") from None
                    raise PoolClearedError(self._interrupted_message()) from None
            raise
        self._connecting.pop(task, None)
        self._opened(conn, conn_id, created)
        self._pending_dropped()
        return conn

    async def _open_failed(self, task: Any, exc: BaseException, conn_id: int, emit: bool) -> Any:
        # (a NetworkTimeout raised by the factory itself: same accounting as any failure)
        self._connecting.pop(task, None)
        self._pending -= 1
        self._total -= 1
        if emit:
            _publish(self._cmap, "connection_closed", ConnectionClosedEvent(self.address, conn_id, _ERROR))
        self._pending_dropped()
        raise exc

    def _finish_background_open(self, task: Any, conn_id: int, created: float) -> None:
        """Completion of an opening whose check-out gave up (CSOT): pool the connection."""
        self._connecting.pop(task, None)
        if task.cancelled() or task.exception() is not None:
            self._pending -= 1
            self._total -= 1
            if self._emit:
                _publish(self._cmap, "connection_closed", ConnectionClosedEvent(self.address, conn_id, _ERROR))
            self._pending_dropped()
            return
        conn = task.result()
        self._opened(conn, conn_id, created)
        self._offer(conn)
        self._pending_dropped()

    def _opened(self, conn: Any, conn_id: int, created: float) -> None:
        """Accounting once the factory returned *conn*."""
        self._pending -= 1
        if self.options.load_balanced:
            sid = getattr(conn, "service_id", None)
            if sid is not None:
                entry = self._services.get(sid)
                if entry is None:
                    entry = self._services[sid] = [self._generation, 0]
                entry[1] += 1
                conn.generation = entry[0]
        if self._emit:
            _publish(
                self._cmap,
                "connection_ready",
                ConnectionReadyEvent(self.address, conn_id, _monotonic() - created),
            )

    def _pending_dropped(self) -> None:
        """``_pending`` went down: a queued check-out or the filler may proceed."""
        w = self._fill_wakeup
        if w is not None:
            self._fill_wakeup = None
            if not w.done():
                w.set_result(None)
        self._wake()

    def _offer(self, conn: Any) -> None:
        """Make a connection not held by anyone available, or close it if it perished."""
        if self._state is _CLOSED:
            self._discard(conn, _POOL_CLOSED)
            return
        reason = self._perished(conn) or (_ERROR if conn.pending_reply else None)
        if reason is not None:
            self._discard(conn, reason)
            self._after_discard()
            return
        conn.last_checkin = _monotonic()
        self._make_available(conn)

    # ------------------------------------------------------------------ idle set
    def _perished(self, conn: Any) -> Optional[str]:
        """The ConnectionClosedEvent reason if *conn* may not be used, else ``None``."""
        if self.options.load_balanced and conn.service_id is not None:
            entry = self._services.get(conn.service_id)
            gen = entry[0] if entry is not None else self._generation
        else:
            gen = self._generation
        if conn.generation != gen:
            return _STALE
        if conn.closed:
            return _ERROR
        max_idle = self._max_idle
        if max_idle is not None and _monotonic() - conn.last_checkin > max_idle:
            return _IDLE
        return None

    def _prune_idle(self) -> None:
        """Close idle connections past maxIdleTimeMS (the oldest are on the left)."""
        idle = self._idle
        limit = _monotonic() - self._max_idle  # type: ignore[operator]
        closed = False
        while idle and idle[0].last_checkin < limit:
            self._discard(idle.popleft(), _IDLE)
            closed = True
        if closed:
            self._after_discard()

    def _take_idle(self) -> Any:
        """Pop a usable idle connection (closing perished ones), or ``None``."""
        idle = self._idle
        if not idle:
            return None
        if self._max_idle is not None:
            self._prune_idle()
        discarded = False
        conn = None
        while idle:
            c = idle.pop()
            reason = self._perished(c)
            if reason is None:
                conn = c
                break
            self._discard(c, reason)
            discarded = True
        if discarded:
            self._maybe_fill()
        return conn

    def _make_available(self, conn: Any) -> None:
        """Hand a usable connection to the first live waiter, else put it in the deque."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self._idle.append(conn)

    def _wake(self) -> None:
        """Serve queued check-outs with idle connections or new-connection slots."""
        waiters = self._waiters
        if not waiters or self._state is not _READY:
            return
        while waiters:
            fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            conn = self._take_idle()
            if conn is not None:
                waiters.popleft()
                fut.set_result(conn)
                continue
            if self._fill_pending >= len(waiters):
                # Connections the minPoolSize task is opening will serve the queue: a
                # check-out blocked by maxConnecting takes one of those rather than opening
                # yet another (CMAP, pool-checkout-minPoolSize-connection-maxConnecting).
                break
            if self._has_slot():
                waiters.popleft()
                self._total += 1
                self._pending += 1
                fut.set_result(_CREATE)
                continue
            break

    def _discard(self, conn: Any, reason: str) -> None:
        """Close *conn* and stop counting it (no waking: see :meth:`_after_discard`)."""
        conn.close()
        self._total -= 1
        if self.options.load_balanced:
            sid = getattr(conn, "service_id", None)
            if sid is not None:
                entry = self._services.get(sid)
                if entry is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        del self._services[sid]
        if self._emit:
            _publish(self._cmap, "connection_closed", ConnectionClosedEvent(self.address, conn.id, reason))

    def _after_discard(self) -> None:
        self._wake()
        self._maybe_fill()

    def use_idle_nowait(self, use: Callable[[Any], None]) -> bool:
        """Check out the most recently used idle connection without waiting, call
        ``use(conn)`` (which must not wait: an unacknowledged send) and check it back in,
        with the CMAP check-out / check-in events; ``False`` (nothing done) when no idle
        connection is usable now.  The client's synchronous ``close()`` sends
        ``endSessions`` this way."""
        idle = self._idle
        if self._state is not _READY or not idle or self._perished(idle[-1]) is not None:
            return False
        emit = self._emit
        started = _monotonic()
        if emit:
            _publish(self._cmap, "connection_check_out_started", ConnectionCheckOutStartedEvent(self.address))
        conn = idle.pop()
        self._in_use[conn.id] = conn
        if emit:
            _publish(self._cmap, "connection_checked_out",
                     ConnectionCheckedOutEvent(self.address, conn.id, _monotonic() - started))
        try:
            use(conn)
        finally:
            self.checkin(conn)
        return True

    # ------------------------------------------------------------------ check-in
    def checkin(self, conn: Any) -> None:
        """Return a checked-out connection (CMAP ``checkIn``). Synchronous, never waits.

        A connection with an unread reply is drained by a background task and made
        available afterwards (or closed if draining fails within
        :attr:`PoolOptions.drain_timeout`).

        :raises ValueError: *conn* is not checked out from this pool (double check-in).
        """
        if self._in_use.pop(conn.id, None) is not conn:
            raise ValueError(f"connection {conn.id} was not checked out from pool {self.address!r}")
        if self._emit_events or _conn_log_enabled(_DEBUG):  # (self._emit, inline)
            _publish(self._cmap, "connection_checked_in", ConnectionCheckedInEvent(self.address, conn.id))
        if (
            conn.generation == self._generation and self._state is _READY and conn.service_id is None
            and not conn.closed and not conn.pending_reply
        ):
            # The common case (usable, current generation, not load-balanced): to the first
            # live waiter, else idle.
            conn.last_checkin = _monotonic()
            self._make_available(conn)
            return
        if self._state is _CLOSED:
            self._discard(conn, _POOL_CLOSED)
            return
        # Not maxIdleTimeMS: it was just in use. In load-balanced mode a connection closed by an
        # error is closed for that error even when the error also cleared its service's
        # connections (load-balancers spec events); otherwise a cleared pool's connection
        # (also one its clear interrupted) is stale.
        stale = conn.generation != (self._generation if conn.service_id is None else
                                    self.generation_for(conn.service_id))
        if conn.closed and (not stale or self.options.load_balanced):
            reason: Optional[str] = _ERROR
        elif stale:
            reason = _STALE
        else:
            reason = None
        if reason is not None:
            self._discard(conn, reason)
            self._after_discard()
            return
        if conn.pending_reply:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # checked in from a finalizer after the loop stopped
                self._discard(conn, _ERROR)
                self._after_discard()
                return
            self._draining += 1
            task = loop.create_task(self._drain(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        conn.last_checkin = _monotonic()
        self._make_available(conn)

    async def _drain(self, conn: Any) -> None:
        """Read and discard *conn*'s outstanding reply, then offer it to the pool."""
        try:
            await asyncio.wait_for(conn.drain(), self.options.drain_timeout)
        except asyncio.CancelledError:
            self._draining -= 1
            if self._state is _CLOSED:
                self._discard(conn, _POOL_CLOSED)
            else:
                self._discard(conn, self._perished(conn) or _ERROR)
                self._after_discard()
            raise
        except Exception:  # failed or timed out: the connection is unusable
            self._draining -= 1
            self._discard(conn, _ERROR)
            self._after_discard()
            return
        self._draining -= 1
        if conn.pending_reply:
            self._discard(conn, _ERROR)
            self._after_discard()
            return
        self._offer(conn)

    # ------------------------------------------------------------------ minPoolSize
    def _maybe_fill(self) -> None:
        """Start the minPoolSize task if the pool is ready, below the minimum and it is not
        running (outside a running loop, e.g. a pool made in a constructor, it starts at the
        next check-out)."""
        if (
            self._min_size
            and self._state is _READY
            and self._fill_task is None
            and self._total < self._min_size
        ):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._fill_task = loop.create_task(self._fill())

    async def _fill(self) -> None:
        """Open connections until ``minPoolSize``, at most ``maxConnecting`` at once."""
        loop = asyncio.get_running_loop()
        running: Set[asyncio.Task[Any]] = set()
        try:
            while self._state is _READY and self._total < self._min_size:
                if not self._has_slot():
                    w = self._fill_wakeup
                    if w is None or w.done():
                        w = self._fill_wakeup = loop.create_future()
                    await w
                    continue
                self._total += 1
                self._pending += 1
                self._fill_pending += 1  # released by _populate_one
                t = loop.create_task(self._populate_one())
                running.add(t)
                t.add_done_callback(running.discard)
                if not self._has_slot() or self._total >= self._min_size:
                    # Wait for one opening to finish before looking again.
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    if any((not d.cancelled()) and d.result() is False for d in done):
                        break
            if running:
                await asyncio.wait(running)
        except asyncio.CancelledError:
            for t in running:
                t.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            if self._fill_task is asyncio.current_task():
                self._fill_task = None

    async def _populate_one(self) -> bool:
        """Open one connection for the pool; ``False`` if it failed."""
        try:
            conn = await self._open_reserved()
        except asyncio.CancelledError:
            self._fill_pending -= 1
            self._wake()
            raise
        except (PoolClearedError, PoolClosedError):
            self._fill_pending -= 1
            self._wake()
            return False  # interrupted by clear()/close(): not a server error
        except Exception as exc:  # noqa: BLE001 - handed to SDAM
            self._fill_pending -= 1
            self._wake()
            handler = self._populate_error_handler
            if handler is not None:
                try:
                    handler(exc)
                except Exception:  # noqa: BLE001
                    pass
            return False
        self._fill_pending -= 1
        self._offer(conn)
        self._wake()
        return True

    # ------------------------------------------------------------------ state changes
    def ready(self) -> None:
        """Mark the pool ready (SDAM does after a successful server check)."""
        if self._state is not _PAUSED:
            return
        self._state = _READY
        if self._emit:
            _publish(self._cmap, "pool_ready", PoolReadyEvent(self.address))
        self._maybe_fill()

    def clear(self, *, interrupt_connections: bool = False, service_id: Any = None) -> None:
        """Mark every current connection stale (CMAP ``clear``).

        Not load-balanced: bump the generation, pause the pool, fail every queued check-out
        with :class:`PoolClearedError` and close idle connections now; in-use ones are
        closed when checked in. With *interrupt_connections*, in-use connections of the old
        generation have their sockets closed now (their operation fails; they are counted
        until checked in) and connections being opened are cancelled.

        Load-balanced with *service_id*: bump that service's generation only; the pool is
        not paused and the queue is not failed.
        """
        if self._state is _CLOSED:
            return
        lb = self.options.load_balanced
        if lb and service_id is not None:
            entry = self._services.get(service_id)
            if entry is not None:
                entry[0] += 1
            if self._emit:
                _publish(
                    self._cmap,
                    "pool_cleared",
                    PoolClearedEvent(self.address, service_id, interrupt_connections),
                )
            self._close_stale_idle()
            if interrupt_connections:
                for conn in list(self._in_use.values()):
                    if conn.service_id == service_id:
                        conn.close()
            self._after_discard()
            return
        self._generation += 1
        for entry in self._services.values():
            entry[0] += 1
        was_ready = self._state is _READY
        if not lb:
            self._state = _PAUSED
        if was_ready and self._emit:
            _publish(
                self._cmap,
                "pool_cleared",
                PoolClearedEvent(self.address, None, interrupt_connections),
            )
        if not lb:
            self._fail_waiters(_CLEARED)
        self._close_stale_idle()
        if interrupt_connections:
            for conn in list(self._in_use.values()):
                conn.close()
            for task, marked in list(self._connecting.items()):
                if marked is None and not task.done():
                    self._connecting[task] = PoolClearedError
                    task.cancel()
        if lb:
            self._after_discard()

    def _close_stale_idle(self) -> None:
        idle = self._idle
        if not idle:
            return
        keep: Deque[Any] = deque()
        while idle:
            conn = idle.popleft()
            reason = self._perished(conn)
            if reason is None:
                keep.append(conn)
            else:
                self._discard(conn, reason)
        self._idle = keep

    def _fail_waiters(self, signal: _Signal) -> None:
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(signal)

    async def close(self) -> None:
        """Close the pool: close idle connections, fail queued check-outs with
        :class:`PoolClosedError`, cancel background work. In-use connections are closed
        when checked in."""
        tasks = self.close_nowait()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def close_nowait(self) -> List["asyncio.Task[Any]"]:
        """Synchronous part of :meth:`close` (used by the client's synchronous ``close()``,
        as Motor's is): everything but waiting for the cancelled background tasks, which are
        returned."""
        if self._state is _CLOSED:
            return []
        self._state = _CLOSED
        idle = self._idle
        while idle:
            self._discard(idle.popleft(), _POOL_CLOSED)
        if self._emit:
            _publish(self._cmap, "pool_closed", PoolClosedEvent(self.address))
        self._fail_waiters(_CLOSED_SIGNAL)
        w = self._fill_wakeup
        if w is not None and not w.done():
            w.cancel()
        self._fill_wakeup = None
        tasks: List[asyncio.Task[Any]] = list(self._tasks)
        if self._fill_task is not None:
            tasks.append(self._fill_task)
        for task, marked in list(self._connecting.items()):
            if marked is None and not task.done():
                self._connecting[task] = PoolClosedError
                task.cancel()
        for t in tasks:
            t.cancel()
        return [t for t in tasks if not t.done()]
