"""GridFS (Motor's AsyncIOMotorGridFSBucket / GridIn / GridOut / GridOutCursor) against real
servers (SecantusDB replica set and nx-27017)."""
from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import io
import os

import pytest
from bson import ObjectId
from bson.son import SON
from gridfs.errors import CorruptGridFile, FileExists, NoFile
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import ConfigurationError, InvalidOperation, OperationFailure
from pymongo.write_concern import WriteConcern

from amongo import motor_tornado
from amongo.motor_asyncio import (
    AsyncIOMotorGridFSBucket,
    AsyncIOMotorGridIn,
    AsyncIOMotorGridOut,
    AsyncIOMotorGridOutCursor,
)

from ._crud_helpers import make_client, nx_quirk, unique

DB = "amongo_gridfs"
CHUNK = 255 * 1024


async def _bucket(client, **kwargs):
    name = kwargs.pop("bucket_name", None) or unique("b")
    bucket = AsyncIOMotorGridFSBucket(client[DB], bucket_name=name, **kwargs)
    await bucket.drop()
    return bucket, client[DB][name]


#: nx-27017 serves ``<bucket>.files``/``<bucket>.chunks`` from its own GridFS tables rather than
#: as collections: uploadDate comes back as an ISO string, unknown files fields are dropped (md5
#: and metadata are added), skip/nested sorts are ignored, chunk documents cannot be queried or
#: edited directly, non-ObjectId file ids lose their chunks, and duplicates fail without code 11000.
NX_GRIDFS = "nx-27017 emulates GridFS collections with its own tables (see NX_GRIDFS)"


def _skip_on_nx(server, what: str) -> None:
    if nx_quirk(server, what):
        pytest.skip(f"{NX_GRIDFS}: {what}")


def _data(n: int) -> bytes:
    return os.urandom(n)


def with_client(fn):
    """Run an async test with a client made (and closed) on the test's own loop; the test
    takes ``(server, client, ...)``, pytest sees ``(server, ...)``."""

    @functools.wraps(fn)
    async def wrapper(server, **kwargs):
        c, _ = make_client(server)
        try:
            await fn(server, c, **kwargs)
        finally:
            c.close()

    sig = inspect.signature(fn)
    wrapper.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "client"])
    return wrapper


# --------------------------------------------------------------------------------------------
# API shape


def test_motor_names_and_kinds():
    assert motor_tornado.MotorGridFSBucket is AsyncIOMotorGridFSBucket
    assert motor_tornado.MotorGridIn is AsyncIOMotorGridIn
    assert motor_tornado.MotorGridOut is AsyncIOMotorGridOut
    assert motor_tornado.MotorGridOutCursor is AsyncIOMotorGridOutCursor
    for cls, coros, syncs in (
        (AsyncIOMotorGridFSBucket,
         ["delete", "download_to_stream", "download_to_stream_by_name", "open_download_stream",
          "open_download_stream_by_name", "rename", "upload_from_stream", "upload_from_stream_with_id", "drop"],
         ["find", "open_upload_stream", "open_upload_stream_with_id", "get_io_loop", "wrap"]),
        (AsyncIOMotorGridIn, ["abort", "close", "set", "write", "writelines", "__aenter__", "__aexit__"],
         ["read", "readable", "seekable", "writeable", "get_io_loop"]),
        (AsyncIOMotorGridOut, ["open", "read", "readchunk", "readline", "stream_to_handler", "__anext__"],
         ["close", "seek", "tell", "readable", "seekable", "write", "__aiter__", "get_io_loop"]),
        (AsyncIOMotorGridOutCursor, ["next", "close", "to_list", "distinct", "explain", "__anext__"],
         ["limit", "skip", "sort", "batch_size", "clone", "rewind", "next_object", "each"]),
    ):
        for name in coros:
            assert inspect.iscoroutinefunction(getattr(cls, name)), (cls, name)
        for name in syncs:
            assert not inspect.iscoroutinefunction(getattr(cls, name)), (cls, name)
    for prop in ("chunk_size", "closed", "content_type", "filename", "length", "name", "upload_date"):
        assert isinstance(inspect.getattr_static(AsyncIOMotorGridIn, prop), property), prop
    for prop in ("aliases", "chunk_size", "content_type", "filename", "length", "metadata", "name", "upload_date"):
        assert isinstance(inspect.getattr_static(AsyncIOMotorGridOut, prop), property), prop


