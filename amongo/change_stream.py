"""Change streams (Motor's ``AsyncIOMotorChangeStream``).

Returned by ``watch()`` without awaiting; the ``aggregate`` with ``$changeStream`` is sent on
first use, and the stream resumes once after a resumable error (change-streams spec).
"""
from __future__ import annotations

from typing import Any, Dict, Generic, List, Mapping, Optional

from pymongo.errors import InvalidOperation, PyMongoError

from amongo import _csot
from amongo._common import executor_of
from amongo._typing import _DocumentType
from amongo.command_cursor import StreamCursor
from amongo.engine import operations as _ops
from amongo.server_errors import is_resumable as _is_resumable

class ChangeStream(Generic[_DocumentType]):
    """A change stream over a collection, database or deployment (Motor:
    ``AsyncIOMotorChangeStream``); generic in the document type of its target, which its
    change events are decoded as (PyMongo's ``ChangeStream[_DocumentType]``)."""

    def __init__(self, target: Any, pipeline: Any, full_document: Any, resume_after: Any,
                 max_await_time_ms: Any, batch_size: Any, collation: Any, start_at_operation_time: Any,
                 session: Any, start_after: Any, comment: Any = None,
                 full_document_before_change: Any = None, show_expanded_events: Any = None, *,
                 aggregate_on: Any = None, aggregate_target: Any = None, all_dbs: bool = False) -> None:
        """(Built by ``watch()``: *aggregate_on* is the collection the ``aggregate`` runs on —
        ``admin.$cmd.aggregate`` for a deployment, ``<db>.$cmd.aggregate`` for a database —
        and *aggregate_target* its ``aggregate`` value: 1, or the collection's name.)"""
        if pipeline is None:
            pipeline = []
        if not isinstance(pipeline, list):
            raise TypeError("pipeline must be a list")
        if aggregate_on is None or aggregate_target is None:
            raise TypeError("target must be a client, database or collection")
        self._target = target
        self._coll = aggregate_on
        self._aggregate_target: Any = aggregate_target
        self._all_dbs = all_dbs
        self._client = self._coll.database.client
        self._pipeline = pipeline
        self._full_document = full_document
        self._full_document_before_change = full_document_before_change
        self._resume_token: Optional[Mapping[str, Any]] = start_after or resume_after
        self._uses_start_after = start_after is not None
        self._uses_resume_after = resume_after is not None
        self._start_at_operation_time = start_at_operation_time
        self._max_await_time_ms = max_await_time_ms
        self._batch_size = batch_size
        self._collation = collation
        self._session = session
        self._comment = comment
        self._show_expanded_events = show_expanded_events
        self._cursor: Optional[StreamCursor[_DocumentType]] = None
        self._closed = False
        self._timed_out = False  # the last iteration timed out: the next call resumes
        # CSOT: the deadline each next()/try_next() call runs under as a whole (getMore and any
        # resume): the pymongo.timeout() the stream was created in, else the client's timeoutMS
        # (as PyMongo's ChangeStream takes its target's timeout).
        timeout = _csot.get_timeout()
        self._timeout: Optional[float] = timeout if timeout is not None else executor_of(self._client).timeout

    def _stage(self) -> Dict[str, Any]:
        opts: Dict[str, Any] = {}
        if self._full_document is not None:
            opts["fullDocument"] = self._full_document
        if self._full_document_before_change is not None:
            opts["fullDocumentBeforeChange"] = self._full_document_before_change
        if self._all_dbs:
            opts["allChangesForCluster"] = True
        if self._show_expanded_events:
            opts["showExpandedEvents"] = True
        if self._resume_token is not None:
            if self._uses_start_after:
                opts["startAfter"] = self._resume_token
            else:
                opts["resumeAfter"] = self._resume_token
        elif self._start_at_operation_time is not None:
            opts["startAtOperationTime"] = self._start_at_operation_time
        return {"$changeStream": opts}

    async def _open(self) -> StreamCursor[_DocumentType]:
        cmd: Dict[str, Any] = {"aggregate": self._aggregate_target, "pipeline": [self._stage()] + list(self._pipeline), "cursor": {}}
        if self._batch_size is not None:
            cmd["cursor"] = {"batchSize": self._batch_size}
        if self._collation is not None:
            cmd["collation"] = _ops.collation_doc(self._collation)
        if self._comment is not None:
            cmd["comment"] = self._comment
        dbname = self._coll.database.name
        coll = self._coll
        cursor: StreamCursor[_DocumentType] = StreamCursor(
            coll, cmd, session=self._session, max_await_time_ms=self._max_await_time_ms,
            batch_size=self._batch_size or 0, retryable=True, parent=coll if self._aggregate_target != 1 else coll,
        )
        await cursor.start()
        pbrt = cursor.post_batch_resume_token
        if not cursor.buffered and pbrt is not None:
            # Cache the postBatchResumeToken of an empty first batch (change-streams spec), so a
            # resume before the first change starts where this stream started.
            self._resume_token = pbrt
            self._uses_start_after = False
        if (
            self._resume_token is None
            and self._start_at_operation_time is None
            and not cursor.buffered
            and pbrt is None
        ):
            session = cursor.operation_session or self._session
            op_time = getattr(session, "operation_time", None) if session is not None else None
            if op_time is not None:
                self._start_at_operation_time = op_time
        self._cursor = cursor
        return cursor

    @property
    def alive(self) -> bool:
        """Whether the stream can still return changes (Motor: ``alive``)."""
        return not self._closed

    @property
    def resume_token(self) -> Optional[Mapping[str, Any]]:
        """The token to resume after the last returned change (Motor: ``resume_token``)."""
        return self._resume_token

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorChangeStream.get_io_loop``)."""
        return self._client.get_io_loop()

    async def try_next(self) -> Optional[_DocumentType]:
        """The next change, or None if none is available now (Motor: ``try_next``)."""
        if self._closed:
            raise StopAsyncIteration
        with _csot.inherit(self._timeout):
            return await self._try_next()

    async def _try_next(self) -> Optional[_DocumentType]:
        doc: Optional[_DocumentType]
        try:
            if self._cursor is None:
                resumed, self._timed_out = self._timed_out, False
                cursor = await self._open()
                doc = cursor.pop_buffered()  # no getMore right after opening, unless...
                if doc is None and resumed:  # (...a resume after a timeout: on to the getMore that timed out)
                    doc = await cursor.try_next()
            else:
                cursor = self._cursor
                doc = await cursor.try_next()
        except PyMongoError as exc:
            if _csot.is_timeout_error(exc) and _csot.get_timeout() and not self._closed:
                # CSOT "Change Streams": a timed-out iteration leaves the stream usable; the
                # next call resumes with a fresh aggregate (the old cursor is killed).
                if self._cursor is not None:
                    await self._cursor.close()
                self._cursor = None
                self._timed_out = True
                raise
            if not _is_resumable(exc) or self._closed:
                await self.close()
                raise
            # Resume once for this error (change-streams spec): a fresh aggregate from the
            # resume token; a later getMore error gets its own resume.
            if self._cursor is not None:
                await self._cursor.close()
            self._cursor = None
            try:
                cursor = await self._open()
            except PyMongoError as exc2:
                if not (_csot.is_timeout_error(exc2) and _csot.get_timeout()):
                    await self.close()
                self._timed_out = True
                raise
            except BaseException:
                await self.close()
                raise
            doc = cursor.pop_buffered()
        if doc is None:
            pbrt = cursor.post_batch_resume_token
            if pbrt is not None and not cursor.buffered:
                self._resume_token = pbrt
                self._uses_start_after = False
            if cursor.exhausted:
                await self.close()
            return None
        token = doc.get("_id") if isinstance(doc, Mapping) else None
        if token is None:
            await self.close()
            raise InvalidOperation("Cannot provide resume functionality when the resume token is missing.")
        if not cursor.buffered and cursor.post_batch_resume_token is not None:
            self._resume_token = cursor.post_batch_resume_token
        else:
            self._resume_token = token
        self._uses_start_after = False
        self._start_at_operation_time = None
        return doc

    async def next(self) -> _DocumentType:
        """The next change, waiting for one (Motor: ``next``)."""
        while not self._closed:
            doc = await self.try_next()
            if doc is not None:
                return doc
        raise StopAsyncIteration

    def __aiter__(self) -> "ChangeStream[_DocumentType]":
        return self

    async def __anext__(self) -> _DocumentType:
        return await self.next()

    async def close(self) -> None:
        """Close the stream and its cursor (Motor: ``close``)."""
        self._closed = True
        if self._cursor is not None:
            await self._cursor.close()
            self._cursor = None

    async def __aenter__(self) -> "ChangeStream[_DocumentType]":
        # Entering opens the stream (the aggregate is sent), so errors surface here.
        if self._cursor is None and not self._closed:
            try:
                await self._open()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await self.close()

    def __enter__(self) -> None:
        raise RuntimeError('Use a change stream in "async with", not "with"')

    def __exit__(self, *args: Any) -> None:  # pragma: no cover
        pass


async def opened(stream: ChangeStream[_DocumentType]) -> ChangeStream[_DocumentType]:
    """*stream* after its ``aggregate`` ran (PyMongo's ``await coll.watch()``: errors surface
    here, and the stream is not returned)."""
    await stream._open()
    return stream
