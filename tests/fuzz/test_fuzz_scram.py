"""Fuzz target ``scram``: a fake server runs the server side of SCRAM-SHA-256 / SCRAM-SHA-1
and garbles it: nonces, salts (bad base64), iteration counts (absurd, negative, not numbers),
missing or extra attributes, payloads of the wrong BSON type, conversation ids, ``done`` flags
(never set, set too early), wrong server signatures, error replies.

Invariants per case: ``Connection.open`` with credentials either authenticates (only when the
server played it straight) or raises a ``pymongo.errors`` exception (never ValueError,
KeyError, binascii.Error ...), within the case bound, and without blocking the event loop for
long (no unbounded PBKDF2, no endless conversation).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any, Dict

import pytest
from bson.binary import Binary
from hypothesis import given, strategies as st

from amongo.auth import saslprep
from amongo.connection import Connection, ConnectionOptions
from amongo.credentials import Credential
from fuzzlib import CASES, FakeServer, StallWatch, assert_user_error, fuzz_settings
from proxy import Frame

USER, PASSWORD = "user", "pencil"
MAX_STALL = 1.0

junk = st.one_of(st.binary(max_size=24), st.text(max_size=12), st.integers(), st.none(), st.booleans())
recipes = st.fixed_dictionaries({
    "mechanism": st.sampled_from(["SCRAM-SHA-256", "SCRAM-SHA-256", "SCRAM-SHA-1"]),
    "nonce": st.sampled_from(["right"] * 4 + ["wrong", "client_only", "missing", "empty", "non_ascii"]),
    "salt": st.sampled_from(["right"] * 4 + ["bad_b64", "empty", "missing", "huge"]),
    "iterations": st.sampled_from([4096] * 4 + [10_000, 4095, 0, -1, 10 ** 7, 2 ** 31 - 1, 2 ** 63, "abc", "",
                                               "missing", "1e9", " 4096"]),
    "extra": st.lists(st.sampled_from([b"m=ext", b"x", b"", b"=", b"==", b"\xff\xfe", b"r=dup", b"i=1"]), max_size=2),
    "first_raw": st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=40)),
    "payload_type": st.sampled_from(["binary"] * 6 + ["str", "int", "missing", "none", "subtype"]),
    "conversation_id": st.sampled_from([1] * 6 + ["x", None, "missing", {"a": 1}, 2 ** 40]),
    "start_done": st.sampled_from([False] * 6 + [True, "yes", "missing"]),
    "start_ok": st.sampled_from([1] * 8 + [0, "missing"]),
    "final": st.sampled_from(["right"] * 4 + ["wrong_sig", "bad_b64_sig", "missing_v", "error", "raw", "empty"]),
    "final_raw": st.binary(max_size=40),
    "final_done": st.sampled_from([True] * 4 + [False, "missing", 1]),
    "never_done": st.sampled_from([False] * 5 + [True]),
    "final_ok": st.sampled_from([1] * 8 + [0]),
})


def _server_first(r: Dict[str, Any], cnonce: bytes) -> bytes:
    if r["first_raw"] is not None:
        return r["first_raw"]
    parts = []
    nonce = {"right": cnonce + b"SERVERNONCE", "wrong": b"NOTYOURS", "client_only": cnonce, "empty": b"",
             "non_ascii": cnonce + "\u00e9".encode(), "missing": None}[r["nonce"]]
    if nonce is not None:
        parts.append(b"r=" + nonce)
    salt = {"right": base64.b64encode(b"salt-0123456789"), "bad_b64": b"***not-base64", "empty": b"",
            "huge": base64.b64encode(b"s" * 100_000), "missing": None}[r["salt"]]
    if salt is not None:
        parts.append(b"s=" + salt)
    if r["iterations"] != "missing":
        parts.append(b"i=" + str(r["iterations"]).encode())
    parts += r["extra"]
    return b",".join(parts)


def _payload(r: Dict[str, Any], data: bytes) -> Dict[str, Any]:
    kind = r["payload_type"]
    if kind == "missing":
        return {}
    value: Any = {"binary": Binary(data), "str": data.decode("latin-1"), "int": 42, "none": None,
                  "subtype": Binary(data, 5)}[kind]
    return {"payload": value}


def _common(r: Dict[str, Any], doc: Dict[str, Any], done_key: str, ok_key: str) -> Dict[str, Any]:
    if r["conversation_id"] != "missing":
        doc["conversationId"] = r["conversation_id"]
    if r[done_key] != "missing":
        doc["done"] = r[done_key]
    if r[ok_key] != "missing":
        doc["ok"] = r[ok_key]
        if not r[ok_key]:
            doc.update(code=18, errmsg="Authentication failed.")
    return doc


class ScramServer:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.recipe: Dict[str, Any] = {}
        server.handlers["saslstart"] = self.start
        server.handlers["saslcontinue"] = self.cont

    async def start(self, conn: Any, frame: Frame, name: str, doc: Dict[str, Any]) -> None:
        r = self.recipe
        client_first = bytes(doc["payload"])
        bare = client_first[3:]  # after the gs2 header "n,,"
        cnonce = dict(kv.split(b"=", 1) for kv in bare.split(b","))[b"r"]
        first = _server_first(r, cnonce)
        conn.scram = {"bare": bare, "first": first, "mech": doc.get("mechanism"), "continues": 0}
        await conn.reply(frame, _common(r, {**_payload(r, first)}, "start_done", "start_ok"))

    async def cont(self, conn: Any, frame: Frame, name: str, doc: Dict[str, Any]) -> None:
        r = self.recipe
        st_ = conn.scram
        st_["continues"] += 1
        if st_["continues"] > 1:
            # the conversation goes on: done stays false forever when never_done is set
            reply = {"conversationId": 1, "done": not r["never_done"], "payload": Binary(b""), "ok": 1}
            await conn.reply(frame, reply)
            return
        final = self._final(r, st_, bytes(doc.get("payload", b"")))
        reply = _common(r, {**_payload(r, final)}, "final_done", "final_ok")
        if r["never_done"]:
            reply["done"] = False
        await conn.reply(frame, reply)

    def _final(self, r: Dict[str, Any], st_: Dict[str, Any], client_final: bytes) -> bytes:
        kind = r["final"]
        if kind == "raw":
            return r["final_raw"]
        if kind == "empty":
            return b""
        if kind == "error":
            return b"e=other-error"
        if kind == "missing_v":
            return b"x=1"
        if kind == "bad_b64_sig":
            return b"v=***"
        if kind == "wrong_sig":
            return b"v=" + base64.b64encode(b"0" * 32)
        # the right signature, if the exchange so far allows one
        try:
            it = int(r["iterations"])
            digest = "sha256" if st_["mech"] == "SCRAM-SHA-256" else "sha1"
            pw = (saslprep(PASSWORD) if digest == "sha256"
                  else hashlib.md5(f"{USER}:mongo:{PASSWORD}".encode()).hexdigest()).encode()
            salt = b"salt-0123456789"
            if not (4096 <= it <= 10_000):
                return b"v=" + base64.b64encode(b"1" * 32)
            salted = hashlib.pbkdf2_hmac(digest, pw, salt, it)
            server_key = hmac.digest(salted, b"Server Key", digest)
            without_proof = client_final.rsplit(b",p=", 1)[0]
            auth_msg = b",".join((st_["bare"], st_["first"], without_proof))
            return b"v=" + base64.b64encode(hmac.digest(server_key, auth_msg, digest))
        except Exception:
            return b"v=" + base64.b64encode(b"2" * 32)


@pytest.fixture(scope="module")
def scram(runner: Any) -> Any:
    srv = ScramServer(runner.run(FakeServer().start()))
    yield srv
    runner.run(srv.server.close())


def test_scram_fake_server_plays_straight(runner: Any, scram: ScramServer) -> None:
    """The fake server's honest exchange authenticates (so the fuzz cases are meaningful)."""
    r = {"mechanism": "SCRAM-SHA-256", "nonce": "right", "salt": "right", "iterations": 4096, "extra": [],
         "first_raw": None, "payload_type": "binary", "conversation_id": 1, "start_done": False,
         "start_ok": 1, "final": "right", "final_raw": b"", "final_done": True, "never_done": False,
         "final_ok": 1}
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-1"):
        runner.run(_case(scram, dict(r, mechanism=mech), expect_success=True))


async def _case(srv: ScramServer, r: Dict[str, Any], expect_success: bool = False) -> None:
    srv.recipe = r
    cred = Credential(r["mechanism"], "admin", USER, PASSWORD)
    opts = ConnectionOptions(connect_timeout=5.0, socket_timeout=5.0, credential=cred)
    async with StallWatch() as watch:
        try:
            conn = await Connection.open(srv.server.address, opts)
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc)
            assert expect_success is not True, f"the honest exchange failed: {exc!r}"
        else:
            conn.close()
            # Success needs the server's proof (a right signature over the right nonce).
            assert r["final"] == "right" and r["first_raw"] is None, f"authenticated against {r}"
            assert r["nonce"] in ("right", "client_only", "non_ascii"), f"authenticated against {r}"
    assert watch.max_gap < MAX_STALL, f"authentication blocked the event loop for {watch.max_gap:.2f}s"


@fuzz_settings(150)
@given(recipe=recipes)
def test_scram_server_messages(runner: Any, scram: ScramServer, recipe: Dict[str, Any]) -> None:
    CASES["scram"] += 1
    runner.run(_case(scram, recipe))
