"""Tests of the test proxy itself (tests/proxy.py), driven by pymongo's synchronous client."""
from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
from pymongo import MongoClient
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    NetworkTimeout,
    OperationFailure,
    ProtocolError,
)

from proxy import Proxy, compress, crc32c, decompress
from servers import Deployment

pytestmark = pytest.mark.integration


@pytest.fixture
def upstream(secantus_rs: Deployment) -> Deployment:
    if secantus_rs.tls_ca_file or secantus_rs.username:
        pytest.skip("the proxy tests need a plain (no TLS, no auth) upstream")
    return secantus_rs


def client_for(p: Proxy, **kw: Any) -> MongoClient:
    kw.setdefault("serverSelectionTimeoutMS", 5000)
    kw.setdefault("connectTimeoutMS", 5000)
    kw.setdefault("appname", "proxy-test")
    return MongoClient(p.uri(), **kw)


@pytest.fixture
def proxy(upstream: Deployment) -> Iterator[Proxy]:
    with Proxy(upstream.host, upstream.port) as p:
        yield p


def test_helpers() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    data = b"amongo " * 1000
    for cid in (0, 1, 2, 3):
        packed = compress(cid, data)
        assert decompress(cid, packed) == data
        if cid:
            assert len(packed) < len(data)


def test_passthrough(proxy: Proxy) -> None:
    with client_for(proxy) as c:
        coll = c.amongo_proxy_test.passthrough
        coll.drop()
        coll.insert_many([{"i": i} for i in range(10)])
        assert sorted(d["i"] for d in coll.find()) == list(range(10))
    st = proxy.stats()
    assert st["connections"] >= 1
    assert st["requests"] >= 3 and st["replies"] >= 3
    assert st["compressed_requests"] == st["compressed_replies"] == 0
    assert st["faults"] == []
    assert any("insert" in c.commands for c in proxy.connections)


@pytest.mark.parametrize("compressor", ["zlib", "zstd", "snappy"])
def test_compression_translation(upstream: Deployment, compressor: str) -> None:
    from pymongo import compression_support

    if not getattr(compression_support, f"_have_{compressor}")():
        pytest.skip(f"pymongo cannot use {compressor} here (zstd needs backports.zstd); "
                    "the proxy's zstd path is covered by test_async_mode")
    with Proxy(upstream.host, upstream.port, compressors=["zstd", "zlib", "snappy"]) as p:
        with client_for(p, compressors=compressor) as c:
            coll = c.amongo_proxy_test[f"compressed_{compressor}"]
            coll.drop()
            coll.insert_many([{"i": i, "pad": "x" * 1000} for i in range(50)])
            docs = list(coll.find().sort("i", 1))
            assert [d["i"] for d in docs] == list(range(50))
            assert all(d["pad"] == "x" * 1000 for d in docs)
        app_conns = [cs for cs in p.connections if "insert" in cs.commands]
        assert app_conns, p.connections
        cs = app_conns[0]
        assert cs.client_compression == [compressor]
        assert cs.negotiated == [compressor]
        assert cs.compressed_requests > 0 and cs.compressed_replies > 0
        assert set(cs.request_compressors) == {compressor} == set(cs.reply_compressors)
        st = p.stats()
        assert st["request_compressors"] == [compressor]


def test_no_compression_when_proxy_offers_none(proxy: Proxy) -> None:
    with client_for(proxy, compressors="zlib") as c:
        c.amongo_proxy_test.nocomp.insert_one({"x": 1})
        assert c.amongo_proxy_test.nocomp.find_one({"x": 1})
    st = proxy.stats()
    assert st["compressed_requests"] == 0 and st["compressed_replies"] == 0
    assert all(cs.negotiated is None for cs in proxy.connections)


def test_compression_intersection(upstream: Deployment) -> None:
    with Proxy(upstream.host, upstream.port, compressors=["snappy"]) as p:
        with client_for(p, compressors="zlib,snappy") as c:
            c.amongo_proxy_test.inter.insert_one({"x": 1})
        cs = next(cs for cs in p.connections if "insert" in cs.commands)
        assert cs.client_compression == ["zlib", "snappy"]
        assert cs.negotiated == ["snappy"]
        assert set(cs.request_compressors) == {"snappy"}


def test_fault_close(proxy: Proxy) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.close
        coll.insert_one({"x": 1})
        rule = proxy.fail_next(command="find", action="close")
        with pytest.raises(AutoReconnect):
            coll.find_one()
        assert rule.hits == 1 and rule.exhausted
        assert coll.find_one()["x"] == 1  # next one passes
    assert proxy.stats()["faults"] == ["close"]


