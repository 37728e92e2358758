"""Server fixtures for the unified-format spec tests (tests/servers.py starts the servers).

``MONGODB_URI`` overrides the SecantusDB replica set; ``AMONGO_UNIFIED_NX_URI`` overrides nx-27017;
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


@pytest.fixture(scope="session")
def unified_secantus_auth() -> Iterator[Deployment]:
    """SecantusDB replica set started with ``--auth`` (root credentials in the URI), or
    ``AMONGO_UNIFIED_AUTH_URI``."""
    yield from _serve("secantus-auth", "AMONGO_UNIFIED_AUTH_URI")


@pytest.fixture(scope="session")
def unified_secantus_standalone() -> Iterator[Deployment]:
    """SecantusDB started with ``--standalone`` (or ``AMONGO_UNIFIED_STANDALONE_URI``)."""
    yield from _serve("secantus-standalone", "AMONGO_UNIFIED_STANDALONE_URI")
