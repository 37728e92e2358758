"""Defect 8 of issue 11: no CommandStarted/Failed events for a command refused client-side.

PyMongo encodes (and refuses a too-large or unencodable command) before it publishes
CommandStartedEvent; amongo must do the same: a command that never reached the socket has
no events. A fake server on 127.0.0.1 records what it receives.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Dict, List

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import DocumentTooLarge

from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer, RecordingListener

SMALL_LIMIT = 64 * 1024  # the fake server's maxBsonObjectSize
BIG = "x" * (SMALL_LIMIT + 32 * 1024)


class Unencodable:
    pass


CASES: Dict[str, Callable[[Any], Awaitable[Any]]] = {
    "command-too-large": lambda db: db.command({"ping": 1, "pad": BIG}),
    "insert-too-large": lambda db: db.c.insert_one({"pad": BIG}),
    "insert-many-too-large": lambda db: db.c.insert_many([{"a": 1}, {"pad": BIG}], ordered=True),
    "find-filter-too-large": lambda db: db.c.find_one({"pad": BIG}),
    "update-too-large": lambda db: db.c.update_one({"a": 1}, {"$set": {"pad": BIG}}),
    "aggregate-too-large": lambda db: db.c.aggregate([{"$match": {"pad": BIG}}]).to_list(None),
    "command-unencodable": lambda db: db.command({"ping": 1, "x": Unencodable()}),
    "find-unencodable": lambda db: db.c.find_one({"x": Unencodable()}),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_refused_command_publishes_no_event(case: str) -> None:
    async with FakeServer(hello={"maxBsonObjectSize": SMALL_LIMIT, "maxMessageSizeBytes": 4 * SMALL_LIMIT}) as srv:
        rec = RecordingListener()
        client = AsyncIOMotorClient(srv.uri, event_listeners=[rec], serverSelectionTimeoutMS=5000)
        try:
            await client.admin.command("ping")  # a connection exists, its limits are known
            await asyncio.sleep(0)
            del rec.events[:]
            sent_before = sum(len(p.commands) for p in srv.peers)
            with pytest.raises((DocumentTooLarge, InvalidDocument)):
                await CASES[case](client.db)
            assert [e for e in rec.events if "Command" in type(e).__name__] == []
            # nothing was sent either (monitor hellos aside)
            sent = [c for p in srv.peers for c in p.commands][sent_before:]
            assert all("isMaster" in c or "hello" in c for c in sent)
            # the connection is still good: a normal command publishes its pair
            await client.admin.command("ping")
            names = [type(e).__name__ for e in rec.events if "Command" in type(e).__name__]
            assert names == ["CommandStartedEvent", "CommandSucceededEvent"]
        finally:
            client.close()
