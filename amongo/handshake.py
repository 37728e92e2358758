"""The connection handshake as pure functions (handshake spec; no asyncio, no sockets).

Shared by the asyncio :class:`~amongo.connection.Connection` (pool and monitoring
connections) and the blocking discovery of :mod:`amongo.topology.sync_probe`, so both send
the same ``hello`` and read its reply, and map the same failures to the same
:mod:`pymongo.errors`:

- :func:`client_metadata`: the handshake's ``client`` document;
- :func:`server_api_fields`: ``apiVersion`` / ``apiStrict`` / ``apiDeprecationErrors``;
- :func:`hello_command`: the first ``hello`` (``isMaster`` + ``helloOk`` unless a Stable API
  version or load balancing asks for ``hello``); :func:`heartbeat_command`: a monitor's later
  ones (with the Stable API fields too, as PyMongo sends them);
- :func:`check_wire_version`, :func:`negotiate_compressor`: what a connection reads of the
  reply;
- :func:`connect_error`, :func:`label_overload`, :func:`timeout_error`,
  :func:`response_id_mismatch`, :func:`hello_failure`: the error mapping (an application
  connection's failures to connect are overload errors, client-backpressure spec).
"""
from __future__ import annotations

import platform
import socket
import ssl
from typing import Any, Dict, Mapping, Optional, Sequence

from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    NetworkTimeout,
    OperationFailure,
    ProtocolError,
    PyMongoError,
)

from amongo._version import __version__
from amongo.topology.description import (
    MIN_SUPPORTED_SERVER_VERSION,
    MIN_SUPPORTED_WIRE_VERSION,
    Address,
    invalid_hello,
)
from amongo.wire import compression as _compression

__all__ = [
    "client_metadata",
    "server_api_fields",
    "hello_command",
    "heartbeat_command",
    "check_wire_version",
    "negotiate_compressor",
    "connect_error",
    "label_overload",
    "timeout_error",
    "response_id_mismatch",
    "hello_failure",
]


def client_metadata(appname: Optional[str], driver_info: Any = None) -> Dict[str, Any]:
    """The ``client`` document of the handshake (handshake spec)."""
    name, version = "amongo", __version__
    impl = platform.python_implementation()
    plat = f"{impl} {platform.python_version()}"
    if driver_info is not None:
        if getattr(driver_info, "name", None):
            name = f"{name}|{driver_info.name}"
        if getattr(driver_info, "version", None):
            version = f"{version}|{driver_info.version}"
        if getattr(driver_info, "platform", None):
            plat = f"{plat}|{driver_info.platform}"
    md: Dict[str, Any] = {
        "driver": {"name": name, "version": version},
        "os": {
            "type": platform.system() or "unknown",
            "name": platform.system() or "unknown",
            "architecture": platform.machine() or "unknown",
            "version": platform.release() or "unknown",
        },
        "platform": plat,
    }
    if appname:
        md["application"] = {"name": appname}
    return md


def server_api_fields(server_api: Any) -> Dict[str, Any]:
    """The Stable API fields a command carries for *server_api* (a
    :class:`pymongo.server_api.ServerApi`); empty for None."""
    if server_api is None:
        return {}
    doc: Dict[str, Any] = {"apiVersion": server_api.version}
    if server_api.strict is not None:
        doc["apiStrict"] = server_api.strict
    if server_api.deprecation_errors is not None:
        doc["apiDeprecationErrors"] = server_api.deprecation_errors
    return doc


def hello_command(
    metadata: Optional[Mapping[str, Any]],
    *,
    compressors: Sequence[str] = (),
    load_balanced: bool = False,
    server_api: Any = None,
) -> Dict[str, Any]:
    """The handshake ``hello`` (without ``$db`` and authentication fields).

    :param metadata: the ``client`` document (:func:`client_metadata`), or None to omit it.
    :param compressors: the compressors to offer (none for monitoring connections).
    :param load_balanced: send ``loadBalanced: true`` (load-balancer spec).
    :param server_api: the client's Stable API version: ``hello`` carries its fields.
    """
    if server_api is not None or load_balanced:
        cmd: Dict[str, Any] = {"hello": 1}
    else:
        cmd = {"isMaster": 1, "helloOk": True}
    if metadata:
        cmd["client"] = metadata
    if compressors:
        cmd["compression"] = list(compressors)
    if load_balanced:
        cmd["loadBalanced"] = True
    cmd["backpressure"] = True  # client-backpressure spec: we retry overload errors with backoff
    cmd.update(server_api_fields(server_api))
    return cmd


