"""GridFS with PyMongo's async API (PyMongo: ``gridfs.asynchronous``): ``AsyncGridFSBucket``,
``AsyncGridIn``, ``AsyncGridOut``, ``AsyncGridOutCursor`` and the legacy ``AsyncGridFS``.

The bucket, the streams and the cursor are the classes behind amongo's Motor GridFS API with
PyMongo's differences: ``AsyncGridOut.close()`` / ``seek()`` are coroutines,
``AsyncGridOut`` is an async context manager and has ``to_list()`` / ``readlines()``, the
cursor yields :class:`AsyncGridOut`, and the bucket has ``delete_by_name`` /
``rename_by_name``.
"""
from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, List, Mapping, NoReturn, Optional, Type

from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING

from amongo.asynchronous.command_cursor import _PyMongoToList
from amongo.gridfs import DEFAULT_CHUNK_SIZE, GridFSBucket, GridIn, GridOut, GridOutCursor, _disallow_transactions, _whole_operation

__all__ = ["AsyncGridFS", "AsyncGridFSBucket", "AsyncGridIn", "AsyncGridOut", "AsyncGridOutCursor",
           "DEFAULT_CHUNK_SIZE", "NoFile"]


class AsyncGridIn(GridIn):
    """A file being written to GridFS (PyMongo: ``AsyncGridIn``)."""

    __slots__ = ()

    @property
    def md5(self) -> Any:
        """The MD5 of the file: None (PyMongo 4 stores none either; PyMongo: ``md5``)."""
        return self._file.get("md5")


class AsyncGridOut(GridOut):
    """A file read from GridFS (PyMongo: ``AsyncGridOut``): ``read``, ``readline``,
    ``readchunk``, ``seek`` and ``close`` are coroutines; ``async for chunk in f``."""

    __slots__ = ()

    @property
    def md5(self) -> Any:
        """The stored MD5, if any (PyMongo: ``md5``)."""
        return self._require("md5").get("md5")

    async def seek(self, pos: int, whence: int = 0) -> int:  # type: ignore[override]
        """Move to *pos* relative to *whence*; returns the new position (PyMongo:
        ``AsyncGridOut.seek``, a coroutine)."""
        return GridOut.seek(self, pos, whence)

    async def close(self) -> None:  # type: ignore[override]
        """Close the stream (PyMongo: ``AsyncGridOut.close``, a coroutine)."""
        GridOut.close(self)

    async def __aenter__(self) -> "AsyncGridOut":
        """``async with`` (PyMongo: ``AsyncGridOut.__aenter__``)."""
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc_val: Optional[BaseException],
                        exc_tb: Optional[TracebackType]) -> bool:
        """Close on exit (PyMongo: ``AsyncGridOut.__aexit__``)."""
        GridOut.close(self)
        return False

    async def readlines(self, size: int = -1) -> List[bytes]:
        """The remaining lines (PyMongo: ``readlines``)."""
        lines: List[bytes] = []
        remaining = size
        while remaining != 0:
            line = await self.readline(remaining)
            if not line:
                break
            lines.append(line)
            if remaining > 0:
                remaining = max(0, remaining - len(line))
        return lines

    async def to_list(self) -> List[bytes]:
        """The remaining chunks (PyMongo: ``AsyncGridOut.to_list``)."""
        return [chunk async for chunk in self]

    def fileno(self) -> NoReturn:
        """Not a real file (PyMongo: ``fileno`` raises io.UnsupportedOperation)."""
        import io

        raise io.UnsupportedOperation("AsyncGridOut does not support fileno()")

    def flush(self) -> None:
        """Nothing to flush (PyMongo: ``flush``)."""

    def isatty(self) -> bool:
        """False (PyMongo: ``isatty``)."""
        return False

    def truncate(self, size: Optional[int] = None) -> NoReturn:
        """Read-only (PyMongo: ``truncate`` raises io.UnsupportedOperation)."""
        import io

        raise io.UnsupportedOperation("AsyncGridOut does not support truncate()")

    def writable(self) -> bool:
        """False (PyMongo: ``writable``)."""
        return False

    def writelines(self, lines: Any) -> NoReturn:
        """Read-only (PyMongo: ``writelines`` raises io.UnsupportedOperation)."""
        import io

        raise io.UnsupportedOperation("AsyncGridOut does not support writelines()")


