"""MONGODB-AWS authentication (auth spec): SigV4-signed ``GetCallerIdentity`` over SASL.

The conversation and the Signature Version 4 arithmetic are pure functions; credentials come,
in the spec's order, from the client's username/password (+ ``AWS_SESSION_TOKEN``), the cache of
temporary credentials, the environment (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, read at every authentication), STS ``AssumeRoleWithWebIdentity``
(``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``), the ECS container endpoint
(``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI``) and finally EC2 instance metadata (IMDSv2). The
HTTP requests run on the event loop (:mod:`amongo._http`); no AWS SDK is needed.

The endpoints are module-level settings (tests point them at a local server), and the standard
AWS variables ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` and ``AWS_ENDPOINT_URL_STS`` override the EC2
metadata and STS endpoints as they do for the AWS SDKs.

Temporary credentials are cached process-wide and reused while they are more than five minutes
from expiring; any failed MONGODB-AWS authentication clears the cache. No lock is held while
fetching (as the spec asks): concurrent first connections may each fetch once.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode

import bson
from bson.binary import Binary
from pymongo.errors import ConfigurationError, OperationFailure

from amongo import _csot
from amongo import _http
from amongo.credentials import AuthConnection


__all__ = ["AwsCredentials", "authenticate", "region_from_host", "sign_v4", "clear_cache"]

#: Link-local address of the ECS agent (``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` is appended).
ECS_ENDPOINT = "http://169.254.170.2"
#: EC2 instance metadata service (IMDSv2); ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` overrides it.
EC2_ENDPOINT = "http://169.254.169.254"
#: STS for AssumeRoleWithWebIdentity; ``AWS_ENDPOINT_URL_STS`` overrides it. When ``AWS_REGION``
#: (or ``AWS_DEFAULT_REGION``) is set, the regional ``https://sts.<region>.amazonaws.com``.
STS_ENDPOINT = "https://sts.amazonaws.com"
#: Read timeout for each metadata / STS request, seconds (the spec says 10).
HTTP_TIMEOUT = 10.0
#: Lifetime asked of an IMDSv2 session token, seconds.
IMDS_TOKEN_TTL = 30
#: Cached credentials are used only while they are more than this far from expiring.
EXPIRY_MARGIN = 5 * 60

_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
_GS2_CB_FLAG = 110  # ord("n"): no channel binding
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: Clock for signing dates and cache expiry (replaceable in tests).
_now = time.time


class AwsCredentials:
    """An access key, secret key, optional session token and optional expiry (epoch seconds)."""

    __slots__ = ("access_key_id", "secret_access_key", "session_token", "expiration")

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: Optional[str] = None,
        expiration: Optional[float] = None,
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = expiration

    def valid(self) -> bool:
        """True while more than :data:`EXPIRY_MARGIN` seconds from expiring (or no expiry)."""
        return self.expiration is None or self.expiration - _now() > EXPIRY_MARGIN

    def __repr__(self) -> str:
        token = "<redacted>" if self.session_token else None
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key=<redacted>, session_token={token})"


_cached: Optional[AwsCredentials] = None


def clear_cache() -> None:
    """Forget the cached temporary credentials."""
    global _cached
    _cached = None


# -- the pure parts -----------------------------------------------------------------------------
def region_from_host(host: str) -> str:
    """The signing region for the STS host the server named (auth spec, "Region Calculation").

    :raises OperationFailure: for an invalid host (empty, longer than 255 bytes, empty label).
    """
    if not host or len(host.encode("utf-8")) > 255:
        raise OperationFailure("MONGODB-AWS: the server returned an invalid STS host")
    labels = host.split(".")
    if any(not label for label in labels):
        raise OperationFailure("MONGODB-AWS: the server returned an invalid STS host")
    if host == "sts.amazonaws.com" or len(labels) == 1:
        return "us-east-1"
    return labels[1]


def sign_v4(
    *,
    method: str,
    host: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    region: str,
    service: str,
    credentials: AwsCredentials,
    amz_date: str,
) -> str:
    """The ``Authorization`` header value of an AWS Signature Version 4 request.

    *headers* are the headers to sign besides ``host`` and ``x-amz-date`` (which are added
    here); *query* is the canonical (already sorted and encoded) query string.
    """
    signed: Dict[str, str] = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed["host"] = host
    signed["x-amz-date"] = amz_date
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            signed_headers,
            hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256,
        ]
    )
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + credentials.secret_access_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )


def client_first(nonce: bytes) -> bytes:
    """The saslStart payload: the 32-byte client nonce and the gs2-cb-flag ``n``."""
    return bson.encode({"r": Binary(nonce), "p": _GS2_CB_FLAG})


def client_final(nonce: bytes, server_first: bytes, credentials: AwsCredentials) -> bytes:
    """The saslContinue payload (authorization header, date, token) for *server_first*.

    :raises OperationFailure: the server nonce or STS host fails the spec's checks.
    """
    try:
        doc = bson.decode(server_first)
        server_nonce = bytes(doc["s"])
        host = doc["h"]
    except Exception:
        raise OperationFailure("MONGODB-AWS: malformed server reply") from None
    if len(server_nonce) != 64 or not hmac.compare_digest(server_nonce[:32], nonce):
        raise OperationFailure("MONGODB-AWS: the server returned an invalid nonce")
    if not isinstance(host, str):
        raise OperationFailure("MONGODB-AWS: the server returned an invalid STS host")
    region = region_from_host(host)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(_now()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": str(len(_BODY)),
        "X-MongoDB-Server-Nonce": _b64(server_nonce),
        "X-MongoDB-GS2-CB-Flag": "n",
    }
    if credentials.session_token:
        headers["X-Amz-Security-Token"] = credentials.session_token
    auth = sign_v4(
        method="POST", host=host, path="/", query="", headers=headers, body=_BODY,
        region=region, service="sts", credentials=credentials, amz_date=amz_date,
    )
    payload: Dict[str, Any] = {"a": auth, "d": amz_date}
    if credentials.session_token:
        payload["t"] = credentials.session_token
    return bson.encode(payload)


def _b64(data: bytes) -> str:
    import base64

    return base64.standard_b64encode(data).decode()


def parse_expiration(value: Any) -> Optional[float]:
    """Epoch seconds of an ``Expiration`` field (ISO 8601 string or epoch number), or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = re.match(
        r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|z|[+-]\d\d:?\d\d)?$", str(value).strip()
    )
    if not m:
        raise OperationFailure("MONGODB-AWS: credentials with an unreadable Expiration")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    epoch = float(calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)))
    tz = m.group(7)
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def _from_document(doc: Any, source: str, token_field: str) -> AwsCredentials:
    if not isinstance(doc, Mapping):
        raise OperationFailure(f"MONGODB-AWS: unexpected response from the {source}")
    key, secret, token = doc.get("AccessKeyId"), doc.get("SecretAccessKey"), doc.get(token_field)
    if not key or not secret:
        raise OperationFailure(f"MONGODB-AWS: the {source} returned no credentials")
    expiration = parse_expiration(doc.get("Expiration"))
    return AwsCredentials(str(key), str(secret), str(token) if token else None, expiration)


