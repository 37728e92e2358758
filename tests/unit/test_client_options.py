"""``client.options`` is shaped like PyMongo's ``ClientOptions`` in both APIs (Beanie 2 reads
``client.options.pool_options.metadata`` after ``append_metadata``), and stays a read-only
case-insensitive mapping of the validated options."""
from __future__ import annotations

from datetime import timedelta

import pymongo
import pytest
from bson.codec_options import CodecOptions
from pymongo.driver_info import DriverInfo
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import Secondary
from pymongo.write_concern import WriteConcern

import amongo
from amongo.motor_asyncio import AsyncIOMotorClient

URI = ("mongodb://user:s3cret@localhost:1,localhost:2/?replicaSet=rs&appname=app&maxPoolSize=7"
       "&minPoolSize=1&maxIdleTimeMS=2500&waitQueueTimeoutMS=1500&connectTimeoutMS=3000"
       "&socketTimeoutMS=4000&serverSelectionTimeoutMS=5000&localThresholdMS=20"
       "&heartbeatFrequencyMS=6000&readPreference=secondary&w=2&readConcernLevel=majority"
       "&retryWrites=false&retryReads=false&maxConnecting=3")

#: (attribute path, comparable value) checked against PyMongo's own ClientOptions.
ATTRS = [
    "connect", "codec_options", "local_threshold_ms", "server_selection_timeout",
    "heartbeat_frequency", "read_preference", "replica_set_name", "write_concern",
    "read_concern", "timeout", "retry_writes", "retry_reads", "auto_encryption_opts",
    "load_balanced", "server_monitoring_mode", "direct_connection",
    "pool_options.max_pool_size", "pool_options.min_pool_size", "pool_options.max_connecting",
    "pool_options.max_idle_time_seconds", "pool_options.wait_queue_timeout",
    "pool_options.connect_timeout", "pool_options.socket_timeout", "pool_options.appname",
    "pool_options.tls_allow_invalid_hostnames", "pool_options.load_balanced",
    "pool_options.server_api",
]


def _get(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture(params=["pymongo-style", "motor"])
def client_cls(request):
    return amongo.AsyncMongoClient if request.param == "pymongo-style" else AsyncIOMotorClient


@pytest.mark.parametrize("attr", ATTRS)
def test_attributes_match_pymongo(client_cls, attr):
    ours = client_cls(URI, connect=False)
    theirs = pymongo.AsyncMongoClient(URI, connect=False)
    assert _get(ours.options, attr) == _get(theirs.options, attr), attr


def test_values():
    opts = amongo.AsyncMongoClient(URI, connect=False).options
    assert opts.pool_options.max_pool_size == 7 and opts.pool_options.min_pool_size == 1
    assert opts.pool_options.max_idle_time_seconds == 2.5
    assert opts.server_selection_timeout == 5.0 and opts.heartbeat_frequency == 6.0
    assert isinstance(opts.read_preference, Secondary)
    assert opts.write_concern == WriteConcern(w=2)
    assert opts.read_concern == ReadConcern("majority")
    assert isinstance(opts.codec_options, CodecOptions)
    assert opts.credentials is not None and opts.replica_set_name == "rs"
    assert opts.pool_options.non_default_options["maxPoolSize"] == 7
    tz = amongo.AsyncMongoClient("mongodb://localhost:1", connect=False, tz_aware=True, timeoutMS=1500)
    assert tz.options.codec_options.tz_aware is True and tz.options.timeout == 1.5


def test_metadata_and_append_metadata():
    client = amongo.AsyncMongoClient("mongodb://localhost:1/?appname=app", connect=False,
                                     driver=DriverInfo("odm", "1.0"))
    md = client.options.pool_options.metadata
    assert md["driver"] == {"name": "amongo|odm", "version": f"{amongo.__version__}|1.0"}
    assert md["application"] == {"name": "app"}
    assert client.options.pool_options.driver == DriverInfo("odm", "1.0")
    client.append_metadata(DriverInfo("beanie", "2.1.0"))
    driver = client.options.pool_options.metadata["driver"]
    assert "beanie" in driver["name"] and "2.1.0" in driver["version"]
    # a copy: changing it changes nothing the handshake sends
    client.options.pool_options.metadata["driver"]["name"] = "x"
    assert "beanie" in client.options.pool_options.metadata["driver"]["name"]


def test_still_a_case_insensitive_read_only_mapping(client_cls):
    opts = client_cls(URI, connect=False).options
    assert opts["appname"] == opts["APPNAME"] == "app" and "maxpoolsize" in opts
    assert opts["maxPoolSize"] == 7 and opts.get("nothing") is None
    assert "maxPoolSize" in list(opts) and len(opts) == len(dict(opts.items()))
    with pytest.raises(TypeError):
        opts["appname"] = "other"  # type: ignore[index]
    r = repr(opts)
    assert "s3cret" not in r and "s3cret" not in repr(opts.pool_options)


def test_event_listeners():
    class L(pymongo.monitoring.CommandListener):
        def started(self, event): ...
        def succeeded(self, event): ...
        def failed(self, event): ...

    listener = L()
    opts = amongo.AsyncMongoClient("mongodb://localhost:1", connect=False,
                                   event_listeners=[listener]).options
    assert opts.event_listeners == [listener]
    assert listener in opts.pool_options.event_listeners


def test_timeouts_are_seconds_not_timedelta():
    opts = amongo.AsyncMongoClient("mongodb://localhost:1", connect=False).options
    assert not isinstance(opts.server_selection_timeout, timedelta)
    assert opts.pool_options.max_idle_time_seconds is None
    assert opts.pool_options.wait_queue_timeout is None
