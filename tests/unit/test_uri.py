"""Unit tests for amongo.uri, amongo.credentials and amongo.srv beyond the spec files."""
from __future__ import annotations

import datetime
import random
import warnings
from typing import Any, List, Sequence, Tuple

import pytest
from bson.binary import UuidRepresentation
from bson.codec_options import DatetimeConversion
from bson.son import SON
from pymongo import monitoring
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.read_preferences import Nearest, Primary, Secondary, SecondaryPreferred

from amongo.credentials import Credential, credential_from_options
from amongo.srv import (
    DnsPythonResolver,
    Resolver,
    apply_srv,
    check_srv_hosts,
    parse_txt_records,
    resolve_srv,
    resolve_srv_hosts,
    select_srv_hosts,
    updated_srv_hosts,
)
from amongo.uri import (
    CaseInsensitiveDict,
    OptionTypeError,
    OptionValueError,
    ParsedUri,
    codec_options_from,
    parse_uri,
    read_concern_from,
    read_preference_from,
    validate_options,
    write_concern_from,
)

# --- invalid connection strings (the connection-string spec's invalid-uris cases) -------

INVALID = [
    "mongo://localhost",
    "mongodb://",
    "mongodb://localhost,,example.com",
    "mongodb://localhost:",
    "mongodb://localhost:0",
    "mongodb://localhost:-1",
    "mongodb://localhost:65536",
    "mongodb://localhost:port",
    "mongodb://[::1]:0",
    "mongodb://[::1",
    "mongodb://::1",
    "mongodb://[::1]x",
    "mongodb://user@name:pass@localhost",
    "mongodb://us:er:pass@localhost",
    "mongodb://user[x]:pass@localhost",
    "mongodb://@localhost",
    "mongodb://:pass@localhost",
    "mongodb://%2@localhost",
    "mongodb://localhost/?foo",
    "mongodb://localhost/?=bar",
    "mongodb://localhost/db/x",
    "mongodb://localhost/my db",
    "mongodb:///tmp/mongodb-27017.sock",
    "mongodb://localhost/#frag",
    "mongodb://localhost/?w=1&journal=true;fsync=true",
    "mongodb+srv://a.b.c:27017",
    "mongodb+srv://a.b.c,d.b.c",
    "mongodb+srv://[::1]",
    "mongodb+srv://%2Ftmp%2Fmongodb-27017.sock",
]


@pytest.mark.parametrize("uri", INVALID)
def test_invalid_uris(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)


def test_not_a_string() -> None:
    with pytest.raises(InvalidURI):
        parse_uri(b"mongodb://localhost")  # type: ignore[arg-type]


def test_basic_parse() -> None:
    p = parse_uri("mongodb://u%3Ax:p%40ss@Host1.Example.com:27018,[::1],%2Ftmp%2Fm.sock/db.coll?replicaSet=rs&w=majority")
    assert p.nodelist == [("host1.example.com", 27018), ("::1", 27017), ("/tmp/m.sock", 27017)]
    assert (p.username, p.password) == ("u:x", "p@ss")
    assert (p.database, p.collection, p.auth_database) == ("db", "coll", "db.coll")
    assert p.options == {"replicaSet": "rs", "w": "majority"}
    assert not p.is_srv and p.fqdn is None
    assert "p@ss" not in repr(p)


def test_default_port_and_semicolon_separator() -> None:
    p = parse_uri("mongodb://h/?w=2;journal=true", default_port=1234)
    assert p.nodelist == [("h", 1234)]
    assert p.options["W"] == 2 and p.options["JOURNAL"] is True


def test_parsed_uri_is_immutable() -> None:
    p = parse_uri("mongodb://h")
    with pytest.raises(AttributeError):
        p.username = "x"  # type: ignore[misc]
    assert p.replace(username="x").username == "x"
    assert p == parse_uri("mongodb://h")


def test_srv_parse() -> None:
    p = parse_uri("mongodb+srv://User:Pw@Cluster0.Example.COM/admin?srvMaxHosts=2")
    assert p.is_srv and p.fqdn == "cluster0.example.com" and p.nodelist == []
    assert p.options["srvMaxHosts"] == 2
    # fewer than three labels is allowed (spec 2024-09)
    assert parse_uri("mongodb+srv://localhost").fqdn == "localhost"


def test_srv_max_hosts_override() -> None:
    with pytest.raises(ConfigurationError):
        parse_uri("mongodb+srv://a.b.c/?replicaSet=rs", srv_max_hosts=1)


