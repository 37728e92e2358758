"""OP_COMPRESSED framing and the snappy / zlib / zstd compressors (pure, no asyncio).

OP_COMPRESSED layout (after the usual 16-byte header whose opCode is 2012)::

    int32 originalOpcode, int32 uncompressedSize, uint8 compressorId, bytes compressedMessage

``compressedMessage`` is the original frame's body (everything after its header).
Compressor ids: 0 noop, 1 snappy, 2 zlib, 3 zstd. snappy (``python-snappy``) and
zstd (``zstandard``) are optional imports; zlib is always there.

Per the compression spec the handshake and authentication commands
(:data:`UNCOMPRESSIBLE_COMMANDS`) are never compressed; the connection layer
checks :func:`is_compressible` before calling :func:`compress_frame`.
"""
from __future__ import annotations

import importlib
import struct
import zlib
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from pymongo.errors import ConfigurationError, ProtocolError

from amongo.wire.header import (
    DEFAULT_MAX_MESSAGE_SIZE,
    HEADER,
    HEADER_SIZE,
    OP_COMPRESSED,
    OP_MSG,
    OP_QUERY,
    OP_REPLY,
)


def _optional_module(name: str) -> Any:
    """The module *name*, or None when it is not installed (the compressors' libraries are
    optional extras; typed as Any, whether or not the library ships type hints)."""
    try:
        return importlib.import_module(name)
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_LIBS: Dict[str, Any] = {}


def _lib(name: str) -> Any:
    """The compression library *name* (``"snappy"``, ``"zstandard"``), imported on first use,
    or None when it is not installed. Not at import time: a client that compresses nothing
    (the default) does not map their C extensions (~2.5 MB of resident memory here)."""
    try:
        return _LIBS[name]
    except KeyError:
        mod = _LIBS[name] = _optional_module(name)
        return mod

__all__ = [
    "NOOP_ID",
    "SNAPPY_ID",
    "ZLIB_ID",
    "ZSTD_ID",
    "UNCOMPRESSIBLE_COMMANDS",
    "Compressor",
    "available_compressors",
    "make_compressor",
    "negotiate",
    "is_compressible",
    "compress_frame",
    "decompress_body",
]

BytesLike = Union[bytes, bytearray, memoryview]

NOOP_ID = 0
SNAPPY_ID = 1
ZLIB_ID = 2
ZSTD_ID = 3

_ID_BY_NAME = {"snappy": SNAPPY_ID, "zlib": ZLIB_ID, "zstd": ZSTD_ID}
_NAME_BY_ID = {NOOP_ID: "noop", SNAPPY_ID: "snappy", ZLIB_ID: "zlib", ZSTD_ID: "zstd"}

#: Commands that must never be sent compressed (compression spec). ``ismaster``
#: (the lower-case legacy spelling, which servers accept) is included too.
UNCOMPRESSIBLE_COMMANDS = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "saslStart",
        "saslContinue",
        "getnonce",
        "authenticate",
        "createUser",
        "updateUser",
        "copydbSaslStart",
        "copydbgetnonce",
        "copydb",
    }
)
_UNCOMPRESSIBLE_LOWER = frozenset(name.lower() for name in UNCOMPRESSIBLE_COMMANDS)

_COMPRESSED_PREFIX = struct.Struct("<iiiiiiB")  # header + originalOpcode, uncompressedSize, compressorId
_COMPRESSED_FIELDS = struct.Struct("<iiB")
_ORIGINAL_OPCODES = frozenset({OP_MSG, OP_REPLY, OP_QUERY})


class Compressor:
    """A configured compressor: a name, its wire id and a ``compress`` callable.

    Made by :func:`make_compressor`; one per client is enough (they hold no
    per-message state).
    """

    __slots__ = ("name", "compressor_id", "compress", "level")

    def __init__(
        self,
        name: str,
        compressor_id: int,
        compress: Callable[[BytesLike], bytes],
        level: Optional[int] = None,
    ) -> None:
        self.name = name
        self.compressor_id = compressor_id
        #: ``compress(data) -> bytes``
        self.compress = compress
        self.level = level

    def __repr__(self) -> str:
        lvl = f", level={self.level}" if self.level is not None else ""
        return f"Compressor({self.name!r}{lvl})"


def available_compressors() -> List[str]:
    """Names of the compressors usable here (zlib always; snappy/zstd if installed)."""
    names = []
    if _lib("snappy") is not None:
        names.append("snappy")
    names.append("zlib")
    if _lib("zstandard") is not None:
        names.append("zstd")
    return names


def _snappy_compress(data: BytesLike) -> bytes:
    out: bytes = _lib("snappy").compress(data)
    return out


def make_compressor(name: str, zlib_level: int = -1) -> Compressor:
    """Return a :class:`Compressor` for *name* (``"snappy"``, ``"zlib"`` or ``"zstd"``).

    :param zlib_level: the ``zlibCompressionLevel`` URI option, -1 (zlib's
        default) to 9.
    :raises ConfigurationError: for an unknown name, an uninstalled library or
        an out-of-range level.
    """
    if name == "zlib":
        if not isinstance(zlib_level, int) or not -1 <= zlib_level <= 9:
            raise ConfigurationError(f"zlibCompressionLevel must be an integer between -1 and 9, not {zlib_level!r}")
        level = zlib_level

        def _zlib_compress(data: BytesLike) -> bytes:
            return zlib.compress(data, level)

        return Compressor("zlib", ZLIB_ID, _zlib_compress, level)
    if name == "snappy":
        if _lib("snappy") is None:
            raise ConfigurationError(
                "The snappy compressor requires the python-snappy package: pip install python-snappy"
            )
        return Compressor("snappy", SNAPPY_ID, _snappy_compress)
    if name == "zstd":
        if _lib("zstandard") is None:
            raise ConfigurationError("The zstd compressor requires the zstandard package: pip install zstandard")
        # One compressor object reused per message: amongo never compresses from two threads.
        return Compressor("zstd", ZSTD_ID, _lib("zstandard").ZstdCompressor().compress)
    raise ConfigurationError(f"Unknown compressor {name!r}; supported: snappy, zlib, zstd")


