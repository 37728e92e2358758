"""OP_MSG / OP_REPLY / OP_QUERY framing: golden bytes, round trips, malformed frames."""
from __future__ import annotations

import ast
import pathlib
import struct

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import ProtocolError

from amongo.wire import message as m
from amongo.wire.crc32c import crc32c

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# {"hello": 1, "$db": "admin"}, written out by hand.
HELLO_BSON = (
    b"\x1f\x00\x00\x00"  # 31 bytes
    b"\x10hello\x00\x01\x00\x00\x00"  # int32 hello: 1
    b"\x02$db\x00\x06\x00\x00\x00admin\x00"  # string $db: "admin"
    b"\x00"
)
# {"insert": "c", "$db": "d"}
INSERT_BSON = b"\x1e\x00\x00\x00" b"\x02insert\x00\x02\x00\x00\x00c\x00" b"\x02$db\x00\x02\x00\x00\x00d\x00" b"\x00"
# {"_id": 1}
ID1_BSON = b"\x0e\x00\x00\x00\x10_id\x00\x01\x00\x00\x00\x00"
# {"_id": 2}
ID2_BSON = b"\x0e\x00\x00\x00\x10_id\x00\x02\x00\x00\x00\x00"


def _hdr(length: int, rid: int, rto: int, op: int) -> bytes:
    return struct.pack("<iiii", length, rid, rto, op)


def test_hand_written_bson_matches_bson():
    assert HELLO_BSON == bson.encode({"hello": 1, "$db": "admin"})
    assert INSERT_BSON == bson.encode({"insert": "c", "$db": "d"})
    assert ID1_BSON == bson.encode({"_id": 1})


# ---------------------------------------------------------------------------
# Golden bytes
# ---------------------------------------------------------------------------

HELLO_FRAME = (
    b"\x34\x00\x00\x00"  # messageLength 52 = 16 + 4 + 1 + 31
    b"\x07\x00\x00\x00"  # requestID 7
    b"\x00\x00\x00\x00"  # responseTo 0
    b"\xdd\x07\x00\x00"  # opCode 2013
    b"\x00\x00\x00\x00"  # flagBits
    b"\x00" + HELLO_BSON  # kind 0
)


def test_golden_hello():
    assert len(HELLO_FRAME) == 52
    assert m.encode_op_msg(7, HELLO_BSON) == HELLO_FRAME
    assert m.decode_op_msg(HELLO_FRAME) == (0, HELLO_BSON, {})
    assert m.parse_header(HELLO_FRAME[:16]) == (52, 7, 0, m.OP_MSG)
    assert m.unpack_reply(m.OP_MSG, HELLO_FRAME[:16], HELLO_FRAME[16:]) == (0, HELLO_BSON)


SEQ_FRAME = (
    _hdr(16 + 4 + 1 + 30 + 1 + 4 + 10 + 14 + 14, 0x01020304, 0, 2013)
    + b"\x00\x00\x00\x00"  # flags
    + b"\x00"
    + INSERT_BSON
    + b"\x01"
    + b"\x2a\x00\x00\x00"  # size 42 = 4 + len("documents\0") + 14 + 14
    + b"documents\x00"
    + ID1_BSON
    + ID2_BSON
)


def test_golden_kind1_sequence():
    assert len(SEQ_FRAME) == 94
    assert m.encode_op_msg(0x01020304, INSERT_BSON, sequences=[("documents", [ID1_BSON, ID2_BSON])]) == SEQ_FRAME
    # mapping form
    assert m.encode_op_msg(0x01020304, INSERT_BSON, sequences={"documents": [ID1_BSON, ID2_BSON]}) == SEQ_FRAME
    assert m.decode_op_msg(SEQ_FRAME) == (0, INSERT_BSON, {"documents": [ID1_BSON, ID2_BSON]})
    assert m.decode_op_msg(SEQ_FRAME[16:]) == (0, INSERT_BSON, {"documents": [ID1_BSON, ID2_BSON]})
    assert m.decode_op_msg(memoryview(SEQ_FRAME)) == (0, INSERT_BSON, {"documents": [ID1_BSON, ID2_BSON]})


