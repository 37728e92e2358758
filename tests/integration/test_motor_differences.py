"""Motor's last differences (issue 10): each checked by running the same code through the real
Motor 3.7.1 and through amongo (``driver`` parameter), against SecantusDB and nx-27017.

Where amongo deliberately goes further than Motor (an empty sort in find_one_and_*; a client
used from another event loop; options amongo does not implement) the test says so and runs
amongo only; the README's "Differences from Motor" lists them.
"""
from __future__ import annotations

import asyncio

import pytest
from pymongo import ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import ConfigurationError, InvalidOperation

from amongo.motor_asyncio import AsyncIOMotorClient as AmongoClient

from ._crud_helpers import unique

motor_asyncio = pytest.importorskip("motor.motor_asyncio", reason="motor==3.7.1 is in the test extra")
MotorClient = motor_asyncio.AsyncIOMotorClient

DRIVERS = {"motor": MotorClient, "amongo": AmongoClient}
DB = "amongo_motor_diff"


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> type:
    return DRIVERS[request.param]


async def _coll(client_cls: type, server, n: int = 10):
    client = client_cls(server.uri, serverSelectionTimeoutMS=20000)
    coll = client[DB][unique()]
    if n:
        await coll.insert_many([{"i": i} for i in range(n)])
    return client, coll


# -- empty sort ------------------------------------------------------------------------------

@pytest.mark.parametrize("empty", [[], {}], ids=["list", "dict"])
async def test_empty_sort_in_find_is_no_sort(driver, server, empty):
    client, coll = await _coll(driver, server)
    try:
        docs = await coll.find({}, sort=empty).to_list(None)
        assert sorted(d["i"] for d in docs) == list(range(10))
        assert (await coll.find_one({"i": 3}, sort=empty))["i"] == 3
        assert [d["i"] for d in await coll.find({"i": {"$lt": 3}}, sort=empty).sort("i", -1).to_list(None)] == [2, 1, 0]
    finally:
        client.close()


async def test_empty_dict_sort_in_update_one(driver, server):
    client, coll = await _coll(driver, server)
    try:
        res = await coll.update_one({"i": 4}, {"$set": {"x": 1}}, sort={})
        assert res.matched_count == 1
    finally:
        client.close()


@pytest.mark.parametrize("empty", [[], {}, ()], ids=["list", "dict", "tuple"])
async def test_empty_sort_everywhere_amongo(server, empty):
    """amongo: an empty sort is no sort in every method taking one. (Motor raises ValueError
    for find_one_and_*(sort=[]) and cursor.sort([]), TypeError for update_one(sort=[]).)"""
    client, coll = await _coll(AmongoClient, server)
    try:
        got = await coll.find_one_and_update({"i": 1}, {"$set": {"x": 1}}, sort=empty,
                                             return_document=ReturnDocument.AFTER)
        assert got["i"] == 1 and got["x"] == 1
        got = await coll.find_one_and_replace({"i": 2}, {"i": 2, "y": 1}, sort=empty)
        assert got["i"] == 2
        got = await coll.find_one_and_delete({"i": 3}, sort=empty)
        assert got["i"] == 3
        assert (await coll.update_one({"i": 4}, {"$set": {"x": 2}}, sort=empty)).modified_count == 1
        assert (await coll.replace_one({"i": 5}, {"i": 5, "z": 1}, sort=empty)).modified_count == 1
        res = await coll.bulk_write([UpdateOne({"i": 6}, {"$set": {"x": 3}}, sort=empty),
                                     ReplaceOne({"i": 7}, {"i": 7, "z": 2}, sort=empty)])
        assert res.modified_count == 2
        cursor = coll.find({}).sort("i", -1).sort(empty)  # an empty sort clears the sort
        assert sorted(d["i"] for d in await cursor.to_list(None)) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    finally:
        client.close()


# -- cursor.alive after close() ---------------------------------------------------------------

async def test_cursor_alive_after_close(driver, server):
    client, coll = await _coll(driver, server)
    try:
        cursor = coll.find({}, batch_size=3).sort("i", 1)
        assert (await cursor.next())["i"] == 0
        assert cursor.alive
        await cursor.close()
        # the documents already buffered are still there, as in PyMongo/Motor
        assert cursor.alive
        assert [d["i"] async for d in cursor] == [1, 2]
        assert not cursor.alive

        unstarted = coll.find({})
        await unstarted.close()
        assert not unstarted.alive
        assert await unstarted.to_list(None) == []  # a closed cursor never runs its query
    finally:
        client.close()


# -- HOST / PORT ------------------------------------------------------------------------------

