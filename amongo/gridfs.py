"""GridFS (Motor's ``AsyncIOMotorGridFSBucket``, ``AsyncIOMotorGridIn``, ``AsyncIOMotorGridOut``
and ``AsyncIOMotorGridOutCursor``), implemented after the GridFS spec on amongo's collections.

A file is one document in ``<bucket>.files`` (``_id``, ``length``, ``chunkSize``, ``uploadDate``,
``filename``, optional ``metadata``) and ``ceil(length / chunkSize)`` documents in
``<bucket>.chunks`` (``files_id``, ``n``, ``data``). The exceptions users catch are the ones
PyMongo's distribution defines in :mod:`gridfs.errors`.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import inspect
import io
import math
import os
import warnings
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Dict, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar

from bson.binary import Binary
from bson.int64 import Int64
from bson.objectid import ObjectId
from gridfs.errors import CorruptGridFile, FileExists, NoFile
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, ConfigurationError, DuplicateKeyError, InvalidOperation, OperationFailure
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from amongo import _csot
from amongo._common import _facade_class, executor_of
from amongo.collection import Collection, index_cursor
from amongo.cursor import Cursor
from amongo.database import Database
from amongo.engine.operations import cursor_document
from amongo.engine.session import ClientSession

__all__ = ["GridFSBucket", "GridIn", "GridOut", "GridOutCursor", "DEFAULT_CHUNK_SIZE"]

#: Default chunk size: 255 KiB, as in the spec (Motor/PyMongo ``DEFAULT_CHUNK_SIZE``).
DEFAULT_CHUNK_SIZE = 255 * 1024

_F_INDEX: Dict[str, Any] = {"filename": ASCENDING, "uploadDate": ASCENDING}
_C_INDEX: Dict[str, Any] = {"files_id": ASCENDING, "n": ASCENDING}

#: chunk documents are inserted in batches of at most this many payload bytes
_UPLOAD_BATCH_BYTES = 8 * 1024 * 1024

_SEEK_SET = os.SEEK_SET
_SEEK_CUR = os.SEEK_CUR
_SEEK_END = os.SEEK_END


def _disallow_transactions(session: Optional["ClientSession"]) -> None:
    if session is not None and session.in_transaction:
        raise InvalidOperation("GridFS does not support multi-document transactions")


def _same_keys(spec: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether an index key document equals *wanted* (numeric values compared by value, so
    ``1``, ``1.0`` and ``Int64(1)`` match, as the spec requires)."""
    items = list(spec.items())
    want = list(wanted.items())
    if len(items) != len(want):
        return False
    for (k, v), (wk, wv) in zip(items, want):
        if k != wk:
            return False
        try:
            if float(v) != float(wv):
                return False
        except (TypeError, ValueError):
            return False
    return True


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _now() -> datetime.datetime:
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    # BSON dates have millisecond precision; keep the local value equal to the stored one.
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def _whole_operation(method: _F) -> _F:
    """CSOT "GridFS API": run a bucket method under ONE deadline covering all its commands:
    the ``pymongo.timeout()`` around it, else the client's ``timeoutMS`` from the call on
    (as PyMongo's ``@_csot.apply``)."""

    @functools.wraps(method)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _csot.inherit(executor_of(self._collection).timeout):
            return await method(self, *args, **kwargs)

    return run  # type: ignore[return-value]


def _lifetime(root: Collection[Any]) -> Optional[Tuple[float, float]]:
    """The deadline a GridFS stream keeps for its whole lifetime (CSOT "GridFS API": timeoutMS
    caps the stream's lifetime): the one in effect when it is made, else the client's
    ``timeoutMS`` from then on; None without either."""
    return _csot.kept(executor_of(root).timeout)


def _within(kept: Optional[Tuple[float, float]]) -> Any:
    """A context running a stream's commands under its kept deadline (no-op without one)."""
    return contextlib.nullcontext() if kept is None else _csot.scope(*kept)


class _Bucket:
    """The two collections of one bucket plus the first-write index check."""

    __slots__ = ("root", "files", "chunks")

    def __init__(self, root: Collection[Any]) -> None:
        self.root = root
        self.files: Collection[Any] = root["files"]
        self.chunks: Collection[Any] = root["chunks"]

    async def ensure_indexes(self, session: Optional["ClientSession"]) -> None:
        """Create the files and chunks indexes when the files collection is empty (spec:
        "Indexes"), unless indexes with the same keys already exist."""
        files = self.files.with_options(read_preference=ReadPreference.PRIMARY)
        if await files.find_one({}, projection={"_id": 1}, session=session) is not None:
            return
        await self._ensure_index(self.files, _F_INDEX, False, session)
        await self._ensure_index(self.chunks, _C_INDEX, True, session)

    @staticmethod
    async def _ensure_index(coll: Collection[Any], keys: Dict[str, Any], unique: bool, session: Optional["ClientSession"]) -> None:
        try:
            existing = [ix["key"] async for ix in index_cursor(coll, session=session)]
        except OperationFailure:
            existing = []
        if any(_same_keys(k, keys) for k in existing):
            return
        await coll.create_index(list(keys.items()), unique=unique, session=session)


