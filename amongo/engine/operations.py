"""Command building and reply handling for CRUD (pure: no asyncio here but :class:`Bulk`'s
single ``execute`` coroutine, which hands every batch to the executor).

Validation mirrors PyMongo's messages so errors read the same as Motor's.
"""
from __future__ import annotations

import os
import struct
import time
from collections import abc
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, MutableMapping, Optional, Sequence, Tuple

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from bson.son import SON
from bson.timestamp import Timestamp
from pymongo.collation import Collation
from pymongo.errors import BulkWriteError, ConfigurationError, InvalidOperation, ProtocolError
from pymongo.write_concern import WriteConcern
from pymongo.operations import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

from amongo.engine.operation import Operation
from amongo.engine.operation import cursor_document as cursor_document  # (re-exported: the facades import it here)
from amongo.wire.batching import STATEMENT_OVERHEAD, EncodedArray, split_batches

if TYPE_CHECKING:  # (annotation only: session.py builds its operations from this package)
    from amongo.engine.session import ClientSession

ASCENDING = 1


# -- ObjectId generation ------------------------------------------------------------------------
# ObjectId() costs ~1.4 us (a lock, getpid, struct packing, validation); inserting 10k documents
# spent 14 ms on it. These build the same 12 bytes (4-byte timestamp, 5-byte per-process random
# value, 3-byte counter) with a per-process random value and counter of amongo's own, so they
# never collide with bson's (different random value) nor with each other.
_TS = struct.Struct(">I")
_oid_state: List[Any] = [0, b"", 0]  # pid, 5 random bytes, counter


def _oid_random() -> bytes:
    st = _oid_state
    pid = os.getpid()
    if st[0] != pid:  # first use, or a forked child: new random value and counter
        st[0], st[1], st[2] = pid, os.urandom(5), int.from_bytes(os.urandom(3), "big")
    return st[1]  # type: ignore[no-any-return]


def _oid_from_bytes() -> Callable[[bytes], ObjectId]:
    """``ObjectId(twelve_bytes)`` without the Python ``__init__`` (type checks of an argument
    built right here): allocate and fill the ``__id`` slot. Falls back to the constructor if
    this bson's ObjectId is not laid out like that."""
    try:
        new = object.__new__
        set_id = ObjectId._ObjectId__id.__set__  # type: ignore[attr-defined]
        probe = os.urandom(12)
        oid = new(ObjectId)
        set_id(oid, probe)
        if oid != ObjectId(probe) or oid.binary != probe or hash(oid) != hash(ObjectId(probe)):
            raise ValueError("unexpected ObjectId layout")
    except Exception:  # pragma: no cover - depends on the installed bson
        return ObjectId

    def from_bytes(b: bytes) -> ObjectId:
        oid = new(ObjectId)
        set_id(oid, b)
        return oid

    return from_bytes


_oid_from = _oid_from_bytes()


def new_object_id() -> ObjectId:
    """A fresh :class:`~bson.objectid.ObjectId` (what ``ObjectId()`` returns, faster)."""
    prefix = _TS.pack(int(time.time()) & 0xFFFFFFFF) + _oid_random()
    st = _oid_state
    c = st[2] = (st[2] + 1) & 0xFFFFFF
    return _oid_from(prefix + c.to_bytes(3, "big"))


def object_ids() -> Iterator[ObjectId]:
    """Fresh ObjectIds for one batch of inserts (the timestamp is re-read every 1024 ids)."""
    st = _oid_state
    make = _oid_from
    while True:
        prefix = _TS.pack(int(time.time()) & 0xFFFFFFFF) + _oid_random()
        for _ in range(1024):
            c = st[2] = (st[2] + 1) & 0xFFFFFF
            yield make(prefix + c.to_bytes(3, "big"))


#: ``bson.encode(document, check_keys, codec_options)`` minus its Python wrapper (a codec-options
#: type check): the C function itself, when bson has it. For the write hot paths, whose codec
#: options are always CodecOptions (validated where users pass them).
encode_document: Callable[[Any, bool, CodecOptions[Any]], bytes] = getattr(bson, "_dict_to_bson", None) or bson.encode


