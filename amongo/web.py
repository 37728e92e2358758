"""Serve GridFS files with amongo and Tornado (Motor: ``motor.web``).

Needs the ``tornado`` extra (``pip install 'amongo-driver[tornado]'``)::

    from amongo.web import GridFSHandler

    app = tornado.web.Application([
        (r"/static/(.*)", GridFSHandler, {"database": client.my_database}),
    ])
"""
from __future__ import annotations

import datetime
from typing import Any, Awaitable, Optional

import tornado.web
from gridfs.errors import NoFile

from amongo._web_common import content_type_of, gridout_headers, is_not_modified
from amongo.gridfs import GridFSBucket, GridOut

__all__ = ["GridFSHandler"]


class GridFSHandler(tornado.web.RequestHandler):
    """A Tornado handler serving GridFS files, like ``tornado.web.StaticFileHandler``
    (Motor: ``motor.web.GridFSHandler``).

    Sends ``Etag`` (as Motor's), ``Last-Modified``, ``Content-Type`` (the file's
    ``contentType``, else guessed from the path) and ``Cache-Control``; answers ``304`` to a
    matching ``If-None-Match`` or a current ``If-Modified-Since`` and ``404`` when there is no
    such file. Override :meth:`get_gridfs_file`, :meth:`get_cache_time` and
    :meth:`set_extra_headers` to customise it.
    """

    def initialize(self, database: Any, root_collection: str = "fs") -> None:
        """Tornado's per-request set-up: the database and the bucket name (``"fs"``)."""
        self.database = database
        self.root_collection = root_collection

    def get_gridfs_file(self, bucket: GridFSBucket, filename: str, request: Any) -> Awaitable[GridOut]:
        """The GridFS file a URL serves (Motor: ``GridFSHandler.get_gridfs_file``): by default
        the newest file named by the URL pattern's group."""
        return bucket.open_download_stream_by_name(filename)

    async def get(self, path: str, include_body: bool = True) -> None:
        """Serve the file (Motor: ``GridFSHandler.get``)."""
        bucket = GridFSBucket(self.database, self.root_collection)
        try:
            gridout = await self.get_gridfs_file(bucket, path, self.request)
        except NoFile:
            raise tornado.web.HTTPError(404) from None

        modified: datetime.datetime = gridout.upload_date.replace(microsecond=0)
        cache_time = self.get_cache_time(path, modified, content_type_of(path, gridout))
        for name, value in gridout_headers(path, gridout, cache_time).items():
            self.set_header(name, value)
        self.set_extra_headers(path, gridout)
        if is_not_modified(gridout, self.request.headers.get("If-Modified-Since"),
                           self.request.headers.get("If-None-Match")):
            self.set_status(304)
            return

        self.set_header("Content-Length", gridout.length)
        if include_body:
            await gridout.stream_to_handler(self)
        self.finish()

    def head(self, path: str) -> Awaitable[None]:
        """Headers only (Motor: ``GridFSHandler.head``)."""
        return self.get(path, include_body=False)

    def get_cache_time(self, path: str, modified: datetime.datetime, mime_type: Optional[str]) -> int:
        """Seconds clients may cache the file: 0 (the default) sends ``Cache-Control:
        public`` only; N > 0 sends ``max-age=N`` and ``Expires``."""
        return 0

    def set_extra_headers(self, path: str, gridout: GridOut) -> None:
        """Add headers before the response is sent; does nothing by default."""
