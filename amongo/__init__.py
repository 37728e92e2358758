"""amongo: a pure-asyncio MongoDB driver that speaks the wire protocol itself.

It is a drop-in replacement for Motor: ``from amongo.motor_asyncio import AsyncIOMotorClient``.
"""
from __future__ import annotations

from amongo._version import __version__

version = __version__

__all__ = ["__version__", "version"]
