"""OP_MSG / OP_REPLY / OP_QUERY framing (pure, no asyncio).

Frames are built from BSON bytes that the caller has already encoded, so that
constant command parts can be encoded once and reused.

Layout reminders (all little-endian)::

    MsgHeader   int32 messageLength, int32 requestID, int32 responseTo, int32 opCode
    OP_MSG      uint32 flagBits, Section+, [uint32 checksum]
    Section     uint8 kind; kind 0: document; kind 1: int32 size, cstring identifier, document*

The checksum (flag bit 0) is a CRC-32C of the whole message, header included,
checksum excluded.

Reading a reply on the hot path is::

    length, request_id, response_to, op_code = parse_header(header_bytes, max_message_size)
    body = <read length - 16 bytes>
    if op_code == OP_COMPRESSED:
        op_code, body = compression.decompress_body(body)
    flags, doc_bson = unpack_reply(op_code, header_bytes, body)
"""
from __future__ import annotations

import struct
from typing import (
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from bson.errors import InvalidBSON
from pymongo.errors import ProtocolError

from amongo.wire.compression import decompress_body
from amongo.wire.crc32c import crc32c
from amongo.wire.header import (
    CHECKSUM_PRESENT,
    DEFAULT_MAX_MESSAGE_SIZE,
    EXHAUST_ALLOWED,
    HEADER,
    HEADER_SIZE,
    MORE_TO_COME,
    OP_COMPRESSED,
    OP_MSG,
    OP_QUERY,
    OP_REPLY,
)

__all__ = [
    "OP_REPLY",
    "OP_QUERY",
    "OP_COMPRESSED",
    "OP_MSG",
    "CHECKSUM_PRESENT",
    "MORE_TO_COME",
    "EXHAUST_ALLOWED",
    "HEADER",
    "HEADER_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "encode_op_msg",
    "encode_op_msg_sequence",
    "encode_op_query",
    "encode_op_reply",
    "parse_header",
    "decode_op_msg_body",
    "decode_op_msg",
    "decode_op_reply_body",
    "decode_op_query",
    "unpack_reply",
    "decode_bson",
    "elements",
    "string_element",
    "splice_elements",
]

BytesLike = Union[bytes, bytearray, memoryview]
#: A header as raw 16 bytes or as :func:`parse_header`'s tuple.
HeaderLike = Union[BytesLike, Tuple[int, int, int, int]]
Sequences = Union[Iterable[Tuple[str, Sequence[bytes]]], Mapping[str, Sequence[bytes]]]

_REQUIRED_FLAG_MASK = 0xFFFF  # bits 0-15 are "required": unknown ones must be rejected
_KNOWN_REQUIRED = CHECKSUM_PRESENT | MORE_TO_COME
_UNKNOWN_REQUIRED = _REQUIRED_FLAG_MASK & ~_KNOWN_REQUIRED

_MSG_PREFIX = struct.Struct("<iiiiI")  # header + flagBits
_MSG_PREFIX_KIND0 = struct.Struct("<iiiiIB")  # header + flagBits + section kind 0
_QUERY_PREFIX = struct.Struct("<iiiii")  # header + OP_QUERY flags
_QUERY_COUNTS = struct.Struct("<ii")  # numberToSkip, numberToReturn
_REPLY_PREFIX = struct.Struct("<iiiiiqii")  # header + responseFlags, cursorID, startingFrom, numberReturned
_REPLY_FIELDS = struct.Struct("<iqii")
_SEQ_PREFIX = struct.Struct("<Bi")  # section kind 1 + sequence size
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_KNOWN_OPCODES = {OP_REPLY: "OP_REPLY", OP_QUERY: "OP_QUERY", OP_COMPRESSED: "OP_COMPRESSED", OP_MSG: "OP_MSG"}

# Encoded cstring identifiers, so that the common ones are not re-encoded per call.
_IDENT_CACHE: Dict[str, bytes] = {
    name: name.encode() + b"\x00" for name in ("documents", "updates", "deletes", "ops", "nsInfo")
}


def _ident_bytes(ident: str) -> bytes:
    b = _IDENT_CACHE.get(ident)
    if b is None:
        b = ident.encode() + b"\x00"
        if len(_IDENT_CACHE) < 64:
            _IDENT_CACHE[ident] = b
    return b


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


# BSON is concatenable: a document is int32 length, elements, NUL. Parts of a command that do
# not change between operations (``lsid``, ``$readPreference``, the API version, ``$db``) are
# encoded once as elements and spliced after the operation's own encoded fields.


def elements(document: bytes) -> bytes:
    """The encoded elements of one encoded BSON *document* (without its length and its
    terminating NUL): bytes that :func:`splice_elements` appends to another document."""
    return document[4:-1]


def string_element(name: str, value: str) -> bytes:
    """The encoded element ``name: value`` (a BSON string)."""
    v = value.encode("utf-8")
    return b"\x02" + name.encode("utf-8") + b"\x00" + _INT32.pack(len(v) + 1) + v + b"\x00"


def splice_elements(body: bytes, tail: bytes) -> bytes:
    """The encoded document *body* with the encoded elements *tail* appended (after its own
    fields, in order)."""
    return b"".join((_INT32.pack(len(body) + len(tail)), body[4:-1], tail, b"\x00"))


def encode_op_msg_sequence(request_id: int, flags: int, body: bytes, ident: str, docs: Sequence[bytes]) -> bytes:
    """An OP_MSG frame of *body* and one document sequence *ident* (no checksum): what
    :func:`encode_op_msg` returns for ``sequences=[(ident, docs)]``, without its general
    loop (a write of one statement: insert_one, update_one, delete_one)."""
    ident_b = _IDENT_CACHE.get(ident) or _ident_bytes(ident)
    size = 4 + len(ident_b) + (len(docs[0]) if len(docs) == 1 else sum(map(len, docs)))
    return b"".join((
        _MSG_PREFIX_KIND0.pack(22 + len(body) + size, request_id, 0, OP_MSG, flags, 0), body,
        _SEQ_PREFIX.pack(1, size), ident_b, *docs,
    ))


def encode_op_msg(
    request_id: int,
    body: bytes,
    *,
    flags: int = 0,
    sequences: Optional[Sequences] = None,
    response_to: int = 0,
    checksum: bool = False,
) -> bytes:
    """Return a complete OP_MSG frame.

    :param request_id: the frame's requestID.
    :param body: the BSON bytes of the section-0 command document.
    :param flags: OP_MSG flag bits (e.g. :data:`MORE_TO_COME` for w:0 writes,
        :data:`EXHAUST_ALLOWED` for exhaust getMore/hello).
    :param sequences: kind-1 document sequences as ``(identifier, [bson, ...])``
        pairs or as a mapping ``{identifier: [bson, ...]}``.
    :param response_to: the frame's responseTo (0 for requests; servers, mocks
        and test proxies set it to the request's id).
    :param checksum: append a CRC-32C checksum (also done when *flags* has
        :data:`CHECKSUM_PRESENT`).
    """
    if checksum:
        flags |= CHECKSUM_PRESENT
    if not sequences:
        if not flags & CHECKSUM_PRESENT:
            return _MSG_PREFIX_KIND0.pack(21 + len(body), request_id, response_to, OP_MSG, flags, 0) + body
        parts: List[bytes] = [b"", body]
        length = 21 + len(body)
    else:
        parts = [b"", body]
        length = 21 + len(body)
        if type(sequences) is not tuple and type(sequences) is not list and isinstance(sequences, Mapping):
            # (the tuple/list check first: an isinstance of typing.Mapping costs Python calls)
            sequences = sequences.items()
        seq_prefix = _SEQ_PREFIX.pack
        append = parts.append
        for ident, docs in sequences:
            ident_b = _ident_bytes(ident)
            size = 4 + len(ident_b) + sum(map(len, docs))
            append(seq_prefix(1, size))
            append(ident_b)
            parts.extend(docs)
            length += 1 + size
    if flags & CHECKSUM_PRESENT:
        length += 4
        parts[0] = _MSG_PREFIX_KIND0.pack(length, request_id, response_to, OP_MSG, flags, 0)
        crc = 0
        for part in parts:
            crc = crc32c(part, crc)
        parts.append(_UINT32.pack(crc))
    else:
        parts[0] = _MSG_PREFIX_KIND0.pack(length, request_id, response_to, OP_MSG, flags, 0)
    return b"".join(parts)


def encode_op_query(
    request_id: int,
    collection: str,
    query: bytes,
    *,
    flags: int = 0,
    number_to_skip: int = 0,
    number_to_return: int = -1,
    response_to: int = 0,
) -> bytes:
    """Return a legacy OP_QUERY frame (only for the initial legacy ``hello``).

    :param collection: the full collection name, e.g. ``"admin.$cmd"``.
    :param query: the BSON bytes of the query/command document.
    """
    coll = collection.encode() + b"\x00"
    length = 20 + len(coll) + 8 + len(query)
    return b"".join(
        (
            _QUERY_PREFIX.pack(length, request_id, response_to, OP_QUERY, flags),
            coll,
            _QUERY_COUNTS.pack(number_to_skip, number_to_return),
            query,
        )
    )


def encode_op_reply(
    request_id: int,
    response_to: int,
    documents: Sequence[bytes],
    *,
    flags: int = 0,
    cursor_id: int = 0,
    starting_from: int = 0,
) -> bytes:
    """Return a legacy OP_REPLY frame (for mock servers answering OP_QUERY)."""
    size = sum(map(len, documents))
    prefix = _REPLY_PREFIX.pack(
        36 + size, request_id, response_to, OP_REPLY, flags, cursor_id, starting_from, len(documents)
    )
    return b"".join((prefix, *documents))


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def parse_header(data: BytesLike, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Tuple[int, int, int, int]:
    """Parse and check a 16-byte message header.

    :returns: ``(message_length, request_id, response_to, op_code)``.
    :raises ProtocolError: on an impossible length.
    """
    if len(data) < HEADER_SIZE:
        raise ProtocolError(f"Message header is truncated ({len(data)} of 16 bytes)")
    length, request_id, response_to, op_code = HEADER.unpack_from(data)
    if length <= HEADER_SIZE:
        raise ProtocolError(f"Message length ({length!r}) not longer than standard message header size (16)")
    if length > max_message_size:
        raise ProtocolError(
            f"Message length ({length!r}) is larger than server max message size ({max_message_size!r})"
        )
    return length, request_id, response_to, op_code


def _header_ids(header: HeaderLike) -> Tuple[int, int]:
    """Return ``(request_id, response_to)`` from raw header bytes or a parsed header."""
    if isinstance(header, tuple):
        return header[1], header[2]
    if len(header) < HEADER_SIZE:
        raise ProtocolError("Message header is truncated")
    _len, rid, rto, _op = HEADER.unpack_from(header)
    return rid, rto


def _verify_checksum(data: BytesLike, header: HeaderLike, op_code: int = OP_MSG) -> None:
    """Check the trailing CRC-32C of an OP_MSG body against its (rebuilt) header.

    The header is rebuilt from the body's length, so this is correct for a
    message that arrived inside OP_COMPRESSED too.
    """
    n = len(data)
    rid, rto = _header_ids(header)
    prefix = HEADER.pack(n + HEADER_SIZE, rid, rto, op_code)
    expected = _UINT32.unpack_from(data, n - 4)[0]
    actual = crc32c(memoryview(data)[: n - 4], crc32c(prefix))
    if actual != expected:
        raise ProtocolError(f"OP_MSG checksum mismatch: computed 0x{actual:08x}, message has 0x{expected:08x}")


def _check_flags(flags: int) -> None:
    if flags & _UNKNOWN_REQUIRED:
        raise ProtocolError(f"Unsupported OP_MSG flag bits: 0x{flags:x}")


def _parse_sections(data: bytes, pos: int, end: int) -> Tuple[bytes, Dict[str, List[bytes]]]:
    """Parse OP_MSG sections in ``data[pos:end]``."""
    section0: Optional[bytes] = None
    seqs: Dict[str, List[bytes]] = {}
    unpack_int = _INT32.unpack_from
    while pos < end:
        kind = data[pos]
        pos += 1
        if kind == 0:
            if pos + 4 > end:
                raise ProtocolError("OP_MSG is truncated: incomplete kind-0 section")
            size = unpack_int(data, pos)[0]
            if size < 5:
                raise ProtocolError(f"OP_MSG kind-0 section has an invalid document length ({size})")
            if pos + size > end:
                raise ProtocolError("OP_MSG is truncated: kind-0 document extends past the end of the message")
            if section0 is not None:
                raise ProtocolError("OP_MSG has more than one kind-0 section")
            section0 = data[pos : pos + size]
            pos += size
        elif kind == 1:
            if pos + 4 > end:
                raise ProtocolError("OP_MSG is truncated: incomplete kind-1 section")
            size = unpack_int(data, pos)[0]
            seq_end = pos + size
            if size < 5:
                raise ProtocolError(f"OP_MSG kind-1 section has an invalid size ({size})")
            if seq_end > end:
                raise ProtocolError("OP_MSG is truncated: kind-1 section extends past the end of the message")
            nul = data.find(b"\x00", pos + 4, seq_end)
            if nul < 0:
                raise ProtocolError("OP_MSG kind-1 section identifier is not NUL-terminated")
            try:
                ident = data[pos + 4 : nul].decode()
            except UnicodeDecodeError:
                raise ProtocolError("OP_MSG kind-1 section identifier is not valid UTF-8") from None
            if ident in seqs:
                raise ProtocolError(f"OP_MSG has a duplicate kind-1 section identifier {ident!r}")
            docs: List[bytes] = []
            p = nul + 1
            while p < seq_end:
                if p + 4 > seq_end:
                    raise ProtocolError(f"OP_MSG kind-1 section {ident!r} is truncated")
                dsize = unpack_int(data, p)[0]
                if dsize < 5 or p + dsize > seq_end:
                    raise ProtocolError(
                        f"OP_MSG kind-1 section {ident!r} has a document with an invalid length ({dsize})"
                    )
                docs.append(data[p : p + dsize])
                p += dsize
            seqs[ident] = docs
            pos = seq_end
        else:
            raise ProtocolError(f"OP_MSG has an unknown section kind {kind}")
    if section0 is None:
        raise ProtocolError("OP_MSG has no kind-0 section")
    return section0, seqs


def decode_op_msg_body(data: BytesLike, header: Optional[HeaderLike] = None) -> Tuple[int, bytes]:
    """Decode the part of an OP_MSG reply after the header.

    :param data: the body (flagBits onwards).
    :param header: the message header (the 16 raw bytes or :func:`parse_header`'s
        tuple). When given and the checksumPresent flag is set, the CRC-32C is
        verified; without it the checksum is stripped unchecked.
    :returns: ``(flag_bits, section_0_bson)``.
    :raises ProtocolError: on unknown required flags, a checksum mismatch,
        unknown or document-sequence sections, or truncated data.
    """
    n = len(data)
    if n < 10:
        raise ProtocolError(f"OP_MSG is truncated ({n} bytes after the header)")
    flags = _UINT32.unpack_from(data, 0)[0]
    if flags & _UNKNOWN_REQUIRED:
        raise ProtocolError(f"Unsupported OP_MSG flag bits: 0x{flags:x}")
    end = n
    if flags & CHECKSUM_PRESENT:
        end -= 4
        if end < 10:
            raise ProtocolError("OP_MSG is truncated: no room for the checksum")
        if header is not None:
            _verify_checksum(data, header)
    if data[4] == 0 and _INT32.unpack_from(data, 5)[0] == end - 5:
        # Fast path: exactly one kind-0 section (end - 5 >= 5 holds since end >= 10).
        return flags, bytes(data[5:end])
    if not isinstance(data, bytes):
        data = bytes(data)
    section0, seqs = _parse_sections(data, 4, end)
    if seqs:
        raise ProtocolError(f"Unsupported OP_MSG reply: document sequence section(s) {sorted(seqs)!r}")
    return flags, section0


def decode_op_msg(
    frame_or_body: BytesLike, *, header: Optional[HeaderLike] = None
) -> Tuple[int, bytes, Dict[str, List[bytes]]]:
    """Decode a full OP_MSG, including kind-1 document sequences.

    Meant for code that reads *requests* (test proxies, mock and replay
    servers). Accepts a complete frame (header included; recognised by its
    messageLength and opCode), an OP_COMPRESSED frame wrapping an OP_MSG, or
    just the body after the header. A checksum is verified when the header is
    known (a full frame, or *header* given).

    :returns: ``(flag_bits, section_0_bson, {identifier: [bson, ...]})``.
    :raises ProtocolError: on any malformed frame.
    """
    data = frame_or_body if isinstance(frame_or_body, bytes) else bytes(frame_or_body)
    n = len(data)
    if n >= HEADER_SIZE:
        length, rid, rto, op_code = HEADER.unpack_from(data)
        if length == n and op_code in (OP_MSG, OP_COMPRESSED):
            if op_code == OP_COMPRESSED:
                op_code, body = decompress_body(data[HEADER_SIZE:])
                if op_code != OP_MSG:
                    raise ProtocolError(f"OP_COMPRESSED wraps opcode {op_code}, expected OP_MSG")
                data = body
            else:
                data = data[HEADER_SIZE:]
            header = (0, rid, rto, OP_MSG)
            n = len(data)
    if n < 10:
        raise ProtocolError(f"OP_MSG is truncated ({n} bytes after the header)")
    flags = _UINT32.unpack_from(data, 0)[0]
    _check_flags(flags)
    end = n
    if flags & CHECKSUM_PRESENT:
        end -= 4
        if end < 10:
            raise ProtocolError("OP_MSG is truncated: no room for the checksum")
        if header is not None:
            _verify_checksum(data, header)
    section0, seqs = _parse_sections(data, 4, end)
    return flags, section0, seqs


def decode_op_reply_body(data: BytesLike) -> Tuple[int, int, bytes]:
    """Decode a legacy OP_REPLY body (after the header).

    :returns: ``(response_flags, cursor_id, first_document_bson)``.
    """
    if len(data) < 25:
        raise ProtocolError("OP_REPLY is truncated")
    flags, cursor_id, _start, number = _REPLY_FIELDS.unpack_from(data, 0)
    if number != 1:
        raise ProtocolError(f"OP_REPLY with {number} documents; expected 1")
    doc_len = _INT32.unpack_from(data, 20)[0]
    if doc_len < 5 or 20 + doc_len != len(data):
        raise ProtocolError("OP_REPLY document length does not match the frame")
    return flags, cursor_id, bytes(data[20:])


def decode_op_query(frame_or_body: BytesLike) -> Tuple[int, str, int, int, bytes, Optional[bytes]]:
    """Decode a legacy OP_QUERY (for mock servers and proxies reading a legacy hello).

    :param frame_or_body: a complete frame or the body after the header.
    :returns: ``(flags, full_collection_name, number_to_skip, number_to_return,
        query_bson, return_fields_bson_or_None)``.
    """
    data = frame_or_body if isinstance(frame_or_body, bytes) else bytes(frame_or_body)
    if len(data) >= HEADER_SIZE:
        length, _rid, _rto, op_code = HEADER.unpack_from(data)
        if length == len(data) and op_code == OP_QUERY:
            data = data[HEADER_SIZE:]
    n = len(data)
    if n < 4:
        raise ProtocolError("OP_QUERY is truncated")
    flags = _INT32.unpack_from(data, 0)[0]
    nul = data.find(b"\x00", 4)
    if nul < 0:
        raise ProtocolError("OP_QUERY collection name is not NUL-terminated")
    coll = data[4:nul].decode("utf-8", "replace")
    pos = nul + 1
    if pos + 13 > n:
        raise ProtocolError("OP_QUERY is truncated")
    skip, nret = _QUERY_COUNTS.unpack_from(data, pos)
    pos += 8
    qlen = _INT32.unpack_from(data, pos)[0]
    if qlen < 5 or pos + qlen > n:
        raise ProtocolError(f"OP_QUERY query document has an invalid length ({qlen})")
    query = data[pos : pos + qlen]
    pos += qlen
    fields: Optional[bytes] = None
    if pos < n:
        if pos + 5 > n:
            raise ProtocolError("OP_QUERY is truncated")
        flen = _INT32.unpack_from(data, pos)[0]
        if flen < 5 or pos + flen != n:
            raise ProtocolError(f"OP_QUERY returnFieldsSelector has an invalid length ({flen})")
        fields = data[pos:]
    return flags, coll, skip, nret, query, fields


def unpack_reply(op_code: int, header: Optional[HeaderLike], body: BytesLike) -> Tuple[int, bytes]:
    """Decode a server reply frame whose header and body have been read.

    Handles OP_MSG and OP_REPLY (OP_COMPRESSED is unwrapped by
    :func:`amongo.wire.compression.decompress_body` before this is called; pass
    the *original* opcode it returns, and the compressed frame's header: only
    its requestID/responseTo are used for the checksum).

    :param header: the 16 raw header bytes or :func:`parse_header`'s tuple;
        needed to verify an OP_MSG checksum.
    :returns: ``(flag_bits, bson_of_the_reply_document)``.
    :raises ProtocolError: on an unknown opcode or a malformed body.
    """
    if op_code == OP_MSG:
        return decode_op_msg_body(body, header)
    if op_code == OP_REPLY:
        flags, _cursor_id, doc = decode_op_reply_body(body)
        return flags, doc
    raise ProtocolError(f"Got opcode {op_code!r} but expected {OP_MSG!r} or {OP_REPLY!r}")


def decode_bson(data: BytesLike, codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS) -> Any:
    """Decode one BSON document, turning :class:`bson.errors.InvalidBSON` into
    :class:`~pymongo.errors.ProtocolError` (a malformed reply means the
    connection can no longer be trusted)."""
    try:
        return bson.decode(data, codec_options)
    except InvalidBSON as exc:
        raise ProtocolError(f"Invalid BSON in server reply: {exc}") from exc
