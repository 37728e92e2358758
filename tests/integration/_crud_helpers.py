"""Shared helpers for the CRUD integration tests (a command listener and a client factory)."""
from __future__ import annotations

import itertools
from typing import Any, List

from pymongo import monitoring

from amongo.motor_asyncio import AsyncIOMotorClient

_counter = itertools.count()


class Listener(monitoring.CommandListener):
    """Records command started/succeeded/failed events."""

    def __init__(self) -> None:
        self.started: List[monitoring.CommandStartedEvent] = []
        self.succeeded: List[Any] = []
        self.failed: List[Any] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:  # type: ignore[override]
        self.started_events.append(event)

    def succeeded(self, event: Any) -> None:  # type: ignore[override]
        self.succeeded_events.append(event)

    def failed(self, event: Any) -> None:  # type: ignore[override]
        self.failed_events.append(event)

    def reset(self) -> None:
        self.started_events.clear()
        self.succeeded_events.clear()
        self.failed_events.clear()

    def commands(self, name: str) -> List[dict]:
        return [e.command for e in self.started_events if e.command_name == name]

    def names(self) -> List[str]:
        return [e.command_name for e in self.started_events]


def _init_listener(self: Listener) -> None:
    self.started_events = []
    self.succeeded_events = []
    self.failed_events = []


Listener.__init__ = _init_listener  # type: ignore[method-assign]


def make_client(server: Any, uri: str | None = None, **kwargs: Any) -> tuple[AsyncIOMotorClient, Listener]:
    listener = Listener()
    kwargs.setdefault("serverSelectionTimeoutMS", 10000)
    client = AsyncIOMotorClient(uri or server.uri, event_listeners=[listener], **kwargs)
    return client, listener


def unique(prefix: str = "c") -> str:
    return f"{prefix}_{next(_counter)}"


def is_standalone(server: Any) -> bool:
    return not server.supports("replica_set")


def nx_quirk(server: Any, what: str) -> bool:
    """True on nx-27017 for a documented server deviation *what* (the assertion is skipped)."""
    return getattr(server, "name", None) == "nx"
