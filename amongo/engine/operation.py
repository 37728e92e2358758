"""Operations as values: one small object per command kind (issue 12; the MongoDB Rust
driver's ``operation/*.rs`` is the model).

An operation holds what its facade resolved (database, codec options, read preference, the
concerns' documents) and says, as data, how the executor must run it:

- selection: ``read_preference`` (None: a writable server) and ``address`` (a cursor's server);
- retryability: ``retryable_read`` / ``retryable_write`` (``retry_kind`` names which);
- whether it writes (``is_write``: which of retryReads/retryWrites allows overload retries);
- its concerns: ``read_concern`` / ``write_concern`` documents, which the executor stamps
  (and drops inside a transaction); ``unacknowledged`` for ``w:0``.

:meth:`Operation.build` makes the command from the checked-out connection's own description
(wire version, maxBsonObjectSize, maxMessageSizeBytes, maxWriteBatchSize), once per attempt;
:meth:`Operation.handle` interprets the reply. Operations never stamp lsid, txnNumber,
$clusterTime, $readPreference or the API version: :meth:`Executor.execute
<amongo.engine.executor.Executor.execute>` does.

Defaults are class attributes; each kind adds slots only for what varies per instance, so the
hot operations (find_one, insert_one) are built with a few attribute stores. Pure: no asyncio.
"""
from __future__ import annotations

from collections import abc
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Sequence, Tuple

from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from pymongo.errors import DocumentTooLarge, InvalidOperation, ProtocolError

from amongo import _csot
from amongo.wire.batching import EncodedArray

#: mongos continues exhaust getMore streams from MongoDB 7.1 (SERVER-57297; PyMongo's constant)
MONGOS_EXHAUST_WIRE_VERSION = 22

Sequences = Optional[Sequence[Tuple[str, Sequence[bytes]]]]

RETRY_NONE = "none"
RETRY_READ = "read"
RETRY_WRITE = "write"


def cursor_document(reply: Mapping[str, Any], first: bool = True) -> Mapping[str, Any]:
    """The ``cursor`` document of a find/aggregate/getMore/list* reply, checked: a mapping
    whose ``id`` is an integer and whose ``firstBatch`` (*first*) or ``nextBatch`` is an
    array (``ns`` a string when present).

    :raises ProtocolError: a malformed reply (never a KeyError/TypeError for the user).
    """
    # (``type(x) is dict`` first: a decoded reply is a dict, and the ABC check costs calls)
    cursor = reply.get("cursor") if type(reply) is dict or isinstance(reply, abc.Mapping) else None
    key = "firstBatch" if first else "nextBatch"
    if type(cursor) is not dict and not isinstance(cursor, abc.Mapping):
        raise ProtocolError("Malformed cursor reply from server: no 'cursor' document")
    cid = cursor.get("id")
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise ProtocolError("Malformed cursor reply from server: 'cursor.id' is not an integer")
    if not isinstance(cursor.get(key), list):
        raise ProtocolError(f"Malformed cursor reply from server: 'cursor.{key}' is not an array")
    ns = cursor.get("ns")
    if ns is not None and not isinstance(ns, str):
        raise ProtocolError("Malformed cursor reply from server: 'cursor.ns' is not a string")
    return cursor


# -- the concern rules (transactions spec): inside a transaction an operation carries no
# concern of its own and reads with the transaction's read preference ----------------------

def read_preference_for(session: Any, default: Any) -> Any:
    """The read preference an operation of an object whose own is *default* uses with
    *session*: the transaction's (if it set one) inside a transaction."""
    if session is not None and session.in_transaction and session.txn_options is not None:
        rp = session.txn_options.read_preference
        return rp if rp is not None else default
    return default


def write_concern_for(session: Any, default: Any) -> Any:
    """The write concern (a pymongo ``WriteConcern``) an operation sends: *default*, or None
    inside a transaction."""
    if session is not None and session.in_transaction:
        return None
    return default


def read_concern_document_for(session: Any, read_concern: Any) -> Optional[Dict[str, Any]]:
    """The ``readConcern`` document an operation sends for *read_concern* (a pymongo
    ``ReadConcern``): None when empty or inside a transaction."""
    if session is not None and session.in_transaction:
        return None
    return read_concern.document or None


