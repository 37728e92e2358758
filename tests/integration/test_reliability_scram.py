"""Defect 3 of issue 11: a server cannot keep amongo in a SCRAM conversation, and no
garbage SCRAM message escapes as anything but OperationFailure.

A fake SCRAM-SHA-256 server on 127.0.0.1 plays the conversation correctly up to the step
under test, then misbehaves: it never sets ``done``, or it sends bad base64, missing
fields, a foreign nonce, an absurd iteration count, a payload of the wrong type...
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any, Callable, Dict, Optional

import pytest
from bson.binary import Binary
from pymongo.errors import ConfigurationError, OperationFailure

from amongo import auth
from amongo.connection import Connection, ConnectionOptions
from amongo.credentials import Credential
from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer, Peer

USER, PASSWORD = "alice", "s3cret-pw"
SALT = b"0123456789abcdef"
ITERATIONS = 4096

#: a server-first message mutator: (client nonce, good message) -> payload sent back
FirstMutation = Callable[[bytes, bytes], Any]


class ScramServer:
    """The server side of SCRAM-SHA-256 (enough for these tests)."""

    def __init__(self, first: Optional[FirstMutation] = None, final: Optional[Callable[[bytes], Any]] = None,
                 never_done: bool = False, drop_conversation_id: bool = False) -> None:
        self.first = first
        self.final = final
        self.never_done = never_done
        self.drop_conversation_id = drop_conversation_id
        self.continues = 0

    async def __call__(self, peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "saslStart" in cmd:
            client_first = bytes(cmd["payload"])
            bare = client_first[3:]
            cnonce = dict(kv.split(b"=", 1) for kv in bare.split(b","))[b"r"]
            server_first = b"r=" + cnonce + b"SERVERNONCE,s=" + base64.b64encode(SALT) + b",i=" + str(ITERATIONS).encode()
            peer.state["auth_msg_start"] = bare + b"," + server_first
            payload: Any = Binary(server_first)
            if self.first is not None:
                payload = self.first(cnonce, server_first)
            reply: Dict[str, Any] = {"conversationId": 1, "done": False, "ok": 1.0}
            if payload is not _MISSING:
                reply["payload"] = payload
            if self.drop_conversation_id:
                del reply["conversationId"]
            await peer.reply(rid, reply)
            return None
        if "saslContinue" in cmd:
            self.continues += 1
            client_final = bytes(cmd["payload"])
            if client_final:
                without_proof = client_final[: client_final.index(b",p=")]
                auth_msg = peer.state["auth_msg_start"] + b"," + without_proof
                salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), SALT, ITERATIONS)
                server_key = hmac.digest(salted, b"Server Key", "sha256")
                sig = base64.b64encode(hmac.digest(server_key, auth_msg, "sha256"))
                payload = Binary(b"v=" + sig)
                if self.final is not None:
                    payload = self.final(sig)
            else:
                payload = Binary(b"")
            reply = {"conversationId": 1, "done": not self.never_done, "ok": 1.0}
            if payload is not _MISSING:
                reply["payload"] = payload
            await peer.reply(rid, reply)
            return None
        return False


_MISSING = object()


async def _authenticate(server: ScramServer) -> None:
    async with FakeServer(server) as srv:
        cred = Credential("SCRAM-SHA-256", "admin", USER, PASSWORD)
        conn = await asyncio.wait_for(
            Connection.open(srv.address, ConnectionOptions(connect_timeout=5.0, credential=cred)), 10
        )
        conn.close()


async def test_correct_conversation_succeeds() -> None:
    await _authenticate(ScramServer())


async def test_conversation_is_bounded_when_the_server_never_says_done() -> None:
    server = ScramServer(never_done=True)
    with pytest.raises(OperationFailure, match="SASL conversation failed to complete"):
        await _authenticate(server)
    assert server.continues == 1 + auth.MAX_EMPTY_EXCHANGES


FIRST_GARBAGE: Dict[str, FirstMutation] = {
    "payload-is-a-string": lambda n, m: m.decode(),
    "payload-is-an-int": lambda n, m: 10,
    "payload-missing": lambda n, m: _MISSING,
    "no-equals": lambda n, m: Binary(b"garbage"),
    "empty": lambda n, m: Binary(b""),
    "bad-base64-salt": lambda n, m: Binary(b"r=" + n + b"X,s=!!!not base64!!!,i=4096"),
    "empty-salt": lambda n, m: Binary(b"r=" + n + b"X,s=,i=4096"),
    "missing-salt": lambda n, m: Binary(b"r=" + n + b"X,i=4096"),
    "missing-nonce": lambda n, m: Binary(b"s=" + base64.b64encode(SALT) + b",i=4096"),
    "missing-iterations": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT)),
    "wrong-nonce": lambda n, m: Binary(b"r=somebodyelse,s=" + base64.b64encode(SALT) + b",i=4096"),
    "nonce-not-extended": lambda n, m: Binary(b"r=" + n + b",s=" + base64.b64encode(SALT) + b",i=4096"),
    "iterations-not-a-number": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT) + b",i=lots"),
    "iterations-negative": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT) + b",i=-5"),
    "iterations-too-few": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT) + b",i=1"),
    "iterations-absurd": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT) + b",i=4000000000"),
    "iterations-huge-digits": lambda n, m: Binary(b"r=" + n + b"X,s=" + base64.b64encode(SALT) + b",i=" + b"9" * 5000),
    "server-error": lambda n, m: Binary(b"e=other-error"),
    "binary-junk": lambda n, m: Binary(bytes(range(256))),
}


@pytest.mark.parametrize("case", sorted(FIRST_GARBAGE))
async def test_garbage_server_first_message(case: str) -> None:
    with pytest.raises(OperationFailure):
        await _authenticate(ScramServer(first=FIRST_GARBAGE[case]))


FINAL_GARBAGE: Dict[str, Callable[[bytes], Any]] = {
    "payload-missing": lambda sig: _MISSING,
    "payload-is-a-string": lambda sig: "v=" + sig.decode(),
    "wrong-signature": lambda sig: Binary(b"v=" + base64.b64encode(b"x" * 32)),
    "no-signature": lambda sig: Binary(b"x=1"),
    "not-base64-signature": lambda sig: Binary(b"v=%%%"),
    "server-error": lambda sig: Binary(b"e=invalid-proof"),
    "no-equals": lambda sig: Binary(b"vvvv"),
}


@pytest.mark.parametrize("case", sorted(FINAL_GARBAGE))
async def test_garbage_server_final_message(case: str) -> None:
    with pytest.raises(OperationFailure):
        await _authenticate(ScramServer(final=FINAL_GARBAGE[case]))


async def test_missing_conversation_id() -> None:
    with pytest.raises(OperationFailure):
        await _authenticate(ScramServer(drop_conversation_id=True))


async def test_client_operation_gets_operation_failure_not_a_hang() -> None:
    """Through the client: the server never ends the conversation; the operation fails
    with a pymongo error (bounded), it does not wait forever."""
    async with FakeServer(ScramServer(never_done=True)) as srv:
        host, port = srv.address
        client = AsyncIOMotorClient(
            f"mongodb://{USER}:{PASSWORD}@{host}:{port}/?serverSelectionTimeoutMS=3000&authMechanism=SCRAM-SHA-256"
        )
        try:
            with pytest.raises((OperationFailure, ConfigurationError)):
                await asyncio.wait_for(client.admin.command("ping"), 20)
        finally:
            client.close()


def test_scram_conversation_pure_garbage() -> None:
    """The pure conversation: never ValueError/KeyError/TypeError."""
    conv = auth.ScramConversation("SCRAM-SHA-1", "u", "p", nonce=b"abc")
    for msg in (b"", b",", b"=", b"r=abcd,s=@@@,i=4096", b"r=abcd,s=QUJD,i=", b"i=4096,i=5", b"r=abcd,s=QUJD,i=\xff"):
        with pytest.raises(OperationFailure):
            conv.client_final(msg)
    with pytest.raises(OperationFailure):
        conv.verify_server_final(b"v=anything")  # before any client_final
    with pytest.raises(OperationFailure, match="limit"):
        conv.client_final(b"r=abcd,s=QUJD,i=%d" % (auth.MAX_SCRAM_ITERATIONS + 1))