def validate_document(doc: Any, name: str) -> None:
    if type(doc) is not dict and not isinstance(doc, (abc.MutableMapping, RawBSONDocument)):
        raise TypeError(
            f"{name} must be an instance of dict, bson.son.SON, bson.raw_bson.RawBSONDocument, or a type that inherits from collections.MutableMapping"
        )


def validate_filter(f: Any, allow_none: bool = True) -> None:
    if f is None and allow_none:
        return
    if not isinstance(f, abc.Mapping):
        raise TypeError("filter must be an instance of dict, bson.son.SON, or any other type that inherits from collections.Mapping")


def validate_replacement(doc: Any) -> None:
    if not isinstance(doc, (abc.Mapping, RawBSONDocument)):
        raise TypeError("replacement must be an instance of dict, bson.son.SON, bson.raw_bson.RawBSONDocument, or any other type that inherits from collections.Mapping")
    if not isinstance(doc, RawBSONDocument) and doc:
        first = next(iter(doc))
        if first.startswith("$"):
            raise ValueError("replacement can not include $ operators")


def validate_update(update: Any) -> None:
    if isinstance(update, list):
        if not update:
            raise ValueError("update cannot be an empty list")
        return
    if not isinstance(update, abc.Mapping):
        raise TypeError("update must be an instance of dict, bson.son.SON, or any other type that inherits from collections.Mapping, or a list")
    if not update:
        raise ValueError("update cannot be empty")
    first = next(iter(update))
    if not first.startswith("$"):
        raise ValueError("update only works with $ operators")


def collation_doc(c: Any) -> Any:
    if c is None:
        return None
    if isinstance(c, Collation):
        return c.document
    if isinstance(c, abc.Mapping):
        return dict(c)
    raise TypeError("collation must be a dict or an instance of pymongo.collation.Collation")


def index_list(key_or_list: Any, direction: Any = None) -> List[Tuple[str, Any]]:
    """Normalise a sort / index spec to a list of (key, direction)."""
    if direction is not None:
        if not isinstance(key_or_list, str):
            raise TypeError("Expected a string and a direction")
        return [(key_or_list, direction)]
    if isinstance(key_or_list, str):
        return [(key_or_list, ASCENDING)]
    if isinstance(key_or_list, abc.ItemsView):
        return list(key_or_list)
    if isinstance(key_or_list, abc.Mapping):
        return list(key_or_list.items())
    if not isinstance(key_or_list, (list, tuple)):
        raise TypeError("if no direction is specified, key_or_list must be an instance of list")
    values: List[Tuple[str, Any]] = []
    for item in key_or_list:
        if isinstance(item, str):
            values.append((item, ASCENDING))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            values.append((item[0], item[1]))
        else:
            raise TypeError("key_or_list must be a list of (key, direction) pairs")
    return values


def index_document(spec: Any) -> Dict[str, Any]:
    if isinstance(spec, abc.Mapping):
        return dict(spec)
    pairs = index_list(spec)
    if not pairs:
        raise ValueError("key_or_list must not be empty")
    doc: Dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise TypeError("first item in each key pair must be an instance of str")
        if not isinstance(value, (str, int, abc.Mapping)):
            raise TypeError("second item in each key pair must be 1, -1, '2d', 'text', or another valid MongoDB index specifier.")
        doc[key] = value
    return doc


def sort_document(sort: Any) -> Optional[Dict[str, Any]]:
    """A ``sort`` argument as the command's sort document; ``None`` for no sort. An empty
    sort (``[]``, ``{}``, ``()``) means no sort, as PyMongo's ``find(sort=[])`` treats it, in
    every method that takes one."""
    if sort is None:
        return None
    if isinstance(sort, (list, tuple, abc.Mapping, abc.ItemsView)) and not sort:
        return None
    return index_document(sort)


def index_hint(hint: Any) -> Any:
    if hint is None or isinstance(hint, str):
        return hint
    return index_document(hint)


def gen_index_name(keys: Sequence[Tuple[str, Any]]) -> str:
    return "_".join(f"{k}_{v}" for k, v in keys)