def test_fault_close_is_retried_by_retryable_reads(proxy: Proxy) -> None:
    with client_for(proxy) as c:
        coll = c.amongo_proxy_test.close_retry
        coll.insert_one({"x": 1})
        proxy.fail_next(command="find", action="close")
        assert coll.find_one()["x"] == 1


def test_fault_close_after_reply(proxy: Proxy) -> None:
    with client_for(proxy, retryWrites=False) as c:
        coll = c.amongo_proxy_test.close_after
        coll.drop()
        proxy.fail_next(command="insert", action="close_after_reply")
        with pytest.raises(AutoReconnect):
            coll.insert_one({"x": 1})
        assert coll.count_documents({}) == 1  # the server did execute it


def test_fault_delay(proxy: Proxy) -> None:
    with client_for(proxy, socketTimeoutMS=3000, retryReads=False) as c:
        coll = c.amongo_proxy_test.delay
        coll.insert_one({"x": 1})
        proxy.fail_next(command="find", action="delay", delay=0.5)
        t0 = time.monotonic()
        assert coll.find_one()["x"] == 1
        assert time.monotonic() - t0 >= 0.5
    with client_for(proxy, socketTimeoutMS=200, retryReads=False) as c:
        proxy.fail_next(command="find", action="delay", delay=1.5)
        with pytest.raises(NetworkTimeout):
            c.amongo_proxy_test.delay.find_one()


def test_fault_drop(proxy: Proxy) -> None:
    with client_for(proxy, socketTimeoutMS=300, retryReads=False) as c:
        coll = c.amongo_proxy_test.drop
        coll.insert_one({"x": 1})
        proxy.fail_next(command="find", action="drop")
        with pytest.raises(NetworkTimeout):
            coll.find_one()
        assert coll.find_one()["x"] == 1


def test_fault_truncate(proxy: Proxy) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.truncate
        coll.insert_one({"x": 1})
        proxy.fail_next(command="find", action="truncate")
        with pytest.raises(AutoReconnect):
            coll.find_one()
        assert coll.find_one()["x"] == 1


@pytest.mark.parametrize("action", ["corrupt_length", "corrupt_opcode", "corrupt_checksum"])
def test_fault_corrupt(proxy: Proxy, action: str) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.corrupt
        coll.insert_one({"x": 1})
        proxy.fail_next(command="find", action=action)
        with pytest.raises((ProtocolError, ConnectionFailure)):
            coll.find_one()
        assert coll.find_one()["x"] == 1


def test_fault_reply_and_predicate(proxy: Proxy) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.reply
        coll.insert_one({"x": 1})
        rule = proxy.fail_next(
            action="reply", times=2,
            predicate=lambda doc: doc.get("find") == "reply" and doc.get("filter") == {"x": 2},
            reply={"ok": 0, "errmsg": "injected by proxy", "code": 2, "codeName": "BadValue"},
        )
        assert coll.find_one({"x": 1})["x"] == 1  # predicate does not match
        for _ in range(2):
            with pytest.raises(OperationFailure) as info:
                coll.find_one({"x": 2})
            assert info.value.code == 2 and "injected" in str(info.value)
        assert coll.find_one({"x": 2}) is None  # rule exhausted
        assert rule.hits == 2


def test_fail_always_and_clear(proxy: Proxy) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.always
        coll.insert_one({"x": 1})
        proxy.fail_always(command="count", action="close")
        for _ in range(2):
            with pytest.raises(AutoReconnect):
                c.amongo_proxy_test.command("count", "always")
        proxy.clear_rules()
        assert c.amongo_proxy_test.command("count", "always")["n"] == 1


def test_unknown_action_rejected(proxy: Proxy) -> None:
    with pytest.raises(ValueError):
        proxy.fail_next(command="find", action="explode")


def test_close_connections(proxy: Proxy) -> None:
    with client_for(proxy, retryReads=False) as c:
        coll = c.amongo_proxy_test.closeall
        coll.insert_one({"x": 1})
        proxy.close_connections()
        time.sleep(0.2)
        try:
            coll.find_one()
        except AutoReconnect:
            pass
        assert coll.find_one()["x"] == 1


