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
