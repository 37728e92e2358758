"""MONGODB-OIDC against a scripted server that checks the tokens it receives: machine and human
callbacks (PyMongo's callback classes), the built-in ENVIRONMENT integrations (test, k8s, and
azure / gcp against a local metadata server), the per-client token cache and its invalidation,
speculative authentication, and ReauthenticationRequired (391) on a command, on a cursor's
getMore and inside retries."""
from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterator, List, Optional

import pytest
from pymongo import monitoring
from pymongo.auth_oidc import OIDCCallback, OIDCCallbackContext, OIDCCallbackResult
from pymongo.errors import AutoReconnect, ConfigurationError, OperationFailure

from amongo import auth_oidc
from amongo.motor_asyncio import AsyncIOMotorClient
from tests.auth_fakes import FakeHTTP, FakeMongo, find_fails, find_ok

FAST = dict(serverSelectionTimeoutMS=3000, heartbeatFrequencyMS=500, connectTimeoutMS=3000)
OIDC_VARS = ("OIDC_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "GCE_METADATA_HOST")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in OIDC_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(auth_oidc, "AZURE_IMDS_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(auth_oidc, "GCP_METADATA_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(auth_oidc, "K8S_TOKEN_FILE", "/nonexistent/amongo/token")
    yield


class Tokens(OIDCCallback):
    """Hands out *tokens* in turn (the last one again when they run out)."""

    def __init__(self, *tokens: str, refresh: Optional[str] = None) -> None:
        self.tokens = list(tokens)
        self.refresh = refresh
        self.calls: List[OIDCCallbackContext] = []

    def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        self.calls.append(context)
        token = self.tokens[min(len(self.calls), len(self.tokens)) - 1]
        return OIDCCallbackResult(access_token=token, expires_in_seconds=300, refresh_token=self.refresh)


class AsyncTokens(Tokens):
    async def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:  # type: ignore[override]
        await asyncio.sleep(0)
        return Tokens.fetch(self, context)


class Events(monitoring.CommandListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def _add(self, event: Any) -> None:
        self.events.append(event)

    started = succeeded = failed = _add

    def summary(self, *names: str) -> List[str]:
        kinds = {monitoring.CommandStartedEvent: "started", monitoring.CommandSucceededEvent: "succeeded",
                 monitoring.CommandFailedEvent: "failed"}
        return [f"{e.command_name} {kinds[type(e)]}" for e in self.events if e.command_name in names]


def client_for(server: FakeMongo, props: Dict[str, Any], **kw: Any) -> AsyncIOMotorClient:
    opts: Dict[str, Any] = dict(FAST, authMechanism="MONGODB-OIDC", authMechanismProperties=props,
                                directConnection=True)
    opts.update(kw)
    return AsyncIOMotorClient(f"mongodb://{server.host}/", **opts)


async def find_all(client: AsyncIOMotorClient, **kw: Any) -> List[Any]:
    return await client.db.coll.find({}, **kw).to_list(None)


def hellos_with_speculative(server: FakeMongo) -> int:
    return sum(1 for _cid, cmd in server.commands if "speculativeAuthenticate" in cmd)


# -- machine callbacks, the cache, speculative authentication -----------------------------------
@pytest.mark.parametrize("kind", [Tokens, AsyncTokens])
async def test_machine_callback_then_speculative_with_the_cached_token(kind: Any) -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("tok-1")
        cb = kind("tok-1")
        client = client_for(server, {"OIDC_CALLBACK": cb}, retryReads=True)
        try:
            assert len(await find_all(client)) == 5
            # no cached token at the first handshake: no speculative authentication
            assert hellos_with_speculative(server) == 0 and server.speculative_ok == 0
            # drop the connection: the retry's new connection authenticates speculatively
            server.fail("find", "close")
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        assert hellos_with_speculative(server) == 1 and server.speculative_ok == 1
        assert len(cb.calls) == 1  # one callback call per client (the Client Cache)
        ctx = cb.calls[0]
        assert ctx.version == 1 and 0 < ctx.timeout_seconds <= 60 and ctx.username == ""
        assert ctx.idp_info is None and ctx.refresh_token is None
        assert server.sasl_tokens == ["tok-1"]


async def test_each_client_has_its_own_cache() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-a", "tok-b"})
        cb = Tokens("tok-a", "tok-b")
        clients = [client_for(server, {"OIDC_CALLBACK": cb}) for _ in range(2)]
        try:
            for c in clients:
                await find_all(c)
        finally:
            for c in clients:
                c.close()
        assert len(cb.calls) == 2 and server.sasl_tokens == ["tok-a", "tok-b"]


async def test_concurrent_first_connections_call_the_callback_once() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("tok-1")
        cb = AsyncTokens("tok-1")
        client = client_for(server, {"OIDC_CALLBACK": cb}, maxConnecting=4)
        try:
            await asyncio.gather(*(find_all(client) for _ in range(8)))
        finally:
            client.close()
        assert len(cb.calls) == 1


async def test_stale_cached_token_is_invalidated_and_replaced() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-1", "tok-2"})
        cb = Tokens("tok-1", "tok-2")
        client = client_for(server, {"OIDC_CALLBACK": cb}, retryReads=True)
        try:
            await find_all(client)
            server.expired_tokens.add("tok-1")
            server.fail("find", "close")  # the retry opens a new connection
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        # new connection: speculative attempt with tok-1 fails silently (not invalidated by
        # it), saslStart with tok-1 is refused -> invalidated, callback -> tok-2
        assert hellos_with_speculative(server) == 1 and server.speculative_ok == 0
        assert server.sasl_tokens == ["tok-1", "tok-1", "tok-2"]
        assert len(cb.calls) == 2


async def test_unexpected_error_code_keeps_the_cached_token() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("tok-1")
        cb = Tokens("tok-1")
        client = client_for(server, {"OIDC_CALLBACK": cb}, retryReads=False)
        try:
            server.fail("saslStart", 20)  # not AuthenticationFailed
            with pytest.raises(OperationFailure) as info:
                await find_all(client)
            assert info.value.code == 20
            assert len(await find_all(client)) == 5  # the cached token, speculatively
        finally:
            client.close()
        assert len(cb.calls) == 1 and server.speculative_ok == 1


def test_invalidation_is_compare_and_swap() -> None:
    state = auth_oidc.OIDCState()
    state.access_token, state.generation = "new", 2
    state.invalidate(1)  # a connection that used the previous token
    assert state.access_token == "new"
    state.invalidate(2)
    assert state.access_token is None
    assert "new" not in repr(state)


async def test_bad_token_fails_without_revealing_it() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        cb = Tokens("not-a-valid-token")
        info = await find_fails(client_for(server, {"OIDC_CALLBACK": cb}), OperationFailure)
        assert info.value.code == 18 and "not-a-valid-token" not in str(info.value)


@pytest.mark.parametrize(
    "result, message",
    [(RuntimeError("idp down"), "callback failed: RuntimeError: idp down"),
     ("a string", "must return an OIDCCallbackResult"),
     (OIDCCallbackResult(access_token=""), "no access token"),
     (OIDCCallbackResult(access_token="t", expires_in_seconds=-1), "negative expires_in_seconds")],
)
async def test_callback_errors(result: Any, message: str) -> None:
    class Bad(OIDCCallback):
        def fetch(self, context: OIDCCallbackContext) -> Any:
            if isinstance(result, Exception):
                raise result
            return result

    async with FakeMongo("MONGODB-OIDC") as server:
        await find_fails(client_for(server, {"OIDC_CALLBACK": Bad()}), OperationFailure, match=message)
        assert "saslStart" not in server.names()


async def test_async_callback_timeout() -> None:
    class Slow(OIDCCallback):
        async def fetch(self, context: OIDCCallbackContext) -> Any:  # type: ignore[override]
            await asyncio.sleep(30)

    async with FakeMongo("MONGODB-OIDC") as server:
        await find_fails(
            client_for(server, {"OIDC_CALLBACK": Slow()}, connectTimeoutMS=300),
            OperationFailure, match="did not return within",
        )


# -- ReauthenticationRequired -------------------------------------------------------------------
@pytest.mark.parametrize("op", ["find", "insert"])
async def test_391_reauthenticates_and_resends(op: str) -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-1", "tok-2"})
        cb = Tokens("tok-1", "tok-2")
        events = Events()
        # no retries: reauthentication happens regardless of retryability (auth spec)
        client = client_for(server, {"OIDC_CALLBACK": cb}, retryReads=False, retryWrites=False,
                            event_listeners=[events])
        try:
            server.fail(op, 391)
            if op == "find":
                assert len(await find_all(client)) == 5
            else:
                await client.db.coll.insert_one({"_id": 99})
        finally:
            client.close()
        assert events.summary(op) == [f"{op} started", f"{op} failed", f"{op} started", f"{op} succeeded"]
        assert server.names("endSessions") == ["saslStart", op, "saslStart", op]
        assert len(cb.calls) == 2 and server.sasl_tokens == ["tok-1", "tok-2"]
        # the auth commands are never published as command events
        assert not events.summary("saslStart", "saslContinue")


async def test_391_on_a_cursor_getmore() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-1", "tok-2"})
        cb = Tokens("tok-1", "tok-2")
        client = client_for(server, {"OIDC_CALLBACK": cb})
        try:
            cursor = client.db.coll.find({}, batch_size=2)
            docs = [await cursor.next(), await cursor.next()]
            server.expired_tokens.add("tok-1")  # the token expires while the cursor is open
            async for doc in cursor:
                docs.append(doc)
        finally:
            client.close()
        assert [d["_id"] for d in docs] == [0, 1, 2, 3, 4]
        names = server.names("endSessions", "killCursors")
        assert names == ["saslStart", "find", "getMore", "saslStart", "getMore", "getMore"]
        assert server.sasl_tokens == ["tok-1", "tok-2"] and len(cb.calls) == 2


async def test_391_inside_retries() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-1", "tok-2"})
        cb = Tokens("tok-1", "tok-2")
        events = Events()
        client = client_for(server, {"OIDC_CALLBACK": cb}, event_listeners=[events])
        try:
            await client.db.coll.insert_one({"_id": 100})
            # the first attempt loses its connection; the retry meets ReauthenticationRequired
            server.fail("insert", "close")
            server.fail("insert", 391)
            await client.db.coll.insert_one({"_id": 101})
        finally:
            client.close()
        assert events.summary("insert") == [
            "insert started", "insert succeeded",
            "insert started", "insert failed",  # network error
            "insert started", "insert failed",  # 391 on the retry's connection
            "insert started", "insert succeeded",
        ]
        inserts = [cmd for _cid, cmd in server.commands if "insert" in cmd]
        assert len({cmd["txnNumber"] for cmd in inserts[1:]}) == 1  # one retryable write
        assert [d["_id"] for d in server.docs if d["_id"] >= 100] == [100, 101]


async def test_failed_reauthentication_is_raised_and_closes_the_connection() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"tok-1", "tok-3"})
        cb = Tokens("tok-1", "tok-bad", "tok-3")
        client = client_for(server, {"OIDC_CALLBACK": cb}, retryReads=False)
        try:
            await find_all(client)
            server.expired_tokens.add("tok-1")
            with pytest.raises(OperationFailure) as info:
                await find_all(client)  # 391, then the new token is refused
            assert info.value.code == 18
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        finds = [cid for cid, cmd in server.commands if "find" in cmd]
        assert len(finds) == 3 and finds[0] == finds[1] != finds[2]  # not the same connection again
        # the refused token left the cache: the next connection asks the callback at once
        assert server.sasl_tokens == ["tok-1", "tok-bad", "tok-3"] and len(cb.calls) == 3
        assert hellos_with_speculative(server) == 0


# -- human callbacks ----------------------------------------------------------------------------
async def test_human_callback_two_step_then_refresh_token() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"h-1", "h-2"})
        cb = Tokens("h-1", "h-2", refresh="refresh-1")
        client = client_for(server, {"OIDC_HUMAN_CALLBACK": cb}, username="alice@example.com")
        try:
            await find_all(client)
            server.expired_tokens.add("h-1")
            await find_all(client)  # 391 -> reauthenticate with the refresh token
        finally:
            client.close()
        assert server.principal_names == ["alice@example.com"]
        first, second = cb.calls
        assert first.idp_info is not None and first.idp_info.issuer == "https://issuer.example"
        assert first.idp_info.clientId == "amongo-test" and first.refresh_token is None
        assert first.timeout_seconds == 300 and first.username == "alice@example.com"
        assert second.refresh_token == "refresh-1" and second.idp_info == first.idp_info
        assert server.names("endSessions") == ["saslStart", "saslContinue", "find", "find", "saslStart", "find"]


