"""Cursors over command results (Motor's ``AsyncIOMotorCommandCursor`` and
``AsyncIOMotorLatentCommandCursor``), and the batching machinery shared with find cursors."""
from __future__ import annotations

import warnings
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, Generic, List, Mapping, Optional, Tuple

from bson.codec_options import CodecOptions
from pymongo.errors import InvalidOperation, OperationFailure

from amongo import _csot
from amongo._typing import _DocumentType
from amongo.engine.operation import (
    CursorCommand, GetMore, KillCursors, read_concern_document_for, read_preference_for, write_concern_for,
)
from amongo.engine.operations import cursor_document
from amongo.engine.session import ClientSession

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from amongo.collection import Collection

Address = Tuple[str, int]


class _CursorBase(Generic[_DocumentType]):
    """State and iteration shared by every cursor: the buffered batch, getMore, killCursors,
    the implicit session's lifetime, and Motor's ``to_list`` / ``next`` semantics. Generic in
    the document type: ``async for``, ``next``, ``to_list`` give ``_DocumentType``."""

    def __init__(self, collection: "Collection[Any]", session: Optional["ClientSession"], codec_options: Optional[CodecOptions[Any]]) -> None:
        self._collection = collection
        self._client = collection.database.client
        #: the engine this cursor's operations run on (shared by its collection)
        self._executor = executor = collection._executor
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
            s._end_implicit()
        self._session = None

    def _check_max_await(self) -> None:
        """Before the first command: ``maxAwaitTimeMS`` must be below the deadline the cursor
        runs under (its ``pymongo.timeout()``, else the client's ``timeoutMS``)."""
        timeout = _csot.get_timeout()
        if timeout is None:
            timeout = self._client._executor._timeout
        _csot.check_max_await(self._max_await_time_ms, timeout)

    def _new_implicit_session(self) -> Optional["ClientSession"]:
        if self._explicit_session is not None:
            return self._explicit_session
        return self._executor.implicit_session()

    async def _get_more(self) -> None:
        n = self._batch_size
        if self._limit:
            remaining = self._limit - self._returned
            if remaining <= 0:
                await self.close()
                return
            n = min(n, remaining) if n else remaining
        op = GetMore(self._ns_db, self._ns_coll, self._id, self._address, self._codec_options,  # type: ignore[arg-type]
                     n, self._max_await_time_ms, getattr(self, "_comment", None), self._pin)
        try:
            with _csot.inherit(self._timeout):
                reply = await self._executor.execute(op, self._session)
        except OperationFailure as exc:
            if exc.code in (43, 237):  # CursorNotFound / CursorKilled
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
        return len(self._data)

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            await self._initial()

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
        """Read up to *length* documents (all when None) into a list (Motor: ``to_list``).

        As in Motor, ``to_list(0)`` fetches the first batch and returns ``[]``."""
        if length is not None:
            if not isinstance(length, int):
                raise TypeError("length must be an int, not %r" % (length,))
            if length < 0:
                raise ValueError("length must be non-negative")
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
    ) -> None:
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

    @classmethod
    def from_documents(cls, collection: "Collection[Any]", docs: List[Any], session: Optional["ClientSession"] = None) -> "CommandCursor[Any]":
        """A cursor over documents already in memory (no server cursor: nothing to fetch or kill)."""
        cursor = cls(collection, None, session=session)
        cursor._data.extend(docs)
        cursor._started = True
        cursor._killed = True
        cursor._id = 0
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

# Motor's name for the cursor aggregate() returns before it is started
LatentCommandCursor = CommandCursor
