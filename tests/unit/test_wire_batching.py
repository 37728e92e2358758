"""Write-batch splitting by maxMessageSizeBytes / maxWriteBatchSize / maxBsonObjectSize."""
from __future__ import annotations

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import DocumentTooLarge

from amongo.wire.batching import STATEMENT_OVERHEAD, batch_overhead, max_document_size, split_batches
from amongo.wire.message import decode_op_msg, encode_op_msg

CMD = bson.encode({"insert": "coll", "$db": "db", "ordered": True})
KiB16 = 16 * 1024


def doc_of_size(n: int) -> bytes:
    """A real BSON document of exactly *n* bytes (n >= 13)."""
    d = bson.encode({"x": "a" * (n - 13)})
    assert len(d) == n
    return d


def _split(docs, *, max_bson=1000, max_msg=10_000, max_batch=1000, ident="documents", cmd=CMD, **kw):
    return split_batches(
        len(cmd), ident, docs, max_bson_size=max_bson, max_message_size=max_msg, max_write_batch_size=max_batch, **kw
    )


def _frames(batches, docs, ident="documents", cmd=CMD, checksum=False):
    return [encode_op_msg(1, cmd, sequences=((ident, docs[a:b]),), checksum=checksum) for a, b in batches]


def test_overhead_matches_encoder():
    for ident in ("documents", "updates", "deletes", "x"):
        for checksum in (False, True):
            frame = encode_op_msg(1, CMD, sequences=((ident, []),), checksum=checksum)
            assert batch_overhead(len(CMD), ident, checksum=checksum) == len(frame)


def test_empty_and_single_batch():
    assert _split([]) == []
    docs = [doc_of_size(20)] * 10
    assert _split(docs) == [(0, 10)]


def test_max_write_batch_size():
    docs = [doc_of_size(20)] * 10
    assert _split(docs, max_batch=3) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert _split(docs, max_batch=10) == [(0, 10)]
    assert _split(docs, max_batch=9) == [(0, 9), (9, 10)]
    assert _split(docs, max_batch=1) == [(i, i + 1) for i in range(10)]


def test_message_size_boundary():
    docs = [doc_of_size(100)] * 10
    exact = batch_overhead(len(CMD), "documents") + 1000
    assert _split(docs, max_msg=exact) == [(0, 10)]
    assert len(_frames([(0, 10)], docs)[0]) == exact
    assert _split(docs, max_msg=exact - 1) == [(0, 9), (9, 10)]
    room5 = batch_overhead(len(CMD), "documents") + 500
    assert _split(docs, max_msg=room5) == [(0, 5), (5, 10)]
    assert _split(docs, max_msg=room5 + 99) == [(0, 5), (5, 10)]
    # The checksum takes 4 bytes of the room.
    assert _split(docs, max_msg=exact, checksum=True) == [(0, 9), (9, 10)]
    assert _split(docs, max_msg=exact + 4, checksum=True) == [(0, 10)]


def test_insert_document_too_large():
    docs = [doc_of_size(20), doc_of_size(1001), doc_of_size(20)]
    with pytest.raises(DocumentTooLarge, match="1001 bytes"):
        _split(docs, max_bson=1000)
    assert _split([doc_of_size(1000)], max_bson=1000) == [(0, 1)]


@pytest.mark.parametrize("ident", ["updates", "deletes"])
def test_statement_gets_16kib_more(ident):
    max_bson = 1000
    assert max_document_size(ident, max_bson) == max_bson + KiB16 == max_bson + STATEMENT_OVERHEAD
    assert max_document_size("documents", max_bson) == max_bson
    ok = [doc_of_size(max_bson + KiB16)]
    assert _split(ok, max_bson=max_bson, max_msg=100_000, ident=ident) == [(0, 1)]
    with pytest.raises(DocumentTooLarge, match="command document too large"):
        _split([doc_of_size(max_bson + KiB16 + 1)], max_bson=max_bson, max_msg=100_000, ident=ident)


def test_max_doc_size_override():
    with pytest.raises(DocumentTooLarge):
        _split([doc_of_size(50)], max_doc_size=49)


def test_document_that_cannot_fit_any_message():
    docs = [doc_of_size(900)]
    room = batch_overhead(len(CMD), "documents") + 900
    assert _split(docs, max_msg=room) == [(0, 1)]
    with pytest.raises(DocumentTooLarge, match="does not fit"):
        _split(docs, max_msg=room - 1)


def test_command_document_too_large():
    big = bson.encode({"insert": "c", "pad": "x" * (1000 + KiB16)})
    with pytest.raises(DocumentTooLarge, match="command document too large"):
        _split([doc_of_size(20)], cmd=big, max_msg=10**6)


def test_raises_before_anything_when_late_doc_too_large():
    docs = [doc_of_size(20)] * 5000 + [doc_of_size(2000)]
    with pytest.raises(DocumentTooLarge):
        _split(docs, max_batch=10)


def test_accepts_bytearray_and_memoryview_docs():
    docs = [bytearray(doc_of_size(30)), memoryview(doc_of_size(40))]
    assert _split(docs, max_msg=batch_overhead(len(CMD), "documents") + 69) == [(0, 1), (1, 2)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(13, 300), max_size=60),
    max_batch=st.integers(1, 20),
    room=st.integers(300, 3000),
    ident=st.sampled_from(["documents", "updates", "deletes"]),
    checksum=st.booleans(),
)
def test_batches_are_valid_and_greedy(sizes, max_batch, room, ident, checksum):
    docs = [doc_of_size(n) for n in sizes]
    max_msg = batch_overhead(len(CMD), ident, checksum=checksum) + room
    batches = _split(docs, max_msg=max_msg, max_batch=max_batch, ident=ident, checksum=checksum)
    # Consecutive, non-empty, covering everything.
    assert [a for a, _ in batches] == ([0] + [b for _, b in batches[:-1]] if batches else [])
    assert (batches[-1][1] if batches else 0) == len(docs)
    assert all(b > a for a, b in batches)
    for (a, b), frame in zip(batches, _frames(batches, docs, ident, checksum=checksum)):
        assert len(frame) <= max_msg
        assert b - a <= max_batch
        assert decode_op_msg(frame)[2] == {ident: docs[a:b]}
        if b < len(docs):  # greedy: the next doc would not have fit
            assert b - a == max_batch or sum(sizes[a : b + 1]) > room
