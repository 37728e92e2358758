"""Server fixtures for the unified-format spec tests (tests/servers.py starts the servers).

``MONGODB_URI`` overrides the SecantusDB replica set; ``AMONGO_UNIFIED_NX_URI`` overrides nx-27017;
``AMONGO_UNIFIED_LB_URI`` / ``AMONGO_UNIFIED_MULTI_LB_URI`` (``loadBalanced=true`` URIs, one and
several mongoses behind the balancer) override the load balancers.
``AMONGO_UNIFIED_AUTH_URI`` (a deployment URI with credentials) overrides the SecantusDB replica set
started with ``--auth``.
"""
from __future__ import annotations

import os
from typing import Iterator

import pytest

from servers import Deployment, Server, external_deployment


def _serve(kind: str, env: str) -> Iterator[Deployment]:
    uri = os.environ.get(env)
    if uri:
        yield external_deployment(uri)
        return
    srv = Server(kind)
    try:
        srv.start()
        yield Deployment.from_server(srv)
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def unified_secantus() -> Iterator[Deployment]:
    """SecantusDB one-node replica set ``secantus`` (or ``MONGODB_URI``)."""
    yield from _serve("secantus", "MONGODB_URI")


@pytest.fixture(scope="session")
def unified_nx() -> Iterator[Deployment]:
    """nx-27017, a standalone (or ``AMONGO_UNIFIED_NX_URI``)."""
    yield from _serve("nx", "AMONGO_UNIFIED_NX_URI")


class LoadBalancer:
    """A load-balanced deployment: tests/proxy.py in load-balancer mode in front of the
    SecantusDB replica set (its hello replies become a mongos's, with a ``serviceId``)."""

    def __init__(self, uri: str, multi_uri: str) -> None:
        self.uri = uri  # one mongos behind the balancer
        self.multi_uri = multi_uri  # two mongoses (useMultipleMongoses: true)


@pytest.fixture(scope="session")
def unified_lb(unified_secantus: Deployment) -> Iterator[LoadBalancer]:
    """A load balancer (``AMONGO_UNIFIED_LB_URI``, or the LB proxy over ``unified_secantus``)."""
    uri = os.environ.get("AMONGO_UNIFIED_LB_URI")
    if uri:
        yield LoadBalancer(uri, os.environ.get("AMONGO_UNIFIED_MULTI_LB_URI") or uri)
        return
    from proxy import Proxy

    # Threaded mode: the proxies outlive the per-test event loops.
    host, port = unified_secantus.host, unified_secantus.port
    with Proxy(host, port, load_balancer=True) as single:
        with Proxy(host, port, load_balancer=True, mongoses=2) as multi:
            yield LoadBalancer(single.uri(), multi.uri())


@pytest.fixture(scope="session")
def unified_lb_auth() -> Iterator[LoadBalancer]:
    """The LB proxy over SecantusDB started with ``--auth`` (root's credentials in the URIs), or
    ``AMONGO_UNIFIED_LB_AUTH_URI``."""
    uri = os.environ.get("AMONGO_UNIFIED_LB_AUTH_URI")
    if uri:
        yield LoadBalancer(uri, uri)
        return
    import urllib.parse

    from proxy import Proxy

    srv = Server("secantus-auth")
    try:
        srv.start()
        cred = urllib.parse.quote_plus(srv.username) + ":" + urllib.parse.quote_plus(srv.password) + "@"
        source = f"&authSource={srv.auth_source or 'admin'}"
        with Proxy(srv.host, srv.port, load_balancer=True) as single:
            with Proxy(srv.host, srv.port, load_balancer=True, mongoses=2) as multi:
                yield LoadBalancer(single.uri().replace("://", "://" + cred) + source,
                                   multi.uri().replace("://", "://" + cred) + source)
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def unified_secantus_auth() -> Iterator[Deployment]:
    """SecantusDB replica set started with ``--auth`` (root credentials in the URI), or
    ``AMONGO_UNIFIED_AUTH_URI``."""
    yield from _serve("secantus-auth", "AMONGO_UNIFIED_AUTH_URI")


@pytest.fixture(scope="session")
def unified_secantus_standalone() -> Iterator[Deployment]:
    """SecantusDB started with ``--standalone`` (or ``AMONGO_UNIFIED_STANDALONE_URI``)."""
    yield from _serve("secantus-standalone", "AMONGO_UNIFIED_STANDALONE_URI")