class Operation:
    """One command as a value (internal; the base of every operation kind).

    Subclasses set ``name`` and override :meth:`build` (and :meth:`handle` when the reply
    needs interpreting). The class attributes below are the defaults the executor reads.
    """

    __slots__ = ("dbname", "codec_options", "server_address")
    dbname: str
    codec_options: CodecOptions[Any]
    #: the address of the server that ran the last attempt (set by the executor)
    server_address: Optional[Tuple[str, int]]

    #: the command's name (selection logging, tracing, the cursor pin rules)
    name: str = ""
    # -- selection -------------------------------------------------------------------------
    #: None: a writable server; else a pymongo read preference
    read_preference: Any = None
    #: run on this server (a cursor's getMore/killCursors)
    address: Optional[Tuple[str, int]] = None
    #: a load-balanced cursor's :class:`~amongo.engine.executor.Pin`
    pin: Any = None
    #: an aggregate with $out/$merge (CRUD spec's secondary-read rule)
    write_aggregate: bool = False
    # -- retryability and kind --------------------------------------------------------------
    retryable_read: bool = False
    retryable_write: bool = False
    #: None: it writes when ``read_preference`` is None
    is_write: Optional[bool] = None
    #: a user's runCommand: both retryReads and retryWrites decide overload retries
    run_command: bool = False
    #: commitTransaction / abortTransaction
    is_txn_finish: bool = False
    # -- concerns (documents; the executor stamps them, never inside a transaction) ----------
    read_concern: Optional[Mapping[str, Any]] = None
    write_concern: Optional[Mapping[str, Any]] = None
    unacknowledged: bool = False
    # -- sending -----------------------------------------------------------------------------
    #: OP_MSG document sequences (set by :meth:`build` when it makes them)
    sequences: Sequences = None
    #: documents pre-encoded as one array field appended to the command when sent
    array: Optional[EncodedArray] = None
    #: raise OperationFailure for ``ok: 0`` replies
    check: bool = True
    #: send with OP_MSG ``exhaustAllowed`` (an exhaust cursor's getMore): a reply with
    #: moreToCome keeps the connection pinned to the operation's ``pin`` for the stream
    exhaust_allowed: bool = False
    #: the executor may use an implicit session of its own when none is given
    implicit_session: bool = True
    #: the executor records the ``lsid`` of its implicit session in ``self.lsid`` (find_one:
    #: a cursor the server left open is killed in the session that opened it)
    records_lsid: bool = False
    #: only the driver reads the reply (no user sees it): its ``$clusterTime`` and
    #: ``operationTime`` may stay encoded when no session keeps times (see the executor)
    split_times: bool = False

    @property
    def retry_kind(self) -> str:
        """``"read"``, ``"write"`` or ``"none"``: which retry rules apply (data for tests and
        tracing; the executor reads the two booleans)."""
        if self.retryable_write:
            return RETRY_WRITE
        if self.retryable_read:
            return RETRY_READ
        return RETRY_NONE

    def build(self, conn: Any) -> MutableMapping[str, Any]:  # pragma: no cover - abstract
        """The command for one attempt on the checked-out connection *conn* (its
        ``max_wire_version``, ``max_bson_size``, ``max_message_size``,
        ``max_write_batch_size``). May set ``sequences``/``array``; an error raised here
        fails the operation (never sent, never retried)."""
        raise NotImplementedError

    def handle(self, reply: Dict[str, Any]) -> Any:
        """The operation's result from the server's *reply* (default: the reply)."""
        return reply

    def preview(self) -> Mapping[str, Any]:
        """A small document naming the command (and its collection) before it is built: what
        tracing and selection logging read."""
        return {self.name: 1}


class DocumentOperation(Operation):
    """An operation whose command document its facade made from the method's options (the
    kinds below differ in their data: selection, retryability, concerns)."""

    __slots__ = ("cmd",)
    cmd: MutableMapping[str, Any]

    @property
    def name(self) -> str:  # type: ignore[override]
        """The command's name."""
        return next(iter(self.cmd))

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        return self.cmd

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return self.cmd