@pytest.mark.parametrize("compressor", ["zlib", "zstd", "snappy"])
async def test_async_mode(upstream: Deployment, compressor: str) -> None:
    """In ``async with`` mode the proxy runs in the test's own loop (raw hello through it)."""
    import asyncio
    import struct

    import bson

    from proxy import COMPRESSOR_IDS

    cid_expected = COMPRESSOR_IDS[compressor]
    async with Proxy(upstream.host, upstream.port, compressors=["zstd", "zlib", "snappy"]) as p:
        reader, writer = await asyncio.open_connection(p.host, p.port)
        body = struct.pack("<I", 0) + b"\x00" + bson.encode(
            {"hello": 1, "compression": [compressor, "noop"], "$db": "admin"})
        writer.write(struct.pack("<iiii", 16 + len(body), 7, 0, 2013) + body)
        await writer.drain()
        length, _rid, response_to, opcode = struct.unpack("<iiii", await reader.readexactly(16))
        rest = await reader.readexactly(length - 16)
        assert (response_to, opcode) == (7, 2013)
        reply = bson.decode(rest[5:])
        assert reply["ok"] == 1 and reply["compression"] == [compressor]
        # a compressed ping
        inner = struct.pack("<I", 0) + b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
        payload = struct.pack("<iiB", 2013, len(inner), cid_expected) + compress(cid_expected, inner)
        writer.write(struct.pack("<iiii", 16 + len(payload), 8, 0, 2012) + payload)
        await writer.drain()
        length, _rid, response_to, opcode = struct.unpack("<iiii", await reader.readexactly(16))
        rest = await reader.readexactly(length - 16)
        assert (response_to, opcode) == (8, 2012)
        orig, size, cid = struct.unpack_from("<iiB", rest)
        assert (orig, cid) == (2013, cid_expected)
        inner_reply = decompress(cid, rest[9:])
        assert len(inner_reply) == size
        assert bson.decode(inner_reply[5:])["ok"] == 1
        writer.close()
        await writer.wait_closed()
        cs = p.connections[0]
        assert cs.compressed_requests == 1 and cs.compressed_replies == 1
        assert cs.request_compressors == [compressor] == cs.reply_compressors


# --------------------------------------------------------------------------------------------
# self-tests of the server fixtures and the requires mechanism (tests/servers.py, conftest.py)


def test_server_fixture(server: Deployment) -> None:
    assert server.name in ("secantus", "nx", "external")
    assert server.uri.startswith("mongodb://") and "directConnection=true" in server.direct_uri
    with server.pymongo_client(direct=True) as c:
        assert c.admin.command("ping")["ok"] == 1


@pytest.mark.requires("transactions", "change_streams")
def test_requires_marker_skips_nx(server: Deployment) -> None:
    assert server.name != "nx"
    assert server.supports("transactions")


def test_require_helper(nx: Deployment) -> None:
    from servers import require

    if nx.name == "external":
        pytest.skip("checks nx-27017's feature table")
    with pytest.raises(pytest.skip.Exception, match="nx-27017"):
        require(nx, "fail_command")
    require(nx, "sessions")  # supported: no skip


def test_secantus_rs_fixture(secantus_rs: Deployment) -> None:
    assert "replicaSet=secantus" in secantus_rs.uri
    with secantus_rs.pymongo_client() as c:
        assert c.admin.command("hello")["setName"] == "secantus"


def test_secantus_standalone_fixture(secantus_standalone: Deployment) -> None:
    with secantus_standalone.pymongo_client() as c:
        assert "setName" not in c.admin.command("hello")


def test_secantus_auth_fixture(secantus_auth: Deployment) -> None:
    with secantus_auth.pymongo_client() as c:
        assert c.amongo_auth_probe.t.insert_one({}).acknowledged
    if secantus_auth.name == "external":
        return
    with MongoClient(secantus_auth.uri_no_auth, serverSelectionTimeoutMS=5000) as c:
        with pytest.raises(OperationFailure):
            c.amongo_auth_probe.t.find_one()
    for user, (pw, source, _roles) in secantus_auth.users.items():
        with MongoClient(f"mongodb://{secantus_auth.host}:{secantus_auth.port}/",
                         username=user, password=pw, authSource=source, directConnection=True,
                         serverSelectionTimeoutMS=5000) as c:
            assert c[source].command("connectionStatus")["authInfo"]["authenticatedUsers"]


def test_secantus_tls_fixture(secantus_tls: Deployment) -> None:
    assert "tls=true" in secantus_tls.uri
    with secantus_tls.pymongo_client() as c:  # with the client certificate
        assert c.admin.command("ping")["ok"] == 1
    if secantus_tls.name == "external":
        return
    with MongoClient(secantus_tls.uri, serverSelectionTimeoutMS=5000) as c:  # without one
        assert c.admin.command("ping")["ok"] == 1
    with MongoClient(f"mongodb://{secantus_tls.host}:{secantus_tls.port}/?directConnection=true",
                     serverSelectionTimeoutMS=1000) as c:  # plaintext is refused
        with pytest.raises(ConnectionFailure):
            c.admin.command("ping")
