"""mongojet adapter (PyPI ``mongojet``: a Python client over the official Rust driver, which
runs on a tokio runtime in threads of the same process; its operations are awaited from the
asyncio or uvloop event loop).

Options go in the URI (``create_client(url)`` takes no keyword options): ``maxPoolSize`` and
``serverSelectionTimeoutMS`` as for the other drivers. mongojet 0.5.8 has no ``bulk_write``:
the workload's row says so (see :data:`UNSUPPORTED`).
"""
from __future__ import annotations

from typing import Any, List
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..workloads import DB
from .pymongo_adapter import PyMongoAdapter


def with_options(uri: str, **options: Any) -> str:
    """*uri* with *options* set in its query string (replacing the same names)."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in options]
    query += [(k, str(v)) for k, v in options.items()]
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))


class MongojetAdapter(PyMongoAdapter):
    """The PyMongo adapter's ``drop``/``find_one``/``insert_one``/``insert_many`` (the same
    collection methods), with mongojet's client, command and cursor calls."""

    #: adapter methods mongojet has no operation for (the workload's row is "unavailable").
    UNSUPPORTED = {"bulk_write": "mongojet 0.5.8 has no bulk_write"}

    def __init__(self) -> None:
        super().__init__(client_cls=None)

    async def connect(self, uri: str, max_pool_size: int) -> None:
        from mongojet import create_client

        self.client = await create_client(with_options(
            uri, maxPoolSize=max_pool_size, serverSelectionTimeoutMS=20000))
        self.db = self.client.get_database(DB)
        self.admin = self.client.get_database("admin")
        await self.admin.run_command({"ping": 1})

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def hello(self) -> Any:
        return await self.admin.run_command({"hello": 1})

    async def find_list(self, coll: str, flt: Any) -> List[Any]:
        cursor = await self._c(coll).find(flt)
        return await cursor.to_list()

    async def aggregate_list(self, coll: str, pipeline: List[Any]) -> List[Any]:
        cursor = await self._c(coll).aggregate(pipeline)
        return await cursor.to_list()

    async def bulk_write(self, coll: str, reqs: List[Any]) -> Any:
        raise NotImplementedError(self.UNSUPPORTED["bulk_write"])
