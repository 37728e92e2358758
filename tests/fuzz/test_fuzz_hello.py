"""Fuzz targets ``hello_monitor_rs``, ``hello_monitor_single`` and ``hello_handshake``: hello
documents with fields of every wrong type, missing, huge or duplicated.

* fed to a **live monitor** (a Topology polling a fake server every 20 ms; replica-set and
  direct modes): one odd hello, then good ones. The monitor task must keep running, and once the
  good hello is back the server must be selectable with its pool ready, in a bounded time. A
  hello that legitimately removes the server from the replica set (its ``hosts`` or ``me`` say it
  is not a member), or makes the good hellos stale (a larger ``setVersion``), ends that
  topology; a new one is started for the next case.
* as the **handshake** of a pool connection: ``Connection.open`` returns or raises a
  ``pymongo.errors`` exception.
* every case: the event loop is never blocked for long (a 20,000-host ``hosts`` list included).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional, Tuple

import bson
import pytest
from bson.int64 import Int64
from bson.objectid import ObjectId
from hypothesis import given, strategies as st
from pymongo.errors import ServerSelectionTimeoutError

from amongo.connection import Connection, ConnectionOptions
from amongo.topology.description import ServerType
from amongo.topology.topology import Topology, TopologySettings
from fuzzlib import CASES, FakeServer, StallWatch, assert_user_error, fuzz_settings, raw_doc

MAX_OID = ObjectId("f" * 24)
MAX_I64 = Int64(2 ** 63 - 1)
#: the longest the event loop may be blocked by one hello (generous: a loaded 2-core machine)
MAX_STALL = 1.0

FIELDS = [
    "ok", "helloOk", "ismaster", "isWritablePrimary", "secondary", "arbiterOnly", "hidden", "passive",
    "setName", "setVersion", "electionId", "primary", "me", "hosts", "passives", "arbiters", "tags",
    "topologyVersion", "maxWireVersion", "minWireVersion", "logicalSessionTimeoutMinutes", "msg",
    "maxBsonObjectSize", "maxMessageSizeBytes", "maxWriteBatchSize", "compression", "saslSupportedMechs",
    "serviceId", "connectionId", "readOnly", "localTime", "lastWrite", "$clusterTime", "operationTime",
    "speculativeAuthenticate", "errmsg", "code",
]
HOST_STRINGS = st.sampled_from([
    "127.0.0.1:1", "127.0.0.1:65535", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:-1", "127.0.0.1:x",
    "[::1]:1", "[::1", "::1:2:3", "", ":", "127.0.0.1:", "a b:1", "127.0.0.1:1:2", "[]:1", "\x00:1",
    "127.0.0.1:99999999999999999999",
])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(), st.just(float("nan")),
    st.just(float("inf")), st.text(max_size=10), st.binary(max_size=10), st.builds(ObjectId),
    st.just(MAX_I64), st.just(bson.Decimal128("NaN")), st.just(bson.Timestamp(0, 0)),
    st.just(bson.MinKey()), st.just(bson.MaxKey()), st.just(bson.Regex("x")), st.just(bson.Code("f()")),
    st.just(bson.datetime.datetime(1970, 1, 1)), HOST_STRINGS,
)
wrong_values = st.one_of(
    scalars,
    st.lists(st.one_of(scalars, HOST_STRINGS), max_size=5),
    st.dictionaries(st.sampled_from(["processId", "counter", "opTime", "lastWriteDate", "ts", "t", "x", ""]),
                    scalars, max_size=3),
    st.just("h" * 100_000),                       # huge string
    st.just(["127.0.0.1:1"] * 3),                 # duplicated hosts
    st.just(list(range(200))),                    # long list of the wrong type
)
ops = st.lists(
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(["delete", "set", "set", "duplicate"]), wrong_values),
    min_size=1, max_size=4,
)


def base_hello(addr: Tuple[str, int], rs: bool) -> List[Tuple[str, Any]]:
    me = f"{addr[0]}:{addr[1]}"
    doc: List[Tuple[str, Any]] = [
        ("helloOk", True), ("ismaster", True), ("isWritablePrimary", True),
        ("topologyVersion", {"processId": ObjectId("6" * 24), "counter": Int64(1)}),
        ("maxBsonObjectSize", 16 * 1024 * 1024), ("maxMessageSizeBytes", 48_000_000),
        ("maxWriteBatchSize", 100_000), ("localTime", bson.datetime.datetime(2026, 1, 1)),
        ("logicalSessionTimeoutMinutes", 30), ("connectionId", 1), ("minWireVersion", 0),
        ("maxWireVersion", 21), ("readOnly", False),
    ]
    if rs:
        # the largest (electionId, setVersion): no valid fuzzed hello can make later good
        # hellos look stale
        doc += [("setName", "rs"), ("setVersion", MAX_I64), ("electionId", MAX_OID), ("hosts", [me]),
                ("primary", me), ("me", me),
                ("lastWrite", {"lastWriteDate": bson.datetime.datetime(2026, 1, 1)})]
    return doc + [("ok", 1.0)]


def odd_hello(addr: Tuple[str, int], rs: bool, edits: List[Tuple[str, str, Any]]) -> bytes:
    doc = base_hello(addr, rs)
    for field, op, value in edits:
        if op == "delete":
            doc = [(k, v) for k, v in doc if k != field]
        elif op == "set":
            doc = [(k, v) for k, v in doc if k != field] + [(field, value)]
        else:  # duplicate: the field twice (the original, then the odd value)
            doc.append((field, value))
    return raw_doc(doc)


class LiveMonitor:
    """A topology monitoring the fake server every 20 ms."""

    def __init__(self, server: FakeServer, rs: bool) -> None:
        self.server = server
        self.rs = rs
        self.topology: Optional[Topology] = None
        self.restarts = 0

    async def start(self) -> None:
        settings = TopologySettings(
            [self.server.address], replica_set_name="rs" if self.rs else None,
            direct_connection=not self.rs, heartbeat_frequency=0.02, min_heartbeat_frequency=0.01,
            server_monitoring_mode="poll", server_selection_timeout=5.0,
            connection_options=ConnectionOptions(connect_timeout=2.0))
        self.topology = Topology(settings)
        await self.topology.open()

    async def stop(self) -> None:
        if self.topology is not None:
            t, self.topology = self.topology, None
            tasks = t.close_nowait()
            await asyncio.gather(*tasks, return_exceptions=True)
            await t.close()
            assert all(task.done() for task in tasks)

    def monitor_alive(self) -> bool:
        srv = self.topology.servers.get(self.server.address) if self.topology is not None else None
        return bool(srv is not None and srv.monitor is not None and srv.monitor._task is not None
                    and not srv.monitor._task.done())

    async def case(self, odd: bytes) -> None:
        addr = self.server.address
        if not self.monitor_alive():
            # (an earlier case failed and killed it: each case starts from a live monitor, so
            # hypothesis can shrink a failure to the hello that causes it)
            await self.stop()
            await self.start()
            self.server.hello = lambda conn, req: raw_doc(base_hello(addr, self.rs))
            await self.topology.select_server()
        assert self.topology is not None
        t = self.topology
        served: List[str] = []

        def hello(conn: Any, req: Dict[str, Any]) -> Any:
            if not served:
                served.append("odd")
                return odd
            served.append("good")
            return raw_doc(base_hello(addr, self.rs))

        self.server.hello = hello
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        async with StallWatch() as watch:
            while len(served) < 3:  # the odd hello, then two good ones were answered
                assert loop.time() < deadline, f"the monitor stopped checking (served {served})"
                await asyncio.sleep(0.005)
                if addr not in t.servers:
                    break
        assert watch.max_gap < MAX_STALL, f"the event loop was blocked {watch.max_gap:.2f}s by one hello"
        if addr not in t.servers:
            # The odd hello said this server is not a member: legitimately removed.
            self.restarts += 1
            await self.stop()
            await self.start()
            return
        srv = t.servers[addr]
        assert srv.monitor is not None and srv.monitor._task is not None and not srv.monitor._task.done(), \
            "the monitor task died"
        try:
            selected = await t.select_server()
        except ServerSelectionTimeoutError:
            sd = t.description.servers.get(addr)
            if sd is not None and "stale" in str(sd.error):
                # The odd hello validly claimed a newer (electionId, setVersion) than the good
                # ones (e.g. a float setVersion above 2**63): SDAM rightly calls them stale.
                self.restarts += 1
                await self.stop()
                await self.start()
                return
            raise
        assert selected.address == addr
        sd = t.description.servers[addr]
        assert sd.server_type == (ServerType.RSPrimary if self.rs else ServerType.Standalone), sd
        assert not srv.pool.paused, "the pool stayed paused after a good hello"


@pytest.fixture(scope="module", params=["rs", "single"])
def live(request: pytest.FixtureRequest, runner: Any) -> Any:
    server = runner.run(FakeServer().start())
    lm = LiveMonitor(server, request.param == "rs")
    runner.run(lm.start())
    yield lm
    runner.run(lm.stop())
    runner.run(server.close())


@fuzz_settings(120)
@given(edits=ops)
def test_hello_to_live_monitor(live: LiveMonitor, runner: Any, edits: List[Tuple[str, str, Any]]) -> None:
    CASES["hello_monitor_rs" if live.rs else "hello_monitor_single"] += 1
    odd = odd_hello(live.server.address, live.rs, edits)
    runner.run(live.case(odd))


@pytest.fixture(scope="module")
def handshake_server(runner: Any) -> Any:
    server = runner.run(FakeServer().start())
    yield server
    runner.run(server.close())


@fuzz_settings(120)
@given(edits=ops, rs=st.booleans())
def test_hello_as_pool_handshake(handshake_server: FakeServer, runner: Any,
                                 edits: List[Tuple[str, str, Any]], rs: bool) -> None:
    CASES["hello_handshake"] += 1
    odd = odd_hello(handshake_server.address, rs, edits)
    handshake_server.hello = lambda conn, req: odd

    async def case() -> None:
        try:
            conn = await Connection.open(handshake_server.address, ConnectionOptions(connect_timeout=2.0))
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc)
        else:
            conn.close()

    runner.run(case())


@pytest.mark.parametrize("rs", [True, False])
def test_huge_hosts_list_does_not_stall(runner: Any, rs: bool) -> None:
    """A hello with 20,000 hosts (three addresses, duplicated; plus 15,000 distinct ones
    when not a replica set) is processed without blocking the event loop for long (linear, not quadratic)."""
    hosts = [f"127.0.0.1:{1 + i % 3}" for i in range(20_000)]
    if not rs:  # (in a replica set each distinct host would get a monitor and a pool)
        hosts += [f"127.0.0.{1 + i // 250}:{2 + i % 250}" for i in range(15_000)]

    async def case() -> None:
        server = await FakeServer().start()
        lm = LiveMonitor(server, rs)
        doc = base_hello(server.address, rs)
        if rs:
            me = f"127.0.0.1:{server.port}"
            doc = [(k, (hosts + [me]) if k == "hosts" else v) for k, v in doc]
        else:
            doc.insert(0, ("hosts", hosts))
        big = raw_doc(doc)
        server.hello = lambda conn, req: big
        await lm.start()
        try:
            start = time.monotonic()
            async with StallWatch() as watch:
                while server.served["ismaster"] + server.served["hello"] < 3 and time.monotonic() - start < 20:
                    await asyncio.sleep(0.01)
            assert server.served["ismaster"] + server.served["hello"] >= 3
            assert watch.max_gap < 2.0, f"one hello with {len(hosts)} hosts blocked the loop {watch.max_gap:.2f}s"
        finally:
            await lm.stop()
            await server.close()
        CASES["hello_huge_hosts"] += 1

    runner.run(case(), 120)
