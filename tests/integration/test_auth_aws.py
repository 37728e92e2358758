"""MONGODB-AWS against a scripted server that verifies the SigV4 signature it receives, with the
credential sources (URI / keywords, environment, EC2 IMDSv2, ECS, STS AssumeRoleWithWebIdentity)
served by a local asyncio HTTP server, and the error paths (bad and expired credentials, bad
server nonce and STS host, unreachable or failing endpoints, ReauthenticationRequired)."""
from __future__ import annotations

import json
import time
import warnings
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from pymongo.errors import ConfigurationError, OperationFailure

from amongo import auth_aws
from amongo.motor_asyncio import AsyncIOMotorClient
from tests.auth_fakes import FakeHTTP, FakeMongo, find_fails, find_ok

AWS_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_STS", "AWS_REGION", "AWS_DEFAULT_REGION",
)
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLE-session-token=="
FAST = dict(serverSelectionTimeoutMS=3000, heartbeatFrequencyMS=500, connectTimeoutMS=3000)


@pytest.fixture(autouse=True)
def clean_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in AWS_VARS:
        monkeypatch.delenv(name, raising=False)
    # nothing must ever go to the real link-local addresses from a test
    monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(auth_aws, "ECS_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(auth_aws, "STS_ENDPOINT", "http://127.0.0.1:9")
    auth_aws.clear_cache()
    yield
    auth_aws.clear_cache()


def client_for(server: FakeMongo, **kw: Any) -> AsyncIOMotorClient:
    opts: Dict[str, Any] = dict(FAST, authMechanism="MONGODB-AWS", directConnection=True)
    opts.update(kw)
    return AsyncIOMotorClient(f"mongodb://{server.host}/", **opts)


async def find_all(client: AsyncIOMotorClient) -> List[Any]:
    return await client.db.coll.find({}).to_list(None)


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


def imds(http: FakeHTTP, creds: Dict[str, Any], role: str = "amongo-role") -> Dict[str, Any]:
    """EC2 IMDSv2 routes: PUT a session token, then role list and role credentials with it."""
    state: Dict[str, Any] = {"creds": creds, "session": "imds-session-token"}

    def put_token(req: Any) -> Tuple[int, Any]:
        if "x-aws-ec2-metadata-token-ttl-seconds" not in req.headers:
            return 400, "ttl header required"
        return 200, state["session"]

    def need_token(handler: Any) -> Any:
        def wrapped(req: Any) -> Tuple[int, Any]:
            if req.headers.get("x-aws-ec2-metadata-token") != state["session"]:
                return 401, "unauthorized"
            return handler(req)
        return wrapped

    http.routes[("PUT", "/latest/api/token")] = put_token
    http.routes[("GET", "/latest/meta-data/iam/security-credentials/")] = need_token(lambda r: (200, role + "\n"))
    http.routes[("GET", f"/latest/meta-data/iam/security-credentials/{role}")] = need_token(
        lambda r: (200, dict(state["creds"], Code="Success", Type="AWS-HMAC"))
    )
    return state


# -- credential sources -------------------------------------------------------------------------
async def test_keyword_credentials_are_signed_and_verified() -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDKEYWORD"] = (SECRET, None)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # keywords are not deprecated
            client = client_for(server, username="AKIDKEYWORD", password=SECRET)
        try:
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        assert server.aws_signatures_checked >= 1
        assert server.names("endSessions")[:3] == ["saslStart", "saslContinue", "find"]


async def test_uri_credentials_with_session_token_warn_deprecation() -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDURI"] = (SECRET, TOKEN)
        from urllib.parse import quote

        uri = (
            f"mongodb://AKIDURI:{quote(SECRET, safe='')}@{server.host}/?authMechanism=MONGODB-AWS"
            f"&authMechanismProperties=AWS_SESSION_TOKEN:{quote(TOKEN, safe='')}&directConnection=true"
        )
        with pytest.warns(DeprecationWarning, match="MONGODB-AWS credentials in the connection string"):
            client = AsyncIOMotorClient(uri, **FAST)
        try:
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        assert server.aws_signatures_checked >= 1


async def test_environment_variables_are_read_at_each_authentication(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDENV1"] = (SECRET, TOKEN)
        server.aws_users["AKIDENV2"] = ("other-secret", None)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
        client = client_for(server)
        try:
            await find_all(client)
            # rotated in the environment: the next connection signs with the new key
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV2")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other-secret")
            monkeypatch.delenv("AWS_SESSION_TOKEN")
            client2 = client_for(server)
            try:
                await find_all(client2)
            finally:
                client2.close()
        finally:
            client.close()
        assert server.aws_signatures_checked >= 2
        assert auth_aws._cached is None  # environment credentials are never cached


async def test_environment_half_set_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDHALF")
        await find_fails(client_for(server), ConfigurationError, match="must be set together")


async def test_ec2_imdsv2_credentials_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["AKIDEC2"] = (SECRET, TOKEN)
        imds(http, {"AccessKeyId": "AKIDEC2", "SecretAccessKey": SECRET, "Token": TOKEN, "Expiration": iso(3600)})
        monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", http.url)
        await find_ok(client_for(server))
        assert [(r.method, r.path) for r in http.requests] == [
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("GET", "/latest/meta-data/iam/security-credentials/amongo-role"),
        ]
        # a second client (new connections) reuses the cached temporary credentials, even
        # once the environment holds other credentials (auth spec, "Caching Credentials")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNOTUSED")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-used")
        await find_ok(client_for(server))
        assert len(http.requests) == 3
        assert server.aws_signatures_checked == 2


async def test_imds_endpoint_from_the_aws_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["AKIDEC2"] = (SECRET, TOKEN)
        imds(http, {"AccessKeyId": "AKIDEC2", "SecretAccessKey": SECRET, "Token": TOKEN, "Expiration": iso(3600)})
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", http.url + "/")
        await find_ok(client_for(server))
        assert http.hits("/latest/api/token") == 1


async def test_credentials_close_to_expiry_are_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["AKIDSOON"] = (SECRET, TOKEN)
        # expires in 4 minutes: inside the 5-minute margin, so never reused from the cache
        imds(http, {"AccessKeyId": "AKIDSOON", "SecretAccessKey": SECRET, "Token": TOKEN, "Expiration": iso(240)})
        monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", http.url)
        for _ in range(2):
            await find_ok(client_for(server))
        assert http.hits("/latest/api/token") == 2


async def test_ecs_container_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["AKIDECS"] = (SECRET, TOKEN)
        http.routes[("GET", "/v2/credentials/task-1234")] = lambda r: (
            200, {"AccessKeyId": "AKIDECS", "SecretAccessKey": SECRET, "Token": TOKEN, "Expiration": iso(3600),
                  "RoleArn": "arn:aws:iam::123:role/task"},
        )
        http.chunked.add("/v2/credentials/task-1234")  # and the client reads chunked bodies
        monkeypatch.setattr(auth_aws, "ECS_ENDPOINT", http.url)
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/task-1234")
        await find_ok(client_for(server))
        assert [r.path for r in http.requests] == ["/v2/credentials/task-1234"]
        assert server.aws_signatures_checked == 1


async def test_web_identity_through_sts(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    web_token = "eyJhbGciOiJSUzI1NiJ9.web-identity.signature"
    token_file = tmp_path / "token"
    token_file.write_text(web_token + "\n")
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["ASIAWEBID"] = (SECRET, TOKEN)

        def sts(req: Any) -> Tuple[int, Any]:
            form = req.form()
            if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("WebIdentityToken") != web_token:
                return 400, {"Error": "bad request"}
            creds = {"AccessKeyId": "ASIAWEBID", "SecretAccessKey": SECRET, "SessionToken": TOKEN,
                     "Expiration": time.time() + 3600}
            return 200, {"AssumeRoleWithWebIdentityResponse": {"AssumeRoleWithWebIdentityResult": {"Credentials": creds}}}

        http.routes[("POST", "/")] = sts
        monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/amongo")
        monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "amongo-session")
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", http.url)  # STS is HTTPS in reality
        await find_ok(client_for(server))
        (req,) = http.requests
        form = req.form()
        assert form["RoleArn"] == "arn:aws:iam::123456789012:role/amongo"
        assert form["RoleSessionName"] == "amongo-session" and form["Version"] == "2011-06-15"
        assert req.headers["accept"] == "application/json"
        assert "WebIdentityToken" not in req.path and not req.query  # the token travels in the body
        assert server.aws_signatures_checked == 1


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: Any) -> Dict[str, str]:
    from tests.servers import make_tls_files

    return make_tls_files(tmp_path_factory.mktemp("sts-tls"))


