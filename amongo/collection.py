"""A collection (Motor's ``AsyncIOMotorCollection``): CRUD, bulk writes, indexes."""
from __future__ import annotations

from collections import abc
from typing import TYPE_CHECKING, Any, Awaitable, ClassVar, Type, Dict, Iterable, List, Mapping, MutableMapping, Optional, Sequence, Tuple, Union, cast

import bson
from bson.codec_options import CodecOptions
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from bson.son import SON
from pymongo import ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    DuplicateKeyError,
    InvalidName,
    InvalidOperation,
    OperationFailure,
    WriteError,
)
from pymongo.operations import (
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    ReplaceOne,
    SearchIndexModel,
    UpdateMany,
    UpdateOne,
)
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.results import (
    BulkWriteResult,
    DeleteResult,
    InsertManyResult,
    InsertOneResult,
    UpdateResult,
)
from pymongo.write_concern import WriteConcern

from amongo.engine import operations as _ops
from amongo._typing import _DocumentType, _DocumentTypeArg
from amongo._common import _BaseObject, _facade_class
from amongo.server_errors import check_write_concern_error as _check_write_concern_error
from amongo.engine.session import ClientSession

from amongo.engine.executor import Executor
from amongo.engine.operation import (
    CreateIndexes, DropIndexes, FindAndModify, FindOne, KillCursors, ReadCommand, SearchIndexCommand, WriteCommand,
    WriteStatements, read_concern_document_for, write_concern_for,
)
from amongo.change_stream import ChangeStream
from amongo.command_cursor import CommandCursor
from amongo.cursor import Cursor, RawBatchCursor

if TYPE_CHECKING:  # pragma: no cover - (upward, for annotations only: the database builds collections)
    from amongo.database import Database


def validate_collection_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be an instance of str, not {type(name)}")
    if not name or ".." in name:
        raise InvalidName("collection names cannot be empty")
    if "$" in name and not (name.startswith("oplog.$main") or name.startswith("$cmd")):
        raise InvalidName(f"collection names must not contain '$': {name!r}")
    if name[0] == "." or name[-1] == ".":
        raise InvalidName(f"collection names must not start or end with '.': {name!r}")
    if "\x00" in name:
        raise InvalidName("collection names must not contain the null character")
    return name


