"""MONGODB-OIDC authentication (auth spec): machine and human flows, token cache, reauth.

Callbacks are PyMongo's classes (:class:`pymongo.auth_oidc.OIDCCallback` and its context and
result types), so existing callbacks work unchanged. amongo runs no threads: a callback whose
``fetch`` is a coroutine function (or returns an awaitable) is awaited with the callback
timeout; a plain synchronous ``fetch`` is called on the event loop and should return quickly
(a token read from a file or memory). The built-in ``ENVIRONMENT`` integrations (``test``,
``azure``, ``gcp``, ``k8s``) are asynchronous; Azure and GCP query their instance metadata
services over asyncio (:data:`AZURE_IMDS_ENDPOINT`, :data:`GCP_METADATA_ENDPOINT`; the
``GCE_METADATA_HOST`` variable overrides the latter as it does for Google's libraries).

The *Client Cache* (the last access token, refresh token and IdP information) lives on the
client's :class:`~amongo.credentials.Credential`; the *Connection Cache* is the token generation
a connection authenticated with (``Connection.auth_state``), so the connection object never
holds the token itself. One asyncio lock serialises callback calls (at least 100 ms apart);
no lock is held during ``saslStart`` / ``saslContinue``.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import quote

import bson
from bson.binary import Binary
from pymongo.auth_oidc import OIDCCallbackContext, OIDCCallbackResult, OIDCIdPInfo
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from amongo import _csot
from amongo import _http
from amongo.credentials import AuthConnection


__all__ = ["authenticate", "reauthenticate", "speculative_command", "OIDCState"]

#: Azure instance metadata service (``/metadata/identity/oauth2/token`` is appended).
AZURE_IMDS_ENDPOINT = "http://169.254.169.254"
#: GCP metadata server; ``GCE_METADATA_HOST`` (a host[:port]) overrides it.
GCP_METADATA_ENDPOINT = "http://metadata.google.internal"
K8S_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"

CALLBACK_VERSION = 1
HUMAN_CALLBACK_TIMEOUT = 5 * 60.0
MACHINE_CALLBACK_TIMEOUT = 60.0
TIME_BETWEEN_CALLS = 0.1
_AUTHENTICATION_FAILED = 18


class OIDCState:
    """The per-client cache (spec: *Client Cache*). Never printed with its tokens."""

    __slots__ = ("access_token", "refresh_token", "idp_info", "generation", "lock", "last_call")

    def __init__(self) -> None:
        self.access_token: Optional[str] = None
        self.refresh_token: Optional[str] = None
        self.idp_info: Optional[OIDCIdPInfo] = None
        #: bumped for every new access token; connections remember the one they used
        self.generation = 0
        self.lock: Optional[asyncio.Lock] = None
        self.last_call = 0.0

    def invalidate(self, generation: Optional[int]) -> None:
        """Forget the access token if it is still the one of *generation* (compare-and-swap)."""
        if generation is not None and generation == self.generation:
            self.access_token = None

    def __repr__(self) -> str:
        return f"<OIDCState generation={self.generation} cached={self.access_token is not None}>"


def _state(cred: Any) -> OIDCState:
    cache = cred.cache
    if cache.data is None:
        cache.data = OIDCState()
    state: OIDCState = cache.data
    return state


# -- built-in environments ----------------------------------------------------------------------
def _read_token_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise OperationFailure(f"MONGODB-OIDC: cannot read the {what} token file: {exc.strerror}") from None


class _TestEnvironment:
    async def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        path = os.environ.get("OIDC_TOKEN_FILE")
        if not path:
            raise ConfigurationError('MONGODB-OIDC ENVIRONMENT "test" requires OIDC_TOKEN_FILE to be set')
        return OIDCCallbackResult(access_token=_read_token_file(path, "OIDC_TOKEN_FILE"))


class _K8sEnvironment:
    async def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        path = K8S_TOKEN_FILE
        for var in ("AZURE_FEDERATED_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
            if os.environ.get(var):
                path = os.environ[var]
                break
        return OIDCCallbackResult(access_token=_read_token_file(path, "Kubernetes"))


async def _metadata_get(url: str, headers: Dict[str, str], timeout: float, what: str) -> bytes:
    try:
        resp = await _http.request("GET", url, headers=headers, timeout=timeout)
    except _http.HTTPError as exc:
        raise OperationFailure(f"MONGODB-OIDC: could not reach the {what}: {exc}") from None
    if resp.status != 200:
        raise OperationFailure(f"MONGODB-OIDC: the {what} answered HTTP {resp.status}")
    return resp.body


class _AzureEnvironment:
    def __init__(self, resource: str) -> None:
        self.resource = resource

    async def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        what = "Azure instance metadata service"
        url = (
            AZURE_IMDS_ENDPOINT.rstrip("/")
            + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource="
            + quote(self.resource, safe="")
        )
        if context.username:
            url += "&client_id=" + quote(context.username, safe="")
        body = await _metadata_get(url, {"Metadata": "true", "Accept": "application/json"}, context.timeout_seconds, what)
        try:
            doc = json.loads(body)
            token = doc["access_token"]
            expires_in = doc.get("expires_in")
        except (ValueError, KeyError, TypeError):
            raise OperationFailure(f"MONGODB-OIDC: the {what} returned no access_token") from None
        if not token or not isinstance(token, str):
            raise OperationFailure(f"MONGODB-OIDC: the {what} returned no access_token")
        return OIDCCallbackResult(
            access_token=token, expires_in_seconds=float(expires_in) if expires_in else None
        )


class _GCPEnvironment:
    def __init__(self, resource: str) -> None:
        self.resource = resource

    async def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        what = "GCP metadata server"
        host = os.environ.get("GCE_METADATA_HOST")
        base = f"http://{host}" if host else GCP_METADATA_ENDPOINT
        url = (
            base.rstrip("/")
            + "/computeMetadata/v1/instance/service-accounts/default/identity?audience="
            + quote(self.resource, safe="")
        )
        body = await _metadata_get(url, {"Metadata-Flavor": "Google"}, context.timeout_seconds, what)
        token = body.decode("utf-8", "replace").strip()
        if not token:
            raise OperationFailure(f"MONGODB-OIDC: the {what} returned no token")
        return OIDCCallbackResult(access_token=token)


def _callback(cred: Any) -> Tuple[Any, bool]:
    """``(callback, is_human)`` for the credential's properties."""
    props = cred.mechanism_properties
    human = props.get("OIDC_HUMAN_CALLBACK")
    if human is not None:
        return human, True
    machine = props.get("OIDC_CALLBACK")
    if machine is not None:
        return machine, False
    env = props.get("ENVIRONMENT")
    if env == "test":
        return _TestEnvironment(), False
    if env == "k8s":
        return _K8sEnvironment(), False
    if env == "azure":
        return _AzureEnvironment(props.get("TOKEN_RESOURCE", "")), False
    if env == "gcp":
        return _GCPEnvironment(props.get("TOKEN_RESOURCE", "")), False
    raise ConfigurationError("MONGODB-OIDC requires an ENVIRONMENT or a callback")


