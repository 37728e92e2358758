"""Regression tests for defects the reliability campaigns (tests/fuzz, the fault proxy suite)
found beyond issue 11's list."""
from __future__ import annotations

import pytest
from pymongo.errors import ConfigurationError

from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.uri import parse_host

SECRET = "Pw-s3cr3t-XYZZY"


@pytest.mark.parametrize("entity", [f"u:{SECRET}@127.0.0.1:1", f"u:{SECRET}@h:x", f"u:{SECRET}@[::1",
                                    f"u:{SECRET}@a b", f"%zz:{SECRET}@127.0.0.1:1",
                                    f"127.0.0.1:1/?tlsCertificateKeyFilePassword={SECRET}",
                                    f"127.0.0.1:1/?proxyPassword=AWS_SESSION_TOKEN:{SECRET}"])
def test_host_string_errors_do_not_echo_user_info(entity: str) -> None:
    """A ``user:password@host`` host string given without a scheme is refused without showing
    the password (found by the ``uri`` fuzz target)."""
    with pytest.raises(ConfigurationError) as info:
        parse_host(entity)
    assert SECRET not in str(info.value)
    assert "<redacted>" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        AsyncIOMotorClient(entity, connect=False)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("option", ["proxyPassword", "tlsCertificateKeyFilePassword", "authMechanismProperties"])
def test_bad_escape_in_a_secret_option_is_not_echoed(option: str) -> None:
    """``?proxyPassword=<secret>%zz``: the percent-escape error does not show the value
    (found by make fuzz)."""
    from amongo.uri import parse_uri

    value = f"AWS_SESSION_TOKEN:{SECRET}%zz" if option == "authMechanismProperties" else f"{SECRET}%zz"
    with pytest.raises(ConfigurationError) as info:
        parse_uri(f"mongodb://127.0.0.1/?{option}={value}")
    assert SECRET not in str(info.value) and option in str(info.value)


@pytest.mark.parametrize("reply", [
    {"ok": 1, "$clusterTime": {"clusterTimf": 1}},
    {"ok": 1, "$clusterTime": "x"},
    {"ok": 1, "$clusterTime": {"clusterTime": 5, "signature": {}}},
    {"ok": 1, "operationTime": "x"},
    {"ok": 1, "operationTime": {"t": 1}},
])
async def test_malformed_gossip_in_a_reply_is_a_protocol_error(reply: dict) -> None:
    """A reply whose $clusterTime or operationTime is malformed (the soak's corrupted bytes
    turned ``clusterTime`` into another key) raises ProtocolError, not KeyError/TypeError."""
    from bson.timestamp import Timestamp
    from pymongo.errors import ProtocolError

    client = AsyncIOMotorClient("mongodb://127.0.0.1:1/", connect=False)
    try:
        executor = client._executor
        session = client._implicit_session()
        good = {"ok": 1, "$clusterTime": {"clusterTime": Timestamp(5, 1), "signature": {}},
                "operationTime": Timestamp(5, 1)}
        executor._process_reply(good, session, None)
        with pytest.raises(ProtocolError):
            executor._process_reply(reply, session, None)
        executor._process_reply(good, session, None)  # still fine afterwards
        assert client._core.cluster_time == good["$clusterTime"]
    finally:
        client.close()


async def test_connection_opened_as_the_deadline_passes_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pymongo.timeout(), a connection whose opening finishes in the same instant the
    deadline passes (asyncio.wait_for then raises TimeoutError although the task is done) is
    used, not a bare TimeoutError raised to the application (found by the soak)."""
    import asyncio

    import pymongo

    from amongo.pool import Pool, PoolOptions

    class Conn:
        closed = False
        pending_reply = False
        generation = 0
        service_id = None
        last_checkin = 0.0

        def __init__(self, conn_id: int) -> None:
            self.id = conn_id

        def close(self, reason: object = None) -> None:
            self.closed = True

    async def connect(generation: int, conn_id: int = 0) -> Conn:
        await asyncio.sleep(0)
        return Conn(conn_id)

    real_wait_for = asyncio.wait_for

    async def racing_wait_for(aw: object, timeout: object) -> object:
        await aw  # the opening finishes...
        raise asyncio.TimeoutError  # ...and the deadline fires in the same instant

    pool = Pool(("localhost", 27017), PoolOptions(), connect)
    pool.ready()
    monkeypatch.setattr(asyncio, "wait_for", racing_wait_for)
    try:
        with pymongo.timeout(5):
            conn = await pool.checkout()
    finally:
        monkeypatch.setattr(asyncio, "wait_for", real_wait_for)
    assert isinstance(conn, Conn) and not conn.closed
    pool.checkin(conn)
    assert pool.total_connections == 1
    await pool.close()