@pytest.mark.parametrize("trusted", [True, False])
async def test_sts_over_https_verifies_the_certificate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, tls_files: Dict[str, str], trusted: bool
) -> None:
    import ssl

    token_file = tmp_path / "token"
    token_file.write_text("web-identity-token")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls_files["server_cert"], tls_files["server_key"])
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP(ssl=server_ctx) as http:
        server.aws_users["ASIATLS"] = (SECRET, TOKEN)
        creds = {"AccessKeyId": "ASIATLS", "SecretAccessKey": SECRET, "SessionToken": TOKEN}
        http.routes[("POST", "/")] = lambda r: (200, {"Credentials": creds})
        monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/amongo")
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", http.url)
        assert http.url.startswith("https://")
        if trusted:  # the default context trusts the test CA through OpenSSL's SSL_CERT_FILE
            monkeypatch.setenv("SSL_CERT_FILE", tls_files["ca"])
            await find_ok(client_for(server))
            assert server.aws_signatures_checked == 1
        else:
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))
            await find_fails(client_for(server), OperationFailure, match="could not reach the STS")
            assert http.requests == []


def test_sts_endpoint_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_aws, "STS_ENDPOINT", "https://sts.amazonaws.com")
    assert auth_aws._sts_endpoint() == "https://sts.amazonaws.com"
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert auth_aws._sts_endpoint() == "https://sts.eu-west-3.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "https://sts-fips.us-east-1.amazonaws.com")
    assert auth_aws._sts_endpoint() == "https://sts-fips.us-east-1.amazonaws.com"


