"""Authentication conversations (SCRAM-SHA-1, SCRAM-SHA-256, PLAIN) per the auth spec.

The SCRAM arithmetic is pure (:class:`ScramConversation`); :func:`authenticate` drives it over a
:class:`~amongo.connection.Connection` with ``saslStart`` / ``saslContinue``, using the
``speculativeAuthenticate`` reply of the handshake when the server returned one.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import stringprep
import unicodedata
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from bson.binary import Binary
from pymongo.errors import ConfigurationError, OperationFailure

from amongo.credentials import AuthConnection


_SCRAM_CACHE: Dict[Tuple[str, str, bytes, int], Tuple[bytes, bytes, bytes]] = {}


def saslprep(data: str, prohibit_unassigned_code_points: bool = True) -> str:
    """RFC 4013 SASLprep (used for SCRAM-SHA-256 passwords)."""
    if all(0x20 < ord(c) < 0x7F for c in data):
        return data
    in_table_c12 = stringprep.in_table_c12
    in_table_b1 = stringprep.in_table_b1
    data = "".join(" " if in_table_c12(c) else c for c in data if not in_table_b1(c))
    data = unicodedata.ucd_3_2_0.normalize("NFKC", data)
    in_d1 = stringprep.in_table_d1
    in_d2 = stringprep.in_table_d2
    prohibited: Tuple[Callable[[str], bool], ...] = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    if prohibit_unassigned_code_points:
        prohibited = prohibited + (stringprep.in_table_a1,)
    if data and in_d1(data[0]):
        if not in_d1(data[-1]):
            raise ValueError("SASLprep: failed bidirectional check")
        prohibited = prohibited + (in_d2,)
    else:
        prohibited = prohibited + (in_d1,)
    for c in data:
        if any(f(c) for f in prohibited):
            raise ValueError("SASLprep: failed prohibited character check")
    return data


#: Largest SCRAM iteration count amongo computes. The server picks the count, and
#: PBKDF2 runs on the event loop (no threads): 1,000,000 rounds take ~0.7 s here, once per
#: (password, salt, count) thanks to the cache. MongoDB's defaults are 10,000 (SHA-1) and
#: 15,000 (SHA-256); a larger count ends the conversation with OperationFailure.
MAX_SCRAM_ITERATIONS = 1_000_000
#: The minimum the SCRAM spec allows.
MIN_SCRAM_ITERATIONS = 4096
#: Salted-password cache entries kept (a server sending a new salt each time cannot grow it).
_SCRAM_CACHE_SIZE = 64
#: saslContinue round trips allowed after the client's final message: one empty exchange
#: (as PyMongo), so a server that never sets ``done`` cannot hold the conversation open.
MAX_EMPTY_EXCHANGES = 1


def _scram_error(what: str) -> OperationFailure:
    return OperationFailure(f"Server returned an invalid SCRAM {what}.")


def _parse_scram(payload: bytes, what: str = "message") -> Dict[bytes, bytes]:
    """``attr=value`` pairs of a server SCRAM message (RFC 5802 attributes are one letter).

    :raises OperationFailure: malformed, or the server reports an error (``e=``).
    """
    parsed: Dict[bytes, bytes] = {}
    for item in payload.split(b","):
        key, eq, value = item.partition(b"=")
        if not eq or len(key) != 1:
            raise _scram_error(what)
        parsed.setdefault(key, value)
    error = parsed.get(b"e")
    if error is not None:
        raise OperationFailure(
            f"SCRAM authentication failed: the server reported {error[:200].decode('utf-8', 'replace')!r}"
        )
    return parsed


def _payload(reply: Any, what: str) -> bytes:
    """The ``payload`` of a SASL reply (BSON binary), checked."""
    payload = reply.get("payload") if isinstance(reply, Mapping) else None
    if not isinstance(payload, bytes):  # (bson.Binary is a bytes subclass)
        raise _scram_error(what)
    return bytes(payload)


class ScramConversation:
    """The client side of a SCRAM exchange (pure: bytes in, bytes out).

    Every malformed server message raises :class:`~pymongo.errors.OperationFailure`.
    """

    def __init__(self, mechanism: str, username: str, password: str, nonce: Optional[bytes] = None) -> None:
        if mechanism == "SCRAM-SHA-256":
            self.digest = "sha256"
            self.password = saslprep(password).encode()
        elif mechanism == "SCRAM-SHA-1":
            self.digest = "sha1"
            self.password = hashlib.md5(f"{username}:mongo:{password}".encode()).hexdigest().encode()
        else:  # pragma: no cover - guarded by the caller
            raise ConfigurationError(f"Unsupported SCRAM mechanism {mechanism}")
        self.mechanism = mechanism
        self.username = username.replace("=", "=3D").replace(",", "=2C").encode()
        self.nonce = nonce or base64.b64encode(os.urandom(32))
        self.first_bare = b"n=" + self.username + b",r=" + self.nonce
        self.server_signature = b""

    def client_first(self) -> bytes:
        """The client-first message (RFC 5802): ``n,,n=<user>,r=<nonce>``, as bytes."""
        return b"n,," + self.first_bare

    def client_final(self, server_first: bytes) -> bytes:
        """The client-final message (channel binding, combined nonce and proof) for
        the server-first message *server_first*.
        """
        parsed = _parse_scram(server_first, "first message")
        rnonce, salt_b64, count = parsed.get(b"r"), parsed.get(b"s"), parsed.get(b"i")
        if rnonce is None or salt_b64 is None or count is None:
            raise _scram_error("first message")
        if not (count.isdigit() and len(count) <= 10):
            raise OperationFailure("Server returned an invalid iteration count.")
        iterations = int(count)
        if iterations < MIN_SCRAM_ITERATIONS:
            raise OperationFailure("Server returned an invalid iteration count.")
        if iterations > MAX_SCRAM_ITERATIONS:
            raise OperationFailure(
                f"Server returned an iteration count of {iterations}, above amongo's limit of "
                f"{MAX_SCRAM_ITERATIONS}."
            )
        if not rnonce.startswith(self.nonce) or len(rnonce) == len(self.nonce):
            raise OperationFailure("Server returned an invalid nonce.")
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except (ValueError, binascii.Error):
            salt = b""
        if not salt:
            raise OperationFailure("Server returned an invalid salt.")
        without_proof = b"c=biws,r=" + rnonce
        key = (self.digest, self.password.decode(), salt, iterations)
        cached = _SCRAM_CACHE.get(key)
        if cached is None:
            salted = hashlib.pbkdf2_hmac(self.digest, self.password, salt, iterations)
            client_key = hmac.digest(salted, b"Client Key", self.digest)
            server_key = hmac.digest(salted, b"Server Key", self.digest)
            cached = (salted, client_key, server_key)
            if len(_SCRAM_CACHE) >= _SCRAM_CACHE_SIZE:
                _SCRAM_CACHE.clear()
            _SCRAM_CACHE[key] = cached
        _salted, client_key, server_key = cached
        stored_key = hashlib.new(self.digest, client_key).digest()
        auth_msg = b",".join((self.first_bare, server_first, without_proof))
        client_sig = hmac.digest(stored_key, auth_msg, self.digest)
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        self.server_signature = base64.b64encode(hmac.digest(server_key, auth_msg, self.digest))
        return without_proof + b",p=" + base64.b64encode(proof)

    def verify_server_final(self, server_final: bytes) -> None:
        """Check the server's signature in the server-final message.

        :raises pymongo.errors.OperationFailure: the signature does not match.
        """
        parsed = _parse_scram(server_final, "final message")
        if not self.server_signature or not hmac.compare_digest(parsed.get(b"v", b""), self.server_signature):
            raise OperationFailure("Server returned an invalid signature.")


def _conversation_id(reply: Mapping[str, Any]) -> Any:
    cid = reply.get("conversationId")
    if cid is None:
        raise _scram_error("reply (no conversationId)")
    return cid


class _Speculative:
    __slots__ = ("mechanism", "conversation", "command")

    def __init__(self, mechanism: str, conversation: Any, command: Dict[str, Any]) -> None:
        self.mechanism = mechanism
        self.conversation = conversation
        self.command = command


def _resolve_mechanism(cred: Any, hello: Optional[Mapping[str, Any]]) -> str:
    mech: Optional[str] = cred.mechanism
    if mech and mech != "DEFAULT":
        return mech
    if hello is not None:
        supported = hello.get("saslSupportedMechs")
        if supported is not None:
            return "SCRAM-SHA-256" if "SCRAM-SHA-256" in supported else "SCRAM-SHA-1"
    return "SCRAM-SHA-256"


def speculative_start(cred: Any, host: Optional[str] = None) -> Optional[_Speculative]:
    """The ``speculativeAuthenticate`` document for the handshake, or None.

    :param host: the server's host name (MONGODB-OIDC checks ``ALLOWED_HOSTS`` with it).
    """
    mech = _resolve_mechanism(cred, None)
    if mech == "MONGODB-OIDC":
        from amongo import auth_oidc

        found = auth_oidc.speculative_command(cred, host)
        return None if found is None else _Speculative(mech, found[0], found[1])
    if mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        conv = ScramConversation(mech, cred.username, cred.password or "")
        cmd = {
            "saslStart": 1,
            "mechanism": mech,
            "payload": Binary(conv.client_first()),
            "autoAuthorize": 1,
            "options": {"skipEmptyExchange": True},
            "db": cred.source,
        }
        return _Speculative(mech, conv, cmd)
    if mech == "MONGODB-X509":
        cmd = {"authenticate": 1, "mechanism": "MONGODB-X509"}
        if cred.username:
            cmd["user"] = cred.username
        return _Speculative(mech, None, cmd)
    return None


async def authenticate(
    conn: AuthConnection, cred: Any, hello: Mapping[str, Any], speculative: Optional[_Speculative]
) -> None:
    """Authenticate *conn* with *cred* (raises OperationFailure on failure)."""
    mech = _resolve_mechanism(cred, hello)
    source = cred.source
    spec_reply = hello.get("speculativeAuthenticate")
    if mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
        if speculative is not None and speculative.mechanism == mech and spec_reply:
            conv = speculative.conversation
            if not isinstance(spec_reply, Mapping):
                raise _scram_error("speculative reply")
            reply: Mapping[str, Any] = spec_reply
        else:
            conv = ScramConversation(mech, cred.username, cred.password or "")
            reply = await conn.command(
                source,
                {
                    "saslStart": 1,
                    "mechanism": mech,
                    "payload": Binary(conv.client_first()),
                    "autoAuthorize": 1,
                    "options": {"skipEmptyExchange": True},
                },
                compress=False,
            )
        final = conv.client_final(_payload(reply, "first message"))
        reply = await conn.command(
            source,
            {"saslContinue": 1, "conversationId": _conversation_id(reply), "payload": Binary(final)},
            compress=False,
        )
        conv.verify_server_final(_payload(reply, "final message"))
        exchanges = 0
        while not reply.get("done"):
            if exchanges == MAX_EMPTY_EXCHANGES:
                raise OperationFailure("SASL conversation failed to complete.")
            exchanges += 1
            reply = await conn.command(
                source,
                {"saslContinue": 1, "conversationId": _conversation_id(reply), "payload": Binary(b"")},
                compress=False,
            )
        return
    if mech == "PLAIN":
        payload = f"\x00{cred.username}\x00{cred.password}".encode()
        await conn.command(
            source,
            {"saslStart": 1, "mechanism": "PLAIN", "payload": Binary(payload), "autoAuthorize": 1},
            compress=False,
        )
        return
    if mech == "MONGODB-X509":
        if spec_reply:
            return
        cmd: Dict[str, Any] = {"authenticate": 1, "mechanism": "MONGODB-X509"}
        if cred.username:
            cmd["user"] = cred.username
        await conn.command("$external", cmd, compress=False)
        return
    if mech == "MONGODB-AWS":
        from amongo import auth_aws

        await auth_aws.authenticate(conn, cred)
        return
    if mech == "MONGODB-OIDC":
        from amongo import auth_oidc

        if speculative is not None and speculative.mechanism == mech:
            await auth_oidc.authenticate(conn, cred, speculative.conversation, spec_reply)
        else:
            await auth_oidc.authenticate(conn, cred, None, None)
        return
    raise ConfigurationError(f"Authentication mechanism {mech!r} is not supported by amongo")


async def reauthenticate(conn: AuthConnection, cred: Any) -> None:
    """Authenticate *conn* again after ReauthenticationRequired (391): SASL only, no hello."""
    if cred.mechanism == "MONGODB-OIDC":
        from amongo import auth_oidc

        await auth_oidc.reauthenticate(conn, cred)
        return
    hello = {k: v for k, v in conn.hello.items() if k != "speculativeAuthenticate"}
    await authenticate(conn, cred, hello, None)