def fields_doc(projection: Any) -> Any:
    if projection is None or isinstance(projection, abc.Mapping):
        return projection
    if isinstance(projection, (list, tuple, set, frozenset)):
        if not projection:
            return {"_id": 1}
        return {f: 1 for f in projection}
    raise TypeError("projection must be a mapping or a list of field names")


def apply_common_kwargs(cmd: Dict[str, Any], kwargs: Dict[str, Any]) -> None:
    """Fold PyMongo-style keyword options into a command (maxTimeMS, collation, …)."""
    for py, wire in (("max_time_ms", "maxTimeMS"), ("batch_size", "batchSize"), ("allow_disk_use", "allowDiskUse")):
        if py in kwargs:
            v = kwargs.pop(py)
            if v is not None:
                cmd[wire] = v
    if "collation" in kwargs:
        c = kwargs.pop("collation")
        if c is not None:
            cmd["collation"] = collation_doc(c)
    cmd.update(kwargs)


def update_statement(filter: Any, update: Any, *, multi: bool, upsert: bool, collation: Any = None,
                     array_filters: Any = None, hint: Any = None, sort: Any = None) -> Dict[str, Any]:
    stmt: Dict[str, Any] = {"q": filter, "u": update}
    if multi:
        stmt["multi"] = True
    if upsert:
        stmt["upsert"] = True
    if collation is not None:
        stmt["collation"] = collation_doc(collation)
    if array_filters is not None:
        stmt["arrayFilters"] = list(array_filters)
    if hint is not None:
        stmt["hint"] = index_hint(hint)
    sort_doc = sort_document(sort)
    if sort_doc is not None:
        stmt["sort"] = sort_doc
    return stmt


def delete_statement(filter: Any, *, multi: bool, collation: Any = None, hint: Any = None) -> Dict[str, Any]:
    stmt: Dict[str, Any] = {"q": filter, "limit": 0 if multi else 1}
    if collation is not None:
        stmt["collation"] = collation_doc(collation)
    if hint is not None:
        stmt["hint"] = index_hint(hint)
    return stmt


_KIND_FIELD = {"insert": "documents", "update": "updates", "delete": "deletes"}


def _one_array(docs: List[Any], codec: CodecOptions[Any], base_size: int, max_bson: int,
               max_batch: int) -> Optional[EncodedArray]:
    """*docs* encoded as one ``documents`` array if they fit one command document, else None
    (then they go as kind-1 sequences, split by the server's limits).

    The command document may exceed ``maxBsonObjectSize`` by 16 KiB, but no inserted document
    may: an array of at most ``maxBsonObjectSize`` bytes guarantees both."""
    n = len(docs)
    if not n or n > max_batch:
        return None
    first = docs[0]
    one = len(first.raw) if isinstance(first, RawBSONDocument) else len(bson.encode(first, False, codec))
    if one * n > max_bson:  # a cheap estimate: do not encode twice what will not fit
        return None
    array = EncodedArray("documents", docs, codec)
    if len(array) > max_bson or base_size + len(array) > max_bson + STATEMENT_OVERHEAD:
        return None
    return array


def _encode_each(docs: List[Any], codec: CodecOptions[Any]) -> List[Any]:
    """Each document's BSON (a RawBSONDocument's own bytes)."""
    return [d.raw if isinstance(d, RawBSONDocument) else bson.encode(d, False, codec) for d in docs]