# -- obtaining credentials ----------------------------------------------------------------------
def _explicit(cred: Any) -> Optional[AwsCredentials]:
    if cred.username is None:
        return None
    return AwsCredentials(cred.username, cred.password or "", cred.mechanism_properties.get("AWS_SESSION_TOKEN"))


def _from_environment() -> Optional[AwsCredentials]:
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    token = os.environ.get("AWS_SESSION_TOKEN")
    if not key and not secret:
        if token:
            raise ConfigurationError("MONGODB-AWS: AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        return None
    if not key or not secret:
        raise ConfigurationError("MONGODB-AWS: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
    return AwsCredentials(key, secret, token or None)


def _timeout() -> float:
    remaining = _csot.remaining()
    if remaining is None:
        return HTTP_TIMEOUT
    return max(0.0, min(HTTP_TIMEOUT, remaining))


async def _call(method: str, url: str, source: str, **kwargs: Any) -> bytes:
    try:
        resp = await _http.request(method, url, timeout=_timeout(), **kwargs)
    except _http.HTTPError as exc:
        raise OperationFailure(f"MONGODB-AWS: could not reach the {source}: {exc}") from None
    if resp.status != 200:
        raise OperationFailure(f"MONGODB-AWS: the {source} answered HTTP {resp.status}")
    return resp.body



def _json(body: bytes, source: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise OperationFailure(f"MONGODB-AWS: the {source} returned invalid JSON") from None


def _sts_endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL_STS")
    if url:
        return url
    if STS_ENDPOINT != "https://sts.amazonaws.com":
        return STS_ENDPOINT
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return f"https://sts.{region}.amazonaws.com" if region else STS_ENDPOINT


async def _from_web_identity(token_file: str, role_arn: str) -> AwsCredentials:
    source = "STS AssumeRoleWithWebIdentity endpoint"
    try:
        with open(token_file, encoding="utf-8") as f:
            web_token = f.read().strip()
    except OSError as exc:
        raise OperationFailure(f"MONGODB-AWS: cannot read AWS_WEB_IDENTITY_TOKEN_FILE: {exc.strerror}") from None
    session = os.environ.get("AWS_ROLE_SESSION_NAME") or f"amongo-{uuid.uuid4().hex}"
    form = urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "RoleSessionName": session,
            "RoleArn": role_arn,
            "WebIdentityToken": web_token,
            "Version": "2011-06-15",
        },
        quote_via=quote,
    ).encode()
    body = await _call(
        "POST",
        _sts_endpoint().rstrip("/") + "/",
        source,
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
        body=form,
    )
    doc = _json(body, source)
    creds = _find_key(doc, "Credentials")
    return _from_document(creds, source, "SessionToken")


def _find_key(doc: Any, name: str) -> Any:
    """*name*'s value anywhere in nested dicts (STS wraps Credentials in Response/Result)."""
    if isinstance(doc, Mapping):
        if name in doc:
            return doc[name]
        for value in doc.values():
            found = _find_key(value, name)
            if found is not None:
                return found
    return None


async def _from_ecs(relative_uri: str) -> AwsCredentials:
    source = "ECS container credentials endpoint"
    body = await _call("GET", ECS_ENDPOINT.rstrip("/") + "/" + relative_uri.lstrip("/"), source)
    return _from_document(_json(body, source), source, "Token")


async def _from_ec2() -> AwsCredentials:
    source = "EC2 instance metadata service"
    base = (os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or EC2_ENDPOINT).rstrip("/")
    token = (
        await _call(
            "PUT", base + "/latest/api/token", source,
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(IMDS_TOKEN_TTL)},
        )
    ).decode("latin-1").strip()
    headers = {"X-aws-ec2-metadata-token": token}
    path = base + "/latest/meta-data/iam/security-credentials/"
    role = (await _call("GET", path, source, headers=headers)).decode("utf-8").strip().splitlines()
    if not role or not role[0].strip():
        raise OperationFailure(f"MONGODB-AWS: the {source} lists no IAM role")
    body = await _call("GET", path + quote(role[0].strip()), source, headers=headers)
    return _from_document(_json(body, source), source, "Token")


