"""The client's topology properties before any operation (they wait like Motor's, through a
blocking discovery), and the streaming monitor protocol, against mockupdb and SecantusDB."""
from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator, List

import pytest
from pymongo import monitoring
from pymongo.errors import InvalidOperation, ServerSelectionTimeoutError

from amongo.client import MongoClient
from amongo.topology.description import TopologyType

from .test_topology_mockupdb import FAST, MockDeployment

pytestmark = pytest.mark.integration


@pytest.fixture
def rs() -> Iterator[MockDeployment]:
    d = MockDeployment(["primary", "secondary", "secondary", "arbiter"])
    try:
        yield d
    finally:
        d.close()


async def test_properties_wait_for_discovery_rs(rs: MockDeployment) -> None:
    p, s1, s2, a = rs.hosts
    client = MongoClient(f"mongodb://{s1}/?replicaSet=rs", **FAST)
    try:
        # Non-waiting properties (as in PyMongo/Motor): nothing is known yet.
        assert client.primary is None
        assert client.secondaries == set() and client.arbiters == set()
        assert client.nodes == frozenset()
        start = time.monotonic()
        assert client.is_primary is True  # blocks until the primary is discovered
        assert time.monotonic() - start < 3
        assert client.address == rs.address(p)
        assert client.is_mongos is False
        assert client.primary == rs.address(p)
        assert rs.address(s1) in client.secondaries
        assert client.topology_description.topology_type == TopologyType.ReplicaSetWithPrimary
        # The live topology took the results: pools are ready, monitors run once the loop does.
        await client.db.c.insert_one({"x": 1})
        await _wait_for(lambda: len(client.nodes) == 4)
        assert client.secondaries == {rs.address(s1), rs.address(s2)}
        assert client.arbiters == {rs.address(a)}
        assert all(s.monitor is not None and s.monitor._task is not None
                   for s in client._topology.servers.values())
    finally:
        client.close()


async def test_properties_answer_from_description_without_io(rs: MockDeployment) -> None:
    p = rs.hosts[0]
    client = MongoClient(f"mongodb://{p}/?replicaSet=rs", **FAST)
    try:
        await client.admin.command("ping")
        served = dict(rs.served)
        assert client.address == rs.address(p)
        assert client.is_primary and not client.is_mongos
        assert rs.served == served
    finally:
        client.close()


def test_properties_outside_an_event_loop(rs: MockDeployment) -> None:
    p, s1 = rs.hosts[0], rs.hosts[1]
    client = MongoClient(f"mongodb://{s1}/?replicaSet=rs", **FAST)
    try:
        assert client.address == rs.address(p)
        assert client.primary == rs.address(p)

        async def use() -> None:
            await client.db.c.insert_one({"x": 1})
            await _wait_for(lambda: len(client.nodes) == 4)
            # Monitors created before opening started with the loop.
            assert all(s.monitor._task is not None for s in client._topology.servers.values())

        asyncio.run(use())
    finally:
        client.close()


async def test_no_primary_times_out() -> None:
    d = MockDeployment(["secondary", "secondary"])
    try:
        client = MongoClient(f"mongodb://{d.hosts[0]}/?replicaSet=rs", heartbeatFrequencyMS=500,
                             serverSelectionTimeoutMS=800, connectTimeoutMS=500)
        try:
            start = time.monotonic()
            with pytest.raises(ServerSelectionTimeoutError) as info:
                client.is_primary
            assert 0.7 < time.monotonic() - start < 3
            assert "No primary available for writes" in str(info.value)
            # The discovery's results are applied: both secondaries are known.
            assert client.secondaries == {d.address(h) for h in d.hosts}
        finally:
            client.close()
    finally:
        d.close()


async def test_unreachable_seed_raises_within_timeout() -> None:
    client = MongoClient("mongodb://localhost:1/?serverSelectionTimeoutMS=500&connectTimeoutMS=200")
    try:
        for prop in ("address", "is_primary", "is_mongos"):
            start = time.monotonic()
            with pytest.raises(ServerSelectionTimeoutError) as info:
                getattr(client, prop)
            elapsed = time.monotonic() - start
            assert 0.4 < elapsed < 2.0, elapsed
            text = str(info.value)
            assert "localhost:1" in text
            assert "Timeout: 0.5s" in text and "Topology Description: <TopologyDescription" in text
        assert client.primary is None and client.nodes == frozenset()
    finally:
        client.close()


