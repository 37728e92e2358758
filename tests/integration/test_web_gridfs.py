"""Motor's GridFS web handlers (``amongo.aiohttp.AIOHTTPGridFS``, ``amongo.web.GridFSHandler``):
real HTTP requests to a real aiohttp / Tornado server on a loopback port, serving files from
GridFS on SecantusDB. The same requests go to Motor 3.7.1's own handlers (``driver``
parameter), which must answer the same way.
"""
from __future__ import annotations

import datetime
import email.utils
import socket
from typing import Any, Dict, Tuple

import pytest

aiohttp = pytest.importorskip("aiohttp", reason="aiohttp is in the test extra")
aiohttp_web = pytest.importorskip("aiohttp.web")
tornado_web = pytest.importorskip("tornado.web", reason="tornado is in the test extra")
motor_asyncio = pytest.importorskip("motor.motor_asyncio", reason="motor==3.7.1 is in the test extra")

import amongo.aiohttp  # noqa: E402
import amongo.web  # noqa: E402
from amongo.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorGridFSBucket  # noqa: E402
from amongo.motor_tornado import MotorClient  # noqa: E402

from ._crud_helpers import unique  # noqa: E402

DB = "amongo_web"
BODY = b"hello from gridfs\n" * 5000  # several chunks at chunk_size_bytes=16 KiB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _store(server: Any, bucket_name: str) -> Dict[str, Any]:
    """Three files in a fresh bucket (via amongo): a text file with a contentType, an image
    without one (guessed from the name), and two revisions of one name."""
    client = AsyncIOMotorClient(server.uri, serverSelectionTimeoutMS=20000)
    try:
        bucket = AsyncIOMotorGridFSBucket(client[DB], bucket_name, chunk_size_bytes=16 * 1024)
        text_id = await bucket.upload_from_stream("notes.txt", BODY)
        await client[DB][f"{bucket_name}.files"].update_one({"_id": text_id}, {"$set": {"contentType": "text/x-notes"}})
        png_id = await bucket.upload_from_stream("pic.png", b"\x89PNG fake")
        await bucket.upload_from_stream("rev.bin", b"old")
        await bucket.upload_from_stream("rev.bin", b"new")
        files = {d["filename"] + ("" if d["filename"] != "rev.bin" else str(d["length"])): d
                 async for d in client[DB][f"{bucket_name}.files"].find({})}
        return {"text": files["notes.txt"], "png": files["pic.png"], "text_id": text_id, "png_id": png_id}
    finally:
        client.close()


def _aiohttp_app(driver: str, uri: str, bucket_name: str) -> Tuple[Any, Any]:
    if driver == "motor":
        import motor.aiohttp

        client = motor_asyncio.AsyncIOMotorClient(uri)
        handler = motor.aiohttp.AIOHTTPGridFS(client[DB], bucket_name)
    else:
        client = AsyncIOMotorClient(uri)
        handler = amongo.aiohttp.AIOHTTPGridFS(client[DB], bucket_name)
    app = aiohttp_web.Application()
    resource = app.router.add_resource("/fs/{filename}")
    resource.add_route("GET", handler)
    resource.add_route("HEAD", handler)
    return app, client


