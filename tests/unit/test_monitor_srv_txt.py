"""SRV TXT ``authSource`` reaches the credential the pools' connections use (stub resolver),
through the asynchronous resolution and through a topology property's synchronous one."""
from __future__ import annotations

from typing import Any, List

import pytest
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from amongo.client import MongoClient
from amongo.topology import topology as _topology_mod

HOSTS = [("h1.test.example.com", 27017), ("h2.test.example.com", 27017)]


class StubResolver:
    def __init__(self, txt: str) -> None:
        self.txt_record = txt

    async def srv(self, name: str) -> List[Any]:
        assert name == "_mongodb._tcp.test.example.com"
        return list(HOSTS)

    async def txt(self, name: str) -> List[Any]:
        return [[self.txt_record.encode()]] if self.txt_record else []


def _client(uri: str, txt: str) -> MongoClient:
    client = MongoClient(uri, serverSelectionTimeoutMS=300, connectTimeoutMS=50)
    client._topology.settings.srv_resolver = StubResolver(txt)
    return client


async def _credential_seen_by_connections(client: MongoClient, monkeypatch: pytest.MonkeyPatch) -> Any:
    seen: List[Any] = []

    async def fake_open(address: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(options.credential)
        raise AutoReconnect("stub")

    monkeypatch.setattr(_topology_mod.Connection, "open", fake_open)
    server = client._topology.servers[HOSTS[0]]
    with pytest.raises(AutoReconnect):
        await server.pool._connect(server.pool.generation, 1)
    return seen[0]


async def test_txt_auth_source_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client("mongodb+srv://user:pw@test.example.com/", "authSource=thedb&replicaSet=rs0")
    try:
        assert client._credential.source == "admin"  # before resolution
        await client._topology.open()
        assert client._topology.srv_txt_options["authSource"] == "thedb"
        cred = await _credential_seen_by_connections(client, monkeypatch)
        assert cred.source == "thedb" and cred.username == "user" and cred.password == "pw"
        assert client._credential is cred
        # Monitors never authenticate.
        assert client._topology._monitor_options.credential is None
    finally:
        client.close()


async def test_uri_auth_source_wins_over_txt(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client("mongodb+srv://user:pw@test.example.com/?authSource=urisource", "authSource=thedb")
    try:
        await client._topology.open()
        cred = await _credential_seen_by_connections(client, monkeypatch)
        assert cred.source == "urisource"
    finally:
        client.close()
    client = MongoClient("mongodb+srv://user:pw@test.example.com/", authSource="kwsource",
                         serverSelectionTimeoutMS=300)
    client._topology.settings.srv_resolver = StubResolver("authSource=thedb")
    try:
        await client._topology.open()
        cred = await _credential_seen_by_connections(client, monkeypatch)
        assert cred.source == "kwsource"
    finally:
        client.close()


async def test_txt_auth_source_without_credentials_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client("mongodb+srv://test.example.com/", "authSource=thedb")
    try:
        await client._topology.open()
        assert await _credential_seen_by_connections(client, monkeypatch) is None
    finally:
        client.close()


async def test_no_txt_keeps_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client("mongodb+srv://user:pw@test.example.com/mydb", "")
    try:
        await client._topology.open()
        cred = await _credential_seen_by_connections(client, monkeypatch)
        assert cred.source == "mydb"
    finally:
        client.close()


async def test_txt_auth_source_via_property_sync_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    # A waiting property resolves SRV synchronously (the stub answers without suspending),
    # applies TXT, then fails discovery against the unreachable hosts within the timeout.
    from amongo.topology import sync_probe

    checked: List[Any] = []

    def unreachable(address: Any, options: Any, timeout: float) -> Any:
        checked.append(address)
        raise AutoReconnect(f"{address[0]}:{address[1]}: unreachable (stub)")

    monkeypatch.setattr(sync_probe, "check_server", unreachable)
    client = _client("mongodb+srv://user:pw@test.example.com/", "authSource=thedb&replicaSet=rs0")
    try:
        with pytest.raises(ServerSelectionTimeoutError, match="unreachable"):
            client.is_primary
        td = client.topology_description
        assert set(td.servers) == set(HOSTS) and td.replica_set_name == "rs0"
        assert set(checked) == set(HOSTS)
        cred = await _credential_seen_by_connections(client, monkeypatch)
        assert cred.source == "thedb"
        # The asynchronous resolution task sees the topology already resolved.
        await client._topology.open()
        assert set(client.topology_description.servers) == set(HOSTS)
    finally:
        client.close()
