"""TCP keepalive as PyMongo sets it, and TLS file options that name a missing file."""
from __future__ import annotations

import asyncio
import socket

import pytest
from pymongo.errors import ConfigurationError

from amongo.connection import MAX_TCP_KEEPCNT, MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, set_keepalive
from amongo.motor_asyncio import AsyncIOMotorClient

_CAPS = [("TCP_KEEPIDLE", MAX_TCP_KEEPIDLE), ("TCP_KEEPINTVL", MAX_TCP_KEEPINTVL), ("TCP_KEEPCNT", MAX_TCP_KEEPCNT)]


def _check(sock: socket.socket) -> None:
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    for name, cap in _CAPS:
        if hasattr(socket, name):
            assert sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)) <= cap, name


def test_set_keepalive_caps_idle_interval_count() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 7200)  # Linux's default
        set_keepalive(sock)
        _check(sock)
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == MAX_TCP_KEEPIDLE


def test_set_keepalive_never_raises_a_lower_value() -> None:
    if not hasattr(socket, "TCP_KEEPIDLE"):
        pytest.skip("platform without TCP_KEEPIDLE")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        set_keepalive(sock)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30


async def test_driver_connections_have_keepalive() -> None:
    """A connection amongo opens (to a bare TCP listener; the handshake is not needed)."""
    from amongo.connection import Connection, ConnectionOptions

    accepted = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await Connection.open(("127.0.0.1", port), ConnectionOptions(), 1, 0, handshake=False)
        try:
            sock = conn._protocol.transport.get_extra_info("socket")
            _check(sock)
        finally:
            conn.close()
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("option", ["tlsCAFile", "tlsCertificateKeyFile", "tlsCRLFile"])
def test_missing_tls_file_is_named(option: str, tmp_path) -> None:
    missing = tmp_path / "no-such-file.pem"
    with pytest.raises(ConfigurationError) as info:
        AsyncIOMotorClient(f"mongodb://localhost/?tls=true&{option}={missing}", connect=False)
    assert option in str(info.value) and str(missing) in str(info.value)


def test_unusable_ca_file_is_named(tmp_path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello\n")
    with pytest.raises(ConfigurationError, match="tlsCAFile.*not-a-cert.pem"):
        AsyncIOMotorClient(f"mongodb://localhost/?tls=true&tlsCAFile={bad}", connect=False)
