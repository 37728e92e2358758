"""Regression tests for defects the reliability campaigns (tests/fuzz, the fault proxy suite)
found beyond issue 11's list."""
from __future__ import annotations

import pytest
from pymongo.errors import ConfigurationError

from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.uri import parse_host

SECRET = "Pw-s3cr3t-XYZZY"


@pytest.mark.parametrize("entity", [f"u:{SECRET}@127.0.0.1:1", f"u:{SECRET}@h:x", f"u:{SECRET}@[::1",
                                    f"u:{SECRET}@a b"])
def test_host_string_errors_do_not_echo_user_info(entity: str) -> None:
    """A ``user:password@host`` host string given without a scheme is refused without showing
    the password (found by the ``uri`` fuzz target)."""
    with pytest.raises(ConfigurationError) as info:
        parse_host(entity)
    assert SECRET not in str(info.value)
    assert "<redacted>@" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        AsyncIOMotorClient(entity, connect=False)
    assert SECRET not in str(info.value)


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
        assert client._cluster_time == good["$clusterTime"]
    finally:
        client.close()
