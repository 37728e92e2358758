"""Retryable writes and reads (retryable-writes / retryable-reads specs) with server-side error
injection (``configureFailPoint: failCommand``), against SecantusDB."""
from __future__ import annotations

from typing import Any, Dict, List

import pytest
from pymongo import monitoring
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure, PyMongoError

from amongo.motor_asyncio import AsyncIOMotorClient

pytestmark = pytest.mark.requires("fail_command", "retryable_writes")


class _Cmds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def started(self, e: Any) -> None:
        self.events.append(e)

    def succeeded(self, e: Any) -> None:
        pass

    def failed(self, e: Any) -> None:
        pass

    def named(self, name: str) -> List[Dict[str, Any]]:
        return [e.command for e in self.events if e.command_name == name]


async def _fail(client: AsyncIOMotorClient, times: int, **data: Any) -> None:
    await client.admin.command(
        {"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data}
    )


async def _off(client: AsyncIOMotorClient) -> None:
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@pytest.fixture
def rs(secantus_rs):
    return secantus_rs


async def test_insert_retried_once_with_same_txn_number(rs) -> None:
    cmds = _Cmds()
    client = AsyncIOMotorClient(rs.uri, event_listeners=[cmds])
    coll = client.amongo_test.retry_writes
    try:
        await coll.drop()
        await _fail(client, 1, failCommands=["insert"], errorCode=6, errorLabels=["RetryableWriteError"])
        await coll.insert_one({"_id": 1})
        inserts = cmds.named("insert")
        assert len(inserts) == 2
        assert inserts[0]["txnNumber"] == inserts[1]["txnNumber"]
        assert inserts[0]["lsid"] == inserts[1]["lsid"]
        assert await coll.count_documents({"_id": 1}) == 1
    finally:
        await _off(client)
        client.close()


async def test_network_error_write_retried(rs) -> None:
    client = AsyncIOMotorClient(rs.uri)
    coll = client.amongo_test.retry_writes_net
    try:
        await coll.drop()
        await _fail(client, 1, failCommands=["update"], closeConnection=True)
        res = await coll.update_one({"_id": 1}, {"$set": {"x": 1}}, upsert=True)
        assert res.upserted_id == 1
    finally:
        await _off(client)
        client.close()


async def test_retry_writes_false_does_not_retry(rs) -> None:
    client = AsyncIOMotorClient(rs.uri, retryWrites=False)
    coll = client.amongo_test.retry_writes_off
    try:
        await _fail(client, 1, failCommands=["insert"], errorCode=6, errorLabels=["RetryableWriteError"])
        with pytest.raises(PyMongoError) as info:
            await coll.insert_one({"x": 1})
        assert getattr(info.value, "code", None) == 6
    finally:
        await _off(client)
        client.close()


async def test_multi_write_is_not_retried(rs) -> None:
    cmds = _Cmds()
    client = AsyncIOMotorClient(rs.uri, event_listeners=[cmds])
    coll = client.amongo_test.retry_multi
    try:
        await coll.insert_one({"a": 1})
        await _fail(client, 1, failCommands=["update"], errorCode=6, errorLabels=["RetryableWriteError"])
        with pytest.raises(PyMongoError):
            await coll.update_many({}, {"$set": {"b": 1}})
        updates = cmds.named("update")
        assert len(updates) == 1 and "txnNumber" not in updates[0]
    finally:
        await _off(client)
        client.close()


async def test_second_failure_raises(rs) -> None:
    client = AsyncIOMotorClient(rs.uri)
    coll = client.amongo_test.retry_twice
    try:
        await _fail(client, 2, failCommands=["insert"], errorCode=6, errorLabels=["RetryableWriteError"])
        with pytest.raises(PyMongoError) as info:
            await coll.insert_one({"x": 1})
        assert info.value.has_error_label("RetryableWriteError")
    finally:
        await _off(client)
        client.close()


async def test_read_retried_after_network_error(rs) -> None:
    cmds = _Cmds()
    client = AsyncIOMotorClient(rs.uri, event_listeners=[cmds])
    coll = client.amongo_test.retry_reads
    try:
        await coll.insert_one({"r": 1})
        await _fail(client, 1, failCommands=["find"], closeConnection=True)
        assert (await coll.find_one({"r": 1}))["r"] == 1
        assert len(cmds.named("find")) == 2
    finally:
        await _off(client)
        client.close()


async def test_read_not_retried_when_disabled(rs) -> None:
    client = AsyncIOMotorClient(rs.uri, retryReads=False)
    coll = client.amongo_test.retry_reads_off
    try:
        await _fail(client, 1, failCommands=["find"], closeConnection=True)
        with pytest.raises(ConnectionFailure):
            await coll.find_one({})
    finally:
        await _off(client)
        client.close()


async def test_transient_transaction_error_label(rs) -> None:
    client = AsyncIOMotorClient(rs.uri)
    coll = client.amongo_test.txn_label
    try:
        await coll.drop()
        await coll.insert_one({"seed": 1})
        await _fail(client, 1, failCommands=["insert"], closeConnection=True)
        async with await client.start_session() as s:
            s.start_transaction()
            with pytest.raises(ConnectionFailure) as info:
                await coll.insert_one({"x": 1}, session=s)
            assert info.value.has_error_label("TransientTransactionError")
            await s.abort_transaction()
    finally:
        await _off(client)
        client.close()


async def test_state_change_error_retried_after_rediscovery(rs) -> None:
    """ShutdownInProgress (91) marks the server Unknown (SecantusDB's error reply carries no
    topologyVersion); the retry waits for the monitor's next check, so heartbeats are fast here."""
    cmds = _Cmds()
    client = AsyncIOMotorClient(rs.uri, event_listeners=[cmds], heartbeatFrequencyMS=500)
    coll = client.amongo_test.retry_state_change
    try:
        await _fail(client, 1, failCommands=["insert"], errorCode=91, errorLabels=["RetryableWriteError"])
        await coll.insert_one({"sc": 1})
        assert len(cmds.named("insert")) == 2
    finally:
        await _off(client)
        client.close()


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_max_adaptive_retries_bounds_overload_retries(rs, max_retries: int) -> None:
    """``maxAdaptiveRetries`` (client-backpressure spec) is honoured, not just parsed: a find
    failing with SystemOverloadedError is tried 1 + maxAdaptiveRetries times."""
    cmds = _Cmds()
    client = AsyncIOMotorClient(rs.uri, event_listeners=[cmds], maxAdaptiveRetries=max_retries)
    coll = client.amongo_test.overload
    try:
        await coll.find_one({})
        await _fail(client, 10, failCommands=["find"], errorCode=462,
                    errorLabels=["RetryableError", "SystemOverloadedError"])
        cmds.events.clear()
        with pytest.raises(OperationFailure):
            await coll.find_one({})
        assert len(cmds.named("find")) == 1 + max_retries
    finally:
        await _off(client)
        client.close()
