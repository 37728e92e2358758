"""Fuzz targets ``uri``, ``keyword_options`` and ``txt_records``: connection strings, client
keyword arguments and SRV TXT records (stub resolver) built from every option amongo knows,
random casing, and values of every odd kind (NaN, infinities, 1e309, huge and negative numbers,
wrong types, empty strings, bad escapes...).

Invariants per case:

* a bad URI or option raises ``ConfigurationError`` (or a TypeError/ValueError documented for a
  bad argument), never OverflowError, KeyError, AttributeError...; the error text never
  contains the password;
* a client that was accepted works: against a fake server its first operation returns or
  raises a ``pymongo.errors`` exception within the bound, and no repr of the client or its
  options shows the password;
* TXT records are either applied or refused with ConfigurationError (the client agrees with
  the validation of ``amongo.srv``: nothing invalid is silently ignored).
"""
from __future__ import annotations

import urllib.parse
import warnings
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, strategies as st
from pymongo.errors import ConfigurationError, PyMongoError

import amongo.connection as connection_mod
from amongo.motor_asyncio import AsyncIOMotorClient
from amongo.srv import apply_srv, parse_txt_records
from amongo.uri import _OPTION_TABLE, parse_uri
from fuzzlib import CASES, FakeServer, assert_user_error, fuzz_settings

SECRET = "Pw-s3cr3t-XYZZY"
#: what constructing a client (or parsing a URI) may raise for a bad argument
ARG_ERRORS = (PyMongoError, TypeError, ValueError)
URI_OPTIONS = [name for name, _v, uri_ok in _OPTION_TABLE if uri_ok]
KW_OPTIONS = [name for name, _v, _u in _OPTION_TABLE]
#: options whose valid values could make a first operation wait long against the fake server
#: options whose values are secrets (never shown in a repr, error or warning)
SECRET_OPTIONS = {"tlsCertificateKeyFilePassword", "proxyPassword", "authMechanismProperties"}
WAITING = {"serverselectiontimeoutms", "timeoutms", "connecttimeoutms", "sockettimeoutms",
           "waitqueuetimeoutms", "wtimeoutms"}


def _case(name: str, mode: int) -> str:
    return [name, name.lower(), name.upper(), name.swapcase()][mode]


text_values = st.one_of(
    st.sampled_from(["true", "false", "True", "maybe", "", "0", "-1", "1", "1e309", "-1e309", "nan", "inf",
                     "-inf", "1.5", "99999999999999999999999", "2147483648", "primary", "secondary",
                     "majority", "zlib,snappy,zstd,bogus", "SCRAM-SHA-256", "MONGODB-X509", "PLAIN",
                     "GSSAPI", "MONGODB-OIDC", "a:b,c:d", "%", "%zz", "%00", "SERVICE_NAME:x",
                     "ENVIRONMENT:azure", "standard", "javaLegacy", "unspecified", "stream", "poll",
                     "local", "dc:ny,rack:1", "x" * 300, "\u00e9", "a&b", "=", "/tmp/nonexistent.pem"]),
    st.text(max_size=8),
)
py_values = st.one_of(
    text_values, st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
    st.floats(), st.just(float("nan")), st.just(float("inf")), st.just(1e309), st.just(-1e309),
    st.lists(st.sampled_from(["zlib", "snappy", 1, None]), max_size=3),
    st.dictionaries(st.sampled_from(["SERVICE_NAME", "x", "ENVIRONMENT", ""]), st.sampled_from(["a", 1, None]),
                    max_size=2),
    st.just(object()), st.just(b"bytes"),
)
small_ms = st.one_of(st.sampled_from([None, 0, -1, 1e309, float("nan"), float("inf"), "x", "", True, 2 ** 70,
                                      "1e309", "nan"]),
                     st.integers(1, 1500), st.floats(0.5, 1500))
hosts = st.sampled_from(["127.0.0.1:1", "127.0.0.1", "[::1]:2", "[::1", "::1", "127.0.0.1:0", "127.0.0.1:65536",
                         "127.0.0.1:-1", "127.0.0.1:x", "h:1:2", "", "a%2Fb.sock", "%2Ftmp%2Fm.sock",
                         "127.0.0.1:99999999999999999999", "x" * 300 + ":1"])


