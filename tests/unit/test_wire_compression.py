"""OP_COMPRESSED framing and compressors."""
from __future__ import annotations

import struct
import zlib

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import ConfigurationError, ProtocolError

from amongo.wire import compression as c
from amongo.wire import message as m

AVAILABLE = c.available_compressors()
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HELLO_BSON = bson.encode({"hello": 1, "$db": "admin"})
PING = bson.encode({"ping": 1, "$db": "admin", "pad": "x" * 200})


def _hdr(length: int, rid: int, rto: int, op: int) -> bytes:
    return struct.pack("<iiii", length, rid, rto, op)


def test_available():
    assert "zlib" in AVAILABLE
    assert set(AVAILABLE) <= {"snappy", "zlib", "zstd"}


@pytest.mark.parametrize("name", AVAILABLE)
def test_compress_frame_layout(name):
    frame = m.encode_op_msg(42, PING, response_to=9)
    comp = c.make_compressor(name)
    out = c.compress_frame(frame, comp)
    length, rid, rto, op, orig, size, cid = struct.unpack_from("<iiiiiiB", out)
    assert (length, rid, rto, op) == (len(out), 42, 9, m.OP_COMPRESSED)
    assert (orig, size, cid) == (m.OP_MSG, len(frame) - 16, {"snappy": 1, "zlib": 2, "zstd": 3}[name])
    assert c.decompress_body(out[16:]) == (m.OP_MSG, frame[16:])
    assert c.decompress_body(memoryview(out)[16:]) == (m.OP_MSG, frame[16:])


def test_zlib_golden_and_level():
    frame = m.encode_op_msg(1, PING)
    for level in (-1, 0, 1, 9):
        out = c.compress_frame(frame, c.make_compressor("zlib", zlib_level=level))
        assert out[16:25] == struct.pack("<iiB", 2013, len(frame) - 16, 2)
        assert out[25:] == zlib.compress(frame[16:], level)
    stored = c.compress_frame(frame, c.make_compressor("zlib", 0))
    best = c.compress_frame(frame, c.make_compressor("zlib", 9))
    assert len(best) < len(frame) < len(stored)


@pytest.mark.parametrize("level", [-2, 10, 1.5, "3"])
def test_zlib_bad_level(level):
    with pytest.raises(ConfigurationError):
        c.make_compressor("zlib", level)


def test_unknown_compressor_name():
    with pytest.raises(ConfigurationError, match="Unknown compressor"):
        c.make_compressor("lz4")


def test_noop_compressor_id_is_accepted():
    frame = m.encode_op_msg(3, HELLO_BSON)
    body = struct.pack("<iiB", m.OP_MSG, len(frame) - 16, 0) + frame[16:]
    assert c.decompress_body(body) == (m.OP_MSG, frame[16:])


@SETTINGS
@given(
    name=st.sampled_from(AVAILABLE),
    body=st.dictionaries(
        st.text(max_size=5).filter(lambda k: "\x00" not in k), st.text(max_size=50), max_size=5
    ).map(bson.encode),
    docs=st.lists(st.binary(max_size=40).map(lambda b: bson.encode({"b": b})), max_size=6),
    checksum=st.booleans(),
    flags=st.sampled_from([0, m.MORE_TO_COME, m.EXHAUST_ALLOWED]),
)
def test_round_trip(name, body, docs, checksum, flags):
    seqs = {"documents": docs} if docs else {}
    frame = m.encode_op_msg(17, body, flags=flags, sequences=seqs, checksum=checksum)
    out = c.compress_frame(frame, c.make_compressor(name))
    header = out[:16]
    length, _rid, _rto, op = m.parse_header(header)
    assert length == len(out) and op == m.OP_COMPRESSED
    orig, plain = c.decompress_body(out[16:])
    assert orig == m.OP_MSG and plain == frame[16:]
    want = (flags | (m.CHECKSUM_PRESENT if checksum else 0), body, seqs)
    # Checksum verified against the rebuilt (uncompressed) header.
    assert m.decode_op_msg(plain, header=header) == want
    assert m.decode_op_msg(out) == want
    if not docs:
        assert m.unpack_reply(orig, header, plain) == want[:2]


