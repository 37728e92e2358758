"""Fixtures that start real servers (lazily, once per session) for the integration tests.

Fixtures (session-scoped; each yields a :class:`servers.Deployment` with ``.uri``,
``.direct_uri``, ``.host``, ``.port``, ``.name``, ``.features``, ``.lacks`` ...):

``secantus_rs``          SecantusDB one-node replica set ``secantus``
``secantus_standalone``  SecantusDB ``--standalone``
``secantus_auth``        SecantusDB replica set with ``--auth``; ``.uri`` carries root's credentials,
                         ``.uri_no_auth`` none; ``.username``/``.password``/``.users``
``secantus_tls``         SecantusDB replica set over TLS; ``.tls_ca_file``, ``.tls_client_pem``
``nx``                   nx-27017 (a standalone)
``server``               parametrized: each kind a feature test runs against ("secantus", "nx")

With ``MONGODB_URI`` set, every fixture yields that deployment (``name == "external"``) and
starts nothing; ``server`` then has the single param "external".

Requirements: ``@pytest.mark.requires("transactions", ...)`` skips the test, naming the
server's limitation, when a deployment it uses lacks a feature (see ``servers.FEATURES``);
inside a test, ``from servers import require; require(deployment, "fail_command")``
does the same.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest

from servers import FEATURES, Deployment, Server, external_deployment, require

MONGODB_URI = os.environ.get("MONGODB_URI")

#: fixture name -> server kind
FIXTURE_KINDS = {
    "secantus_rs": "secantus",
    "secantus_standalone": "secantus-standalone",
    "secantus_auth": "secantus-auth",
    "secantus_tls": "secantus-tls",
    "nx": "nx",
}
#: features a dedicated fixture implies: on MONGODB_URI, a test using it is skipped without them
FIXTURE_IMPLIES = {
    "secantus_rs": ("replica_set",),
    "secantus_standalone": ("standalone",),
    "secantus_auth": ("auth",),
    "secantus_tls": ("tls",),
    "nx": (),
}
SERVER_PARAMS = ["external"] if MONGODB_URI else ["secantus", "nx"]
_PARAM_FIXTURE = {"secantus": "secantus_rs", "nx": "nx"}

_external: "Deployment | None" = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*features): skip unless the deployment(s) the test uses support every "
        f"feature (one of {', '.join(sorted(FEATURES))})",
    )


def _get_external() -> Deployment:
    global _external
    if _external is None:
        assert MONGODB_URI
        _external = external_deployment(MONGODB_URI)
    return _external


def _serve(fixture_name: str) -> Iterator[Deployment]:
    if MONGODB_URI:
        dep = _get_external()
        reason = dep.missing(*FIXTURE_IMPLIES[fixture_name])
        if reason:
            pytest.skip(f"{fixture_name} under MONGODB_URI: {reason}")
        yield dep
        return
    srv = Server(FIXTURE_KINDS[fixture_name])
    try:
        srv.start()
        yield Deployment.from_server(srv)
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def secantus_rs() -> Iterator[Deployment]:
    yield from _serve("secantus_rs")


@pytest.fixture(scope="session")
def secantus_standalone() -> Iterator[Deployment]:
    yield from _serve("secantus_standalone")


@pytest.fixture(scope="session")
def secantus_auth() -> Iterator[Deployment]:
    yield from _serve("secantus_auth")


@pytest.fixture(scope="session")
def secantus_tls() -> Iterator[Deployment]:
    yield from _serve("secantus_tls")


@pytest.fixture(scope="session")
def nx() -> Iterator[Deployment]:
    yield from _serve("nx")


@pytest.fixture(scope="session", params=SERVER_PARAMS)
def server(request: pytest.FixtureRequest) -> Deployment:
    """Each server kind a feature test runs against (or the MONGODB_URI deployment)."""
    if request.param == "external":
        return _get_external()
    return request.getfixturevalue(_PARAM_FIXTURE[request.param])


@pytest.fixture(autouse=True)
def _requires_marker(request: pytest.FixtureRequest) -> None:
    features: list[str] = []
    for marker in request.node.iter_markers("requires"):
        features.extend(marker.args)
    if not features:
        return
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        pytest.fail(f"@requires: unknown feature(s) {unknown}; known: {sorted(FEATURES)}")
    for name in [n for n in ("server", *FIXTURE_KINDS) if n in request.fixturenames]:
        require(request.getfixturevalue(name), *features)
