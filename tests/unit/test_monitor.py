"""Unit tests of the topology's I/O logic that need no server: monitor options and waits,
error handling, the selection cache, SRV seeding and polling (fake resolver)."""
from __future__ import annotations

import asyncio
import time
from typing import Any, List

import pytest
from bson.objectid import ObjectId
from pymongo.errors import AutoReconnect, ConfigurationError, NotPrimaryError, ServerSelectionTimeoutError
from pymongo.read_preferences import ReadPreference

from amongo.connection import ConnectionOptions
from amongo.topology.description import ServerDescription, ServerType, TopologyType
from amongo.topology.monitor import Monitor, monitor_connection_options, streaming_enabled
from amongo.topology.topology import Topology, TopologySettings

A = ("a.example", 27017)
B = ("b.example", 27017)


def _hello(me: Any, primary: bool = True, **extra: Any) -> ServerDescription:
    doc = {
        "ok": 1, "setName": "rs", "hosts": [f"{A[0]}:{A[1]}", f"{B[0]}:{B[1]}"],
        "isWritablePrimary": primary, "secondary": not primary, "minWireVersion": 0,
        "maxWireVersion": 21, "me": f"{me[0]}:{me[1]}", "setVersion": 1,
        "logicalSessionTimeoutMinutes": 30,
    }
    if primary:
        doc["electionId"] = ObjectId()
    doc.update(extra)
    return ServerDescription.from_hello(me, doc, 0.001)


def _topology(**kw: Any) -> Topology:
    kw.setdefault("replica_set_name", "rs")
    kw.setdefault("server_selection_timeout", 0.3)
    return Topology(TopologySettings([A, B], **kw))


def test_monitor_connection_options() -> None:
    opts = ConnectionOptions(connect_timeout=3.0, socket_timeout=None, compressors=["zlib"], credential=object())
    m = monitor_connection_options(opts)
    assert m.credential is None and m.compressors == [] and m.socket_timeout == 3.0
    assert opts.credential is not None and opts.compressors == ["zlib"]