@pytest.mark.parametrize("name", AVAILABLE)
def test_checksum_mismatch_inside_compressed(name):
    frame = bytearray(m.encode_op_msg(5, PING, checksum=True))
    frame[-1] ^= 0xFF
    out = c.compress_frame(bytes(frame), c.make_compressor(name))
    orig, plain = c.decompress_body(out[16:])
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        m.unpack_reply(orig, out[:16], plain)
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        m.decode_op_msg(out)


def _compressed_body(name: str, plain: bytes, declared: int) -> bytes:
    payload = c.make_compressor(name).compress(plain)
    return struct.pack("<iiB", m.OP_MSG, declared, {"snappy": 1, "zlib": 2, "zstd": 3}[name]) + payload


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("delta", [-1, 1, 100])
def test_bad_uncompressed_size(name, delta):
    plain = m.encode_op_msg(1, PING)[16:]
    with pytest.raises(ProtocolError, match="(?i)uncompressedSize|decompress"):
        c.decompress_body(_compressed_body(name, plain, len(plain) + delta))


@pytest.mark.parametrize("name", AVAILABLE)
def test_corrupt_payload(name):
    plain = m.encode_op_msg(1, PING)[16:]
    body = bytearray(_compressed_body(name, plain, len(plain)))
    del body[len(body) // 2 :]
    with pytest.raises(ProtocolError):
        c.decompress_body(bytes(body))


@pytest.mark.parametrize(
    "body, match",
    [
        (b"\xdd\x07\x00\x00\x05\x00", "truncated"),
        (struct.pack("<iiB", m.OP_MSG, 5, 4) + b"abc", "unknown compressor id 4"),
        (struct.pack("<iiB", m.OP_MSG, 5, 255) + b"abc", "unknown compressor id 255"),
        (struct.pack("<iiB", m.OP_COMPRESSED, 5, 2) + zlib.compress(b"abcde"), "unsupported opcode"),
        (struct.pack("<iiB", 9999, 5, 2) + zlib.compress(b"abcde"), "unsupported opcode"),
        (struct.pack("<iiB", m.OP_MSG, -1, 2) + zlib.compress(b"abcde"), "uncompressedSize"),
        (struct.pack("<iiB", m.OP_MSG, 10**9, 2) + zlib.compress(b"abcde"), "uncompressedSize"),
        (struct.pack("<iiB", m.OP_MSG, 5, 2) + b"not zlib at all", "corrupt"),
    ],
)
def test_malformed_compressed(body, match):
    with pytest.raises(ProtocolError, match=match):
        c.decompress_body(body)


def test_zlib_bomb_is_bounded():
    plain = b"\x00" * 1_000_000
    body = struct.pack("<iiB", m.OP_MSG, 100, 2) + zlib.compress(plain)
    with pytest.raises(ProtocolError, match="beyond uncompressedSize"):
        c.decompress_body(body)


def test_max_message_size_applies_to_uncompressed_size():
    plain = m.encode_op_msg(1, PING)[16:]
    body = _compressed_body("zlib", plain, len(plain))
    assert c.decompress_body(body, max_message_size=len(plain) + 16)[1] == plain
    with pytest.raises(ProtocolError, match="max message size"):
        c.decompress_body(body, max_message_size=len(plain) + 15)


def test_negotiate():
    assert c.negotiate(["zlib"], ["zlib", "zstd"]) == "zlib"
    assert c.negotiate(["zstd", "zlib"], ["zlib", "zstd"]) == ("zstd" if "zstd" in AVAILABLE else "zlib")
    assert c.negotiate(["zlib", "zstd"], ["zstd", "zlib"]) == "zlib"
    assert c.negotiate(["snappy"], ["zlib"]) is None
    assert c.negotiate([], ["zlib"]) is None
    assert c.negotiate(["zlib"], []) is None
    assert c.negotiate(["lz4", "zlib"], ["lz4", "zlib"]) == "zlib"


def test_uncompressible_commands():
    spec = {
        "hello", "isMaster", "saslStart", "saslContinue", "getnonce", "authenticate",
        "createUser", "updateUser", "copydbSaslStart", "copydbgetnonce", "copydb",
    }
    assert isinstance(c.UNCOMPRESSIBLE_COMMANDS, frozenset)
    assert spec <= c.UNCOMPRESSIBLE_COMMANDS
    for name in spec | {"ismaster", "ISMASTER", "saslstart"}:
        assert not c.is_compressible(name)
    for name in ("find", "insert", "ping", "getMore", "aggregate"):
        assert c.is_compressible(name)
