"""Pre-encoded BSON elements spliced into encoded documents (``amongo.wire.message``) and the
connection's spliced command body."""
from __future__ import annotations

from typing import Dict, List

import bson
from bson import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from amongo.connection import _DB_ELEMENTS, _db_element
from amongo.wire.message import elements, splice_elements, string_element

_values = st.one_of(st.integers(-(2**31), 2**31 - 1), st.text(max_size=20), st.booleans(), st.none())
# (no "_id": bson.encode moves a top-level _id first, so the oracle below would reorder it)
_docs = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "\x00" not in k and not k.startswith("$") and k != "_id"),
                        _values, max_size=5)


@given(_docs, _docs)
def test_splice_equals_encoding_both_documents_together(a: dict, b: dict) -> None:
    b = {k: v for k, v in b.items() if k not in a}
    spliced = splice_elements(bson.encode(a), elements(bson.encode(b)))
    assert spliced == bson.encode({**a, **b})


@given(st.text(max_size=30))
def test_string_element(value: str) -> None:
    assert string_element("$db", value) == elements(bson.encode({"$db": value}))


def test_db_elements_are_cached_and_end_the_document() -> None:
    db = _db_element("some_db")
    assert _DB_ELEMENTS["some_db"] is db and db.endswith(b"\x00")
    cmd = {"find": "c", "lsid": {"id": 1}, "$clusterTime": {"clusterTime": Timestamp(1, 1)}}
    tail = elements(bson.encode({"lsid": cmd["lsid"], "$clusterTime": cmd["$clusterTime"]}))
    body = bson.encode({"find": "c"})
    # (what Connection.command builds with a tail)
    import struct

    spliced = b"".join((struct.pack("<i", len(body) - 1 + len(tail) + len(db)), body[4:-1], tail, db))
    assert bson.decode(spliced) == dict(cmd, **{"$db": "some_db"})


def test_connection_command_with_a_tail_and_a_commands_own_db() -> None:
    """Connection.command: with *tail*, the frame's body is the command, the tail, then $db;
    a command's own $db is replaced (one key), the tail still sent."""
    from types import SimpleNamespace

    from amongo.connection import Connection

    class _Proto:
        transport = None

    sent = []

    class _Recording(Connection):
        def _round_trip(self, frame, codec_options, check, split_times=False):  # type: ignore[no-untyped-def,override]
            sent.append(frame)

    conn = _Recording(_Proto(), ("a", 1), SimpleNamespace(socket_timeout=None))  # type: ignore[arg-type]
    tail = elements(bson.encode({"lsid": {"id": 7}}))
    conn.command("db1", {"ping": 1}, tail=tail)
    conn.command("db2", {"ping": 1, "$db": "other"}, tail=tail)
    assert [bson.decode(f[21:]) for f in sent] == [
        {"ping": 1, "lsid": {"id": 7}, "$db": "db1"}, {"ping": 1, "$db": "db2", "lsid": {"id": 7}}]


@given(
    st.integers(0, 2**31 - 1), st.sampled_from([0, 2, 1 << 16]),
    st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k and k != "_id"), st.integers(-2**63, 2**63 - 1),
                    max_size=4),
    st.sampled_from(["documents", "updates", "deletes", "ops"]),
    st.lists(st.dictionaries(st.sampled_from("abc"), st.integers(-2**31, 2**31 - 1), max_size=3), min_size=1, max_size=4),
)
def test_one_sequence_frame_equals_the_general_encoding(rid: int, flags: int, cmd: Dict[str, int], ident: str,
                                                         docs: List[Dict[str, int]]) -> None:
    from amongo.wire.message import encode_op_msg, encode_op_msg_sequence

    body = bson.encode(cmd)
    encoded = [bson.encode(d) for d in docs]
    assert encode_op_msg_sequence(rid, flags, body, ident, encoded) == encode_op_msg(
        rid, body, flags=flags, sequences=[(ident, encoded)])
