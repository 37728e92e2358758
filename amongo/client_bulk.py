"""The client-level bulk write (Motor 3.7 / PyMongo 4.20: ``client.bulk_write``): MongoDB 8.0's
``bulkWrite`` admin command, across namespaces (CRUD spec, ``bulk-write.md``).

Every batch is one OP_MSG with the command document and two kind-1 sequences, ``ops`` and
``nsInfo``; each op names its namespace by index into that batch's ``nsInfo``. Batches are
split by ``maxWriteBatchSize`` and ``maxMessageSizeBytes``. With ``verbose_results`` the
per-operation results come back in a cursor (``getMore`` on ``admin.$cmd.bulkWrite``).

Each batch goes through the executor on its own, so it is retried (when every operation is
retryable) with its own transaction number, as the spec requires.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.errors import (
    ClientBulkWriteException,
    ConfigurationError,
    DocumentTooLarge,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)
from pymongo.operations import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.results import ClientBulkWriteResult, DeleteResult, InsertOneResult, UpdateResult
from pymongo.write_concern import WriteConcern

from amongo.engine import operations as _ops
from amongo.engine.operation import Operation
from amongo.engine.executor import Executor
from amongo.engine.session import ClientSession, end_implicit, is_implicit

from amongo.command_cursor import CommandCursor
from amongo.server_errors import write_concern_error_details

if TYPE_CHECKING:  # pragma: no cover
    from amongo.client import MongoClient

__all__ = ["client_bulk_write"]

#: maxWireVersion of MongoDB 8.0, the first with the ``bulkWrite`` command.
_MIN_WIRE_VERSION = 25
#: Bytes of each message kept for the command document (bulk-write spec).
_COMMAND_RESERVE = 1000
_INT32 = struct.Struct("<i")


class _Op:
    """One write: its kind, namespace, the op document (for error reports) and its BSON with
    the ``nsInfo`` index as the first, int32, field (patched per batch)."""

    __slots__ = ("kind", "ns", "doc", "raw", "ns_offset", "multi", "insert_id", "doc_size")

    def __init__(self, kind: str, ns: str, doc: Dict[str, Any], raw: bytes, multi: bool,
                 insert_id: Any = None, doc_size: int = 0) -> None:
        self.kind = kind  # "insert" | "update" | "delete"
        self.ns = ns
        self.doc = doc
        self.raw = raw
        self.ns_offset = 4 + 1 + len(kind) + 1  # doc length, type byte, key + NUL
        self.multi = multi
        self.insert_id = insert_id
        self.doc_size = doc_size


def _namespace(model: Any) -> str:
    ns = getattr(model, "_namespace", None)
    if not ns:
        raise InvalidOperation("MongoClient.bulk_write requires a namespace to be provided for each write operation")
    if not isinstance(ns, str):
        raise TypeError("namespace must be an instance of str")
    return ns


def _build_op(model: Any, codec: Any) -> Tuple[_Op, bool, bool]:
    """The :class:`_Op` for a pymongo.operations model, and whether it uses collation /
    arrayFilters (refused for unacknowledged writes)."""
    uses_collation = uses_array_filters = False
    if isinstance(model, InsertOne):
        ns = _namespace(model)
        document = model._doc
        _ops.validate_document(document, "document")
        if not isinstance(document, RawBSONDocument) and "_id" not in document:
            document["_id"] = _ops.new_object_id()
        doc: Dict[str, Any] = {"insert": 0, "document": document}
        raw = bson.encode(doc, False, codec)
        size = len(document.raw) if isinstance(document, RawBSONDocument) else len(raw) - 20
        return _Op("insert", ns, doc, raw, False, document.get("_id"), size), False, False
    if isinstance(model, (UpdateOne, UpdateMany, ReplaceOne)):
        ns = _namespace(model)
        multi = isinstance(model, UpdateMany)
        if isinstance(model, ReplaceOne):
            _ops.validate_replacement(model._doc)
        else:
            _ops.validate_update(model._doc)
        _ops.validate_filter(model._filter, allow_none=False)
        doc = {"update": 0, "filter": model._filter, "updateMods": model._doc, "multi": multi}
        if model._upsert is not None:
            doc["upsert"] = model._upsert
        af = getattr(model, "_array_filters", None)
        if af is not None:
            uses_array_filters = True
            doc["arrayFilters"] = list(af)
        if model._hint is not None:
            doc["hint"] = _ops.index_hint(model._hint)
        if model._collation is not None:
            uses_collation = True
            doc["collation"] = _ops.collation_doc(model._collation)
        sort = _ops.sort_document(getattr(model, "_sort", None))
        if sort is not None:
            doc["sort"] = sort
        return _Op("update", ns, doc, bson.encode(doc, False, codec), multi), uses_collation, uses_array_filters
    if isinstance(model, (DeleteOne, DeleteMany)):
        ns = _namespace(model)
        multi = isinstance(model, DeleteMany)
        _ops.validate_filter(model._filter, allow_none=False)
        doc = {"delete": 0, "filter": model._filter, "multi": multi}
        if model._hint is not None:
            doc["hint"] = _ops.index_hint(model._hint)
        if model._collation is not None:
            uses_collation = True
            doc["collation"] = _ops.collation_doc(model._collation)
        return _Op("delete", ns, doc, bson.encode(doc, False, codec), multi), uses_collation, False
    raise TypeError(f"{model!r} is not a valid request")


def _split(ops: List[_Op], start: int, command_size: int, max_bson_size: int, max_message_size: int,
           max_write_batch_size: int) -> Tuple[int, List[bytes], List[bytes]]:
    """The next batch from *start*: its end index and its ``ops`` / ``nsInfo`` sequences."""
    room = max_message_size - max(command_size, _COMMAND_RESERVE)
    max_count = max(1, max_write_batch_size)
    ns_index: Dict[str, int] = {}
    ns_docs: List[bytes] = []
    encoded: List[bytes] = []
    used = 0
    i = start
    n = len(ops)
    while i < n and len(encoded) < max_count:
        op = ops[i]
        size = len(op.raw)
        idx = ns_index.get(op.ns)
        ns_raw = b""
        if idx is None:
            ns_raw = bson.encode({"ns": op.ns})
        if used + size + len(ns_raw) > room:
            if not encoded:
                raise DocumentTooLarge(
                    f"bulkWrite operation of {size} bytes does not fit in a message of at most {max_message_size} bytes"
                )
            break
        if idx is None:
            idx = ns_index[op.ns] = len(ns_docs)
            ns_docs.append(ns_raw)
        buf = bytearray(op.raw)
        _INT32.pack_into(buf, op.ns_offset, idx)
        encoded.append(bytes(buf))
        used += size + len(ns_raw)
        i += 1
    return i, encoded, ns_docs


def _raise(full: MutableMapping[str, Any], verbose: bool) -> None:
    if full["writeErrors"]:
        full["writeErrors"].sort(key=lambda e: e["idx"])
    error = full.get("error")
    if isinstance(error, BaseException):
        raise ClientBulkWriteException(full, verbose) from error
    raise ClientBulkWriteException(full, verbose)


class _Batch(Operation):
    """One ``bulkWrite`` command's batch (an operation), cut after check-out by the
    connection's own limits (wire version, maxBsonObjectSize, maxMessageSizeBytes,
    maxWriteBatchSize). A retry sends the same batch again; it is a retryable write unless it
    holds a multi-write."""

    __slots__ = ("ops", "start", "base", "command_size", "end", "refused", "_built",
                 "retryable_write", "unacknowledged", "sequences")
    name = "bulkWrite"
    is_write = True
    implicit_session = False  # (the caller's session, or its own implicit one)

    def __init__(self, ops: List[_Op], start: int, base: Dict[str, Any], command_size: int,
                 codec_options: Any, *, unacknowledged: bool) -> None:
        self.dbname = "admin"
        self.codec_options = codec_options
        self.server_address = None
        self.ops = ops
        self.start = start
        self.base = base
        self.command_size = command_size
        self.end = start
        self.retryable_write = not unacknowledged
        self.unacknowledged = unacknowledged
        self.sequences = None
        #: the client-side error that refused the batch (raised as is, not as a bulk error)
        self.refused: Optional[BaseException] = None
        self._built: Optional[Tuple[List[bytes], List[bytes], bool]] = None

    def build(self, conn: Any) -> Dict[str, Any]:
        if self._built is None:
            # (not through a load balancer, as before: the command itself is refused there)
            if conn.max_wire_version < _MIN_WIRE_VERSION and not conn.options.load_balanced:
                self.refused = InvalidOperation("MongoClient.bulk_write requires MongoDB server version 8.0+.")
                raise self.refused
            max_bson = conn.max_bson_size
            if self.start == 0:
                for op in self.ops:
                    if op.kind == "insert" and op.doc_size > max_bson:
                        self.refused = DocumentTooLarge(
                            f"BSON document too large ({op.doc_size} bytes) - the connected server supports BSON document sizes up to {max_bson} bytes."
                        )
                        raise self.refused
            end, encoded, ns_docs = _split(self.ops, self.start, self.command_size, max_bson,
                                           conn.max_message_size, conn.max_write_batch_size)
            self.end = end
            self._built = (encoded, ns_docs, not any(self.ops[i].multi for i in range(self.start, end)))
        encoded, ns_docs, retryable = self._built
        self.sequences = [("ops", encoded), ("nsInfo", ns_docs)]
        self.retryable_write = self.retryable_write and retryable
        return dict(self.base)

    def preview(self) -> Mapping[str, Any]:
        return {"bulkWrite": 1}


async def client_bulk_write(
    client: "MongoClient[Any]",
    executor: "Executor",
    models: Sequence[Any],
    session: Optional["ClientSession"] = None,
    ordered: bool = True,
    verbose_results: bool = False,
    bypass_document_validation: Optional[bool] = None,
    comment: Any = None,
    let: Optional[Mapping[str, Any]] = None,
    write_concern: Optional[WriteConcern] = None,
) -> ClientBulkWriteResult:
    """Run *models* (``pymongo.operations`` requests with ``namespace=``) with the
    ``bulkWrite`` command (Motor: ``AsyncIOMotorClient.bulk_write``)."""
    if session is not None and session.in_transaction:
        if write_concern is not None:
            raise InvalidOperation("Cannot set write concern after starting a transaction")
        wc: Optional[WriteConcern] = None
    else:
        wc = write_concern if write_concern is not None else client.write_concern
    acknowledged = wc is None or wc.acknowledged
    if not acknowledged:
        if verbose_results:
            raise InvalidOperation("Cannot request unacknowledged write concern and verbose results")
        if ordered:
            raise InvalidOperation("Cannot request unacknowledged write concern and ordered writes")
        if session is not None and not is_implicit(session):
            raise ConfigurationError(f"Explicit sessions are incompatible with unacknowledged write concern: {wc!r}")
    if let is not None and not isinstance(let, Mapping):
        raise TypeError("let must be an instance of dict, bson.son.SON, or any other type that inherits from collections.Mapping")
    if not isinstance(models, (list, tuple)):
        models = list(models)
    codec = client.codec_options
    ops: List[_Op] = []
    uses_collation = uses_array_filters = False
    for model in models:
        op, coll, af = _build_op(model, codec)
        uses_collation |= coll
        uses_array_filters |= af
        ops.append(op)
    if not ops:
        raise InvalidOperation("No operations to execute")
    if not acknowledged:
        if uses_collation:
            raise ConfigurationError("Collation is unsupported for unacknowledged writes.")
        if uses_array_filters:
            raise ConfigurationError("arrayFilters is unsupported for unacknowledged writes.")
        if bypass_document_validation is not None:
            raise OperationFailure("Cannot set bypass_document_validation with unacknowledged write concern")

    base: Dict[str, Any] = {"bulkWrite": 1, "errorsOnly": not verbose_results, "ordered": ordered}
    if wc is not None and wc.document:
        base["writeConcern"] = wc.document
    if bypass_document_validation is not None:
        base["bypassDocumentValidation"] = bypass_document_validation
    if comment is not None:
        base["comment"] = comment
    if let is not None:
        base["let"] = let
    # lsid, txnNumber, $clusterTime, readConcern/API version, maxTimeMS are added later.
    command_size = len(bson.encode(base, False, codec)) + 200

    if not acknowledged:
        start = 0
        while start < len(ops):
            batch = _Batch(ops, start, base, command_size, codec, unacknowledged=True)
            await executor.execute(batch)
            start = batch.end
        return ClientBulkWriteResult(None, False, False)  # type: ignore[arg-type]

    full: Dict[str, Any] = {
        "anySuccessful": False, "error": None, "writeErrors": [], "writeConcernErrors": [],
        "nInserted": 0, "nUpserted": 0, "nMatched": 0, "nModified": 0, "nDeleted": 0,
        "insertResults": {}, "updateResults": {}, "deleteResults": {},
    }
    use_session = session if session is not None else executor.implicit_session()
    try:
        start = 0
        while start < len(ops):
            batch = _Batch(ops, start, base, command_size, codec, unacknowledged=False)
            try:
                # (the batch is cut after check-out, by that connection's limits; it is a
                # retryable write unless it holds a multi-write: the batch says which)
                reply = await executor.execute(batch, use_session)
                end = batch.end
            except PyMongoError as exc:
                if exc is batch.refused:
                    raise
                full["error"] = exc
                _raise(full, verbose_results)
            full["nInserted"] += reply.get("nInserted", 0)
            full["nDeleted"] += reply.get("nDeleted", 0)
            full["nMatched"] += reply.get("nMatched", 0)
            full["nModified"] += reply.get("nModified", 0)
            full["nUpserted"] += reply.get("nUpserted", 0)
            wce = write_concern_error_details(reply)
            if wce:
                full["writeConcernErrors"].append(wce)
            n_errors = reply.get("nErrors", 0)
            errors_before = len(full["writeErrors"])
            await _read_results(client, full, reply, batch.server_address, use_session, ops, start,
                                ordered, verbose_results, comment)
            if not n_errors:
                full["anySuccessful"] = True
            elif ordered:
                # An ordered batch stops at its (single) error: the ops before it succeeded.
                new_errors = full["writeErrors"][errors_before:]
                if new_errors and new_errors[0]["idx"] > start:
                    full["anySuccessful"] = True
            elif n_errors < end - start:
                full["anySuccessful"] = True
            start = end
            if full["error"] is not None or (ordered and full["writeErrors"]):
                break
    finally:
        if session is None:
            end_implicit(use_session)
    if full["error"] is not None or full["writeErrors"] or full["writeConcernErrors"]:
        _raise(full, verbose_results)
    return ClientBulkWriteResult(full, True, verbose_results)


async def _read_results(
    client: "MongoClient[Any]", full: Dict[str, Any], reply: Mapping[str, Any], address: Any,
    session: "ClientSession", ops: List[_Op], offset: int, ordered: bool, verbose: bool, comment: Any,
) -> None:
    """Iterate the batch's result cursor: write errors, and per-operation results if verbose."""

    if not reply.get("cursor"):
        return
    cursor = CommandCursor.from_reply(client["admin"]["$cmd.bulkWrite"], reply, address, session, comment)
    try:
        async for doc in cursor:
            index = doc["idx"] + offset
            op = ops[index]
            if not doc["ok"]:
                err = dict(doc)
                err["idx"] = index
                err["op"] = op.doc
                full["writeErrors"].append(err)
                if ordered:
                    break
                continue
            if verbose:
                if op.kind == "insert":
                    full["insertResults"][index] = InsertOneResult(op.insert_id, acknowledged=True)
                elif op.kind == "update":
                    full["updateResults"][index] = UpdateResult(doc, acknowledged=True, in_client_bulk=True)
                else:
                    full["deleteResults"][index] = DeleteResult(doc, acknowledged=True)
    except PyMongoError as exc:
        full["error"] = exc
    finally:
        if cursor.alive:
            await cursor.close()
