"""Read/Write Concern spec tests (tests/specs/read-write-concern/{connection-string,document})."""
from __future__ import annotations

import warnings
from typing import Any, Dict

import pytest
from pymongo.errors import ConfigurationError

from amongo.uri import parse_uri, read_concern_from, validate_options, write_concern_from
from tests._specs import cases

CS_CASES = list(cases("read-write-concern", "connection-string"))
DOC_CASES = [c for c in cases("read-write-concern", "document")]

# Spec option names in the test files -> amongo option names.
_WC_NAMES = {"w": "w", "wtimeoutMS": "wTimeoutMS", "journal": "journal"}


def _wc_spec_view(wc: Any) -> Dict[str, Any]:
    """The write concern as the spec tests spell it (w, wtimeoutMS, journal)."""
    doc = wc.document
    out: Dict[str, Any] = {}
    if "w" in doc:
        out["w"] = doc["w"]
    if "wtimeout" in doc:
        out["wtimeoutMS"] = doc["wtimeout"]
    if "j" in doc:
        out["journal"] = doc["j"]
    return out


@pytest.mark.parametrize("test", [c[2] for c in CS_CASES], ids=[c[0] for c in CS_CASES])
def test_connection_string(test: Dict[str, Any]) -> None:
    uri = test["uri"]
    if not test["valid"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ConfigurationError):
                parsed = parse_uri(uri, warn=False)
                write_concern_from(parsed.options)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = parse_uri(uri, warn=False)
    assert bool(caught) == bool(test.get("warning")), [str(w.message) for w in caught]
    if "writeConcern" in test:
        assert _wc_spec_view(write_concern_from(parsed.options)) == test["writeConcern"]
    if "readConcern" in test:
        assert read_concern_from(parsed.options).document == test["readConcern"]


def _options_from_spec(wc: Dict[str, Any]) -> Dict[str, Any]:
    return {_WC_NAMES[k]: v for k, v in wc.items()}


@pytest.mark.parametrize("test", [c[2] for c in DOC_CASES], ids=[c[0] for c in DOC_CASES])
def test_document(test: Dict[str, Any]) -> None:
    if "writeConcern" in test:
        if not test["valid"]:
            with pytest.raises(ConfigurationError):
                write_concern_from(validate_options(_options_from_spec(test["writeConcern"])))
            return
        wc = write_concern_from(validate_options(_options_from_spec(test["writeConcern"])))
        assert wc.document == test["writeConcernDocument"]
        assert wc.acknowledged == test["isAcknowledged"]
        assert wc.is_server_default == test["isServerDefault"]
    if "readConcern" in test:
        opts = {"readConcernLevel": test["readConcern"]["level"]} if "level" in test["readConcern"] else {}
        rc = read_concern_from(validate_options(opts))
        assert test["valid"]
        assert rc.document == test["readConcernDocument"]
        assert (rc.level is None) == test["isServerDefault"]


def test_suite_present() -> None:
    assert CS_CASES and DOC_CASES, "read-write-concern spec data not found"
