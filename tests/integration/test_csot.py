"""Client-side operations timeout (CSOT): ``timeoutMS`` (URI / client keyword) and
``with pymongo.timeout(s):`` bound server selection, connection check-out, the round trip,
and the ``maxTimeMS`` sent to the server.

Error types are PyMongo 4.20's for the same stage (checked by running PyMongo's
``AsyncMongoClient`` against SecantusDB and the proxy): server selection →
``ServerSelectionTimeoutError``; check-out → ``WaitQueueTimeoutError``; socket read →
``NetworkTimeout``; the server's maxTimeMS expiring → ``ExecutionTimeout`` (code 50). Every one
has ``PyMongoError.timeout`` true.

Delays come from tests/proxy.py (``delay``) or from SecantusDB's ``failCommand``
``blockConnection``/``blockTimeMS``; the server-side expiry from its ``maxTimeAlwaysTimeOut``
fail point.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator, List

import pymongo
import pytest
from pymongo import monitoring
from pymongo import _csot as _pm_csot
from pymongo.errors import (
    ExecutionTimeout,
    InvalidOperation,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from amongo import _csot
from amongo.client import MongoClient
from proxy import Proxy
from servers import Deployment, free_port, require

pytestmark = pytest.mark.integration

DB = "amongo_csot"


@pytest.fixture
def upstream(secantus_rs: Deployment) -> Deployment:
    if secantus_rs.tls_ca_file or secantus_rs.username:
        pytest.skip("the CSOT proxy tests need a plain (no TLS, no auth) upstream")
    return secantus_rs


@pytest.fixture
def seeded(upstream: Deployment) -> Iterator[Deployment]:
    c = upstream.pymongo_client()
    try:
        c[DB].c.delete_many({})
        c[DB].c.insert_one({"x": 1})
    finally:
        c.close()
    yield upstream


class CommandLog(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: List[Any] = []
        self.remaining: List[Any] = []

    def started(self, event: Any) -> None:
        self.events.append(event)
        self.remaining.append(_pm_csot.remaining())

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def named(self, name: str) -> List[Any]:
        return [(e, r) for e, r in zip(self.events, self.remaining) if e.command_name == name]


class PoolLog(monitoring.ConnectionPoolListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def _add(self, event: Any) -> None:
        self.events.append(event)

    pool_created = pool_ready = pool_cleared = pool_closed = _add
    connection_created = connection_ready = connection_closed = _add
    connection_check_out_started = connection_check_out_failed = _add
    connection_checked_out = connection_checked_in = _add

    def of(self, cls: type) -> List[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def _pool(client: MongoClient) -> Any:
    servers = list(client._topology.servers.values())
    assert len(servers) == 1
    return servers[0].pool


async def _timed(coro: Any) -> Any:
    start = time.monotonic()
    try:
        await coro
    except Exception as exc:
        return exc, time.monotonic() - start
    raise AssertionError("expected a timeout error")


# ----------------------------------------------------------------------------- stages


async def test_server_selection_timeout_from_uri() -> None:
    port = free_port()
    client = MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true&timeoutMS=300",
        serverSelectionTimeoutMS=30000,
    )
    try:
        exc, took = await _timed(client[DB].c.find_one())
    finally:
        client.close()
    assert isinstance(exc, ServerSelectionTimeoutError), repr(exc)
    assert exc.timeout
    assert 0.25 <= took < 2.0, took


async def test_checkout_timeout(seeded: Deployment) -> None:
    async with Proxy(seeded.host, seeded.port) as p:
        client = MongoClient(p.uri(), timeoutMS=500, maxPoolSize=1)
        try:
            await client[DB].c.find_one()  # one connection, idle
            p.fail_next(command="find", action="delay", delay=1.5)

            async def hold() -> Any:
                with pymongo.timeout(5):
                    return await client[DB].c.find_one()

            holder = asyncio.ensure_future(hold())
            await asyncio.sleep(0.1)
            exc, took = await _timed(client[DB].c.find_one())
            assert isinstance(exc, WaitQueueTimeoutError), repr(exc)
            assert exc.timeout
            assert 0.4 <= took < 1.3, took
            assert (await holder)["x"] == 1
        finally:
            client.close()


@pytest.mark.parametrize("how", ["client", "context"])
async def test_socket_read_timeout_then_drain_and_reuse(seeded: Deployment, how: str) -> None:
    pools = PoolLog()
    async with Proxy(seeded.host, seeded.port) as p:
        kw: dict = {"event_listeners": [pools]}
        if how == "client":
            kw["timeoutMS"] = 400
        client = MongoClient(p.uri(), **kw)
        try:
            await client[DB].c.find_one()
            p.fail_next(command="find", action="delay", delay=1.2)
            if how == "client":
                exc, took = await _timed(client[DB].c.find_one())
            else:
                with pymongo.timeout(0.4):
                    exc, took = await _timed(client[DB].c.find_one())
            assert isinstance(exc, NetworkTimeout), repr(exc)
            assert exc.timeout
            assert 0.35 <= took < 1.1, took
            pool = _pool(client)
            # The connection keeps its unread reply: the pool drains it in the background
            # instead of closing it; a CSOT timeout neither clears the pool nor marks the
            # server Unknown.
            assert pool.draining_connections == 1
            assert pools.of(monitoring.PoolClearedEvent) == []
            # The next operation succeeds at once (on another connection).
            start = time.monotonic()
            assert (await client[DB].c.find_one())["x"] == 1
            assert time.monotonic() - start < 0.5
            # Once the late reply arrived and was discarded, the connection is reused.
            for _ in range(300):
                if pool.draining_connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert pool.draining_connections == 0
            assert pools.of(monitoring.ConnectionClosedEvent) == []
            assert pool.available_connections == pool.total_connections == 2
            assert (await client[DB].c.find_one())["x"] == 1
        finally:
            client.close()


async def test_block_connection_fail_command_times_out(seeded: Deployment) -> None:
    require(seeded, "fail_command")
    admin = seeded.pymongo_client(direct=True)
    client = MongoClient(seeded.uri, timeoutMS=400, appname="csotBlockConnection")
    try:
        await client[DB].c.find_one()
        admin.admin.command(
            "configureFailPoint", "failCommand", mode={"times": 1},
            data={"failCommands": ["find"], "blockConnection": True, "blockTimeMS": 1500,
                  "appName": "csotBlockConnection"},
        )
        exc, took = await _timed(client[DB].c.find_one())
        assert isinstance(exc, NetworkTimeout), repr(exc)
        assert exc.timeout
        assert 0.35 <= took < 1.2, took
        assert (await client[DB].c.find_one())["x"] == 1
    finally:
        admin.admin.command("configureFailPoint", "failCommand", mode="off")
        admin.close()
        client.close()


async def test_server_side_max_time_expiry(seeded: Deployment) -> None:
    require(seeded, "fail_command")
    admin = seeded.pymongo_client(direct=True)
    client = MongoClient(seeded.uri, timeoutMS=5000)
    try:
        await client[DB].c.find_one()
        admin.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode={"times": 1})
        exc, took = await _timed(client[DB].c.find_one())
        assert isinstance(exc, ExecutionTimeout), repr(exc)
        assert exc.code == 50 and exc.timeout
        assert took < 1.0
    finally:
        admin.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="off")
        admin.close()
        client.close()


# ----------------------------------------------------------------------------- maxTimeMS


async def test_max_time_ms_within_remaining_budget(seeded: Deployment) -> None:
    log = CommandLog()
    client = MongoClient(seeded.uri, timeoutMS=2000, event_listeners=[log])
    try:
        await client[DB].c.insert_one({"y": 1})
        await client[DB].c.find_one({"y": 1})
        with pymongo.timeout(0.5):
            await client[DB].c.count_documents({})
    finally:
        client.close()
    for name, budget in (("insert", 2.0), ("find", 2.0), ("aggregate", 0.5)):
        seen = log.named(name)
        assert seen, f"no {name} command"
        for event, remaining in seen:
            mt = event.command.get("maxTimeMS")
            assert isinstance(mt, int) and 0 < mt <= budget * 1000, (name, event.command)
            # Stamped after every blocking step: never more than what was left at send time.
            assert remaining is not None and mt <= remaining * 1000 + 1, (name, mt, remaining)


async def test_no_max_time_ms_without_timeout(seeded: Deployment) -> None:
    log = CommandLog()
    client = MongoClient(seeded.uri, event_listeners=[log])
    try:
        await client[DB].c.find_one()
    finally:
        client.close()
    (event, remaining), = log.named("find")
    assert "maxTimeMS" not in event.command and remaining is None


async def test_timeout_ms_zero_means_no_timeout(seeded: Deployment) -> None:
    log = CommandLog()
    async with Proxy(seeded.host, seeded.port) as p:
        client = MongoClient(p.uri(timeoutMS="0"), event_listeners=[log])
        try:
            await client[DB].c.find_one()
            p.fail_next(command="find", action="delay", delay=0.8)
            start = time.monotonic()
            assert (await client[DB].c.find_one())["x"] == 1
            assert time.monotonic() - start >= 0.7
        finally:
            client.close()
    for event, remaining in log.named("find"):
        assert "maxTimeMS" not in event.command and remaining is None


# ----------------------------------------------------------------------------- helpers


def test_apply_max_time_subtracts_rtt_and_drops_wtimeout() -> None:
    cmd: dict = {"insert": "c", "writeConcern": {"w": 1, "wtimeout": 100}}
    _csot.apply_max_time(cmd, 1.0, 0.2)
    assert cmd["maxTimeMS"] == 800
    assert cmd["writeConcern"] == {"w": 1}
    cmd = {"find": "c", "maxTimeMS": 50}
    _csot.apply_max_time(cmd, 1.0, None)
    assert cmd["maxTimeMS"] == 50  # a smaller explicit maxTimeMS is kept
    cmd = {"find": "c", "writeConcern": {"wtimeout": 5}}
    _csot.apply_max_time(cmd, 1.0, 0.0)
    assert "writeConcern" not in cmd


def test_apply_max_time_fails_when_rtt_exceeds_remaining() -> None:
    cmd: dict = {"find": "c"}
    with pytest.raises(ExecutionTimeout) as info:
        _csot.apply_max_time(cmd, 0.01, 0.02)
    assert info.value.code == 50 and info.value.timeout
    assert "maxTimeMS" not in cmd


def test_expired_error_keeps_the_last_timeout() -> None:
    wq = WaitQueueTimeoutError("Timed out while checking out a connection")
    assert _csot.expired_error(wq) is wq
    err = _csot.expired_error(None)
    assert isinstance(err, ExecutionTimeout) and err.timeout


async def test_max_await_time_not_below_timeout_is_value_error() -> None:
    # (checked before server selection: no server is needed)
    client = MongoClient(f"mongodb://127.0.0.1:{free_port()}/?serverSelectionTimeoutMS=100")
    try:
        coll = client[DB].c
        with pymongo.timeout(0.005):
            with pytest.raises(ValueError, match="maxAwaitTimeMS"):
                await coll.find(cursor_type=pymongo.CursorType.TAILABLE_AWAIT).max_await_time_ms(5).to_list(None)
            with pytest.raises(ValueError, match="maxAwaitTimeMS"):
                await coll.aggregate([], maxAwaitTimeMS=10).to_list(None)
            with pytest.raises(ValueError, match="maxAwaitTimeMS"):
                async with coll.watch(max_await_time_ms=5):
                    pass
    finally:
        client.close()


async def test_change_stream_usable_after_timed_out_iteration(seeded: Deployment) -> None:
    require(seeded, "fail_command")
    admin = seeded.pymongo_client(direct=True)
    client = MongoClient(seeded.uri, appname="csotChangeStream")
    try:
        with pymongo.timeout(0.3):
            stream = client[DB].c.watch(max_await_time_ms=1)
        async with stream:
            admin.admin.command(
                "configureFailPoint", "failCommand", mode={"times": 1},
                data={"failCommands": ["getMore"], "blockConnection": True, "blockTimeMS": 600,
                      "appName": "csotChangeStream"},
            )
            exc, took = await _timed(stream.next())
            assert exc is not None and exc.timeout, repr(exc)
            assert took < 0.55, took  # the stream's 0.3 s deadline, not the 0.6 s block
            assert stream.alive
            await seeded_insert(client)
            doc = await stream.next()  # resumes, then finds the insert
            assert doc["operationType"] == "insert"
    finally:
        admin.admin.command("configureFailPoint", "failCommand", mode="off")
        admin.close()
        client.close()


async def seeded_insert(client: Any) -> None:
    await client[DB].c.insert_one({"x": 2})


# ----------------------------------------------------------------- withTransaction (CSOT)


def _fail_point(admin: Any, commands: List[str], block_ms: int, times: int, app: str) -> None:
    admin.admin.command(
        "configureFailPoint", "failCommand", mode={"times": times},
        data={"failCommands": commands, "blockConnection": True, "blockTimeMS": block_ms, "appName": app},
    )


def _fail_point_off(admin: Any) -> None:
    admin.admin.command("configureFailPoint", "failCommand", mode="off")
    admin.close()


@pytest.mark.parametrize("timeout_from", ["client", "context"])
async def test_with_transaction_aborts_when_the_first_command_times_out(seeded: Deployment, timeout_from: str) -> None:
    # The callback's first command (the one that starts the transaction) times out: the
    # deadline has passed, yet abortTransaction is still sent, under a fresh timeoutMS.
    require(seeded, "fail_command", "transactions")
    admin = seeded.pymongo_client(direct=True)
    log = CommandLog()
    kw: dict = {"timeoutMS": 300} if timeout_from == "client" else {}
    client = MongoClient(seeded.uri, appname="csotTxnAbort", event_listeners=[log], **kw)
    try:
        await client[DB].c.find_one()
        _fail_point(admin, ["insert"], 600, 1, "csotTxnAbort")
        coll = client[DB].c

        async def callback(s: Any) -> None:
            await coll.insert_one({"y": 1}, session=s)

        async with await client.start_session() as s:
            if timeout_from == "client":
                exc, took = await _timed(s.with_transaction(callback))
            else:
                with pymongo.timeout(0.3):
                    exc, took = await _timed(s.with_transaction(callback))
        assert exc.timeout, repr(exc)
        aborts = log.named("abortTransaction")
        assert len(aborts) == 1, [e.command_name for e in log.events]
        event, left = aborts[0]
        assert event.command["maxTimeMS"] > 0 and left is not None and left > 0.1, (event.command, left)
    finally:
        _fail_point_off(admin)
        client.close()


async def test_with_transaction_rejects_timeout_override_in_callback(seeded: Deployment) -> None:
    require(seeded, "transactions")
    log = CommandLog()
    client = MongoClient(seeded.uri, timeoutMS=500, event_listeners=[log])
    try:
        await client[DB].c.find_one()
        coll = client[DB].c
        del log.events[:], log.remaining[:]
        seen: List[BaseException] = []

        async def callback(s: Any) -> None:
            try:
                with pymongo.timeout(0.1):
                    await coll.insert_one({"y": 1}, session=s)
            except Exception as exc:
                seen.append(exc)
                raise

        async with await client.start_session() as s:
            with pytest.raises(InvalidOperation, match="timeoutMS"):
                await s.with_transaction(callback)
            assert len(seen) == 1 and isinstance(seen[0], InvalidOperation)
            assert log.events == []  # nothing sent: no insert, no abortTransaction
            # The same timeout (the withTransaction's own) is fine, and outside a
            # withTransaction a pymongo.timeout() is as usual.
            async def same(s: Any) -> None:
                with pymongo.timeout(0.5):
                    await coll.insert_one({"y": 2}, session=s)

            await s.with_transaction(same)
        with pymongo.timeout(0.1):
            await coll.insert_one({"y": 3})
    finally:
        client.close()


# ----------------------------------------------------------------- tailable awaitData (CSOT)


async def test_tailable_next_runs_under_one_deadline(seeded: Deployment) -> None:
    # timeoutMS 0.5 s, maxAwaitTimeMS 200: each getMore returns empty after 200 ms; the
    # getMores of one next() share the deadline (the later ones wait only what is left),
    # so next() times out instead of polling forever.
    log = CommandLog()
    client = MongoClient(seeded.uri, event_listeners=[log])
    try:
        db = client[DB]
        await db.drop_collection("csot_capped")
        await db.create_collection("csot_capped", capped=True, size=4096)
        await db.csot_capped.insert_one({"x": 1})
        with pymongo.timeout(0.5):
            cursor = db.csot_capped.find(cursor_type=pymongo.CursorType.TAILABLE_AWAIT).max_await_time_ms(200)
        assert (await cursor.next())["x"] == 1
        exc, took = await _timed(asyncio.wait_for(cursor.next(), 5))
        assert not isinstance(exc, asyncio.TimeoutError), "next() kept polling past its deadline"
        assert exc.timeout, repr(exc)
        assert took < 1.5, took
        get_mores = [e.command for e, _ in log.named("getMore")]
        assert len(get_mores) >= 2, get_mores
        assert get_mores[0]["maxTimeMS"] == 200
        assert get_mores[-1]["maxTimeMS"] < 200, get_mores  # the time left, below maxAwaitTimeMS
        await cursor.close()
    finally:
        client.close()


# ----------------------------------------------------------------- GridFS (CSOT)


def _bucket(client: Any, api: str) -> Any:
    if api == "motor":
        from amongo.motor_asyncio import AsyncIOMotorGridFSBucket

        return AsyncIOMotorGridFSBucket(client[DB], bucket_name="csotfs")
    from amongo.asynchronous.gridfs import AsyncGridFSBucket

    return AsyncGridFSBucket(client[DB], bucket_name="csotfs")


def _client(api: str, uri: str, **kw: Any) -> Any:
    if api == "motor":
        from amongo.motor_asyncio import AsyncIOMotorClient

        return AsyncIOMotorClient(uri, **kw)
    from amongo import AsyncMongoClient

    return AsyncMongoClient(uri, **kw)


@pytest.mark.parametrize("api", ["motor", "pymongo"])
@pytest.mark.parametrize("operation", ["upload", "download", "delete", "drop"])
async def test_gridfs_operation_under_one_deadline(seeded: Deployment, api: str, operation: str) -> None:
    # Two commands of the operation are blocked 200 ms each under a 300 ms timeoutMS: each
    # alone fits, the operation as a whole does not.
    require(seeded, "fail_command")
    app = f"csotGridFS{api}{operation}"
    admin = seeded.pymongo_client(direct=True)
    client = _client(api, seeded.uri, timeoutMS=300, appname=app)
    try:
        bucket = _bucket(client, api)
        await client[DB].drop_collection("csotfs.files")
        await client[DB].drop_collection("csotfs.chunks")
        file_id = await bucket.upload_from_stream("f", b"abc")  # (indexes made: not on the next upload)
        commands = {"upload": ["find", "insert"], "download": ["find"], "delete": ["delete"],
                    "drop": ["drop"]}[operation]
        if operation == "upload":
            await client[DB]["csotfs.files"].delete_many({})  # the next upload checks the indexes again
        _fail_point(admin, commands, 200, 2, app)
        if operation == "upload":
            exc, took = await _timed(bucket.upload_from_stream("g", b"abc"))
        elif operation == "download":
            exc, took = await _timed(_download(bucket, file_id))
        elif operation == "delete":
            exc, took = await _timed(bucket.delete(file_id))
        else:
            exc, took = await _timed(bucket.drop())
        assert exc.timeout, repr(exc)
        assert took < 0.6, took
    finally:
        _fail_point_off(admin)
        closed = client.close()
        if closed is not None:  # (the PyMongo-style client's close() is a coroutine)
            await closed


async def _download(bucket: Any, file_id: Any) -> bytes:
    stream = await bucket.open_download_stream(file_id)  # a stream keeps the deadline it was opened under
    return await stream.read()


# ----------------------------------------------------------------- connection establishment


async def test_handshake_under_timeout_is_not_bounded_by_socket_timeout(seeded: Deployment) -> None:
    # Every handshake takes 150 ms (proxy): socketTimeoutMS=50 would cut it, but under a
    # timeoutMS deadline socketTimeoutMS does not apply (CSOT).
    async with Proxy(seeded.host, seeded.port) as p:
        p.fail_always(command="isMaster", action="delay", delay=0.15)
        client = MongoClient(p.uri(), socketTimeoutMS=50)
        try:
            with pymongo.timeout(5):
                assert (await client[DB].c.find_one())["x"] == 1
        finally:
            client.close()
