"""amongo: a pure-asyncio MongoDB driver that speaks the wire protocol itself.

It is a drop-in replacement for Motor: ``from amongo.motor_asyncio import AsyncIOMotorClient``,
or ``amongo.install_as_motor()`` to make ``import motor`` itself resolve to amongo; and of
PyMongo's async API: ``from amongo import AsyncMongoClient`` (:mod:`amongo.asynchronous`).
"""
from __future__ import annotations

from amongo._motor_switch import install_as_motor
from amongo._version import __version__
from amongo.asynchronous.mongo_client import AsyncMongoClient

version = __version__

__all__ = ["AsyncMongoClient", "__version__", "install_as_motor", "version"]