# ---------------------------------------------------------------------------------------------
# upload


class GridIn:
    """A file being written to GridFS (Motor: ``AsyncIOMotorGridIn``).

    Get one from :meth:`GridFSBucket.open_upload_stream`, or construct it on a bucket's root
    collection (``GridIn(db.fs, filename="x", chunk_size=1024, metadata={...})``), as in Motor.
    Data is buffered and written in whole chunks; :meth:`close` writes the last chunk and the
    files document. Use it as ``async with bucket.open_upload_stream("name") as f: ...``.
    """

    __slots__ = ("_bucket", "_session", "_file", "_buffer", "_pending", "_pending_bytes",
                 "_position", "_chunk_number", "_closed", "_ensured_index", "_deadline")

    def __init__(self, root_collection: Collection[Any], delegate: Any = None, session: Optional["ClientSession"] = None, **kwargs: Any) -> None:
        if not isinstance(root_collection, Collection):
            raise TypeError(f"root_collection must be an instance of Collection, not {type(root_collection)}")
        if not root_collection.write_concern.acknowledged:
            raise ConfigurationError("root_collection must use acknowledged write_concern")
        _disallow_transactions(session)
        if "content_type" in kwargs:
            kwargs["contentType"] = kwargs.pop("content_type")
        if "chunk_size" in kwargs:
            kwargs["chunkSize"] = kwargs.pop("chunk_size")
        kwargs.pop("disable_md5", None)
        kwargs.pop("md5", None)
        file_id = kwargs.pop("_id", None)
        chunk_size = kwargs.pop("chunkSize", None)
        if chunk_size is None:
            chunk_size = DEFAULT_CHUNK_SIZE
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size <= 0:
            raise ValueError("chunk_size must be a positive integer")
        doc: Dict[str, Any] = {"_id": ObjectId() if file_id is None else file_id, "chunkSize": chunk_size}
        doc.update(kwargs)
        self._bucket = _Bucket(root_collection)
        self._session = session
        self._file = doc
        self._buffer = bytearray()
        self._pending: List[Dict[str, Any]] = []
        self._pending_bytes = 0
        self._position = 0
        self._chunk_number = 0
        self._closed = False
        self._ensured_index = False
        self._deadline = _lifetime(root_collection)

    # -- attributes (Motor: read-only properties) --------------------------------------------
    @property
    def _id(self) -> Any:
        """The file's ``_id``."""
        return self._file["_id"]

    @property
    def filename(self) -> Optional[str]:
        """The file's name (Motor: ``filename``)."""
        return self._file.get("filename")

    @property
    def name(self) -> Optional[str]:
        """Alias of :attr:`filename` (Motor: ``name``)."""
        return self._file.get("filename")

    @property
    def content_type(self) -> Optional[str]:
        """The deprecated ``contentType`` field, if given (Motor: ``content_type``)."""
        return self._file.get("contentType")

    @property
    def chunk_size(self) -> int:
        """Bytes per chunk (Motor: ``chunk_size``)."""
        return int(self._file["chunkSize"])

    @property
    def length(self) -> int:
        """The file's length; only available once closed (Motor: ``length``)."""
        if not self._closed:
            raise AttributeError("can only get 'length' on a closed file")
        return int(self._file["length"])

    @property
    def upload_date(self) -> datetime.datetime:
        """When the file was stored; only available once closed (Motor: ``upload_date``)."""
        if not self._closed:
            raise AttributeError("can only get 'upload_date' on a closed file")
        upload_date: datetime.datetime = self._file["uploadDate"]
        return upload_date

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` or :meth:`abort` was called (Motor: ``closed``)."""
        return self._closed

    def __getattr__(self, name: str) -> Any:
        """Other fields of the files document, e.g. ``metadata`` (Motor: ``__getattr__``)."""
        if name.startswith("__") or name in GridIn.__slots__:
            raise AttributeError(name)
        file = self._file
        if name in file:
            return file[name]
        raise AttributeError(f"GridIn object has no attribute {name!r}")

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorGridIn.get_io_loop``)."""
        return self._bucket.root.get_io_loop()

    # -- io.IOBase-like predicates (Motor: sync) --------------------------------------------
    def read(self, size: int = -1) -> Any:
        """Not supported on an upload stream (Motor: ``read``)."""
        raise io.UnsupportedOperation("read")

    def readable(self) -> bool:
        """False: a GridIn is write-only (Motor: ``AsyncIOMotorGridIn.readable``)."""
        return False

    def seekable(self) -> bool:
        """False (Motor: ``AsyncIOMotorGridIn.seekable``)."""
        return False

    def writeable(self) -> bool:
        """True (Motor: ``AsyncIOMotorGridIn.writeable``)."""
        return True

    # -- writing ------------------------------------------------------------------------------
    async def set(self, name: str, value: Any) -> None:
        """Set a field of the files document; once closed, update it on the server
        (Motor: ``set``)."""
        self._file[name] = value
        if self._closed:
            await self._bucket.files.update_one({"_id": self._file["_id"]}, {"$set": {name: value}}, session=self._session)

    async def _ensure_indexes(self) -> None:
        if not self._ensured_index:
            _disallow_transactions(self._session)
            await self._bucket.ensure_indexes(self._session)
            self._ensured_index = True

    def _add_chunk(self, data: "bytes | bytearray | memoryview") -> None:
        self._pending.append({"files_id": self._file["_id"], "n": self._chunk_number, "data": Binary(bytes(data))})
        self._pending_bytes += len(data)
        self._chunk_number += 1
        self._position += len(data)

    async def _flush_pending(self) -> None:
        if not self._pending:
            return
        with _within(self._deadline):
            await self._ensure_indexes()
            docs, self._pending, self._pending_bytes = self._pending, [], 0
            await self._insert_chunks(docs)

    async def _insert_chunks(self, docs: List[Dict[str, Any]]) -> None:
        try:
            await self._bucket.chunks.insert_many(docs, session=self._session)
        except (DuplicateKeyError, BulkWriteError) as exc:
            if isinstance(exc, BulkWriteError) and not all(e.get("code") in (11000, 11001, 12582) for e in exc.details.get("writeErrors", ())):
                raise
            raise FileExists(f"file with _id {self._file['_id']!r} already exists") from exc

    async def _append(self, data: Any) -> None:
        buf = self._buffer
        buf += data
        size = self.chunk_size
        if len(buf) >= size:
            view = memoryview(buf)
            full = len(buf) - len(buf) % size
            for off in range(0, full, size):
                self._add_chunk(view[off:off + size])
            view.release()
            del buf[:full]
            if self._pending_bytes >= _UPLOAD_BATCH_BYTES:
                await self._flush_pending()

    async def write(self, data: Any) -> None:
        """Write *data*: bytes, a str (needs the ``encoding`` the file was opened with), or a
        file-like object whose ``read(n)`` (sync or async) is drained (Motor: ``write``)."""
        if self._closed:
            raise ValueError("cannot write to a closed file")
        read = getattr(data, "read", None)
        if read is None:
            if isinstance(data, str):
                encoding = self._file.get("encoding")
                if encoding is None:
                    raise TypeError("must specify an encoding for file in order to write str")
                data = data.encode(encoding)
            elif not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError("can only write strings or file-like objects")
            await self._append(data)
            return
        size = self.chunk_size
        while True:
            try:
                piece = await _maybe_await(read(size))
            except BaseException:
                await self.abort()
                raise
            if not piece:
                break
            if isinstance(piece, str):
                encoding = self._file.get("encoding")
                if encoding is None:
                    await self.abort()
                    raise TypeError("must specify an encoding for file in order to write str")
                piece = piece.encode(encoding)
            await self._append(piece)

    async def writelines(self, sequence: Iterable[Any]) -> None:
        """Write each item of *sequence* (Motor: ``writelines``)."""
        for line in sequence:
            await self.write(line)

    async def close(self) -> None:
        """Write the buffered data and the files document; idempotent (Motor: ``close``)."""
        if self._closed:
            return
        if self._buffer:
            self._add_chunk(self._buffer)
            self._buffer = bytearray()
        with _within(self._deadline):
            await self._flush_pending()
            await self._ensure_indexes()
            self._file["length"] = Int64(self._position) if self._position > 2**31 - 1 else self._position
            self._file["uploadDate"] = _now()
            try:
                await self._bucket.files.insert_one(self._file, session=self._session)
            except DuplicateKeyError as exc:
                raise FileExists(f"file with _id {self._file['_id']!r} already exists") from exc
        self._closed = True

    async def abort(self) -> None:
        """Delete the chunks written so far and close without a files document
        (Motor: ``abort``)."""
        self._closed = True
        self._buffer = bytearray()
        self._pending = []
        self._pending_bytes = 0
        with _within(self._deadline):
            await self._bucket.chunks.delete_many({"files_id": self._file["_id"]}, session=self._session)

    async def __aenter__(self) -> "GridIn":
        return self

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        """Close the file if the block succeeded; on an exception only mark it closed
        (Motor: ``__aexit__``, as PyMongo's ``GridIn.__exit__``)."""
        if exc_type is None:
            await self.close()
        else:
            self._closed = True

    def __repr__(self) -> str:
        return f"GridIn(_id={self._file['_id']!r}, filename={self._file.get('filename')!r})"


# ---------------------------------------------------------------------------------------------
# download


class _ChunkReader:
    """Reads and validates a file's chunks in order from chunk *n* on, one find cursor at a
    time (spec: "Reading from GridFS")."""

    __slots__ = ("_out", "_cursor", "_next")

    def __init__(self, out: "GridOut", start: int) -> None:
        self._out = out
        self._cursor: Optional[Cursor[Any]] = None
        self._next = start

    def _expected_length(self, n: int) -> int:
        out: GridOut = self._out
        if n < out._num_chunks - 1:
            return out.chunk_size
        return out.length - out.chunk_size * (out._num_chunks - 1)

    async def next(self) -> bytes:
        out: GridOut = self._out
        n = self._next
        if n >= out._num_chunks:
            return b""
        if self._cursor is None:
            filt: Dict[str, Any] = {"files_id": out._id}
            if n:
                filt["n"] = {"$gte": n}
            self._cursor = out._bucket.chunks.find(filt, sort=[("n", ASCENDING)], session=out._session)
        try:
            chunk = await self._cursor.next()
        except StopAsyncIteration:
            await self.close()
            raise CorruptGridFile(f"no chunk #{n}") from None
        except BaseException:
            await self.close()
            raise
        if chunk["n"] != n:
            await self.close()
            raise CorruptGridFile(f"Missing chunk: expected chunk #{n} but found chunk with n={chunk['n']}")
        data = chunk["data"]
        expected = self._expected_length(n)
        if len(data) != expected:
            await self.close()
            raise CorruptGridFile(
                f"truncated chunk #{n}: expected chunk length to be {expected} but found chunk with length {len(data)}"
            )
        self._next = n + 1
        if self._next >= out._num_chunks:
            await self.close()
        return bytes(data)

    async def close(self) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            await cursor.close()

    def discard(self) -> None:
        """Forget the cursor without I/O (``seek``/``close`` are synchronous in Motor); a
        server cursor left open is killed when the object is collected."""
        self._cursor = None


class GridOut:
    """A file read from GridFS (Motor: ``AsyncIOMotorGridOut``).

    ``read``/``readchunk``/``readline`` are coroutines; ``seek``/``tell``/``close`` are
    synchronous, as in Motor. ``async for chunk in grid_out`` yields the file's chunks.
    A GridOut built with only ``file_id`` must be opened with ``await grid_out.open()``
    before its attributes are read (reads open it implicitly).
    """

    __slots__ = ("_bucket", "_session", "_file_id", "_file", "_position", "_buffer", "_buffer_pos",
                 "_reader", "_closed", "_num_chunks", "_deadline")

    def __init__(self, root_collection: Collection[Any], file_id: Any = None, file_document: Optional[Mapping[str, Any]] = None,
                 delegate: Any = None, session: Optional["ClientSession"] = None) -> None:
        if not isinstance(root_collection, Collection):
            raise TypeError(f"root_collection must be an instance of Collection, not {type(root_collection)}")
        _disallow_transactions(session)
        self._bucket = _Bucket(root_collection)
        self._session = session
        self._file_id = file_id
        self._file: Optional[Mapping[str, Any]] = None
        self._position = 0
        self._buffer = b""
        self._buffer_pos = 0
        self._reader: Optional[_ChunkReader] = None
        self._closed = False
        self._num_chunks = 0
        self._deadline = _lifetime(root_collection)
        if file_document is not None:
            self._set_file(file_document)

    def _set_file(self, doc: Mapping[str, Any]) -> None:
        self._file = doc
        self._file_id = doc["_id"]
        length = int(doc.get("length", 0))
        chunk_size = int(doc.get("chunkSize", DEFAULT_CHUNK_SIZE))
        self._num_chunks = math.ceil(length / chunk_size) if length else 0

    async def open(self) -> "GridOut":
        """Fetch the files document if not yet done; returns self (Motor: ``open``).
        Raises :class:`gridfs.errors.NoFile` when there is no such file."""
        if self._file is None:
            files = self._bucket.files
            with _within(self._deadline):
                doc = await files.find_one({"_id": self._file_id}, session=self._session)
            if doc is None:
                raise NoFile(f"no file in gridfs collection {files!r} with _id {self._file_id!r}")
            self._set_file(doc)
        return self

    def _require(self, name: str) -> Mapping[str, Any]:
        if self._file is None:
            raise InvalidOperation(f"You must call MotorGridOut.open() before accessing the {name} property")
        return self._file

    # -- attributes ---------------------------------------------------------------------------
    @property
    def _id(self) -> Any:
        return self._require("_id")["_id"]

    @property
    def filename(self) -> Optional[str]:
        """The file's name (Motor: ``filename``)."""
        return self._require("filename").get("filename")

    @property
    def name(self) -> Optional[str]:
        """Alias of :attr:`filename` (Motor: ``name``)."""
        return self._require("name").get("filename")

    @property
    def content_type(self) -> Optional[str]:
        """The file's ``contentType`` (deprecated in GridFS; Motor: ``AsyncIOMotorGridOut.content_type``)."""
        return self._require("content_type").get("contentType")

    @property
    def length(self) -> int:
        """The file's length in bytes (Motor: ``length``)."""
        return int(self._require("length").get("length", 0))

    @property
    def chunk_size(self) -> int:
        """Bytes per chunk (Motor: ``chunk_size``)."""
        return int(self._require("chunk_size").get("chunkSize", DEFAULT_CHUNK_SIZE))

    @property
    def upload_date(self) -> datetime.datetime:
        """When the file was stored (Motor: ``upload_date``)."""
        upload_date: datetime.datetime = self._require("upload_date")["uploadDate"]
        return upload_date

    @property
    def aliases(self) -> Optional[List[str]]:
        """The file's ``aliases`` (deprecated in GridFS; Motor: ``AsyncIOMotorGridOut.aliases``)."""
        return self._require("aliases").get("aliases")

    @property
    def metadata(self) -> Optional[Mapping[str, Any]]:
        """The ``metadata`` document, if any (Motor: ``metadata``)."""
        return self._require("metadata").get("metadata")

    def __getattr__(self, name: str) -> Any:
        """Other fields of the files document (Motor: ``__getattr__``)."""
        if name.startswith("__") or name in GridOut.__slots__:
            raise AttributeError(name)
        file = self._require(name)
        if name in file:
            return file[name]
        raise AttributeError(f"GridOut object has no attribute {name!r}")

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorGridOut.get_io_loop``)."""
        return self._bucket.root.get_io_loop()

    # -- reading ------------------------------------------------------------------------------
    def readable(self) -> bool:
        """True (Motor: ``AsyncIOMotorGridOut.readable``)."""
        return True

    def seekable(self) -> bool:
        """True (Motor: ``AsyncIOMotorGridOut.seekable``)."""
        return True

    def write(self, value: Any) -> Any:
        """Not supported on a download stream (Motor: ``write``)."""
        raise io.UnsupportedOperation("write")

    async def _next_chunk(self) -> bytes:
        """The rest of the current chunk from the current position (advancing it)."""
        if self._buffer_pos < len(self._buffer):
            data = self._buffer[self._buffer_pos:]
            self._buffer = b""
            self._buffer_pos = 0
            self._position += len(data)
            return data
        if self._position >= self.length:
            return b""
        chunk_size = self.chunk_size
        n, offset = divmod(self._position, chunk_size)
        if self._reader is None:
            self._reader = _ChunkReader(self, n)
        with _within(self._deadline):
            data = await self._reader.next()
        if offset:
            data = data[offset:]
        self._position += len(data)
        return data

    async def readchunk(self) -> bytes:
        """The rest of the current chunk (Motor: ``readchunk``)."""
        await self.open()
        return await self._next_chunk()

    async def read(self, size: int = -1) -> bytes:
        """Up to *size* bytes (all remaining when negative) (Motor: ``read``)."""
        await self.open()
        remaining = self.length - self._position
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        parts: List[bytes] = []
        got = 0
        while got < size:
            data = await self._next_chunk()
            if not data:
                break
            need = size - got
            if len(data) > need:
                # keep the unread tail for the next read
                self._buffer = data
                self._buffer_pos = need
                self._position -= len(data) - need
                data = data[:need]
            parts.append(data)
            got += len(data)
        if got < size:
            raise CorruptGridFile(f"truncated file: expected {size} more bytes, got {got}")
        return b"".join(parts)

    async def readline(self, size: int = -1) -> bytes:
        """Up to and including the next newline, at most *size* bytes (Motor: ``readline``)."""
        await self.open()
        remaining = self.length - self._position
        if size is None or size < 0 or size > remaining:
            size = remaining
        parts: List[bytes] = []
        got = 0
        while got < size:
            data = await self._next_chunk()
            if not data:
                break
            need = size - got
            nl = data.find(b"\n", 0, need)
            take = nl + 1 if nl >= 0 else min(len(data), need)
            if take < len(data):
                self._buffer = data
                self._buffer_pos = take
                self._position -= len(data) - take
                data = data[:take]
            parts.append(data)
            got += len(data)
            if nl >= 0:
                break
        return b"".join(parts)

    def tell(self) -> int:
        """The current position (Motor: ``tell``)."""
        return self._position

    def seek(self, pos: int, whence: int = _SEEK_SET) -> int:
        """Move to *pos* relative to *whence* (``os.SEEK_SET``/``SEEK_CUR``/``SEEK_END``);
        returns the new position (Motor: ``seek``, synchronous)."""
        if whence == _SEEK_SET:
            new = pos
        elif whence == _SEEK_CUR:
            new = self._position + pos
        elif whence == _SEEK_END:
            new = int(self._require("length").get("length", 0)) + pos
        else:
            raise OSError(22, "Invalid value for `whence`")
        if new < 0:
            raise OSError(22, "Invalid value for `pos` - must be positive")
        if new == self._position:
            return new
        self._position = new
        self._buffer = b""
        self._buffer_pos = 0
        if self._reader is not None:
            self._reader.discard()
            self._reader = None
        return new

    def close(self) -> None:
        """Mark closed and drop the chunk cursor (Motor: ``close``, synchronous)."""
        self._closed = True
        self._buffer = b""
        if self._reader is not None:
            self._reader.discard()
            self._reader = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (Motor: ``AsyncIOMotorGridOut.closed``)."""
        return self._closed

    def __aiter__(self) -> "GridOut":
        return self

    async def __anext__(self) -> bytes:
        """The next chunk (Motor: ``__anext__``)."""
        chunk = await self.readchunk()
        if chunk:
            return chunk
        raise StopAsyncIteration

    async def stream_to_handler(self, request_handler: Any) -> None:
        """Write the file to a Tornado ``RequestHandler``, flushing after each chunk
        (Motor: ``stream_to_handler``)."""
        await self.open()
        while True:
            chunk = await self.readchunk()
            if not chunk:
                break
            await _maybe_await(request_handler.write(chunk))
            await _maybe_await(request_handler.flush())

    def __repr__(self) -> str:
        return f"GridOut(_id={self._file_id!r})"


class GridOutCursor(Cursor[Any]):
    """A find cursor over a bucket's files collection that yields :class:`GridOut` objects
    (Motor: ``AsyncIOMotorGridOutCursor``). Motor yields PyMongo's *synchronous* GridOut here;
    amongo yields its own (same attributes; ``read`` etc. are coroutines)."""

    #: the class of the files it yields (the PyMongo-style layer sets its own)
    _grid_out_class: "ClassVar[Type[GridOut]]" = _facade_class("amongo.gridfs:GridOut")

    def __class_getitem__(cls, key: Any) -> Any:
        # Not generic (it yields GridOut objects); subscripting is a no-op as in Motor.
        return cls

    def __init__(self, root_collection: Collection[Any], filter: Optional[Mapping[str, Any]] = None, skip: int = 0,
                 limit: int = 0, no_cursor_timeout: bool = False, sort: Any = None, batch_size: int = 0,
                 session: Optional["ClientSession"] = None, **kwargs: Any) -> None:
        _disallow_transactions(session)
        self._root = root_collection
        super().__init__(root_collection["files"], filter, skip=skip, limit=limit, no_cursor_timeout=no_cursor_timeout,
                         sort=sort, batch_size=batch_size, session=session, **kwargs)

    def _take_cursor(self, reply: Mapping[str, Any], address: Any, first: bool) -> None:
        key = "firstBatch" if first else "nextBatch"
        cursor = dict(cursor_document(reply, first))
        cursor[key] = [self._grid_out_class(self._root, file_document=doc, session=self._explicit_session) for doc in cursor[key]]
        super()._take_cursor({"cursor": cursor}, address, first)

    def clone(self) -> "GridOutCursor":
        """A fresh, unstarted copy (Motor: ``clone``)."""
        c = type(self)(self._root, self._filter, session=self._explicit_session)
        for attr in ("_projection", "_skip", "_limit_arg", "_flags", "_sort", "_batch_size", "_collation",
                     "_hint", "_max_time_ms", "_max", "_min", "_return_key", "_show_record_id", "_comment",
                     "_allow_disk_use", "_let", "_where", "_max_await_time_ms"):
            setattr(c, attr, getattr(self, attr))
        return c

    def add_option(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported on a GridOutCursor (Motor: ``add_option``)."""
        raise NotImplementedError("Method does not exist for GridOutCursor")

    def remove_option(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported on a GridOutCursor (Motor: ``remove_option``)."""
        raise NotImplementedError("Method does not exist for GridOutCursor")


# ---------------------------------------------------------------------------------------------
# bucket


class GridFSBucket:
    """A GridFS bucket (Motor: ``AsyncIOMotorGridFSBucket``): ``<bucket_name>.files`` and
    ``<bucket_name>.chunks`` in *database*."""

    __slots__ = ("_database", "_bucket_name", "_collection", "_chunk_size_bytes", "_bucket")
    #: the classes this bucket builds (the PyMongo-style layer sets its own)
    _grid_in_class: "ClassVar[Type[GridIn]]" = _facade_class("amongo.gridfs:GridIn")
    _grid_out_class: "ClassVar[Type[GridOut]]" = _facade_class("amongo.gridfs:GridOut")
    _grid_out_cursor_class: "ClassVar[Type[GridOutCursor]]" = _facade_class("amongo.gridfs:GridOutCursor")

    def __init__(self, database: Database[Any], bucket_name: str = "fs", chunk_size_bytes: int = DEFAULT_CHUNK_SIZE,
                 write_concern: Optional[WriteConcern] = None, read_preference: Any = None, collection: Optional[str] = None) -> None:
        if not isinstance(database, Database):
            raise TypeError(f"First argument to {type(self).__name__} must be Database, not {database!r}")
        if collection is not None:
            warnings.warn('the "collection" parameter is deprecated, use "bucket_name" instead', DeprecationWarning, stacklevel=2)
            bucket_name = collection
        if not isinstance(bucket_name, str):
            raise TypeError("bucket_name must be an instance of str")
        wc = write_concern if write_concern is not None else database.write_concern
        if not wc.acknowledged:
            raise ConfigurationError("write concern must be acknowledged")
        if not isinstance(chunk_size_bytes, int) or isinstance(chunk_size_bytes, bool) or chunk_size_bytes <= 0:
            raise ValueError("chunk_size_bytes must be a positive integer")
        self._database = database
        self._bucket_name = bucket_name
        self._collection = database.get_collection(bucket_name, write_concern=write_concern, read_preference=read_preference)
        self._chunk_size_bytes = chunk_size_bytes
        self._bucket = _Bucket(self._collection)

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorGridFSBucket.get_io_loop``)."""
        return self._database.get_io_loop()

    def wrap(self, obj: Any) -> Any:
        """Motor wraps PyMongo objects in Motor classes; amongo's already are, so *obj* is
        returned unchanged (Motor: ``wrap``)."""
        return obj

    def __repr__(self) -> str:
        return f"GridFSBucket({self._database!r}, {self._bucket_name!r})"

    # -- upload -------------------------------------------------------------------------------
    def _grid_in(self, file_id: Any, filename: str, chunk_size_bytes: Optional[int], metadata: Optional[Mapping[str, Any]],
                 session: Optional["ClientSession"]) -> GridIn:
        if not isinstance(filename, str):
            raise TypeError("filename must be an instance of str")
        opts: Dict[str, Any] = {
            "_id": file_id,
            "filename": filename,
            "chunk_size": chunk_size_bytes if chunk_size_bytes is not None else self._chunk_size_bytes,
        }
        if metadata is not None:
            opts["metadata"] = metadata
        return self._grid_in_class(self._collection, session=session, **opts)

    def open_upload_stream(self, filename: str, chunk_size_bytes: Optional[int] = None, metadata: Optional[Mapping[str, Any]] = None,
                           session: Optional["ClientSession"] = None) -> GridIn:
        """A :class:`GridIn` for a new file with a fresh ObjectId, returned without awaiting
        (Motor: ``open_upload_stream``)."""
        return self._grid_in(ObjectId(), filename, chunk_size_bytes, metadata, session)

    def open_upload_stream_with_id(self, file_id: Any, filename: str, chunk_size_bytes: Optional[int] = None,
                                   metadata: Optional[Mapping[str, Any]] = None, session: Optional["ClientSession"] = None) -> GridIn:
        """A :class:`GridIn` for a new file with *file_id* (Motor: ``open_upload_stream_with_id``)."""
        return self._grid_in(file_id, filename, chunk_size_bytes, metadata, session)

    @_whole_operation
    async def upload_from_stream(self, filename: str, source: Any, chunk_size_bytes: Optional[int] = None,
                                 metadata: Optional[Mapping[str, Any]] = None, session: Optional["ClientSession"] = None) -> ObjectId:
        """Store *source* (bytes, str is refused without an encoding, or a file-like object
        with a sync or async ``read``) and return the new file's ObjectId
        (Motor: ``upload_from_stream``)."""
        gin = self.open_upload_stream(filename, chunk_size_bytes, metadata, session=session)
        await self._upload(gin, source)
        file_id: ObjectId = gin._id
        return file_id

    @_whole_operation
    async def upload_from_stream_with_id(self, file_id: Any, filename: str, source: Any, chunk_size_bytes: Optional[int] = None,
                                         metadata: Optional[Mapping[str, Any]] = None, session: Optional["ClientSession"] = None) -> None:
        """Store *source* under *file_id* (Motor: ``upload_from_stream_with_id``)."""
        gin = self.open_upload_stream_with_id(file_id, filename, chunk_size_bytes, metadata, session=session)
        await self._upload(gin, source)

    @staticmethod
    async def _upload(gin: GridIn, source: Any) -> None:
        try:
            await gin.write(source)
        except BaseException:
            if not gin.closed:
                await gin.abort()
            raise
        await gin.close()

    # -- download -----------------------------------------------------------------------------
    @_whole_operation
    async def open_download_stream(self, file_id: Any, session: Optional["ClientSession"] = None) -> GridOut:
        """An opened :class:`GridOut` for *file_id*; :class:`gridfs.errors.NoFile` if there is
        none (Motor: ``open_download_stream``)."""
        gout = self._grid_out_class(self._collection, file_id, session=session)
        await gout.open()
        return gout

    @_whole_operation
    async def download_to_stream(self, file_id: Any, destination: Any, session: Optional["ClientSession"] = None) -> None:
        """Write the file's contents to *destination* (``write`` may be sync or async)
        (Motor: ``download_to_stream``)."""
        gout = await self.open_download_stream(file_id, session=session)
        await self._download(gout, destination)

    @staticmethod
    async def _download(gout: GridOut, destination: Any) -> None:
        while True:
            chunk = await gout.readchunk()
            if not chunk:
                break
            await _maybe_await(destination.write(chunk))

    @_whole_operation
    async def open_download_stream_by_name(self, filename: str, revision: int = -1,
                                           session: Optional["ClientSession"] = None) -> GridOut:
        """An opened :class:`GridOut` for a revision of *filename*: 0 the first stored, 1 the
        second, ..., -1 the newest, -2 the one before (Motor: ``open_download_stream_by_name``)."""
        if not isinstance(filename, str):
            raise TypeError("filename must be an instance of str")
        if not isinstance(revision, int):
            raise TypeError("revision must be an integer")
        _disallow_transactions(session)
        if revision >= 0:
            skip, order = revision, ASCENDING
        else:
            skip, order = -revision - 1, DESCENDING
        cursor = self._bucket.files.find({"filename": filename}, sort=[("uploadDate", order)], skip=skip, limit=-1, session=session)
        async for doc in cursor:
            return self._grid_out_class(self._collection, file_document=doc, session=session)
        raise NoFile(f"no version {revision} for filename {filename!r}")

    @_whole_operation
    async def download_to_stream_by_name(self, filename: str, destination: Any, revision: int = -1,
                                         session: Optional["ClientSession"] = None) -> None:
        """Write a revision of *filename* to *destination* (Motor: ``download_to_stream_by_name``)."""
        gout = await self.open_download_stream_by_name(filename, revision, session=session)
        await self._download(gout, destination)

    # -- management ---------------------------------------------------------------------------
    @_whole_operation
    async def delete(self, file_id: Any, session: Optional["ClientSession"] = None) -> None:
        """Delete the files document and its chunks; :class:`gridfs.errors.NoFile` if there
        was no files document (orphan chunks are still deleted) (Motor: ``delete``)."""
        _disallow_transactions(session)
        res = await self._bucket.files.delete_one({"_id": file_id}, session=session)
        await self._bucket.chunks.delete_many({"files_id": file_id}, session=session)
        if not res.deleted_count:
            raise NoFile(f"File id {file_id!r} not found")

    def find(self, *args: Any, **kwargs: Any) -> GridOutCursor:
        """A cursor of :class:`GridOut` over matching files documents, returned without
        awaiting: ``find(filter=None, skip=0, limit=0, no_cursor_timeout=False, sort=None,
        batch_size=0, session=None)`` (Motor: ``find``)."""
        return self._grid_out_cursor_class(self._collection, *args, **kwargs)

    @_whole_operation
    async def rename(self, file_id: Any, new_filename: str, session: Optional["ClientSession"] = None) -> None:
        """Rename a file; :class:`gridfs.errors.NoFile` if there is none (Motor: ``rename``)."""
        _disallow_transactions(session)
        res = await self._bucket.files.update_one({"_id": file_id}, {"$set": {"filename": new_filename}}, session=session)
        if not res.matched_count:
            raise NoFile(f"no files could be renamed {new_filename!r} because none matched file_id {file_id!r}")

    @_whole_operation
    async def drop(self, session: Optional["ClientSession"] = None) -> None:
        """Drop the files and chunks collections (Motor: ``drop``)."""
        _disallow_transactions(session)
        await self._bucket.files.drop(session=session)
        await self._bucket.chunks.drop(session=session)
