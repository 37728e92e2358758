"""No AWS secret key, session token, web identity token or OIDC token (access or refresh) appears
in any log record, monitoring event, repr or exception while MONGODB-AWS and MONGODB-OIDC
authenticate, fail, and reauthenticate."""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Iterator, List
from urllib.parse import quote

import pytest
from pymongo import monitoring
from pymongo.auth_oidc import OIDCCallback, OIDCCallbackContext, OIDCCallbackResult

from amongo import auth_aws
from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.uri import parse_uri
from tests.auth_fakes import FakeHTTP, FakeMongo

SECRETS = [
    "SECRET-aws-secret-access-key-0001",
    "SECRET-aws-session-token-0002",
    "SECRET-imds-secret-0003",
    "SECRET-imds-token-0004",
    "SECRET-web-identity-0005",
    "SECRET-oidc-access-0006",
    "SECRET-oidc-access-0007",
    "SECRET-oidc-refresh-0008",
    "SECRET-oidc-rejected-0009",
]
FAST = dict(serverSelectionTimeoutMS=3000, heartbeatFrequencyMS=500, connectTimeoutMS=3000, directConnection=True)


class Everything(monitoring.CommandListener, monitoring.ConnectionPoolListener, monitoring.ServerListener,
                 monitoring.ServerHeartbeatListener, monitoring.TopologyListener):
    """Records every monitoring event, rendered with its documents."""

    def __init__(self) -> None:
        self.seen: List[str] = []

    def _add(self, event: Any) -> None:
        parts = [repr(event)]
        for attr in ("command", "reply", "failure", "reply_document", "new_description", "previous_description"):
            value = getattr(event, attr, None)
            if value is not None:
                parts.append(repr(value))
        self.seen.append(" ".join(parts))

    started = succeeded = failed = _add
    pool_created = pool_ready = pool_cleared = pool_closed = _add
    connection_created = connection_ready = connection_closed = _add
    connection_check_out_started = connection_check_out_failed = _add
    connection_checked_out = connection_checked_in = _add
    opened = closed = description_changed = _add


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage() + repr(record.__dict__))


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def exception_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text + repr(exc) + repr(getattr(exc, "details", None))


class Human(OIDCCallback):
    def __init__(self) -> None:
        self.tokens = ["SECRET-oidc-access-0006", "SECRET-oidc-access-0007"]

    def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        return OIDCCallbackResult(access_token=self.tokens.pop(0), refresh_token="SECRET-oidc-refresh-0008")


class Rejected(OIDCCallback):
    def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        return OIDCCallbackResult(access_token="SECRET-oidc-rejected-0009")


async def test_no_secret_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, records: Records) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    auth_aws.clear_cache()
    events = Everything()
    texts: List[str] = []
    errors: List[BaseException] = []

    async def run(client: AsyncIOMotorClient, fail_with: Any = None) -> None:
        texts.append(repr(client))
        try:
            await client.db.coll.find({}, batch_size=2).to_list(None)
        except Exception as exc:  # noqa: BLE001 - the error paths are part of the check
            errors.append(exc)
        finally:
            client.close()

    # MONGODB-AWS: URI credentials with a session token, a 391 mid-operation, a bad secret
    async with FakeMongo("MONGODB-AWS") as server:
        server.aws_users["AKIDREDACT"] = (SECRETS[0], SECRETS[1])
        uri = (f"mongodb://AKIDREDACT:{quote(SECRETS[0], safe='')}@{server.host}/?authMechanism=MONGODB-AWS"
               f"&authMechanismProperties=AWS_SESSION_TOKEN:{quote(SECRETS[1], safe='')}")
        texts.append(repr(parse_uri(uri)))
        with pytest.warns(DeprecationWarning) as warned:
            client = AsyncIOMotorClient(uri, event_listeners=[events], **FAST)
        texts.extend(str(w.message) for w in warned)
        texts.append(repr(client._credential))
        server.fail("find", 391)
        await run(client)
        await run(AsyncIOMotorClient(f"mongodb://{server.host}/", authMechanism="MONGODB-AWS", username="AKIDREDACT",
                                     password="wrong-" + SECRETS[0], event_listeners=[events], **FAST))
        # EC2 temporary credentials, then STS web identity
        async with FakeHTTP() as http:
            server.aws_users["AKIDIMDS"] = (SECRETS[2], SECRETS[3])
            http.routes[("PUT", "/latest/api/token")] = lambda r: (200, "imds-session")
            http.routes[("GET", "/latest/meta-data/iam/security-credentials/")] = lambda r: (200, "role")
            http.routes[("GET", "/latest/meta-data/iam/security-credentials/role")] = lambda r: (
                200, {"AccessKeyId": "AKIDIMDS", "SecretAccessKey": SECRETS[2], "Token": SECRETS[3],
                      "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))})
            monkeypatch.setattr(auth_aws, "EC2_ENDPOINT", http.url)
            await run(AsyncIOMotorClient(f"mongodb://{server.host}/", authMechanism="MONGODB-AWS",
                                         event_listeners=[events], **FAST))
            texts.append(repr(auth_aws._cached))
            auth_aws.clear_cache()
            token_file = tmp_path / "web"
            token_file.write_text(SECRETS[4])
            monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
            monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r")
            monkeypatch.setenv("AWS_ENDPOINT_URL_STS", http.url)
            http.routes[("POST", "/")] = lambda r: (403, {"Error": "denied"})  # STS refuses
            await run(AsyncIOMotorClient(f"mongodb://{server.host}/", authMechanism="MONGODB-AWS",
                                         event_listeners=[events], **FAST))
    auth_aws.clear_cache()

    # MONGODB-OIDC: human flow with a refresh token, 391 on getMore, a rejected token
    async with FakeMongo("MONGODB-OIDC") as server:
        server.valid_tokens.update({SECRETS[5], SECRETS[6]})
        client = AsyncIOMotorClient(f"mongodb://{server.host}/", authMechanism="MONGODB-OIDC",
                                    authMechanismProperties={"OIDC_HUMAN_CALLBACK": Human()},
                                    event_listeners=[events], **FAST)
        texts.append(repr(client._credential))
        cursor = client.db.coll.find({}, batch_size=2)
        await cursor.next()
        server.expired_tokens.add(SECRETS[5])
        await cursor.to_list(None)
        texts.append(repr(client))
        client.close()
        await run(AsyncIOMotorClient(f"mongodb://{server.host}/", authMechanism="MONGODB-OIDC",
                                     authMechanismProperties={"OIDC_CALLBACK": Rejected()},
                                     event_listeners=[events], **FAST))
        assert server.sasl_tokens[:2] == [SECRETS[5], SECRETS[6]]  # the flows really ran

    assert len(errors) == 3, errors  # bad AWS secret, STS refusal, rejected OIDC token
    texts.extend(exception_text(e) for e in errors)
    corpus = "\n".join(texts + events.seen + records.seen)
    # the checks saw what they should: credential reprs, command and pool events, log records
    assert "AKIDREDACT" in corpus and "<redacted>" in corpus
    assert any("CommandFailedEvent" in s for s in events.seen)
    assert any("ConnectionCheckedOutEvent" in s for s in events.seen)
    assert records.seen
    for secret in SECRETS:
        assert secret not in corpus, secret
        assert quote(secret, safe="") not in corpus, secret