@with_client
async def test_bucket_constructor_validation(server, client):
    with pytest.raises(TypeError):
        AsyncIOMotorGridFSBucket(client[DB]["coll"])
    with pytest.raises(ConfigurationError):
        AsyncIOMotorGridFSBucket(client[DB], write_concern=WriteConcern(w=0))
    with pytest.warns(DeprecationWarning):
        b = AsyncIOMotorGridFSBucket(client[DB], collection="legacy")
    assert b._collection.name == "legacy"
    assert b.get_io_loop() is asyncio.get_running_loop()
    assert b.wrap(5) == 5


# --------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 17])
@with_client
async def test_round_trip_sizes(server, client, size):
    bucket, root = await _bucket(client)
    data = _data(size)
    fid = await bucket.upload_from_stream("f", data)
    assert isinstance(fid, ObjectId)
    gout = await bucket.open_download_stream(fid)
    assert isinstance(gout, AsyncIOMotorGridOut)
    assert gout._id == fid and gout.filename == "f" and gout.name == "f"
    assert gout.length == size and gout.chunk_size == CHUNK
    if not nx_quirk(server, "uploadDate is returned as a string"):
        assert isinstance(gout.upload_date, datetime.datetime)
    assert await gout.read() == data
    assert await gout.read() == b""
    if not nx_quirk(server, "chunks are not a queryable collection; files documents gain md5/metadata"):
        n_chunks = await root.chunks.count_documents({"files_id": fid})
        assert n_chunks == -(-size // CHUNK)
        doc = await root.files.find_one({"_id": fid})
        assert set(doc) == {"_id", "length", "chunkSize", "uploadDate", "filename"}
        assert doc["length"] == size and doc["chunkSize"] == CHUNK
    # download_to_stream into a BytesIO
    sink = io.BytesIO()
    await bucket.download_to_stream(fid, sink)
    assert sink.getvalue() == data
    # chunks via async iteration
    gout2 = await bucket.open_download_stream(fid)
    chunks = [c async for c in gout2]
    assert b"".join(chunks) == data
    assert all(len(c) == CHUNK for c in chunks[:-1])


@with_client
async def test_upload_from_file_like_sync_and_async(server, client):
    bucket, _ = await _bucket(client, chunk_size_bytes=1000)
    data = _data(4321)
    fid = await bucket.upload_from_stream("sync", io.BytesIO(data))
    assert await (await bucket.open_download_stream(fid)).read() == data

    class AsyncReader:
        def __init__(self, b: bytes) -> None:
            self._b = io.BytesIO(b)

        async def read(self, n: int = -1) -> bytes:
            await asyncio.sleep(0)
            return self._b.read(min(n, 333))  # short reads are not EOF

    fid2 = await bucket.upload_from_stream("async", AsyncReader(data))
    assert await (await bucket.open_download_stream(fid2)).read() == data

    class AsyncSink:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        async def write(self, b: bytes) -> None:
            self.parts.append(b)

    sink = AsyncSink()
    await bucket.download_to_stream(fid2, sink)
    assert b"".join(sink.parts) == data
    with pytest.raises(TypeError):
        await bucket.upload_from_stream("str", "text without encoding")


@with_client
async def test_upload_with_id_and_file_exists(server, client):
    _skip_on_nx(server, "non-ObjectId ids lose their chunks; duplicate ids fail without code 11000")
    bucket, root = await _bucket(client)
    await bucket.upload_from_stream_with_id("my-id", "named", b"hello")
    gout = await bucket.open_download_stream("my-id")
    assert await gout.read() == b"hello"
    with pytest.raises(FileExists):
        await bucket.upload_from_stream_with_id("my-id", "again", b"x" * 10)
    with pytest.raises(FileExists):
        await bucket.upload_from_stream_with_id("my-id", "again", b"")
    assert await root.files.count_documents({}) == 1


@with_client
async def test_indexes_created_on_first_write(server, client):
    _skip_on_nx(server, "index keys on GridFS tables are ignored")
    bucket, root = await _bucket(client)
    await bucket.upload_from_stream("f", b"abc")
    files_ix = {tuple(v["key"]) : v for v in (await root.files.index_information()).values()}
    chunks_ix = {tuple(v["key"]): v for v in (await root.chunks.index_information()).values()}
    assert (("filename", 1), ("uploadDate", 1)) in files_ix
    assert chunks_ix[(("files_id", 1), ("n", 1))].get("unique") is True
    # an empty file also creates them
    bucket2, root2 = await _bucket(client)
    await bucket2.upload_from_stream("empty", b"")
    assert len(await root2.chunks.index_information()) == 2


@with_client
async def test_existing_index_with_float_keys_is_reused(server, client):
    _skip_on_nx(server, "index keys on GridFS tables are ignored")
    bucket, root = await _bucket(client)
    db = client[DB]
    await db.command({"createIndexes": root.files.name, "indexes": [
        {"key": SON([("filename", 1.0), ("uploadDate", 1.0)]), "name": "custom_files"}]})
    await db.command({"createIndexes": root.chunks.name, "indexes": [
        {"key": SON([("files_id", 1.0), ("n", 1.0)]), "name": "custom_chunks", "unique": True}]})
    await bucket.upload_from_stream("f", b"abc")
    assert set(await root.files.index_information()) == {"_id_", "custom_files"}
    assert set(await root.chunks.index_information()) == {"_id_", "custom_chunks"}


@with_client
async def test_custom_chunk_size_bucket_name_and_metadata(server, client):
    name = unique("custom")
    bucket, root = await _bucket(client, bucket_name=name, chunk_size_bytes=4)
    assert root.name == name
    fid = await bucket.upload_from_stream("m", b"0123456789", metadata={"owner": "ann", "n": 3})
    if not nx_quirk(server, "chunks are not a queryable collection"):
        assert await root.chunks.count_documents({"files_id": fid}) == 3
    gout = await bucket.open_download_stream(fid)
    assert gout.chunk_size == 4 and gout.metadata == {"owner": "ann", "n": 3}
    assert await gout.read() == b"0123456789"
    # per-upload chunk size overrides the bucket's
    fid2 = await bucket.upload_from_stream("m2", b"0123456789", chunk_size_bytes=5)
    if not nx_quirk(server, "chunks are not a queryable collection; metadata defaults to {}"):
        assert await root.chunks.count_documents({"files_id": fid2}) == 2
        assert (await bucket.open_download_stream(fid2)).metadata is None
        assert await client[DB][f"{name}.files"].count_documents({}) == 2


# --------------------------------------------------------------------------------------------
# by name / revisions


@with_client
async def test_download_by_name_revisions(server, client):
    _skip_on_nx(server, "skip is ignored on the files table, so revisions other than 0/-1 are wrong")
    bucket, _ = await _bucket(client)
    for i in range(3):
        await bucket.upload_from_stream("rev", b"v%d" % i)
        await asyncio.sleep(0.005)  # distinct uploadDate (ms precision)
    await bucket.upload_from_stream("other", b"zzz")
    expected = {-1: b"v2", 0: b"v0", 1: b"v1", 2: b"v2", -2: b"v1", -3: b"v0"}
    for rev, want in expected.items():
        gout = await bucket.open_download_stream_by_name("rev", revision=rev)
        assert await gout.read() == want, rev
    gout = await bucket.open_download_stream_by_name("rev")
    assert await gout.read() == b"v2"
    sink = io.BytesIO()
    await bucket.download_to_stream_by_name("rev", sink, revision=0)
    assert sink.getvalue() == b"v0"
    for rev in (3, -4):
        with pytest.raises(NoFile):
            await bucket.open_download_stream_by_name("rev", revision=rev)
    with pytest.raises(NoFile):
        await bucket.open_download_stream_by_name("missing")
    with pytest.raises(NoFile):
        await bucket.download_to_stream_by_name("missing", io.BytesIO())


# --------------------------------------------------------------------------------------------
# delete / rename / drop


@with_client
async def test_delete(server, client):
    _skip_on_nx(server, "files/chunks cannot be counted or inserted into directly")
    bucket, root = await _bucket(client, chunk_size_bytes=10)
    fid = await bucket.upload_from_stream("d", b"x" * 35)
    keep = await bucket.upload_from_stream("k", b"y" * 35)
    await bucket.delete(fid)
    assert await root.files.count_documents({"_id": fid}) == 0
    assert await root.chunks.count_documents({"files_id": fid}) == 0
    assert await root.chunks.count_documents({"files_id": keep}) == 4
    with pytest.raises(NoFile):
        await bucket.delete(fid)
    with pytest.raises(NoFile):
        await bucket.open_download_stream(fid)
    with pytest.raises(NoFile):
        await bucket.download_to_stream(ObjectId(), io.BytesIO())
    # orphan chunks are deleted even though NoFile is raised
    await root.chunks.insert_one({"files_id": "orphan", "n": 0, "data": b"zz"})
    with pytest.raises(NoFile):
        await bucket.delete("orphan")
    assert await root.chunks.count_documents({"files_id": "orphan"}) == 0


@with_client
async def test_rename(server, client):
    bucket, _ = await _bucket(client)
    fid = await bucket.upload_from_stream("old", b"data")
    await bucket.rename(fid, "new")
    assert (await bucket.open_download_stream(fid)).filename == "new"
    assert await (await bucket.open_download_stream_by_name("new")).read() == b"data"
    with pytest.raises(NoFile):
        await bucket.open_download_stream_by_name("old")
    with pytest.raises(NoFile):
        await bucket.rename(ObjectId(), "nope")


@with_client
async def test_drop(server, client):
    _skip_on_nx(server, "GridFS tables are listed as <bucket>_files/<bucket>_chunks")
    bucket, root = await _bucket(client)
    await bucket.upload_from_stream("a", b"abc")
    names = await client[DB].list_collection_names()
    assert f"{root.name}.files" in names and f"{root.name}.chunks" in names
    await bucket.drop()
    names = await client[DB].list_collection_names()
    assert f"{root.name}.files" not in names and f"{root.name}.chunks" not in names
    # the bucket keeps working after a drop (indexes recreated)
    fid = await bucket.upload_from_stream("b", b"again")
    assert await (await bucket.open_download_stream(fid)).read() == b"again"
    assert len(await root.chunks.index_information()) == 2


# --------------------------------------------------------------------------------------------
# find


@with_client
async def test_find(server, client):
    _skip_on_nx(server, "sorts on nested fields and skip are ignored on the files table")
    bucket, _ = await _bucket(client)
    ids = []
    for i in range(6):
        ids.append(await bucket.upload_from_stream(f"file{i}", b"x" * i, metadata={"i": i, "even": i % 2 == 0}))
    cursor = bucket.find({"metadata.even": True})
    assert isinstance(cursor, AsyncIOMotorGridOutCursor)
    found = [g async for g in cursor.sort("metadata.i", DESCENDING)]
    assert [g.filename for g in found] == ["file4", "file2", "file0"]
    assert all(isinstance(g, AsyncIOMotorGridOut) for g in found)
    assert await found[0].read() == b"xxxx"
    assert found[1].metadata == {"i": 2, "even": True}

    got = await bucket.find({}, sort=[("filename", ASCENDING)], skip=1, limit=3).to_list(None)
    assert [g.filename for g in got] == ["file1", "file2", "file3"]
    got = await bucket.find().sort("length", DESCENDING).skip(2).limit(2).to_list(None)
    assert [g.length for g in got] == [3, 2]
    got = await bucket.find(batch_size=2).to_list(None)
    assert sorted(g._id for g in got) == sorted(ids)
    cur = bucket.find({"filename": "file5"})
    g = await cur.next()
    assert g._id == ids[5] and await g.read() == b"xxxxx"
    with pytest.raises(StopAsyncIteration):
        await cur.next()
    assert await bucket.find({"filename": "nope"}).to_list(None) == []
    clone = bucket.find({"length": {"$gte": 4}}).sort("length", ASCENDING).clone()
    assert [g.length for g in await clone.to_list(None)] == [4, 5]
    with pytest.raises(NotImplementedError):
        bucket.find().add_option(2)


# --------------------------------------------------------------------------------------------
# GridIn


@with_client
async def test_grid_in_pieces(server, client):
    _skip_on_nx(server, "extra files fields (set()) are dropped")
    bucket, root = await _bucket(client, chunk_size_bytes=10)
    gin = bucket.open_upload_stream("pieces", metadata={"a": 1})
    assert isinstance(gin, AsyncIOMotorGridIn)
    assert not gin.closed and gin.filename == "pieces" and gin.name == "pieces" and gin.chunk_size == 10
    assert isinstance(gin._id, ObjectId) and gin.metadata == {"a": 1}
    with pytest.raises(AttributeError):
        gin.length
    with pytest.raises(AttributeError):
        gin.upload_date
    with pytest.raises(AttributeError):
        gin.nonexistent
    assert not gin.readable() and not gin.seekable() and gin.writeable()
    with pytest.raises(io.UnsupportedOperation):
        gin.read()
    parts = [b"abc", b"defghij", b"", b"k" * 25, b"lmn"]
    for p in parts[:3]:
        await gin.write(p)
    await gin.writelines(parts[3:])
    await gin.set("extra", "before-close")
    await gin.close()
    await gin.close()  # idempotent
    assert gin.closed and gin.length == 38 and isinstance(gin.upload_date, datetime.datetime)
    with pytest.raises(ValueError):
        await gin.write(b"more")
    await gin.set("extra2", 42)  # after close: updates the files document
    doc = await root.files.find_one({"_id": gin._id})
    assert doc["extra"] == "before-close" and doc["extra2"] == 42 and doc["metadata"] == {"a": 1}
    assert doc["length"] == 38
    gout = await bucket.open_download_stream(gin._id)
    assert await gout.read() == b"".join(parts)
    assert gout.extra2 == 42


@with_client
async def test_grid_in_context_manager_and_abort(server, client):
    _skip_on_nx(server, "non-ObjectId ids lose their chunks; chunks cannot be counted")
    bucket, root = await _bucket(client, chunk_size_bytes=4)
    async with bucket.open_upload_stream_with_id(7, "ctx") as gin:
        await gin.write(b"hello world")
    assert gin.closed
    assert await (await bucket.open_download_stream(7)).read() == b"hello world"

    with pytest.raises(RuntimeError):
        async with bucket.open_upload_stream("failed") as gin2:
            await gin2.write(b"x" * 9)
            raise RuntimeError("boom")
    assert gin2.closed
    assert await root.files.count_documents({"_id": gin2._id}) == 0

    gin3 = bucket.open_upload_stream("aborted")
    await gin3.write(b"y" * 100)
    await gin3.abort()
    assert gin3.closed
    assert await root.chunks.count_documents({"files_id": gin3._id}) == 0
    assert await root.files.count_documents({"_id": gin3._id}) == 0


@with_client
async def test_grid_in_direct_construction_encoding(server, client):
    bucket, root = await _bucket(client)
    gin = AsyncIOMotorGridIn(root, filename="direct.txt", content_type="text/plain", encoding="utf-8", chunk_size=3)
    await gin.write("héllo\n")
    await gin.write(io.StringIO("wörld"))
    await gin.close()
    assert gin.content_type == "text/plain"
    gout = AsyncIOMotorGridOut(root, gin._id)
    with pytest.raises(InvalidOperation):
        gout.filename
    assert await gout.open() is gout
    assert gout.filename == "direct.txt"
    if not nx_quirk(server, "contentType is dropped"):
        assert gout.content_type == "text/plain"
    assert (await gout.read()).decode("utf-8") == "héllo\nwörld"
    with pytest.raises(NoFile):
        await AsyncIOMotorGridOut(root, "no-such-id").open()


# --------------------------------------------------------------------------------------------
# GridOut


@with_client
async def test_grid_out_read_seek_tell(server, client):
    bucket, _ = await _bucket(client, chunk_size_bytes=10)
    data = bytes(range(256)) * 2  # 512 bytes, 52 chunks
    fid = await bucket.upload_from_stream("s", data)
    gout = await bucket.open_download_stream(fid)
    assert gout.readable() and gout.seekable()
    with pytest.raises(io.UnsupportedOperation):
        gout.write(b"x")
    assert gout.tell() == 0
    assert await gout.read(3) == data[:3] and gout.tell() == 3
    assert await gout.readchunk() == data[3:10] and gout.tell() == 10
    assert await gout.readchunk() == data[10:20]
    assert await gout.read(15) == data[20:35] and gout.tell() == 35
    assert await gout.read(0) == b""
    assert gout.seek(100) == 100 and gout.tell() == 100
    assert await gout.read(25) == data[100:125]
    assert gout.seek(-5, os.SEEK_CUR) == 120
    assert await gout.readchunk() == data[120:130]
    assert gout.seek(-7, os.SEEK_END) == 505
    assert await gout.read() == data[505:]
    assert await gout.read() == b"" and await gout.readchunk() == b""
    assert gout.seek(0) == 0
    assert await gout.read() == data
    assert gout.seek(1000) == 1000 and await gout.read() == b""
    with pytest.raises(IOError):
        gout.seek(-1)
    with pytest.raises(IOError):
        gout.seek(0, 7)
    gout.close()
    assert gout.closed


@with_client
async def test_grid_out_readline(server, client):
    bucket, _ = await _bucket(client, chunk_size_bytes=5)
    text = b"first line\nsecond\n\nlast without newline"
    gout = await bucket.open_download_stream(await bucket.upload_from_stream("lines", text))
    assert await gout.readline() == b"first line\n"
    assert await gout.readline(3) == b"sec"
    assert await gout.readline() == b"ond\n"
    assert await gout.readline() == b"\n"
    assert await gout.readline() == b"last without newline"
    assert await gout.readline() == b""


@with_client
async def test_stream_to_handler(server, client):
    bucket, _ = await _bucket(client, chunk_size_bytes=3)
    fid = await bucket.upload_from_stream("h", b"abcdefgh")

    class Handler:
        def __init__(self) -> None:
            self.written: list[bytes] = []
            self.flushes = 0

        def write(self, b: bytes) -> None:
            self.written.append(b)

        async def flush(self) -> None:
            self.flushes += 1

    h = Handler()
    await (await bucket.open_download_stream(fid)).stream_to_handler(h)
    assert h.written == [b"abc", b"def", b"gh"] and h.flushes == 3


# --------------------------------------------------------------------------------------------
# corruption


@with_client
async def test_corrupt_missing_and_short_chunks(server, client):
    _skip_on_nx(server, "chunk documents cannot be deleted or edited individually")
    bucket, root = await _bucket(client, chunk_size_bytes=4)
    fid = await bucket.upload_from_stream("c", b"0123456789ab")  # chunks 0, 1, 2
    # missing intermediate chunk
    await root.chunks.delete_one({"files_id": fid, "n": 1})
    gout = await bucket.open_download_stream(fid)
    with pytest.raises(CorruptGridFile):
        await gout.read()
    gout = await bucket.open_download_stream(fid)
    assert await gout.readchunk() == b"0123"
    with pytest.raises(CorruptGridFile):
        await gout.readchunk()
    with pytest.raises(CorruptGridFile):
        await bucket.download_to_stream(fid, io.BytesIO())

    # missing last chunk
    fid2 = await bucket.upload_from_stream("c2", b"0123456789")
    await root.chunks.delete_one({"files_id": fid2, "n": 2})
    with pytest.raises(CorruptGridFile):
        await (await bucket.open_download_stream(fid2)).read()

    # short intermediate chunk / wrong-size last chunk
    fid3 = await bucket.upload_from_stream("c3", b"0123456789")
    await root.chunks.update_one({"files_id": fid3, "n": 1}, {"$set": {"data": b"45"}})
    with pytest.raises(CorruptGridFile):
        await (await bucket.open_download_stream(fid3)).read()
    fid4 = await bucket.upload_from_stream("c4", b"0123456789")
    await root.chunks.update_one({"files_id": fid4, "n": 2}, {"$set": {"data": b"89X"}})
    with pytest.raises(CorruptGridFile):
        await (await bucket.open_download_stream(fid4)).read()


# --------------------------------------------------------------------------------------------
# sessions


@with_client
async def test_session_and_transaction_refusal(server, client):
    bucket, _ = await _bucket(client)
    async with await client.start_session() as s:
        fid = await bucket.upload_from_stream("sess", b"with session", session=s)
        gout = await bucket.open_download_stream(fid, session=s)
        assert await gout.read() == b"with session"
        assert [g._id for g in await bucket.find({}, session=s).to_list(None)] == [fid]
        await bucket.rename(fid, "renamed", session=s)
        await bucket.delete(fid, session=s)
    if not server.supports("transactions"):
        return
    async with await client.start_session() as s:
        async with s.start_transaction():
            with pytest.raises(InvalidOperation):
                bucket.open_upload_stream("x", session=s)
            with pytest.raises(InvalidOperation):
                await bucket.delete(ObjectId(), session=s)


# --------------------------------------------------------------------------------------------
# the public API alone (what nx-27017's GridFS emulation supports, so it runs on every server)


@with_client
async def test_public_api_only(server, client):
    bucket, _ = await _bucket(client, chunk_size_bytes=7)
    gin = bucket.open_upload_stream("api", metadata={"k": "v"})
    await gin.write(b"abc")
    await gin.writelines([b"defghij", b"klmnopqrstu"])
    await gin.close()
    assert gin.length == 21
    await asyncio.sleep(0.005)
    fid2 = await bucket.upload_from_stream("api", b"second")
    assert await (await bucket.open_download_stream_by_name("api", revision=0)).read() == b"abcdefghijklmnopqrstu"
    assert await (await bucket.open_download_stream_by_name("api")).read() == b"second"
    got = await bucket.find({"filename": "api"}).to_list(None)
    assert sorted(g.length for g in got) == [6, 21]
    assert len(await bucket.find({"filename": "api"}).limit(1).to_list(None)) == 1
    await bucket.rename(fid2, "renamed")
    assert (await bucket.open_download_stream(fid2)).filename == "renamed"
    await bucket.delete(fid2)
    with pytest.raises(NoFile):
        await bucket.open_download_stream(fid2)
    missing_delete = (NoFile, OperationFailure) if nx_quirk(server, "deleting a missing file errors") else NoFile
    with pytest.raises(missing_delete):
        await bucket.delete(fid2)
    with pytest.raises(NoFile):
        await bucket.rename(fid2, "x")
    gout = await bucket.open_download_stream(gin._id)
    assert gout.metadata == {"k": "v"}
    gout.seek(5)
    assert await gout.read(4) == b"fghi" and gout.tell() == 9
    await bucket.drop()
    assert await bucket.find().to_list(None) == []