class Command(DocumentOperation):
    """A command document built by its caller (runCommand, DDL, list*, the commands not yet
    given a kind of their own); every executor option is instance data."""

    __slots__ = (
        "read_preference", "retryable_read", "retryable_write", "is_write", "run_command",
        "is_txn_finish", "read_concern", "write_concern", "unacknowledged", "sequences", "array",
        "address", "check", "implicit_session", "pin", "write_aggregate",
    )

    def __init__(
        self,
        dbname: str,
        cmd: MutableMapping[str, Any],
        *,
        read_preference: Any = None,
        codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS,
        retryable_read: bool = False,
        retryable_write: bool = False,
        sequences: Sequences = None,
        unacknowledged: bool = False,
        address: Optional[Tuple[str, int]] = None,
        check: bool = True,
        is_txn_finish: bool = False,
        is_write: Optional[bool] = None,
        implicit_session: bool = True,
        array: Optional[EncodedArray] = None,
        pin: Any = None,
        run_command: bool = False,
        read_concern: Optional[Mapping[str, Any]] = None,
        write_concern: Optional[Mapping[str, Any]] = None,
        write_aggregate: bool = False,
    ) -> None:
        self.dbname = dbname
        self.cmd = cmd
        self.read_preference = read_preference
        self.codec_options = codec_options
        self.retryable_read = retryable_read
        self.retryable_write = retryable_write
        self.sequences = sequences
        self.unacknowledged = unacknowledged
        self.address = address
        self.check = check
        self.is_txn_finish = is_txn_finish
        self.is_write = is_write
        self.implicit_session = implicit_session
        self.array = array
        self.pin = pin
        self.run_command = run_command
        self.read_concern = read_concern
        self.write_concern = write_concern
        self.write_aggregate = write_aggregate
        self.server_address = None


class FindOne(Operation):
    """``find`` with ``limit: 1, singleBatch: true`` (``find_one`` with no other option): the
    first document or None. A retryable read."""

    __slots__ = ("coll", "filter", "read_preference", "read_concern", "lsid")
    name = "find"
    retryable_read = True
    is_write = False
    records_lsid = True  # (a cursor the server left open is killed in the same session)
    split_times = True

    def __init__(self, dbname: str, coll: str, filter: Mapping[str, Any], read_preference: Any,
                 read_concern: Optional[Mapping[str, Any]], codec_options: CodecOptions[Any]) -> None:
        self.dbname = dbname
        self.coll = coll
        self.filter = filter
        self.read_preference = read_preference
        self.read_concern = read_concern
        self.codec_options = codec_options
        self.server_address = None
        self.lsid: Optional[Mapping[str, Any]] = None

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        return {"find": self.coll, "filter": self.filter, "limit": 1, "singleBatch": True}

    def handle(self, reply: Dict[str, Any]) -> Any:
        """The reply's cursor document (checked)."""
        return cursor_document(reply)

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return {"find": self.coll}


class CursorCommand(DocumentOperation):
    """The command that opens a cursor (``find`` with cursor options, ``aggregate``,
    ``listCollections``, ``listIndexes``...), its document made by the cursor from its
    options; selection, retryability and concerns as data."""

    __slots__ = ("read_preference", "retryable_read", "is_write", "read_concern",
                 "write_concern", "pin", "write_aggregate")
    implicit_session = False  # (the cursor owns its implicit session)

    def __init__(self, dbname: str, cmd: MutableMapping[str, Any], codec_options: CodecOptions[Any], *,
                 read_preference: Any, retryable_read: bool, is_write: bool,
                 read_concern: Optional[Mapping[str, Any]], write_concern: Optional[Mapping[str, Any]],
                 pin: Any) -> None:
        self.dbname = dbname
        self.cmd = cmd
        self.codec_options = codec_options
        self.read_preference = read_preference
        self.retryable_read = retryable_read
        self.is_write = is_write
        self.write_aggregate = is_write  # (a cursor that writes is an aggregate with $out/$merge)
        self.read_concern = read_concern
        self.write_concern = write_concern
        self.pin = pin
        self.server_address = None

