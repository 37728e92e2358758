"""Cursors over command results (Motor's ``AsyncIOMotorCommandCursor`` and
``AsyncIOMotorLatentCommandCursor``), and the batching machinery shared with find cursors."""
from __future__ import annotations

import asyncio
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, ClassVar, Dict, Generic, List, Mapping, Optional, Tuple

from bson.codec_options import CodecOptions
from pymongo.errors import InvalidOperation, OperationFailure

from amongo import _csot
from amongo._common import executor_of
from amongo._typing import _DocumentType
from amongo.engine.operation import (
    CursorCommand, GetMore, KillCursors, read_concern_document_for, read_preference_for, write_concern_for,
)
from amongo.engine.executor import Pin
from amongo.engine.operations import cursor_document
from amongo.engine.session import ClientSession, end_implicit

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from amongo.collection import Collection

Address = Tuple[str, int]
_FROM_COMMAND: Any = object()  # CommandCursor's getMore comment: the command's own


class _CursorBase(Generic[_DocumentType]):
    """State and iteration shared by every cursor: the buffered batch, getMore, killCursors,
    the implicit session's lifetime, and Motor's ``to_list`` / ``next`` semantics. Generic in
    the document type: ``async for``, ``next``, ``to_list`` give ``_DocumentType``."""

    #: The smallest ``to_list`` length: 0 in Motor's API (``to_list(0)`` fetches the first
    #: batch and returns ``[]``); the PyMongo-style cursors set 1 (``to_list(0)`` raises
    #: ValueError, as in PyMongo). A class attribute, so both APIs run one ``to_list``.
    _min_to_list_length: ClassVar[int] = 0

    def __init__(self, collection: "Collection[Any]", session: Optional["ClientSession"], codec_options: Optional[CodecOptions[Any]]) -> None:
        self._collection = collection
        self._client = collection.database.client
        #: the engine this cursor's operations run on (shared by its collection)
        self._executor = executor = executor_of(collection)
        if session is None:  # (a cursor made inside ``async with session.bind():`` keeps it)
            session = executor.bound_session()
        self._explicit_session = session
        self._session: Optional["ClientSession"] = session
        self._codec_options = codec_options or collection.codec_options
        self._data: Deque[Any] = deque()
        self._id: Optional[int] = None
        self._address: Optional[Address] = None
        self._ns_db = collection.database.name
        self._ns_coll = collection.name
        self._killed = False
        self._started = False
        self._batch_size = 0
        self._limit = 0
        self._returned = 0
        self._max_await_time_ms: Optional[int] = None
        self._raw_batches = False
        self._post_batch_resume_token: Any = None
        self._kill_pending = False  # a getMore failed: close() sends killCursors all the same
        # CSOT: the pymongo.timeout() the cursor was created under; its getMores and close each
        # run under a fresh deadline of that length (as PyMongo's cursors keep their timeout)
        self._timeout: Optional[float] = _csot.get_timeout()
        # load-balanced mode: the connection this cursor's getMore/killCursors run on
        self._pin = executor.cursor_pin()
        # exhaust cursors: the connection the server streams batches on (moreToCome)
        self._stream_pin: Optional[Pin] = None
        self._read_ahead = False
        self._ahead: Optional["asyncio.Future[Dict[str, Any]]"] = None  # the in-flight read-ahead

    # -- Motor properties ---------------------------------------------------------------------
    @property
    def address(self) -> Optional[Address]:
        return self._address

    @property
    def cursor_id(self) -> Optional[int]:
        return self._id

    @property
    def alive(self) -> bool:
        """Whether more documents may be available (Motor: ``alive``)."""
        return bool(self._data) or not self._killed

    @property
    def session(self) -> Optional["ClientSession"]:
        return self._explicit_session

    def get_io_loop(self) -> Any:
        return self._client.get_io_loop()

    # -- batching -----------------------------------------------------------------------------
    async def _initial(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take_cursor(self, reply: Mapping[str, Any], address: Optional[Address], first: bool) -> None:
        cursor = cursor_document(reply, first)
        self._id = cursor["id"]
        ns = cursor.get("ns")
        if ns:
            db, _, coll = ns.partition(".")
            self._ns_db, self._ns_coll = db, coll
        batch = cursor["firstBatch" if first else "nextBatch"]
        self._post_batch_resume_token = cursor.get("postBatchResumeToken")
        if address is not None:
            self._address = address
        if self._raw_batches:
            self._data.append(batch)
        else:
            self._data.extend(batch)
        if not self._id:
            self._killed = True
            self._end_session()

    def _end_session(self) -> None:
        s = self._session
        if s is not None and s is not self._explicit_session:
            end_implicit(s)
        self._session = None

    def _check_max_await(self) -> None:
        """Before the first command: ``maxAwaitTimeMS`` must be below the deadline the cursor
        runs under (its ``pymongo.timeout()``, else the client's ``timeoutMS``)."""
        timeout = _csot.get_timeout()
        if timeout is None:
            timeout = self._executor.timeout
        _csot.check_max_await(self._max_await_time_ms, timeout)

    def _new_implicit_session(self) -> Optional["ClientSession"]:
        if self._explicit_session is not None:
            return self._explicit_session
        return self._executor.implicit_session()

    def _next_batch_size(self) -> Optional[int]:
        """The ``batchSize`` of the next getMore; None when the limit is reached by what was
        received (returned + buffered)."""
        n = self._batch_size
        if self._limit:
            remaining = self._limit - self._returned - (0 if self._raw_batches else len(self._data))
            if remaining <= 0:
                return None
            n = min(n, remaining) if n else remaining
        return n

    def _streaming(self) -> bool:
        """Whether the server is streaming this exhaust cursor's batches (moreToCome) on its
        stream connection (in load-balanced mode the cursor's pinned connection, held from
        the find on)."""
        stream = self._stream_pin
        conn = stream.conn if stream is not None else None
        return conn is not None and conn.pending_reply

    async def _fetch_more(self, n: int) -> Dict[str, Any]:
        """The next batch's reply: read off the exhaust stream while the server streams, else
        a getMore (with ``exhaustAllowed`` for an exhaust cursor)."""
        stream = self._stream_pin
        streaming = self._streaming()
        op = GetMore(self._ns_db, self._ns_coll, self._id, self._address, self._codec_options,  # type: ignore[arg-type]
                     n, self._max_await_time_ms, getattr(self, "_comment", None), self._pin or stream,
                     exhaust_allowed=stream is not None)
        if streaming:
            return await self._executor.read_more(op, stream, self._session)  # type: ignore[arg-type]
        reply: Dict[str, Any] = await self._executor.execute(op, self._session)
        return reply

    def _schedule_read_ahead(self) -> None:
        """With :meth:`read_ahead` on, send the next getMore now, while the application
        consumes the batch just received (not inside a transaction)."""
        if not self._read_ahead or self._ahead is not None or self._killed or not self._id:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # (read_ahead() called outside the loop: the next batch schedules it)
            return
        explicit = self._explicit_session
        if explicit is not None and explicit.in_transaction:
            return
        n = self._next_batch_size()
        if n is None:
            return
        with _csot.inherit(self._timeout):  # (the task copies the context: the cursor's deadline)
            task = asyncio.ensure_future(self._fetch_more(n))
        task.add_done_callback(_retrieve_exception)
        self._ahead = task

    async def _cancel_read_ahead(self) -> None:
        """Cancel the in-flight read-ahead getMore, if any, and wait until it is over."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.cancel()
            await asyncio.wait((ahead,))

    async def _get_more(self) -> None:
        fetch: Any = self._ahead
        if fetch is not None:
            self._ahead = None  # (its error, if any, surfaces here: awaiting the task raises it)
        else:
            n = self._next_batch_size()
            if n is None:
                await self.close()
                return
            fetch = self._fetch_more(n)
        try:
            with _csot.inherit(self._timeout):
                reply = await fetch
        except OperationFailure as exc:
            if exc.code in (43, 237) or self._stream_pin is not None:
                # CursorNotFound / CursorKilled; or an exhaust cursor's getMore failed (sent, or
                # a streamed batch's ok: 0 reply): the server has closed the cursor, so no
                # killCursors, now or at close() (as PyMongo's exhaust cursors)
                self._id = 0
            elif not exc.timeout and not self._killed and self._pin is None:
                # The server still has the cursor: kill it (as PyMongo's close() does). A pinned
                # cursor (load-balanced mode) keeps its connection until close() kills it
                # (load-balancers spec).
                self._killed = True
                await self._kill_server_cursor(self._id)
                self._id = 0
            else:  # the server cursor may live on: close() still kills it
                self._kill_pending = True
            self._killed = True
            self._end_session()
            raise
        except BaseException as exc:
            if _csot.is_timeout_error(exc):  # the server cursor lives on: close() kills it
                self._kill_pending = True
            self._killed = True
            self._end_session()
            raise
        self._take_cursor(reply, None, first=False)

    async def _refresh(self) -> int:
        """Fill the buffer; return how many documents are buffered."""
        if not self._started:
            self._started = True
            await self._initial()
        elif not self._data and not self._killed and self._id:
            await self._get_more()
        else:
            return len(self._data)
        if self._read_ahead:
            await self._start_read_ahead()
        return len(self._data)

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            await self._initial()
            if self._read_ahead:
                await self._start_read_ahead()

    async def _start_read_ahead(self) -> None:
        """Schedule the read-ahead and let it run up to its first wait: its getMore is on
        the wire before the application starts on the batch (iterating a buffered batch
        never yields to the event loop, so a task merely scheduled would wait for the end
        of the batch)."""
        self._schedule_read_ahead()
        if self._ahead is not None:
            await asyncio.sleep(0)

    def read_ahead(self, enabled: bool = True) -> "Self":
        """Fetch the next batch while the application consumes the current one: once a
        batch arrives, the getMore for the following batch is already sent (amongo only: no
        Motor or PyMongo method; off by default). Chainable, and may be called at any time:
        on a cursor already started (PyMongo's ``await coll.aggregate(...)``) the next
        getMore is sent at once.

        Worth it when the server's per-batch latency is significant and the application
        does work per document; it holds at most one extra batch in memory. An error of the
        read-ahead getMore surfaces on the next iteration that needs the batch; :meth:`close`
        cancels and awaits an in-flight read-ahead before killing the server cursor. Inside a
        transaction getMores stay on demand.

        :param enabled: False turns read-ahead off again.
        :raises TypeError: *enabled* is not a bool.
        """
        if not isinstance(enabled, bool):
            raise TypeError("enabled must be a bool")
        self._read_ahead = enabled
        if enabled and self._started:
            self._schedule_read_ahead()
        return self

    def _pop(self) -> _DocumentType:
        doc: _DocumentType = self._data.popleft()
        self._returned += 1
        return doc

    # -- iteration --------------------------------------------------------------------------
    def __aiter__(self) -> "Self":
        return self

    async def __anext__(self) -> _DocumentType:
        while True:
            if self._data:
                if self._limit and self._returned >= self._limit and not self._raw_batches:
                    await self._close_at_limit()
                    raise StopAsyncIteration
                return self._pop()
            if self._killed and self._started:
                raise StopAsyncIteration
            # (CSOT: one deadline for the whole fetch, a tailable cursor's repeated getMores
            # included: timeoutMS bounds each next(), not each getMore)
            with _csot.inherit(self._timeout):
                await self._refresh()
                if not self._data and (self._killed or self._is_tailable_empty()):
                    if self._killed:
                        raise StopAsyncIteration
                    return await self._tailable_wait()

    def _is_tailable_empty(self) -> bool:
        return False

    async def _tailable_wait(self) -> _DocumentType:
        raise StopAsyncIteration

    async def next(self) -> _DocumentType:
        """The next document; StopAsyncIteration when exhausted (Motor: ``next``)."""
        return await self.__anext__()

    async def try_next(self) -> Optional[_DocumentType]:
        """The next document, or None if the current batch is exhausted but the cursor is
        still alive (Motor: ``try_next``)."""
        if not self._data:
            if self._killed and self._started:
                return None
            await self._refresh()
        if self._data:
            return self._pop()
        return None

    async def to_list(self, length: Optional[int] = None) -> List[_DocumentType]:
        """Read up to *length* documents (all when None) into a list (Motor and PyMongo:
        ``to_list``).

        As in Motor, ``to_list(0)`` fetches the first batch and returns ``[]``; on the
        PyMongo-style cursors (PyMongo: ``AsyncCursor.to_list``) a length below 1 raises
        ValueError."""
        if length is not None:
            if not isinstance(length, int):
                raise TypeError("length must be an int, not %r" % (length,))
            if length < self._min_to_list_length:
                raise ValueError("length must be non-negative" if self._min_to_list_length == 0
                                 else "to_list() length must be greater than 0")
        result: List[_DocumentType] = []
        if length == 0:
            await self._ensure_started()
            return result
        data = self._data
        while True:
            if data:
                if length is None:
                    if self._limit:
                        take = self._limit - self._returned
                        while data and take > 0:
                            result.append(data.popleft())
                            take -= 1
                            self._returned += 1
                        if take <= 0:
                            await self._close_at_limit()
                            return result
                    else:
                        result.extend(data)
                        self._returned += len(data)
                        data.clear()
                else:
                    while data and len(result) < length:
                        if self._limit and self._returned >= self._limit:
                            await self._close_at_limit()
                            return result
                        result.append(data.popleft())
                        self._returned += 1
                    if len(result) >= length:
                        return result
            if self._killed and self._started:
                return result
            await self._refresh()
            if not data and self._killed:
                return result

    async def close(self) -> None:
        """Kill the server-side cursor, if any (Motor: ``close``).

        As in Motor and PyMongo, documents already buffered stay readable (``alive`` is
        True while there are any), and a cursor closed before it started never runs."""
        self._started = True
        try:
            if self._ahead is not None:
                await self._cancel_read_ahead()
            stream = self._stream_pin
            if stream is not None and self._streaming():
                # The server is still streaming batches on that connection: close it (the
                # server drops the cursor with it; its unread replies never reach the pool).
                self._executor.end_stream(stream)
                self._id = 0
            if not self._killed or self._kill_pending:
                self._killed = True
                self._kill_pending = False
                with _csot.inherit(self._timeout):
                    await self._kill_server_cursor(self._id)
                self._id = 0
        finally:
            if self._pin is not None:
                self._pin.release()
        self._end_session()

    async def _close_at_limit(self) -> None:
        """The limit is reached: drop anything buffered past it and close."""
        self._data.clear()
        await self.close()

    async def _kill_server_cursor(self, cid: Optional[int]) -> None:
        if cid and self._address is not None:
            try:
                await self._executor.execute(
                    KillCursors(self._ns_db, self._ns_coll, [cid], self._address, self._pin), self._session)
            except Exception:
                pass

    async def __aenter__(self) -> "Self":
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.close()

    def __del__(self) -> None:
        try:
            if self._stream_pin is not None and self._streaming():
                self._executor.end_stream(self._stream_pin)  # (the server drops the cursor)
                self._killed = True
            if self._pin is not None:
                self._pin.release()
            if not self._killed and self._id and self._address is not None:
                self._executor.schedule_kill_cursor(self._address, self._ns_db, self._ns_coll, self._id, self._session if self._session is not self._explicit_session else None)
                self._killed = True
        except Exception:
            pass

    # -- deprecated Motor API ---------------------------------------------------------------------
    @property
    def fetch_next(self) -> Any:
        """Deprecated Motor API: a future resolving to whether a document is available."""
        warnings.warn("fetch_next is deprecated, use 'async for' instead", DeprecationWarning, stacklevel=2)
        import asyncio

        async def _fetch() -> bool:
            if self._data:
                return True
            if self._killed and self._started:
                return False
            await self._refresh()
            return bool(self._data)

        return asyncio.ensure_future(_fetch())

    def next_object(self) -> Any:
        """Deprecated Motor API: the next buffered document, or None."""
        warnings.warn("next_object is deprecated, use 'async for' instead", DeprecationWarning, stacklevel=2)
        if not self._data:
            return None
        return self._pop()

    def each(self, callback: Any) -> None:
        """Deprecated Motor API: call ``callback(doc, error)`` for each document, then
        ``callback(None, None)``."""
        if not callable(callback):
            raise TypeError("callback must be a callable")
        import asyncio

        async def _run() -> None:
            try:
                async for doc in self:
                    if callback(doc, None) is False:
                        await self.close()
                        return
            except Exception as exc:  # noqa: BLE001
                callback(None, exc)
                return
            callback(None, None)

        asyncio.ensure_future(_run())


class CommandCursor(_CursorBase[_DocumentType]):
    """A cursor over a command's result (Motor: ``AsyncIOMotorCommandCursor``; when
    ``latent`` the command is sent on first iteration, as Motor's
    ``AsyncIOMotorLatentCommandCursor``)."""

    def __init__(
        self,
        collection: "Collection[Any]",
        command: Optional[Dict[str, Any]],
        *,
        session: Optional["ClientSession"] = None,
        read_preference: Any = None,
        codec_options: Optional[CodecOptions[Any]] = None,
        max_await_time_ms: Optional[int] = None,
        batch_size: int = 0,
        retryable: bool = False,
        is_write: bool = False,
        parent: Any = None,
        latent: bool = False,
        missing_ns_ok: bool = False,
        require_cursor: bool = False,
        raw_batches: bool = False,
        getmore_comment: Any = _FROM_COMMAND,
    ) -> None:
        """(Built by the facades. *getmore_comment*, when given, is the getMores' ``comment``
        instead of the command's, as PyMongo's ``Database.cursor_command``; *raw_batches*
        yields raw BSON batches, as ``aggregate_raw_batches``.)"""
        super().__init__(collection, session, codec_options)
        self._command = command
        self._read_preference = read_preference
        self._max_await_time_ms = max_await_time_ms
        self._batch_size = batch_size or 0
        self._retryable = retryable
        self._is_write = is_write
        self._parent = parent if parent is not None else collection
        self._missing_ns_ok = missing_ns_ok
        self._require_cursor = require_cursor
        self._comment = command.get("comment") if command else None
        if getmore_comment is not _FROM_COMMAND:
            self._comment = getmore_comment
        self._raw_batches = raw_batches

    @classmethod
    def from_documents(cls, collection: "Collection[Any]", docs: List[Any], session: Optional["ClientSession"] = None) -> "CommandCursor[Any]":
        """A cursor over documents already in memory (no server cursor: nothing to fetch or kill)."""
        cursor = cls(collection, None, session=session)
        cursor._data.extend(docs)
        cursor._started = True
        cursor._killed = True
        cursor._id = 0
        return cursor

    @classmethod
    def from_reply(cls, collection: "Collection[Any]", reply: Mapping[str, Any], address: Optional[Address],
                   session: Optional["ClientSession"], comment: Any = None) -> "CommandCursor[Any]":
        """A started cursor over the ``cursor`` document of a *reply* already received from
        *address* (client bulkWrite's result cursor): its getMores and killCursors go to that
        server with *comment*, in *session*."""
        cursor = cls(collection, None, session=session)
        cursor._comment = comment
        cursor._started = True
        cursor._take_cursor(reply, address, first=True)
        return cursor

    def batch_size(self, batch_size: int) -> "Self":
        """Set the getMore batch size (Motor: ``batch_size``)."""
        if not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        self._batch_size = batch_size
        return self

    async def _initial(self) -> None:
        cmd = self._command
        assert cmd is not None
        self._check_max_await()
        parent = self._parent
        session = self._new_implicit_session()
        self._session = session
        # (the parent is always a collection: the one the cursor reads, or the collection an
        # aggregate with $out/$merge was started from)
        explicit = self._explicit_session
        rp = self._read_preference
        if rp is None:
            rp = read_preference_for(explicit, parent.read_preference)
            if self._is_write and rp is not None and rp.mode == 0:
                # (the executor applies the $out/$merge rule: primary unless every server is 5.0+)
                rp = None
        # (concerns are handed to the executor as data; it stamps them)
        rc = wc_doc = None
        if self._is_write:
            wc = write_concern_for(explicit, parent.write_concern)
            wc_doc = wc.document if wc is not None else None
            rc = read_concern_document_for(explicit, parent.read_concern)
        elif "readConcern" not in cmd and next(iter(cmd)) == "aggregate":
            rc = read_concern_document_for(explicit, parent.read_concern)
        op = CursorCommand(self._ns_db, cmd, self._codec_options, read_preference=rp,
                           retryable_read=self._retryable, is_write=self._is_write, read_concern=rc,
                           write_concern=wc_doc, pin=self._pin)
        try:
            reply = await self._executor.execute(op, session)
        except OperationFailure as exc:
            self._killed = True
            self._end_session()
            if self._missing_ns_ok and exc.code == 26:
                self._id = 0
                return
            raise
        except BaseException:
            self._killed = True
            self._end_session()
            raise
        if not reply.get("cursor"):  # e.g. $out on old servers
            if self._require_cursor:
                self._killed = True
                self._end_session()
                raise InvalidOperation("Command does not return a cursor.")
            self._killed = True
            self._id = 0
            self._end_session()
            return
        self._take_cursor(reply, op.server_address, first=True)

def _retrieve_exception(task: "asyncio.Future[Any]") -> None:
    """Mark a read-ahead's error as retrieved (it is raised again where the batch is needed,
    or dropped with a closed cursor): no "exception was never retrieved" log."""
    if not task.cancelled():
        task.exception()


class StreamCursor(CommandCursor[_DocumentType]):
    """The command cursor a change stream reads: a :class:`CommandCursor` with the small
    interface :class:`amongo.change_stream.ChangeStream` uses (the stream never touches the
    cursor's private state)."""

    async def start(self) -> None:
        """Send the ``aggregate`` if it was not sent yet (no getMore)."""
        await self._ensure_started()

    def pop_buffered(self) -> Optional[_DocumentType]:
        """The next buffered change, or None when the batch is consumed (never a getMore)."""
        return self._pop() if self._data else None

    @property
    def buffered(self) -> bool:
        """Whether changes of the current batch are still buffered."""
        return bool(self._data)

    @property
    def post_batch_resume_token(self) -> Any:
        """The ``postBatchResumeToken`` of the latest batch (None if the server sent none)."""
        return self._post_batch_resume_token

    @property
    def exhausted(self) -> bool:
        """The server cursor is closed and nothing is buffered: the stream is over."""
        return self._killed and not self._data

    @property
    def operation_session(self) -> Optional[ClientSession]:
        """The session the ``aggregate`` ran in (implicit or explicit), while the cursor lives."""
        return self._session


async def started(cursor: Any) -> Any:
    """*cursor* after its first command ran (no getMore): PyMongo's coroutines that return
    a cursor (``await coll.aggregate(...)``, ``await db.cursor_command(...)``)."""
    base: _CursorBase[Any] = cursor
    await base._ensure_started()
    return cursor


# Motor's name for the cursor aggregate() returns before it is started
LatentCommandCursor = CommandCursor
