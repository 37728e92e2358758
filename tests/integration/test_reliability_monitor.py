"""Defect 2 of issue 11: a monitor survives any odd hello.

A fake server on 127.0.0.1 answers the monitor's hello with a field of an unexpected type
(electionId, setVersion, topologyVersion, hosts entries, ...). The check must fail: the
server becomes Unknown with a ProtocolError naming the field, its pool is paused, the
monitor keeps running, and the next good hello makes the server selectable again.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict

import pytest
from bson.objectid import ObjectId
from pymongo.errors import ProtocolError, PyMongoError

from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.topology.description import ServerType

from ._rel_server import FakeServer, Peer, is_hello

OID = ObjectId()
PID = ObjectId()


def _good(addr: str) -> Dict[str, Any]:
    return {
        "setName": "rs", "hosts": [addr], "me": addr, "primary": addr,
        "isWritablePrimary": True, "secondary": False, "setVersion": 1, "electionId": OID,
        "topologyVersion": {"processId": PID, "counter": 1},
    }


#: name -> changes applied to the good hello (each one wrong-typed)
ODD: Dict[str, Callable[[Dict[str, Any]], None]] = {
    "electionId": lambda d: d.update(electionId="7fffffff0000000000000001"),
    "setVersion": lambda d: d.update(setVersion="2"),
    "topologyVersion": lambda d: d.update(topologyVersion={"processId": PID, "counter": "x"}),
    "topologyVersion-not-a-document": lambda d: d.update(topologyVersion=[1, 2]),
    "hosts": lambda d: d.update(hosts=[d["me"], 12345]),
    "hosts-not-an-array": lambda d: d.update(hosts=7),
    "hosts-bad-port": lambda d: d.update(hosts=[d["me"], "h:notaport"]),
    "maxWireVersion": lambda d: d.update(maxWireVersion="21"),
    "logicalSessionTimeoutMinutes": lambda d: d.update(logicalSessionTimeoutMinutes=[30]),
    "tags": lambda d: d.update(tags="dc=1"),
    "lastWrite": lambda d: d.update(lastWrite={"lastWriteDate": "yesterday"}),
    "me": lambda d: d.update(me=5),
}


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def _polling_client(srv: FakeServer, mode: str = "poll") -> AsyncIOMotorClient:
    return AsyncIOMotorClient(
        srv.uri, serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=100, serverMonitoringMode=mode
    )


async def _known_then_failing(
    client: Any, srv: FakeServer, state: Dict[str, bool], flag: str, streaming: bool = False
) -> Any:
    """Ping (the server becomes known; with *streaming*, wait for the streaming protocol),
    set ``state[flag]``, wait until a check failed; returns the Server."""
    topology = client._topology
    assert (await client.admin.command("ping"))["ok"] == 1.0
    server = topology.servers[srv.address]
    assert server.description.is_server_type_known
    if streaming:
        await _until(lambda: server.monitor.streaming)
    state[flag] = True
    await _until(lambda: topology.description.servers[srv.address].error is not None)
    return server


CASES = [(field, "poll") for field in sorted(ODD)] + [
    (field, "stream") for field in ("electionId", "hosts", "setVersion", "topologyVersion")
]


@pytest.mark.parametrize("field,mode", CASES)
async def test_monitor_survives_odd_hello(field: str, mode: str) -> None:
    """(``stream``: the monitor uses the streaming protocol — awaitable hellos answered
    after a short wait — when the bad replies arrive.)"""
    state = {"bad": False}

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if is_hello(cmd):
            if "topologyVersion" in cmd:  # an awaitable hello (streaming)
                assert mode == "stream"
                await asyncio.sleep(0.05)
            host, port = peer.server.address
            doc = {**peer.server.hello, **_good(f"{host}:{port}")}
            if state["bad"]:
                ODD[field](doc)
            await peer.reply(rid, doc)
            return None
        return False

    async with FakeServer(handler) as srv:
        client = _polling_client(srv, mode)
        try:
            topology = client._topology
            server = await _known_then_failing(client, srv, state, "bad", streaming=mode == "stream")
            assert server.description.server_type == ServerType.Unknown
            sd = topology.description.servers[srv.address]
            assert isinstance(sd.error, ProtocolError)
            assert field.split("-")[0] in str(sd.error)
            assert server.pool.paused  # the description and the pool agree
            monitor = server.monitor
            assert monitor is not None and monitor._task is not None and not monitor._task.done()
            # several bad checks in a row: still alive
            n = len(srv.commands("isMaster")) + len(srv.commands("hello"))
            await _until(lambda: len(srv.commands("isMaster")) + len(srv.commands("hello")) >= n + 2)
            assert not monitor._task.done()
            state["bad"] = False
            assert (await client.admin.command("ping"))["ok"] == 1.0
            assert topology.description.servers[srv.address].server_type == ServerType.RSPrimary
            assert not server.pool.paused
            if mode == "stream":
                await _until(lambda: server.monitor.streaming)
        finally:
            client.close()


async def test_sdam_failure_while_applying_marks_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: an exception inside the SDAM update itself (not a field
    from_hello rejects) is a failed check too, and the monitor goes on."""
    from amongo.topology import sdam

    real = sdam.updated_topology_description
    state = {"boom": False}

    def flaky(td: Any, sd: Any) -> Any:
        if state["boom"] and sd.server_type != ServerType.Unknown:
            raise TypeError("'<' not supported between instances of 'ObjectId' and 'str'")
        return real(td, sd)

    monkeypatch.setattr(sdam, "updated_topology_description", flaky)
    async with FakeServer() as srv:
        client = _polling_client(srv)
        try:
            topology = client._topology
            server = await _known_then_failing(client, srv, state, "boom")
            sd = topology.description.servers[srv.address]
            assert isinstance(sd.error, ProtocolError) and "TypeError" in str(sd.error)
            assert server.pool.paused
            assert not server.monitor._task.done()
            state["boom"] = False
            assert (await client.admin.command("ping"))["ok"] == 1.0
        finally:
            client.close()