@st.composite
def uris(draw: Any) -> Tuple[str, bool]:
    scheme = draw(st.sampled_from(["mongodb://"] * 6 + ["mongodb+srv://", "MONGODB://", "mongo://", ""]))
    user_info = ""
    has_pw = draw(st.booleans())
    if draw(st.booleans()):
        user = draw(st.sampled_from(["u", "", "a:b", "us%40er", "@", "%zz", "us er"]))
        user_info = user
        if has_pw:
            pw = SECRET + draw(st.sampled_from(["", "%40", ":", "@", "%zz", "/", "%3A"]))
            user_info += ":" + pw
        user_info += "@"
    else:
        has_pw = False
    if scheme == "mongodb+srv://":
        host_part = draw(st.sampled_from(["test.example.com", "example.com", "a.b.c.d", "x", "test.example.com:27017",
                                          "h1.test.example.com,h2.test.example.com"]))
    else:
        host_part = ",".join(draw(st.lists(hosts, min_size=1, max_size=3)))
    db = draw(st.sampled_from(["", "/", "/db", "/d b", "/db.x", "/$x", "/%2F", "/" + "d" * 100]))
    opts: List[str] = []
    for name, mode, value in draw(st.lists(st.tuples(st.sampled_from(URI_OPTIONS + ["bogusOption", ""]),
                                                     st.integers(0, 3), text_values), max_size=4)):
        if name in SECRET_OPTIONS and draw(st.booleans()):
            value = draw(st.sampled_from([SECRET, f"AWS_SESSION_TOKEN:{SECRET}", f"{SECRET}%zz", SECRET + "&x"]))
            has_pw = True
        opts.append(f"{_case(name, mode)}={value}")
    sep = draw(st.sampled_from(["&", "&", ";"]))
    query = ("?" + sep.join(opts)) if opts else draw(st.sampled_from(["", "?", "?&", "?=", "?a"]))
    if query and not db:
        db = "/"
    return scheme + user_info + host_part + db + query, has_pw


def _no_secret(text: str, where: str) -> None:
    assert SECRET not in text and urllib.parse.quote(SECRET) not in text, f"the password appears in {where}: {text[:300]}"


@fuzz_settings(400)
@given(case=uris())
def test_uri(runner: Any, case: Tuple[str, bool]) -> None:
    CASES["uri"] += 1
    uri, _has_pw = case
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parse_uri(uri, warn=True)
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc, ARG_ERRORS)
            assert not isinstance(exc, OverflowError)
            _no_secret(str(exc), "a URI parsing error")
    for w in caught:
        _no_secret(str(w.message), "a warning")

    async def construct() -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                client = AsyncIOMotorClient(uri, connect=False)
            for w in caught:
                _no_secret(str(w.message), "a warning")
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc, ARG_ERRORS)
            assert not isinstance(exc, OverflowError)
            _no_secret(str(exc), "a client construction error")
            return
        try:
            if uri.lower().startswith(("mongodb://", "mongodb+srv://")):
                # (without a scheme, "u:pw@a%2Fb.sock" is a Unix socket path, not user info:
                # it is shown as the host it is, as PyMongo does)
                _no_secret(repr(client), "repr(client)")
                _no_secret(repr(client.options), "repr(client.options)")
        finally:
            client.close()

    runner.run(construct())


@pytest.fixture(scope="module")
def server(runner: Any) -> Any:
    srv = runner.run(FakeServer().start())
    yield srv
    runner.run(srv.close())


@st.composite
def keyword_options(draw: Any) -> Dict[str, Any]:
    kw: Dict[str, Any] = {}
    for name, mode in draw(st.lists(st.tuples(st.sampled_from(KW_OPTIONS), st.integers(0, 3)), min_size=1, max_size=4)):
        key = name if name in ("document_class", "type_registry", "tzinfo", "event_listeners", "read_preference",
                               "username", "password", "server_selector", "auto_encryption_opts", "driver",
                               "server_api", "hedge", "tz_aware", "connect") else _case(name, mode)
        kw[key] = draw(small_ms if name.lower() in WAITING else py_values)
    if draw(st.booleans()):
        kw["password"] = SECRET
        kw.setdefault("username", "u")
    return kw


