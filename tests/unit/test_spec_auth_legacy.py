"""Auth spec legacy tests (tests/specs/auth/legacy): credentials from a connection string."""
from __future__ import annotations

import warnings
from typing import Any, Dict

import pytest
from pymongo.errors import ConfigurationError

from amongo.credentials import credential_from_options
from amongo.uri import parse_uri
from tests._specs import cases

CASES = list(cases("auth", "legacy"))

# DRIVERS-3131 removes MONGODB-AWS credentials from the URI. The same file still holds
# "should use username and password if specified (MONGODB-AWS)" and "...and session token...",
# which expect the opposite for the same input. amongo keeps PyMongo 4.x behaviour (user:password
# accepted for MONGODB-AWS) to stay a drop-in for Motor, with the DeprecationWarning the newer
# spec text calls for; this case checks that warning instead of an error (the Java driver skips
# it for the same reason, JAVA-6030).
DEPRECATED_NOT_INVALID = {
    "should throw an exception if username and password provided (MONGODB-AWS)",
}


def credential_for(uri: str) -> Any:
    parsed = parse_uri(uri, warn=False)
    return credential_from_options(
        parsed.username, parsed.password, parsed.database, parsed.options, uri_userinfo=True
    )


@pytest.mark.parametrize("test", [c[2] for c in CASES], ids=[c[0] for c in CASES])
def test_auth_legacy(test: Dict[str, Any]) -> None:
    if test["description"] in DEPRECATED_NOT_INVALID:
        with pytest.warns(DeprecationWarning, match="MONGODB-AWS credentials in the connection string"):
            cred = credential_for(test["uri"])
        assert cred.mechanism == "MONGODB-AWS" and cred.username and cred.password
        return
    if not test["valid"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ConfigurationError):
                credential_for(test["uri"])
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        cred = credential_for(test["uri"])
    expected = test.get("credential")
    if expected is None:
        assert cred is None
        return
    assert cred is not None
    if cred.mechanism == "MONGODB-AWS" and cred.username is not None:
        with pytest.warns(DeprecationWarning):
            credential_for(test["uri"])
    assert cred.username == expected["username"]
    assert cred.password == expected["password"]
    assert cred.source == expected["source"]
    mech = None if cred.mechanism == "DEFAULT" else cred.mechanism
    assert mech == expected["mechanism"]
    assert cred.mechanism_properties == (expected["mechanism_properties"] or {})


def test_suite_present() -> None:
    assert CASES, "auth/legacy spec data not found"