class GetMore(Operation):
    """``getMore`` on the cursor's server (never retried; overload retries follow
    retryReads, as a read)."""

    __slots__ = ("cursor_id", "coll", "batch_size", "max_time_ms", "comment", "address", "pin", "exhaust_allowed")
    name = "getMore"
    is_write = False
    implicit_session = False
    split_times = True

    def __init__(self, dbname: str, coll: str, cursor_id: int, address: Optional[Tuple[str, int]],
                 codec_options: CodecOptions[Any], batch_size: int = 0,
                 max_time_ms: Optional[int] = None, comment: Any = None, pin: Any = None,
                 exhaust_allowed: bool = False) -> None:
        self.dbname = dbname
        self.coll = coll
        self.cursor_id = cursor_id
        self.exhaust_allowed = exhaust_allowed
        self.address = address
        self.codec_options = codec_options
        self.batch_size = batch_size
        self.max_time_ms = max_time_ms
        self.comment = comment
        self.pin = pin
        self.server_address = None

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        if self.exhaust_allowed and conn.hello.get("msg") == "isdbgrid" and conn.max_wire_version < MONGOS_EXHAUST_WIRE_VERSION:
            raise InvalidOperation("Exhaust cursors require MongoDB 7.1+ when connected to mongos.")
        cmd: Dict[str, Any] = {"getMore": self.cursor_id, "collection": self.coll}
        if self.batch_size:
            cmd["batchSize"] = self.batch_size
        max_time_ms = self.max_time_ms
        if max_time_ms is not None:
            # (CSOT "Tailable cursors": an awaitData getMore waits at most the time left of the
            # deadline it runs under, when that is below maxAwaitTimeMS)
            left = _csot.remaining()
            if left is not None and left * 1000 < max_time_ms:
                max_time_ms = max(int(left * 1000), 1)
            cmd["maxTimeMS"] = max_time_ms
        if self.comment is not None:
            cmd["comment"] = self.comment
        return cmd

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return {"getMore": self.cursor_id, "collection": self.coll}