def test_validate_false_keeps_strings() -> None:
    p = parse_uri("mongodb://h/?maxPoolSize=x&foo=bar&readPreferenceTags=a:b&readPreferenceTags=", validate=False)
    assert p.options["maxpoolsize"] == "x" and p.options["foo"] == "bar"
    assert p.options["readPreferenceTags"] == ["a:b", ""]


def test_warn_drops_invalid() -> None:
    with pytest.warns(UserWarning):
        p = parse_uri("mongodb://h/?maxPoolSize=-1&appname=x", warn=True)
    assert "maxPoolSize" not in p.options and p.options["appName"] == "x"


def test_read_preference_tags_accumulate() -> None:
    p = parse_uri("mongodb://h/?readPreference=secondary&readPreferenceTags=dc:ny,rack:1&readPreferenceTags=")
    assert p.options["readPreferenceTags"] == [{"dc": "ny", "rack": "1"}, {}]


def test_compressors() -> None:
    assert parse_uri("mongodb://h/?compressors=zstd,ZLIB").options["compressors"] == ["zstd", "zlib"]
    with pytest.warns(UserWarning, match="Unsupported compressor"):
        opts = validate_options({"compressors": ["lz4", "snappy"]})
    assert opts["compressors"] == ["snappy"]


def test_auth_mechanism_properties_parsing() -> None:
    p = parse_uri("mongodb://u@h/?authMechanism=GSSAPI&authMechanismProperties=SERVICE_NAME:s,CANONICALIZE_HOST_NAME:true")
    assert p.options["authMechanismProperties"] == {"SERVICE_NAME": "s", "CANONICALIZE_HOST_NAME": True}
    with pytest.raises(ConfigurationError):
        parse_uri("mongodb://h/?authMechanismProperties=SERVICE_NAME")
    with pytest.raises(ConfigurationError):
        parse_uri("mongodb://h/?authMechanism=NOPE")


# --- keyword arguments -----------------------------------------------------------------


def test_validate_options_kwargs() -> None:
    listener = monitoring.CommandListener.__new__(type("L", (monitoring.CommandListener,), {
        "started": lambda s, e: None, "succeeded": lambda s, e: None, "failed": lambda s, e: None}))
    opts = validate_options({
        "maxpoolsize": 5,
        "serverSelectionTimeoutMS": 1500.5,
        "SSL": True,
        "readPreference": "secondary",
        "w": 1,
        "appname": "app",
        "timeoutMS": None,
        "compressors": "zlib,zstd",
        "document_class": SON,
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "connect": False,
        "directConnection": True,
        "event_listeners": [listener],
        "datetime_conversion": "DATETIME_AUTO",
        "unicode_decode_error_handler": "replace",
        "username": "u",
        "password": "p",
        "authSource": "admin",
        "authMechanismProperties": {"AWS_SESSION_TOKEN": "t"},
    })
    assert opts["maxPoolSize"] == 5 and list(opts)[0] == "maxPoolSize"
    assert opts["serverselectiontimeoutms"] == 1500.5
    assert opts["tls"] is True
    assert opts["readPreference"] == "secondary"
    assert opts["compressors"] == ["zlib", "zstd"]
    assert opts["timeoutMS"] is None
    assert opts["uuidRepresentation"] == UuidRepresentation.STANDARD
    assert opts["datetime_conversion"] == DatetimeConversion.DATETIME_AUTO
    assert opts["event_listeners"] == [listener]
    assert opts["authMechanismProperties"] == {"AWS_SESSION_TOKEN": "t"}


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"maxPoolSize": -1}, ValueError),
        ({"maxPoolSize": "x"}, ValueError),
        ({"maxPoolSize": True}, TypeError),
        ({"document_class": int}, TypeError),
        ({"nosuchoption": 1}, ConfigurationError),
        ({"readPreference": "sometimes"}, ValueError),
        ({"w": -1}, ValueError),
        ({"tls": "yes"}, ValueError),
        ({"appname": "x" * 129}, ValueError),
        ({"event_listeners": [object()]}, TypeError),
        ({"tlsInsecure": True, "tlsAllowInvalidCertificates": False}, ConfigurationError),
        ({"tls": True, "ssl": False}, ConfigurationError),
        ({"loadBalanced": True, "directConnection": True}, ConfigurationError),
        ({"w": 0, "journal": True}, ConfigurationError),
        ({"readPreference": "primary", "maxStalenessSeconds": 120}, ConfigurationError),
        ({"readPreference": "primary", "readPreferenceTags": [{"dc": "ny"}]}, ConfigurationError),
        ({"zlibCompressionLevel": 10}, ValueError),
        ({"uuidRepresentation": "nope"}, ValueError),
        ({"maxStalenessSeconds": 0}, ValueError),
    ],
)
def test_validate_options_errors(kwargs: Any, exc: type) -> None:
    with pytest.raises(exc) as info:
        validate_options(kwargs)
    assert isinstance(info.value, ConfigurationError)


