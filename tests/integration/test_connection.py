"""Connection-level behaviour against real servers: wire compression (through the compressing
proxy, since the test servers do not speak OP_COMPRESSED), SCRAM authentication, TLS, and the
minimum wire version."""
from __future__ import annotations

import pytest
from pymongo import monitoring
from pymongo.errors import ConfigurationError, OperationFailure, ServerSelectionTimeoutError

from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.wire.compression import available_compressors
from proxy import Proxy


@pytest.mark.parametrize("compressor", ["zlib", "zstd", "snappy"])
async def test_compression_round_trips(secantus_rs, compressor: str) -> None:
    if compressor not in available_compressors():
        pytest.skip(f"{compressor} library not installed")
    async with Proxy(secantus_rs.host, secantus_rs.port, compressors=[compressor]) as p:
        client = AsyncIOMotorClient(p.uri(directConnection="true", compressors=compressor))
        coll = client.amongo_test[f"compress_{compressor}"]
        try:
            await coll.drop()
            docs = [{"_id": i, "text": "x" * 500} for i in range(300)]
            await coll.insert_many(docs)
            got = await coll.find().sort("_id", 1).to_list(None)
            assert got == docs
        finally:
            client.close()
        stats = p.stats()
    # the proxy saw compressed frames in both directions, with the negotiated compressor
    assert stats["compressed_requests"] > 0 and stats["compressed_replies"] > 0, stats
    assert stats["request_compressors"] == [compressor], stats


async def test_no_compression_unless_negotiated(secantus_rs) -> None:
    async with Proxy(secantus_rs.host, secantus_rs.port, compressors=[]) as p:
        client = AsyncIOMotorClient(p.uri(directConnection="true", compressors="zlib"))
        try:
            assert await client.amongo_test.nocomp.count_documents({}) >= 0
        finally:
            client.close()
        stats = p.stats()
    assert stats["compressed_requests"] == 0 and stats["requests"] > 0, stats


async def test_scram_authentication(secantus_auth) -> None:
    client = AsyncIOMotorClient(secantus_auth.uri)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
        await client.amongo_auth.things.insert_one({"a": 1})
        assert await client.amongo_auth.things.count_documents({"a": 1}) >= 1
    finally:
        client.close()


async def test_scram_bad_password_is_operation_failure(secantus_auth) -> None:
    uri = secantus_auth.uri.replace(f":{secantus_auth.password}@", ":wrong-password@")
    assert uri != secantus_auth.uri
    client = AsyncIOMotorClient(uri, serverSelectionTimeoutMS=3000)
    try:
        with pytest.raises(OperationFailure) as info:
            await client.admin.command("ping")
        assert info.value.code == 18  # AuthenticationFailed
    finally:
        client.close()


async def test_unauthenticated_command_is_refused(secantus_auth) -> None:
    client = AsyncIOMotorClient(secantus_auth.uri_no_auth, serverSelectionTimeoutMS=3000)
    try:
        with pytest.raises(OperationFailure):
            await client.amongo_auth.things.insert_one({"a": 1})
    finally:
        client.close()


async def test_tls_connection(secantus_tls) -> None:
    client = AsyncIOMotorClient(
        secantus_tls.uri, tls=True, tlsCAFile=secantus_tls.tls_ca_file, serverSelectionTimeoutMS=5000
    )
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
        await client.amongo_test.tls.insert_one({"secure": True})
        assert await client.amongo_test.tls.find_one({"secure": True}) is not None
    finally:
        client.close()


async def test_tls_untrusted_certificate_fails(secantus_tls) -> None:
    uri = f"mongodb://{secantus_tls.host}:{secantus_tls.port}/?tls=true&directConnection=true"
    client = AsyncIOMotorClient(uri, serverSelectionTimeoutMS=1500)
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            await client.admin.command("ping")
    finally:
        client.close()


async def test_handshake_metadata_and_appname(server) -> None:
    class Listener(monitoring.CommandListener):
        def __init__(self) -> None:
            self.names: list = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.names.append(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    listener = Listener()
    client = AsyncIOMotorClient(server.uri, appname="amongo-tests", event_listeners=[listener])
    try:
        await client.admin.command("ping")
        assert client.options["appname"] == "amongo-tests"
    finally:
        client.close()
    # the handshake itself is not a monitored command (command-monitoring spec)
    assert "hello" not in listener.names and "isMaster" not in listener.names
    assert "ping" in listener.names


def test_old_server_is_refused() -> None:
    """A server below wire version 9 (MongoDB 4.4) is refused with ConfigurationError."""
    import asyncio

    from mockupdb import MockupDB

    server = MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0, "maxWireVersion": 8})
    server.run()
    try:
        async def main() -> None:
            client = AsyncIOMotorClient(server.uri, serverSelectionTimeoutMS=1500)
            try:
                with pytest.raises((ConfigurationError, ServerSelectionTimeoutError)) as info:
                    await client.admin.command("ping")
                assert "wire version" in str(info.value)
            finally:
                client.close()

        asyncio.run(main())
    finally:
        server.stop()
