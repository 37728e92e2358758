"""Minimal wire-protocol framing for the benchmark harness (raw client and replay server).

Deliberately independent of :mod:`amongo` so the ``raw`` floor and the replay server do not
move when the driver under test changes.
"""
from __future__ import annotations

import struct
from typing import List, Optional, Sequence, Tuple

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
MSG_PREFIX = struct.Struct("<iiiiI")  # header + flagBits
REPLY_PREFIX = struct.Struct("<iiiiiqii")  # header + responseFlags, cursorID, startingFrom, numberReturned
INT32 = struct.Struct("<i")
INT64 = struct.Struct("<q")


def op_msg(request_id: int, body: bytes, *, flags: int = 0, response_to: int = 0,
           sequences: Optional[Sequence[Tuple[str, bytes]]] = None) -> bytes:
    """Return an OP_MSG frame: section 0 *body* plus kind-1 ``(identifier, concatenated_bson)``."""
    parts = [b"", b"\x00", body]
    length = 21 + len(body)
    if sequences:
        for ident, docs in sequences:
            ident_b = ident.encode() + b"\x00"
            size = 4 + len(ident_b) + len(docs)
            parts += (b"\x01", INT32.pack(size), ident_b, docs)
            length += 1 + size
    parts[0] = MSG_PREFIX.pack(length, request_id, response_to, OP_MSG, flags)
    return b"".join(parts)


def op_reply(request_id: int, response_to: int, doc: bytes) -> bytes:
    """Return an OP_REPLY frame carrying one document (answer to a legacy OP_QUERY)."""
    return REPLY_PREFIX.pack(36 + len(doc), request_id, response_to, OP_REPLY, 0, 0, 0, 1) + doc


def msg_body(frame: bytes) -> Tuple[int, bytes, List[Tuple[str, memoryview]]]:
    """Parse an OP_MSG frame: ``(flags, section0_body, [(identifier, docs_bytes), ...])``."""
    flags = struct.unpack_from("<I", frame, 16)[0]
    end = len(frame) - (4 if flags & CHECKSUM_PRESENT else 0)
    pos = 20
    body = b""
    seqs: List[Tuple[str, memoryview]] = []
    mv = memoryview(frame)
    while pos < end:
        kind = frame[pos]
        size = INT32.unpack_from(frame, pos + 1)[0]
        if kind == 0:
            body = bytes(mv[pos + 1:pos + 1 + size])
        else:
            nul = frame.index(b"\x00", pos + 5)
            ident = frame[pos + 5:nul].decode()
            seqs.append((ident, mv[nul + 1:pos + 1 + size]))
        pos += 1 + size
    return flags, body, seqs


def query_body(frame: bytes) -> bytes:
    """Return the query document of a legacy OP_QUERY frame."""
    nul = frame.index(b"\x00", 20)
    pos = nul + 1 + 8  # numberToSkip, numberToReturn
    size = INT32.unpack_from(frame, pos)[0]
    return frame[pos:pos + size]


def first_key(body: bytes) -> Tuple[str, int, int]:
    """Return ``(name, bson_type, value_offset)`` of a BSON document's first element."""
    nul = body.index(b"\x00", 5)
    return body[5:nul].decode(), body[4], nul + 1


def command_key(body: bytes) -> Tuple[str, Optional[str]]:
    """``(command name, collection)`` from a command body without decoding it."""
    name, btype, off = first_key(body)
    coll = None
    if btype == 0x02:
        n = INT32.unpack_from(body, off)[0]
        coll = body[off + 4:off + 3 + n].decode()
    return name, coll


def count_docs(seq: memoryview) -> int:
    """Number of BSON documents in a kind-1 sequence payload."""
    n = pos = 0
    total = len(seq)
    while pos < total:
        pos += INT32.unpack_from(seq, pos)[0]
        n += 1
    return n


def count_array(body: bytes, field: str) -> int:
    """Number of embedded documents in the top-level array *field* of a command body, without
    decoding it (a write command may carry its documents in the body instead of a sequence).
    0 when the field is absent."""
    tag = b"\x04" + field.encode() + b"\x00"
    at = body.find(tag, 4)
    if at < 0:
        return 0
    pos = at + len(tag)
    end = pos + INT32.unpack_from(body, pos)[0] - 1  # the array document's terminating 0
    pos += 4
    n = 0
    find, unpack = body.find, INT32.unpack_from
    while pos < end:
        key_end = find(b"\x00", pos + 1)
        pos = key_end + 1 + unpack(body, key_end + 1)[0]
        n += 1
    return n
