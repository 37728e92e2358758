"""Client-level ``bulk_write`` (MongoDB 8.0 ``bulkWrite``): batching by the server's limits,
``nsInfo`` per batch, verbose results through a cursor, errors and partial results,
unacknowledged rules (CRUD spec bulk-write.md and its prose tests)."""
from __future__ import annotations

import pytest
from bson.codec_options import DEFAULT_CODEC_OPTIONS
from bson.son import SON
from pymongo.errors import ClientBulkWriteException, DocumentTooLarge, InvalidOperation
from pymongo.operations import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.results import ClientBulkWriteResult
from pymongo.write_concern import WriteConcern

from amongo.client_bulk import _build_op, _split

from ._crud_helpers import make_client, unique

DB = "amongo_cbw"


async def test_mixed_namespaces_verbose(secantus_rs):
    client, listener = make_client(secantus_rs)
    try:
        a, b = f"{DB}.{unique('a')}", f"{DB}.{unique('b')}"
        res = await client.bulk_write(
            [
                InsertOne({"_id": 1, "x": 1}, namespace=a),
                InsertOne({"x": 2}, namespace=b),
                UpdateOne({"_id": 1}, {"$inc": {"x": 1}}, namespace=a),
                UpdateMany({}, {"$set": {"y": 1}}, namespace=b),
                ReplaceOne({"_id": 5}, {"z": 1}, upsert=True, namespace=a),
                DeleteOne({"_id": 1}, namespace=a),
                DeleteMany({}, namespace=b),
            ],
            verbose_results=True,
        )
        assert isinstance(res, ClientBulkWriteResult)
        assert (res.inserted_count, res.matched_count, res.modified_count, res.upserted_count,
                res.deleted_count) == (2, 2, 2, 1, 2)
        assert res.insert_results[0].inserted_id == 1
        assert res.update_results[4].upserted_id == 5
        assert res.delete_results[6].deleted_count == 1
        cmd = listener.commands("bulkWrite")[0]
        assert cmd["nsInfo"] == [{"ns": a}, {"ns": b}]
        assert [next(iter(op.items())) for op in cmd["ops"]] == [
            ("insert", 0), ("insert", 1), ("update", 0), ("update", 1), ("update", 0), ("delete", 0), ("delete", 1)]
        assert cmd["errorsOnly"] is False and cmd["ordered"] is True
        assert "txnNumber" not in cmd  # an updateMany/deleteMany makes it non-retryable
        await client.drop_database(DB)
    finally:
        client.close()


async def test_split_by_max_write_batch_size_and_getmore(secantus_rs):
    client, listener = make_client(secantus_rs)
    try:
        await client.admin.command("ping")
        n = client.max_write_batch_size + 1
        ns = f"{DB}.{unique('big')}"
        res = await client.bulk_write([InsertOne({"_id": i}, namespace=ns) for i in range(n)], verbose_results=True)
        assert res.inserted_count == n and len(res.insert_results) == n
        cmds = listener.commands("bulkWrite")
        assert [len(c["ops"]) for c in cmds] == [n - 1, 1]
        assert all(c["nsInfo"] == [{"ns": ns}] for c in cmds)
        # (SecantusDB returns all verbose results in firstBatch; a server that keeps a cursor
        # open is read with getMore - the unified client-bulkWrite tests cover that path)
        assert all("txnNumber" in c for c in cmds) and cmds[0]["txnNumber"] != cmds[1]["txnNumber"]
        await client.drop_database(DB)
    finally:
        client.close()


async def test_split_by_max_message_size(secantus_rs):
    client, listener = make_client(secantus_rs)
    try:
        await client.admin.command("ping")
        size = client.max_bson_size - 500
        count = client.max_message_size // client.max_bson_size + 1
        ns = f"{DB}.{unique('msg')}"
        res = await client.bulk_write([InsertOne({"a": "b" * size}, namespace=ns) for _ in range(count)])
        assert res.inserted_count == count
        cmds = listener.commands("bulkWrite")
        assert len(cmds) == 2 and sum(len(c["ops"]) for c in cmds) == count
        await client.drop_database(DB)
    finally:
        client.close()