def test_streaming_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert streaming_enabled("stream") and not streaming_enabled("poll")
    monkeypatch.delenv("AWS_EXECUTION_ENV", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    monkeypatch.delenv("K_SERVICE", raising=False)
    monkeypatch.delenv("FUNCTION_NAME", raising=False)
    monkeypatch.delenv("VERCEL", raising=False)
    assert streaming_enabled("auto")
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.11")
    assert not streaming_enabled("auto")


async def test_monitor_wait_min_heartbeat_and_request() -> None:
    t = _topology(heartbeat_frequency=5.0, min_heartbeat_frequency=0.2)
    m = t._new_monitor(A)
    m._wakeup = asyncio.Event()
    loop = asyncio.get_running_loop()
    m._last_start = loop.time()
    m.request_check()
    start = loop.time()
    await m._wait()
    waited = loop.time() - start
    assert 0.15 <= waited < 1.0  # min heartbeat, not the full 5 s
    # A request while waiting wakes the monitor early.
    m._last_start = loop.time() - 1.0
    fut = asyncio.ensure_future(m._wait())
    await asyncio.sleep(0.05)
    assert not fut.done()
    m.request_check()
    await asyncio.wait_for(fut, 1.0)


async def test_apply_pools_and_events() -> None:
    t = _topology()
    t._opened = True
    t._apply(_hello(A))
    assert t.description.topology_type == TopologyType.ReplicaSetWithPrimary
    assert not t.servers[A].pool.paused
    assert t.servers[B].pool.paused
    gen = t.servers[A].pool.generation
    # A network error marks the server Unknown and clears its pool.
    t.handle_error(t.servers[A], AutoReconnect("boom"), gen)
    assert t.description.servers[A].server_type == ServerType.Unknown
    assert t.servers[A].pool.generation == gen + 1
    # A stale error (older generation) is ignored.
    t._apply(_hello(A))
    t.handle_error(t.servers[A], AutoReconnect("old"), gen)
    assert t.description.servers[A].server_type == ServerType.RSPrimary
    await t.close()


async def test_not_primary_marks_unknown_and_requests_check() -> None:
    t = _topology()
    t._opened = True
    t._apply(_hello(A))
    srv = t.servers[A]
    assert srv.monitor is not None and not srv.monitor._requested
    gen = srv.pool.generation
    t.handle_error(srv, NotPrimaryError("not primary", {"ok": 0, "code": 10107, "errmsg": "not primary"}), gen)
    assert t.description.servers[A].server_type == ServerType.Unknown
    assert srv.monitor._requested  # an immediate check was requested
    assert srv.pool.generation == gen  # not a shutdown code: the pool is kept
    await t.close()


async def test_selection_cache_and_wakeup() -> None:
    t = _topology()
    t._opened = True
    t._changed = asyncio.Event()
    t._apply(_hello(A))
    t._apply(_hello(B, primary=False))
    s1 = await t.select_server()
    assert s1.address == A
    rp = ReadPreference.SECONDARY
    assert (await t.select_server(rp)).address == B
    assert t._selection_cache  # cached until the description changes
    before = t.description
    t._apply(_hello(B, primary=False, tags={"x": "1"}))
    assert t.description is not before and not t._selection_cache
    # A waiter wakes when a suitable server appears.
    t2 = _topology(server_selection_timeout=5)
    t2._opened = True
    t2._changed = asyncio.Event()
    t2._sync_servers(None, t2.description)
    fut = asyncio.ensure_future(t2.select_server())
    await asyncio.sleep(0.05)
    assert not fut.done()
    t2._apply(_hello(A))
    assert (await asyncio.wait_for(fut, 1)).address == A
    await t.close()
    await t2.close()


async def test_selection_timeout_message() -> None:
    t = _topology()
    t._opened = True
    t._changed = asyncio.Event()
    t._sync_servers(None, t.description)
    with pytest.raises(ServerSelectionTimeoutError) as info:
        await t.select_server()
    assert "Timeout: 0.3s, Topology Description: <TopologyDescription" in str(info.value)
    await t.close()


class FakeResolver:
    def __init__(self, hosts: List[Any]) -> None:
        self.hosts = hosts

    async def srv(self, name: str) -> List[Any]:
        return list(self.hosts)

    async def txt(self, name: str) -> List[Any]:
        return [[b"replicaSet=rs0"]]


async def test_srv_seeding_and_polling() -> None:
    resolver = FakeResolver([("h1.test.example.com", 27017), ("h2.test.example.com", 27017)])
    t = Topology(TopologySettings(
        [], srv_fqdn="test.example.com", srv_resolver=resolver, srv_rescan_interval=0.05,
        server_selection_timeout=0.2,
    ))
    t._monitor_options.connect_timeout = 0.05
    await t.open()
    assert set(t.description.servers) == {("h1.test.example.com", 27017), ("h2.test.example.com", 27017)}
    assert t.srv_txt_options == {"replicaSet": "rs0"}
    assert t.description.replica_set_name == "rs0"
    assert t.description.topology_type == TopologyType.ReplicaSetNoPrimary
    # Polling stops for replica sets: the host list is not changed.
    resolver.hosts = [("h3.test.example.com", 27017)]
    await asyncio.sleep(0.2)
    assert ("h3.test.example.com", 27017) not in t.description.servers
    await t.close()


async def test_srv_polling_sharded_unknown() -> None:
    class NoTxt(FakeResolver):
        async def txt(self, name: str) -> List[Any]:
            return []

    resolver = NoTxt([("h1.test.example.com", 27017), ("h2.test.example.com", 27017)])
    t = Topology(TopologySettings([], srv_fqdn="test.example.com", srv_resolver=resolver,
                                  srv_rescan_interval=0.05, server_selection_timeout=0.2))
    t._monitor_options.connect_timeout = 0.05
    await t.open()
    assert t.description.topology_type == TopologyType.Unknown
    resolver.hosts = [("h2.test.example.com", 27017), ("h3.test.example.com", 27017)]
    end = time.monotonic() + 2
    while ("h3.test.example.com", 27017) not in t.description.servers and time.monotonic() < end:
        await asyncio.sleep(0.02)
    assert set(t.description.servers) == {("h2.test.example.com", 27017), ("h3.test.example.com", 27017)}
    assert set(t.servers) == set(t.description.servers)
    await t.close()


async def test_srv_failure_is_reported() -> None:
    resolver = FakeResolver([("evil.other.com", 27017)])
    t = Topology(TopologySettings([], srv_fqdn="test.example.com", srv_resolver=resolver,
                                  server_selection_timeout=0.2))
    with pytest.raises(ConfigurationError):
        await t.select_server()
    await t.close()
