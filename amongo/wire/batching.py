"""Splitting write batches by the server's limits (pure, no asyncio).

An insert/update/delete is sent as one OP_MSG per batch: the command document in
the kind-0 section and the documents / statements in one kind-1 sequence::

    header(16) + flagBits(4) + kind(1) + command + kind(1) + size(4) + identifier\\0
    + documents... [+ checksum(4)]

Each frame must be at most ``maxMessageSizeBytes`` and hold at most
``maxWriteBatchSize`` entries (both from the handshake). Each insert document must
be at most ``maxBsonObjectSize``; update and delete statements wrap a user
document (query, replacement) in a few more fields, and the server accepts
sequence entries (and the command document) up to its internal limit,
``maxBsonObjectSize + 16 KiB`` (``BSONObjMaxInternalSize``), so statements get
that much room. Anything larger raises :class:`~pymongo.errors.DocumentTooLarge`
before a single byte is sent.

Usage on the insert_many hot path::

    for start, stop in split_batches(len(cmd), "documents", docs, max_bson_size=..., ...):
        frame = encode_op_msg(rid, cmd, sequences=(("documents", docs[start:stop]),))
"""
from __future__ import annotations

import struct
from bisect import bisect_right
from itertools import accumulate
from typing import Any, List, Optional, Sequence, Tuple, Union

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from pymongo.errors import DocumentTooLarge

from amongo.wire.header import OP_MSG

__all__ = [
    "STATEMENT_OVERHEAD",
    "IDENTIFIERS",
    "max_document_size",
    "batch_overhead",
    "split_batches",
    "EncodedArray",
]

_INT32 = struct.Struct("<i")
_MSG_PREFIX = struct.Struct("<iiiiIBi").pack  # header, flagBits, kind 0, the document's size

#: Room the server allows beyond ``maxBsonObjectSize`` for command documents and
#: update/delete statements (``BSONObjMaxInternalSize - BSONObjMaxUserSize``).
STATEMENT_OVERHEAD = 16 * 1024

#: The kind-1 sequence identifier of each write command.
IDENTIFIERS = {"insert": "documents", "update": "updates", "delete": "deletes", "bulkWrite": "ops"}

_OPERATION = {"documents": "insert", "updates": "update", "deletes": "delete", "ops": "bulkWrite"}

# header + flagBits + kind-0 byte + kind-1 byte + sequence size
_FIXED_OVERHEAD = 16 + 4 + 1 + 1 + 4


def max_document_size(identifier: str, max_bson_size: int) -> int:
    """Largest entry allowed in the *identifier* sequence.

    ``"documents"`` (insert): *max_bson_size*; statements (``"updates"``,
    ``"deletes"``, ``"ops"``): *max_bson_size* + :data:`STATEMENT_OVERHEAD`.
    """
    if identifier == "documents":
        return max_bson_size
    return max_bson_size + STATEMENT_OVERHEAD


def batch_overhead(command_size: int, identifier: str, *, checksum: bool = False) -> int:
    """Bytes of an OP_MSG write frame that are not sequence documents."""
    return _FIXED_OVERHEAD + command_size + len(identifier.encode()) + 1 + (4 if checksum else 0)


def _too_large(identifier: str, size: int, limit: int) -> DocumentTooLarge:
    op = _OPERATION.get(identifier, identifier)
    if op == "insert":
        return DocumentTooLarge(
            f"BSON document too large ({size} bytes) - the connected server supports"
            f" BSON document sizes up to {limit} bytes."
        )
    return DocumentTooLarge(f"{op!r} command document too large ({size} bytes, limit {limit} bytes)")


