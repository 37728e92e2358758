"""The one executor: select → check out → stamp → send → classify → retry.

Every command amongo sends goes through :meth:`Executor.execute` (an operation value). Nothing else selects a
server, checks out a connection, stamps ``lsid``/``txnNumber``/``$clusterTime``/
``$readPreference``/``readConcern``/API version, or retries. Operations (the facades) only build
the command document and interpret the reply.
"""
from __future__ import annotations

import asyncio
import random
import time
from logging import DEBUG as _DEBUG
from datetime import timedelta as _timedelta
from typing import Any, Awaitable, Callable, Dict, List, Mapping, MutableMapping, Optional, Protocol, Sequence, Set, Tuple, Union

import bson
from bson.codec_options import CodecOptions
from pymongo import monitoring as _pm
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    InvalidOperation,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ProtocolError,
    PyMongoError,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)
from pymongo.read_preferences import ReadPreference

from amongo import _csot
from amongo._logging import COMMAND_LOGGER as _COMMAND_LOGGER
from amongo._logging import SERVER_SELECTION_LOGGER as _SELECTION_LOGGER
from amongo._logging import debug as _log_debug
from amongo._logging import document_json as _document_json
from amongo.connection import Connection, next_request_id
from amongo.server_errors import NOT_PRIMARY_CODES as _NOT_PRIMARY_CODES
from amongo.server_errors import REAUTHENTICATION_REQUIRED as _REAUTHENTICATION_REQUIRED
from amongo.server_errors import RETRYABLE_READ_CODES, RETRYABLE_WRITE_CODES, command_error, write_concern_error
from amongo.engine.clock import ts_newer
from amongo.engine.operation import KillCursors, Operation
from amongo.engine.operations import check_reply_times
from amongo.engine.session import BOUND_SESSION, TXN_IN_PROGRESS, TXN_NONE, TXN_STARTING, ClientSession, ServerSession, SessionCore, retried_commit_write_concern
from amongo.monitoring import EventListeners
from amongo.wire.batching import EncodedArray
from amongo.topology.description import ServerType, TopologyType

from amongo.topology.topology import Server

_SENSITIVE = frozenset(
    {"authenticate", "saslstart", "saslcontinue", "getnonce", "createuser", "updateuser",
     "copydbgetnonce", "copydbsaslstart", "copydb"}
)
_PRIMARY_MODE = 0
_SINGLE = TopologyType.Single
_SHARDED = TopologyType.Sharded
_REPLICA_SET_TYPES = (TopologyType.ReplicaSetWithPrimary, TopologyType.ReplicaSetNoPrimary)
# client-backpressure spec
_MAX_OVERLOAD_RETRIES = 2  # the vendored spec tests (2026-08) retry twice
_BASE_BACKOFF = 0.1
_MAX_BACKOFF = 10.0
_RETRY_TOKEN_RETURN_RATE = 0.1


class TokenBucket:
    """The per-client retry budget of the client-backpressure spec (no lock needed: one loop)."""

    __slots__ = ("capacity", "tokens")

    def __init__(self, capacity: float = 1000.0) -> None:
        self.capacity = capacity
        self.tokens = capacity

    def consume(self, n: float) -> bool:
        """Take *n* tokens if there are that many; returns whether it did (client-backpressure
        specification's retry token bucket).
        """
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False

    def deposit(self, n: float) -> None:
        """Return *n* tokens to the bucket, up to its capacity."""
        self.tokens = min(self.capacity, self.tokens + n)
# Errors raised before anything is written to the socket.
from bson.errors import InvalidDocument as _InvalidDocument  # noqa: E402
from pymongo.errors import DocumentTooLarge as _DocumentTooLarge  # noqa: E402

_CLIENT_SIDE_ERRORS = (_InvalidDocument, _DocumentTooLarge, TypeError, ValueError)
_PRIMARY_PREFERRED = ReadPreference.PRIMARY_PREFERRED
_PRIMARY_TYPE = type(ReadPreference.PRIMARY)
_csot_timeout = _csot.TIMEOUT.get


def _elements(doc: Mapping[str, Any]) -> bytes:
    """*doc*'s fields encoded as BSON elements (concatenable: see ``Connection.command``'s
    *tail*)."""
    return bson.encode(doc)[4:-1]


