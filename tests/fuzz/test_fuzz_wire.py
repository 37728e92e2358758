"""Fuzz target ``reply_frames``: after a normal handshake, a fake server answers one ``find``
with a generated frame -- any responseTo, opcode, flag bits, length, sections, compression
(including decompression bombs), document (the right one with fields of wrong types, random,
invalid BSON), duplicated, cut into pieces, truncated -- through a long-lived client.

Invariants per case: the operation returns or raises a ``pymongo.errors`` exception within the
bound; a frame whose responseTo is not the request's id is never accepted as its reply; the same
client then serves correct replies again (the pool and topology recover), its monitor alive.
"""
from __future__ import annotations

import asyncio
import struct
import tracemalloc
import zlib
from typing import Any, Dict, Optional

import bson
import pytest
from hypothesis import given, strategies as st

from amongo.motor_asyncio import AsyncIOMotorClient
from fuzzlib import CASES, FakeServer, assert_user_error, fuzz_settings, good_find_reply
from proxy import OP_COMPRESSED, OP_MSG, OP_REPLY, Frame

OP_QUERY = 2004

values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(),
    st.text(max_size=12), st.binary(max_size=12),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.builds(bson.ObjectId), st.just(bson.Int64(2 ** 62)), st.just(float("nan")),
)
docs = st.dictionaries(st.text(max_size=8), values, max_size=5)
MUTATION_PATHS = ["ok", "cursor", "cursor.firstBatch", "cursor.id", "cursor.ns", "cursor.firstBatch.0",
                  "cursor.nextBatch", "errmsg", "code", "writeConcernError", "$clusterTime", "operationTime"]

recipes = st.fixed_dictionaries({
    "response_to": st.sampled_from(["right"] * 6 + ["zero", "other", "negative", "next"]),
    "opcode": st.sampled_from([OP_MSG] * 6 + [OP_REPLY, OP_COMPRESSED, OP_COMPRESSED, OP_QUERY, 0, -1, 9999]),
    "flags": st.one_of(st.sampled_from([0] * 6 + [1, 2, 3, 1 << 16, 0xFFFFFFFF]), st.integers(0, 2 ** 32 - 1)),
    "body": st.sampled_from(["good"] * 3 + ["mutated"] * 3 + ["random_doc", "random_bytes", "empty",
                                                              "two_docs", "sequence", "unknown_kind",
                                                              "bad_bson", "short_doc"]),
    "doc": docs,
    "mutation": st.tuples(st.sampled_from(MUTATION_PATHS), st.one_of(st.just("<delete>"), values)),
    "raw": st.binary(max_size=64),
    "compressor": st.sampled_from([0, 1, 2, 3, 2, 7]),
    "size": st.sampled_from(["right"] * 4 + ["smaller", "bigger", "huge", "negative"]),
    "bomb": st.sampled_from([False] * 9 + [True]),
    "length": st.sampled_from(["right"] * 8 + ["plus", "minus", "tiny", "huge"]),
    "duplicates": st.sampled_from([0] * 6 + [1, 2]),
    "chunk": st.one_of(st.none(), st.none(), st.integers(1, 64)),
    "truncate": st.one_of(st.none(), st.none(), st.none(), st.floats(0.0, 1.0)),
    "close": st.booleans(),
})


def _mutate(doc: Dict[str, Any], path: str, value: Any) -> Dict[str, Any]:
    target: Any = doc
    parts = path.split(".")
    for p in parts[:-1]:
        nxt = target[int(p)] if isinstance(target, list) else target.get(p)
        if not isinstance(nxt, (dict, list)):
            return doc
        target = nxt
    last = parts[-1]
    if isinstance(target, list):
        if target:
            target[0] = None if value == "<delete>" else value
    elif value == "<delete>":
        target.pop(last, None)
    else:
        target[last] = value
    return doc


def _compress(cid: int, data: bytes) -> bytes:
    if cid == 1:
        import snappy

        return snappy.compress(data)
    if cid == 2:
        return zlib.compress(data)
    if cid == 3:
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


