"""amongo.handshake: the hello both the asyncio connection and the blocking discovery send,
and the error mapping they share (pure; no sockets)."""
from __future__ import annotations

import socket
import ssl

import pytest
from pymongo.driver_info import DriverInfo
from pymongo.errors import AutoReconnect, ConfigurationError, NetworkTimeout, OperationFailure, ProtocolError
from pymongo.server_api import ServerApi

from amongo import handshake as h
from amongo.connection import Connection, ConnectionOptions
from amongo.topology.sync_probe import ProbeOptions, hello_command

A = ("db.example.com", 27017)


def test_hello_command_shapes() -> None:
    md = h.client_metadata("app")
    assert h.hello_command(md) == {"isMaster": 1, "helloOk": True, "client": md, "backpressure": True}
    lb = h.hello_command(md, compressors=["zlib"], load_balanced=True)
    assert next(iter(lb)) == "hello" and lb["loadBalanced"] is True and lb["compression"] == ["zlib"]
    api = h.hello_command(None, server_api=ServerApi("1", strict=True, deprecation_errors=False))
    assert next(iter(api)) == "hello" and "client" not in api
    assert (api["apiVersion"], api["apiStrict"], api["apiDeprecationErrors"]) == ("1", True, False)
    assert "apiStrict" not in h.server_api_fields(ServerApi("1")) and h.server_api_fields(None) == {}


def test_heartbeat_command() -> None:
    assert h.heartbeat_command(False) == {"isMaster": 1}
    assert h.heartbeat_command(True) == {"hello": 1}
    assert h.heartbeat_command(False, ServerApi("1")) == {"hello": 1, "apiVersion": "1"}


def test_client_metadata() -> None:
    md = h.client_metadata(None, DriverInfo("odm", "2.0", "plat"))
    assert md["driver"]["name"] == "amongo|odm" and md["driver"]["version"].endswith("|2.0")
    assert md["platform"].endswith("|plat") and "application" not in md
    assert h.client_metadata("my app")["application"] == {"name": "my app"}


def test_connection_and_sync_probe_send_the_same_hello() -> None:
    """A monitoring connection (no credentials, no compression) and the blocking probe build
    their hello with the same function."""
    api = ServerApi("1")
    opts = ConnectionOptions(appname="a", server_api=api, load_balanced=False)
    conn = Connection.__new__(Connection)
    conn.options = opts
    probe = hello_command(ProbeOptions.from_connection_options(opts))
    assert probe.pop("$db") == "admin"
    assert conn.handshake_command() == probe


def test_wire_version_and_compression() -> None:
    h.check_wire_version(A, 9)
    with pytest.raises(ConfigurationError, match=r"db.example.com:27017 reports wire version 8"):
        h.check_wire_version(A, 8)
    zlib = h.negotiate_compressor(A, ["zstd", "zlib"], {"compression": ["zlib"]})
    assert zlib is not None and zlib.name == "zlib"
    assert h.negotiate_compressor(A, [], {"compression": ["zlib"]}) is None
    assert h.negotiate_compressor(A, ["zlib"], {}) is None
    assert h.negotiate_compressor(A, ["zlib"], {"compression": ["snappy-x"]}) is None
    with pytest.raises(ProtocolError, match="'compression' must be an array of strings"):
        h.negotiate_compressor(A, ["zlib"], {"compression": "zlib"})


def test_error_mapping() -> None:
    err = h.connect_error(A, socket.timeout(), timed_out=True)
    assert isinstance(err, NetworkTimeout) and str(err) == "db.example.com:27017: connection timed out"
    err = h.connect_error(A, ssl.SSLError(1, "bad cert"))
    assert isinstance(err, AutoReconnect) and "SSL handshake failed" in str(err)
    err = h.connect_error(A, ConnectionRefusedError(111, "Connection refused"))
    assert type(err) is AutoReconnect and str(err) == "db.example.com:27017: Connection refused"
    err = h.connect_error(A, ValueError("label too long"))
    assert type(err) is AutoReconnect and "invalid host name" in str(err)
    assert str(h.timeout_error(A)) == "db.example.com:27017: timed out"
    # An application connection's failures to connect are overload errors (backpressure
    # spec), except DNS failures, certificate errors and bad host names.
    def labelled(exc: BaseException, **kw: bool) -> bool:
        return h.connect_error(A, exc, overload=True, **kw).has_error_label("SystemOverloadedError")

    assert labelled(socket.timeout(), timed_out=True) and labelled(ConnectionResetError(104, "reset"))
    assert labelled(ssl.SSLEOFError(8, "EOF")) and not labelled(ssl.SSLError(1, "bad cert"))
    assert not labelled(socket.gaierror(-2, "Name or service not known"))
    assert not labelled(ValueError("label too long"))
    assert not h.connect_error(A, ConnectionResetError(104, "reset")).has_error_label("RetryableError")
    assert str(h.response_id_mismatch(A, 7, 8)) == "db.example.com:27017: Got response id 7 but expected 8"
    assert h.hello_failure({"ok": 1}) is None
    failure = h.hello_failure({"ok": 0, "errmsg": "no", "code": 18})
    assert isinstance(failure, OperationFailure) and failure.code == 18 and str(failure).startswith("no")