class AsyncGridOutCursor(_PyMongoToList[Any], GridOutCursor):
    """A cursor over a bucket's files yielding :class:`AsyncGridOut` (PyMongo:
    ``AsyncGridOutCursor``); ``to_list(0)`` raises ValueError, as in PyMongo."""

    _grid_out_class = AsyncGridOut

    async def rewind(self) -> "AsyncGridOutCursor":  # type: ignore[override]
        """Reset to the unstarted state (PyMongo: ``rewind``, a coroutine)."""
        GridOutCursor.rewind(self)
        return self

    def __getitem__(self, index: Any) -> NoReturn:
        """Indexing is not supported on an async cursor (PyMongo: raises IndexError)."""
        raise IndexError("AsyncCursor does not support indexing")

    @property
    def collection(self) -> Any:
        """The files collection iterated (PyMongo: ``collection``)."""
        return self._collection

    @property
    def retrieved(self) -> int:
        """The number of files documents retrieved so far (PyMongo: ``retrieved``)."""
        return self._returned + len(self._data)


class AsyncGridFSBucket(GridFSBucket):
    """A GridFS bucket (PyMongo: ``AsyncGridFSBucket``)."""

    __slots__ = ()
    _grid_in_class = AsyncGridIn
    _grid_out_class = AsyncGridOut
    _grid_out_cursor_class = AsyncGridOutCursor

    if TYPE_CHECKING:

        def open_upload_stream(self, filename: str, chunk_size_bytes: Optional[int] = None,
                               metadata: Optional[Mapping[str, Any]] = None, session: Any = None) -> AsyncGridIn: ...

        def open_upload_stream_with_id(self, file_id: Any, filename: str, chunk_size_bytes: Optional[int] = None,
                                       metadata: Optional[Mapping[str, Any]] = None, session: Any = None) -> AsyncGridIn: ...

        async def open_download_stream(self, file_id: Any, session: Any = None) -> AsyncGridOut: ...

        async def open_download_stream_by_name(self, filename: str, revision: int = -1,
                                               session: Any = None) -> AsyncGridOut: ...

        def find(self, *args: Any, **kwargs: Any) -> AsyncGridOutCursor: ...

    @_whole_operation
    async def delete_by_name(self, filename: str, session: Any = None) -> None:
        """Delete every revision of *filename* and their chunks; :class:`~gridfs.errors.NoFile`
        if there is none (PyMongo: ``delete_by_name``)."""
        _disallow_transactions(session)
        files = self._bucket.files
        ids = [doc["_id"] async for doc in files.find({"filename": filename}, {"_id": 1}, session=session)]
        if not ids:
            raise NoFile(f"File {filename!r} not found")
        await files.delete_many({"_id": {"$in": ids}}, session=session)
        await self._bucket.chunks.delete_many({"files_id": {"$in": ids}}, session=session)

    @_whole_operation
    async def rename_by_name(self, filename: str, new_filename: str, session: Any = None) -> None:
        """Rename every revision of *filename*; :class:`~gridfs.errors.NoFile` if there is
        none (PyMongo: ``rename_by_name``)."""
        _disallow_transactions(session)
        res = await self._bucket.files.update_many({"filename": filename}, {"$set": {"filename": new_filename}}, session=session)
        if not res.matched_count:
            raise NoFile(f"no files could be renamed {new_filename!r} because none matched filename {filename!r}")