class KillCursors(Operation):
    """``killCursors`` on the cursor's server; its reply is not checked."""

    __slots__ = ("coll", "cursor_ids", "address", "pin", "lsid")
    name = "killCursors"
    check = False
    implicit_session = False

    def __init__(self, dbname: str, coll: str, cursor_ids: List[int], address: Optional[Tuple[str, int]],
                 pin: Any = None, lsid: Optional[Mapping[str, Any]] = None) -> None:
        self.dbname = dbname
        self.coll = coll
        self.cursor_ids = cursor_ids
        self.address = address
        self.pin = pin
        self.lsid = lsid
        self.codec_options = DEFAULT_CODEC_OPTIONS
        self.server_address = None

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire
        version); see :meth:`Operation.build`. With *lsid* (a server session already
        returned to the pool: find_one's) the command names that session itself."""
        if self.lsid is not None:
            return {"killCursors": self.coll, "cursors": self.cursor_ids, "lsid": self.lsid}
        return {"killCursors": self.coll, "cursors": self.cursor_ids}

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return {"killCursors": self.coll, "cursors": self.cursor_ids}


class WriteStatements(Operation):
    """``insert`` / ``update`` / ``delete`` with statements already encoded (one document
    sequence); the size of each is checked against the connection's maxBsonObjectSize when
    built. Retryable unless it holds a multi-document update or delete."""

    __slots__ = ("name", "coll", "field", "encoded", "options", "retryable_write", "write_concern",
                 "unacknowledged", "sequences")
    is_write = True
    split_times = True

    def __init__(self, dbname: str, name: str, coll: str, field: str, encoded: List[bytes],
                 options: Optional[Dict[str, Any]], codec_options: CodecOptions[Any], *,
                 retryable: bool, write_concern: Optional[Mapping[str, Any]], unacknowledged: bool) -> None:
        self.dbname = dbname
        self.name = name
        self.coll = coll
        self.field = field
        self.encoded = encoded
        self.options = options
        self.codec_options = codec_options
        self.retryable_write = retryable
        self.write_concern = write_concern
        self.unacknowledged = unacknowledged
        self.server_address = None

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        max_bson = conn.max_bson_size
        for d in self.encoded:
            if len(d) > max_bson:
                raise DocumentTooLarge(
                    f"BSON document too large ({len(d)} bytes) - the connected server supports BSON "
                    f"document sizes up to {max_bson} bytes.")
        cmd: Dict[str, Any] = {self.name: self.coll, "ordered": True}
        if self.options:
            cmd.update(self.options)
        self.sequences = ((self.field, self.encoded),)
        return cmd

    def preview(self) -> Mapping[str, Any]:
        """The command as monitoring and tracing show it; see :meth:`Operation.preview`."""
        return {self.name: self.coll}



class EndTransaction(Operation):
    """``commitTransaction`` / ``abortTransaction`` on admin: always retried once (retryable
    writes' rules; the retried commit's ``w:majority`` rule is the executor's), the
    transaction's write concern as data, the session's current ``recoveryToken`` read when
    built (a retry carries the newest)."""

    __slots__ = ("name", "session", "max_time_ms", "write_concern")
    is_txn_finish = True
    retryable_write = True
    is_write = True

    def __init__(self, name: str, session: Any, write_concern: Optional[Mapping[str, Any]],
                 max_time_ms: Optional[int] = None) -> None:
        self.dbname = "admin"
        self.codec_options = DEFAULT_CODEC_OPTIONS
        self.server_address = None
        self.name = name
        self.session = session
        self.write_concern = write_concern
        self.max_time_ms = max_time_ms

    def build(self, conn: Any) -> MutableMapping[str, Any]:
        """The command to send on the checked-out connection *conn* (its limits and wire version); see :meth:`Operation.build`."""
        cmd: Dict[str, Any] = {self.name: 1}
        if self.max_time_ms is not None:
            cmd["maxTimeMS"] = self.max_time_ms
        token = self.session.recovery_token
        if token is not None:
            cmd["recoveryToken"] = token
        return cmd


class WriteCommand(DocumentOperation):
    """A command that writes, its document made by the facade from the method's options, the
    write concern as data. Each kind below says whether it is a retryable write."""

    __slots__ = ("retryable_write", "write_concern", "unacknowledged", "check")
    is_write = True
    #: whether this kind is a retryable write (retryable-writes spec)
    RETRYABLE = False

    def __init__(self, dbname: str, cmd: MutableMapping[str, Any], codec_options: CodecOptions[Any], *,
                 write_concern: Optional[Mapping[str, Any]] = None, unacknowledged: bool = False,
                 check: bool = True) -> None:
        self.dbname = dbname
        self.cmd = cmd
        self.codec_options = codec_options
        self.retryable_write = self.RETRYABLE
        self.write_concern = write_concern
        self.unacknowledged = unacknowledged
        self.check = check
        self.server_address = None

class FindAndModify(WriteCommand):
    """``findAndModify`` (find_one_and_delete/replace/update): a retryable write."""

    __slots__ = ()
    RETRYABLE = True


class CreateIndexes(WriteCommand):
    """``createIndexes`` (not retryable)."""

    __slots__ = ()


class DropIndexes(WriteCommand):
    """``dropIndexes`` (not retryable)."""

    __slots__ = ()


class DatabaseWrite(WriteCommand):
    """``create``, ``drop``, ``renameCollection``, ``dropDatabase`` and the other commands a
    database runs with its write concern (not retryable)."""

    __slots__ = ()


class SearchIndexCommand(WriteCommand):
    """``createSearchIndexes``, ``dropSearchIndex``, ``updateSearchIndex`` (no write concern,
    not retryable)."""

    __slots__ = ()


class ReadCommand(DocumentOperation):
    """A read whose document the facade made (``count``, ``distinct``, ``count_documents``'
    aggregate, ``listDatabases``): a retryable read with the collection's read preference and
    read concern as data."""

    __slots__ = ("read_preference", "retryable_read", "read_concern")
    is_write = False

    def __init__(self, dbname: str, cmd: MutableMapping[str, Any], codec_options: CodecOptions[Any], *,
                 read_preference: Any, read_concern: Optional[Mapping[str, Any]] = None,
                 retryable: bool = True) -> None:
        self.dbname = dbname
        self.cmd = cmd
        self.codec_options = codec_options
        self.read_preference = read_preference
        self.read_concern = read_concern
        self.retryable_read = retryable
        self.server_address = None

class RunCommand(DocumentOperation):
    """A user's ``Database.command``: never retried except on overload (both retryReads and
    retryWrites decide), run with the read preference given (primary by default); a
    ``readConcern``/``writeConcern`` the user wrote stays in the document."""

    __slots__ = ("read_preference", "check")
    run_command = True

    def __init__(self, dbname: str, cmd: MutableMapping[str, Any], codec_options: CodecOptions[Any],
                 read_preference: Any, check: bool = True) -> None:
        self.dbname = dbname
        self.cmd = cmd
        self.codec_options = codec_options
        self.read_preference = read_preference
        self.check = check
        self.server_address = None

