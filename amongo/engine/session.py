"""Logical sessions and transactions (driver-sessions and transactions specs).

:class:`ClientSession` is the object ``await client.start_session()`` returns (Motor's
``AsyncIOMotorClientSession``). The executor stamps ``lsid``, ``txnNumber``,
``startTransaction``/``autocommit`` and ``$clusterTime`` from it; this module only keeps state.
"""
from __future__ import annotations

import time
import uuid
from collections import deque
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Deque, Dict, List, Mapping, Optional, Protocol, TypeVar

from bson import encode as _bson_encode
from bson.binary import Binary

from amongo import _csot
from amongo.engine.clock import ts_newer
from amongo.engine.operation import EndTransaction
from amongo.server_errors import check_write_concern_error, is_unknown_commit
from bson.timestamp import Timestamp
from pymongo.errors import ConfigurationError, InvalidOperation, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern



def retried_commit_write_concern(document: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The write concern of a retried commitTransaction (transactions spec): ``w: majority``,
    and ``wtimeout: 10000`` unless one is set. The one place this rule is written (the
    executor's automatic retry and an explicit second ``commit_transaction`` both use it)."""
    doc = dict(document or {})
    doc["w"] = "majority"
    doc.setdefault("wtimeout", 10000)
    return doc


class SessionCore(Protocol):
    """What a session needs from its client's engine core (:class:`amongo.engine.core.ClientCore`;
    a protocol here so this module does not import the core, which imports it)."""

    owner: Any
    topology: Any
    session_pool: "ServerSessionPool"
    read_concern: ReadConcern
    write_concern: WriteConcern
    read_preference: Any

    @property
    def executor(self) -> Any:
        """The executor the session's commands run on."""
        ...

    def session_timeout_minutes(self) -> Optional[int]:
        """The servers' logicalSessionTimeoutMinutes, if known."""
        ...

    @property
    def tracing(self) -> Any:
        """The OpenTelemetry tracer, or None."""
        ...

_T = TypeVar("_T")

# Transaction states
TXN_NONE = 0
TXN_STARTING = 1
TXN_IN_PROGRESS = 2
TXN_COMMITTED = 3
TXN_COMMITTED_EMPTY = 4
TXN_ABORTED = 5

_WITH_TXN_TIMEOUT = 120.0

#: The session bound by ``async with session.bind():`` (PyMongo 4.17+'s implicit session
#: binding): operations given no session inside that block use it (read by the executor and by
#: cursors when they are created).
BOUND_SESSION: "ContextVar[Optional[ClientSession]]" = ContextVar("amongo_bound_session", default=None)


class TransactionOptions:
    """Options for a transaction (same attributes as pymongo.client_session.TransactionOptions)."""

    __slots__ = ("read_concern", "write_concern", "read_preference", "max_commit_time_ms")

    def __init__(
        self,
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_commit_time_ms: Optional[int] = None,
    ) -> None:
        if read_concern is not None and not isinstance(read_concern, ReadConcern):
            raise TypeError(f"read_concern must be an instance of ReadConcern, not {type(read_concern)}")
        if write_concern is not None:
            if not isinstance(write_concern, WriteConcern):
                raise TypeError(f"write_concern must be an instance of WriteConcern, not {type(write_concern)}")
            if not write_concern.acknowledged:
                raise ConfigurationError(
                    f"transactions do not support unacknowledged write concern: {write_concern!r}"
                )
        if max_commit_time_ms is not None and not isinstance(max_commit_time_ms, int):
            raise TypeError("max_commit_time_ms must be an integer or None")
        self.read_concern = read_concern
        self.write_concern = write_concern
        self.read_preference = read_preference
        self.max_commit_time_ms = max_commit_time_ms


class SessionOptions:
    """Options for a session (same attributes as pymongo.client_session.SessionOptions)."""

    __slots__ = ("causal_consistency", "default_transaction_options", "snapshot")

    def __init__(
        self,
        causal_consistency: Optional[bool] = None,
        default_transaction_options: Optional[Any] = None,
        snapshot: Optional[bool] = False,
    ) -> None:
        if snapshot:
            if causal_consistency:
                raise ConfigurationError("snapshot reads do not support causal_consistency=True")
            causal_consistency = False
        elif causal_consistency is None:
            causal_consistency = True
        self.causal_consistency = causal_consistency
        self.default_transaction_options = default_transaction_options
        self.snapshot = snapshot


#: The options every implicit session shares (immutable in practice).
IMPLICIT_OPTIONS: "SessionOptions"


class ServerSession:
    __slots__ = ("session_id", "lsid_element", "last_use", "txn_number", "dirty", "generation")

    def __init__(self, generation: int = 0) -> None:
        self.session_id = {"id": Binary(uuid.uuid4().bytes, 4)}
        #: ``lsid: session_id`` encoded once (the executor splices it into each command; the
        #: session id never changes)
        self.lsid_element: bytes = _bson_encode({"lsid": self.session_id})[4:-1]
        self.last_use = time.monotonic()
        self.txn_number = 0
        self.dirty = False
        self.generation = generation

    def mark_dirty(self) -> None:
        """Discard this server session when it is returned (a network error: sessions spec)."""
        self.dirty = True

    def timed_out(self, timeout_minutes: Optional[int]) -> bool:
        """Whether this server session is within a minute of the server's
        ``logicalSessionTimeoutMinutes`` and must not be reused.
        """
        if timeout_minutes is None:
            return False
        return (time.monotonic() - self.last_use) > (timeout_minutes - 1) * 60


class ServerSessionPool:
    """LIFO pool of server sessions (driver-sessions spec)."""

    __slots__ = ("_pool", "generation")

    def __init__(self) -> None:
        self._pool: Deque[ServerSession] = deque()
        self.generation = 0

    def get(self, timeout_minutes: Optional[int]) -> ServerSession:
        """A pooled server session that will not time out within a minute, or a new one
        (sessions specification's server session pool)."""
        pool = self._pool
        if pool:
            # (one clock read per call: this runs for every operation's implicit session)
            limit = None if timeout_minutes is None else time.monotonic() - (timeout_minutes - 1) * 60
            while pool:
                s = pool.popleft()
                if limit is None or s.last_use >= limit:
                    return s
        return ServerSession(self.generation)

    def put(self, s: ServerSession, timeout_minutes: Optional[int]) -> None:
        """Return a server session for reuse (dropped if dirty, stale or about to time out)."""
        pool = self._pool
        now = time.monotonic()
        if timeout_minutes is not None:
            limit = now - (timeout_minutes - 1) * 60
            while pool and pool[-1].last_use < limit:
                pool.pop()
            if s.last_use < limit:
                return
        if s.dirty or s.generation != self.generation:
            return
        s.last_use = now
        pool.appendleft(s)

    def pop_all_ids(self) -> List[Any]:
        """Empty the pool; returns the sessions' ``lsid`` documents (for ``endSessions``)."""
        ids = [s.session_id for s in self._pool]
        self._pool.clear()
        return ids

    def reset(self) -> None:
        """Forget every pooled session (after a fork, or a topology change that makes them invalid)."""
        self.generation += 1
        self._pool.clear()


IMPLICIT_OPTIONS = SessionOptions(causal_consistency=False)


class _TransactionContext:
    """What ``session.start_transaction()`` returns: an async context manager (Motor's
    ``_MotorTransactionContext``) that commits on success and aborts on error."""

    __slots__ = ("_session",)

    def __init__(self, session: "ClientSession") -> None:
        self._session = session

    async def __aenter__(self) -> "_TransactionContext":
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if self._session.in_transaction:
            if exc_val is None:
                await self._session.commit_transaction()
            else:
                await self._session.abort_transaction()


class ClientSession:
    """A logical session (Motor's ``AsyncIOMotorClientSession``)."""

    __slots__ = (
        "_core", "_server_session", "_options", "_implicit", "_cluster_time", "_operation_time",
        "_snapshot_time", "_ended", "txn_state", "txn_options", "pinned_address",
        "pinned_connection", "recovery_token", "attached_to_cursor", "_trace_span", "callback_timeout", "__weakref__",
    )

    def __init__(self, core: SessionCore, server_session: Optional[ServerSession], options: SessionOptions, implicit: bool) -> None:
        self._core = core
        self._server_session = server_session
        self._options = options
        self._implicit = implicit
        self._cluster_time: Optional[Mapping[str, Any]] = None
        self._operation_time: Optional[Timestamp] = None
        self._snapshot_time: Optional[Timestamp] = None
        self._ended = False
        self.txn_state = TXN_NONE
        self.txn_options: Optional[TransactionOptions] = None
        self.pinned_address: Optional[Any] = None
        self.pinned_connection: Any = None
        self.recovery_token: Any = None
        self.attached_to_cursor = False
        self._trace_span: Any = None  # OpenTelemetry "transaction" span (amongo/tracing.py)
        #: the timeoutMS (seconds) a with_transaction callback runs under, while it runs (CSOT:
        #: an operation in it may not set another: see :meth:`check_callback_timeout`)
        self.callback_timeout: Optional[float] = None

    # -- properties (Motor names) ---------------------------------------------------------
    @property
    def client(self) -> Any:
        """The client this session was created from (Motor: ``session.client``)."""
        return self._core.owner

    @property
    def options(self) -> SessionOptions:
        """The :class:`pymongo.client_session.SessionOptions` (Motor: ``AsyncIOMotorClientSession.options``)."""
        return self._options

    @property
    def session_id(self) -> Mapping[str, Any]:
        """The ``lsid`` document (Motor: ``session_id``)."""
        self._check_ended()
        return self._materialize().session_id

    @property
    def cluster_time(self) -> Optional[Mapping[str, Any]]:
        """The latest ``$clusterTime`` this session has seen (Motor: ``cluster_time``)."""
        return self._cluster_time

    @property
    def operation_time(self) -> Optional[Timestamp]:
        """The latest ``operationTime`` this session has seen (Motor: ``operation_time``)."""
        return self._operation_time

    @property
    def has_ended(self) -> bool:
        """Whether :meth:`end_session` was called (Motor: ``has_ended``)."""
        return self._ended

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is in progress (Motor: ``in_transaction``)."""
        return self.txn_state in (TXN_STARTING, TXN_IN_PROGRESS)

    @property
    def _transaction_id(self) -> int:
        return self._materialize().txn_number

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorClientSession.get_io_loop``)."""
        return self._core.owner.get_io_loop()

    # -- internals --------------------------------------------------------------------------
    def _materialize(self) -> ServerSession:
        if self._server_session is None:
            core = self._core
            # (the topology's description read directly: one call less per operation)
            self._server_session = core.session_pool.get(core.topology._td.logical_session_timeout_minutes)
        return self._server_session

    def _check_ended(self) -> None:
        if self._ended:
            raise InvalidOperation("Cannot use ended session")

    def _advance(self, reply: Mapping[str, Any]) -> None:
        """Gossip a server reply's ``$clusterTime`` and ``operationTime`` into the session
        (what the public ``advance_*`` methods do, without re-validating server values)."""
        ct = reply.get("$clusterTime")
        if ct is not None:
            cur = self._cluster_time
            if cur is None or ts_newer(ct["clusterTime"], cur["clusterTime"]):
                self._cluster_time = ct
        ot = reply.get("operationTime")
        if ot is not None:
            cur_ot = self._operation_time
            if cur_ot is None or ts_newer(ot, cur_ot):
                self._operation_time = ot

    def check_callback_timeout(self) -> None:
        """CSOT "Convenient Transaction API": inside a ``with_transaction`` callback run under a
        deadline, an operation may not set its own timeout (a ``pymongo.timeout()`` of another
        length): raise :class:`~pymongo.errors.InvalidOperation` before anything is sent (the
        executor calls this while :attr:`callback_timeout` is set)."""
        callback_timeout = self.callback_timeout
        if _csot.get_timeout() != callback_timeout:
            ms = "none" if callback_timeout is None else f"{callback_timeout * 1000:g}"
            raise InvalidOperation(
                "timeoutMS cannot be overridden inside a withTransaction callback: the callback runs "
                f"under the withTransaction's timeoutMS ({ms})"
            )

    def mark_dirty(self) -> None:
        """Mark the server session dirty after a network error: it is discarded, not reused
        (sessions specification).
        """
        if self._server_session is not None:
            self._server_session.dirty = True

    # -- public API -------------------------------------------------------------------------
    def advance_cluster_time(self, cluster_time: Mapping[str, Any]) -> None:
        """Update the session's cluster time (Motor: ``advance_cluster_time``)."""
        if not isinstance(cluster_time, Mapping):
            raise TypeError("cluster_time must be a subclass of collections.Mapping")
        if not isinstance(cluster_time.get("clusterTime"), Timestamp):
            raise ValueError("Invalid cluster_time")
        if self._cluster_time is None or cluster_time["clusterTime"] > self._cluster_time["clusterTime"]:
            self._cluster_time = cluster_time

    def advance_operation_time(self, operation_time: Timestamp) -> None:
        """Update the session's operation time (Motor: ``advance_operation_time``)."""
        if not isinstance(operation_time, Timestamp):
            raise TypeError("operation_time must be an instance of bson.timestamp.Timestamp")
        if self._operation_time is None or operation_time > self._operation_time:
            self._operation_time = operation_time

    async def end_session(self) -> None:
        """End the session, aborting an open transaction (Motor: ``end_session``)."""
        if self._ended:
            return
        try:
            if self.in_transaction:
                try:
                    await self.abort_transaction()
                except PyMongoError:
                    pass
        finally:
            self._ended = True
            self._unpin()
            if self._server_session is not None:
                self._core.session_pool.put(self._server_session, self._core.session_timeout_minutes())
                self._server_session = None

    def _end_implicit(self) -> None:
        """Return an implicit session's server session to the pool (no I/O)."""
        if not self._ended:
            self._ended = True
            if self._server_session is not None:
                core = self._core
                core.session_pool.put(self._server_session, core.topology._td.logical_session_timeout_minutes)
                self._server_session = None

    async def __aenter__(self) -> "ClientSession":
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.end_session()

    def __enter__(self) -> None:
        raise AttributeError("Use 'async with await client.start_session()' (Motor's ClientSession is an async context manager)")

    def __exit__(self, *args: Any) -> None:  # pragma: no cover
        pass

    def _end_trace_span(self) -> None:
        """End the OpenTelemetry ``transaction`` span, if tracing started one."""
        span = self._trace_span
        if span is not None:
            self._trace_span = None
            span.end()

    def _unpin(self) -> None:
        self.pinned_address = None
        pin = self.pinned_connection  # an executor.Pin (load-balanced mode)
        self.pinned_connection = None
        if pin is not None:
            pin.release()

    def start_transaction(
        self,
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_commit_time_ms: Optional[int] = None,
    ) -> _TransactionContext:
        """Start a transaction; use as ``async with s.start_transaction():`` (Motor:
        ``start_transaction``, synchronous)."""
        return self._start_transaction(read_concern, write_concern, read_preference, max_commit_time_ms)

    def _start_transaction(
        self,
        read_concern: Optional[ReadConcern],
        write_concern: Optional[WriteConcern],
        read_preference: Any,
        max_commit_time_ms: Optional[int],
    ) -> _TransactionContext:
        self._check_ended()
        if self._options.snapshot:
            raise InvalidOperation("Transactions are not supported in snapshot sessions")
        if self.in_transaction:
            raise InvalidOperation("Transaction already in progress")
        defaults = self._options.default_transaction_options
        client = self._core
        rc = read_concern or getattr(defaults, "read_concern", None) or client.read_concern
        wc = write_concern or getattr(defaults, "write_concern", None) or client.write_concern
        rp = read_preference or getattr(defaults, "read_preference", None) or client.read_preference
        mct = max_commit_time_ms if max_commit_time_ms is not None else getattr(defaults, "max_commit_time_ms", None)
        self.txn_options = TransactionOptions(rc, wc, rp, mct)
        self._unpin()
        self.recovery_token = None
        ss = self._materialize()
        ss.txn_number += 1
        self.txn_state = TXN_STARTING
        if client.tracing is not None:
            client.tracing.start_transaction(self)
        return _TransactionContext(self)

    async def commit_transaction(self) -> None:
        """Commit the transaction (Motor: ``commit_transaction``)."""
        self._check_ended()
        state = self.txn_state
        if state == TXN_NONE:
            raise InvalidOperation("No transaction started")
        if state in (TXN_STARTING, TXN_COMMITTED_EMPTY):
            self.txn_state = TXN_COMMITTED_EMPTY
            self._end_trace_span()
            return
        if state == TXN_ABORTED:
            raise InvalidOperation("Cannot call commitTransaction after calling abortTransaction")
        retry = state == TXN_COMMITTED
        try:
            try:
                await self._finish("commitTransaction", retry)
            finally:
                self._end_trace_span()
        except PyMongoError as exc:
            self.txn_state = TXN_COMMITTED
            if is_unknown_commit(exc):
                exc._add_error_label("UnknownTransactionCommitResult")
            raise
        self.txn_state = TXN_COMMITTED

    async def abort_transaction(self) -> None:
        """Abort the transaction (Motor: ``abort_transaction``)."""
        self._check_ended()
        state = self.txn_state
        if state == TXN_NONE:
            raise InvalidOperation("No transaction started")
        if state == TXN_STARTING:
            self.txn_state = TXN_ABORTED
            self._end_trace_span()
            return
        if state == TXN_ABORTED:
            raise InvalidOperation("Cannot call abortTransaction twice")
        if state in (TXN_COMMITTED, TXN_COMMITTED_EMPTY):
            raise InvalidOperation("Cannot call abortTransaction after calling commitTransaction")
        try:
            await self._finish("abortTransaction", False)
        except PyMongoError:
            pass  # abort errors are ignored (transactions spec)
        finally:
            self.txn_state = TXN_ABORTED
            self._unpin()
            self._end_trace_span()

    async def _finish(self, command_name: str, retrying_commit: bool) -> None:
        opts = self.txn_options
        wc = opts.write_concern if opts else None
        max_time_ms = None
        if command_name == "commitTransaction":
            if opts and opts.max_commit_time_ms is not None:
                max_time_ms = opts.max_commit_time_ms
            if retrying_commit:
                wc = WriteConcern(**retried_commit_write_concern(wc.document if wc is not None else None))
        op = EndTransaction(command_name, self, wc.document if wc is not None and wc.document else None, max_time_ms)
        reply = await self._core.executor.execute(op, self)
        check_write_concern_error(reply)

    async def with_transaction(
        self,
        coro: Callable[["ClientSession"], Awaitable[_T]],
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_commit_time_ms: Optional[int] = None,
    ) -> _T:
        """Run *coro(session)* in a transaction with the convenient-API retry rules (Motor:
        ``with_transaction``; the first parameter is named ``coro`` as in Motor).

        Under a CSOT deadline (a ``pymongo.timeout()`` around the call, else the client's
        ``timeoutMS``) the whole call (callback, commit and their retries) runs under that
        one deadline, and retries stop when it passes; without one, after 120 s."""
        timeout = _csot.get_timeout()
        if timeout is None:
            timeout = getattr(self._core.executor, "_timeout", None)
        with _csot.inherit(timeout):
            return await self._with_transaction(
                coro, read_concern, write_concern, read_preference, max_commit_time_ms, timeout or None)

    async def _with_transaction(
        self, coro: Callable[["ClientSession"], Awaitable[_T]], read_concern: Optional[ReadConcern],
        write_concern: Optional[WriteConcern], read_preference: Any, max_commit_time_ms: Optional[int],
        timeout: Optional[float],
    ) -> _T:
        start = time.monotonic()
        csot = timeout is not None

        def within() -> bool:
            if csot:
                left = _csot.remaining()
                return left is None or left > 0
            return time.monotonic() - start < _WITH_TXN_TIMEOUT

        def expired(exc: BaseException) -> BaseException:
            # (CSOT: a retryable error when the deadline has passed surfaces as a timeout
            # error, the last error as its cause)
            if csot and not _csot.is_timeout_error(exc):
                err = _csot.expired_error(exc)
                err.__cause__ = exc
                return err
            return exc

        while True:
            self._start_transaction(read_concern, write_concern, read_preference, max_commit_time_ms)
            self.callback_timeout = timeout
            try:
                ret = await coro(self)
            except BaseException as exc:
                self.callback_timeout = None
                if self.in_transaction:
                    if csot:  # (CSOT: the abort gets a fresh timeoutMS of its own, even past the deadline)
                        with _csot.fresh(timeout):
                            await self.abort_transaction()
                    else:
                        await self.abort_transaction()
                if isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError"):
                    if within():
                        continue
                    raise expired(exc) from exc
                raise
            self.callback_timeout = None
            if not self.in_transaction:
                return ret
            while True:
                try:
                    await self.commit_transaction()
                except PyMongoError as exc:
                    ok = within()
                    if (
                        exc.has_error_label("UnknownTransactionCommitResult")
                        and not (isinstance(exc, OperationFailure) and exc.code == 50)
                    ):
                        if ok:
                            continue
                        raise expired(exc) from exc
                    if exc.has_error_label("TransientTransactionError"):
                        if ok:
                            break
                        raise expired(exc) from exc
                    raise
                return ret


def is_implicit(session: ClientSession) -> bool:
    """Whether *session* is an implicit session (made by the driver for one operation or
    cursor, never seen by the application)."""
    return session._implicit


def end_implicit(session: ClientSession) -> None:
    """Return implicit *session*'s server session to the pool (no I/O): what a facade calls
    when the operation or cursor it made the session for is over."""
    session._end_implicit()