class Collection(_BaseObject[_DocumentType]):
    """A MongoDB collection (Motor: ``AsyncIOMotorCollection``). Get one with ``db[name]``;
    generic in the document type (``find_one`` returns ``Optional[_DocumentType]``, cursors
    yield ``_DocumentType``)."""

    __slots__ = ("_database", "_name", "_full_name", "_client", "_db_name", "_rc_document")
    #: the classes this collection builds (the PyMongo-style layer sets its own)
    _cursor_class: "ClassVar[Type[Cursor[Any]]]" = _facade_class("amongo.cursor:Cursor")
    _raw_batch_cursor_class: "ClassVar[Type[RawBatchCursor[Any]]]" = _facade_class("amongo.cursor:RawBatchCursor")
    _command_cursor_class: "ClassVar[Type[CommandCursor[Any]]]" = _facade_class("amongo.command_cursor:CommandCursor")
    _change_stream_class: "ClassVar[Type[ChangeStream[Any]]]" = _facade_class("amongo.change_stream:ChangeStream")

    def __init__(
        self,
        database: Database[_DocumentType],
        name: str,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
        **kwargs: Any,
    ) -> None:
        validate_collection_name(name)
        self._inherit(database, codec_options, read_preference, write_concern, read_concern)
        self._database = database
        self._name = name
        self._full_name = f"{database.name}.{name}"
        self._client = database.client
        self._db_name = database.name
        #: the read concern's document, built once (``ReadConcern.document`` builds a dict)
        self._rc_document = self._read_concern.document

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The collection's name (Motor: ``AsyncIOMotorCollection.name``)."""
        return self._name

    @property
    def full_name(self) -> str:
        """``<database>.<collection>`` (Motor: ``AsyncIOMotorCollection.full_name``)."""
        return self._full_name

    @property
    def database(self) -> Database[_DocumentType]:
        """The :class:`~amongo.motor_asyncio.AsyncIOMotorDatabase` this collection belongs to
        (Motor: ``AsyncIOMotorCollection.database``).
        """
        return self._database

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorCollection.get_io_loop``)."""
        return self._client.get_io_loop()

    def wrap(self, obj: Any) -> Any:
        """Motor wraps PyMongo objects in Motor classes; amongo's objects already are the
        Motor-facing ones, so *obj* is returned unchanged (Motor: ``wrap``)."""
        return obj

    def __getattr__(self, name: str) -> "Collection[_DocumentType]":
        if name.startswith("_"):
            full = f"{self._name}.{name}"
            raise AttributeError(
                f"Collection has no attribute {name!r}. To access the {full} collection, use database['{full}']."
            )
        return self[name]

    def __getitem__(self, name: str) -> "Collection[_DocumentType]":
        return type(self)(self._database, f"{self._name}.{name}", self._codec_options, self._read_preference, self._write_concern, self._read_concern)  # type: ignore[arg-type]

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Collection):
            return self._database == other._database and self._name == other._name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._database.name, self._name))

    def __bool__(self) -> bool:
        raise NotImplementedError(
            "Collection objects do not implement truth value testing or bool(). Please compare with None instead: collection is not None"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"'Collection' object is not callable. If you meant to call the '{self._name.split('.')[-1]}' method on a 'Collection' object it is failing because no such method exists."
        )

    def __repr__(self) -> str:
        return f"Collection({self._database!r}, {self._name!r})"

    def with_options(
        self,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
    ) -> "Collection[_DocumentType]":
        """A copy with some options changed (Motor: ``with_options``)."""
        copy = type(self)(self._database, self._name)
        copy._inherit(self, codec_options, read_preference, write_concern, read_concern)
        return copy

    # -- helpers ----------------------------------------------------------------------------
    def _exec(self) -> "Executor":
        return self._executor

    def _wc(self, session: Optional["ClientSession"], write_concern: Optional[WriteConcern] = None) -> Optional[WriteConcern]:
        return write_concern_for(session, write_concern if write_concern is not None else self._write_concern)  # type: ignore[no-any-return]

    def _rc_doc(self, session: Optional["ClientSession"]) -> Optional[Dict[str, Any]]:
        return read_concern_document_for(session, self._read_concern)

    async def _write_cmd(
        self,
        kind: "type[WriteCommand]",
        cmd: Dict[str, Any],
        session: Optional["ClientSession"],
        *,
        write_concern: Optional[WriteConcern] = None,
    ) -> Dict[str, Any]:
        """Run *cmd* as a *kind* operation (:class:`FindAndModify`, :class:`CreateIndexes`,
        :class:`DropIndexes`: the kind says whether it is a retryable write)."""
        wc = self._wc(session, write_concern)
        op = kind(self._db_name, cmd, self._codec_options,
                  write_concern=wc.document if wc is not None else None,
                  unacknowledged=wc is not None and not wc.acknowledged)
        return await self._executor.execute(op, session)

    async def _read_cmd(
        self, cmd: Dict[str, Any], session: Optional["ClientSession"], *, retryable: bool = True,
        codec_options: Optional[CodecOptions[Any]] = None,
    ) -> Dict[str, Any]:
        """Run *cmd* (count, distinct, count_documents' aggregate) as a :class:`ReadCommand`
        with this collection's read preference and read concern."""
        op = ReadCommand(
            self._db_name, cmd, codec_options if codec_options is not None else self._codec_options,
            read_preference=self._read_preference_for(session), read_concern=self._rc_doc(session),
            retryable=retryable,
        )
        return await self._executor.execute(op, session)

    # -- inserts ----------------------------------------------------------------------------
    async def insert_one(
        self,
        document: Union[_DocumentType, RawBSONDocument],
        bypass_document_validation: Optional[bool] = None,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
    ) -> InsertOneResult:
        """Insert one document (Motor: ``insert_one``)."""
        _ops.validate_document(document, "document")
        # (one RawBSONDocument check: an ABC isinstance costs Python calls; a dict is none)
        raw = type(document) is not dict and isinstance(document, RawBSONDocument)
        if not raw and "_id" not in document:
            document["_id"] = _ops.new_object_id()  # type: ignore[index]  # a MutableMapping at runtime
        doc_id = document.get("_id")
        wc = self._wc(session)
        acknowledged = wc is None or wc.acknowledged
        options: Optional[Dict[str, Any]] = None
        if bypass_document_validation is not None or comment is not None:
            options = {}
            if bypass_document_validation is not None:
                options["bypassDocumentValidation"] = bypass_document_validation
            if comment is not None:
                options["comment"] = comment
        encoded: bytes = document.raw if raw else _ops.encode_document(document, False, self._codec_options)  # type: ignore[union-attr,assignment]
        op = WriteStatements(self._db_name, "insert", self._name, "documents", [encoded], options,
                             self._codec_options, retryable=True,
                             write_concern=wc.document if wc is not None else None,
                             unacknowledged=not acknowledged)
        reply = await self._executor.execute(op, session)
        if acknowledged:
            _raise_single_write_errors(reply)
        return InsertOneResult(doc_id, acknowledged)

    def _write_statements(
        self, name: str, options: Optional[Dict[str, Any]], field: str, stmt: Mapping[str, Any],
        session: Optional["ClientSession"], wc: Optional[WriteConcern], *, retryable: bool,
    ) -> Awaitable[Dict[str, Any]]:
        """Run an ``update``/``delete`` of one statement (an :class:`WriteStatements`
        operation)."""
        op = WriteStatements(
            self._db_name, name, self._name, field, [_ops.encode_document(stmt, False, self._codec_options)],
            options, self._codec_options, retryable=retryable,
            write_concern=wc.document if wc is not None else None,
            unacknowledged=wc is not None and not wc.acknowledged,
        )
        return self._executor.execute(op, session)

    async def insert_many(
        self,
        documents: Iterable[Union[_DocumentType, RawBSONDocument]],
        ordered: bool = True,
        bypass_document_validation: Optional[bool] = None,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
    ) -> InsertManyResult:
        """Insert documents (Motor: ``insert_many``); BulkWriteError on write errors."""
        if isinstance(documents, abc.Mapping) or not isinstance(documents, abc.Iterable) or isinstance(documents, (str, bytes)):
            raise TypeError("documents must be a non-empty list")
        ids: List[Any] = []
        docs: List[Any] = []
        # One pass: validate and assign _id (the hot loop of a 10k-document insert); the
        # documents are encoded later, all in one call when they fit one command.
        new_ids = _ops.object_ids()
        add_id, add_doc = ids.append, docs.append
        for doc in documents:
            if type(doc) is dict:
                if "_id" not in doc:
                    doc["_id"] = next(new_ids)
                add_id(doc["_id"])
            else:
                _ops.validate_document(doc, "document")
                if isinstance(doc, RawBSONDocument):
                    add_id(doc.get("_id"))
                else:
                    if "_id" not in doc:
                        doc["_id"] = next(new_ids)  # type: ignore[index]
                    add_id(doc["_id"])
            add_doc(doc)
        if not docs:
            raise TypeError("documents must be a non-empty list")
        bulk = _ops.Bulk(self._database.name, self._name, self._codec_options, ordered,
                         bypass_document_validation, comment=comment)
        bulk.insert_docs = docs
        async with self._executor.trace_operation("insert", self._db_name, self._name, session):
            result, acknowledged = await bulk.execute(self._executor, session, self._wc(session), self._executor.write_caps())
        return InsertManyResult(ids, acknowledged)

    # -- updates / replaces / deletes ---------------------------------------------------------
    async def _single_update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        *,
        multi: bool,
        upsert: bool,
        replace: bool,
        bypass_document_validation: Optional[bool],
        collation: Any,
        array_filters: Any,
        hint: Any,
        session: Optional["ClientSession"],
        let: Any,
        comment: Any,
        sort: Any = None,
    ) -> UpdateResult:
        _ops.validate_filter(filter)
        if replace:
            _ops.validate_replacement(update)
        else:
            _ops.validate_update(update)
        stmt = _ops.update_statement(filter, update, multi=multi, upsert=upsert, collation=collation,
                                     array_filters=array_filters, hint=hint, sort=sort)
        cmd: Dict[str, Any] = {}
        if bypass_document_validation is not None:
            cmd["bypassDocumentValidation"] = bypass_document_validation
        if let is not None:
            cmd["let"] = let
        if comment is not None:
            cmd["comment"] = comment
        wc = self._wc(session)
        acknowledged = wc is None or wc.acknowledged
        if not acknowledged:
            # Hints are sent with w:0 (servers >= 4.4, amongo's minimum); collation and
            # arrayFilters are refused client-side, as PyMongo does.
            if collation is not None:
                raise ConfigurationError("Collation is unsupported for unacknowledged writes.")
            if array_filters is not None:
                raise ConfigurationError("arrayFilters is unsupported for unacknowledged writes.")
        reply = await self._write_statements("update", cmd, "updates", stmt, session, wc, retryable=not multi)
        if not acknowledged:
            return UpdateResult(None, False)
        _raise_single_write_errors(reply)
        raw = dict(reply)
        raw["updatedExisting"] = bool(reply.get("n", 0)) and not reply.get("upserted")
        return UpdateResult(_update_raw_result(reply), True)

    async def update_one(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False,
        bypass_document_validation: Optional[bool] = None, collation: Any = None,
        array_filters: Optional[Sequence[Mapping[str, Any]]] = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        sort: Any = None, comment: Any = None,
    ) -> UpdateResult:
        """Update one document (Motor: ``update_one``)."""
        return await self._single_update(filter, update, multi=False, upsert=upsert, replace=False,
                                         bypass_document_validation=bypass_document_validation,
                                         collation=collation, array_filters=array_filters, hint=hint,
                                         session=session, let=let, comment=comment, sort=sort)

    async def update_many(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False,
        array_filters: Optional[Sequence[Mapping[str, Any]]] = None,
        bypass_document_validation: Optional[bool] = None, collation: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        comment: Any = None,
    ) -> UpdateResult:
        """Update all matching documents (Motor: ``update_many``)."""
        return await self._single_update(filter, update, multi=True, upsert=upsert, replace=False,
                                         bypass_document_validation=bypass_document_validation,
                                         collation=collation, array_filters=array_filters, hint=hint,
                                         session=session, let=let, comment=comment)

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], upsert: bool = False,
        bypass_document_validation: Optional[bool] = None, collation: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        sort: Any = None, comment: Any = None,
    ) -> UpdateResult:
        """Replace one document (Motor: ``replace_one``)."""
        return await self._single_update(filter, replacement, multi=False, upsert=upsert, replace=True,
                                         bypass_document_validation=bypass_document_validation,
                                         collation=collation, array_filters=None, hint=hint,
                                         session=session, let=let, comment=comment, sort=sort)

    async def _single_delete(self, filter: Mapping[str, Any], *, multi: bool, collation: Any, hint: Any,
                             session: Optional["ClientSession"], let: Any, comment: Any) -> DeleteResult:
        _ops.validate_filter(filter)
        stmt = _ops.delete_statement(filter, multi=multi, collation=collation, hint=hint)
        cmd: Dict[str, Any] = {}
        if let is not None:
            cmd["let"] = let
        if comment is not None:
            cmd["comment"] = comment
        wc = self._wc(session)
        acknowledged = wc is None or wc.acknowledged
        if not acknowledged and collation is not None:
            raise ConfigurationError("Collation is unsupported for unacknowledged writes.")
        reply = await self._write_statements("delete", cmd, "deletes", stmt, session, wc, retryable=not multi)
        if not acknowledged:
            return DeleteResult(None, False)  # type: ignore[arg-type]  # (PyMongo's own unacknowledged result)
        _raise_single_write_errors(reply)
        return DeleteResult({"n": reply.get("n", 0), "ok": reply.get("ok", 1.0)}, True)

    async def delete_one(
        self, filter: Mapping[str, Any], collation: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete one document (Motor: ``delete_one``)."""
        return await self._single_delete(filter, multi=False, collation=collation, hint=hint,
                                         session=session, let=let, comment=comment)

    async def delete_many(
        self, filter: Mapping[str, Any], collation: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        comment: Any = None,
    ) -> DeleteResult:
        """Delete all matching documents (Motor: ``delete_many``)."""
        return await self._single_delete(filter, multi=True, collation=collation, hint=hint,
                                         session=session, let=let, comment=comment)

    async def bulk_write(
        self,
        requests: Sequence[Any],
        ordered: bool = True,
        bypass_document_validation: Optional[bool] = None,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
        let: Optional[Mapping[str, Any]] = None,
    ) -> BulkWriteResult:
        """Run a batch of pymongo.operations requests (Motor: ``bulk_write``)."""
        if not isinstance(requests, abc.Iterable) or isinstance(requests, (str, bytes, abc.Mapping)):
            raise TypeError("requests must be a list")
        bulk = _ops.Bulk(self._database.name, self._name, self._codec_options, ordered,
                         bypass_document_validation, comment=comment, let=let)
        for req in requests:
            bulk.add_request(req)
        if not bulk.ops:
            raise InvalidOperation("No operations to execute")
        async with self._executor.trace_operation("bulkWrite", self._db_name, self._name, session):
            result, acknowledged = await bulk.execute(self._executor, session, self._wc(session), self._executor.write_caps())
        return BulkWriteResult(result, acknowledged)

    # -- reads ------------------------------------------------------------------------------
    def find(self, *args: Any, **kwargs: Any) -> "Cursor[_DocumentType]":
        """A cursor over matching documents, returned without awaiting (Motor: ``find``)."""
        return self._cursor_class(self, *args, **kwargs)

    def find_raw_batches(self, *args: Any, **kwargs: Any) -> "RawBatchCursor[_DocumentType]":
        """Like :meth:`find` but yields raw BSON batches (Motor: ``find_raw_batches``)."""
        return self._raw_batch_cursor_class(self, *args, **kwargs)

    async def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Optional[_DocumentType]:
        """The first matching document or None (Motor: ``find_one``)."""
        if filter is None:
            filter = {}
        elif type(filter) is not dict and not isinstance(filter, abc.Mapping):
            filter = {"_id": filter}
        if args or kwargs:
            kwargs["limit"] = -1
            cursor = self.find(filter, *args, **kwargs)
            async for doc in cursor:
                return doc
            return None
        # No other option: the command a find(filter, limit=-1) cursor sends, run directly,
        # without building a cursor (the find_one hot path).
        op = FindOne(self._db_name, self._name, filter, self._read_preference, self._rc_document or None,
                     self._codec_options)
        executor = self._executor
        cursor_doc = op.handle(await executor.execute(op))
        if cursor_doc["id"] and op.server_address is not None:
            # A server that kept the cursor open despite singleBatch: kill it (in the session
            # that opened it: the executor's implicit one, recorded in op.lsid), keep the batch.
            try:
                await executor.execute(KillCursors(self._db_name, self._name, [cursor_doc["id"]],
                                                   op.server_address, lsid=op.lsid))
            except Exception:
                pass
        batch = cursor_doc["firstBatch"]
        return batch[0] if batch else None

    async def count_documents(
        self, filter: Mapping[str, Any], session: Optional["ClientSession"] = None, comment: Any = None,
        **kwargs: Any,
    ) -> int:
        """Count matching documents with an aggregation (Motor: ``count_documents``)."""
        _ops.validate_filter(filter, allow_none=False)
        pipeline: List[Dict[str, Any]] = [{"$match": filter}]
        if "skip" in kwargs:
            pipeline.append({"$skip": kwargs.pop("skip")})
        if "limit" in kwargs:
            pipeline.append({"$limit": kwargs.pop("limit")})
        pipeline.append({"$group": {"_id": 1, "n": {"$sum": 1}}})
        cmd: Dict[str, Any] = {"aggregate": self._name, "pipeline": pipeline, "cursor": {}}
        if "hint" in kwargs:
            h = kwargs.pop("hint")
            cmd["hint"] = _ops.index_hint(h)
        _ops.apply_common_kwargs(cmd, kwargs)
        if comment is not None:
            cmd["comment"] = comment
        reply = await self._read_cmd(cmd, session)
        batch = _ops.cursor_document(reply)["firstBatch"]
        return int(batch[0]["n"]) if batch else 0

    async def estimated_document_count(self, comment: Any = None, **kwargs: Any) -> int:
        """Count from collection metadata (Motor: ``estimated_document_count``)."""
        if "session" in kwargs:
            raise ConfigurationError("estimated_document_count does not support sessions")
        cmd: Dict[str, Any] = {"count": self._name}
        _ops.apply_common_kwargs(cmd, kwargs)
        if comment is not None:
            cmd["comment"] = comment
        try:
            reply = await self._read_cmd(cmd, None)
        except OperationFailure as exc:
            if exc.code == 26:
                return 0
            raise
        return int(reply.get("n", 0))

    async def distinct(
        self, key: str, filter: Optional[Mapping[str, Any]] = None, session: Optional["ClientSession"] = None,
        comment: Any = None, hint: Any = None, **kwargs: Any,
    ) -> List[Any]:
        """Distinct values of *key* (Motor: ``distinct``)."""
        if not isinstance(key, str):
            raise TypeError("key must be an instance of str")
        cmd: Dict[str, Any] = {"distinct": self._name, "key": key}
        if filter is not None:
            cmd["query"] = filter
        if hint is not None:
            cmd["hint"] = _ops.index_hint(hint)
        _ops.apply_common_kwargs(cmd, kwargs)
        if comment is not None:
            cmd["comment"] = comment
        reply = await self._read_cmd(cmd, session)
        return list(reply.get("values", []))

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], session: Optional["ClientSession"] = None,
        let: Optional[Mapping[str, Any]] = None, comment: Any = None, **kwargs: Any,
    ) -> "CommandCursor[_DocumentType]":
        """An aggregation cursor, returned without awaiting (Motor: ``aggregate``; positional
        parameters as PyMongo's ``Collection.aggregate``, to which Motor forwards them)."""
        return self._aggregate_cursor(pipeline, db_level=False, session=session, let=let, comment=comment, **kwargs)

    def aggregate_raw_batches(
        self, pipeline: Sequence[Mapping[str, Any]], session: Optional["ClientSession"] = None,
        comment: Any = None, **kwargs: Any,
    ) -> "CommandCursor[_DocumentType]":
        """Like :meth:`aggregate`, yielding raw BSON batches (Motor: ``aggregate_raw_batches``)."""
        cursor = self._aggregate_cursor(pipeline, db_level=False, session=session, comment=comment, raw_batches=True,
                                        **kwargs)
        return cursor

    def _aggregate_cursor(self, pipeline: Sequence[Mapping[str, Any]], db_level: bool = False,
                          raw_batches: bool = False, **kwargs: Any) -> "CommandCursor[Any]":
        if not isinstance(pipeline, list):
            if isinstance(pipeline, (tuple,)):
                pipeline = list(pipeline)
            else:
                raise TypeError("pipeline must be a list")
        session = kwargs.pop("session", None)
        comment = kwargs.pop("comment", None)
        let = kwargs.pop("let", None)
        batch_size = kwargs.pop("batchSize", kwargs.pop("batch_size", None))
        max_await = kwargs.pop("maxAwaitTimeMS", kwargs.pop("max_await_time_ms", None))
        cmd: Dict[str, Any] = {"aggregate": 1 if db_level else self._name, "pipeline": pipeline}
        cursor_doc: Dict[str, Any] = {}
        has_write = bool(pipeline) and any(("$out" in s or "$merge" in s) for s in pipeline[-1:])
        if batch_size is not None and not has_write:
            cursor_doc["batchSize"] = batch_size
        cmd["cursor"] = cursor_doc
        if "hint" in kwargs:
            cmd["hint"] = _ops.index_hint(kwargs.pop("hint"))
        if let is not None:
            cmd["let"] = let
        if comment is not None:
            cmd["comment"] = comment
        _ops.apply_common_kwargs(cmd, kwargs)
        coll = self._database["$cmd"] if db_level else self
        return self._command_cursor_class(
            coll, cmd, session=session, read_preference=None if has_write else None,
            codec_options=self._codec_options, max_await_time_ms=max_await, batch_size=batch_size or 0,
            retryable=not has_write, is_write=has_write, parent=self, latent=True, raw_batches=raw_batches,
        )

    # -- find-and-modify --------------------------------------------------------------------
    async def _find_and_modify(
        self, filter: Mapping[str, Any], projection: Any, sort: Any, upsert: Optional[bool],
        return_document: bool, array_filters: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Any = None, comment: Any = None,
        **kwargs: Any,
    ) -> _DocumentType:
        _ops.validate_filter(filter, allow_none=False)
        if not isinstance(return_document, bool):
            raise ValueError("return_document must be ReturnDocument.BEFORE or ReturnDocument.AFTER")
        cmd: Dict[str, Any] = {"findAndModify": self._name, "query": filter}
        for k in ("remove", "update"):
            if k in kwargs:
                cmd[k] = kwargs.pop(k)
        cmd["new"] = return_document
        if projection is not None:
            cmd["fields"] = _ops.fields_doc(projection)
        sort_doc = _ops.sort_document(sort)
        if sort_doc is not None:
            cmd["sort"] = sort_doc
        if upsert is not None:
            cmd["upsert"] = upsert
        if array_filters is not None:
            cmd["arrayFilters"] = list(array_filters)
        if hint is not None:
            cmd["hint"] = _ops.index_hint(hint)
        if let is not None:
            cmd["let"] = let
        if comment is not None:
            cmd["comment"] = comment
        collation = kwargs.pop("collation", None)
        if collation is not None:
            cmd["collation"] = _ops.collation_doc(collation)
        bdv = kwargs.pop("bypass_document_validation", None)
        if bdv is not None:
            cmd["bypassDocumentValidation"] = bdv
        _ops.apply_common_kwargs(cmd, kwargs)
        wc = self._wc(session)
        if wc is not None and not wc.acknowledged and array_filters is not None:
            raise ConfigurationError("arrayFilters is unsupported for unacknowledged writes.")
        reply = await self._write_cmd(FindAndModify, cmd, session)
        _check_write_concern_error(reply)
        # None when no document matched (typed as Motor's and PyMongo's stubs type it)
        return cast(_DocumentType, reply.get("value"))

    async def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any = None, sort: Any = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        comment: Any = None, **kwargs: Any,
    ) -> _DocumentType:
        """Delete one document and return it (Motor: ``find_one_and_delete``)."""
        kwargs["remove"] = True
        return await self._find_and_modify(filter, projection, sort, None, False, hint=hint,
                                           session=session, let=let, comment=comment, **kwargs)

    async def find_one_and_replace(
        self, filter: Mapping[str, Any], replacement: Mapping[str, Any], projection: Any = None,
        sort: Any = None, upsert: bool = False, return_document: bool = ReturnDocument.BEFORE,
        hint: Any = None, session: Optional["ClientSession"] = None,
        let: Optional[Mapping[str, Any]] = None, comment: Any = None, **kwargs: Any,
    ) -> _DocumentType:
        """Replace one document and return it (Motor: ``find_one_and_replace``)."""
        _ops.validate_replacement(replacement)
        kwargs["update"] = replacement
        return await self._find_and_modify(filter, projection, sort, upsert, return_document, hint=hint,
                                           session=session, let=let, comment=comment, **kwargs)

    async def find_one_and_update(
        self, filter: Mapping[str, Any], update: Any, projection: Any = None, sort: Any = None,
        upsert: bool = False, return_document: bool = ReturnDocument.BEFORE,
        array_filters: Optional[Sequence[Mapping[str, Any]]] = None, hint: Any = None,
        session: Optional["ClientSession"] = None, let: Optional[Mapping[str, Any]] = None,
        comment: Any = None, **kwargs: Any,
    ) -> _DocumentType:
        """Update one document and return it (Motor: ``find_one_and_update``)."""
        _ops.validate_update(update)
        kwargs["update"] = update
        return await self._find_and_modify(filter, projection, sort, upsert, return_document,
                                           array_filters=array_filters, hint=hint, session=session,
                                           let=let, comment=comment, **kwargs)

    # -- indexes ----------------------------------------------------------------------------
    async def create_indexes(
        self, indexes: Sequence[IndexModel], session: Optional["ClientSession"] = None,
        comment: Any = None, **kwargs: Any,
    ) -> List[str]:
        """Create indexes (Motor: ``create_indexes``)."""
        if not isinstance(indexes, list):
            raise TypeError("indexes must be a list")
        docs = []
        names = []
        for model in indexes:
            if not isinstance(model, IndexModel):
                raise TypeError(f"{model!r} is not an instance of pymongo.operations.IndexModel")
            doc = dict(model.document)
            names.append(doc["name"])
            docs.append(doc)
        cmd: Dict[str, Any] = {"createIndexes": self._name, "indexes": docs}
        if comment is not None:
            cmd["comment"] = comment
        mt = kwargs.pop("maxTimeMS", kwargs.pop("max_time_ms", None))
        if mt is not None:
            cmd["maxTimeMS"] = mt
        cmd.update(kwargs)
        reply = await self._write_cmd(CreateIndexes, cmd, session)
        _check_write_concern_error(reply)
        return names

    async def create_index(
        self, keys: Any, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create one index and return its name (Motor: ``create_index``)."""
        cmd_opts: Dict[str, Any] = {}
        for k in ("maxTimeMS", "max_time_ms", "commitQuorum"):
            if k in kwargs:
                cmd_opts["maxTimeMS" if k == "max_time_ms" else k] = kwargs.pop(k)
        model = IndexModel(keys, **kwargs)
        return (await self.create_indexes([model], session=session, comment=comment, **cmd_opts))[0]

    async def drop_indexes(self, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any) -> None:
        """Drop all indexes but _id's (Motor: ``drop_indexes``)."""
        await self.drop_index("*", session=session, comment=comment, **kwargs)

    async def drop_index(self, index_or_name: Any, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any) -> None:
        """Drop one index by name or key spec (Motor: ``drop_index``)."""
        name = index_or_name
        if isinstance(index_or_name, list):
            name = _ops.gen_index_name(_ops.index_list(index_or_name))
        if not isinstance(name, str):
            raise TypeError("index_or_name must be an instance of str or list")
        cmd: Dict[str, Any] = {"dropIndexes": self._name, "index": name}
        if comment is not None:
            cmd["comment"] = comment
        cmd.update(kwargs)
        reply = await self._write_cmd(DropIndexes, cmd, session)
        _check_write_concern_error(reply)

    def list_indexes(
        self, session: Optional["ClientSession"] = None, **kwargs: Any
    ) -> "CommandCursor[MutableMapping[str, Any]]":
        """A cursor over the index documents, returned without awaiting (Motor: ``list_indexes``)."""
        return self._list_indexes(session, **kwargs)

    def _list_indexes(self, session: Optional["ClientSession"] = None, **kwargs: Any) -> "CommandCursor[MutableMapping[str, Any]]":
        cmd: Dict[str, Any] = {"listIndexes": self._name, "cursor": {}}
        bs = kwargs.pop("batchSize", kwargs.pop("batch_size", None))
        if bs is not None:
            cmd["cursor"] = {"batchSize": bs}
        comment = kwargs.pop("comment", None)
        if comment is not None:
            cmd["comment"] = comment
        cmd.update(kwargs)
        return self._command_cursor_class(self, cmd, session=session, read_preference=ReadPreference.PRIMARY,
                             retryable=True, latent=True, missing_ns_ok=True, batch_size=bs or 0)

    # -- Atlas Search indexes (sent as-is: no read/write concern, primary) --------------------
    def list_search_indexes(
        self, name: Optional[str] = None, session: Optional["ClientSession"] = None,
        comment: Any = None, **kwargs: Any,
    ) -> "CommandCursor[Mapping[str, Any]]":
        """A cursor over this collection's search indexes (a ``$listSearchIndexes``
        aggregation), returned without awaiting (Motor: ``list_search_indexes``)."""
        stage: Dict[str, Any] = {} if name is None else {"name": name}
        coll: Collection[Any] = self.with_options(
            codec_options=CodecOptions(), read_preference=ReadPreference.PRIMARY,
            write_concern=WriteConcern(), read_concern=ReadConcern(),
        )
        return coll._aggregate_cursor([{"$listSearchIndexes": stage}], session=session, comment=comment, **kwargs)

    async def _search_index_cmd(self, cmd: Dict[str, Any], session: Optional["ClientSession"],
                                ns_not_found_ok: bool) -> Dict[str, Any]:
        try:
            return await self._executor.execute(
                SearchIndexCommand(self._db_name, cmd, CodecOptions(unicode_decode_error_handler="replace")), session)
        except OperationFailure as exc:
            if ns_not_found_ok and (exc.code == 26 or "ns not found" in str(exc)):
                return {"ok": 1.0}
            raise

    async def create_search_index(
        self, model: Any, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any
    ) -> str:
        """Create one search index and return its name (Motor: ``create_search_index``)."""
        if not isinstance(model, SearchIndexModel):
            model = SearchIndexModel(**model)
        return (await self.create_search_indexes([model], session=session, comment=comment, **kwargs))[0]

    async def create_search_indexes(
        self, models: List[SearchIndexModel], session: Optional["ClientSession"] = None,
        comment: Any = None, **kwargs: Any,
    ) -> List[str]:
        """Create search indexes and return their names (Motor: ``create_search_indexes``)."""
        if comment is not None:
            kwargs["comment"] = comment
        docs = []
        for model in models:
            if not isinstance(model, SearchIndexModel):
                raise TypeError(f"{model!r} is not an instance of pymongo.operations.SearchIndexModel")
            docs.append(model.document)
        cmd: Dict[str, Any] = {"createSearchIndexes": self._name, "indexes": docs}
        cmd.update(kwargs)
        reply = await self._search_index_cmd(cmd, session, ns_not_found_ok=False)
        return [index["name"] for index in reply["indexesCreated"]]

    async def drop_search_index(
        self, name: str, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any
    ) -> None:
        """Drop a search index by name (Motor: ``drop_search_index``)."""
        cmd: Dict[str, Any] = {"dropSearchIndex": self._name, "name": name}
        cmd.update(kwargs)
        if comment is not None:
            cmd["comment"] = comment
        await self._search_index_cmd(cmd, session, ns_not_found_ok=True)

    async def update_search_index(
        self, name: str, definition: Mapping[str, Any], session: Optional["ClientSession"] = None,
        comment: Any = None, **kwargs: Any,
    ) -> None:
        """Replace a search index's definition (Motor: ``update_search_index``)."""
        cmd: Dict[str, Any] = {"updateSearchIndex": self._name, "name": name, "definition": definition}
        cmd.update(kwargs)
        if comment is not None:
            cmd["comment"] = comment
        await self._search_index_cmd(cmd, session, ns_not_found_ok=True)

    async def index_information(self, session: Optional["ClientSession"] = None, comment: Any = None) -> Dict[str, Any]:
        """A dict of index name → info (Motor: ``index_information``)."""
        cursor = self._list_indexes(session=session, comment=comment)
        info: Dict[str, Any] = {}
        async for index in cursor:
            index = dict(index)
            index["key"] = list(index["key"].items())
            name = index.pop("name")
            info[name] = index
        return info

    async def options(self, session: Optional["ClientSession"] = None, comment: Any = None) -> Dict[str, Any]:
        """The collection's creation options (Motor: ``options``)."""
        cursor = await self._database.list_collections(session=session, filter={"name": self._name}, comment=comment)
        async for info in cursor:
            opts = dict(info.get("options", {}))
            opts.pop("create", None)
            return opts
        return {}

    # -- collection-level commands ----------------------------------------------------------
    async def drop(self, session: Optional["ClientSession"] = None, comment: Any = None, encrypted_fields: Any = None) -> None:
        """Drop this collection (Motor: ``drop``)."""
        await self._database.drop_collection(self._name, session=session, comment=comment)

    async def rename(self, new_name: str, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any) -> Dict[str, Any]:
        """Rename this collection (Motor: ``rename``)."""
        if not isinstance(new_name, str):
            raise TypeError("new_name must be an instance of str")
        if not new_name or ".." in new_name:
            raise InvalidName("collection names cannot be empty")
        if new_name[0] == "." or new_name[-1] == ".":
            raise InvalidName("collection names must not start or end with '.'")
        if "$" in new_name and not new_name.startswith("oplog.$main"):
            raise InvalidName("collection names must not contain '$'")
        cmd: Dict[str, Any] = {"renameCollection": self._full_name, "to": f"{self._database.name}.{new_name}"}
        cmd.update(kwargs)
        return await self._run_write_command("admin", cmd, session, comment=comment, write_concern=self._wc(session))

    def watch(self, pipeline: Any = None, full_document: Any = None, resume_after: Any = None,
              max_await_time_ms: Any = None, batch_size: Any = None, collation: Any = None,
              start_at_operation_time: Any = None, session: Any = None, start_after: Any = None,
              comment: Any = None, full_document_before_change: Any = None,
              show_expanded_events: Any = None) -> "ChangeStream[_DocumentType]":
        """A change stream on this collection (Motor: ``watch``; returned without awaiting)."""
        return self._change_stream_class(
            self, pipeline, full_document, resume_after, max_await_time_ms, batch_size, collation,
            start_at_operation_time, session, start_after, comment, full_document_before_change,
            show_expanded_events, aggregate_on=self, aggregate_target=self.name,
        )


def _update_raw_result(reply: Mapping[str, Any]) -> Dict[str, Any]:
    res: Dict[str, Any] = {"n": reply.get("n", 0), "nModified": reply.get("nModified", 0), "ok": reply.get("ok", 1.0)}
    upserted = reply.get("upserted")
    if upserted:
        res["upserted"] = upserted[0]["_id"] if isinstance(upserted, list) else upserted
    res["updatedExisting"] = bool(reply.get("n", 0)) and not upserted
    return res


def _raise_single_write_errors(reply: Mapping[str, Any]) -> None:
    errors = reply.get("writeErrors")
    if errors:
        err = errors[-1]
        code = err.get("code")
        msg = err.get("errmsg", "")
        details = dict(err)
        if code in (11000, 11001, 12582):
            raise DuplicateKeyError(msg, code, details)
        raise WriteError(msg, code, details)
    _check_write_concern_error(reply)


def aggregate_cursor(coll: Collection[Any], pipeline: Sequence[Mapping[str, Any]], **kwargs: Any) -> "CommandCursor[Any]":
    """A latent ``aggregate`` cursor on *coll* (``Database.aggregate`` runs a database-level
    aggregation through ``<db>.$cmd.aggregate`` with ``db_level=True``); *kwargs* as
    :meth:`Collection.aggregate`'s."""
    return coll._aggregate_cursor(pipeline, **kwargs)


def index_cursor(coll: Collection[Any], session: Optional["ClientSession"] = None) -> "CommandCursor[MutableMapping[str, Any]]":
    """A latent ``listIndexes`` cursor on *coll*, whichever API's class *coll* is (PyMongo's
    ``list_indexes`` is a coroutine, Motor's returns the cursor): what GridFS reads."""
    return coll._list_indexes(session=session)