class Pin:
    """A connection kept checked out for a load-balanced cursor or transaction
    (load-balancers spec, "Connection Pinning"): every later command of that cursor or
    transaction runs on it; :meth:`release` checks it in. A cursor opened inside a pinned
    transaction shares the transaction's connection (held with no pool: never checked in
    by the cursor)."""

    __slots__ = ("kind", "conn", "pool")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "cursor" or "transaction" (the pool's wait-queue timeout message)
        self.conn: Optional[Connection] = None
        self.pool: Any = None

    def hold(self, conn: Connection, pool: Any) -> None:
        """Pin *conn* (checked out of *pool*) to this cursor or transaction."""
        self.conn, self.pool = conn, pool
        if pool is not None:
            conn._pinned = self.kind

    def release(self) -> None:
        """Check the connection in (idempotent)."""
        conn, pool = self.conn, self.pool
        self.conn = self.pool = None
        if conn is not None and pool is not None:
            conn._pinned = False
            pool.checkin(conn)


class _NoScope:
    """``async with`` that does nothing (contextlib.nullcontext is async only from 3.10)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: Any) -> None:
        return None


_NO_SCOPE = _NoScope()


def _is_sensitive(name: str, cmd: Mapping[str, Any]) -> bool:
    lname = name.lower()
    if lname in _SENSITIVE:
        return True
    if lname in ("hello", "ismaster") and "speculativeAuthenticate" in cmd:
        return True
    return False


class ExecutorCore(SessionCore, Protocol):
    """What the executor reads from its client's core (:class:`amongo.engine.core.ClientCore`,
    which imports this module)."""

    topology: Any
    listeners: EventListeners
    retry_writes: bool
    retry_reads: bool
    timeout: Optional[float]
    server_api_doc: Optional[Dict[str, Any]]
    cluster_time: Optional[Mapping[str, Any]]

    def implicit_session(self) -> ClientSession:
        """A new implicit session (ended by the caller)."""
        ...
    max_adaptive_retries: Optional[int]
    write_caps: Callable[[], Optional[Tuple[int, int, int]]]


class WrongEventLoopError(InvalidOperation, RuntimeError):
    """A client was used from another event loop than the one it runs on (PyMongo raises a
    RuntimeError with the same message; this is also an InvalidOperation)."""

    def __init__(self, client_name: str) -> None:
        super().__init__(
            f"Cannot use {client_name} in different event loop. {client_name} uses low-level asyncio "
            "APIs that bind it to the event loop it was first used on (its connections and "
            "monitors run there); create one client per event loop")


class Executor:
    """Runs commands for one client (internal; no Motor equivalent)."""

    __slots__ = ("_core", "topology", "listeners", "_server_api_doc", "_retry_writes", "_retry_reads", "_timeout", "_tokens",
                 "_max_overload_retries", "_tracing", "load_balanced", "_kill_tasks",
                 "implicit_session", "_api_elements", "_rp_elements", "_ct_element", "_ct_reply")

    def __init__(self, core: ExecutorCore) -> None:
        self._core = core
        self.topology = core.topology
        self.listeners = core.listeners
        self._server_api_doc = core.server_api_doc
        # Pre-encoded command parts (see _stamp): the API version, $readPreference by read
        # preference object, the client's $clusterTime while it is the same document.
        self._api_elements = _elements(core.server_api_doc) if core.server_api_doc else b""
        self._rp_elements: Dict[int, Tuple[Any, bytes]] = {}
        self._ct_element: Tuple[Any, bytes] = (None, b"")
        # (the client's clock, and a reply's encoded $clusterTime already compared with it)
        self._ct_reply: Tuple[Any, bytes] = (None, b"")
        self._retry_writes = core.retry_writes
        self._retry_reads = core.retry_reads
        self._timeout = core.timeout
        self._tokens = TokenBucket()
        mar = core.max_adaptive_retries
        self._max_overload_retries = int(mar if mar is not None else _MAX_OVERLOAD_RETRIES)
        self._tracing = core.tracing  # amongo.tracing.Tracing, or None (disabled)
        self.load_balanced = bool(core.topology.settings.load_balanced)  # connections are pinned
        self._kill_tasks: Set["asyncio.Task[Any]"] = set()
        #: a new implicit session (the core's bound method: no extra call per operation)
        self.implicit_session: Callable[[], ClientSession] = core.implicit_session

    def execute(
        self, op: Operation, session: Optional[ClientSession] = None,
        result_address: Optional[List[Any]] = None,
    ) -> Awaitable[Dict[str, Any]]:
        """Run the operation *op* (:mod:`amongo.engine.operation`) on a suitable server; await
        the result for its reply (``op.handle`` is left to the caller, which may need the
        raw reply). The server that answered is ``op.server_address`` afterwards (and is
        appended to *result_address* if given).

        (A plain function returning the coroutine: one frame less on every operation's
        await chain.)
        """
        coro = self._command(op, session, result_address)
        if self._tracing is not None:  # OpenTelemetry operation span (amongo/tracing.py)
            coro = self._tracing.operation(coro, op.dbname, op.preview(), session, op.is_txn_finish)
        if self._timeout is not None and _csot.get_timeout() is None:
            return self._within_client_timeout(coro)
        return coro

    def bound_session(self) -> Optional[ClientSession]:
        """The session bound by ``async with session.bind():`` around this call, if any
        (PyMongo's implicit session binding); another client's bound session is an error."""
        bound = BOUND_SESSION.get()
        return None if bound is None else self._check_bound(bound)

    def _check_bound(self, bound: ClientSession) -> ClientSession:
        if bound._core is not self._core:
            raise InvalidOperation(
                "Only the client that created the bound session can perform operations within"
                " its context block."
            )
        return bound

    def schedule_kill_cursor(self, address: Tuple[str, int], dbname: str, coll: str, cursor_id: int,
                             session: Optional[ClientSession]) -> None:
        """Kill a cursor in the background (its owner was garbage-collected or rewound; a
        synchronous caller): nothing once the client is closed or outside a running loop.
        An implicit *session* is ended afterwards."""
        if self.topology._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._kill_cursor(KillCursors(dbname, coll, [cursor_id], address), session))
        self._kill_tasks.add(task)
        task.add_done_callback(self._kill_tasks.discard)

    async def _kill_cursor(self, op: "KillCursors", session: Optional[ClientSession]) -> None:
        try:
            await self.execute(op, session)
        except Exception:
            pass
        finally:
            if session is not None and session._implicit:
                session._end_implicit()

    def write_caps(self) -> Optional[Tuple[int, int, int]]:
        """Caps on the limits bulk writes split by (:attr:`ClientCore.write_caps`)."""
        return self._core.write_caps()

    @property
    def timeout(self) -> Optional[float]:
        """The client's ``timeoutMS`` in seconds (None: no client-wide deadline)."""
        return self._timeout

    async def _within_client_timeout(self, coro: Awaitable[Dict[str, Any]]) -> Dict[str, Any]:
        """Run *coro* under the client's ``timeoutMS`` (CSOT) deadline."""
        with _csot._TimeoutContext(self._timeout):
            return await coro

    async def _command(
        self, op: Operation, session: Optional[ClientSession], result_address: Optional[List[Any]],
    ) -> Dict[str, Any]:
        # The operation's data, read once (slots and class attributes: no calls).
        read_preference = op.read_preference
        retryable_read = op.retryable_read
        retryable_write = op.retryable_write
        unacknowledged = op.unacknowledged
        address = op.address
        is_txn_finish = op.is_txn_finish
        run_command = op.run_command
        pin = op.pin
        exhaust = op.exhaust_allowed
        dbname = op.dbname
        codec_options = op.codec_options
        check = op.check
        core = self._core
        topology = self.topology
        if topology._loop is not None and topology._loop is not asyncio.get_running_loop():
            raise WrongEventLoopError(type(core.owner).__name__)
        # The implicit session of an operation that brings none (insert_one, update_one...):
        # a pooled server session used directly, without a ClientSession object (it has no
        # transaction, no causal consistency, and nobody reads its cluster/operation time).
        implicit: Optional[ServerSession] = None
        if session is None or session._implicit:
            bound = BOUND_SESSION.get()
            if bound is not None:  # inside ``async with session.bind():``
                session = self._check_bound(bound)
        if op.write_aggregate and read_preference is not None and read_preference.mode != _PRIMARY_MODE:
            read_preference = await self._write_read_preference(read_preference)
        if session is not None and session._implicit:
            # An implicit session made by the caller (find_one, cursors): only its lsid and
            # times matter (it never has a transaction; the caller ends it).
            if unacknowledged:
                session = None
            in_txn = False
        elif session is not None:
            if session._core is not core:
                raise InvalidOperation("Can only use session with the MongoClient that started it")
            session._check_ended()
            if session.callback_timeout is not None:  # inside a with_transaction callback under CSOT
                session.check_callback_timeout()
            if unacknowledged:
                raise ConfigurationError("Explicit sessions are incompatible with unacknowledged write concern")
            # commit/abort (also a re-commit after the state became COMMITTED) belong to the
            # transaction
            in_txn = session.in_transaction or is_txn_finish
            if not in_txn and session.txn_state != TXN_NONE:
                # The first operation after a finished transaction resets the session's state.
                session.txn_state = TXN_NONE
                session._unpin()
        else:
            in_txn = False
        if in_txn:
            if read_preference is not None and not is_txn_finish:
                # Reads in a transaction use the transaction's read preference, which must be
                # primary (transactions spec); a read preference given to runCommand explicitly
                # is kept (as PyMongo), so a secondary one fails here.
                txn_opts = session.txn_options  # type: ignore[union-attr]
                if not run_command:
                    read_preference = (txn_opts.read_preference if txn_opts else None) or read_preference
                if read_preference.mode != _PRIMARY_MODE:
                    raise InvalidOperation(
                        f"read preference in a transaction must be primary, not: {read_preference!r}"
                    )
            else:
                read_preference = None
            retryable_read = False
            if not is_txn_finish:
                retryable_write = False
            if session.pinned_address is not None:  # type: ignore[union-attr]
                address = session.pinned_address  # type: ignore[union-attr]
        # Whether an overload error (SystemOverloadedError + RetryableError) may be retried:
        # the client's retryReads for reads (getMore included), retryWrites for writes, both
        # for a user's runCommand; commit/abort always (as PyMongo 4.20). (Inlined: hot path.)
        if is_txn_finish:
            overload_ok = True
        elif run_command:
            overload_ok = self._retry_reads and self._retry_writes
        elif retryable_read:
            overload_ok = self._retry_reads
        elif retryable_write:
            overload_ok = self._retry_writes
        else:
            is_write = op.is_write
            if is_write is None:
                is_write = read_preference is None
            overload_ok = self._retry_writes if is_write else self._retry_reads
        if retryable_write and not self._retry_writes and not is_txn_finish:
            retryable_write = False
        if retryable_read and not self._retry_reads:
            retryable_read = False
        if unacknowledged:
            retryable_write = False

        txn_number_assigned = False
        # One operationId for all attempts of this operation (command monitoring spec).
        monitored = (
            self.listeners.enabled_for_commands or _COMMAND_LOGGER.isEnabledFor(_DEBUG)
            or self._tracing is not None
        )
        log_selection = _SELECTION_LOGGER.isEnabledFor(_DEBUG)
        op_id = next_request_id() if monitored or log_selection else 0
        last_error: Optional[BaseException] = None
        overloaded = False
        attempt = 0
        # Retries as data: the server an attempt failed on goes back into selection as
        # deprioritized (server-selection spec: a retry on a sharded cluster goes to another
        # mongos when there is one).
        deprioritized: Tuple[Tuple[str, int], ...] = ()
        deadline = None
        timeout = _csot_timeout(None)  # (_csot.get_timeout() without its Python frame)
        if timeout:  # (pymongo.timeout(0): no deadline, and not the client's timeoutMS either)
            deadline = _csot.get_deadline()
        while True:
            attempt += 1
            try:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _timeout_error(last_error)
                if log_selection:
                    server = await topology.select_server_logged(
                        read_preference, op.name, op_id, deadline=deadline, address=address,
                        deprioritized=deprioritized,
                    )
                else:
                    server = topology.select_now(read_preference, address, deprioritized) or await topology.select_server(
                        read_preference, deadline=deadline, address=address, deprioritized=deprioritized
                    )
            except ServerSelectionTimeoutError:
                if last_error is not None:
                    raise last_error
                raise
            pool = server.pool
            checkout_timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                held = self._held(session, in_txn, pin) if self.load_balanced else None
                conn: Connection = held or pool.checkout_now() or await pool.checkout(checkout_timeout)
            except PyMongoError as exc:
                if exc.has_error_label("SystemOverloadedError"):
                    # A network error while connecting (see Connection.open): an overload error.
                    overloaded = True
                    if (
                        overload_ok
                        and exc.has_error_label("RetryableError")
                        and attempt <= self._max_overload_retries
                        and await self._overload_backoff(attempt, deadline)
                    ):
                        last_error = exc
                        deprioritized = _deprioritized(topology, server, deprioritized, True)
                        continue
                elif (
                    attempt == 1 and (retryable_write or retryable_read) and isinstance(exc, ConnectionFailure)
                    and not isinstance(exc, WaitQueueTimeoutError)  # (the pool is busy: no network error)
                ):
                    if retryable_write:
                        exc._add_error_label("RetryableWriteError")
                    last_error = exc
                    deprioritized = _deprioritized(topology, server, deprioritized, False)
                    continue
                if in_txn:
                    exc._add_error_label("TransientTransactionError")
                raise
            op.server_address = server.address
            if result_address is not None:
                result_address.append(server.address)
            use_session: Optional[ClientSession] = session
            if session is None:
                if op.implicit_session and not unacknowledged and conn.supports_sessions and implicit is None:
                    implicit = core.session_pool.get(topology._td.logical_session_timeout_minutes)
                    if op.records_lsid:
                        op.lsid = implicit.session_id  # type: ignore[attr-defined]  # (its slot)
            elif session._implicit and not conn.supports_sessions:
                use_session = None
            do_retry_write = False
            try:
                # The command, built from this connection's description (an error here is
                # handled as any other, never retried).
                cmd = op.build(conn)
                rc = op.read_concern
                if rc:
                    cmd["readConcern"] = rc
                wc = op.write_concern
                if wc:
                    cmd["writeConcern"] = wc
                sequences = op.sequences
                array = op.array
                retryable_write = retryable_write and op.retryable_write
                do_retry_write = retryable_write and (use_session is not None or implicit is not None) and conn.supports_retry
                if do_retry_write and not in_txn and not txn_number_assigned:
                    ss = implicit or use_session._materialize()  # type: ignore[union-attr]
                    ss.txn_number += 1
                    txn_number_assigned = True
                if (
                    is_txn_finish
                    and attempt > 1
                    and "commitTransaction" in cmd
                    and not (isinstance(last_error, PyMongoError) and last_error.has_error_label("SystemOverloadedError"))
                ):
                    cmd["writeConcern"] = retried_commit_write_concern(cmd.get("writeConcern"))
                starting = in_txn and not is_txn_finish and use_session.txn_state == TXN_STARTING  # type: ignore[union-attr]
                try:
                    timeout_applies, tail = self._stamp(
                        conn, server, cmd, use_session, read_preference, unacknowledged,
                        is_txn_finish, do_retry_write and not in_txn, in_txn, bool(timeout),
                        not monitored, implicit,
                    )
                    reauthenticated = False
                    while True:
                        try:
                            if monitored:  # command monitoring or logging
                                reply = await self._send_monitored(
                                    conn, dbname, cmd, use_session, codec_options, sequences,
                                    unacknowledged, check, timeout_applies, op_id, array, exhaust,
                                )
                            else:
                                # (an operation whose reply only the driver reads, without a
                                # session that keeps times: the reply's times stay encoded)
                                split = op.split_times and (use_session is None or use_session._implicit)
                                reply = await conn.command(
                                    dbname, cmd, codec_options=codec_options, sequences=sequences,
                                    unacknowledged=unacknowledged, check=check,
                                    timeout=_csot.remaining() if timeout_applies else None, array=array,
                                    exhaust_allowed=exhaust, tail=tail, split_times=split,
                                )
                                if split and conn.reply_cluster_time is not None:
                                    self._gossip_encoded(conn.reply_cluster_time)
                                else:
                                    self._process_reply(reply, use_session, conn)
                        except OperationFailure as exc:
                            # ReauthenticationRequired: authenticate this connection again
                            # and send the command once more (auth spec), retryable or not.
                            if exc.code != _REAUTHENTICATION_REQUIRED or reauthenticated or conn.options.credential is None:
                                raise
                        else:
                            if check or reauthenticated or reply.get("code") != _REAUTHENTICATION_REQUIRED or conn.options.credential is None:
                                break
                        reauthenticated = True
                        await conn.reauthenticate()
                except _CLIENT_SIDE_ERRORS:
                    raise  # never sent: the transaction has not started on the server
                except BaseException as exc:
                    if starting and not (
                        isinstance(exc, PyMongoError) and exc.has_error_label("SystemOverloadedError")
                    ):
                        # (an overload rejection happened at the server's front door: the
                        # transaction did not start, so the retry starts it again)
                        use_session.txn_state = TXN_IN_PROGRESS  # type: ignore[union-attr]
                    raise
                if starting:
                    use_session.txn_state = TXN_IN_PROGRESS  # type: ignore[union-attr]
            except PyMongoError as exc:
                details = getattr(exc, "details", None)
                if isinstance(details, Mapping) and ("operationTime" in details or "$clusterTime" in details):
                    # An error reply still advances the cluster and operation times (as PyMongo:
                    # a retried transaction's first command then carries afterClusterTime).
                    self._process_reply(details, use_session, conn)
                # Classify as if first attempt; how many retries are allowed is decided here.
                retry = self._handle_error(
                    exc, server, conn, use_session or implicit, in_txn, 1,
                    do_retry_write or is_txn_finish, retryable_read, is_txn_finish,
                )
                if self.load_balanced:
                    self._lb_after_error(exc, pool, conn, held, session, in_txn, is_txn_finish, pin)
                else:
                    pool.checkin(conn)
                overload = exc.has_error_label("SystemOverloadedError")
                if overload:
                    overloaded = True
                    retry = retry or (overload_ok and exc.has_error_label("RetryableError"))
                elif attempt > 1:
                    self._tokens.deposit(1.0)  # the server answered: healthy enough (backpressure spec)
                # Retries allowed: 1 (retryable reads/writes), unlimited within a CSOT deadline,
                # MAX_ATTEMPTS once any attempt was overloaded (client-backpressure spec).
                # (timeoutMS=0 / pymongo.timeout(0): CSOT with no deadline, retries unbounded)
                limit = self._max_overload_retries if overloaded else (1 if timeout is None else 1 << 30)
                if retry and attempt <= limit and (deadline is None or time.monotonic() < deadline):
                    if overload and not await self._overload_backoff(attempt, deadline):
                        if implicit is not None:
                            core.session_pool.put(implicit, topology._td.logical_session_timeout_minutes)
                        raise
                    last_error = exc
                    deprioritized = _deprioritized(topology, server, deprioritized, overload)
                    continue
                if implicit is not None:
                    core.session_pool.put(implicit, topology._td.logical_session_timeout_minutes)
                if (
                    last_error is not None
                    and isinstance(exc, PyMongoError)
                    and exc.has_error_label("NoWritesPerformed")
                ):
                    # The retry wrote nothing: the first attempt's error is the informative one
                    # (retryable-writes spec).
                    raise last_error from None
                raise
            except BaseException:
                # Cancellation: the pool drains the unread reply or closes the connection.
                if held is not None:  # (a pinned connection is released with its pin)
                    self._release_held(conn, session, pin)
                else:
                    pool.checkin(conn)
                if implicit is not None:
                    core.session_pool.put(implicit, topology._td.logical_session_timeout_minutes)
                raise
            if self.load_balanced:
                self._lb_after_reply(reply, cmd, pool, conn, held, session, in_txn and not is_txn_finish, pin)
            elif exhaust and conn.pending_reply:
                # An exhaust getMore answered with moreToCome: the stream's next replies belong
                # to the cursor (read_more), so the connection stays out of the pool with it.
                pin.hold(conn, pool)
            else:
                pool.checkin(conn)
            if (
                do_retry_write
                and attempt == 1
                and "writeConcernError" in reply
                and "RetryableWriteError" in (reply.get("errorLabels") or ())
            ):
                # A retryable write-concern error (retryable-writes spec): retry once.
                last_error = write_concern_error(reply)
                deprioritized = _deprioritized(topology, server, deprioritized, False)
                continue
            tokens = self._tokens
            if tokens.tokens < tokens.capacity:
                tokens.deposit(_RETRY_TOKEN_RETURN_RATE + (1.0 if attempt > 1 else 0.0))
            if implicit is not None:
                core.session_pool.put(implicit, topology._td.logical_session_timeout_minutes)
            return reply

    async def _write_read_preference(self, read_preference: Any) -> Any:
        """The read preference of an aggregate with ``$out``/``$merge`` (CRUD spec):
        *read_preference* when every known server is 5.0+ (wire version 13), else primary
        (None). With nothing discovered yet it waits for a writable server first."""
        topology = self.topology
        if topology.settings.load_balanced:
            # The balancer's servers are never checked: assume 5.0+ as PyMongo does (its
            # load-balancer description says maxWireVersion 13); an older server refuses.
            return read_preference
        common = topology.description.common_wire_version
        if common is None:
            await topology.select_server(None)
            common = topology.description.common_wire_version
        if common is None or common < 13:
            return None
        return read_preference

    def trace_operation(self, op_name: str, dbname: str, coll: Optional[str],
                        session: Optional[ClientSession]) -> Any:
        """An async context manager: the OpenTelemetry span of an operation that sends
        several commands (a no-op when tracing is disabled)."""
        if self._tracing is None:
            return _NO_SCOPE
        return self._tracing.scope(op_name, dbname, coll, session)

    # -- exhaust cursors ----------------------------------------------------------------------
    async def read_more(self, op: Operation, pin: Pin, session: Optional[ClientSession]) -> Dict[str, Any]:
        """The next reply of the exhaust stream on *pin*'s connection (a ``getMore`` sent with
        ``exhaustAllowed`` whose reply set moreToCome): read without sending anything. *op* is
        the getMore the server runs for it: as PyMongo 4.20, each streamed batch is published
        as that getMore (command monitoring events, command log messages, OpenTelemetry span),
        the document stamped as a sent getMore would be (:meth:`_streamed_command`), with
        request id 0 (nothing was sent) and an operation id of its own.

        When the stream ends (a reply without moreToCome: the last batch, or an ``ok: 0``
        reply, after which the server has closed the cursor) the connection is clean and goes
        back to the pool. On any other error (network error, timeout, unreadable reply) or a
        cancellation the stream's later replies are unread: the connection is closed, never
        handed out again. An error updates the topology as any command's does
        (:meth:`_handle_error`: a network error marks the server Unknown and clears its
        pool)."""
        conn = pin.conn
        if conn is None:
            raise InvalidOperation("no exhaust stream to read")
        try:
            if self.listeners.enabled_for_commands or _COMMAND_LOGGER.isEnabledFor(_DEBUG) or self._tracing is not None:
                published = self._publish_command(
                    conn, op.name, op.dbname, self._streamed_command(op, conn, session), False, 0,
                    next_request_id(), self._read_stream(conn, op.codec_options))
                if self._tracing is not None:  # (the getMore's operation span, as execute's)
                    published = self._tracing.operation(published, op.dbname, op.preview(), session, False)
                reply = await published
            else:
                reply = await self._read_stream(conn, op.codec_options)
            self._process_reply(reply, session, conn)
        except BaseException as exc:
            if conn.pending_reply:  # (the stream goes on, or a reply was cut short)
                conn.close("error")
            if isinstance(exc, PyMongoError):
                server = self.topology.servers.get(conn.address)
                if server is not None:
                    in_txn = session is not None and not session._implicit and session.in_transaction
                    self._handle_error(exc, server, conn, session, in_txn, 1, False, False, False)
            pin.release()
            raise
        if not conn.pending_reply:
            # The stream is over: its connection goes back to the pool (in load-balanced mode
            # once the cursor is done with it too: load-balancers spec, cursor pinning).
            cursor = reply.get("cursor")
            if not (self.load_balanced and isinstance(cursor, Mapping) and cursor.get("id")):
                pin.release()
        return reply

    def _streamed_command(self, op: Operation, conn: Connection, session: Optional[ClientSession]) -> Dict[str, Any]:
        """The getMore document published for a batch an exhaust stream delivers on *conn*: as
        PyMongo 4.20 (which builds the getMore again for each streamed batch), *op*'s command
        stamped as :meth:`_command` stamps a sent getMore (the session's ``lsid``, with
        ``txnNumber``/``autocommit`` in a transaction, the client's current ``$clusterTime``,
        the API version), then ``$db``."""
        cmd = op.build(conn)
        if session is not None and session._implicit and not conn.supports_sessions:
            session = None
        in_txn = session is not None and not session._implicit and session.in_transaction
        # (_stamp reads the server only to pin a starting transaction to it or to apply a
        # CSOT maxTimeMS: neither happens to a getMore stamped without a deadline)
        server: Any = self.topology.servers.get(conn.address)
        self._stamp(conn, server, cmd, session, None, False, False, False, in_txn, False, False)
        started = dict(cmd)
        started["$db"] = op.dbname
        return started

    @staticmethod
    async def _read_stream(conn: Connection, codec_options: CodecOptions[Any]) -> Dict[str, Any]:
        """The next reply off *conn*'s moreToCome stream, under the socket timeout and the
        CSOT deadline; an ``ok: 0`` reply raises its command error."""
        timeout = conn.options.socket_timeout
        deadline_left = _csot.remaining()
        if deadline_left is not None:
            timeout = deadline_left if timeout is None else min(timeout, deadline_left)
        if timeout is None:
            reply = await conn.read_more(codec_options)
        else:
            try:
                reply = await asyncio.wait_for(conn.read_more(codec_options), max(timeout, 0.0))
            except asyncio.TimeoutError:
                raise NetworkTimeout(f"{conn.address[0]}:{conn.address[1]}: timed out") from None
        if reply.get("ok") != 1 and not reply.get("ok"):
            raise command_error(reply, conn.max_wire_version)
        return reply

    async def is_mongos(self) -> bool:
        """Whether the writable server (awaited, as PyMongo's ``is_mongos``) is a mongos."""
        server: Server = await self.topology.select_server(None)
        return bool(server.description.server_type == ServerType.Mongos)

    @staticmethod
    def end_stream(pin: Pin) -> None:
        """Abandon the exhaust stream on *pin*'s connection: close it (the server then drops
        the cursor; unread replies never reach the pool) and release it."""
        conn = pin.conn
        if conn is not None and conn.pending_reply:
            conn.close("error")
        pin.release()

    # -- load-balanced mode: connection pinning (load-balancers spec) --------------------------
    def cursor_pin(self) -> Optional[Pin]:
        """A new cursor's :class:`Pin` in load-balanced mode, else None."""
        return Pin("cursor") if self.load_balanced else None

    @staticmethod
    def _held(session: Optional[ClientSession], in_txn: bool, pin: Optional[Pin]) -> Optional[Connection]:
        """The pinned connection this command must use, if any."""
        txn_pin: Optional[Pin] = session.pinned_connection if in_txn and session is not None else None
        if txn_pin is not None:
            return txn_pin.conn
        if pin is not None:
            return pin.conn
        return None

    @staticmethod
    def _release_held(conn: Connection, session: Optional[ClientSession], pin: Optional[Pin]) -> None:
        if session is not None and session.pinned_connection is not None and session.pinned_connection.conn is conn:
            session._unpin()
        if pin is not None and pin.conn is conn:
            pin.release()

    def _lb_after_reply(
        self, reply: Mapping[str, Any], cmd: Mapping[str, Any], pool: Any, conn: Connection,
        held: Optional[Connection], session: Optional[ClientSession], txn_op: bool, pin: Optional[Pin],
    ) -> None:
        """Keep *conn* pinned or check it in, after a reply (*txn_op*: an operation in a
        transaction, not its commit or abort, which only use a pinned connection)."""
        cursor = reply.get("cursor")
        open_cursor = isinstance(cursor, Mapping) and bool(cursor.get("id"))
        if held is not None:
            if pin is not None and pin.conn is conn:
                name = next(iter(cmd))
                if name == "killCursors" or (name == "getMore" and not open_cursor):
                    pin.release()  # the cursor is done with its connection
            elif pin is not None and open_cursor:
                pin.hold(conn, None)  # a cursor in a pinned transaction shares its connection
            return
        if txn_op and session is not None and session.in_transaction:
            txn_pin = Pin("transaction")
            txn_pin.hold(conn, pool)
            session.pinned_connection = txn_pin
        elif pin is not None and open_cursor:
            pin.hold(conn, pool)
        else:
            pool.checkin(conn)

    def _lb_after_error(
        self, exc: PyMongoError, pool: Any, conn: Connection, held: Optional[Connection],
        session: Optional[ClientSession], in_txn: bool, is_txn_finish: bool, pin: Optional[Pin],
    ) -> None:
        """Keep *conn* pinned or check it in, after an error: a transaction's connection is
        released by transient (and network) errors and kept by others (abort releases it);
        a cursor keeps its connection until it is closed."""
        transient = exc.has_error_label("TransientTransactionError") or isinstance(exc, ConnectionFailure)
        if held is not None:
            if transient and session is not None and session.pinned_connection is not None \
                    and session.pinned_connection.conn is conn:
                session._unpin()
            return  # (a cursor's connection: released when the cursor is closed)
        if in_txn and not is_txn_finish and not transient and session is not None and session.in_transaction:
            txn_pin = Pin("transaction")
            txn_pin.hold(conn, pool)
            session.pinned_connection = txn_pin
        else:
            pool.checkin(conn)

    async def _overload_backoff(self, attempt: int, deadline: Optional[float]) -> bool:
        """Sleep before overload retry *attempt* (exponential backoff with jitter, one token
        from the retry budget); False when the deadline or the budget forbids the retry."""
        backoff = random.random() * min(_BASE_BACKOFF * (1 << (attempt - 1)), _MAX_BACKOFF)
        if (deadline is not None and time.monotonic() + backoff > deadline) or not self._tokens.consume(1.0):
            return False
        await asyncio.sleep(backoff)
        return True

    def _stamp(
        self,
        conn: Connection,
        server: "Server",
        cmd: MutableMapping[str, Any],
        session: Optional[ClientSession],
        read_preference: Any,
        unacknowledged: bool,
        is_txn_finish: bool,
        retryable_write: bool,
        in_txn: bool,
        has_timeout: bool,
        splice: bool,
        implicit: Optional[ServerSession] = None,
    ) -> Tuple[bool, bytes]:
        """Add what the connection, session, client and deadline say to *cmd*: lsid,
        txnNumber and the transaction fields, read concern for causal and snapshot reads,
        $clusterTime, $readPreference, the API version, maxTimeMS. Returns whether a CSOT
        deadline applies to the round trip, and the pre-encoded elements to send after
        *cmd*'s own.

        With *splice* (no command monitoring, logging or tracing reads the document), the
        parts that do not change between operations are not put in *cmd* but returned
        encoded: the server session's ``lsid``, the client's ``$clusterTime`` (encoded
        again only when it changes), ``$readPreference`` (per read preference) and the API
        version (once); without it, everything is in *cmd*.

        *implicit*: the executor's own implicit server session (then *session* is None).
        """
        core = self._core
        tail = b""
        if implicit is not None:
            if splice and "lsid" not in cmd:
                tail = implicit.lsid_element
            else:
                cmd["lsid"] = implicit.session_id
            if retryable_write:
                cmd["txnNumber"] = implicit.txn_number
        elif session is not None:
            ss = session._materialize()
            if splice and "lsid" not in cmd:
                tail = ss.lsid_element
            else:  # (also over a command's own lsid: one key, as before)
                cmd["lsid"] = ss.session_id
            ss.last_use = time.monotonic()
            if in_txn:
                cmd["txnNumber"] = ss.txn_number
                if session.txn_state == TXN_STARTING and not is_txn_finish:
                    cmd["startTransaction"] = True
                    rc = session.txn_options.read_concern if session.txn_options else None
                    rc_doc = dict(rc.document) if rc is not None else {}
                    if session.options.causal_consistency and session.operation_time is not None:
                        rc_doc["afterClusterTime"] = session.operation_time
                    if rc_doc:
                        cmd["readConcern"] = rc_doc
                    else:
                        cmd.pop("readConcern", None)
                    if conn.is_mongos:
                        session.pinned_address = server.address
                elif not is_txn_finish:
                    cmd.pop("readConcern", None)
                cmd["autocommit"] = False
                if not is_txn_finish:
                    cmd.pop("writeConcern", None)
            elif session._implicit:  # (never snapshot nor causally consistent)
                if retryable_write:
                    cmd["txnNumber"] = ss.txn_number
            else:
                if retryable_write:
                    cmd["txnNumber"] = ss.txn_number
                if session.options.snapshot:
                    rc_doc = dict(cmd.get("readConcern") or {})
                    rc_doc["level"] = "snapshot"
                    if session._snapshot_time is not None:
                        rc_doc["atClusterTime"] = session._snapshot_time
                    cmd["readConcern"] = rc_doc
                elif (
                    session.options.causal_consistency
                    and session.operation_time is not None
                    and _is_read_concern_command(cmd)
                ):
                    rc_doc = dict(cmd.get("readConcern") or {})
                    rc_doc["afterClusterTime"] = session.operation_time
                    cmd["readConcern"] = rc_doc
        hello = conn.hello
        ct = core.cluster_time
        if ct is not None or "$clusterTime" in hello:
            if session is not None and not session._implicit:
                # (an implicit session only ever saw replies that advanced the client's too)
                sct = session._cluster_time
                if sct is not None and (ct is None or ts_newer(sct["clusterTime"], ct["clusterTime"])):
                    ct = sct
            if ct is not None:
                cached = self._ct_element
                if (splice and ct is core.cluster_time and "$clusterTime" not in cmd
                        and (cached[0] is ct or self._encode_cluster_time(ct))):
                    tail += self._ct_element[1]
                else:  # (a session's own, possibly a user's document: as it is now)
                    cmd["$clusterTime"] = ct
        if read_preference is not None:
            # Server-selection spec, "Passing read preference": nothing for a standalone;
            # primaryPreferred (at least) to a directly connected replica-set member;
            # any non-primary mode to mongos, load balancers and replica-set members.
            # (the mode is read only where it matters: nothing is sent to a standalone)
            rp: Any = None
            # (``mode`` is a Python property: a Primary is recognised by its type without it)
            primary = type(read_preference) is _PRIMARY_TYPE or read_preference.mode == _PRIMARY_MODE
            if conn.is_mongos or conn.options.load_balanced:
                if not primary:
                    rp = read_preference
            elif hello.get("setName"):
                if self.topology._td.topology_type == _SINGLE:  # a direct connection (description read directly: hot path)
                    rp = _PRIMARY_PREFERRED if primary else read_preference
                elif not primary:
                    rp = read_preference
            if rp is not None:
                if splice and "$readPreference" not in cmd:
                    tail += self._read_preference_element(rp)
                else:
                    cmd["$readPreference"] = rp.document
        api = self._server_api_doc
        if api is not None:  # every command declares the API version (versioned-api spec)
            if splice and "apiVersion" not in cmd:
                tail += self._api_elements
            else:
                cmd.update(api)
        if has_timeout and _csot.get_timeout():
            remaining = _csot.remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise _timeout_error(None)
                # (no maxTimeMS on getMore, nor on a tailable non-awaitData find: the deadline
                # is the client's alone there, CSOT "Cursors")
                if (
                    not unacknowledged
                    and next(iter(cmd)) != "getMore"
                    and not (cmd.get("tailable") and not cmd.get("awaitData"))
                ):
                    # CSOT: maxTimeMS = remaining - the server's minimum RTT (or fail now).
                    _csot.apply_max_time(cmd, remaining, server.description.min_round_trip_time)
            return True, tail
        return False, tail

    def _encode_cluster_time(self, ct: Mapping[str, Any]) -> bool:
        """Encode the client's new ``$clusterTime`` *ct* for :meth:`_stamp` (once per value of
        the clock); False if it cannot be encoded alone (a codec's custom decoded type: the
        command's own codec options then encode it)."""
        try:
            self._ct_element = (ct, _elements({"$clusterTime": ct}))
        except Exception:
            return False
        return True

    def _read_preference_element(self, rp: Any) -> bytes:
        """``$readPreference: rp.document`` encoded (once per read preference object: they
        are immutable)."""
        cache = self._rp_elements
        entry = cache.get(id(rp))
        if entry is None or entry[0] is not rp:
            if len(cache) >= 64:  # (a bound for programs that make read preferences per call)
                cache.clear()
            entry = cache[id(rp)] = (rp, _elements({"$readPreference": rp.document}))
        return entry[1]

    async def _send_monitored(
        self,
        conn: Connection,
        dbname: str,
        cmd: MutableMapping[str, Any],
        session: Optional[ClientSession],
        codec_options: CodecOptions[Any],
        sequences: Optional[Sequence[Tuple[str, Sequence[bytes]]]],
        unacknowledged: bool,
        check: bool,
        timeout_applies: bool,
        op_id: int = 0,
        array: Optional[EncodedArray] = None,
        exhaust_allowed: bool = False,
    ) -> Dict[str, Any]:
        name = next(iter(cmd))
        request_id = next_request_id()
        op_id = op_id or request_id
        sensitive = _is_sensitive(name, cmd)
        # pymongo's event classes redact sensitive commands and replies themselves (and reject
        # an empty command), so events get the real documents; log messages are redacted here.
        started_cmd: Dict[str, Any] = dict(cmd)
        started_cmd["$db"] = dbname
        if sequences:
            for ident, docs in sequences:
                started_cmd[ident] = [bson.decode(d, codec_options) for d in docs]
        if array is not None:
            started_cmd[array.name] = list(array.docs)
        # Encode first: a command refused client-side (DocumentTooLarge, InvalidDocument)
        # raises here and was never sent, so it publishes no event and no log
        # message (as PyMongo).
        pending = conn.command(
            dbname, cmd, codec_options=codec_options, sequences=sequences,
            unacknowledged=unacknowledged, check=check,
            timeout=_csot.remaining() if timeout_applies else None, request_id=request_id,
            array=array, exhaust_allowed=exhaust_allowed,
        )
        reply = await self._publish_command(conn, name, dbname, started_cmd, sensitive, request_id, op_id, pending)
        self._process_reply(reply, session, conn)
        return reply

    async def _publish_command(
        self, conn: Connection, name: str, dbname: str, started_cmd: Dict[str, Any], sensitive: bool,
        request_id: int, op_id: int, pending: Awaitable[Dict[str, Any]],
    ) -> Dict[str, Any]:
        """Await *pending* (the reply of command *name* on *conn*) between its command
        monitoring events, command log messages and OpenTelemetry span: the one place that
        publishes them, for a sent command and for a batch an exhaust stream delivers
        (:meth:`read_more`)."""
        listeners = self.listeners.command
        address = conn.address
        log = _COMMAND_LOGGER.isEnabledFor(_DEBUG)
        common: Dict[str, Any] = {}
        if log:
            common = {
                "commandName": name, "databaseName": dbname, "requestId": request_id,
                "operationId": op_id, "driverConnectionId": conn.id,
                "serverHost": address[0], "serverPort": address[1],
            }
            if conn.server_connection_id is not None:
                common["serverConnectionId"] = conn.server_connection_id
            if conn.service_id is not None:
                common["serviceId"] = str(conn.service_id)
            _log_debug(
                _COMMAND_LOGGER, id(self._core.owner), message="Command started",
                command=_document_json({} if sensitive else started_cmd), **common,
            )
        tracing = self._tracing
        span = None if tracing is None or sensitive else tracing.start_command(name, dbname, started_cmd, conn)
        start = time.perf_counter()
        if listeners:
            EventListeners.publish(
                listeners,
                "started",
                _pm.CommandStartedEvent(
                    started_cmd, dbname, request_id, address, op_id,
                    service_id=conn.service_id, server_connection_id=conn.server_connection_id,
                ),
            )
        try:
            reply = await pending
        except BaseException as exc:
            if span is not None:
                tracing.command_failed(span, exc)
            if not isinstance(exc, PyMongoError):
                raise
            duration = _timedelta(seconds=time.perf_counter() - start)
            if isinstance(exc, OperationFailure):
                failure: Any = {} if sensitive else (exc.details or {})
            else:
                failure = {"errmsg": str(exc), "errtype": type(exc).__name__, "ok": 0}
            if log:
                _log_debug(
                    _COMMAND_LOGGER, id(self._core.owner), message="Command failed",
                    durationMS=duration.total_seconds() * 1000.0,
                    failure=(_document_json(failure) if isinstance(exc, OperationFailure) else str(exc)),
                    **common,
                )
            EventListeners.publish(
                listeners,
                "failed",
                _pm.CommandFailedEvent(
                    duration, failure, name, request_id, address, op_id,
                    service_id=conn.service_id, database_name=dbname,
                    server_connection_id=conn.server_connection_id,
                ),
            )
            raise
        duration = _timedelta(seconds=time.perf_counter() - start)
        if span is not None:
            tracing.command_succeeded(span, reply)
        if log:
            _log_debug(
                _COMMAND_LOGGER, id(self._core.owner), message="Command succeeded",
                durationMS=duration.total_seconds() * 1000.0,
                reply=_document_json({} if sensitive else reply), **common,
            )
        EventListeners.publish(
            listeners,
            "succeeded",
            _pm.CommandSucceededEvent(
                duration, {} if sensitive else reply, name, request_id, address, op_id,
                service_id=conn.service_id, database_name=dbname,
                server_connection_id=conn.server_connection_id,
            ),
        )
        return reply

    def _gossip_encoded(self, element: bytes) -> None:
        """Advance the client's clock to a reply's ``$clusterTime`` *element* (encoded, as
        :meth:`Connection.command` with ``split_times`` leaves it). Nothing is decoded when
        the same bytes were already compared with the clock as it still is (a server repeats
        its $clusterTime until its clock moves); else decoded, checked and compared."""
        seen = self._ct_reply
        core = self._core
        if seen[1] == element and seen[0] is core.cluster_time:
            return
        try:
            ct = bson.decode(element[14:])
        except Exception as exc:
            raise ProtocolError(f"Invalid BSON in server reply: {exc}") from exc
        check_reply_times({"$clusterTime": ct})
        self._ct_reply = (self._advance_clock(ct), element)

    def _advance_clock(self, ct: Mapping[str, Any]) -> Mapping[str, Any]:
        """The client's cluster clock after gossiping a reply's (checked) ``$clusterTime``
        *ct*: *ct* if it is newer, else the clock as it was."""
        core = self._core
        cur = core.cluster_time
        if cur is None or ts_newer(ct["clusterTime"], cur["clusterTime"]):
            core.cluster_time = cur = ct
        return cur

    def _process_reply(self, reply: Mapping[str, Any], session: Optional[ClientSession], conn: Connection) -> None:
        check_reply_times(reply)  # (ProtocolError for a malformed one, never a TypeError)
        ct = reply.get("$clusterTime")
        if ct is not None:
            self._advance_clock(ct)
        if session is not None:
            session._advance(reply)
            if session._implicit:
                return
            if session.in_transaction and "recoveryToken" in reply:
                session.recovery_token = reply["recoveryToken"]
            if session.options.snapshot and session._snapshot_time is None:
                cursor = reply.get("cursor")
                at = (cursor or {}).get("atClusterTime") or reply.get("atClusterTime")
                if at is not None:
                    session._snapshot_time = at

    def _handle_error(
        self,
        exc: PyMongoError,
        server: "Server",
        conn: Connection,
        session: Union[ClientSession, ServerSession, None],
        in_txn: bool,
        attempt: int,
        retryable_write: bool,
        retryable_read: bool,
        is_txn_finish: bool,
    ) -> bool:
        """Classify *exc*: update the topology, add error labels; return whether to retry."""
        topology = self.topology
        details = getattr(exc, "details", None) or {}
        if isinstance(exc, ConnectionFailure) and not isinstance(exc, NotPrimaryError):
            if session is not None:
                session.mark_dirty()
            if not isinstance(exc, NetworkTimeout) or not _csot.get_timeout():
                topology.handle_error(
                    server, exc, conn.generation,
                    service_id=conn.service_id, max_wire_version=conn.max_wire_version,
                )
            if in_txn and not is_txn_finish:
                exc._add_error_label("TransientTransactionError")
            if retryable_write:
                exc._add_error_label("RetryableWriteError")
            if isinstance(exc, NetworkTimeout) and _csot.get_timeout():
                return False
            return (retryable_write or retryable_read) and attempt == 1
        code = getattr(exc, "code", None)
        if code is None and isinstance(details, Mapping):
            code = details.get("code")
        if isinstance(exc, NotPrimaryError) or code in _NOT_PRIMARY_CODES:
            topology.handle_error(
                server, exc, conn.generation,
                service_id=conn.service_id, max_wire_version=conn.max_wire_version,
            )
        if isinstance(exc, (OperationFailure, NotPrimaryError)):
            labels = details.get("errorLabels") or []
            if retryable_write:
                if "RetryableWriteError" in labels:
                    return attempt == 1
                if conn.max_wire_version < 9 and code in RETRYABLE_WRITE_CODES:
                    exc._add_error_label("RetryableWriteError")
                    return attempt == 1
                return False
            if retryable_read and (code in RETRYABLE_READ_CODES or isinstance(exc, NotPrimaryError)):
                return attempt == 1
        return False


# Commands that carry a causally consistent session's afterClusterTime (as PyMongo 4.20:
# every CRUD command built from a collection, writes included, the collection and index DDL
# commands, dropDatabase and the client-level bulkWrite; causal-consistency spec tests).
_CAUSAL_COMMANDS = frozenset(
    {"find", "aggregate", "distinct", "count", "listCollections", "listIndexes",
     "insert", "update", "delete", "findAndModify",
     "create", "createIndexes", "drop", "dropDatabase", "dropIndexes", "bulkWrite"}
)


def _deprioritized(topology: Any, server: Server, already: Tuple[Tuple[str, int], ...],
                   overload: bool) -> Tuple[Tuple[str, int], ...]:
    """The servers a retry avoids (retries as data, server-selection spec's "deprioritized
    servers"): *already* plus *server* when the attempt failed on a sharded cluster (any
    retryable error: another mongos when there is one), or on a replica set with an overload
    error (``SystemOverloadedError``: DRIVERS-3404, deprioritization on replica sets only
    for overload errors); nothing is avoided for a single server or a load balancer."""
    topology_type = topology.description.topology_type
    if topology_type == _SHARDED or (overload and topology_type in _REPLICA_SET_TYPES):
        address = server.address
        if address not in already:
            return already + (address,)
    return already


def _is_read_concern_command(cmd: Mapping[str, Any]) -> bool:
    return next(iter(cmd)) in _CAUSAL_COMMANDS or "readConcern" in cmd


def _timeout_error(last: Optional[BaseException]) -> PyMongoError:
    return _csot.expired_error(last)  # type: ignore[return-value]

