"""Read/write concern, read preference and codec options as rendered into commands; write
batch splitting and DocumentTooLarge; unacknowledged writes."""
from __future__ import annotations

import asyncio
import datetime

import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from bson.son import SON
from pymongo.errors import DocumentTooLarge
from pymongo.operations import InsertOne, ReplaceOne
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference, SecondaryPreferred
from pymongo.write_concern import WriteConcern

from amongo.motor_asyncio import AsyncIOMotorClient

from ._crud_helpers import Listener, is_standalone, make_client, unique

DB = "amongo_crud"


def _with_opts(uri: str, opts: str) -> str:
    return uri + ("&" if "?" in uri else ("?" if uri.count("/") > 2 else "/?")) + opts


async def _run_ops(coll):
    """One write and a few reads."""
    await coll.insert_one({"a": 1})
    await coll.update_one({"a": 1}, {"$set": {"b": 1}})
    await coll.find({}).to_list(None)
    await coll.count_documents({})
    await coll.aggregate([{"$match": {}}]).to_list(None)
    await coll.distinct("a")
    await coll.delete_many({})


READS = ("find", "aggregate", "distinct")
WRITES = ("insert", "update", "delete")


async def test_defaults_render_nothing(server):
    client, listener = make_client(server)
    try:
        coll = client[DB][unique("opt")]
        await _run_ops(coll)
        for ev in listener.started_events:
            if ev.command_name in READS + WRITES:
                assert "writeConcern" not in ev.command, ev.command
                assert "readConcern" not in ev.command, ev.command
                assert "$readPreference" not in ev.command, ev.command
        await coll.drop()
    finally:
        client.close()


async def test_concerns_from_uri(server):
    uri = _with_opts(server.uri, "w=1&journal=false&readConcernLevel=local&wTimeoutMS=5000")
    client, listener = make_client(server, uri)
    try:
        assert client.write_concern == WriteConcern(w=1, j=False, wtimeout=5000)
        assert client.read_concern == ReadConcern("local")
        coll = client[DB][unique("opt")]
        await _run_ops(coll)
        for ev in listener.started_events:
            if ev.command_name in WRITES:
                assert ev.command["writeConcern"] == {"w": 1, "j": False, "wtimeout": 5000}
                assert "readConcern" not in ev.command
            if ev.command_name in READS:
                assert ev.command["readConcern"] == {"level": "local"}
                assert "writeConcern" not in ev.command
        await coll.drop()
    finally:
        client.close()


async def test_concerns_client_db_collection_call(server):
    client, listener = make_client(server, w=1, readConcernLevel="local")
    try:
        db = client.get_database(DB, write_concern=WriteConcern(w=1, j=True), read_concern=ReadConcern())
        coll = db[unique("opt")]
        await coll.insert_one({"x": 1})
        await coll.find().to_list(None)
        assert listener.commands("insert")[-1]["writeConcern"] == {"w": 1, "j": True}
        assert "readConcern" not in listener.commands("find")[-1]
        c2 = coll.with_options(write_concern=WriteConcern(), read_concern=ReadConcern("local"))
        listener.reset()
        await c2.insert_one({"x": 2})
        await c2.find().to_list(None)
        assert "writeConcern" not in listener.commands("insert")[-1]
        assert listener.commands("find")[-1]["readConcern"] == {"level": "local"}
        # client-level settings reach collections made without overrides
        listener.reset()
        await client[DB][coll.name].insert_one({"x": 3})
        assert listener.commands("insert")[-1]["writeConcern"] == {"w": 1}
        # commands that write take the database write concern
        listener.reset()
        await coll.create_index("x")
        await coll.drop()
        assert listener.commands("createIndexes")[-1]["writeConcern"] == {"w": 1, "j": True}
        assert listener.commands("drop")[-1]["writeConcern"] == {"w": 1, "j": True}
    finally:
        client.close()


async def test_read_preference_rendering(server):
    uri = _with_opts(server.uri, "readPreference=secondaryPreferred")
    client, listener = make_client(server, uri)
    try:
        assert client.read_preference == SecondaryPreferred()
        coll = client[DB][unique("rp")]
        await _run_ops(coll)
        for ev in listener.started_events:
            if ev.command_name in WRITES:
                assert "$readPreference" not in ev.command
            if ev.command_name in READS:
                if is_standalone(server):
                    assert "$readPreference" not in ev.command  # never to a standalone
                else:
                    assert ev.command["$readPreference"] == {"mode": "secondaryPreferred"}
        # Database.command defaults to primary, whatever the database's read preference
        listener.reset()
        await client[DB].command("ping")
        assert "$readPreference" not in listener.commands("ping")[-1]
        await client[DB].command("ping", read_preference=ReadPreference.NEAREST)
        if not is_standalone(server):
            assert listener.commands("ping")[-1]["$readPreference"] == {"mode": "nearest"}
        # per-collection override back to primary
        listener.reset()
        await coll.with_options(read_preference=ReadPreference.PRIMARY).find().to_list(None)
        assert "$readPreference" not in listener.commands("find")[-1]
        await coll.drop()
    finally:
        client.close()


