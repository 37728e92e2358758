"""Scripted servers for the cloud authentication tests (127.0.0.1 only, asyncio, no threads).

* :class:`FakeMongo` plays a one-member replica set that requires MONGODB-AWS or MONGODB-OIDC:
  it runs the server side of the SASL conversation, verifies the SigV4 signature (recomputed
  here independently of amongo's signer) or the OIDC token it receives, answers speculative
  authentication, and serves a small collection (find / getMore / insert) with scripted
  failures (ReauthenticationRequired 391, dropped connections) and expiring tokens.
* :class:`FakeHTTP` stands in for the metadata and STS endpoints (EC2 IMDSv2, ECS, STS
  AssumeRoleWithWebIdentity, Azure IMDS, GCP metadata): routes are callables, every request is
  recorded.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import struct
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, urlsplit

import bson
from bson.binary import Binary

from amongo.wire.message import decode_op_msg, encode_op_msg

HELLO_COMMANDS = ("hello", "ismaster", "isMaster")
AUTH_FAILED = {"ok": 0, "code": 18, "codeName": "AuthenticationFailed", "errmsg": "Authentication failed."}


# -- an independent SigV4 verifier (server side) ------------------------------------------------
def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(secret: str, amz_date: str, region: str, canonical_headers: Dict[str, str]) -> str:
    """What a correct client signs for the MONGODB-AWS GetCallerIdentity request."""
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    names = sorted(canonical_headers)
    request = "POST\n/\n\n"
    request += "".join(name + ":" + canonical_headers[name] + "\n" for name in names)
    request += "\n" + ";".join(names) + "\n" + hashlib.sha256(body.encode()).hexdigest()
    scope = "/".join([amz_date[:8], region, "sts", "aws4_request"])
    string_to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + hashlib.sha256(request.encode()).hexdigest()
    k = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    k = _hmac(_hmac(_hmac(k, region), "sts"), "aws4_request")
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/sts/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


class _Server:
    """An asyncio server on 127.0.0.1 (an ephemeral port) whose connection tasks end with it."""

    def __init__(self, ssl: Any = None) -> None:
        self.server: Optional[asyncio.AbstractServer] = None
        self.port = 0
        self.tasks: List["asyncio.Task[Any]"] = []
        self.writers: List[asyncio.StreamWriter] = []
        self.ssl = ssl  # a server SSLContext: serve TLS

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        self.writers.append(writer)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Any:
        self.server = await asyncio.start_server(self._track, "127.0.0.1", 0, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class _Conn:
    def __init__(self, cid: int) -> None:
        self.id = cid
        self.authenticated = False
        self.token: Optional[str] = None  # OIDC token / AWS access key this connection used
        self.aws_nonce: Optional[bytes] = None
        self.oidc_two_step = False


class FakeMongo(_Server):
    """A one-member replica set requiring *mechanism* (``MONGODB-AWS`` or ``MONGODB-OIDC``)."""

    def __init__(self, mechanism: str) -> None:
        super().__init__()
        self.mechanism = mechanism
        #: (connection id, command document) for every command received
        self.commands: List[Tuple[int, Dict[str, Any]]] = []
        #: scripted failures: {"command": name, "action": 391 | "close" | <code>, "times": n}
        self.failures: List[Dict[str, Any]] = []
        self.docs: List[Dict[str, Any]] = [{"_id": i} for i in range(5)]
        self.cursors: Dict[int, List[Dict[str, Any]]] = {}
        self._next_conn = 0
        # MONGODB-AWS: access key -> (secret, session token or None)
        self.aws_users: Dict[str, Tuple[str, Optional[str]]] = {}
        self.sts_host = "sts.amazonaws.com"
        self.server_nonce: Optional[Callable[[bytes], bytes]] = None  # to send a bad nonce
        self.aws_signatures_checked = 0
        # MONGODB-OIDC
        self.valid_tokens: Set[str] = set()
        self.expired_tokens: Set[str] = set()
        self.idp_info = {"issuer": "https://issuer.example", "clientId": "amongo-test", "requestScopes": ["a"]}
        self.principal_names: List[Optional[str]] = []
        self.speculative_ok = 0
        self.sasl_tokens: List[str] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def names(self, *skip: str) -> List[str]:
        """Names of the commands received, without hellos and *skip*."""
        out = []
        for _cid, cmd in self.commands:
            name = next(iter(cmd))
            if name in HELLO_COMMANDS or name in skip:
                continue
            out.append(name)
        return out

    def fail(self, command: str, action: Any, times: int = 1) -> None:
        self.failures.append({"command": command, "action": action, "times": times})

    # -- serving -------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_conn += 1
        conn = _Conn(self._next_conn)
        while True:
            header = await reader.readexactly(16)
            length, request_id, _rto, _op = struct.unpack("<iiii", header)
            body = await reader.readexactly(length - 16)
            _flags, section0, seqs = decode_op_msg(header + body)
            cmd = bson.decode(section0)
            for ident, docs in seqs.items():
                cmd[ident] = [bson.decode(d) for d in docs]
            self.commands.append((conn.id, cmd))
            reply = self._handle(conn, cmd)
            if reply is None:  # scripted: drop the connection
                return
            writer.write(encode_op_msg(1, bson.encode(reply), response_to=request_id))
            await writer.drain()

    def hello(self) -> Dict[str, Any]:
        return {
            "ok": 1, "isWritablePrimary": True, "helloOk": True, "setName": "rs", "hosts": [self.host],
            "primary": self.host, "me": self.host, "maxWireVersion": 21, "minWireVersion": 0,
            "logicalSessionTimeoutMinutes": 30, "maxBsonObjectSize": 16 * 1024 * 1024,
            "maxMessageSizeBytes": 48_000_000, "maxWriteBatchSize": 100_000,
        }

    def _handle(self, conn: _Conn, cmd: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        name = next(iter(cmd))
        if name in HELLO_COMMANDS:
            reply = self.hello()
            spec = cmd.get("speculativeAuthenticate")
            if spec is not None:
                done = self._speculative(conn, spec)
                if done is not None:
                    reply["speculativeAuthenticate"] = done
            return reply
        for rule in self.failures:
            if rule["command"] == name and rule["times"] > 0:
                rule["times"] -= 1
                if rule["action"] == "close":
                    return None
                return {"ok": 0, "code": rule["action"], "errmsg": f"scripted failure {rule['action']}"}
        if name == "saslStart":
            return self._sasl_start(conn, cmd)
        if name == "saslContinue":
            return self._sasl_continue(conn, cmd)
        if not conn.authenticated:
            return {"ok": 0, "code": 13, "codeName": "Unauthorized", "errmsg": "command requires authentication"}
        if conn.token is not None and conn.token in self.expired_tokens:
            return {"ok": 0, "code": 391, "codeName": "ReauthenticationRequired", "errmsg": "Reauthentication required"}
        return self._command(name, cmd)

    def _command(self, name: str, cmd: Dict[str, Any]) -> Dict[str, Any]:
        ns = f"{cmd.get('$db')}.{cmd.get(name)}"
        if name == "find":
            batch = int(cmd.get("batchSize") or 101)
            docs = list(self.docs)
            first, rest = docs[:batch], docs[batch:]
            cid = 0
            if rest:
                cid = len(self.cursors) + 1000
                self.cursors[cid] = rest
            return {"ok": 1, "cursor": {"id": bson.int64.Int64(cid), "ns": ns, "firstBatch": first}}
        if name == "getMore":
            cid = int(cmd["getMore"])
            rest = self.cursors.pop(cid, [])
            batch = int(cmd.get("batchSize") or 101)
            nxt, rest = rest[:batch], rest[batch:]
            if rest:
                self.cursors[cid] = rest
            ns = f"{cmd.get('$db')}.{cmd.get('collection')}"
            return {"ok": 1, "cursor": {"id": bson.int64.Int64(cid if rest else 0), "ns": ns, "nextBatch": nxt}}
        if name == "insert":
            docs = cmd.get("documents") or []
            self.docs.extend(docs)
            return {"ok": 1, "n": len(docs)}
        return {"ok": 1}

    # -- MONGODB-OIDC --------------------------------------------------------------------------
    def _token_ok(self, token: str) -> bool:
        return token in self.valid_tokens and token not in self.expired_tokens

    def _speculative(self, conn: _Conn, spec: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if self.mechanism != "MONGODB-OIDC" or spec.get("mechanism") != "MONGODB-OIDC":
            return None
        token = bson.decode(bytes(spec["payload"])).get("jwt")
        if token is None or not self._token_ok(token):
            return None  # a failed speculative attempt is silent
        conn.authenticated, conn.token = True, token
        self.speculative_ok += 1
        return {"conversationId": 1, "done": True, "payload": Binary(b"")}

    def _sasl_start(self, conn: _Conn, cmd: Dict[str, Any]) -> Dict[str, Any]:
        if cmd.get("mechanism") != self.mechanism or cmd.get("$db") != "$external":
            return {"ok": 0, "code": 2, "errmsg": "unexpected mechanism or database"}
        payload = bson.decode(bytes(cmd["payload"]))
        if self.mechanism == "MONGODB-OIDC":
            if "jwt" in payload:
                return self._oidc_jwt(conn, payload["jwt"])
            self.principal_names.append(payload.get("n"))
            conn.oidc_two_step = True
            return {"ok": 1, "conversationId": 1, "done": False, "payload": Binary(bson.encode(self.idp_info))}
        # MONGODB-AWS client first: {r: 32-byte nonce, p: 110}
        nonce = bytes(payload.get("r", b""))
        if payload.get("p") != 110 or len(nonce) != 32:
            return {"ok": 0, "code": 17, "errmsg": "bad client first message"}
        server_nonce = self.server_nonce(nonce) if self.server_nonce else nonce + os.urandom(32)
        conn.aws_nonce = server_nonce
        return {
            "ok": 1, "conversationId": 1, "done": False,
            "payload": Binary(bson.encode({"s": Binary(server_nonce), "h": self.sts_host})),
        }

    def _oidc_jwt(self, conn: _Conn, token: str) -> Dict[str, Any]:
        self.sasl_tokens.append(token)
        if not self._token_ok(token):
            return dict(AUTH_FAILED)
        conn.authenticated, conn.token = True, token
        return {"ok": 1, "conversationId": 1, "done": True, "payload": Binary(b"")}

    def _sasl_continue(self, conn: _Conn, cmd: Dict[str, Any]) -> Dict[str, Any]:
        payload = bson.decode(bytes(cmd["payload"]))
        if self.mechanism == "MONGODB-OIDC":
            if not conn.oidc_two_step:
                return {"ok": 0, "code": 17, "errmsg": "no conversation"}
            conn.oidc_two_step = False
            return self._oidc_jwt(conn, payload.get("jwt", ""))
        return self._aws_verify(conn, payload)

    def _aws_verify(self, conn: _Conn, payload: Dict[str, Any]) -> Dict[str, Any]:
        m = _AUTH_RE.match(payload.get("a", ""))
        amz_date = payload.get("d", "")
        if m is None or conn.aws_nonce is None or not re.match(r"^\d{8}T\d{6}Z$", amz_date):
            return dict(AUTH_FAILED)
        user = self.aws_users.get(m["key"])
        if user is None:
            return dict(AUTH_FAILED)
        secret, token = user
        if payload.get("t") != token:
            return dict(AUTH_FAILED)
        signed_at = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
        if abs(time.time() - signed_at) > 15 * 60 or m["day"] != amz_date[:8]:
            return dict(AUTH_FAILED)
        labels = self.sts_host.split(".")
        region = "us-east-1" if self.sts_host == "sts.amazonaws.com" or len(labels) == 1 else labels[1]
        if m["region"] != region:
            return dict(AUTH_FAILED)
        headers = {
            "content-length": "43",
            "content-type": "application/x-www-form-urlencoded",
            "host": self.sts_host,
            "x-amz-date": amz_date,
            "x-mongodb-gs2-cb-flag": "n",
            "x-mongodb-server-nonce": base64.b64encode(conn.aws_nonce).decode(),
        }
        if token is not None:
            headers["x-amz-security-token"] = token
        if m["signed"] != ";".join(sorted(headers)):
            return dict(AUTH_FAILED)
        if not hmac.compare_digest(m["sig"], expected_signature(secret, amz_date, region, headers)):
            return dict(AUTH_FAILED)
        self.aws_signatures_checked += 1
        conn.authenticated, conn.token = True, m["key"]
        return {"ok": 1, "conversationId": 1, "done": True, "payload": Binary(b"")}


async def find_ok(client: Any) -> List[Any]:
    """All documents ``find`` returns through *client*, which is closed after."""
    try:
        return await client.db.coll.find({}).to_list(None)
    finally:
        client.close()


async def find_fails(client: Any, error: Any, match: Optional[str] = None) -> Any:
    """``find`` through *client* raises *error* (matching *match*); the client is closed after.
    Returns pytest's ExceptionInfo."""
    import pytest

    try:
        with pytest.raises(error, match=match) as info:
            await client.db.coll.find({}).to_list(None)
    finally:
        client.close()
    return info