def test_golden_sequence_before_kind0_and_empty_sequence():
    body = (
        b"\x02\x00\x00\x00"  # moreToCome
        + b"\x01\x0e\x00\x00\x00documents\x00"  # empty sequence first (size 14)
        + b"\x00"
        + INSERT_BSON
    )
    frame = _hdr(16 + len(body), 9, 0, 2013) + body
    assert m.decode_op_msg(frame) == (m.MORE_TO_COME, INSERT_BSON, {"documents": []})


def test_golden_checksum_and_flags():
    flags = m.MORE_TO_COME | m.EXHAUST_ALLOWED | m.CHECKSUM_PRESENT
    unsummed = _hdr(16 + 4 + 1 + 31 + 4, 7, 3, 2013) + struct.pack("<I", flags) + b"\x00" + HELLO_BSON
    frame = unsummed + struct.pack("<I", crc32c(unsummed))
    assert m.encode_op_msg(7, HELLO_BSON, flags=m.MORE_TO_COME | m.EXHAUST_ALLOWED, checksum=True, response_to=3) == frame
    assert m.encode_op_msg(7, HELLO_BSON, flags=flags, response_to=3) == frame
    assert m.decode_op_msg(frame) == (flags, HELLO_BSON, {})
    assert m.unpack_reply(m.OP_MSG, frame[:16], frame[16:]) == (flags, HELLO_BSON)
    assert m.unpack_reply(m.OP_MSG, m.parse_header(frame[:16]), frame[16:]) == (flags, HELLO_BSON)
    # Without a header the checksum is stripped unchecked.
    assert m.decode_op_msg_body(frame[16:]) == (flags, HELLO_BSON)


def test_golden_op_query_and_op_reply():
    frame = m.encode_op_query(5, "admin.$cmd", HELLO_BSON)
    expected = (
        _hdr(16 + 4 + 11 + 8 + 31, 5, 0, 2004)
        + b"\x00\x00\x00\x00"
        + b"admin.$cmd\x00"
        + b"\x00\x00\x00\x00"  # numberToSkip
        + b"\xff\xff\xff\xff"  # numberToReturn -1
        + HELLO_BSON
    )
    assert frame == expected
    assert m.decode_op_query(frame) == (0, "admin.$cmd", 0, -1, HELLO_BSON, None)
    assert m.decode_op_query(frame[16:] + ID1_BSON) == (0, "admin.$cmd", 0, -1, HELLO_BSON, ID1_BSON)

    reply = m.encode_op_reply(11, 5, [ID1_BSON], flags=8)
    expected_reply = _hdr(16 + 20 + 14, 11, 5, 1) + struct.pack("<iqii", 8, 0, 0, 1) + ID1_BSON
    assert reply == expected_reply
    assert m.parse_header(reply[:16]) == (50, 11, 5, m.OP_REPLY)
    assert m.unpack_reply(m.OP_REPLY, reply[:16], reply[16:]) == (8, ID1_BSON)
    assert m.decode_op_reply_body(reply[16:]) == (8, 0, ID1_BSON)


# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------

_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8)
_values = st.one_of(st.integers(-(2**31), 2**31 - 1), st.text(max_size=20), st.booleans(), st.none(), st.binary(max_size=30))
documents = st.dictionaries(_keys, _values, max_size=5).map(bson.encode)
identifiers = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=12)
sequences = st.dictionaries(identifiers, st.lists(documents, max_size=5), max_size=3)
flag_values = st.sampled_from([0, m.MORE_TO_COME, m.EXHAUST_ALLOWED, m.MORE_TO_COME | m.EXHAUST_ALLOWED, 1 << 20])