def test_validate_options_warn() -> None:
    with pytest.warns(UserWarning):
        opts = validate_options({"maxPoolSize": -1, "foo": 1, "w": 2}, warn=True)
    assert dict(opts) == {"w": 2}


def test_option_errors_are_value_and_type_errors() -> None:
    assert issubclass(OptionValueError, ValueError) and issubclass(OptionValueError, ConfigurationError)
    assert issubclass(OptionTypeError, TypeError) and issubclass(OptionTypeError, ConfigurationError)


def test_case_insensitive_dict() -> None:
    d = CaseInsensitiveDict({"maxPoolSize": 1})
    assert d["MAXPOOLSIZE"] == 1 and "maxpoolsize" in d and d.cased_key("MAXpoolsize") == "maxPoolSize"
    d["MaxPoolSize"] = 2
    assert len(d) == 1 and d["maxPoolSize"] == 2
    c = d.copy()
    del c["maxpoolsize"]
    assert "maxPoolSize" in d and not c
    assert d == {"maxpoolsize": 2}


# --- value-type helpers ------------------------------------------------------------------


def test_read_preference_from() -> None:
    assert read_preference_from({}) == Primary()
    rp = read_preference_from(parse_uri(
        "mongodb://h/?readPreference=secondary&readPreferenceTags=dc:ny&readPreferenceTags=&maxStalenessSeconds=120"
    ).options)
    assert isinstance(rp, Secondary)
    assert rp.tag_sets == [{"dc": "ny"}, {}] and rp.max_staleness == 120
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        rp = read_preference_from(validate_options({"readPreference": "nearest", "hedge": {"enabled": True}}))
    assert isinstance(rp, Nearest) and rp.document["hedge"] == {"enabled": True}
    obj = SecondaryPreferred()
    assert read_preference_from(validate_options({"read_preference": obj})) is obj
    with pytest.raises(ConfigurationError):
        read_preference_from({"readPreference": "primary", "hedge": {"enabled": True}})


def test_write_and_read_concern_from() -> None:
    wc = write_concern_from(parse_uri("mongodb://h/?w=majority&wTimeoutMS=100&journal=true").options)
    assert wc.document == {"w": "majority", "wtimeout": 100, "j": True}
    assert write_concern_from({}).is_server_default
    assert write_concern_from({"w": 0}).acknowledged is False
    with pytest.raises(ConfigurationError):
        write_concern_from({"w": 0, "journal": True})
    assert read_concern_from({"readConcernLevel": "majority"}).document == {"level": "majority"}
    assert read_concern_from({}).level is None


def test_codec_options_from() -> None:
    assert codec_options_from({}).document_class is dict
    utc = datetime.timezone.utc
    co = codec_options_from(validate_options({
        "document_class": SON, "tz_aware": True, "tzinfo": utc, "uuidRepresentation": "javaLegacy",
        "unicode_decode_error_handler": "ignore", "datetime_conversion": "DATETIME_MS",
    }))
    assert co.document_class is SON and co.tz_aware and co.tzinfo is utc
    assert co.uuid_representation == UuidRepresentation.JAVA_LEGACY
    assert co.unicode_decode_error_handler == "ignore"
    assert co.datetime_conversion == DatetimeConversion.DATETIME_MS


# --- credentials -------------------------------------------------------------------------


def test_credentials_defaults() -> None:
    assert credential_from_options(None, None, "db", {}) is None
    c = credential_from_options("u", "p", None, {})
    assert c == Credential("DEFAULT", "admin", "u", "p", {}) and c.negotiate
    assert credential_from_options("u", "p", "db", {"authsource": "src"}).source == "src"
    assert credential_from_options("u", "p", "db", {"authMechanism": "PLAIN"}).source == "db"
    assert credential_from_options("u", "p", None, {"authMechanism": "PLAIN"}).source == "$external"
    x509 = credential_from_options(None, None, "db", {"authMechanism": "MONGODB-X509"})
    assert x509.source == "$external" and x509.username is None
    with pytest.raises(AttributeError):
        c.username = "v"  # type: ignore[misc]