async def _requests(base: str, stored: Dict[str, Any]) -> None:
    """The checks both servers (and both drivers) must pass."""
    text = stored["text"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/notes.txt") as r:
            assert r.status == 200
            assert await r.read() == BODY
            assert r.headers["Content-Type"].startswith("text/x-notes")
            assert int(r.headers["Content-Length"]) == len(BODY)
            etag = r.headers["Etag"]
            assert etag.startswith('"') and len(etag.strip('"')) == 64  # sha256 hex, as Motor
            last_modified = email.utils.parsedate_to_datetime(r.headers["Last-Modified"])
            uploaded = text["uploadDate"].replace(tzinfo=datetime.timezone.utc, microsecond=0)
            # (Motor's aiohttp handler lets aiohttp round the upload date up to the second)
            assert datetime.timedelta(0) <= last_modified - uploaded <= datetime.timedelta(seconds=1)
            assert r.headers["Cache-Control"] == "public"
        # conditional requests: 304 and no body
        async with http.get(f"{base}/notes.txt", headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and await r.read() == b""
        async with http.get(f"{base}/notes.txt", headers={"If-None-Match": '"0123"'}) as r:
            assert r.status == 200 and await r.read() == BODY
        async with http.get(f"{base}/notes.txt", headers={"If-Modified-Since": r.headers["Last-Modified"]}) as r:
            assert r.status == 304
        earlier = email.utils.format_datetime(uploaded - datetime.timedelta(hours=1), usegmt=True)
        async with http.get(f"{base}/notes.txt", headers={"If-Modified-Since": earlier}) as r:
            assert r.status == 200 and await r.read() == BODY
        # content type guessed from the name when the file has none
        async with http.get(f"{base}/pic.png") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
            assert await r.read() == b"\x89PNG fake"
            assert r.headers["Etag"] != etag
        # the newest revision of a name
        async with http.get(f"{base}/rev.bin") as r:
            assert r.status == 200 and await r.read() == b"new"
        # HEAD: the headers, no body
        async with http.head(f"{base}/notes.txt") as r:
            assert r.status == 200 and r.headers["Etag"] == etag
            assert int(r.headers["Content-Length"]) == len(BODY) and await r.read() == b""
        # no such file
        async with http.get(f"{base}/missing.txt") as r:
            assert r.status == 404


@pytest.mark.parametrize("driver", ["amongo", "motor"])
@pytest.mark.filterwarnings("ignore:Bare functions are deprecated:DeprecationWarning")  # Motor's handler
@pytest.mark.filterwarnings("ignore:GridOut property 'contentType' is deprecated:DeprecationWarning")  # Motor's
async def test_aiohttp_gridfs(secantus_rs, driver):
    bucket_name = unique("web")
    stored = await _store(secantus_rs, bucket_name)
    app, client = _aiohttp_app(driver, secantus_rs.uri, bucket_name)
    runner = aiohttp_web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = aiohttp_web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        await _requests(f"http://127.0.0.1:{port}/fs", stored)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/fs/notes.txt") as r:
                assert r.status == 405
    finally:
        await runner.cleanup()
        client.close()


@pytest.mark.parametrize("driver", ["amongo", "motor"])
@pytest.mark.filterwarnings("ignore:GridOut property 'contentType' is deprecated:DeprecationWarning")  # Motor's
async def test_tornado_gridfs_handler(secantus_rs, driver):
    bucket_name = unique("web")
    stored = await _store(secantus_rs, bucket_name)
    if driver == "motor":
        import motor.motor_tornado
        import motor.web

        client: Any = motor.motor_tornado.MotorClient(secantus_rs.uri)
        handler: Any = motor.web.GridFSHandler
    else:
        client = MotorClient(secantus_rs.uri)
        handler = amongo.web.GridFSHandler
    app = tornado_web.Application([(r"/fs/(.*)", handler, {"database": client[DB], "root_collection": bucket_name})])
    port = _free_port()
    http_server = app.listen(port, address="127.0.0.1")
    try:
        await _requests(f"http://127.0.0.1:{port}/fs", stored)
    finally:
        http_server.stop()
        await http_server.close_all_connections()
        client.close()


async def test_same_etag_as_motor(secantus_rs):
    """amongo's ETag for a file is Motor's, so caches stay valid across the switch."""
    from motor.motor_gridfs import _hash_gridout as motor_hash

    from amongo.motor_gridfs import _hash_gridout

    bucket_name = unique("web")
    await _store(secantus_rs, bucket_name)
    client = AsyncIOMotorClient(secantus_rs.uri)
    mclient = motor_asyncio.AsyncIOMotorClient(secantus_rs.uri)
    try:
        ours = await AsyncIOMotorGridFSBucket(client[DB], bucket_name).open_download_stream_by_name("notes.txt")
        theirs = await motor_asyncio.AsyncIOMotorGridFSBucket(mclient[DB], bucket_name).open_download_stream_by_name("notes.txt")
        assert _hash_gridout(ours) == motor_hash(theirs)
    finally:
        client.close()
        mclient.close()


def test_aiohttp_handler_is_a_coroutine_function_for_aiohttp():
    """aiohttp takes amongo's handler as an async handler (no "Bare functions" warning)."""
    import asyncio
    import warnings

    client = AsyncIOMotorClient(connect=False)
    handler = amongo.aiohttp.AIOHTTPGridFS(client[DB])
    assert asyncio.iscoroutinefunction(handler)
    app = aiohttp_web.Application()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app.router.add_route("GET", "/fs/{filename}", handler)
    client.close()


def test_aiohttp_gridfs_needs_a_database():
    with pytest.raises(TypeError, match="AsyncIOMotorDatabase"):
        amongo.aiohttp.AIOHTTPGridFS(object())  # type: ignore[arg-type]


def test_if_none_match_forms():
    """One tag (Motor's case), a list, a weak tag and ``*``; anything else is modified."""
    import types

    from amongo._web_common import is_not_modified
    from amongo.motor_gridfs import _hash_gridout

    f = types.SimpleNamespace(_id="x", length=3, upload_date=datetime.datetime(2026, 1, 2, 3, 4, 5, 600000))
    tag = _hash_gridout(f)
    for header in (f'"{tag}"', tag, f'"a", "{tag}"', f'W/"{tag}"', "*"):
        assert is_not_modified(f, None, header), header
    for header in ('"abc"', "", f'"{tag[:-1]}"'):
        assert not is_not_modified(f, None, header), header
    assert is_not_modified(f, "Fri, 02 Jan 2026 03:04:05 GMT", None)  # to the second
    assert not is_not_modified(f, "Fri, 02 Jan 2026 03:04:04 GMT", None)
    assert not is_not_modified(f, "not a date", None)


async def test_overrides_cache_time_extra_headers_and_file_choice(secantus_rs):
    """The hooks Motor documents: get_cache_time, set_extra_headers, get_gridfs_file (by _id)."""
    from bson import ObjectId

    bucket_name = unique("web")
    stored = await _store(secantus_rs, bucket_name)
    client = AsyncIOMotorClient(secantus_rs.uri)

    def by_id(bucket: Any, filename: str, request: Any) -> Any:
        return bucket.open_download_stream(ObjectId(filename))

    def extra(response: Any, gridout: Any) -> None:
        response.headers["X-File-Name"] = gridout.filename

    handler = amongo.aiohttp.AIOHTTPGridFS(client[DB], bucket_name, get_gridfs_file=by_id,
                                           get_cache_time=lambda path, modified, mime: 3600,
                                           set_extra_headers=extra)
    app = aiohttp_web.Application()
    app.router.add_route("GET", "/id/{filename}", handler)

    class Cached(amongo.web.GridFSHandler):
        def get_cache_time(self, path: str, modified: Any, mime_type: Any) -> int:
            return 60 if mime_type == "image/png" else 0

    tapp = tornado_web.Application([(r"/t/(.*)", Cached, {"database": client[DB], "root_collection": bucket_name})])
    runner = aiohttp_web.AppRunner(app)
    await runner.setup()
    port, tport = _free_port(), _free_port()
    await aiohttp_web.TCPSite(runner, "127.0.0.1", port).start()
    tserver = tapp.listen(tport, address="127.0.0.1")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/id/{stored['png_id']}") as r:
                assert r.status == 200 and await r.read() == b"\x89PNG fake"
                assert r.headers["Cache-Control"] == "max-age=3600" and "Expires" in r.headers
                assert r.headers["X-File-Name"] == "pic.png"
            async with http.get(f"http://127.0.0.1:{port}/id/{ObjectId()}") as r:
                assert r.status == 404
            async with http.get(f"http://127.0.0.1:{tport}/t/pic.png") as r:
                assert r.headers["Cache-Control"] == "max-age=60"
                expires = email.utils.parsedate_to_datetime(r.headers["Expires"])
                now = datetime.datetime.now(datetime.timezone.utc)
                assert datetime.timedelta(seconds=0) < expires - now <= datetime.timedelta(seconds=61)
            async with http.get(f"http://127.0.0.1:{tport}/t/notes.txt") as r:
                assert r.headers["Cache-Control"] == "public" and "Expires" not in r.headers
    finally:
        tserver.stop()
        await tserver.close_all_connections()
        await runner.cleanup()
        client.close()