# -- the token cache ----------------------------------------------------------------------------
async def _fetch_token(
    conn: AuthConnection,
    cred: Any,
    state: OIDCState,
    *,
    seen_generation: int,
    refresh_token: Optional[str] = None,
    force: bool = False,
) -> Tuple[str, int]:
    """Call the callback (one caller at a time) unless another caller already replaced the
    token of *seen_generation*; ``(token, generation)``."""
    callback, human = _callback(cred)
    if state.lock is None:
        state.lock = asyncio.Lock()
    async with state.lock:
        token = state.access_token
        if token is not None and not force and state.generation != seen_generation:
            return token, state.generation
        wait = TIME_BETWEEN_CALLS - (time.monotonic() - state.last_call)
        if wait > 0:
            await asyncio.sleep(wait)
        if human:
            timeout = HUMAN_CALLBACK_TIMEOUT
        else:
            timeout = MACHINE_CALLBACK_TIMEOUT
            if conn.options.connect_timeout:
                timeout = min(timeout, conn.options.connect_timeout)
            remaining = _csot.remaining()
            if remaining is not None:
                timeout = max(0.0, min(timeout, remaining))
        context = OIDCCallbackContext(
            timeout_seconds=timeout,
            username=cred.username or "",
            version=CALLBACK_VERSION,
            refresh_token=refresh_token,
            idp_info=state.idp_info if human else None,
        )
        state.last_call = time.monotonic()
        result = await _call_callback(callback, context, timeout)
        state.access_token = result.access_token
        if human:
            state.refresh_token = result.refresh_token
        state.generation += 1
        return result.access_token, state.generation