@pytest.mark.parametrize(
    "user, pw, opts",
    [
        ("u", None, {}),  # SCRAM needs a password
        ("u", "p", {"authMechanism": "SCRAM-SHA-256", "authMechanismProperties": {"SERVICE_NAME": "x"}}),
        ("u", "p", {"authMechanism": "MONGODB-X509"}),
        ("u\x00", "p", {"authMechanism": "PLAIN"}),
        (None, None, {"authMechanism": "MONGODB-OIDC", "authMechanismProperties": {"ENVIRONMENT": "k8s", "TOKEN_RESOURCE": "x"}}),
        (None, None, {"authMechanism": "MONGODB-OIDC", "authMechanismProperties": {"OIDC_CALLBACK": object(), "ENVIRONMENT": "test"}}),
        (None, None, {"authMechanism": "MONGODB-OIDC", "authMechanismProperties": {"OIDC_CALLBACK": object(), "ALLOWED_HOSTS": []}}),
        (None, "p", {"authMechanism": "MONGODB-AWS"}),
    ],
)
def test_credential_errors(user: Any, pw: Any, opts: Any) -> None:
    with pytest.raises(ConfigurationError):
        credential_from_options(user, pw, None, opts)


def test_oidc_callback_credential() -> None:
    class Callback:
        def fetch(self, context: Any) -> Any:
            raise AssertionError("not called")

    cb = Callback()
    c = credential_from_options("u", None, None, validate_options(
        {"authMechanism": "MONGODB-OIDC", "authMechanismProperties": {"OIDC_HUMAN_CALLBACK": cb, "ALLOWED_HOSTS": ["h"]}}))
    assert c.mechanism_properties["OIDC_HUMAN_CALLBACK"] is cb and c.source == "$external"
    # an object without fetch() is refused when the client is built, not at first use
    with pytest.raises(ConfigurationError, match="fetch"):
        credential_from_options(None, None, None, validate_options(
            {"authMechanism": "MONGODB-OIDC", "authMechanismProperties": {"OIDC_CALLBACK": object()}}))


# --- SRV ---------------------------------------------------------------------------------


class Stub:
    def __init__(self, srv: Sequence[Tuple[str, int]], txt: Sequence[Sequence[Any]] = ()) -> None:
        self._srv, self._txt = list(srv), list(txt)
        self.names: List[str] = []

    async def srv(self, name: str) -> Sequence[Tuple[str, int]]:
        self.names.append(name)
        return self._srv

    async def txt(self, name: str) -> Sequence[Sequence[Any]]:
        self.names.append(name)
        return self._txt


def test_stub_is_a_resolver() -> None:
    assert isinstance(Stub([]), Resolver) and isinstance(DnsPythonResolver(), Resolver)


@pytest.mark.parametrize(
    "fqdn, target, ok",
    [
        # Prose 1/2/3/4 of the seedlist tests README.
        ("localhost", "localhost.mongodb", False),
        ("mongo.local", "test_1.evil.local", False),
        ("blogs.mongodb.com", "blogs.evil.com", False),
        ("localhost", "localhost", False),
        ("mongo.local", "mongo.local", False),
        ("localhost", "test_1.cluster_1localhost", False),
        ("mongo.local", "test_1.my_hostmongo.local", False),
        ("blogs.mongodb.com", "cluster.testmongodb.com", False),
        ("localhost", "test_1.localhost", True),
        ("mongo.local", "test_1.mongo.local", True),
        ("blogs.mongodb.com", "cluster.mongodb.com", True),
        ("blogs.mongodb.com", "CLUSTER.MONGODB.COM.", True),
        ("test.build.10gen.cc", "test.build.10gen.cc", True),
    ],
)
def test_check_srv_hosts(fqdn: str, target: str, ok: bool) -> None:
    if ok:
        assert check_srv_hosts(fqdn, [(target, 27017)]) == [(target.lower().rstrip("."), 27017)]
    else:
        with pytest.raises(ConfigurationError):
            check_srv_hosts(fqdn, [(target, 27017)])


async def test_resolve_srv_names_and_max_hosts() -> None:
    hosts = [(f"h{i}.example.com.", 27017 + i) for i in range(5)]
    stub = Stub(hosts, [[b"replicaSet=rs&", "authSource=a%40b"]])
    seeds, txt = await resolve_srv("C.Example.com", srv_service_name="custom", srv_max_hosts=2, resolver=stub)
    assert stub.names == ["_custom._tcp.c.example.com", "c.example.com"]
    assert len(seeds) == 2 and set(seeds) <= {(h.rstrip("."), p) for h, p in hosts}
    assert txt == {"replicaSet": "rs", "authSource": "a@b"}
    assert await resolve_srv_hosts("c.example.com", resolver=stub) == [(h.rstrip("."), p) for h, p in hosts]
    with pytest.raises(ConfigurationError):
        await resolve_srv("c.example.com", resolver=Stub([]))