def split_batches(
    command_size: int,
    identifier: str,
    docs: Sequence[Union[bytes, bytearray, memoryview]],
    *,
    max_bson_size: int,
    max_message_size: int,
    max_write_batch_size: int,
    max_doc_size: Optional[int] = None,
    checksum: bool = False,
) -> List[Tuple[int, int]]:
    """Split encoded write documents into batches that each fit one OP_MSG.

    :param command_size: length of the encoded command (kind-0) document that
        goes with every batch (including ``$db``, lsid, writeConcern, ...).
    :param identifier: the kind-1 sequence identifier (``"documents"``,
        ``"updates"``, ``"deletes"``), which also picks the per-entry limit.
    :param docs: the encoded documents / statements, in order.
    :param max_bson_size: ``maxBsonObjectSize`` from the handshake.
    :param max_message_size: ``maxMessageSizeBytes`` from the handshake.
    :param max_write_batch_size: ``maxWriteBatchSize`` from the handshake.
    :param max_doc_size: override the per-entry limit
        (default :func:`max_document_size`).
    :param checksum: frames will carry a 4-byte checksum.
    :returns: ``[(start, stop), ...]``: consecutive, non-empty slice bounds
        covering ``docs`` (empty list for no docs).
    :raises DocumentTooLarge: if one entry exceeds the per-entry limit, cannot
        fit a message even alone, or the command document itself is too large.
    """
    if command_size > max_bson_size + STATEMENT_OVERHEAD:
        raise DocumentTooLarge(
            f"{_OPERATION.get(identifier, identifier)!r} command document too large"
            f" ({command_size} bytes, limit {max_bson_size + STATEMENT_OVERHEAD} bytes)"
        )
    n = len(docs)
    if not n:
        return []
    if max_doc_size is None:
        max_doc_size = max_bson_size if identifier == "documents" else max_bson_size + STATEMENT_OVERHEAD
    room = max_message_size - batch_overhead(command_size, identifier, checksum=checksum)
    max_count = max_write_batch_size if max_write_batch_size > 0 else 1

    sizes = list(map(len, docs))
    biggest = max(sizes)
    if biggest > max_doc_size:
        raise _too_large(identifier, biggest, max_doc_size)
    if biggest > room:
        raise DocumentTooLarge(
            f"{_OPERATION.get(identifier, identifier)!r} document of {biggest} bytes does not fit in a message"
            f" of at most {max_message_size} bytes with a {command_size}-byte command"
        )
    if n <= max_count:
        total = sum(sizes)
        if total <= room:
            return [(0, n)]
    # prefix[i] == sum(sizes[:i]); non-decreasing, so each batch end is a bisection.
    prefix = list(accumulate(sizes, initial=0))
    batches: List[Tuple[int, int]] = []
    append = batches.append
    start = 0
    while start < n:
        hi = start + max_count
        if hi > n:
            hi = n
        # Largest stop in (start, hi] with prefix[stop] - prefix[start] <= room; since
        # every size <= room, stop >= start + 1.
        stop = bisect_right(prefix, prefix[start] + room, start + 1, hi + 1) - 1
        append((start, stop))
        start = stop
    return batches


class EncodedArray:
    """A write command's documents as one BSON array element, ``name: [doc, ...]``, to be
    carried in the command document itself instead of a kind-1 sequence.

    Encoding the list with one ``bson.encode`` call costs about half as much as one call per
    document: for small documents the C encoder's per-call set-up (reading the codec
    options) costs as much as the document. The server reads ``documents`` the same from
    either place (OP_MSG spec: a sequence is equivalent to an array field of the command).
    Used when the whole batch fits one command document (see
    :meth:`amongo.engine.operations.Bulk.execute`); larger inserts are split into sequences.

    :param name: the field (``"documents"``).
    :param docs: the documents, already given their ``_id``.
    """

    __slots__ = ("name", "docs", "element")

    def __init__(self, name: str, docs: Sequence[Any],
                 codec_options: "CodecOptions[Any]" = DEFAULT_CODEC_OPTIONS) -> None:
        self.name = name
        self.docs = docs
        blob = bson.encode({name: docs}, False, codec_options)
        #: the element's bytes: type 0x04, the name, the array document
        self.element = memoryview(blob)[4:-1]

    def __len__(self) -> int:
        return len(self.element)

    def append_to(self, body: bytes) -> bytes:
        """*body* (one encoded BSON document) with this element appended as its last field."""
        element = self.element
        return b"".join((_INT32.pack(len(body) + len(element)), memoryview(body)[4:-1],
                         element, b"\x00"))

    def op_msg(self, request_id: int, flags: int, body: bytes) -> bytes:
        """The OP_MSG frame (no checksum) whose one kind-0 section is *body* with this
        element appended: ``encode_op_msg(request_id, self.append_to(body), flags=flags)``
        built with one copy of the documents' bytes, not two (for 10,000 small documents,
        2.6 MB: the second copy, a fresh buffer, cost ~3 ms per insert_many here)."""
        element = self.element
        size = len(body) + len(element)
        return b"".join((_MSG_PREFIX(21 + size, request_id, 0, OP_MSG, flags, 0, size),
                         memoryview(body)[4:-1], element, b"\x00"))
