"""Load-balanced mode against SecantusDB behind tests/proxy.py in load-balancer mode (the
proxy makes the hello replies a load-balanced mongos's, with a serviceId): connection pinning
for cursors and transactions (load-balancers spec), the wait-queue timeout message, and the
proxy itself. The spec's unified suite runs in tests/unified (load-balancers)."""
from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Tuple

import pytest
from pymongo import monitoring
from pymongo.errors import OperationFailure, WaitQueueTimeoutError

from amongo.motor_asyncio import AsyncIOMotorClient
from proxy import Proxy
from tests.unit.test_pool import Recorder


class _Events(Recorder, monitoring.CommandListener):
    """Pool and command events."""

    started = succeeded = failed = Recorder._add

    def checked_out(self) -> int:
        return len(self.of(monitoring.ConnectionCheckedOutEvent)) - len(self.of(monitoring.ConnectionCheckedInEvent))


async def test_proxy_makes_a_load_balanced_mongos(secantus_rs: Any) -> None:
    async with Proxy(secantus_rs.host, secantus_rs.port, load_balancer=True) as lb:
        events = _Events()
        client = AsyncIOMotorClient(lb.uri(), event_listeners=[events])
        try:
            hello = await client.admin.command("hello")
            assert hello["msg"] == "isdbgrid" and hello["serviceId"] == lb.service_ids[0]
            assert "setName" not in hello and "hosts" not in hello
            assert client._topology.description.topology_type_name == "LoadBalanced"
            assert {e.service_id for e in events.of(monitoring.CommandStartedEvent)} == {lb.service_ids[0]}
        finally:
            client.close()
        # Without loadBalanced=true the balancer's mongos has no serviceId: a sharded cluster.
        client = AsyncIOMotorClient(f"mongodb://127.0.0.1:{lb.port}/")
        try:
            hello = await client.admin.command("hello")
            assert "serviceId" not in hello and hello["msg"] == "isdbgrid"
            assert client._topology.description.topology_type_name == "Sharded"
        finally:
            client.close()


@contextlib.asynccontextmanager
async def _one_connection_client(server: Any) -> AsyncIterator[Tuple[Proxy, _Events, Any]]:
    """A client through the LB proxy with a pool of one connection (100 ms wait queue)."""
    async with Proxy(server.host, server.port, load_balancer=True) as lb:
        events = _Events()
        client = AsyncIOMotorClient(lb.uri(maxPoolSize="1", waitQueueTimeoutMS="100"), event_listeners=[events])
        try:
            yield lb, events, client
        finally:
            client.close()


async def test_cursor_pins_its_connection(secantus_rs: Any) -> None:
    async with _one_connection_client(secantus_rs) as (lb, events, client):
        coll = client.lb_db.pinned
        await coll.drop()
        await coll.insert_many([{"_id": i} for i in range(5)])
        cursor = coll.find({}, batch_size=2)
        assert await cursor.next() == {"_id": 0}
        assert events.checked_out() == 1  # the cursor holds the only connection
        with pytest.raises(WaitQueueTimeoutError, match="connections in use by cursors: 1, "
                                                        "connections in use by transactions: 0, "
                                                        "connections in use by other operations: 0"):
            await coll.insert_one({"_id": 99})
        # a wait-queue timeout is not a network error: the retryable write is not retried
        assert len(events.of(monitoring.ConnectionCheckOutFailedEvent)) == 1
        assert [d["_id"] async for d in cursor] == [1, 2, 3, 4]  # exhausted: released
        assert events.checked_out() == 0
        await coll.insert_one({"_id": 99})
        # find and every getMore went over one client connection of the balancer
        (conn,) = [c for c in lb.connections if "find" in c.commands]
        assert conn.commands.count("getMore") == 2


async def test_transaction_pins_its_connection(secantus_rs: Any) -> None:
    async with _one_connection_client(secantus_rs) as (lb, events, client):
        coll = client.lb_db.txn
        await coll.insert_one({})
        async with await client.start_session() as s:
            s.start_transaction()
            await coll.insert_one({"a": 1}, session=s)
            await coll.find_one({}, session=s)
            with pytest.raises(WaitQueueTimeoutError, match="connections in use by transactions: 1"):
                await coll.find_one({})
            await s.commit_transaction()
            assert events.checked_out() == 1  # still pinned: a commit may be retried
            await coll.find_one({}, session=s)  # a non-transaction operation releases it
            assert events.checked_out() == 0
        sent = [e.command_name for e in events.of(monitoring.CommandStartedEvent)]
        assert sent[-4:] == ["insert", "find", "commitTransaction", "find"]


@pytest.mark.requires("fail_command")
async def test_close_kills_a_cursor_whose_getmore_failed(secantus_rs: Any) -> None:
    """A getMore failing with a server error (not CursorNotFound) leaves the server cursor
    open: close() still sends killCursors (on the pinned connection in load-balanced mode)."""
    events = _Events()
    client = AsyncIOMotorClient(secantus_rs.uri, event_listeners=[events])
    try:
        coll = client.lb_db.getmore_error
        await coll.drop()
        await coll.insert_many([{"_id": i} for i in range(5)])
        await client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1},
                                    "data": {"failCommands": ["getMore"], "errorCode": 7}})
        cursor = coll.find({}, batch_size=2)
        await cursor.next()
        await cursor.next()
        with pytest.raises(OperationFailure):
            await cursor.next()
        await cursor.close()
        names = [e.command_name for e in events.of(monitoring.CommandStartedEvent)]
        assert names[-2:] == ["getMore", "killCursors"]
    finally:
        await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        client.close()
