"""Connection String spec tests (tests/specs/connection-string)."""
from __future__ import annotations

import warnings
from typing import Any, Dict, List

import pytest
from pymongo.errors import ConfigurationError

from amongo.uri import is_unix_socket, parse_uri
from tests._specs import cases

CASES = list(cases("connection-string"))


def _host_type(host: str) -> str:
    if is_unix_socket(host):
        return "unix"
    if ":" in host:
        return "ip_literal"
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return "ipv4"
    return "hostname"


def check_options(parsed: Any, expected: Dict[str, Any]) -> None:
    """Each expected option (any case; ``ssl`` means ``tls``) equals the parsed value."""
    for name, value in expected.items():
        key = "tls" if name.lower() == "ssl" else name
        assert key in parsed.options, f"missing option {name}"
        assert parsed.options[key] == value, (name, parsed.options[key], value)


def run_uri_test(test: Dict[str, Any]) -> None:
    uri = test["uri"]
    if not test["valid"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ConfigurationError):
                parse_uri(uri, warn=False)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = parse_uri(uri, warn=True)
    user_warnings = [w for w in caught if issubclass(w.category, UserWarning)]
    if test.get("warning"):
        assert user_warnings, "expected a warning"
    else:
        assert not user_warnings, [str(w.message) for w in user_warnings]

    if test.get("hosts") is not None:
        got: List[Dict[str, Any]] = []
        for host, port in parsed.nodelist:
            got.append({"type": _host_type(host), "host": host, "port": port})
        want = []
        for h in test["hosts"]:
            want.append({"type": h["type"], "host": h["host"].lower() if h["type"] == "hostname" else h["host"],
                         "port": h["port"] if h["port"] is not None else 27017})
        assert got == want

    auth = test.get("auth")
    if auth is not None:
        assert parsed.username == auth.get("username")
        assert parsed.password == auth.get("password")
        assert parsed.auth_database == auth.get("db")

    if test.get("options") is not None:
        check_options(parsed, test["options"])


@pytest.mark.parametrize("test", [c[2] for c in CASES], ids=[c[0] for c in CASES])
def test_connection_string(test: Dict[str, Any]) -> None:
    run_uri_test(test)


def test_suite_present() -> None:
    assert CASES, "connection-string spec data not found"
