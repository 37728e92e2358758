"""The runner's schema validation: every ``unified-test-format/invalid`` file is rejected and
every unified file the suites use is accepted (no server needed)."""
from __future__ import annotations

import pytest

from _specs import load, spec_files, specs_dir

from .runner import SchemaVersionError, check_schema_version
from .schema import SCHEMA, errors, validate
from .test_unified import CSOT_SUITES, SUITES

INVALID = spec_files("unified-test-format", "invalid")
VALID = [p for suite in SUITES + CSOT_SUITES + ("unified-test-format/valid-fail",) for p in spec_files(*suite.split("/"))]


def _id(p):
    return p.relative_to(specs_dir()).as_posix()


@pytest.mark.parametrize("path", INVALID, ids=[_id(p) for p in INVALID])
def test_invalid_file_rejected(path):
    with pytest.raises(ValueError):
        validate(load(path))


@pytest.mark.parametrize("path", VALID, ids=[_id(p) for p in VALID])
def test_valid_file_accepted(path):
    doc = load(path)
    assert errors(doc, SCHEMA) == []
    if "valid-fail" not in path.parts:
        check_schema_version(doc["schemaVersion"])


def test_schema_version_check():
    check_schema_version("1.0")
    check_schema_version("1.28")
    for bad in ("2.0", "1.29", "0.9"):
        with pytest.raises(SchemaVersionError):
            check_schema_version(bad)