async def test_human_callback_refresh_failure_starts_over() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({"h-1", "h-3"})
        cb = Tokens("h-1", "h-2-rejected", "h-3", refresh="refresh-1")
        client = client_for(server, {"OIDC_HUMAN_CALLBACK": cb})
        try:
            await find_all(client)
            server.expired_tokens.add("h-1")
            await find_all(client)
        finally:
            client.close()
        assert [c.refresh_token for c in cb.calls] == [None, "refresh-1", None]  # no refresh token in a new two-step
        assert server.principal_names == [None, None]
        assert server.sasl_tokens == ["h-1", "h-2-rejected", "h-3"]


@pytest.mark.parametrize("allowed", [["example.com"], ["*.example.com"], []])
async def test_allowed_hosts_refuses_before_any_callback(allowed: List[str]) -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        cb = Tokens("h-1")
        await find_fails(
            client_for(server, {"OIDC_HUMAN_CALLBACK": cb, "ALLOWED_HOSTS": allowed}),
            ConfigurationError, match="ALLOWED_HOSTS",
        )
        assert cb.calls == [] and "saslStart" not in server.names()


# -- built-in environments ----------------------------------------------------------------------
async def test_environment_test_reads_oidc_token_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    path = tmp_path / "token"
    path.write_text("file-token\n")
    monkeypatch.setenv("OIDC_TOKEN_FILE", str(path))
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("file-token")
        client = AsyncIOMotorClient(
            f"mongodb://{server.host}/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:test"
            "&directConnection=true", **FAST)
        try:
            await find_all(client)
        finally:
            client.close()
        assert server.sasl_tokens == ["file-token"]