class _Run:
    """The statements of one run of a bulk write (one kind), and its split into batches by the
    limits of the connections its batches were built on (cached: computed once while every
    connection reports the same limits).

    insert_many's run holds its documents (*docs*) and encodes them only when a connection's
    limits are known: all in one ``documents`` array when they fit one command on it
    (:meth:`one_array`), else one by one for kind-1 sequences (:attr:`encoded`)."""

    __slots__ = ("field", "cmd_base", "base_size", "_encoded", "multi", "caps", "_split", "docs",
                 "codec")

    def __init__(self, field: str, cmd_base: Dict[str, Any], base_size: int, encoded: Optional[List[Any]],
                 multi: Optional[List[bool]], caps: Optional[Tuple[int, int, int]] = None, *,
                 docs: Optional[List[Any]] = None,
                 codec: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS) -> None:
        self.field = field
        self.cmd_base = cmd_base
        self.base_size = base_size
        self._encoded = encoded
        #: per statement: a multi-document update/delete (not retryable); None for inserts
        self.multi = multi
        #: limits the caller imposes on top of the connection's (a client subclass may lower
        #: its max_* properties)
        self.caps = caps
        self._split: Optional[Tuple[Tuple[int, int, int], Dict[int, int]]] = None
        #: insert_many's documents (encoded lazily), or None
        self.docs = docs
        self.codec = codec

    @property
    def encoded(self) -> List[Any]:
        """The statements (documents) encoded one by one, for kind-1 sequences."""
        encoded = self._encoded
        if encoded is None:
            encoded = self._encoded = _encode_each(self.docs or [], self.codec)
        return encoded

    def limits(self, conn: Any) -> Tuple[int, int, int]:
        """*conn*'s (maxBsonObjectSize, maxMessageSizeBytes, maxWriteBatchSize), capped."""
        limits = (conn.max_bson_size, conn.max_message_size, conn.max_write_batch_size)
        caps = self.caps
        if caps is not None:
            limits = (min(limits[0], caps[0]), min(limits[1], caps[1]), min(limits[2], caps[2]))
        return limits

    def one_array(self, conn: Any) -> Optional[EncodedArray]:
        """insert_many's documents as one ``documents`` array if they fit one command on
        *conn*, else None (also for the other runs)."""
        docs = self.docs
        if docs is None:
            return None
        max_bson, _max_msg, max_batch = self.limits(conn)
        return _one_array(docs, self.codec, self.base_size, max_bson, max_batch)

    def batch_end(self, start: int, conn: Any) -> int:
        """Where the batch starting at *start* ends on *conn* (its maxBsonObjectSize,
        maxMessageSizeBytes, maxWriteBatchSize)."""
        limits = self.limits(conn)
        split = self._split
        if split is None or split[0] != limits or start not in split[1]:
            encoded = self.encoded
            bounds = split_batches(self.base_size, self.field, encoded[start:] if start else encoded,
                                   max_bson_size=limits[0], max_message_size=limits[1],
                                   max_write_batch_size=limits[2])
            split = (limits, {start + a: start + b for a, b in bounds})
            self._split = split
        return split[1][start]


class WriteBatch(Operation):
    """One ``insert``/``update``/``delete`` command of a bulk write: its statements from
    *start*, cut after check-out by the connection's limits; a retryable write unless it
    holds a multi-document update or delete (a retry resends the same batch).

    insert_many's first batch carries all its documents as one ``documents`` array (one
    ``bson.encode`` call) when they fit one command on the checked-out connection."""

    __slots__ = ("run", "start", "end", "retryable_write", "unacknowledged", "sequences", "array")
    is_write = True

    def __init__(self, dbname: str, codec_options: CodecOptions[Any], run: _Run, start: int, *,
                 unacknowledged: bool) -> None:
        self.dbname = dbname
        self.codec_options = codec_options
        self.server_address = None
        self.run = run
        self.start = start
        self.end = -1
        self.retryable_write = True
        self.unacknowledged = unacknowledged
        self.sequences = None
        self.array: Optional[EncodedArray] = None

    @property
    def name(self) -> str:  # type: ignore[override]
        """The command's name."""
        return next(iter(self.run.cmd_base))

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        run = self.run
        if self.end < 0:
            start = self.start
            if not start:
                array = run.one_array(conn)
                if array is not None:
                    self.array = array
                    self.end = len(array.docs)
                    return dict(run.cmd_base)
            self.end = end = run.batch_end(start, conn)
            if run.multi is not None and any(run.multi[start:end]):
                self.retryable_write = False
        elif self.array is not None:  # (a retry resends the same batch)
            return dict(run.cmd_base)
        self.sequences = [(run.field, run.encoded[self.start:self.end])]
        return dict(run.cmd_base)

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return self.run.cmd_base


