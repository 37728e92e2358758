"""Issue 17, "decode the envelope lazily": the ``$clusterTime``/``operationTime`` a server
appends to the replies of find_one, writes and getMores stay encoded (no Timestamp objects,
no validation pass) when no session keeps times, and the client's clock still follows them:
each command sends the newest ``$clusterTime`` received, an older one never replaces it, an
error reply is whole (its times included), and user
data that happens to contain the key's bytes is untouched. A fake server on 127.0.0.1 scripts
the times; both APIs run the same engine path. (A malformed value on this path is a
ProtocolError: test_reliability_replies.py's gossip test runs find_one and insert_one.)
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List

import pytest
from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure

import amongo
from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer, Peer

CLIENTS: Dict[str, Callable[..., Any]] = {"motor": AsyncIOMotorClient, "pymongo": amongo.AsyncMongoClient}

#: a string whose bytes contain the encoded $clusterTime key and operationTime key
TRICKY = "\x03$clusterTime\x00 and \x11operationTime\x00"


def _times(t: int) -> Dict[str, Any]:
    ts = Timestamp(t, 1)
    return {"$clusterTime": {"clusterTime": ts, "signature": {"hash": b"\x01" * 20, "keyId": 7}},
            "operationTime": ts}


def _sent_time(cmd: Dict[str, Any]) -> int:
    return int(cmd["$clusterTime"]["clusterTime"].time)


@pytest.mark.parametrize("api", sorted(CLIENTS))
async def test_the_clock_follows_replies_whose_times_stay_encoded(api: str) -> None:
    script: List[Any] = []

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "find" in cmd or "insert" in cmd or "update" in cmd or "getMore" in cmd:
            kind, t = script.pop(0)
            if kind == "error":
                doc: Dict[str, Any] = {"ok": 0.0, "code": 2, "errmsg": "bad value"}
            elif kind == "open":  # a cursor with one document, more to come
                doc = {"cursor": {"id": 77, "ns": "db.c", "firstBatch": [{"_id": 0}]}, "ok": 1.0}
            elif kind == "big":  # its last batch, > 16 KiB
                batch = [{"_id": i, "s": TRICKY, "pad": "x" * 100} for i in range(1, 301)]
                doc = {"cursor": {"id": 0, "ns": "db.c", "nextBatch": batch}, "ok": 1.0}
            elif "find" in cmd:
                doc = {"cursor": {"id": 0, "ns": "db.c", "firstBatch": [{"_id": 1, "s": TRICKY}]}, "ok": 1.0}
            else:
                doc = {"n": 1, "ok": 1.0}
            doc.update(_times(t))
            await peer.reply(rid, doc)
            return None
        return False

    async with FakeServer(handler) as srv:
        client = CLIENTS[api](srv.uri, serverSelectionTimeoutMS=3000)
        try:
            coll = client.db.c
            script.extend([("ok", 10), ("ok", 11), ("ok", 5), ("ok", 5), ("ok", 20), ("error", 30), ("ok", 31)])
            assert await coll.find_one({}) == {"_id": 1, "s": TRICKY}  # T10 received
            await coll.insert_one({"x": 1})  # sends T10, receives T11
            await coll.update_one({}, {"$set": {"x": 2}})  # sends T11, receives the older T5
            assert await coll.find_one({}) == {"_id": 1, "s": TRICKY}  # still sends T11; T5 again
            await coll.insert_one({"x": 3})  # sends T11, receives T20
            with pytest.raises(OperationFailure) as info:
                await coll.insert_one({"x": 4})  # sends T20; an error reply with T30
            assert info.value.details is not None
            assert info.value.details["operationTime"] == Timestamp(30, 1)
            assert info.value.details["$clusterTime"]["clusterTime"] == Timestamp(30, 1)
            await coll.insert_one({"x": 5})  # the error's T30 was gossiped (receives T31)
            # a getMore's large batch (decoded whole, times included) still moves the clock
            script.extend([("open", 32), ("big", 40), ("ok", 41)])
            assert len(await coll.find({}, batch_size=1).to_list(None)) == 1 + 300
            await coll.insert_one({"x": 6})
            sent = [c for c in srv.peers[-1].commands if "find" in c or "insert" in c or "update" in c]
            assert [_sent_time(c) for c in sent[1:]] == [10, 11, 11, 11, 20, 30, 31, 40]
            get_more = [c for p in srv.peers for c in p.commands if "getMore" in c]
            assert len(get_more) == 1 and _sent_time(get_more[0]) == 32
        finally:
            await client.close() if api == "pymongo" else client.close()