async def test_host_port_are_class_constants(driver, server):
    client = driver(server.uri, serverSelectionTimeoutMS=20000)
    try:
        await client.admin.command("ping")
        assert (client.HOST, client.PORT) == ("localhost", 27017)
        assert client.address == (server.host, server.port) or server.name == "external"
    finally:
        client.close()
    assert (AmongoClient.HOST, AmongoClient.PORT) == ("localhost", 27017)  # plain class constants


# -- another event loop -------------------------------------------------------------------------

def _run_in_new_loop(coro) -> object:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 30))
    finally:
        loop.close()


def test_client_used_from_another_event_loop(secantus_rs):
    """amongo binds a client to the loop it first runs on and says so, as PyMongo's
    AsyncMongoClient does (Motor runs PyMongo in threads, so it has no such limit)."""
    client = AmongoClient(secantus_rs.uri, serverSelectionTimeoutMS=20000)
    coll = client[DB][unique()]
    try:
        _run_in_new_loop(coll.insert_one({"a": 1}))
        with pytest.raises(InvalidOperation, match="Cannot use AsyncIOMotorClient in different event loop") as info:
            _run_in_new_loop(coll.find_one({}))
        assert isinstance(info.value, RuntimeError)  # what PyMongo raises, for code catching that
        with pytest.raises(InvalidOperation, match="different event loop"):
            _run_in_new_loop(coll.find({}).to_list(None))
    finally:
        client.close()


def test_client_created_in_a_loop_used_from_another(secantus_rs):
    async def make() -> AmongoClient:
        c = AmongoClient(secantus_rs.uri, serverSelectionTimeoutMS=20000)
        await c.admin.command("ping")
        return c

    client = _run_in_new_loop(make())
    try:
        with pytest.raises(InvalidOperation, match="different event loop"):
            _run_in_new_loop(client.admin.command("ping"))
    finally:
        client.close()


# -- options amongo does not implement ----------------------------------------------------------

def test_unknown_keyword_option_raises_configuration_error(driver):
    with pytest.raises(ConfigurationError, match="Unknown option"):
        driver("mongodb://localhost:27017", connect=False, bogus_option=1)
    with pytest.raises(ConfigurationError, match="Unknown option"):
        driver("mongodb://localhost:27017", connect=False, maxPoolSizee=5)


@pytest.mark.parametrize("kwargs,what", [
    ({"auto_encryption_opts": object()}, "client-side field-level encryption"),
    ({"proxyHost": "localhost"}, "SOCKS5 proxy"),
    ({"server_selector": lambda sds: sds}, "server_selector"),
    ({"enableOverloadRetargeting": True}, "enableOverloadRetargeting"),
])
def test_unimplemented_options_raise_configuration_error(kwargs, what):
    """Never silently ignored: a client asked to encrypt must not write plaintext. (Motor
    needs pymongocrypt to build AutoEncryptionOpts; with a bogus object it raises TypeError.)"""
    with pytest.raises(ConfigurationError, match=what):
        AmongoClient("mongodb://localhost:27017", connect=False, **kwargs)
    AmongoClient("mongodb://localhost:27017", connect=False, auto_encryption_opts=None,
                 enableOverloadRetargeting=False).close()


def test_unimplemented_uri_option_raises_configuration_error():
    with pytest.raises(ConfigurationError, match="SOCKS5 proxy"):
        AmongoClient("mongodb://localhost:27017/?proxyHost=localhost&proxyPort=1080", connect=False)


# -- an operation that is never awaited -------------------------------------------------------

async def _count_soon(coll, want: int) -> int:
    for _ in range(100):
        n = await coll.count_documents({})
        if n == want:
            return n
        await asyncio.sleep(0.05)
    return n


async def test_unawaited_operation(driver, server):
    """Motor schedules an operation when it is called (a Future); amongo's methods are
    coroutines, as PyMongo's async API's, and run when awaited: an un-awaited call does
    nothing and Python warns "coroutine ... was never awaited" (README: "Differences from
    Motor"; scheduling every operation as a Task measured +17-45 us CPU per find_one).
    ``asyncio.create_task(...)`` is the fire-and-forget form on both."""
    import gc
    import warnings

    client, coll = await _coll(driver, server, n=0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            coll.insert_one({"fire": "and forget"})  # not awaited
            gc.collect()
        if driver is MotorClient:
            assert await _count_soon(coll, 1) == 1
        else:
            await asyncio.sleep(0.2)
            assert await coll.count_documents({}) == 0
            assert any(issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message) for w in caught)
        task = asyncio.ensure_future(coll.insert_one({"explicit": "task"}))
        await asyncio.sleep(0)
        assert await _count_soon(coll, 2 if driver is MotorClient else 1) >= 1
        await task
    finally:
        client.close()