async def obtain_credentials(cred: Any) -> Tuple[AwsCredentials, bool]:
    """The credentials to sign with, and whether they came from an endpoint (cacheable)."""
    explicit = _explicit(cred)
    if explicit is not None:
        return explicit, False
    cached = _cached
    if cached is not None and cached.valid():
        return cached, True
    env = _from_environment()
    if env is not None:
        return env, False
    token_file = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    role_arn = os.environ.get("AWS_ROLE_ARN")
    if token_file and role_arn:
        fetched = await _from_web_identity(token_file, role_arn)
    else:
        relative = os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        fetched = await (_from_ecs(relative) if relative else _from_ec2())
    _store(fetched)
    return fetched, True


def _store(creds: AwsCredentials) -> None:
    global _cached
    _cached = creds  # one assignment: the cache is written atomically


# -- the conversation ---------------------------------------------------------------------------
async def authenticate(conn: AuthConnection, cred: Any) -> None:
    """Authenticate *conn* with MONGODB-AWS (raises OperationFailure on failure)."""
    try:
        credentials, _cacheable = await obtain_credentials(cred)
        nonce = os.urandom(32)
        reply = await conn.command(
            "$external",
            {"saslStart": 1, "mechanism": "MONGODB-AWS", "payload": Binary(client_first(nonce))},
            compress=False,
        )
        final = client_final(nonce, bytes(reply["payload"]), credentials)
        reply = await conn.command(
            "$external",
            {"saslContinue": 1, "conversationId": reply["conversationId"], "payload": Binary(final)},
            compress=False,
        )
        if not reply.get("done"):
            raise OperationFailure("MONGODB-AWS: the server did not complete the conversation")
    except BaseException:
        clear_cache()  # "If AWS authentication fails for any reason, the cache MUST be cleared."
        raise
