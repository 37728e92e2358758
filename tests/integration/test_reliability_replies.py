"""Issue 11, defect 7 (replies): a malformed cursor reply from a server is a pymongo error
(ProtocolError), never a KeyError/TypeError reaching the application. A fake server on
127.0.0.1 answers find/aggregate/getMore with broken cursor documents.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import pytest
from pymongo.errors import ProtocolError

from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer, Peer

BROKEN: Dict[str, Any] = {
    "no-cursor": {"ok": 1.0},
    "cursor-not-a-document": {"cursor": 5, "ok": 1.0},
    "id-not-an-integer": {"cursor": {"id": "x", "ns": "db.c", "firstBatch": []}, "ok": 1.0},
    "batch-not-an-array": {"cursor": {"id": 0, "ns": "db.c", "firstBatch": {"a": 1}}, "ok": 1.0},
    "batch-missing": {"cursor": {"id": 0, "ns": "db.c"}, "ok": 1.0},
    "ns-not-a-string": {"cursor": {"id": 0, "ns": 7, "firstBatch": []}, "ok": 1.0},
}

OPERATIONS: Dict[str, Callable[[Any], Any]] = {
    "find_one": lambda c: c.find_one({}),
    "find": lambda c: c.find({}).to_list(None),
    "aggregate": lambda c: c.aggregate([]).to_list(None),
    "count_documents": lambda c: c.count_documents({}),
    "list_indexes": lambda c: c.list_indexes().to_list(None),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("case", sorted(BROKEN))
async def test_malformed_first_batch(case: str, operation: str) -> None:
    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if any(k in cmd for k in ("find", "aggregate", "listIndexes")):
            await peer.reply(rid, BROKEN[case])
            return None
        return False

    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000)
        try:
            if case == "no-cursor" and operation in ("aggregate", "list_indexes"):
                # (a command cursor without a cursor document is an empty result: $out on
                # old servers); anything but a pymongo error would still be a defect
                assert await OPERATIONS[operation](client.db.c) == []
            else:
                with pytest.raises(ProtocolError, match="Malformed cursor reply"):
                    await OPERATIONS[operation](client.db.c)
        finally:
            client.close()


async def test_malformed_next_batch() -> None:
    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "find" in cmd:
            await peer.reply(rid, {"cursor": {"id": 42, "ns": "db.c", "firstBatch": [{"_id": 1}]}, "ok": 1.0})
            return None
        if "getMore" in cmd:
            await peer.reply(rid, {"cursor": {"id": 0, "ns": "db.c", "nextBatch": None}, "ok": 1.0})
            return None
        return False

    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000)
        try:
            cursor = client.db.c.find({}, batch_size=1)
            assert (await cursor.next()) == {"_id": 1}
            with pytest.raises(ProtocolError, match="nextBatch"):
                await cursor.next()
        finally:
            client.close()


GOSSIP: Dict[str, Any] = {
    "cluster-time-not-a-document": {"$clusterTime": 5},
    "cluster-time-without-clusterTime": {"$clusterTime": {"signature": {}}},
    "cluster-time-wrong-type": {"$clusterTime": {"clusterTime": "yesterday"}},
    "operation-time-wrong-type": {"operationTime": 12},
}


GOSSIP_OPERATIONS: Dict[str, Callable[[Any, Any], Any]] = {
    # runCommand returns the whole reply; find_one and insert_one keep the times encoded when
    # no explicit session keeps them (test_reply_times.py)
    "ping": lambda client, session: client.admin.command("ping", session=session),
    "find_one": lambda client, session: (  # (no session argument: the FindOne path, not a cursor's)
        client.db.c.find_one({}) if session is None else client.db.c.find_one({}, session=session)),
    "insert_one": lambda client, session: client.db.c.insert_one({}, session=session),
}


@pytest.mark.parametrize("case", sorted(GOSSIP))
@pytest.mark.parametrize("explicit_session", [False, True])
@pytest.mark.parametrize("operation", sorted(GOSSIP_OPERATIONS))
async def test_malformed_gossip_is_a_protocol_error(case: str, explicit_session: bool, operation: str) -> None:
    from bson.timestamp import Timestamp

    state = {"bad": False}

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "ping" in cmd or "find" in cmd or "insert" in cmd:
            doc: Dict[str, Any] = {"ok": 1.0}
            if "find" in cmd:
                doc = {"cursor": {"id": 0, "ns": "db.c", "firstBatch": []}, "ok": 1.0}
            elif "insert" in cmd:
                doc = {"n": 1, "ok": 1.0}
            doc.update({"$clusterTime": {"clusterTime": Timestamp(5, 1), "signature": {}},
                        "operationTime": Timestamp(5, 1)})
            if state["bad"]:
                doc.update(GOSSIP[case])
            await peer.reply(rid, doc)
            return None
        return False

    run = GOSSIP_OPERATIONS[operation]
    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000)
        try:
            session = await client.start_session() if explicit_session else None
            await run(client, session)  # a valid cluster time is known
            state["bad"] = True
            with pytest.raises(ProtocolError, match="Malformed"):
                await run(client, session)
            state["bad"] = False
            await run(client, session)
            if session is not None:
                await session.end_session()
        finally:
            client.close()
