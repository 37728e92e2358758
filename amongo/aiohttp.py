"""Serve GridFS files with amongo and aiohttp (Motor: ``motor.aiohttp``).

Needs the ``aiohttp`` extra (``pip install 'amongo-driver[aiohttp]'``)::

    from amongo.aiohttp import AIOHTTPGridFS

    handler = AIOHTTPGridFS(client.my_database)
    app = aiohttp.web.Application()
    resource = app.router.add_resource("/fs/{filename}")   # the route needs {filename}
    resource.add_route("GET", handler)
    resource.add_route("HEAD", handler)
"""
from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, NoReturn

import aiohttp.web
from gridfs.errors import NoFile

from amongo._web_common import gridout_headers, is_not_modified
from amongo.database import Database
from amongo.gridfs import GridFSBucket, GridOut

__all__ = ["AIOHTTPGridFS", "get_gridfs_file", "get_cache_time", "set_extra_headers"]


def get_gridfs_file(bucket: GridFSBucket, filename: str, request: aiohttp.web.Request) -> Awaitable[GridOut]:
    """Choose the GridFS file a URL serves (Motor: ``motor.aiohttp.get_gridfs_file``): by
    default the newest file named by the route's ``{filename}``. Pass another function as
    ``AIOHTTPGridFS(..., get_gridfs_file=...)`` to map URLs differently (for instance
    ``bucket.open_download_stream(ObjectId(filename))``)."""
    return bucket.open_download_stream_by_name(filename)


def get_cache_time(filename: str, modified: Any, mime_type: Any) -> int:
    """Seconds clients may cache a file (Motor: ``motor.aiohttp.get_cache_time``): 0 (the
    default) sends ``Cache-Control: public`` only; N > 0 sends ``max-age=N`` and ``Expires``."""
    return 0


def set_extra_headers(response: aiohttp.web.StreamResponse, gridout: GridOut) -> None:
    """Add headers to a response before it is sent (Motor: ``motor.aiohttp.set_extra_headers``);
    does nothing by default."""


def _config_error(request: aiohttp.web.Request) -> NoReturn:
    try:
        formatter = request.match_info.route.resource.get_info()["formatter"]  # type: ignore[union-attr]
        msg = f'Bad AIOHTTPGridFS route "{formatter}", requires a {{filename}} variable'
    except (KeyError, AttributeError):
        msg = f"Bad AIOHTTPGridFS route for request: {request}"
    raise aiohttp.web.HTTPInternalServerError(text=msg) from None


class AIOHTTPGridFS:
    """An aiohttp request handler serving GridFS files (Motor: ``motor.aiohttp.AIOHTTPGridFS``).

    Sends ``Etag`` (SHA-256 of the file's id, length and upload date, as Motor), ``Last-Modified``,
    ``Content-Type`` (the file's ``contentType``, else guessed from the URL) and
    ``Cache-Control``; answers ``304`` to a matching ``If-None-Match`` or a current
    ``If-Modified-Since``, ``404`` when there is no such file, ``405`` to methods other than
    GET and HEAD.

    :param database: an :class:`~amongo.motor_asyncio.AsyncIOMotorDatabase`.
    :param root_collection: the bucket name (``"fs"``).
    :param get_gridfs_file: replaces :func:`get_gridfs_file`.
    :param get_cache_time: replaces :func:`get_cache_time`.
    :param set_extra_headers: replaces :func:`set_extra_headers`.
    """

    def __init__(
        self,
        database: Database[Any],
        root_collection: str = "fs",
        get_gridfs_file: Callable[[GridFSBucket, str, aiohttp.web.Request], Awaitable[GridOut]] = get_gridfs_file,
        get_cache_time: Callable[[str, Any, Any], int] = get_cache_time,
        set_extra_headers: Callable[[aiohttp.web.StreamResponse, GridOut], None] = set_extra_headers,
    ) -> None:
        if not isinstance(database, Database):
            raise TypeError(f"First argument to AIOHTTPGridFS must be AsyncIOMotorDatabase, not {database!r}")
        self._database = database
        self._bucket = GridFSBucket(database, root_collection)
        self._get_gridfs_file = get_gridfs_file
        self._get_cache_time = get_cache_time
        self._set_extra_headers = set_extra_headers
        # aiohttp wraps a handler that is not a coroutine function (with a DeprecationWarning,
        # as it does for Motor's): mark this instance as one, for inspect and for asyncio.
        if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
            inspect.markcoroutinefunction(self)
        marker = getattr(asyncio.coroutines, "_is_coroutine", None)
        if marker is not None:
            self._is_coroutine = marker

    async def __call__(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        """Serve the file the request names (Motor: ``AIOHTTPGridFS.__call__``)."""
        try:
            filename = request.match_info["filename"]
        except KeyError:
            _config_error(request)
        if request.method not in ("GET", "HEAD"):
            raise aiohttp.web.HTTPMethodNotAllowed(method=request.method, allowed_methods={"GET", "HEAD"})
        try:
            gridout = await self._get_gridfs_file(self._bucket, filename, request)
        except NoFile as exc:
            raise aiohttp.web.HTTPNotFound(text=request.path) from exc

        resp = aiohttp.web.StreamResponse()
        cache_time = self._get_cache_time(request.path, gridout.upload_date, gridout.content_type)
        for name, value in gridout_headers(request.path, gridout, cache_time).items():
            resp.headers[name] = value
        self._set_extra_headers(resp, gridout)
        if is_not_modified(gridout, request.headers.get("If-Modified-Since"), request.headers.get("If-None-Match")):
            resp.set_status(304)
            return resp

        resp.content_length = gridout.length
        await resp.prepare(request)
        if request.method == "GET":
            while True:
                chunk = await gridout.readchunk()
                if not chunk:
                    break
                await resp.write(chunk)
        return resp