async def test_environment_test_without_token_file() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        await find_fails(
            client_for(server, {"ENVIRONMENT": "test"}),
            ConfigurationError, match="OIDC_TOKEN_FILE",
        )


@pytest.mark.parametrize("var", ["AZURE_FEDERATED_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", None])
async def test_environment_k8s(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, var: Optional[str]) -> None:
    path = tmp_path / "sa-token"
    path.write_text("k8s-token")
    if var is None:
        monkeypatch.setattr(auth_oidc, "K8S_TOKEN_FILE", str(path))
    else:
        monkeypatch.setenv(var, str(path))
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("k8s-token")
        await find_ok(client_for(server, {"ENVIRONMENT": "k8s"}))
        assert server.sasl_tokens == ["k8s-token"]


async def test_environment_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = "api://my app/?x=1&y=2"
    async with FakeMongo("MONGODB-OIDC") as server, FakeHTTP() as http:
        server.valid_tokens.add("azure-token")
        http.routes[("GET", "/metadata/identity/oauth2/token")] = lambda r: (
            (200, {"access_token": "azure-token", "expires_in": "3599"})
            if r.headers.get("metadata") == "true" else (400, "missing Metadata header")
        )
        monkeypatch.setattr(auth_oidc, "AZURE_IMDS_ENDPOINT", http.url)
        await find_ok(client_for(server, {"ENVIRONMENT": "azure", "TOKEN_RESOURCE": resource}, username="client-id-1"))
        (req,) = http.requests
        assert req.query == {"api-version": "2018-02-01", "resource": resource, "client_id": "client-id-1"}
        assert req.headers["accept"] == "application/json"
        assert server.sasl_tokens == ["azure-token"]