async def test_mongoses() -> None:
    d = MockDeployment(["mongos", "mongos", "mongos"], mongos=True)
    try:
        client = MongoClient("mongodb://" + ",".join(d.hosts), **FAST)
        try:
            assert client.is_mongos is True  # waits
            assert client.is_primary is True
            assert client.topology_description.topology_type == TopologyType.Sharded
            with pytest.raises(InvalidOperation):
                client.address
            assert client.primary is None and client.secondaries == set()
        finally:
            client.close()
        single = MongoClient(f"mongodb://{d.hosts[1]}", **FAST)
        try:
            assert single.address == d.address(d.hosts[1])
            assert single.is_mongos
        finally:
            single.close()
    finally:
        d.close()


async def test_load_balanced_address_without_io() -> None:
    d = MockDeployment(["lb"], load_balanced=True)
    try:
        client = MongoClient(f"mongodb://{d.hosts[0]}/?loadBalanced=true", **FAST)
        try:
            assert client.address == d.address(d.hosts[0])
            assert sum(d.served.values()) == 0
            await client.db.c.insert_one({"x": 1})  # (also lets mockupdb's accept thread start)
            assert client.address == d.address(d.hosts[0])
        finally:
            client.close()
    finally:
        d.close()


async def _wait_for(pred: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


# -- SecantusDB ---------------------------------------------------------------------------------

def _host(dep: Any) -> str:
    if dep.name == "external":
        pytest.skip("needs the SecantusDB fixture")
    return f"{dep.host}:{dep.port}"


async def test_secantus_properties_before_any_operation(secantus_rs: Any) -> None:
    host = _host(secantus_rs)
    client = MongoClient(f"mongodb://{host}/", serverSelectionTimeoutMS=10000)
    try:
        assert client.is_primary is True
        assert client.is_mongos is False
        address = client.address
        assert address is not None
        assert client.primary == address
        assert client.topology_description.topology_type == TopologyType.ReplicaSetWithPrimary
        await client.admin.command("ping")
    finally:
        client.close()
    client = MongoClient(f"mongodb://{host}/?directConnection=true", serverSelectionTimeoutMS=10000)
    try:
        assert client.address == (secantus_rs.host, secantus_rs.port)
        assert client.topology_description.topology_type == TopologyType.Single
    finally:
        client.close()


class _Heartbeats(monitoring.ServerHeartbeatListener):
    def __init__(self) -> None:
        self.ok: List[Any] = []
        self.errors: List[Any] = []

    def started(self, event: Any) -> None:
        pass

    def succeeded(self, event: Any) -> None:
        self.ok.append(event)

    def failed(self, event: Any) -> None:
        self.errors.append(event)


async def test_secantus_streaming_monitor(secantus_rs: Any) -> None:
    host = _host(secantus_rs)
    hb = _Heartbeats()
    # maxAwaitTimeMS is heartbeatFrequencyMS (monitor.py), so the server answers every 0.5 s.
    client = MongoClient(f"mongodb://{host}/?directConnection=true", heartbeatFrequencyMS=500,
                         serverMonitoringMode="stream", serverSelectionTimeoutMS=10000,
                         event_listeners=[hb])
    try:
        await client.admin.command("ping")
        await _wait_for(lambda: sum(e.awaited for e in hb.ok) >= 2, timeout=10)
        assert hb.ok[0].awaited is False  # the handshake
        assert hb.ok[0].reply.document.get("topologyVersion") is not None
        monitor = next(iter(client._topology.servers.values())).monitor
        assert monitor is not None and monitor.streaming
        # The RTT task has its own connection and keeps sampling.
        await _wait_for(lambda: monitor._rtt_conn is not None and len(monitor._rtt.samples) >= 3, timeout=10)
        assert monitor._rtt_task is not None and not monitor._rtt_task.done()
        sd = client.topology_description.server_descriptions()[(secantus_rs.host, secantus_rs.port)]
        assert sd.round_trip_time is not None and sd.round_trip_time < 1.0
        assert not hb.errors
    finally:
        client.close()


async def test_secantus_poll_mode(secantus_rs: Any) -> None:
    host = _host(secantus_rs)
    hb = _Heartbeats()
    client = MongoClient(f"mongodb://{host}/?directConnection=true", heartbeatFrequencyMS=500,
                         serverMonitoringMode="poll", serverSelectionTimeoutMS=10000,
                         event_listeners=[hb])
    try:
        await client.admin.command("ping")
        await _wait_for(lambda: len(hb.ok) >= 3, timeout=10)
        assert all(e.awaited is False for e in hb.ok)
        monitor = next(iter(client._topology.servers.values())).monitor
        assert monitor is not None and not monitor.streaming
        assert monitor._rtt_task is None and monitor._rtt_conn is None
    finally:
        client.close()
