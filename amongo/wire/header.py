"""The wire protocol's fixed numbers: opcodes, OP_MSG flag bits and the 16-byte header.

The bottom of :mod:`amongo.wire`: :mod:`amongo.wire.message` (framing) and
:mod:`amongo.wire.compression` (OP_COMPRESSED) both build on it, so neither needs the other
for its constants. Pure, no asyncio.
"""
from __future__ import annotations

import struct

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
]

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

# OP_MSG flag bits
CHECKSUM_PRESENT = 1 << 0
MORE_TO_COME = 1 << 1
EXHAUST_ALLOWED = 1 << 16

HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
HEADER_SIZE = 16

# Largest frame we accept from a server before we have its hello limits.
DEFAULT_MAX_MESSAGE_SIZE = 48_000_000
