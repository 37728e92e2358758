"""Issue 11, defect 7: only pymongo.errors types (or a documented ValueError/TypeError for a
bad argument, raised at the call) reach the user.

Numeric options that are infinite, NaN or out of range are refused at construction (as
PyMongo: durations in milliseconds must be below one billion), never accepted and then an
OverflowError at every operation; a TXT record's invalid value raises instead of being
silently ignored.
"""
from __future__ import annotations

import warnings
from typing import Any, List

import pytest
from pymongo.errors import ConfigurationError, ServerSelectionTimeoutError

from amongo import srv as _srv
from amongo.client import MongoClient

URI = "mongodb://127.0.0.1:1/"


OUT_OF_RANGE = [
        ("timeoutMS", 10**400),
        ("timeoutMS", 1e300),
        ("timeoutMS", "1e309"),
        ("timeoutMS", "nan"),
        ("timeoutMS", float("inf")),
        ("timeoutMS", float("nan")),
        ("socketTimeoutMS", 10**12),
        ("connectTimeoutMS", 1e9),
        ("serverSelectionTimeoutMS", 10**400),
        ("heartbeatFrequencyMS", "9" * 400),
        ("maxIdleTimeMS", 2e9),
        ("waitQueueTimeoutMS", float("inf")),
        ("localThresholdMS", 1e12),
        ("wTimeoutMS", 2**70),
        ("maxPoolSize", 10**30),
        ("maxStalenessSeconds", 10**400),
        ("minPoolSize", "1" * 200),
]


@pytest.mark.parametrize(
    "option,value", OUT_OF_RANGE, ids=[f"{o}-{i}" for i, (o, _v) in enumerate(OUT_OF_RANGE)]
)
def test_out_of_range_numbers_refused_at_construction(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        MongoClient(URI, connect=False, **{option: value})
    assert isinstance(info.value, ValueError)  # the documented ValueError for a bad argument


def test_largest_accepted_duration_is_usable() -> None:
    client = MongoClient(URI, connect=False, timeoutMS=999_999_999, socketTimeoutMS=999_999_999)
    try:
        assert client._timeout == pytest.approx(999_999.999)
    finally:
        client.close()


def test_uri_infinite_timeout_is_warned_and_dropped_not_overflowing() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = MongoClient(URI + "?timeoutMS=1e309&socketTimeoutMS=99999999999999", connect=False)
    try:
        messages = " ".join(str(w.message) for w in caught)
        assert "timeoutMS" in messages and "socketTimeoutMS" in messages
        assert client._timeout is None
        assert "timeoutMS" not in client.options and "socketTimeoutMS" not in client.options
    finally:
        client.close()


@pytest.mark.parametrize(
    "record",
    [
        "loadBalanced=maybe",
        "loadBalanced=",
        "replicaSet=",
        "authSource=",
        "replicaSet=rs0&loadBalanced=yes",
    ],
)
def test_txt_record_invalid_values_raise(record: str) -> None:
    with pytest.raises(ConfigurationError):
        _srv.parse_txt_records([[record]])


def test_txt_record_not_utf8_raises() -> None:
    with pytest.raises(ConfigurationError):
        _srv.parse_txt_records([[b"replicaSet=\xff\xfe"]])


def test_txt_record_valid_values() -> None:
    assert _srv.parse_txt_records([["loadBalanced=TRUE&replicaSet=rs0&authSource=db"]]) == {
        "loadBalanced": "TRUE", "replicaSet": "rs0", "authSource": "db"
    }


class StubResolver:
    def __init__(self, txt: str) -> None:
        self.txt_record = txt

    async def srv(self, name: str) -> List[Any]:
        return [("h1.test.example.com", 27017)]

    async def txt(self, name: str) -> List[Any]:
        return [[self.txt_record.encode()]]


async def test_client_with_invalid_txt_value_fails_with_configuration_error() -> None:
    client = MongoClient("mongodb+srv://test.example.com/", serverSelectionTimeoutMS=300, connect=False)
    client._topology.settings.srv_resolver = StubResolver("loadBalanced=maybe")
    try:
        with pytest.raises(ConfigurationError, match="loadBalanced") as info:
            await client.admin.command("ping")
        assert not isinstance(info.value, ServerSelectionTimeoutError)
    finally:
        client.close()