def heartbeat_command(hello_ok: bool, server_api: Any = None) -> Dict[str, Any]:
    """A monitor's hello after the handshake: ``hello`` when the server said ``helloOk`` (or
    a Stable API version is declared, whose fields it then carries), else ``isMaster``."""
    if not hello_ok and server_api is None:
        return {"isMaster": 1}
    cmd: Dict[str, Any] = {"hello": 1}
    cmd.update(server_api_fields(server_api))
    return cmd


def check_wire_version(address: Address, max_wire_version: int) -> None:
    """Refuse a server older than MongoDB 4.4 (wire version 9).

    :raises ConfigurationError: *max_wire_version* is below the minimum.
    """
    if max_wire_version < MIN_SUPPORTED_WIRE_VERSION:
        host, port = address
        raise ConfigurationError(
            f"Server at {host}:{port} reports wire version {max_wire_version}, but this "
            f"version of amongo requires at least {MIN_SUPPORTED_WIRE_VERSION} "
            f"(MongoDB {MIN_SUPPORTED_SERVER_VERSION})."
        )


def negotiate_compressor(
    address: Address, offered: Sequence[str], reply: Mapping[str, Any], zlib_level: int = -1
) -> Optional[_compression.Compressor]:
    """The compressor both sides support (the client's order wins), or None.

    :raises ProtocolError: the reply's ``compression`` is not an array of strings.
    """
    comp = reply.get("compression")
    if comp and not (isinstance(comp, list) and all(isinstance(c, str) for c in comp)):
        raise invalid_hello(address, "'compression' must be an array of strings")
    if not comp or not offered:
        return None
    name = _compression.negotiate(offered, list(comp))
    return _compression.make_compressor(name, zlib_level) if name else None


def connect_error(
    address: Address, exc: BaseException, *, timed_out: bool = False, overload: bool = False
) -> PyMongoError:
    """The error for a failure to open a connection to *address*: TCP connect, TLS
    handshake or name resolution (*exc*), or the connect timeout (*timed_out*).

    :param overload: an application connection (not a monitor's): a timeout, a refused or
        reset TCP connection, or a TLS handshake cut short is labelled as an overload error
        (:func:`label_overload`); a DNS failure, a certificate error or a bad host name is not.
    """
    host, port = address
    err: ConnectionFailure
    if timed_out:
        err = NetworkTimeout(f"{host}:{port}: connection timed out")
    elif isinstance(exc, ssl.SSLError):
        err = AutoReconnect(f"{host}:{port}: SSL handshake failed: {exc}")
        # (only an EOF means the server may have dropped us during the TLS handshake)
        overload = overload and isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
    elif isinstance(exc, OSError):
        err = AutoReconnect(f"{host}:{port}: {exc.strerror or exc}")
        overload = overload and not isinstance(exc, socket.gaierror)  # (not a DNS failure)
    else:
        # a name the resolver refuses (IDNA: a label over 63 bytes, NUL): a ValueError
        return AutoReconnect(f"{host!r}:{port}: invalid host name: {exc}")
    return label_overload(err) if overload else err


def label_overload(exc: ConnectionFailure) -> ConnectionFailure:
    """Label *exc*, a network error or timeout while an application connection was being
    established (TCP, TLS or the initial hello), as an overload error:
    ``SystemOverloadedError`` + ``RetryableError`` (client-backpressure spec: a server over its
    connection rate limit closes or stalls new connections). SDAM then leaves the server and
    its pool alone and the executor retries with backoff, as PyMongo 4.20 does. Monitoring
    connections are not labelled."""
    exc._add_error_label("SystemOverloadedError")
    exc._add_error_label("RetryableError")
    return exc


def timeout_error(address: Address) -> NetworkTimeout:
    """The error for a round trip that timed out."""
    return NetworkTimeout(f"{address[0]}:{address[1]}: timed out")


def response_id_mismatch(address: Address, got: int, want: int) -> ProtocolError:
    """The error for a reply whose ``responseTo`` is not the request's id (PyMongo's
    message)."""
    return ProtocolError(f"{address[0]}:{address[1]}: Got response id {got!r} but expected {want!r}")


def hello_failure(reply: Mapping[str, Any]) -> Optional[OperationFailure]:
    """The error for a hello answered ``ok: 0``; None when it succeeded."""
    if reply.get("ok"):
        return None
    return OperationFailure(str(reply.get("errmsg", "hello failed")), reply.get("code"), reply)