async def test_environment_azure_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-OIDC") as server, FakeHTTP() as http:
        http.routes[("GET", "/metadata/identity/oauth2/token")] = lambda r: (500, "no identity")
        monkeypatch.setattr(auth_oidc, "AZURE_IMDS_ENDPOINT", http.url)
        await find_fails(
            client_for(server, {"ENVIRONMENT": "azure", "TOKEN_RESOURCE": "r"}),
            OperationFailure, match="Azure instance metadata service answered HTTP 500",
        )


async def test_environment_gcp_through_gce_metadata_host(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-OIDC") as server, FakeHTTP() as http:
        server.valid_tokens.add("gcp-token")
        http.routes[("GET", "/computeMetadata/v1/instance/service-accounts/default/identity")] = lambda r: (
            (200, "gcp-token") if r.headers.get("metadata-flavor") == "Google" else (403, "flavor")
        )
        monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{http.port}")
        await find_ok(client_for(server, {"ENVIRONMENT": "gcp", "TOKEN_RESOURCE": "audience:x/y"}))
        (req,) = http.requests
        assert req.query == {"audience": "audience:x/y"}
        assert server.sasl_tokens == ["gcp-token"]


async def test_environment_gcp_unreachable() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        await find_fails(
            client_for(server, {"ENVIRONMENT": "gcp", "TOKEN_RESOURCE": "aud"}),
            OperationFailure, match="could not reach the GCP metadata server",
        )


# -- auth/unified/mongodb-oidc-no-retry.json's handshake cases, replayed on the scripted server --
async def test_unified_handshake_with_cached_token_uses_speculative_authentication() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("tok-1")
        events = Events()
        client = client_for(server, {"OIDC_CALLBACK": Tokens("tok-1")}, retryReads=False, retryWrites=False,
                            event_listeners=[events])
        try:
            server.fail("insert", "close")
            with pytest.raises(AutoReconnect):  # expectError: isClientError
                await client.db.coll.insert_one({"_id": 1, "x": 1})
            server.fail("saslStart", 18)  # never reached: the new connection authenticates in its hello
            await client.db.coll.insert_one({"_id": 1, "x": 1})
        finally:
            client.close()
        assert events.summary("insert") == ["insert started", "insert failed", "insert started", "insert succeeded"]
        assert server.speculative_ok == 1 and server.failures[-1]["times"] == 1


async def test_unified_handshake_without_cached_token_does_not_use_speculative_authentication() -> None:
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.add("tok-1")
        client = client_for(server, {"OIDC_CALLBACK": Tokens("tok-1")}, retryReads=False, retryWrites=False)
        try:
            server.fail("saslStart", 18)
            with pytest.raises(OperationFailure) as info:
                await client.db.coll.insert_one({"_id": 1, "x": 1})
            assert info.value.code == 18
        finally:
            client.close()
        assert hellos_with_speculative(server) == 0