# -- error paths --------------------------------------------------------------------------------
async def test_bad_credentials_fail_without_revealing_them() -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDBAD"] = ("the-right-secret", None)
        info = await find_fails(client_for(server, username="AKIDBAD", password=SECRET), OperationFailure)
        assert info.value.code == 18
        assert SECRET not in str(info.value) and SECRET not in repr(info.value.details)
        assert server.aws_signatures_checked == 0


async def test_expired_temporary_credentials_are_dropped_and_fetched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        server.aws_users["AKIDOLD"] = (SECRET, TOKEN)
        state = imds(http, {"AccessKeyId": "AKIDOLD", "SecretAccessKey": SECRET, "Token": TOKEN, "Expiration": iso(3600)})
        monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", http.url)
        client = client_for(server)
        try:
            await find_all(client)
            assert auth_aws._cached is not None
            # the server no longer accepts them (revoked / expired early); IMDS has new ones
            del server.aws_users["AKIDOLD"]
            server.aws_users["AKIDNEW"] = ("new-secret", "new-token")
            state["creds"] = {"AccessKeyId": "AKIDNEW", "SecretAccessKey": "new-secret", "Token": "new-token",
                              "Expiration": iso(3600)}
            client2 = client_for(server)
            try:
                with pytest.raises(OperationFailure) as info:
                    await find_all(client2)  # the cached (rejected) credentials
                assert info.value.code == 18
                assert auth_aws._cached is None  # a failed authentication clears the cache
                assert len(await find_all(client2)) == 5  # fetched again, accepted
            finally:
                client2.close()
        finally:
            client.close()
        assert http.hits("/latest/api/token") == 2