@SETTINGS
@given(rid=st.integers(-(2**31), 2**31 - 1), body=documents, seqs=sequences, flags=flag_values, checksum=st.booleans())
def test_round_trip(rid, body, seqs, flags, checksum):
    frame = m.encode_op_msg(rid, body, flags=flags, sequences=list(seqs.items()), checksum=checksum)
    length, got_rid, rto, op = m.parse_header(frame[:16])
    assert (length, got_rid, rto, op) == (len(frame), rid, 0, m.OP_MSG)
    want_flags = flags | (m.CHECKSUM_PRESENT if checksum else 0)
    assert m.decode_op_msg(frame) == (want_flags, body, seqs)
    assert m.decode_op_msg(frame[16:], header=frame[:16]) == (want_flags, body, seqs)
    if not seqs:
        assert m.unpack_reply(m.OP_MSG, frame[:16], frame[16:]) == (want_flags, body)
        assert m.unpack_reply(m.OP_MSG, frame[:16], bytearray(frame[16:])) == (want_flags, body)
        assert m.unpack_reply(m.OP_MSG, frame[:16], memoryview(frame)[16:]) == (want_flags, body)


@SETTINGS
@given(body=documents, seqs=sequences, pos=st.integers(min_value=0))
def test_checksum_detects_any_single_byte_flip(body, seqs, pos):
    frame = bytearray(m.encode_op_msg(1, body, sequences=seqs, checksum=True))
    # Flip a byte inside the sections (flags/lengths flips may fail earlier, also with ProtocolError).
    i = 21 + pos % (len(frame) - 21)
    frame[i] ^= 0x40
    with pytest.raises(ProtocolError):
        m.decode_op_msg(bytes(frame))


# ---------------------------------------------------------------------------
# Malformed frames
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [-1, 0, 15, 16])
def test_parse_header_too_short_length(length):
    with pytest.raises(ProtocolError, match="not longer than standard message header"):
        m.parse_header(_hdr(length, 1, 0, 2013))


def test_parse_header_too_long_and_truncated():
    with pytest.raises(ProtocolError, match="larger than server max message size"):
        m.parse_header(_hdr(1001, 1, 0, 2013), 1000)
    assert m.parse_header(_hdr(1000, 1, 0, 2013), 1000)[0] == 1000
    with pytest.raises(ProtocolError, match="truncated"):
        m.parse_header(b"\x20\x00\x00")


def test_unknown_opcode():
    with pytest.raises(ProtocolError, match="Got opcode 2004"):
        m.unpack_reply(m.OP_QUERY, HELLO_FRAME[:16], HELLO_FRAME[16:])
    with pytest.raises(ProtocolError, match="Got opcode 9999"):
        m.unpack_reply(9999, None, HELLO_FRAME[16:])


def _body(flags: int, *sections: bytes) -> bytes:
    return struct.pack("<I", flags) + b"".join(sections)


@pytest.mark.parametrize(
    "body, match",
    [
        (b"", "truncated"),
        (b"\x00\x00\x00\x00\x00\x05\x00\x00\x00", "truncated"),
        (_body(1 << 2, b"\x00" + ID1_BSON), "flag bits"),
        (_body(1 << 15, b"\x00" + ID1_BSON), "flag bits"),
        (_body(0, b"\x02" + ID1_BSON), "unknown section kind 2"),
        (_body(0, b"\x00" + ID1_BSON, b"\x07"), "unknown section kind 7"),
        (_body(0, b"\x00" + ID1_BSON[:-1]), "truncated"),  # document runs past the end
        (_body(0, b"\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00"), "invalid document length"),
        (_body(0, b"\x00" + ID1_BSON, b"\x00" + ID1_BSON), "more than one kind-0"),
        (_body(0, b"\x00" + ID1_BSON, b"\x00\x01"), "truncated"),
        (_body(0, b"\x00" + ID1_BSON, b"\x01\x14\x00\x00\x00x\x00" + ID1_BSON), "document sequence"),
        (_body(1, b"\x00" + ID1_BSON[:3]), "truncated"),
    ],
)
def test_malformed_reply_body(body, match):
    with pytest.raises(ProtocolError, match=match):
        m.decode_op_msg_body(body)
    with pytest.raises(ProtocolError):
        m.unpack_reply(m.OP_MSG, _hdr(16 + len(body), 1, 0, 2013), body)


