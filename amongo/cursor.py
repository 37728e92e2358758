"""The find cursor (Motor's ``AsyncIOMotorCursor``)."""
from __future__ import annotations

import asyncio
from collections import abc
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

from bson.code import Code
from bson.son import SON
from pymongo import CursorType
from pymongo.errors import InvalidOperation, OperationFailure

from amongo.engine import operations as _ops
from amongo._typing import _DocumentType
from amongo.command_cursor import _CursorBase
from amongo.engine.executor import Pin
from amongo.engine.operation import CursorCommand, read_concern_document_for, read_preference_for
from amongo.engine.session import ClientSession

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from amongo.collection import Collection

_TAILABLE = 2
_OPLOG_REPLAY = 8
_NO_TIMEOUT = 16
_AWAIT_DATA = 32
_EXHAUST = 64
_PARTIAL = 128


class Cursor(_CursorBase[_DocumentType]):
    """A cursor over the results of ``find`` (Motor: ``AsyncIOMotorCursor``). The chaining
    methods (``sort``, ``limit``, …) must be called before iteration starts."""

    def __init__(
        self,
        collection: "Collection[_DocumentType]",
        filter: Optional[Mapping[str, Any]] = None,
        projection: Any = None,
        skip: int = 0,
        limit: int = 0,
        no_cursor_timeout: bool = False,
        cursor_type: int = CursorType.NON_TAILABLE,
        sort: Any = None,
        allow_partial_results: bool = False,
        oplog_replay: bool = False,
        batch_size: int = 0,
        collation: Any = None,
        hint: Any = None,
        max_scan: Any = None,
        max_time_ms: Optional[int] = None,
        max: Any = None,
        min: Any = None,
        return_key: Optional[bool] = None,
        show_record_id: Optional[bool] = None,
        snapshot: Optional[bool] = None,
        comment: Any = None,
        session: Optional["ClientSession"] = None,
        allow_disk_use: Optional[bool] = None,
        let: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(collection, session, None)
        if filter is None:
            filter = {}
        _ops.validate_filter(filter)
        if not isinstance(skip, int):
            raise TypeError("skip must be an instance of int")
        if not isinstance(limit, int):
            raise TypeError("limit must be an instance of int")
        if not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        if cursor_type not in (CursorType.NON_TAILABLE, CursorType.TAILABLE, CursorType.TAILABLE_AWAIT, CursorType.EXHAUST):
            raise ValueError("not a valid value for cursor_type")
        if cursor_type == CursorType.EXHAUST and limit:
            raise InvalidOperation("Can't use limit and exhaust together.")
        self._filter = filter
        self._projection = _ops.fields_doc(projection)
        self._skip = skip
        self._limit_arg = limit
        self._flags = cursor_type
        if no_cursor_timeout:
            self._flags |= _NO_TIMEOUT
        if allow_partial_results:
            self._flags |= _PARTIAL
        if oplog_replay:
            self._flags |= _OPLOG_REPLAY
        self._sort = _ops.sort_document(sort)
        self._batch_size = batch_size
        self._collation = _ops.collation_doc(collation)
        self._hint = _ops.index_hint(hint)
        self._max_time_ms = max_time_ms
        self._max = max
        self._min = min
        self._return_key = return_key
        self._show_record_id = show_record_id
        self._comment = comment
        self._allow_disk_use = allow_disk_use
        self._let = let
        self._where: Any = None
        self._explain = False

    # -- chaining (Motor: sync, returns self) -----------------------------------------------
    def _check_okay_to_chain(self) -> None:
        if self._started:
            raise InvalidOperation("cannot set options after executing query")

    def batch_size(self, batch_size: int) -> "Self":
        """Limit the number of documents in each batch (Motor: ``AsyncIOMotorCursor.batch_size``).

        :raises TypeError: not an int.
        :raises ValueError: negative.
        :raises pymongo.errors.InvalidOperation: the cursor already started.
        """
        if not isinstance(batch_size, int):
            raise TypeError("batch_size must be an integer")
        if batch_size < 0:
            raise ValueError("batch_size must be >= 0")
        self._check_okay_to_chain()
        self._batch_size = batch_size
        return self

    def limit(self, limit: int) -> "Self":
        """Return at most *limit* documents; 0 means no limit, a negative value one batch
        (Motor: ``AsyncIOMotorCursor.limit``).
        """
        if not isinstance(limit, int):
            raise TypeError("limit must be an integer")
        if self._flags & _EXHAUST:
            raise InvalidOperation("Can't use limit and exhaust together.")
        self._check_okay_to_chain()
        self._limit_arg = limit
        return self

    def skip(self, skip: int) -> "Self":
        """Skip the first *skip* documents (Motor: ``AsyncIOMotorCursor.skip``)."""
        if not isinstance(skip, int):
            raise TypeError("skip must be an integer")
        if skip < 0:
            raise ValueError("skip must be >= 0")
        self._check_okay_to_chain()
        self._skip = skip
        return self

    def sort(self, key_or_list: Any, direction: Any = None) -> "Self":
        """Sort by a key and direction, or a list of ``(key, direction)`` pairs
        (Motor: ``AsyncIOMotorCursor.sort``).
        """
        self._check_okay_to_chain()
        self._sort = _ops.sort_document(_ops.index_list(key_or_list, direction))
        return self

    def hint(self, index: Any) -> "Self":
        """Use the index *index* (a name or a key specification) (Motor: ``AsyncIOMotorCursor.hint``)."""
        self._check_okay_to_chain()
        self._hint = _ops.index_hint(index)
        return self

    def max_time_ms(self, max_time_ms: Optional[int]) -> "Self":
        """Send ``maxTimeMS`` with the query (Motor: ``AsyncIOMotorCursor.max_time_ms``)."""
        if max_time_ms is not None and not isinstance(max_time_ms, int):
            raise TypeError("max_time_ms must be an integer or None")
        self._check_okay_to_chain()
        self._max_time_ms = max_time_ms
        return self

    def max_await_time_ms(self, max_await_time_ms: Optional[int]) -> "Self":
        """For tailable-await cursors, the server's wait for new data in each ``getMore``
        (Motor: ``AsyncIOMotorCursor.max_await_time_ms``); ignored otherwise, as in PyMongo.
        """
        if max_await_time_ms is not None and not isinstance(max_await_time_ms, int):
            raise TypeError("max_await_time_ms must be an integer or None")
        self._check_okay_to_chain()
        if self._flags & _AWAIT_DATA:
            self._max_await_time_ms = max_await_time_ms
        return self

    def max_scan(self, max_scan: Any) -> "Self":
        """Accepted for Motor compatibility (``AsyncIOMotorCursor.max_scan``); MongoDB 4.0
        removed ``maxScan``, so nothing is sent, as with PyMongo 4.
        """
        self._check_okay_to_chain()
        return self

    def max(self, spec: Any) -> "Self":
        """The exclusive upper bound of the index range (Motor: ``AsyncIOMotorCursor.max``)."""
        self._check_okay_to_chain()
        self._max = _ops.index_document(spec)
        return self

    def min(self, spec: Any) -> "Self":
        """The inclusive lower bound of the index range (Motor: ``AsyncIOMotorCursor.min``)."""
        self._check_okay_to_chain()
        self._min = _ops.index_document(spec)
        return self

    def collation(self, collation: Any) -> "Self":
        """Use the collation *collation* (Motor: ``AsyncIOMotorCursor.collation``)."""
        self._check_okay_to_chain()
        self._collation = _ops.collation_doc(collation)
        return self

    def comment(self, comment: Any) -> "Self":
        """Attach *comment* to the query (Motor: ``AsyncIOMotorCursor.comment``)."""
        self._check_okay_to_chain()
        self._comment = comment
        return self

    def where(self, code: Union[str, Code]) -> "Self":
        """Add a ``$where`` JavaScript clause (Motor: ``AsyncIOMotorCursor.where``)."""
        self._check_okay_to_chain()
        if not isinstance(code, Code):
            code = Code(code)
        self._where = code
        return self

    def allow_disk_use(self, allow_disk_use: bool) -> "Self":
        """Let the server use temporary files for a large sort
        (Motor: ``AsyncIOMotorCursor.allow_disk_use``).
        """
        if not isinstance(allow_disk_use, bool):
            raise TypeError("allow_disk_use must be a bool")
        self._check_okay_to_chain()
        self._allow_disk_use = allow_disk_use
        return self

    def add_option(self, mask: int) -> "Self":
        """Set query flag bits (:class:`pymongo.CursorType` values; Motor:
        ``AsyncIOMotorCursor.add_option``).
        """
        if not isinstance(mask, int):
            raise TypeError("mask must be an int")
        self._check_okay_to_chain()
        if mask & _EXHAUST and self._limit_arg:
            raise InvalidOperation("Can't use limit and exhaust together.")
        self._flags |= mask
        return self

    def remove_option(self, mask: int) -> "Self":
        """Clear query flag bits (Motor: ``AsyncIOMotorCursor.remove_option``)."""
        if not isinstance(mask, int):
            raise TypeError("mask must be an int")
        self._check_okay_to_chain()
        self._flags &= ~mask
        return self

    def clone(self) -> "Cursor[_DocumentType]":
        """A fresh, unstarted copy of this cursor (Motor: ``clone``)."""
        c = type(self)(self._collection, self._filter, session=self._explicit_session)
        for attr in ("_projection", "_skip", "_limit_arg", "_flags", "_sort", "_batch_size", "_collation",
                     "_hint", "_max_time_ms", "_max", "_min", "_return_key", "_show_record_id", "_comment",
                     "_allow_disk_use", "_let", "_where", "_max_await_time_ms", "_read_ahead"):
            setattr(c, attr, getattr(self, attr))
        return c

    def rewind(self) -> "Self":
        """Reset to the unstarted state (Motor: ``rewind``, synchronous)."""
        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        if self._streaming():
            self._executor.end_stream(self._stream_pin)  # type: ignore[arg-type]  # (the server drops the cursor with it)
        elif self._id and not self._killed and self._address is not None:
            self._executor.schedule_kill_cursor(self._address, self._ns_db, self._ns_coll, self._id, None)
        self._stream_pin = None
        self._end_session()
        self._data.clear()
        self._id = None
        self._address = None
        self._killed = False
        self._started = False
        self._returned = 0
        return self

    # -- command ------------------------------------------------------------------------------
    def _find_command(self) -> Dict[str, Any]:
        coll = self._collection
        filt = self._filter
        if self._where is not None:
            filt = dict(filt)
            filt["$where"] = self._where
        cmd: Dict[str, Any] = {"find": coll.name, "filter": filt}
        if self._sort:
            cmd["sort"] = self._sort
        if self._projection is not None:
            cmd["projection"] = self._projection
        if self._hint is not None:
            cmd["hint"] = self._hint
        if self._skip:
            cmd["skip"] = self._skip
        limit = self._limit_arg
        if limit:
            cmd["limit"] = abs(limit)
            if limit < 0:
                cmd["singleBatch"] = True
        self._limit = abs(limit) if limit > 0 else 0
        if self._batch_size:
            bs = self._batch_size
            if limit == bs:
                # As PyMongo (CRUD spec): batchSize == limit would leave an open cursor and
                # cost a getMore that returns nothing; one more lets the server close it.
                bs += 1
            cmd["batchSize"] = bs
        if self._comment is not None:
            cmd["comment"] = self._comment
        if self._max_time_ms is not None:
            cmd["maxTimeMS"] = self._max_time_ms
        if self._max is not None:
            cmd["max"] = self._max
        if self._min is not None:
            cmd["min"] = self._min
        if self._return_key is not None:
            cmd["returnKey"] = self._return_key
        if self._show_record_id is not None:
            cmd["showRecordId"] = self._show_record_id
        flags = self._flags
        if flags & _TAILABLE:
            cmd["tailable"] = True
        if flags & _AWAIT_DATA:
            cmd["awaitData"] = True
        if flags & _OPLOG_REPLAY:
            cmd["oplogReplay"] = True
        if flags & _NO_TIMEOUT:
            cmd["noCursorTimeout"] = True
        if flags & _PARTIAL:
            cmd["allowPartialResults"] = True
        if self._collation is not None:
            cmd["collation"] = self._collation
        if self._allow_disk_use is not None:
            cmd["allowDiskUse"] = self._allow_disk_use
        if self._let is not None:
            cmd["let"] = self._let
        rc = read_concern_document_for(self._explicit_session, coll.read_concern)
        if rc:
            cmd["readConcern"] = rc
        return cmd

    async def _initial(self) -> None:
        coll = self._collection
        self._check_max_await()
        cmd = self._find_command()
        if self._flags & _EXHAUST:
            # Exhaust (OP_MSG exhaustAllowed on the getMores: the server streams the batches
            # with moreToCome on one connection, kept out of the pool until the stream ends).
            # As PyMongo 4.20: refused by a mongos (checked before the find, as PyMongo's
            # first iteration does); allowed in a transaction and in load-balanced mode, where
            # the stream runs on the cursor's pinned connection.
            if await self._executor.is_mongos():
                self._killed = True
                raise InvalidOperation("Exhaust cursors are not supported by mongos")
            self._stream_pin = self._pin if self._pin is not None else Pin("cursor")
        session = self._new_implicit_session()
        self._session = session
        op = CursorCommand(
            coll.database.name, cmd, self._codec_options,
            read_preference=read_preference_for(self._explicit_session, coll.read_preference),
            retryable_read=True, is_write=False, read_concern=None, write_concern=None, pin=self._pin,
        )
        try:
            reply = await self._executor.execute(op, session)
        except BaseException:
            self._killed = True
            self._end_session()
            raise
        self._take_cursor(reply, op.server_address, first=True)
        if cmd.get("singleBatch") and self._id:
            # A server that kept the cursor open despite singleBatch: kill it, keep the batch.
            cid, self._id = self._id, 0
            self._killed = True
            await self._kill_server_cursor(cid)
            self._end_session()

    def _is_tailable_empty(self) -> bool:
        return bool(self._flags & _TAILABLE) and not self._killed

    async def _tailable_wait(self) -> _DocumentType:
        # A tailable cursor with no new data: keep polling while alive (Motor's next()
        # waits likewise with awaitData; without it, a short pause avoids a busy loop).
        while not self._data and not self._killed:
            if not self._flags & _AWAIT_DATA:
                await asyncio.sleep(0.1)
            await self._refresh()
        if self._data:
            return self._pop()
        raise StopAsyncIteration

    async def distinct(self, key: str) -> List[Any]:
        """Distinct values of *key* among this cursor's matches (Motor: ``distinct``)."""
        kwargs: Dict[str, Any] = {}
        if self._max_time_ms is not None:
            kwargs["maxTimeMS"] = self._max_time_ms
        if self._comment is not None:
            kwargs["comment"] = self._comment
        if self._collation is not None:
            kwargs["collation"] = self._collation
        return await self._collection.distinct(key, self._filter, session=self._explicit_session, **kwargs)

    async def explain(self) -> Dict[str, Any]:
        """The server's explain output for this query (Motor: ``explain``)."""
        cmd = self._find_command()
        return await self._collection.database.command(
            {"explain": cmd}, session=self._explicit_session,
            read_preference=self._collection.read_preference,
        )


class RawBatchCursor(Cursor[_DocumentType]):
    """A find cursor that yields raw BSON batches (Motor: ``AsyncIOMotorRawBatchCursor``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument

        self._raw_batches = True
        self._codec_options = self._codec_options.with_options(document_class=RawBSONDocument)

    def _take_cursor(self, reply: Mapping[str, Any], address: Any, first: bool) -> None:
        cursor = _ops.cursor_document(reply, first)
        batch = cursor["firstBatch" if first else "nextBatch"]
        raw = b"".join(d.raw for d in batch)
        self._id = cursor["id"]
        if address is not None:
            self._address = address
        if raw:
            self._data.append(raw)
        if not self._id:
            self._killed = True
            self._end_session()