def build_reply(r: Dict[str, Any], request_id: int, find: Dict[str, Any]) -> bytes:
    """The bytes of a generated reply to the ``find`` with *request_id*."""
    good = good_find_reply(find)
    kind = r["body"]
    if kind == "good":
        doc_bytes = bson.encode(good)
    elif kind == "mutated":
        doc_bytes = bson.encode(_mutate(good, *r["mutation"]))
    elif kind == "random_doc":
        doc_bytes = bson.encode(r["doc"])
    elif kind == "bad_bson":
        doc_bytes = bytearray(bson.encode(good))
        doc_bytes[len(doc_bytes) // 2] ^= 0x5A
        doc_bytes = bytes(doc_bytes)
    elif kind == "short_doc":
        doc_bytes = bson.encode(good)[:-3]
    else:
        doc_bytes = b""
    flags = r["flags"] & ~1  # (a checksum flag with a checksum is built below)
    if r["opcode"] == OP_REPLY or r["opcode"] == OP_QUERY:
        body = struct.pack("<iqii", 0, 0, 0, 1) + (doc_bytes or r["raw"])
    elif kind == "random_bytes":
        body = r["raw"]
    elif kind == "empty":
        body = struct.pack("<I", flags)
    elif kind == "two_docs":
        body = struct.pack("<I", flags) + b"\x00" + doc_bytes + b"\x00" + doc_bytes
    elif kind == "sequence":
        seq = b"docs\x00" + bson.encode({"x": 1})
        body = struct.pack("<I", flags) + b"\x00" + doc_bytes + b"\x01" + struct.pack("<i", len(seq) + 4) + seq
    elif kind == "unknown_kind":
        body = struct.pack("<I", flags) + b"\x07" + doc_bytes
    else:
        body = struct.pack("<I", flags) + b"\x00" + doc_bytes
    if r["flags"] & 1 and r["opcode"] == OP_MSG:  # checksumPresent: a (wrong) CRC
        body = struct.pack("<I", r["flags"]) + body[4:] + struct.pack("<I", 0xC0FFEE)
    opcode = r["opcode"]
    if opcode == OP_COMPRESSED:
        inner = body
        if r["bomb"]:
            inner = struct.pack("<I", 0) + b"\x00" + b"\x00" * (64 * 1024 * 1024)
        cid = r["compressor"]
        size = {"right": len(inner), "smaller": max(0, len(inner) - 7), "bigger": len(inner) + 7,
                "huge": 2 ** 31 - 1, "negative": -5}[r["size"]]
        body = struct.pack("<iiB", OP_MSG, size, cid) + _compress(cid, inner)
    response_to = {"right": request_id, "zero": 0, "other": request_id ^ 0x5555, "negative": -request_id,
                   "next": request_id + 1}[r["response_to"]]
    length = 16 + len(body)
    length = {"right": length, "plus": length + 5, "minus": length - 5, "tiny": 3,
              "huge": 2 ** 31 - 1}[r["length"]]
    data = struct.pack("<iiii", length, 0x600000 + request_id % 1000, response_to, opcode) + body
    if r["truncate"] is not None:
        data = data[: int(len(data) * r["truncate"])]
    return data * (1 + r["duplicates"])


class Campaign:
    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.server = runner.run(FakeServer().start())
        self.client = runner.run(self._client())
        # quick re-checks after an error marks the server Unknown (the URI's minimum is 500 ms)
        self.client._topology.settings.min_heartbeat_frequency = 0.02
        self.coll = self.client.db.coll
        self.k = 0

    async def _client(self) -> Any:
        return AsyncIOMotorClient(
            self.server.uri(), connect=False, retryReads=False, socketTimeoutMS=500, connectTimeoutMS=2000,
            serverSelectionTimeoutMS=5000, maxPoolSize=3)

    async def case(self, recipe: Dict[str, Any]) -> None:
        sent: Dict[str, Any] = {}

        async def fuzz_find(conn: Any, frame: Frame, name: str, doc: Dict[str, Any]) -> None:
            data = build_reply(recipe, frame.request_id, doc)
            sent["bytes"] = len(data)
            step = recipe["chunk"]
            if step:
                for i in range(0, len(data), step):
                    await conn.send(data[i:i + step])
            else:
                await conn.send(data)
            if recipe["close"] or recipe["truncate"] is not None:
                conn.close()

        self.server.once["find"] = fuzz_find
        self.k += 1
        k = self.k
        try:
            result = await self.coll.find_one({"_id": k})
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc)
        else:
            assert "bytes" in sent, "the fuzzed reply was not requested"
            if recipe["response_to"] != "right":
                raise AssertionError(f"a reply with responseTo={recipe['response_to']} was accepted: {result!r}")
        self.server.once.pop("find", None)
        await self.recover()

    async def recover(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            self.k += 1
            k = self.k
            try:
                doc = await self.coll.find_one({"_id": k})
            except Exception as exc:  # noqa: BLE001 - checked
                assert_user_error(exc)
                assert loop.time() < deadline, f"no recovery: {exc!r}"
                await asyncio.sleep(0.02)
                continue
            assert doc == {"_id": k, "v": f"value-{k}"}, f"wrong reply after a fuzzed frame: {doc!r} for {k}"
            break
        for srv in self.client._topology.servers.values():
            assert srv.monitor is not None and srv.monitor._task is not None and not srv.monitor._task.done()

    def close(self) -> None:
        self.client.close()
        self.runner.run(self.server.close())


@pytest.fixture(scope="module")
def campaign(runner: Any) -> Any:
    c = Campaign(runner)
    yield c
    c.close()


@fuzz_settings(150)
@given(recipe=recipes)
def test_reply_frames(campaign: Campaign, recipe: Dict[str, Any]) -> None:
    CASES["reply_frames"] += 1
    campaign.runner.run(campaign.case(recipe))


@pytest.mark.parametrize("claim", ["honest", "understated"])
@pytest.mark.parametrize("compressor", [2, 3, 1])
def test_decompression_bomb_is_capped(runner: Any, compressor: int, claim: str) -> None:
    """A compressed reply that inflates to more than the server's maxMessageSizeBytes (4 MB
    here) is refused without inflating it -- whether its header says so (``honest``) or
    claims a small size (``understated``): ProtocolError, memory bounded, and the next
    operation works."""
    name = {1: "snappy", 2: "zlib", 3: "zstd"}[compressor]
    pytest.importorskip({1: "snappy", 2: "zlib", 3: "zstandard"}[compressor])
    inner = struct.pack("<I", 0) + b"\x00" + bson.encode({"pad": b"\x00" * (40 * 1024 * 1024)})
    payload = _compress(compressor, inner)
    size = len(inner) if claim == "honest" else 1000

    async def case() -> None:
        server = await FakeServer().start()
        server.hello = dict(server.hello, maxMessageSizeBytes=4 * 1024 * 1024, compression=[name])

        async def bomb(conn: Any, frame: Frame, cmd: str, doc: Dict[str, Any]) -> None:
            body = struct.pack("<iiB", OP_MSG, size, compressor) + payload
            await conn.send(struct.pack("<iiii", 16 + len(body), 1, frame.request_id, OP_COMPRESSED) + body)

        client = AsyncIOMotorClient(server.uri(compressors=name), retryReads=False, socketTimeoutMS=5000)
        try:
            assert await client.db.coll.find_one({"_id": 0}) == {"_id": 0, "v": "value-0"}
            server.once["find"] = bomb
            tracemalloc.start()
            try:
                with pytest.raises(Exception) as info:
                    await client.db.coll.find_one({"_id": 1})
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert_user_error(info.value)
            assert peak < 16 * 1024 * 1024, f"a decompression bomb allocated {peak} bytes"
            for _ in range(50):
                try:
                    assert await client.db.coll.find_one({"_id": 2}) == {"_id": 2, "v": "value-2"}
                    break
                except Exception as exc:  # noqa: BLE001
                    assert_user_error(exc)
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("no recovery after the bomb")
        finally:
            client.close()
            await server.close()
        CASES["decompression_bomb"] += 1

    runner.run(case(), 120)
