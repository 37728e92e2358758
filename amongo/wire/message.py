"""OP_MSG / OP_REPLY framing (pure, no asyncio).

Frames are built from BSON bytes that the caller has already encoded, so that
constant command parts can be encoded once and reused.
"""
from __future__ import annotations

import struct
from typing import Iterable, Optional, Sequence, Tuple

from pymongo.errors import ProtocolError

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

# OP_MSG flag bits
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16
_REQUIRED_FLAG_MASK = 0xFFFF  # bits 0-15 are "required": unknown ones must be rejected
_KNOWN_REQUIRED = CHECKSUM_PRESENT | MORE_TO_COME

HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
_MSG_PREFIX = struct.Struct("<iiiiI")  # header + flagBits
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
HEADER_SIZE = 16

# Largest frame we accept from a server before we have its hello limits.
DEFAULT_MAX_MESSAGE_SIZE = 48_000_000


def encode_op_msg(
    request_id: int,
    body: bytes,
    *,
    flags: int = 0,
    sequences: Optional[Iterable[Tuple[str, Sequence[bytes]]]] = None,
) -> bytes:
    """Return a complete OP_MSG frame.

    :param request_id: the frame's requestID.
    :param body: the BSON bytes of the section-0 command document.
    :param flags: OP_MSG flag bits (e.g. :data:`MORE_TO_COME` for w:0 writes).
    :param sequences: kind-1 document sequences as ``(identifier, [bson, ...])``.
    """
    if not sequences:
        length = 21 + len(body)
        return b"".join(
            (_MSG_PREFIX.pack(length, request_id, 0, OP_MSG, flags), b"\x00", body)
        )
    parts = [b"", b"\x00", body]
    length = 21 + len(body)
    for ident, docs in sequences:
        ident_b = ident.encode() + b"\x00"
        size = 4 + len(ident_b) + sum(len(d) for d in docs)
        parts.append(b"\x01")
        parts.append(_INT32.pack(size))
        parts.append(ident_b)
        parts.extend(docs)
        length += 1 + size
    parts[0] = _MSG_PREFIX.pack(length, request_id, 0, OP_MSG, flags)
    return b"".join(parts)


def parse_header(data: bytes, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Tuple[int, int, int, int]:
    """Parse and check a 16-byte message header.

    :returns: ``(message_length, request_id, response_to, op_code)``.
    :raises ProtocolError: on an impossible length.
    """
    length, request_id, response_to, op_code = HEADER.unpack(data)
    if length <= HEADER_SIZE:
        raise ProtocolError(f"Message length ({length!r}) not longer than standard message header size (16)")
    if length > max_message_size:
        raise ProtocolError(
            f"Message length ({length!r}) is larger than server max message size ({max_message_size!r})"
        )
    return length, request_id, response_to, op_code


def decode_op_msg_body(data: bytes) -> Tuple[int, bytes]:
    """Decode the part of an OP_MSG reply after the header.

    :returns: ``(flag_bits, section_0_bson)``.
    :raises ProtocolError: on unknown required flags, unsupported sections or
        truncated data.
    """
    if len(data) < 5:
        raise ProtocolError("OP_MSG reply is truncated")
    flags = _UINT32.unpack_from(data, 0)[0]
    if flags & _REQUIRED_FLAG_MASK & ~_KNOWN_REQUIRED:
        raise ProtocolError(f"Unsupported OP_MSG flag bits: 0x{flags:x}")
    end = len(data)
    if flags & CHECKSUM_PRESENT:
        end -= 4
    if data[4] != 0:
        raise ProtocolError(f"Unsupported OP_MSG reply: first section kind {data[4]}")
    if end < 10:
        raise ProtocolError("OP_MSG reply is truncated")
    doc_len = _INT32.unpack_from(data, 5)[0]
    if doc_len < 5 or 5 + doc_len != end:
        raise ProtocolError("Unsupported OP_MSG reply: >1 section or bad document length")
    return flags, data[5:end]


def decode_op_reply_body(data: bytes) -> Tuple[int, int, bytes]:
    """Decode a legacy OP_REPLY body (after the header).

    :returns: ``(response_flags, cursor_id, first_document_bson)``.
    """
    if len(data) < 20:
        raise ProtocolError("OP_REPLY is truncated")
    flags, cursor_id, _start, number = struct.unpack_from("<iqii", data, 0)
    if number != 1:
        raise ProtocolError(f"OP_REPLY with {number} documents; expected 1")
    doc_len = _INT32.unpack_from(data, 20)[0]
    if 20 + doc_len != len(data):
        raise ProtocolError("OP_REPLY document length does not match the frame")
    return flags, cursor_id, bytes(data[20:])


def unpack_reply(op_code: int, header: bytes, body: bytes) -> Tuple[int, bytes]:
    """Decode a server reply frame whose header and body have been read.

    Handles OP_MSG and OP_REPLY (OP_COMPRESSED is unwrapped by the compression layer
    before this is called).

    :returns: ``(flag_bits, bson_of_the_reply_document)``.
    :raises ProtocolError: on an unknown opcode or a malformed body.
    """
    if op_code == OP_MSG:
        return decode_op_msg_body(body)
    if op_code == OP_REPLY:
        flags, _cursor_id, doc = decode_op_reply_body(body)
        return flags, doc
    raise ProtocolError(f"Got opcode {op_code!r} but expected {OP_MSG!r} or {OP_REPLY!r}")
