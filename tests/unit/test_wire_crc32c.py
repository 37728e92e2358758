"""CRC-32C against published vectors and a bit-at-a-time reference."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amongo.wire.crc32c import crc32c


def _reference(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", 0x00000000),
        (b"a", 0xC1D04330),
        (b"123456789", 0xE3069283),  # the standard check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
        (b"The quick brown fox jumps over the lazy dog", 0x22620404),
    ],
)
def test_vectors(data, expected):
    assert crc32c(data) == expected
    assert crc32c(bytearray(data)) == expected
    assert crc32c(memoryview(data)) == expected


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=100), split=st.integers(min_value=0, max_value=100))
def test_matches_reference_and_continues(data, split):
    assert crc32c(data) == _reference(data)
    split = min(split, len(data))
    assert crc32c(data[split:], crc32c(data[:split])) == crc32c(data)


def test_memoryview_of_non_byte_format():
    import array

    a = array.array("I", range(10))
    assert crc32c(memoryview(a)) == crc32c(a.tobytes())