@pytest.mark.parametrize("value", ["21", 21.5, True, None])
async def test_pool_handshake_with_odd_max_wire_version(value: Any) -> None:
    """Defect 7: a string (or otherwise wrong) maxWireVersion in a *pool* handshake is a
    pymongo error for the operation, never a ValueError; the client stays usable."""
    state = {"bad": True}

    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if is_hello(cmd):
            doc = dict(peer.server.hello)
            if peer.index > 0 and state["bad"]:  # peer 0 is the monitor
                if value is None:
                    del doc["maxWireVersion"]
                else:
                    doc["maxWireVersion"] = value
            await peer.reply(rid, doc)
            return None
        return False

    async with FakeServer(handler) as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000, serverMonitoringMode="poll")
        try:
            with pytest.raises(PyMongoError) as info:
                await client.admin.command("ping")
            assert not isinstance(info.value, (ValueError, TypeError))
            state["bad"] = False
            assert (await client.admin.command("ping"))["ok"] == 1.0
        finally:
            client.close()


async def test_pools_not_brought_in_line_keep_the_server_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a pool cannot be made ready for a server the description calls known, the server
    is published Unknown (with the error) rather than selectable with a paused pool."""
    from amongo.pool import Pool

    real_ready = Pool.ready
    state = {"fail": True}

    def ready(self: Any) -> None:
        if state["fail"]:
            raise RuntimeError("pool could not be made ready")
        real_ready(self)

    monkeypatch.setattr(Pool, "ready", ready)
    async with FakeServer() as srv:
        client = _polling_client(srv)
        try:
            topology = client._topology
            await _until(lambda: topology.description.servers[srv.address].error is not None)
            sd = topology.description.servers[srv.address]
            assert sd.server_type == ServerType.Unknown
            assert isinstance(sd.error, ProtocolError) and "could not apply" in str(sd.error)
            server = topology.servers[srv.address]
            assert server.pool.paused
            assert not server.monitor._task.done()
            state["fail"] = False
            assert (await client.admin.command("ping"))["ok"] == 1.0
            assert not server.pool.paused
        finally:
            client.close()