class Bulk:
    """An ordered or unordered batch of writes, split by the server's limits and merged into
    one bulk API result (the pre-4.x ``bulk_api_result`` shape that pymongo.results expects)."""

    def __init__(self, dbname: str, collection_name: str, codec_options: CodecOptions[Any], ordered: bool,
                 bypass_document_validation: Optional[bool], comment: Any = None, let: Any = None) -> None:
        self.dbname = dbname
        self.collection_name = collection_name
        self.codec_options = codec_options
        self.ordered = ordered
        self.bypass = bypass_document_validation
        self.comment = comment
        self.let = let
        self.ops: List[Tuple[str, Any]] = []  # (kind, document or statement)
        self.uses_collation = False
        self.uses_hint = False
        self.uses_array_filters = False
        #: insert_many's documents (``_id`` already set), used instead of :attr:`ops`.
        self.insert_docs: Optional[List[Any]] = None

    def add_request(self, req: Any) -> None:
        """Add one :mod:`pymongo.operations` request (InsertOne, UpdateMany, ...) to the batch."""
        if isinstance(req, InsertOne):
            doc = req._doc
            validate_document(doc, "document")
            if not isinstance(doc, RawBSONDocument) and "_id" not in doc:
                from bson.objectid import ObjectId

                doc["_id"] = ObjectId()
            self.ops.append(("insert", doc))
        elif isinstance(req, (UpdateOne, UpdateMany, ReplaceOne)):
            multi = isinstance(req, UpdateMany)
            if isinstance(req, ReplaceOne):
                validate_replacement(req._doc)
            else:
                validate_update(req._doc)
            validate_filter(req._filter, allow_none=False)
            if req._collation is not None:
                self.uses_collation = True
            if req._hint is not None:
                self.uses_hint = True
            af = getattr(req, "_array_filters", None)
            if af is not None:
                self.uses_array_filters = True
            stmt = update_statement(req._filter, req._doc, multi=multi, upsert=bool(req._upsert),
                                    collation=req._collation, array_filters=af, hint=req._hint,
                                    sort=getattr(req, "_sort", None))
            self.ops.append(("update", stmt))
        elif isinstance(req, (DeleteOne, DeleteMany)):
            validate_filter(req._filter, allow_none=False)
            if req._collation is not None:
                self.uses_collation = True
            if req._hint is not None:
                self.uses_hint = True
            stmt = delete_statement(req._filter, multi=isinstance(req, DeleteMany),
                                    collation=req._collation, hint=req._hint)
            self.ops.append(("delete", stmt))
        else:
            raise TypeError(f"{req!r} is not a valid request")

    def _runs(self) -> List[Tuple[str, List[int]]]:
        """Group operation indexes into runs of one kind (consecutive if ordered)."""
        if self.insert_docs is not None:
            return [("insert", list(range(len(self.insert_docs))))]
        if self.ordered:
            runs: List[Tuple[str, List[int]]] = []
            for i, (kind, _) in enumerate(self.ops):
                if runs and runs[-1][0] == kind:
                    runs[-1][1].append(i)
                else:
                    runs.append((kind, [i]))
            return runs
        groups: Dict[str, List[int]] = {}
        for i, (kind, _) in enumerate(self.ops):
            groups.setdefault(kind, []).append(i)
        return [(k, groups[k]) for k in ("insert", "update", "delete") if k in groups]

    async def execute(
        self,
        executor: Any,
        session: Optional[ClientSession],
        wc: Optional[WriteConcern],
        limits: Optional[Tuple[int, int, int]] = None,
    ) -> Tuple[Dict[str, Any], bool]:
        """Run the batch's commands through *executor*, split by the server's limits, with
        write concern *wc* (None: the server's default, as in a transaction); returns
        ``(bulk API result, acknowledged)`` for a :class:`pymongo.results.BulkWriteResult`
        (Motor: ``bulk_write``).

        :param limits: ``(maxBsonObjectSize, maxMessageSizeBytes, maxWriteBatchSize)`` caps
            on top of each checked-out connection's own limits (a client subclass may lower
            its ``max_*`` properties); None: the connections' limits alone.
        """
        acknowledged = wc is None or wc.acknowledged
        if not acknowledged:
            # Hints are sent with w:0 (servers >= 4.4, amongo's minimum).
            if self.uses_collation:
                raise ConfigurationError("Collation is unsupported for unacknowledged writes.")
            if self.uses_array_filters:
                raise ConfigurationError("arrayFilters is unsupported for unacknowledged writes.")
        codec = self.codec_options
        result: Dict[str, Any] = {
            "writeErrors": [], "writeConcernErrors": [], "nInserted": 0, "nUpserted": 0,
            "nMatched": 0, "nModified": 0, "nRemoved": 0, "upserted": [],
        }
        dbname = self.dbname
        stop = False
        for kind, indexes in self._runs():
            if stop:
                break
            field = _KIND_FIELD[kind]
            cmd_base: Dict[str, Any] = {kind: self.collection_name, "ordered": self.ordered}
            if self.bypass is not None and kind != "delete":
                cmd_base["bypassDocumentValidation"] = self.bypass
            if self.let is not None and kind != "insert":
                cmd_base["let"] = self.let
            if self.comment is not None:
                cmd_base["comment"] = self.comment
            if wc is not None and wc.document:
                cmd_base["writeConcern"] = wc.document
            base_size = len(bson.encode(cmd_base)) + 200
            if self.insert_docs is not None:
                # (encoded after check-out: as one array if they fit one command there)
                run = _Run(field, cmd_base, base_size, None, None, limits, docs=self.insert_docs, codec=codec)
            else:
                encoded = _encode_each([self.ops[i][1] for i in indexes], codec)
                multi = None if kind == "insert" else [
                    bool(self.ops[i][1].get("multi")) or self.ops[i][1].get("limit", 1) == 0 for i in indexes
                ]
                run = _Run(field, cmd_base, base_size, encoded, multi, limits)
            start, n = 0, len(indexes)
            while start < n:
                # (each batch is cut after check-out, by that connection's limits)
                batch = WriteBatch(dbname, codec, run, start, unacknowledged=not acknowledged)
                reply = await executor.execute(batch, session)
                start, end = batch.start, batch.end
                if not acknowledged:
                    start = end
                    continue
                self._merge(kind, reply, indexes, start, result)
                if self.ordered and reply.get("writeErrors"):
                    stop = True
                    break
                start = end
        if acknowledged and (result["writeErrors"] or result["writeConcernErrors"]):
            if result["writeErrors"]:
                result["writeErrors"].sort(key=lambda e: e["index"])
            raise BulkWriteError(result)
        return result, acknowledged

    def _merge(self, kind: str, reply: Mapping[str, Any], indexes: List[int], offset: int, result: Dict[str, Any]) -> None:
        n = reply.get("n", 0)
        if kind == "insert":
            result["nInserted"] += n
        elif kind == "update":
            upserted = reply.get("upserted") or []
            result["nUpserted"] += len(upserted)
            result["nMatched"] += n - len(upserted)
            result["nModified"] += reply.get("nModified", 0)
            for u in upserted:
                result["upserted"].append({"index": indexes[offset + u["index"]], "_id": u["_id"]})
        else:
            result["nRemoved"] += n
        for err in reply.get("writeErrors") or []:
            e = dict(err)
            idx = indexes[offset + e["index"]]
            e["index"] = idx
            e["op"] = self.insert_docs[idx] if self.insert_docs is not None else self.ops[idx][1]
            result["writeErrors"].append(e)
        wce = reply.get("writeConcernError")
        if wce:
            result["writeConcernErrors"].append(dict(wce))


def check_reply_times(reply: Mapping[str, Any]) -> None:
    """Check the gossiped times of a reply before they are used: ``$clusterTime`` is a
    document whose ``clusterTime`` is a Timestamp, ``operationTime`` a Timestamp.

    :raises ProtocolError: a malformed value (it would otherwise fail every later
        comparison with a TypeError or KeyError).
    """
    ct = reply.get("$clusterTime")
    if ct is not None and not (
        (type(ct) is dict or isinstance(ct, abc.Mapping)) and isinstance(ct.get("clusterTime"), Timestamp)
    ):
        raise ProtocolError("Malformed $clusterTime in server reply")
    ot = reply.get("operationTime")
    if ot is not None and not isinstance(ot, Timestamp):
        raise ProtocolError("Malformed operationTime in server reply")