async def _call_callback(callback: Any, context: OIDCCallbackContext, timeout: float) -> OIDCCallbackResult:
    fetch = getattr(callback, "fetch", None)
    if fetch is None or not callable(fetch):
        raise ConfigurationError("MONGODB-OIDC callbacks must have a fetch(context) method")
    try:
        result = fetch(context)
        if inspect.isawaitable(result):
            result = await asyncio.wait_for(result, timeout)
    except asyncio.TimeoutError:
        raise _CallbackError(f"MONGODB-OIDC: the callback did not return within {timeout:g} s") from None
    except PyMongoError:
        raise
    except Exception as exc:
        raise _CallbackError(f"MONGODB-OIDC: the callback failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(result, OIDCCallbackResult):
        raise _CallbackError(
            f"MONGODB-OIDC: the callback must return an OIDCCallbackResult, not {type(result).__name__}"
        )
    if not result.access_token or not isinstance(result.access_token, str):
        raise _CallbackError("MONGODB-OIDC: the callback returned no access token")
    if result.expires_in_seconds is not None and result.expires_in_seconds < 0:
        raise _CallbackError("MONGODB-OIDC: the callback returned a negative expires_in_seconds")
    return result


class _CallbackError(OperationFailure):
    """The callback failed or returned something unusable."""


# -- the conversation ---------------------------------------------------------------------------
def speculative_command(cred: Any, host: Optional[str] = None) -> Optional[Tuple[int, Dict[str, Any]]]:
    """``(generation, saslStart)`` for ``speculativeAuthenticate`` when the client cache has a
    token (the spec forbids speculative authentication otherwise), else None.

    :param host: the server's host, checked against ``ALLOWED_HOSTS`` (human callbacks).
    """
    if host is not None:
        check_allowed_host(host, cred)
    state = _state(cred)
    if state.access_token is None:
        return None
    payload = Binary(bson.encode({"jwt": state.access_token}))
    cmd = {"saslStart": 1, "mechanism": "MONGODB-OIDC", "payload": payload, "db": "$external"}
    return state.generation, cmd


async def _send_jwt(
    conn: AuthConnection, state: OIDCState, token: str, generation: int, continue_reply: Optional[Mapping[str, Any]] = None
) -> None:
    """Send *token* (a one-step ``saslStart``, or the ``saslContinue`` of a two-step
    conversation after *continue_reply*). A token the server refuses (AuthenticationFailed) is
    invalidated in the Client Cache (compare-and-swap on *generation*) before the error is
    raised, so no other connection tries it again."""
    conn.auth_state = generation
    payload = Binary(bson.encode({"jwt": token}))
    if continue_reply is None:
        cmd: Dict[str, Any] = {"saslStart": 1, "mechanism": "MONGODB-OIDC", "payload": payload}
    else:
        cmd = {"saslContinue": 1, "conversationId": continue_reply["conversationId"], "payload": payload}
    try:
        reply = await conn.command("$external", cmd, compress=False)
    except OperationFailure as exc:
        if _is_auth_error(exc):
            state.invalidate(generation)
            conn.auth_state = None
        raise
    if not reply.get("done"):
        raise OperationFailure("MONGODB-OIDC: the server did not complete the conversation")


def _is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, OperationFailure) and exc.code == _AUTHENTICATION_FAILED


