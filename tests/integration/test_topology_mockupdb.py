"""SDAM monitors, discovery and server selection against mockupdb servers (and SecantusDB).

mockupdb serves from its own threads; the client under test runs on the test's event loop.
Every mock answers ``hello``/``isMaster`` from a shared, mutable role table, so a test can
step a primary down and elect another while a workload runs.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest
from bson.objectid import ObjectId
from pymongo import monitoring
from pymongo.errors import InvalidOperation, NotPrimaryError, ServerSelectionTimeoutError
from pymongo.read_preferences import ReadPreference

from amongo.client import MongoClient
from amongo.topology.description import TopologyType

mockupdb = pytest.importorskip("mockupdb")
from mockupdb import MockupDB, OpMsg  # noqa: E402

pytestmark = pytest.mark.integration

FAST = dict(heartbeatFrequencyMS=500, serverSelectionTimeoutMS=5000, connectTimeoutMS=2000)


class MockDeployment:
    """Mock servers whose hello replies follow ``roles`` (host -> role)."""

    def __init__(self, roles: List[str], *, set_name: Optional[str] = "rs", mongos: bool = False,
                 load_balanced: bool = False) -> None:
        self.servers: List[MockupDB] = []
        self.hosts: List[str] = []
        for _ in roles:
            s = MockupDB()
            port = s.run()
            self.servers.append(s)
            self.hosts.append(f"localhost:{port}")
        self.roles: Dict[str, str] = dict(zip(self.hosts, roles))
        self.set_name = set_name
        self.mongos = mongos
        self.load_balanced = load_balanced
        self.election_id = ObjectId()
        self.served: Dict[str, int] = {h: 0 for h in self.hosts}
        self.not_primary_once: set = set()
        for s, h in zip(self.servers, self.hosts):
            s.autoresponds(lambda r, h=h: self._other(h, r))
            s.autoresponds(OpMsg("ismaster"), lambda r, h=h: r.replies(self.hello(h)))
            s.autoresponds(OpMsg("hello"), lambda r, h=h: r.replies(self.hello(h)))

    def close(self) -> None:
        for s in self.servers:
            s.stop()

    def address(self, host: str) -> tuple:
        name, port = host.rsplit(":", 1)
        return (name, int(port))

    def hello(self, host: str) -> Dict[str, Any]:
        role = self.roles[host]
        doc: Dict[str, Any] = {
            "ok": 1, "minWireVersion": 0, "maxWireVersion": 21, "helloOk": True,
            "logicalSessionTimeoutMinutes": 30, "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48000000, "maxWriteBatchSize": 100000,
        }
        if role == "down":
            return {"ok": 0, "errmsg": "down", "code": 91}
        if self.mongos:
            doc.update(ismaster=True, isWritablePrimary=True, msg="isdbgrid")
            return doc
        if self.load_balanced:
            doc.update(ismaster=True, isWritablePrimary=True, msg="isdbgrid", serviceId=ObjectId())
            return doc
        members = [h for h in self.hosts if self.roles[h] in ("primary", "secondary")]
        primary = next((h for h in self.hosts if self.roles[h] == "primary"), None)
        doc.update(
            setName=self.set_name, hosts=members, me=host, setVersion=1,
            arbiters=[h for h in self.hosts if self.roles[h] == "arbiter"],
            ismaster=role == "primary", isWritablePrimary=role == "primary",
            secondary=role in ("secondary", "hidden"),
        )
        if primary:
            doc["primary"] = primary
        if role == "primary":
            doc["electionId"] = self.election_id
        if role == "arbiter":
            doc["arbiterOnly"] = True
        if role == "hidden":
            doc["hidden"] = True
        return doc

    def _other(self, host: str, r: Any) -> bool:
        name = r.command_name
        self.served[host] += 1
        role = self.roles[host]
        if name in ("insert", "update", "delete"):
            if host in self.not_primary_once:
                self.not_primary_once.discard(host)
                return r.command_err(10107, "not primary")
            if role != "primary" and not self.mongos and not self.load_balanced:
                return r.command_err(10107, "not primary")
            return r.replies({"ok": 1, "n": 1})
        if name == "find":
            return r.replies({"ok": 1, "cursor": {"id": 0, "ns": "db.c", "firstBatch": [{"served_by": host}]}})
        if r.flags & 2:  # moreToCome (the client's endSessions at close): no reply
            return True
        return r.replies({"ok": 1})

    def elect(self, new_primary: str) -> None:
        for h, role in self.roles.items():
            if role == "primary":
                self.roles[h] = "secondary"
        self.roles[new_primary] = "primary"
        self.election_id = ObjectId()


@pytest.fixture
def rs() -> Iterator[MockDeployment]:
    d = MockDeployment(["primary", "secondary", "secondary", "arbiter", "hidden"])
    try:
        yield d
    finally:
        d.close()


async def _wait_for(pred: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def test_rs_discovery_from_one_seed(rs: MockDeployment) -> None:
    p, s1, s2, a, hidden = rs.hosts
    client = MongoClient(f"mongodb://{s1}/?replicaSet=rs", **FAST)
    try:
        await client.db.c.insert_one({"x": 1})
        await _wait_for(lambda: len(client.nodes) == 4)
        assert client.primary == rs.address(p)
        assert client.secondaries == {rs.address(s1), rs.address(s2)}
        assert client.arbiters == {rs.address(a)}
        assert client.nodes == frozenset(rs.address(h) for h in (p, s1, s2, a))
        assert rs.address(hidden) not in client.nodes
        assert client.topology_description.topology_type == TopologyType.ReplicaSetWithPrimary
        assert client.is_primary and not client.is_mongos
        assert client.address == rs.address(p)
        assert client._session_timeout_minutes() == 30
        # Reads with a secondary read preference go to a secondary.
        coll = client.db.get_collection("c", read_preference=ReadPreference.SECONDARY)
        for _ in range(6):
            doc = await coll.find_one({})
            assert doc["served_by"] in (s1, s2)
    finally:
        client.close()
        await asyncio.sleep(0)


async def test_discovery_without_replica_set_name(rs: MockDeployment) -> None:
    p = rs.hosts[0]
    client = MongoClient(f"mongodb://{rs.hosts[1]}", **FAST)
    try:
        await client.db.c.insert_one({"x": 1})
        assert client.primary == rs.address(p)
        assert client.topology_description.topology_type == TopologyType.ReplicaSetWithPrimary
    finally:
        client.close()


async def test_failover_while_workload_runs(rs: MockDeployment) -> None:
    p, s1 = rs.hosts[0], rs.hosts[1]
    client = MongoClient(f"mongodb://{p}/?replicaSet=rs", **FAST)
    try:
        await client.db.c.insert_one({"x": 0})
        assert client.primary == rs.address(p)
        stop = False
        errors: List[BaseException] = []
        done = 0

        async def workload() -> None:
            nonlocal done
            while not stop:
                try:
                    await client.db.c.insert_one({"x": 1})
                    done += 1
                except Exception as exc:  # noqa: BLE001
                    errors.append(exc)
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(workload())
        await asyncio.sleep(0.3)
        rs.elect(s1)
        await _wait_for(lambda: client.primary == rs.address(s1))
        before = rs.served[s1]
        await asyncio.sleep(0.5)
        stop = True
        await task
        assert rs.served[s1] > before  # writes resumed on the new primary
        # Retryable writes hide the step-down; at most one error may surface.
        assert len(errors) <= 1, errors
    finally:
        client.close()


async def test_not_writable_primary_marks_unknown(rs: MockDeployment) -> None:
    p, s1 = rs.hosts[0], rs.hosts[1]
    client = MongoClient(f"mongodb://{p}/?replicaSet=rs&retryWrites=false", **FAST)
    try:
        await client.db.c.insert_one({"x": 0})
        rs.elect(s1)
        rs.not_primary_once.add(p)
        with pytest.raises(NotPrimaryError):
            await client.db.c.insert_one({"x": 1})
        sd = client.topology_description.server_descriptions().get(rs.address(p))
        # The error marked the old primary Unknown (or its monitor already saw it step down).
        assert sd is not None and not sd.is_writable
        # The next op waits for the new primary.
        await client.db.c.insert_one({"x": 2})
        assert client.primary == rs.address(s1)
    finally:
        client.close()


async def test_several_mongoses() -> None:
    d = MockDeployment(["mongos", "mongos", "mongos"], mongos=True)
    try:
        client = MongoClient("mongodb://" + ",".join(d.hosts), localThresholdMS=1000, **FAST)
        try:
            for _ in range(3):
                await client.db.c.insert_one({"x": 1})
            await _wait_for(lambda: len(client.nodes) == 3)
            assert client.topology_description.topology_type == TopologyType.Sharded
            assert client.is_mongos
            with pytest.raises(InvalidOperation):
                client.address
            before = dict(d.served)
            await asyncio.gather(*(client.db.c.insert_one({"x": i}) for i in range(60)))
            used = [h for h in d.hosts if d.served[h] > before[h]]
            assert len(used) >= 2, d.served
        finally:
            client.close()
    finally:
        d.close()


async def test_load_balanced() -> None:
    d = MockDeployment(["lb"], load_balanced=True)
    try:
        client = MongoClient(f"mongodb://{d.hosts[0]}/?loadBalanced=true", **FAST)
        try:
            td = client.topology_description
            assert td.topology_type == TopologyType.LoadBalanced
            await client.db.c.insert_one({"x": 1})
            assert client.address == d.address(d.hosts[0])
            topology = client._topology
            assert all(s.monitor is None for s in topology.servers.values())
        finally:
            client.close()
    finally:
        d.close()


async def test_selection_timeout_message() -> None:
    client = MongoClient("mongodb://localhost:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=200")
    try:
        with pytest.raises(ServerSelectionTimeoutError) as info:
            await client.db.c.insert_one({"x": 1})
        text = str(info.value)
        assert "Timeout: 0.3s" in text and "Topology Description: <TopologyDescription" in text
    finally:
        client.close()


class _Recorder(monitoring.ServerListener, monitoring.TopologyListener, monitoring.ServerHeartbeatListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def opened(self, event: Any) -> None:
        self.events.append(event)

    def description_changed(self, event: Any) -> None:
        self.events.append(event)

    def closed(self, event: Any) -> None:
        self.events.append(event)

    def started(self, event: Any) -> None:
        self.events.append(event)

    def succeeded(self, event: Any) -> None:
        self.events.append(event)

    def failed(self, event: Any) -> None:
        self.events.append(event)


async def test_sdam_events_reach_listeners(rs: MockDeployment) -> None:
    rec = _Recorder()
    client = MongoClient(f"mongodb://{rs.hosts[0]}/?replicaSet=rs", event_listeners=[rec], **FAST)
    try:
        await client.db.c.insert_one({"x": 1})
        await _wait_for(lambda: len(client.nodes) == 4)
        await client._topology.close()
        kinds = {type(e).__name__ for e in rec.events}
        for k in ("TopologyOpenedEvent", "TopologyDescriptionChangedEvent", "ServerOpeningEvent",
                  "ServerDescriptionChangedEvent", "ServerHeartbeatStartedEvent",
                  "ServerHeartbeatSucceededEvent", "ServerClosedEvent", "TopologyClosedEvent"):
            assert k in kinds, (k, kinds)
        ok = [e for e in rec.events if isinstance(e, monitoring.ServerHeartbeatSucceededEvent)]
        assert ok[0].reply.document["setName"] == "rs" and ok[0].awaited is False
    finally:
        client.close()


# -- SecantusDB -------------------------------------------------------------------------------

async def test_secantus_discovery(secantus_rs: Any) -> None:
    if secantus_rs.name == "external":
        pytest.skip("needs the SecantusDB fixture")
    host = f"{secantus_rs.host}:{secantus_rs.port}"
    client = MongoClient(f"mongodb://{host}/", serverSelectionTimeoutMS=10000)
    try:
        await client.admin.command("ping")
        td = client.topology_description
        assert td.topology_type == TopologyType.ReplicaSetWithPrimary, td
        assert client.primary is not None
    finally:
        client.close()
    client = MongoClient(f"mongodb://{host}/?directConnection=true", serverSelectionTimeoutMS=10000)
    try:
        await client.admin.command("ping")
        assert client.topology_description.topology_type == TopologyType.Single
        assert client._is_direct_single(None)
    finally:
        client.close()
