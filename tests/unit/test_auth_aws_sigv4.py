"""MONGODB-AWS pure parts: SigV4 against AWS's published example, the spec's region table and
host rules, the conversation payloads and the server-nonce checks (no sockets)."""
from __future__ import annotations

import os

import bson
import pytest
from bson.binary import Binary
from pymongo.errors import OperationFailure

from amongo import auth_aws
from amongo.auth_aws import AwsCredentials, client_final, client_first, region_from_host, sign_v4
from tests.auth_fakes import expected_signature

EXAMPLE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def test_sigv4_matches_the_aws_documentation_example() -> None:
    # AWS General Reference, "Signature Version 4 signing process" worked example (IAM ListUsers)
    auth = sign_v4(
        method="GET", host="iam.amazonaws.com", path="/", query="Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body=b"",
        region="us-east-1", service="iam", credentials=EXAMPLE, amz_date="20150830T123600Z",
    )
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


@pytest.mark.parametrize(
    "host, region",
    [("sts.amazonaws.com", "us-east-1"), ("sts.us-west-2.amazonaws.com", "us-west-2"),
     ("sts.us-west-2.amazonaws.com.ch", "us-west-2"), ("example.com", "com"), ("localhost", "us-east-1")],
)
def test_region_table(host: str, region: str) -> None:
    assert region_from_host(host) == region


@pytest.mark.parametrize("host", ["sts..com", ".amazonaws.com", "sts.amazonaws.", "", "a" * 256])
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(OperationFailure, match="invalid STS host"):
        region_from_host(host)


def test_client_first_payload() -> None:
    nonce = os.urandom(32)
    doc = bson.decode(client_first(nonce))
    assert doc == {"r": nonce, "p": 110}


@pytest.mark.parametrize("token", [None, "session-token"])
def test_client_final_is_what_the_server_verifies(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.setattr(auth_aws, "_now", lambda: 1573086367.0)  # 2019-11-07T00:26:07Z
    nonce = os.urandom(32)
    server_nonce = nonce + os.urandom(32)
    server_first = bson.encode({"s": Binary(server_nonce), "h": "sts.us-east-2.amazonaws.com"})
    creds = AwsCredentials("AKIDTEST", "secret", token)
    doc = bson.decode(client_final(nonce, server_first, creds))
    assert doc["d"] == "20191107T002607Z"
    assert doc.get("t") == token
    import base64

    headers = {
        "content-length": "43", "content-type": "application/x-www-form-urlencoded",
        "host": "sts.us-east-2.amazonaws.com", "x-amz-date": "20191107T002607Z",
        "x-mongodb-gs2-cb-flag": "n", "x-mongodb-server-nonce": base64.b64encode(server_nonce).decode(),
    }
    if token:
        headers["x-amz-security-token"] = token
    sig = expected_signature("secret", "20191107T002607Z", "us-east-2", headers)
    assert doc["a"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20191107/us-east-2/sts/aws4_request, "
        f"SignedHeaders={';'.join(sorted(headers))}, Signature={sig}"
    )


@pytest.mark.parametrize(
    "server_nonce",
    [lambda n: bytes(32) + n, lambda n: n + b"x" * 31, lambda n: n + b"x" * 33, lambda n: n],
)
def test_server_nonce_checks(server_nonce) -> None:
    nonce = os.urandom(32)
    first = bson.encode({"s": Binary(server_nonce(nonce)), "h": "sts.amazonaws.com"})
    with pytest.raises(OperationFailure, match="invalid nonce"):
        client_final(nonce, first, AwsCredentials("a", "b"))


def test_malformed_server_first() -> None:
    with pytest.raises(OperationFailure, match="malformed"):
        client_final(os.urandom(32), bson.encode({"h": "sts.amazonaws.com"}), AwsCredentials("a", "b"))