@fuzz_settings(250)
@given(kw=keyword_options())
def test_keyword_options(runner: Any, server: FakeServer, kw: Dict[str, Any]) -> None:
    CASES["keyword_options"] += 1
    kw.setdefault("serverSelectionTimeoutMS", 1000)
    kw.setdefault("connectTimeoutMS", 1000)
    kw.pop("connect", None)
    kw.pop("io_loop", None)

    async def case() -> None:
        try:
            client = AsyncIOMotorClient(server.uri(), **kw)
        except Exception as exc:  # noqa: BLE001 - checked
            assert_user_error(exc, ARG_ERRORS)
            assert not isinstance(exc, OverflowError), repr(exc)
            _no_secret(str(exc), "a client construction error")
            return
        try:
            _no_secret(repr(client), "repr(client)")
            _no_secret(repr(client.options), "repr(client.options)")
            try:
                await client.db.coll.find_one({"_id": 1})
            except Exception as exc:  # noqa: BLE001 - checked
                assert_user_error(exc)
                _no_secret(str(exc), "an operation error")
        finally:
            client.close()

    runner.run(case())


# --------------------------------------------------------------------------------------------
# TXT records (stub resolver)

TXT_NAMES = ["authSource", "replicaSet", "loadBalanced", "AUTHSOURCE", "loadbalanced", "ssl", "tls",
             "bogus", "", "authMechanism", "readPreference"]


class StubResolver:
    def __init__(self, txt: List[List[bytes]]) -> None:
        self.records = txt

    async def srv(self, name: str) -> List[Any]:
        return [("h1.test.example.com", 27017)]

    async def txt(self, name: str) -> List[Any]:
        return self.records


@st.composite
def txt_records(draw: Any) -> List[List[bytes]]:
    records = []
    for _ in range(draw(st.sampled_from([1] * 6 + [0, 2]))):
        pairs = draw(st.lists(st.tuples(st.sampled_from(TXT_NAMES), text_values), max_size=3))
        text = draw(st.sampled_from(["&", "&", ";"])).join(f"{k}={v}" for k, v in pairs)
        raw = text.encode()
        if draw(st.sampled_from([False] * 8 + [True])):
            raw = raw + b"\xff\xfe"  # not UTF-8
        chunks = [raw[i:i + 5] for i in range(0, len(raw), 5)] if draw(st.booleans()) and raw else [raw]
        records.append(chunks)
    return records


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TCP (nor DNS) for the SRV hosts: every connection attempt fails at once."""
    from pymongo.errors import AutoReconnect

    async def fake_open(cls: Any, address: Any, *args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect(f"{address}: no connections in this test")

    monkeypatch.setattr(connection_mod.Connection, "open", classmethod(fake_open))


@fuzz_settings(120)
@given(records=txt_records())
def test_txt_records(runner: Any, no_connections: None, records: List[List[bytes]]) -> None:
    CASES["txt_records"] += 1
    # what amongo.srv's validation says about these records
    try:
        parsed = parse_uri(f"mongodb+srv://u:{SECRET}@test.example.com/")
        apply_srv(parsed, [("h1.test.example.com", 27017)], parse_txt_records(records))
        valid = True
    except Exception as exc:  # noqa: BLE001 - checked
        assert_user_error(exc, (ConfigurationError,))
        valid = False

    async def case() -> None:
        client = AsyncIOMotorClient(f"mongodb+srv://u:{SECRET}@test.example.com/", serverSelectionTimeoutMS=100)
        client._topology.settings.srv_resolver = StubResolver(records)
        try:
            try:
                await client.db.coll.find_one({})
            except Exception as exc:  # noqa: BLE001 - checked
                assert_user_error(exc)
                _no_secret(str(exc), "an error")
                if not valid:
                    assert isinstance(exc, ConfigurationError), f"invalid TXT {records} gave {exc!r}"
                else:
                    assert not isinstance(exc, ConfigurationError) or "load balanc" in str(exc).lower(), \
                        f"valid TXT {records} refused: {exc!r}"
            else:
                raise AssertionError("an operation succeeded without any server")
        finally:
            client.close()

    runner.run(case())

