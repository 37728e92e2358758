"""``AsyncChangeStream`` and its collection / database / cluster subclasses (PyMongo:
``pymongo.asynchronous.change_stream``)."""
from __future__ import annotations

from amongo._typing import _DocumentType
from amongo.change_stream import ChangeStream

__all__ = [
    "AsyncChangeStream",
    "AsyncCollectionChangeStream",
    "AsyncDatabaseChangeStream",
    "AsyncClusterChangeStream",
]


class AsyncChangeStream(ChangeStream[_DocumentType]):
    """A change stream (PyMongo: ``AsyncChangeStream``); ``await target.watch()`` returns
    one of the subclasses below, already open."""


class AsyncCollectionChangeStream(AsyncChangeStream[_DocumentType]):
    """A change stream on a collection (PyMongo: ``AsyncCollectionChangeStream``)."""


class AsyncDatabaseChangeStream(AsyncChangeStream[_DocumentType]):
    """A change stream on a database (PyMongo: ``AsyncDatabaseChangeStream``)."""


class AsyncClusterChangeStream(AsyncDatabaseChangeStream[_DocumentType]):
    """A change stream on the whole deployment (PyMongo: ``AsyncClusterChangeStream``)."""