# -- HTTP ---------------------------------------------------------------------------------------
class Request:
    def __init__(self, method: str, target: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        parts = urlsplit(target)
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.headers = headers  # lower-case names
        self.body = body

    def form(self) -> Dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


Route = Callable[[Request], Tuple[int, Any]]


class FakeHTTP(_Server):
    """An HTTP/1.1 server on 127.0.0.1: ``routes[(method, path)] = handler(request) -> (status,
    body)``; a ``str``/``bytes`` body is sent as is, anything else as JSON. ``chunked`` paths
    answer with chunked transfer coding."""

    def __init__(self, ssl: Any = None) -> None:
        super().__init__(ssl)
        self.routes: Dict[Tuple[str, str], Route] = {}
        self.requests: List[Request] = []
        self.chunked: Set[str] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import json

        line = (await reader.readline()).decode("latin-1").rstrip("\r\n")
        method, target, _proto = line.split(" ", 2)
        headers: Dict[str, str] = {}
        while True:
            h = (await reader.readline()).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        req = Request(method, target, headers, body)
        self.requests.append(req)
        handler = self.routes.get((method, req.path))
        status, payload = (404, b"not found") if handler is None else handler(req)
        if isinstance(payload, str):
            data = payload.encode()
        elif isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode()
        head = f"HTTP/1.1 {status} X\r\nConnection: close\r\n"
        if req.path in self.chunked:
            half = len(data) // 2
            out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (data[:half], data[half:]) if c) + b"0\r\n\r\n"
            writer.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode() + out)
        else:
            writer.write((head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
        await writer.drain()