async def test_codec_options(server):
    client, _ = make_client(server, document_class=SON, tz_aware=True)
    try:
        coll = client[DB][unique("codec")]
        now = datetime.datetime(2024, 1, 2, 3, 4, 5, 123000)
        await coll.insert_one({"_id": 1, "b": 2, "a": 1, "t": now})
        doc = await coll.find_one()
        assert isinstance(doc, SON) and list(doc) == ["_id", "b", "a", "t"]
        assert doc["t"].tzinfo is not None
        assert doc["t"].replace(tzinfo=None) == now
        raw = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        rdoc = await raw.find_one()
        assert isinstance(rdoc, RawBSONDocument) and rdoc["a"] == 1
        plain = client.get_database(DB, codec_options=CodecOptions())[coll.name]
        pdoc = await plain.find_one()
        assert type(pdoc) is dict and pdoc["t"].tzinfo is None
        docs = await raw.aggregate([{"$match": {}}]).to_list(None)
        assert isinstance(docs[0], RawBSONDocument)
        # RawBSONDocument can be inserted as is
        await plain.insert_one(RawBSONDocument(__import__("bson").encode({"_id": 2, "r": True})))
        assert (await plain.find_one({"_id": 2}))["r"] is True
        r = await coll.find_one_and_update({"_id": 1}, {"$set": {"c": 1}})
        assert isinstance(r, SON)
        cmd = await client[DB].command("ping", codec_options=CodecOptions(document_class=SON))
        assert isinstance(cmd, SON)
        await coll.drop()
    finally:
        client.close()
    # tz_aware from the URI
    client, _ = make_client(server, _with_opts(server.uri, "uuidRepresentation=standard"))
    try:
        from bson.binary import UuidRepresentation

        assert client.codec_options.uuid_representation == UuidRepresentation.STANDARD
    finally:
        client.close()


@pytest.mark.requires("unacknowledged_writes")
async def test_unacknowledged_writes(server):
    client, listener = make_client(server, w=0)
    try:
        coll = client[DB][unique("w0")]
        r = await coll.insert_one({"_id": 1})
        assert r.acknowledged is False and r.inserted_id == 1
        r2 = await coll.insert_many([{"_id": 2}, {"_id": 3}])
        assert r2.acknowledged is False and r2.inserted_ids == [2, 3]
        u = await coll.update_one({"_id": 1}, {"$set": {"x": 1}})
        assert u.acknowledged is False
        with pytest.raises(Exception):  # InvalidOperation: unacknowledged
            u.modified_count
        d = await coll.delete_one({"_id": 3})
        assert d.acknowledged is False
        b = await coll.bulk_write([InsertOne({"_id": 4})])
        assert b.acknowledged is False
        assert listener.commands("insert")[0]["writeConcern"] == {"w": 0}
        acked = coll.with_options(write_concern=WriteConcern(w=1))
        for _ in range(50):
            docs = await acked.find().sort("_id").to_list(None)
            if docs == [{"_id": 1, "x": 1}, {"_id": 2}, {"_id": 4}]:
                break
            await asyncio.sleep(0.05)
        assert docs == [{"_id": 1, "x": 1}, {"_id": 2}, {"_id": 4}]
        await acked.drop()
    finally:
        client.close()


async def test_document_too_large_before_sending(server):
    client, listener = make_client(server)
    try:
        coll = client[DB][unique("big")]
        await coll.insert_one({"ok": 1})  # connect, learn the limits
        listener.reset()
        big = {"s": "x" * (16 * 1024 * 1024 + 1)}
        with pytest.raises(DocumentTooLarge):
            await coll.insert_one(dict(big))
        with pytest.raises(DocumentTooLarge):
            await coll.insert_many([{"a": 1}, dict(big)])
        with pytest.raises(DocumentTooLarge):
            await coll.bulk_write([InsertOne(dict(big))])
        with pytest.raises(DocumentTooLarge):
            await coll.replace_one({"ok": 1}, dict(big))
        sent = [n for n in listener.names() if n in ("insert", "update")]
        assert sent == [], sent
        assert await coll.count_documents({}) == 1
        await coll.drop()
    finally:
        client.close()


async def test_insert_many_splits_by_message_size(server):
    client, listener = make_client(server)
    try:
        coll = client[DB][unique("split")]
        docs = [{"i": i, "s": "x" * (10 * 1024 * 1024)} for i in range(5)]  # ~50 MB > 48 MB
        r = await coll.insert_many(docs)
        assert len(r.inserted_ids) == 5
        inserts = listener.commands("insert")
        assert len(inserts) >= 2
        assert sum(len(c["documents"]) for c in inserts) == 5
        assert await coll.count_documents({}) == 5
        await coll.drop()
    finally:
        client.close()


class _SmallBatchClient(AsyncIOMotorClient):
    @property
    def max_write_batch_size(self) -> int:  # type: ignore[override]
        return 10


async def test_insert_many_and_bulk_split_by_max_write_batch_size(server):
    listener = Listener()
    client = _SmallBatchClient(server.uri, event_listeners=[listener], serverSelectionTimeoutMS=10000)
    try:
        coll = client[DB][unique("split")]
        await coll.insert_many([{"i": i} for i in range(25)])
        inserts = listener.commands("insert")
        assert [len(c["documents"]) for c in inserts] == [10, 10, 5]
        listener.reset()
        r = await coll.bulk_write([ReplaceOne({"i": i}, {"i": i, "r": 1}) for i in range(12)], ordered=False)
        assert r.modified_count == 12
        assert [len(c["updates"]) for c in listener.commands("update")] == [10, 2]
        await coll.drop()
    finally:
        client.close()