def test_select_srv_hosts() -> None:
    hosts = [("a", 1), ("b", 2), ("c", 3)]
    assert select_srv_hosts(hosts, 0) == hosts and select_srv_hosts(hosts, 3) == hosts
    picked = select_srv_hosts(hosts, 2, rng=random.Random(1))
    assert len(picked) == 2 and set(picked) <= set(hosts)


def test_parse_txt_records() -> None:
    assert parse_txt_records([]) == {}
    assert parse_txt_records([[b"loadBalanced=true"]]) == {"loadBalanced": "true"}
    for bad in ([[b"a=1"], [b"b=2"]], [[b"ssl=true"]], [[b"authSource"]], [[b"readPreference=secondary"]]):
        with pytest.raises(ConfigurationError):
            parse_txt_records(bad)


def test_apply_srv() -> None:
    parsed = parse_uri("mongodb+srv://c.example.com/?authSource=uri")
    hosts = [("h1.example.com", 27017), ("h2.example.com", 27017)]
    result = apply_srv(parsed, hosts, {"authSource": "txt", "replicaSet": "rs"})
    assert result.nodelist == hosts and result.fqdn == "c.example.com"
    assert result.options == {"authSource": "uri", "replicaSet": "rs", "tls": True}
    assert parsed.nodelist == []  # the input is unchanged
    assert apply_srv(parse_uri("mongodb+srv://c.example.com/?tls=false"), hosts, {}).options["tls"] is False
    with pytest.raises(ConfigurationError):
        apply_srv(parsed, hosts, {"loadBalanced": "true"})  # several hosts
    with pytest.raises(ConfigurationError):
        apply_srv(parsed, hosts[:1], {"loadBalanced": "maybe"})
    with pytest.warns(UserWarning):
        assert "loadBalanced" not in apply_srv(parsed, hosts[:1], {"loadBalanced": "maybe"}, warn=True).options


def test_updated_srv_hosts() -> None:
    a, b, c, d = ("a", 1), ("b", 1), ("c", 1), ("d", 1)
    assert updated_srv_hosts([a, b], [b, c]) == [b, c]
    assert updated_srv_hosts([a, b], [a, b]) == [a, b]
    assert updated_srv_hosts([a, b], [a, b, c, d], 2) == [a, b]
    got = updated_srv_hosts([a, b], [b, c, d], 2, rng=random.Random(3))
    assert got[0] == b and len(got) == 2 and got[1] in (c, d)


class _FakeRR:
    def __init__(self, target: str, port: int) -> None:
        import dns.name

        self.target = dns.name.from_text(target)
        self.port = port
        self.strings = [b"replicaSet=rs"]


class _FakeDns:
    def __init__(self, exc: Any = None) -> None:
        self.exc = exc
        self.calls: List[Tuple[str, str, Any]] = []

    async def resolve(self, name: str, rdtype: str, **kwargs: Any) -> Any:
        self.calls.append((name, rdtype, kwargs))
        if self.exc is not None:
            raise self.exc
        return [_FakeRR("h1.example.com.", 27017)]


async def test_dnspython_resolver_adapter() -> None:
    import dns.exception
    import dns.resolver

    fake = _FakeDns()
    r = DnsPythonResolver(lifetime=2.0, resolver=fake)
    assert await r.srv("_mongodb._tcp.c.example.com") == [("h1.example.com", 27017)]
    assert await r.txt("c.example.com") == [[b"replicaSet=rs"]]
    assert fake.calls[0] == ("_mongodb._tcp.c.example.com", "SRV", {"lifetime": 2.0})
    with pytest.raises(ConfigurationError):
        await DnsPythonResolver(resolver=_FakeDns(dns.resolver.NXDOMAIN())).srv("x")
    assert await DnsPythonResolver(resolver=_FakeDns(dns.resolver.NXDOMAIN())).txt("x") == []
    assert await DnsPythonResolver(resolver=_FakeDns(dns.resolver.NoAnswer())).srv("x") == []
    assert await DnsPythonResolver(resolver=_FakeDns(dns.resolver.NoAnswer())).txt("x") == []
    with pytest.raises(ConfigurationError):
        await DnsPythonResolver(resolver=_FakeDns(dns.exception.Timeout())).srv("x")