@pytest.mark.parametrize(
    "host, message",
    [("sts..amazonaws.com", "invalid STS host"), (".amazonaws.com", "invalid STS host"),
     ("sts.amazonaws.", "invalid STS host"), ("", "invalid STS host"), ("a" * 256, "invalid STS host")],
)
async def test_invalid_sts_host_from_the_server(host: str, message: str) -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDHOST"] = (SECRET, None)
        server.sts_host = host
        await find_fails(client_for(server, username="AKIDHOST", password=SECRET), OperationFailure, match=message)
        assert "saslContinue" not in server.names()


@pytest.mark.parametrize("bad", ["wrong-prefix", "short"])
async def test_invalid_server_nonce(bad: str) -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDNONCE"] = (SECRET, None)
        if bad == "short":
            server.server_nonce = lambda client_nonce: client_nonce + b"x" * 16
        else:
            server.server_nonce = lambda client_nonce: bytes(32) + b"x" * 32
        await find_fails(
            client_for(server, username="AKIDNONCE", password=SECRET),
            OperationFailure, match="invalid nonce",
        )
        assert "saslContinue" not in server.names()


async def test_regional_sts_host_signs_for_its_region() -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDREGION"] = (SECRET, None)
        server.sts_host = "sts.us-west-2.amazonaws.com"
        await find_ok(client_for(server, username="AKIDREGION", password=SECRET))
        assert server.aws_signatures_checked == 1


@pytest.mark.parametrize(
    "scenario, message",
    [("unreachable", "could not reach the EC2 instance metadata service"),
     ("http-500", "answered HTTP 500"), ("no-role", "lists no IAM role"),
     ("not-json", "invalid JSON"), ("no-keys", "returned no credentials")],
)
async def test_metadata_failures_are_operation_failures(
    monkeypatch: pytest.MonkeyPatch, scenario: str, message: str
) -> None:
    async with FakeMongo("MONGODB-AWS") as server, FakeHTTP() as http:
        imds(http, {"AccessKeyId": "AKIDX", "SecretAccessKey": SECRET, "Token": TOKEN})
        if scenario != "unreachable":
            monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", http.url)
        route = ("GET", "/latest/meta-data/iam/security-credentials/amongo-role")
        if scenario == "http-500":
            http.routes[("PUT", "/latest/api/token")] = lambda r: (500, "boom")
        elif scenario == "no-role":
            http.routes[("GET", "/latest/meta-data/iam/security-credentials/")] = lambda r: (200, "")
        elif scenario == "not-json":
            http.routes[route] = lambda r: (200, "<html>")
        elif scenario == "no-keys":
            http.routes[route] = lambda r: (200, {"Code": "Success"})
        info = await find_fails(client_for(server), OperationFailure, match=message)
        assert "saslStart" not in server.names()
        assert SECRET not in str(info.value)


async def test_ecs_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x")
        await find_fails(
            client_for(server),
            OperationFailure, match="could not reach the ECS container credentials endpoint",
        )


async def test_reauthentication_required_reruns_the_conversation() -> None:
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDREAUTH"] = (SECRET, None)
        client = client_for(server, username="AKIDREAUTH", password=SECRET, retryReads=False)
        try:
            server.fail("find", 391)
            assert len(await find_all(client)) == 5
        finally:
            client.close()
        assert server.names("endSessions") == ["saslStart", "saslContinue", "find", "saslStart", "saslContinue", "find"]
        assert server.aws_signatures_checked == 2


def test_expiration_formats() -> None:
    assert auth_aws.parse_expiration("2019-11-07T00:26:07Z") == 1573086367.0
    assert auth_aws.parse_expiration("2019-11-07T00:26:07.123Z") == 1573086367.0
    assert auth_aws.parse_expiration("2019-11-07T01:26:07+01:00") == 1573086367.0
    assert auth_aws.parse_expiration(1573086367) == 1573086367.0
    assert auth_aws.parse_expiration(None) is None
    with pytest.raises(OperationFailure):
        auth_aws.parse_expiration("tomorrow")


def test_credentials_repr_is_redacted() -> None:
    creds = auth_aws.AwsCredentials("AKID", SECRET, TOKEN, 1.0)
    assert SECRET not in repr(creds) and TOKEN not in repr(creds)
    assert json.dumps(repr(creds))