class AsyncGridFS:
    """PyMongo's legacy GridFS API (``gridfs.AsyncGridFS``) over the same bucket
    implementation: ``put`` / ``get`` / ``get_version`` / ``get_last_version`` / ``delete`` /
    ``list`` / ``find`` / ``find_one`` / ``exists`` / ``new_file``."""

    def __init__(self, database: Any, collection: str = "fs") -> None:
        self._bucket_api = AsyncGridFSBucket(database, collection)
        # (the bucket's root collection, as GridFSBucket makes it: default options)
        self._collection = database.get_collection(collection)
        self._files = self._collection["files"]

    def new_file(self, **kwargs: Any) -> AsyncGridIn:
        """A new :class:`AsyncGridIn` (PyMongo: ``AsyncGridFS.new_file``)."""
        return AsyncGridIn(self._collection, **kwargs)

    async def put(self, data: Any, **kwargs: Any) -> Any:
        """Store *data* (bytes, str with ``encoding=``, or a file-like object) as a new file and
        return its ``_id`` (PyMongo: ``AsyncGridFS.put``)."""
        async with AsyncGridIn(self._collection, **kwargs) as grid_file:
            await grid_file.write(data)
        return grid_file._id

    async def get(self, file_id: Any, session: Any = None) -> AsyncGridOut:
        """The file with *file_id* (PyMongo: ``AsyncGridFS.get``); NoFile if none."""
        out = AsyncGridOut(self._collection, file_id, session=session)
        await out.open()
        return out

    async def get_version(self, filename: Optional[str] = None, version: Optional[int] = -1,
                          session: Any = None, **kwargs: Any) -> AsyncGridOut:
        """A revision of *filename* (0 the first, -1 the newest) among files matching
        *kwargs* (PyMongo: ``AsyncGridFS.get_version``)."""
        query = dict(kwargs)
        if filename is not None:
            query["filename"] = filename
        cursor = self._files.find(query, session=session)
        if version is None:
            version = -1
        if version < 0:
            cursor.limit(-1).skip(-version - 1).sort("uploadDate", DESCENDING)
        else:
            cursor.limit(-1).skip(version).sort("uploadDate", ASCENDING)
        async for doc in cursor:
            return AsyncGridOut(self._collection, file_document=doc, session=session)
        raise NoFile(f"no version {version} for filename {filename!r}")

    async def get_last_version(self, filename: Optional[str] = None, session: Any = None, **kwargs: Any) -> AsyncGridOut:
        """The newest revision of *filename* (PyMongo: ``AsyncGridFS.get_last_version``)."""
        return await self.get_version(filename=filename, session=session, **kwargs)

    async def delete(self, file_id: Any, session: Any = None) -> None:
        """Delete a file and its chunks; no error when there is none (PyMongo:
        ``AsyncGridFS.delete``)."""
        try:
            await self._bucket_api.delete(file_id, session=session)
        except NoFile:
            pass

    async def list(self, session: Any = None) -> List[str]:
        """The names of the stored files (PyMongo: ``AsyncGridFS.list``)."""
        names = await self._files.distinct("filename", session=session)
        return [name for name in names if name is not None]

    async def find_one(self, filter: Any = None, session: Any = None, *args: Any, **kwargs: Any) -> Optional[AsyncGridOut]:
        """The first matching file, or None (PyMongo: ``AsyncGridFS.find_one``)."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        async for out in self.find(filter, *args, session=session, limit=-1, **kwargs):
            return out  # type: ignore[no-any-return]
        return None

    def find(self, *args: Any, **kwargs: Any) -> AsyncGridOutCursor:
        """A cursor of :class:`AsyncGridOut` (PyMongo: ``AsyncGridFS.find``)."""
        return AsyncGridOutCursor(self._collection, *args, **kwargs)

    async def exists(self, document_or_id: Any = None, session: Any = None, **kwargs: Any) -> bool:
        """Whether a matching file exists (PyMongo: ``AsyncGridFS.exists``)."""
        query = kwargs if document_or_id is None else (
            document_or_id if isinstance(document_or_id, Mapping) else {"_id": document_or_id})
        return await self._files.find_one(query, {"_id": 1}, session=session) is not None
