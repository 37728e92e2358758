"""Driver adapters: one module per driver, the same small async API for the workloads.

``get_adapter(name)`` returns an unconnected adapter or raises :class:`Unavailable`.
Adapter API (all ``async`` except the constructor)::

    connect(uri, max_pool_size); close(); drop(coll); hello()
    find_one(coll, filter); insert_one(coll, doc); insert_many(coll, docs)
    find_list(coll, filter); aggregate_list(coll, pipeline)
    bulk_write(coll, [("insert", doc, None) | ("update", filter, update) | ("delete", filter, None)])
"""
from __future__ import annotations

from typing import Any

#: ``amongo``: amongo through its Motor API; ``amongo-async``: amongo through its PyMongo-style
#: API (``amongo.AsyncMongoClient``, the same adapter as PyMongo's own client).
DRIVERS = ("amongo", "amongo-async", "motor", "pymongo", "mongojet", "raw")
#: The peers amongo is compared with (ratio columns, targets, chart), in table order.
PEERS = ("pymongo", "motor", "mongojet", "raw")
#: The rows measuring amongo (one per public API): the same targets apply to each.
AMONGO_APIS = ("amongo", "amongo-async")


class Unavailable(Exception):
    """The driver cannot be imported in this environment."""


def get_adapter(name: str) -> Any:
    if name == "amongo":
        try:
            from amongo.motor_asyncio import AsyncIOMotorClient
        except Exception as exc:  # not written yet / broken: report the row as unavailable
            raise Unavailable(f"amongo.motor_asyncio not importable: {exc!r}") from exc
        from .motor_adapter import MotorAdapter

        return MotorAdapter(AsyncIOMotorClient)
    if name == "amongo-async":
        try:
            from amongo import AsyncMongoClient
        except Exception as exc:
            raise Unavailable(f"amongo.AsyncMongoClient not importable: {exc!r}") from exc
        from .pymongo_adapter import PyMongoAdapter

        return PyMongoAdapter(AsyncMongoClient)
    if name == "amongo-eager":
        # amongo with every operation scheduled as a Task at once, as Motor runs an operation
        # even if its future is never awaited: the cost of that design (README, issue 10)
        from amongo.motor_asyncio import AsyncIOMotorClient

        from .motor_adapter import EagerMotorAdapter

        return EagerMotorAdapter(AsyncIOMotorClient)
    if name == "motor":
        try:
            from motor.motor_asyncio import AsyncIOMotorClient
        except Exception as exc:
            raise Unavailable(f"motor not importable: {exc!r}") from exc
        from .motor_adapter import MotorAdapter

        return MotorAdapter(AsyncIOMotorClient)
    if name == "pymongo":
        try:
            from pymongo import AsyncMongoClient  # noqa: F401
        except Exception as exc:
            raise Unavailable(f"pymongo.AsyncMongoClient not importable: {exc!r}") from exc
        from .pymongo_adapter import PyMongoAdapter

        return PyMongoAdapter()
    if name == "mongojet":
        try:
            import mongojet  # noqa: F401
        except Exception as exc:
            raise Unavailable(f"mongojet not importable: {exc!r}") from exc
        from .mongojet_adapter import MongojetAdapter

        return MongojetAdapter()
    if name == "raw":
        from .raw import RawAdapter

        return RawAdapter()
    raise ValueError(f"unknown driver {name!r}")
