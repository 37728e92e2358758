"""CRC-32C (Castagnoli), pure Python, table-driven.

The OP_MSG ``checksumPresent`` flag appends a CRC-32C of the whole message
(header included, checksum excluded). Drivers rarely send checksums and servers
only send them back when asked, so this is off the common path; it is still
written to be reasonably quick: inputs of 16 bytes or more are processed eight
bytes per step ("slicing-by-8"), the tail one byte at a time.

Parameters: reflected polynomial ``0x82F63B78``, initial value and final XOR
``0xFFFFFFFF`` (the iSCSI / RFC 3720 CRC), so ``crc32c(b"123456789") == 0xE3069283``.

When the optional C package `crc32c <https://pypi.org/project/crc32c/>`_ is installed
(``pip install 'amongo-driver[crc32c]'``; hardware-accelerated, GB/s instead of the pure
version's ~5 MB/s), :func:`crc32c` is that package's function; :func:`crc32c_pure` is always
the pure Python one.
"""
from __future__ import annotations

import importlib
import struct
from typing import Any, List, Union

__all__ = ["crc32c", "crc32c_pure", "POLYNOMIAL", "IMPLEMENTATION"]

POLYNOMIAL = 0x82F63B78  #: reflected Castagnoli polynomial


def _make_tables() -> List[List[int]]:
    t0: List[int] = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ POLYNOMIAL if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return tables


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = (tuple(t) for t in _make_tables())
_TABLE = _T0
_PAIRS = struct.Struct("<II")

BytesLike = Union[bytes, bytearray, memoryview]


def crc32c_pure(data: BytesLike, crc: int = 0) -> int:
    """Return the CRC-32C of *data* (pure Python).

    :param data: any bytes-like object.
    :param crc: a previous result, to continue a checksum across several
        buffers: ``crc32c(b, crc32c(a)) == crc32c(a + b)``.
    :returns: the checksum as an unsigned 32-bit int.
    """
    c = crc ^ 0xFFFFFFFF
    if not isinstance(data, (bytes, bytearray)):
        data = memoryview(data).cast("B")  # byte-wise view of any C-contiguous buffer
    n = len(data)
    i = 0
    if n >= 16:
        mv = memoryview(data)
        n8 = n & ~7
        t0, t1, t2, t3, t4, t5, t6, t7 = _T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7
        for lo, hi in _PAIRS.iter_unpack(mv[:n8]):
            c ^= lo
            c = (
                t7[c & 0xFF]
                ^ t6[(c >> 8) & 0xFF]
                ^ t5[(c >> 16) & 0xFF]
                ^ t4[c >> 24]
                ^ t3[hi & 0xFF]
                ^ t2[(hi >> 8) & 0xFF]
                ^ t1[(hi >> 16) & 0xFF]
                ^ t0[hi >> 24]
            )
        i = n8
        data = mv
    table = _TABLE
    for b in data[i:] if i else data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _c_implementation() -> Any:
    """The optional C implementation (the ``crc32c`` extra), or None; typed as Any whether
    or not the package ships type hints."""
    try:
        return importlib.import_module("crc32c").crc32c
    except ImportError:  # pragma: no cover - depends on the environment
        return None


_c_crc32c: Any = _c_implementation()


if _c_crc32c is not None:
    #: ``"c"`` when the ``crc32c`` package is used, else ``"python"``.
    IMPLEMENTATION = "c"

    #: The CRC-32C of a bytes-like object, continuing from an optional previous result (the
    #: ``crc32c`` package's C function; the contract of :func:`crc32c_pure`).
    crc32c = _c_crc32c

else:  # pragma: no cover - depends on the environment
    IMPLEMENTATION = "python"
    crc32c = crc32c_pure
