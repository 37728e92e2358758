"""The PyMongo-style client's topology properties are awaitable, as in PyMongo's async client
(``await client.is_mongos``, ``await client.address``, ...; Beanie 2.1's migration test awaits
``db.client.is_mongos``), side by side with the real PyMongo 4.20 ``AsyncMongoClient``."""
from __future__ import annotations

import inspect
from typing import Any

import pytest
from pymongo import AsyncMongoClient as PyMongoClient
from pymongo.asynchronous.mongo_client import AsyncMongoClient as PyMongoClientClass

import amongo
from amongo.motor_asyncio import AsyncIOMotorClient

DRIVERS = {"pymongo": PyMongoClient, "amongo": amongo.AsyncMongoClient}
AWAITABLE = ("address", "primary", "secondaries", "arbiters", "is_primary", "is_mongos")


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Any:
    return DRIVERS[request.param]


@pytest.mark.parametrize("name", AWAITABLE)
def test_awaitable_exactly_where_pymongo_is(name):
    assert inspect.iscoroutinefunction(getattr(PyMongoClientClass, name).fget)  # (the reference)
    assert inspect.iscoroutinefunction(getattr(amongo.AsyncMongoClient, name).fget)
    # the Motor API keeps Motor's plain (blocking) properties
    assert not inspect.iscoroutinefunction(getattr(AsyncIOMotorClient, name).fget)
    assert not inspect.iscoroutinefunction(amongo.AsyncMongoClient.nodes.fget)


async def test_standalone(driver, nx):
    async with driver(nx.uri, serverSelectionTimeoutMS=20000) as client:
        assert await client.is_mongos is False
        assert await client.is_primary is True
        assert await client.address == nx.address
        assert await client.primary is None
        assert await client.secondaries == set() and await client.arbiters == set()
        assert client.nodes == frozenset({nx.address})


async def test_replica_set(driver, secantus_rs):
    async with driver(secantus_rs.uri, serverSelectionTimeoutMS=20000) as client:
        assert await client.is_mongos is False
        assert await client.is_primary is True
        address = await client.address
        assert address is not None and await client.primary == address
        assert address in client.nodes and await client.arbiters == set()


async def test_address_waits_for_discovery_instead_of_blocking(nx):
    # built outside any operation: the await runs server selection on the loop
    client = amongo.AsyncMongoClient(nx.uri, connect=False, serverSelectionTimeoutMS=20000)
    try:
        assert await client.address == nx.address
    finally:
        await client.close()