def check_allowed_host(host: str, cred: Any) -> None:
    """With a human callback, refuse (ConfigurationError) a host not in ``ALLOWED_HOSTS``,
    before any callback runs or any token is sent."""
    if cred.mechanism_properties.get("OIDC_HUMAN_CALLBACK") is None:
        return
    from amongo.credentials import DEFAULT_OIDC_ALLOWED_HOSTS

    allowed = cred.mechanism_properties.get("ALLOWED_HOSTS")
    if allowed is None:
        allowed = DEFAULT_OIDC_ALLOWED_HOSTS
    name = host.lower()
    for pattern in allowed:
        pattern = str(pattern).lower()
        if pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return
    raise ConfigurationError(
        f"Refusing to authenticate to {host} with MONGODB-OIDC: it is not in ALLOWED_HOSTS"
    )


async def authenticate(
    conn: AuthConnection,
    cred: Any,
    speculative_generation: Optional[int] = None,
    speculative_reply: Optional[Mapping[str, Any]] = None,
) -> None:
    """Authenticate *conn* (raises OperationFailure on failure).

    :param speculative_generation: the token generation sent in the handshake's
        ``speculativeAuthenticate``, if one was.
    :param speculative_reply: the handshake reply's ``speculativeAuthenticate`` document.
    """
    if speculative_generation is not None and speculative_reply and speculative_reply.get("done"):
        conn.auth_state = speculative_generation
        return
    conn.auth_state = None
    if _callback(cred)[1]:
        check_allowed_host(conn.address[0], cred)
        await _authenticate_human(conn, cred, _state(cred))
    else:
        await _authenticate_machine(conn, cred, _state(cred))


async def _with_cached_token(conn: AuthConnection, state: OIDCState) -> bool:
    """One-step conversation with the Client Cache's token, if any; True when authenticated,
    False when there is none or the server refused it (then invalidated); other errors raise."""
    token = state.access_token
    if token is None:
        return False
    try:
        await _send_jwt(conn, state, token, state.generation)
        return True
    except OperationFailure as exc:
        if not _is_auth_error(exc):
            raise
    return False


async def _authenticate_machine(conn: AuthConnection, cred: Any, state: OIDCState) -> None:
    generation = state.generation
    had_token = state.access_token is not None
    if await _with_cached_token(conn, state):
        return
    if had_token:
        await asyncio.sleep(TIME_BETWEEN_CALLS)
    token, generation = await _fetch_token(conn, cred, state, seen_generation=generation)
    await _send_jwt(conn, state, token, generation)


async def _authenticate_human(conn: AuthConnection, cred: Any, state: OIDCState) -> None:
    if await _with_cached_token(conn, state):
        return
    if state.refresh_token is not None and state.idp_info is not None:
        refresh = state.refresh_token
        try:
            token, generation = await _fetch_token(
                conn, cred, state, seen_generation=state.generation, refresh_token=refresh, force=True
            )
            await _send_jwt(conn, state, token, generation)
            return
        except OperationFailure as exc:
            if not _is_auth_error(exc) and not isinstance(exc, _CallbackError):
                raise
        if state.refresh_token == refresh:  # it did not produce a usable token
            state.refresh_token = None
        conn.auth_state = None
    # Two-step: the principal step returns the IdP information for the human callback.
    principal: Dict[str, Any] = {"n": cred.username} if cred.username else {}
    reply = await conn.command(
        "$external",
        {"saslStart": 1, "mechanism": "MONGODB-OIDC", "payload": Binary(bson.encode(principal))},
        compress=False,
    )
    try:
        info = bson.decode(bytes(reply["payload"]))
        state.idp_info = OIDCIdPInfo(
            issuer=info["issuer"], clientId=info.get("clientId"), requestScopes=info.get("requestScopes")
        )
    except Exception:
        raise OperationFailure("MONGODB-OIDC: the server returned no IdP information") from None
    token, generation = await _fetch_token(conn, cred, state, seen_generation=state.generation, force=True)
    await _send_jwt(conn, state, token, generation, reply)


async def reauthenticate(conn: AuthConnection, cred: Any) -> None:
    """After ReauthenticationRequired (391): drop the connection's token from the client cache,
    fetch a new one and run the SASL conversation again (no hello)."""
    state = _state(cred)
    state.invalidate(conn.auth_state)
    conn.auth_state = None
    await authenticate(conn, cred)
