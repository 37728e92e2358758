"""Initial DNS Seedlist Discovery spec tests (tests/specs/initial-dns-seedlist-discovery), offline.

DNS is a stub resolver. Its zone is the record table the spec's tests/README.md tells test
operators to publish under test.build.10gen.cc (the tests' expected ``seeds`` were written
against exactly these answers). Using that table (rather than echoing each test's own
``seeds`` back) is what lets the error cases -- targets outside the parent domain, two TXT
records, disallowed or malformed TXT options -- exercise the real validation. For every
valid test we also check that the SRV answer produces exactly the test's ``seeds``.

Not checkable offline, so not asserted here (it would be faked): ``hosts``/``numHosts``
(the topology after SDAM discovery against the live replica set / mongoses / load balancer)
and the ``ping`` against a live deployment. Those belong to an integration run with real DNS.
"""
from __future__ import annotations

import random
import warnings
from typing import Any, Dict, List, Sequence, Tuple

import pytest
from pymongo.errors import ConfigurationError

from amongo.credentials import credential_from_options
from amongo.srv import apply_srv, resolve_srv
from amongo.uri import parse_uri
from tests._specs import cases

_D = "test.build.10gen.cc"
_LOCAL = f"localhost.{_D}."

# SRV: query name -> [(target, port)]  (from the spec's tests/README.md)
SRV_ZONE: Dict[str, List[Tuple[str, int]]] = {
    f"_mongodb._tcp.test1.{_D}": [(_LOCAL, 27017), (_LOCAL, 27018)],
    f"_mongodb._tcp.test2.{_D}": [(_LOCAL, 27018), (_LOCAL, 27019)],
    f"_mongodb._tcp.test3.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test5.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test6.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test7.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test8.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test10.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test11.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test12.{_D}": [("localhost.build.10gen.cc.", 27017)],
    f"_mongodb._tcp.test13.{_D}": [("test.build.10gen.cc.", 27017)],
    f"_mongodb._tcp.test14.{_D}": [("localhost.not-test.build.10gen.cc.", 27017)],
    f"_mongodb._tcp.test15.{_D}": [("localhost.test.not-build.10gen.cc.", 27017)],
    f"_mongodb._tcp.test16.{_D}": [("localhost.test.build.not-10gen.cc.", 27017)],
    f"_mongodb._tcp.test17.{_D}": [("localhost.test.build.10gen.not-cc.", 27017)],
    f"_mongodb._tcp.test18.{_D}": [(f"localhost.sub.{_D}.", 27017)],
    f"_mongodb._tcp.test19.{_D}": [("localhost.evil.build.10gen.cc.", 27017), (_LOCAL, 27017)],
    f"_mongodb._tcp.test20.{_D}": [(_LOCAL, 27017)],
    f"_mongodb._tcp.test21.{_D}": [(_LOCAL, 27017)],
    # The README table lists only the 27017 record for test22, but srv-service-name.json
    # (written against the published zone) expects seeds on 27017 and 27018.
    f"_customname._tcp.test22.{_D}": [(_LOCAL, 27017), (_LOCAL, 27018)],
    f"_mongodb._tcp.test23.{_D}": [(_LOCAL, 8000)],
    f"_mongodb._tcp.test24.{_D}": [(_LOCAL, 8000)],
    "_mongodb._tcp.build.10gen.cc": [("build.10gen.cc.", 27017)],
    f"_mongodb._tcp.{_D}": [(f"{_D}.", 27017)],
}
# TXT: name -> records, each a list of character strings.
TXT_ZONE: Dict[str, List[List[bytes]]] = {
    f"test5.{_D}": [[b"replicaSet=repl0&authSource=thisDB"]],
    f"test6.{_D}": [[b"replicaSet=repl0"], [b"authSource=otherDB"]],
    f"test7.{_D}": [[b"ssl=false"]],
    f"test8.{_D}": [[b"authSource"]],
    f"test10.{_D}": [[b"socketTimeoutMS=500"]],
    f"test11.{_D}": [[b"replicaS", b"et=rep", b"l0"]],
    f"test20.{_D}": [[b"loadBalanced=true"]],
    f"test21.{_D}": [[b"loadBalanced=false"]],
    f"test24.{_D}": [[b"loadBalanced=true"]],
}


class StubResolver:
    """A :class:`amongo.srv.Resolver` answering from the zone above."""

    def __init__(self) -> None:
        self.queries: List[Tuple[str, str]] = []

    async def srv(self, name: str) -> Sequence[Tuple[str, int]]:
        self.queries.append(("SRV", name))
        return SRV_ZONE.get(name.lower(), [])

    async def txt(self, name: str) -> Sequence[Sequence[bytes]]:
        self.queries.append(("TXT", name))
        return TXT_ZONE.get(name.lower(), [])


CASES = [(tid, t) for tid, _, t in cases("initial-dns-seedlist-discovery")]


async def discover(uri: str) -> Any:
    parsed = parse_uri(uri, warn=False)
    opts = parsed.options
    hosts, txt = await resolve_srv(
        parsed.fqdn,
        srv_service_name=opts.get("srvServiceName", "mongodb"),
        srv_max_hosts=opts.get("srvMaxHosts", 0),
        resolver=StubResolver(),
        rng=random.Random(7),
    )
    return apply_srv(parsed, hosts, txt)


def _addr(text: str) -> Tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


@pytest.mark.parametrize("test", [c[1] for c in CASES], ids=[c[0] for c in CASES])
async def test_dns_seedlist(test: Dict[str, Any]) -> None:
    if test.get("error"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ConfigurationError):
                await discover(test["uri"])
        return
    result = await discover(test["uri"])
    seeds = result.nodelist
    if "seeds" in test:
        assert sorted(seeds) == sorted(_addr(s) for s in test["seeds"])
    if "numSeeds" in test:
        assert len(seeds) == test["numSeeds"]
        assert len(set(seeds)) == len(seeds)
    for name, value in (test.get("options") or {}).items():
        key = "tls" if name.lower() == "ssl" else name
        assert result.options.get(key) == value, (name, result.options.get(key), value)
    parsed_opts = test.get("parsed_options") or {}
    if "user" in parsed_opts:
        assert result.username == parsed_opts["user"]
    if "password" in parsed_opts:
        assert result.password == parsed_opts["password"]
    for key in ("db", "auth_database", "defaultDatabase"):
        if key in parsed_opts:
            assert result.auth_database == parsed_opts[key]
    cred = credential_from_options(result.username, result.password, result.database, result.options)
    if result.username is None:
        assert cred is None
    else:
        assert cred is not None and cred.username == result.username
        assert cred.source == (result.options.get("authSource") or result.database or "admin")


def test_suite_present() -> None:
    assert CASES, "initial-dns-seedlist-discovery spec data not found"
