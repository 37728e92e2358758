"""URI Options spec tests (tests/specs/uri-options)."""
from __future__ import annotations

from typing import Any, Dict

import pytest

from tests._specs import cases
from tests.unit.test_spec_connection_string import run_uri_test

SKIPS = {
    "Valid options specific to single-threaded drivers are parsed correctly":
        "serverSelectionTryOnce is for single-threaded drivers only; amongo monitors in the "
        "background like PyMongo (which does not accept it either), so it is an unknown option",
}

CASES = list(cases("uri-options"))


@pytest.mark.parametrize("test", [c[2] for c in CASES], ids=[c[0] for c in CASES])
def test_uri_options(test: Dict[str, Any]) -> None:
    reason = SKIPS.get(test["description"])
    if reason:
        pytest.skip(reason)
    run_uri_test(test)


def test_suite_present() -> None:
    assert CASES, "uri-options spec data not found"
