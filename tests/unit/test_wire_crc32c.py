"""CRC-32C against published vectors and a bit-at-a-time reference: the pure Python
implementation always, and the optional C package (the ``crc32c`` extra) when installed, which
must then be the one :func:`amongo.wire.crc32c.crc32c` uses."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amongo.wire import crc32c as _mod

try:
    import crc32c as _c_package
except ImportError:  # pragma: no cover - the test extra installs it
    _c_package = None

IMPLS = [pytest.param(_mod.crc32c_pure, id="pure")]
if _c_package is not None:
    IMPLS.append(pytest.param(_c_package.crc32c, id="c"))


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
@pytest.mark.parametrize("crc32c", IMPLS)
def test_vectors(crc32c, data, expected):
    assert crc32c(data) == expected
    assert crc32c(bytearray(data)) == expected
    assert crc32c(memoryview(data)) == expected


@pytest.mark.parametrize("crc32c", IMPLS)
@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=100), split=st.integers(min_value=0, max_value=100))
def test_matches_reference_and_continues(crc32c, data, split):
    assert crc32c(data) == _reference(data)
    split = min(split, len(data))
    assert crc32c(data[split:], crc32c(data[:split])) == crc32c(data)


@pytest.mark.parametrize("crc32c", IMPLS)
def test_memoryview_of_non_byte_format(crc32c):
    import array

    a = array.array("I", range(10))
    assert crc32c(memoryview(a)) == crc32c(a.tobytes())


def test_c_package_used_when_installed():
    if _c_package is None:
        assert _mod.IMPLEMENTATION == "python" and _mod.crc32c is _mod.crc32c_pure
    else:
        assert _mod.IMPLEMENTATION == "c" and _mod.crc32c is _c_package.crc32c


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=5000), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_pure_agrees_with_c_package(data, seed):
    if _c_package is None:
        pytest.skip("the optional crc32c package is not installed")
    assert _mod.crc32c_pure(data) == _c_package.crc32c(data)
    assert _mod.crc32c_pure(data, seed) == _c_package.crc32c(data, seed)
