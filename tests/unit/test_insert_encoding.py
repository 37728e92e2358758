"""insert_many's encoding: all documents in one ``documents`` array when they fit one command
document (one ``bson.encode`` call), kind-1 sequences otherwise; fast ObjectId construction."""
from __future__ import annotations

import os
import pickle

import bson
from bson.codec_options import CodecOptions
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from bson.son import SON

from amongo.engine import operations as ops
from amongo.wire.batching import STATEMENT_OVERHEAD, EncodedArray

MAX_BSON = 16 * 1024 * 1024


def test_encoded_array_appends_a_real_array_field() -> None:
    docs = [{"_id": 1, "a": "x"}, SON([("_id", 2), ("b", [1, 2])]), RawBSONDocument(bson.encode({"_id": 3}))]
    arr = EncodedArray("documents", docs)
    cmd = {"insert": "c", "ordered": True, "$db": "db"}
    body = arr.append_to(bson.encode(cmd))
    decoded = bson.decode(body)
    assert list(decoded) == ["insert", "ordered", "$db", "documents"]
    assert decoded["documents"] == [{"_id": 1, "a": "x"}, {"_id": 2, "b": [1, 2]}, {"_id": 3}]
    # The same bytes as encoding the whole command with the list in it.
    assert body == bson.encode(dict(cmd, documents=docs))
    assert len(arr) == len(body) - len(bson.encode(cmd))


def test_encoded_array_uses_the_codec_options() -> None:
    import uuid

    from bson.binary import UuidRepresentation

    u = uuid.UUID(int=7)
    arr = EncodedArray("documents", [{"u": u}], CodecOptions(uuid_representation=UuidRepresentation.STANDARD))
    body = arr.append_to(bson.encode({"insert": "c"}))
    opts = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)
    assert bson.decode(body, opts)["documents"][0]["u"] == u


def test_one_array_fits() -> None:
    docs = [{"_id": i, "s": "x" * 100} for i in range(1000)]
    arr = ops._one_array(docs, CodecOptions(), 300, MAX_BSON, 100_000)
    assert arr is not None and arr.docs is docs


def test_one_array_declines_what_must_be_split() -> None:
    small = [{"_id": i} for i in range(11)]
    assert ops._one_array(small, CodecOptions(), 300, MAX_BSON, 10) is None  # > maxWriteBatchSize
    assert ops._one_array([], CodecOptions(), 300, MAX_BSON, 10) is None
    # Estimated from the first document: too big to try.
    docs = [{"s": "x" * 1000} for _ in range(100)]
    assert ops._one_array(docs, CodecOptions(), 300, 50_000, 100_000) is None
    # The estimate passes (a small first document) but the array does not fit: declined.
    docs = [{"a": 1}] + [{"s": "x" * 1000} for _ in range(100)]
    assert ops._one_array(docs, CodecOptions(), 300, 50_000, 100_000) is None
    # Fits maxBsonObjectSize but not with a large command part (e.g. a big comment).
    docs = [{"s": "x" * 1000} for _ in range(40)]
    size = len(EncodedArray("documents", docs))
    assert ops._one_array(docs, CodecOptions(), 300, size, 100_000) is not None
    assert ops._one_array(docs, CodecOptions(), STATEMENT_OVERHEAD + 10, size, 100_000) is None


def test_fast_object_ids_are_real_object_ids() -> None:
    b = os.urandom(12)
    oid = ops._oid_from(b)
    assert type(oid) is ObjectId
    assert oid == ObjectId(b) and hash(oid) == hash(ObjectId(b)) and str(oid) == b.hex()
    assert pickle.loads(pickle.dumps(oid)) == oid
    assert bson.decode(bson.encode({"_id": oid}))["_id"] == oid


def test_generated_object_ids_are_unique_and_current() -> None:
    import time

    gen = ops.object_ids()
    ids = [next(gen) for _ in range(5000)] + [ops.new_object_id() for _ in range(10)]
    assert len(set(ids)) == len(ids)
    now = time.time()
    assert all(abs(o.generation_time.timestamp() - now) < 5 for o in ids)
    # amongo's 5-byte process value differs from bson's own ObjectId(): no collisions.
    assert ids[0].binary[4:9] != ObjectId().binary[4:9]


def test_encoded_array_op_msg_is_the_frame_of_the_appended_body() -> None:
    from amongo.wire.message import MORE_TO_COME, decode_op_msg_body, encode_op_msg

    docs = [{"_id": i, "s": "x" * i} for i in range(50)]
    arr = EncodedArray("documents", docs)
    body = bson.encode({"insert": "c", "ordered": True, "$db": "db"})
    for flags in (0, MORE_TO_COME):
        frame = arr.op_msg(1234, flags, body)
        assert frame == encode_op_msg(1234, arr.append_to(body), flags=flags)
    assert bson.decode(decode_op_msg_body(frame[16:])[1])["documents"] == docs