async def test_write_error_partial_result(secantus_rs):
    client, _ = make_client(secantus_rs)
    try:
        ns = f"{DB}.{unique('err')}"
        models = [InsertOne({"_id": 1}, namespace=ns), InsertOne({"_id": 1}, namespace=ns),
                  InsertOne({"_id": 2}, namespace=ns)]
        with pytest.raises(ClientBulkWriteException) as info:
            await client.bulk_write(models, ordered=False, verbose_results=True)
        exc = info.value
        assert exc.error is None
        assert [e["idx"] for e in exc.write_errors] == [1] and exc.write_errors[0]["code"] == 11000
        assert exc.partial_result.inserted_count == 2
        assert set(exc.partial_result.insert_results) == {0, 2}
        with pytest.raises(ClientBulkWriteException) as info:
            await client.bulk_write([InsertOne({"_id": 1}, namespace=ns), InsertOne({"_id": 3}, namespace=ns)])
        assert info.value.partial_result is None  # ordered, the first op failed
        await client.drop_database(DB)
    finally:
        client.close()


async def test_client_side_errors(secantus_rs):
    client, listener = make_client(secantus_rs)
    try:
        ns = f"{DB}.{unique('cs')}"
        with pytest.raises(InvalidOperation, match="namespace"):
            await client.bulk_write([InsertOne({})])
        with pytest.raises(InvalidOperation):
            await client.bulk_write([])
        with pytest.raises(TypeError):
            await client.bulk_write([{"insertOne": {}}])
        w0 = WriteConcern(w=0)
        with pytest.raises(InvalidOperation, match="verbose"):
            await client.bulk_write([InsertOne({}, namespace=ns)], write_concern=w0, ordered=False, verbose_results=True)
        with pytest.raises(InvalidOperation, match="ordered"):
            await client.bulk_write([InsertOne({}, namespace=ns)], write_concern=w0)
        await client.admin.command("ping")
        with pytest.raises(DocumentTooLarge):
            await client.bulk_write([InsertOne({"a": "b" * client.max_bson_size}, namespace=ns)])
        assert not listener.commands("bulkWrite")
    finally:
        client.close()


async def test_unacknowledged(secantus_rs):
    client, listener = make_client(secantus_rs)
    try:
        ns = f"{DB}.{unique('w0')}"
        res = await client.bulk_write([InsertOne({"_id": 1}, namespace=ns)], ordered=False,
                                      write_concern=WriteConcern(w=0))
        assert not res.acknowledged
        cmd = listener.commands("bulkWrite")[0]
        assert cmd["writeConcern"] == {"w": 0} and cmd["errorsOnly"] is True and "lsid" not in cmd
        db, coll = ns.split(".", 1)
        for _ in range(50):  # w:0: the insert lands eventually
            if await client[db][coll].find_one({"_id": 1}):
                break
        await client.drop_database(DB)
    finally:
        client.close()


def test_split_patches_ns_index_per_batch():
    ops = [_build_op(InsertOne(SON([("_id", i)]), namespace=f"d.c{i % 2}"), DEFAULT_CODEC_OPTIONS)[0] for i in range(5)]
    end, encoded, ns_docs = _split(ops, 0, 100, 16 * 1024 * 1024, 48_000_000, 3)
    assert end == 3 and len(encoded) == 3 and len(ns_docs) == 2
    import bson

    assert [bson.decode(e)["insert"] for e in encoded] == [0, 1, 0]
    end2, encoded2, ns_docs2 = _split(ops, end, 100, 16 * 1024 * 1024, 48_000_000, 3)
    assert end2 == 5 and [bson.decode(e)["insert"] for e in encoded2] == [0, 1]
    assert [bson.decode(d)["ns"] for d in ns_docs2] == ["d.c1", "d.c0"]