def test_optional_flag_bits_are_ignored():
    body = _body(1 << 16 | 1 << 31, b"\x00" + ID1_BSON)
    assert m.decode_op_msg_body(body) == (1 << 16 | 1 << 31, ID1_BSON)


def _seq(ident: bytes, *docs: bytes, size: int | None = None) -> bytes:
    payload = ident + b"".join(docs)
    return b"\x01" + struct.pack("<i", 4 + len(payload) if size is None else size) + payload


@pytest.mark.parametrize(
    "body, match",
    [
        (_body(0, _seq(b"documents\x00", ID1_BSON)), "no kind-0 section"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"documents\x00", ID1_BSON, size=100)), "kind-1 section extends past"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"documents\x00", ID1_BSON, size=3)), "invalid size"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"documents")), "not NUL-terminated"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"d\x00", ID1_BSON[:-2])), "invalid length"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"d\x00", ID1_BSON, b"\x03\x00\x00\x00\x00")), "invalid length"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"d\x00", ID1_BSON, b"\x05\x00")), "truncated"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"\xff\x00", ID1_BSON)), "UTF-8"),
        (_body(0, b"\x00" + ID1_BSON, _seq(b"d\x00", ID1_BSON), _seq(b"d\x00")), "duplicate"),
        (_body(0, b"\x00" + ID1_BSON, b"\x01\x05\x00"), "truncated"),
    ],
)
def test_malformed_request(body, match):
    with pytest.raises(ProtocolError, match=match):
        m.decode_op_msg(body)
    with pytest.raises(ProtocolError, match=match):
        m.decode_op_msg(_hdr(16 + len(body), 1, 0, 2013) + body)


def test_checksum_mismatch():
    frame = bytearray(m.encode_op_msg(7, HELLO_BSON, checksum=True))
    frame[-1] ^= 1
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        m.unpack_reply(m.OP_MSG, bytes(frame[:16]), bytes(frame[16:]))
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        m.decode_op_msg(bytes(frame))
    # The header is covered too.
    frame = bytearray(m.encode_op_msg(7, HELLO_BSON, checksum=True))
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        m.unpack_reply(m.OP_MSG, _hdr(len(frame), 8, 0, 2013), bytes(frame[16:]))


def test_malformed_op_reply():
    with pytest.raises(ProtocolError, match="truncated"):
        m.decode_op_reply_body(b"\x00" * 19)
    two = struct.pack("<iqii", 0, 0, 0, 2) + ID1_BSON + ID1_BSON
    with pytest.raises(ProtocolError, match="2 documents"):
        m.decode_op_reply_body(two)
    bad = struct.pack("<iqii", 0, 0, 0, 1) + ID1_BSON + b"\x00"
    with pytest.raises(ProtocolError, match="length"):
        m.decode_op_reply_body(bad)


def test_malformed_op_query():
    with pytest.raises(ProtocolError, match="NUL"):
        m.decode_op_query(b"\x00\x00\x00\x00admin")
    with pytest.raises(ProtocolError, match="truncated"):
        m.decode_op_query(b"\x00\x00\x00\x00a\x00\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="invalid length"):
        m.decode_op_query(b"\x00\x00\x00\x00a\x00" + b"\x00" * 8 + b"\x40\x00\x00\x00\x00")


def test_decode_bson_converts_invalid_bson():
    assert m.decode_bson(HELLO_BSON) == {"hello": 1, "$db": "admin"}
    with pytest.raises(ProtocolError, match="Invalid BSON"):
        m.decode_bson(b"\x06\x00\x00\x00\x01\x00")


def test_wire_package_never_imports_asyncio():
    root = pathlib.Path(m.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"asyncio", "trio", "socket", "ssl"}, (path, name)
                assert not name.startswith("pymongo") or name == "pymongo.errors", (path, name)