def negotiate(client_list: Iterable[str], server_list: Iterable[str]) -> Optional[str]:
    """Return the first of the client's compressors that the server also supports.

    Compressors whose library is not installed here are skipped.

    :param client_list: the ``compressors`` URI option, in preference order.
    :param server_list: the ``compression`` field of the server's hello reply.
    """
    server = set(server_list)
    usable = available_compressors()
    for name in client_list:
        if name in server and name in usable:
            return name
    return None


def is_compressible(command_name: str) -> bool:
    """Whether a command named *command_name* may be sent compressed."""
    return command_name not in UNCOMPRESSIBLE_COMMANDS and command_name.lower() not in _UNCOMPRESSIBLE_LOWER


def compress_frame(frame: BytesLike, compressor: Compressor) -> bytes:
    """Wrap a complete uncompressed frame in an OP_COMPRESSED frame.

    The requestID and responseTo are kept; the original opcode and body size
    go into the OP_COMPRESSED fields.
    """
    _length, request_id, response_to, op_code = HEADER.unpack_from(frame)
    payload = compressor.compress(memoryview(frame)[HEADER_SIZE:])
    prefix = _COMPRESSED_PREFIX.pack(
        25 + len(payload),
        request_id,
        response_to,
        OP_COMPRESSED,
        op_code,
        len(frame) - HEADER_SIZE,
        compressor.compressor_id,
    )
    return prefix + payload


def _snappy_length(data: BytesLike) -> int:
    """Uncompressed length from a raw snappy stream's varint preamble (-1 if bad)."""
    result = 0
    shift = 0
    for i in range(min(5, len(data))):
        b = data[i]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
        shift += 7
    return -1


_zstd_decompressor: Any = None


def _decompress(compressor_id: int, payload: memoryview, size: int) -> bytes:
    if compressor_id == ZLIB_ID:
        d = zlib.decompressobj()
        out = d.decompress(payload, size + 1)
        if not d.eof:
            if len(out) > size:
                raise ProtocolError(f"OP_COMPRESSED zlib data inflates beyond uncompressedSize ({size})")
            raise ProtocolError("OP_COMPRESSED zlib stream is truncated")
        return out
    if compressor_id == SNAPPY_ID:
        if _lib("snappy") is None:
            raise ProtocolError("Server sent a snappy-compressed message but python-snappy is not installed")
        declared = _snappy_length(payload)
        if declared != size:
            raise ProtocolError(f"OP_COMPRESSED snappy data declares {declared} bytes, uncompressedSize is {size}")
        plain: bytes = _lib("snappy").uncompress(payload)
        return plain
    if compressor_id == ZSTD_ID:
        if _lib("zstandard") is None:
            raise ProtocolError("Server sent a zstd-compressed message but zstandard is not installed")
        global _zstd_decompressor
        if _zstd_decompressor is None:
            _zstd_decompressor = _lib("zstandard").ZstdDecompressor()
        declared = _lib("zstandard").frame_content_size(payload)
        if declared not in (-1, size):
            raise ProtocolError(f"OP_COMPRESSED zstd frame declares {declared} bytes, uncompressedSize is {size}")
        zout: bytes = _zstd_decompressor.decompress(payload, max_output_size=size)
        return zout
    if compressor_id == NOOP_ID:
        return bytes(payload)
    raise ProtocolError(f"OP_COMPRESSED with unknown compressor id {compressor_id}")


def decompress_body(body: BytesLike, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Tuple[int, bytes]:
    """Decompress the body (after the header) of an OP_COMPRESSED frame.

    :param max_message_size: the largest uncompressed message accepted.
    :returns: ``(original_opcode, uncompressed_body)``; pass them on to
        :func:`amongo.wire.message.unpack_reply`.
    :raises ProtocolError: on a truncated body, an unknown compressor id or
        original opcode, corrupt compressed data, or a size that does not match
        uncompressedSize.
    """
    if len(body) < 9:
        raise ProtocolError(f"OP_COMPRESSED is truncated ({len(body)} bytes after the header)")
    op_code, size, compressor_id = _COMPRESSED_FIELDS.unpack_from(body)
    if op_code not in _ORIGINAL_OPCODES:
        raise ProtocolError(f"OP_COMPRESSED wraps unsupported opcode {op_code}")
    if size < 0 or size + HEADER_SIZE > max_message_size:
        raise ProtocolError(
            f"OP_COMPRESSED uncompressedSize ({size}) is negative or larger than max message size ({max_message_size})"
        )
    if compressor_id not in _NAME_BY_ID:
        raise ProtocolError(f"OP_COMPRESSED with unknown compressor id {compressor_id}")
    payload = memoryview(body)[9:]
    try:
        out = _decompress(compressor_id, payload, size)
    except ProtocolError:
        raise
    except Exception as exc:  # zlib.error, snappy.UncompressError, zstd.ZstdError, ...
        raise ProtocolError(f"OP_COMPRESSED {_NAME_BY_ID[compressor_id]} data is corrupt: {exc}") from exc
    if len(out) != size:
        raise ProtocolError(f"OP_COMPRESSED uncompressedSize is {size} but the data decompressed to {len(out)} bytes")
    return op_code, out
