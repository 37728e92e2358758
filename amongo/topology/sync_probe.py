"""Blocking server discovery for the client's topology properties (no asyncio, no threads).

Motor's ``address``, ``is_primary`` and ``is_mongos`` proxy PyMongo's synchronous client,
whose server selection blocks the calling thread (the event loop's) until a suitable
server is known.  A property cannot await, so amongo does the same thing when the current
description cannot answer yet: it checks the servers itself, here, with blocking sockets:

- :func:`check_server`: ``socket.create_connection`` bounded by ``connectTimeoutMS`` (TLS
  with the client's :class:`ssl.SSLContext` via ``wrap_socket``), one handshake ``hello``
  built, and its failures mapped to :mod:`pymongo.errors`, by :mod:`amongo.handshake` (the
  functions the asyncio :class:`~amongo.connection.Connection` uses), framed with
  :func:`amongo.wire.message.encode_op_msg`, read with :func:`parse_header` /
  :func:`unpack_reply` and decoded with ``bson.decode``;
- :func:`run_discovery`: check the servers of the current description (new hosts as they
  are learned) until a predicate holds or a deadline passes, handing each outcome to
  callbacks (the :class:`~amongo.topology.topology.Topology` applies them exactly as it
  applies its monitors' results);
- :func:`resolve_srv_sync`: ``mongodb+srv`` SRV/TXT lookup with dnspython's blocking
  :mod:`dns.resolver` (the validation is :mod:`amongo.srv`'s); :func:`run_coroutine_sync`
  drives an injected resolver's coroutine when it completes without suspending (test stubs).

Nothing here touches the event loop: the loop simply does not run while this blocks, which
is Motor's documented behaviour for these properties before any operation.
"""
from __future__ import annotations

import socket
import ssl
import time
from typing import Any, Callable, Coroutine, Dict, List, Optional, Sequence, Set, Tuple

import bson
from pymongo.errors import ConfigurationError, PyMongoError

from amongo import handshake as _handshake
from amongo.topology.description import Address, ServerDescription, ServerType, TopologyDescription
from amongo.wire import message as _msg

__all__ = [
    "ProbeOptions",
    "hello_command",
    "check_server",
    "run_discovery",
    "resolve_srv_sync",
    "run_coroutine_sync",
    "RECHECK_INTERVAL",
]

#: Seconds between two rounds of checks of the same servers (minHeartbeatFrequencyMS).
RECHECK_INTERVAL = 0.5

_request_id = 0x5C000000


def _next_request_id() -> int:
    global _request_id
    _request_id = (_request_id + 1) & 0x7FFFFFFF
    return _request_id


class ProbeOptions:
    """What a blocking check needs from the client's connection options.

    :param connect_timeout: ``connectTimeoutMS`` in seconds (None: bounded by the deadline
        only); also the socket timeout of the check, as for monitoring connections.
    :param ssl_context: the client's TLS context, or None.
    :param server_api: the client's :class:`pymongo.server_api.ServerApi`, or None.
    :param metadata: the handshake's ``client`` document, or None.
    :param load_balanced: send ``loadBalanced: true`` (and ``hello``).
    """

    __slots__ = ("connect_timeout", "ssl_context", "server_api", "metadata", "load_balanced")

    def __init__(
        self,
        connect_timeout: Optional[float] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        server_api: Any = None,
        metadata: Optional[Dict[str, Any]] = None,
        load_balanced: bool = False,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.ssl_context = ssl_context
        self.server_api = server_api
        self.metadata = metadata
        self.load_balanced = load_balanced

    @classmethod
    def from_connection_options(cls, options: Any) -> "ProbeOptions":
        """From an :class:`amongo.connection.ConnectionOptions` (duck-typed)."""
        return cls(
            connect_timeout=getattr(options, "connect_timeout", None),
            ssl_context=getattr(options, "ssl_context", None),
            server_api=getattr(options, "server_api", None),
            metadata=getattr(options, "metadata", None),
            load_balanced=bool(getattr(options, "load_balanced", False)),
        )


def hello_command(options: ProbeOptions) -> Dict[str, Any]:
    """The handshake hello of a monitoring connection (never authenticated, no compression):
    :func:`amongo.handshake.hello_command`, as a monitor's connection sends it."""
    cmd = _handshake.hello_command(
        options.metadata, load_balanced=options.load_balanced, server_api=options.server_api
    )
    cmd["$db"] = "admin"
    return cmd


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: List[bytes] = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise OSError("connection closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _connect(address: Address, options: ProbeOptions, timeout: float) -> socket.socket:
    host, port = address
    if host.endswith(".sock"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(host)
        except BaseException:
            sock.close()
            raise
    else:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    ctx = options.ssl_context
    if ctx is not None:
        try:
            sock = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
    return sock


def check_server(address: Address, options: ProbeOptions, timeout: float) -> Tuple[Dict[str, Any], float]:
    """Connect to *address*, run one hello, close; returns ``(reply, round_trip_seconds)``.

    *timeout* bounds the connection and each socket operation (the caller passes
    ``min(connectTimeoutMS, time left)``).

    :raises NetworkTimeout: connect or read timed out.
    :raises AutoReconnect: any other network or TLS error.
    :raises ProtocolError: the reply does not answer the hello (responseTo), or is malformed.
    :raises OperationFailure: the hello replied ``ok: 0``.
    """
    timeout = max(timeout, 0.001)
    start = time.monotonic()
    sock: Optional[socket.socket] = None
    try:
        try:
            sock = _connect(address, options, timeout)
        except socket.timeout as exc:
            raise _handshake.connect_error(address, exc, timed_out=True) from None
        sock.settimeout(timeout)
        request_id = _next_request_id()
        frame = _msg.encode_op_msg(request_id, bson.encode(hello_command(options)))
        sock.sendall(frame)
        header = _recv_exact(sock, _msg.HEADER_SIZE)
        length, _rid, response_to, op_code = _msg.parse_header(header)
        if response_to != request_id:
            raise _handshake.response_id_mismatch(address, response_to, request_id)
        body = _recv_exact(sock, length - _msg.HEADER_SIZE)
        _flags, doc = _msg.unpack_reply(op_code, header, body)
        reply = _msg.decode_bson(doc)
        rtt = time.monotonic() - start
    except socket.timeout:
        raise _handshake.timeout_error(address) from None
    except (OSError, ValueError) as exc:  # ValueError: a name the resolver refuses
        raise _handshake.connect_error(address, exc) from exc
    finally:
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
    failure = _handshake.hello_failure(reply)
    if failure is not None:
        raise failure
    return reply, rtt


def _needs_check(sd: ServerDescription) -> bool:
    return sd.server_type in (ServerType.Unknown, ServerType.PossiblePrimary)


def run_discovery(
    *,
    description: Callable[[], TopologyDescription],
    done: Callable[[], bool],
    on_success: Callable[[ServerDescription], None],
    on_failure: Callable[[Address, ServerDescription, BaseException], None],
    options: ProbeOptions,
    deadline: float,
    recheck_interval: float = RECHECK_INTERVAL,
    check: Callable[[Address, ProbeOptions, float], Tuple[Dict[str, Any], float]] = check_server,
) -> bool:
    """Check servers (blocking) until ``done()`` or ``time.monotonic() >= deadline``.

    The first round checks the servers of ``description()`` whose type is Unknown or
    PossiblePrimary, then each host the replies add; later rounds (at most one per
    *recheck_interval*) check every server of the description, as a selection waiting on
    its monitors would.  Each outcome goes to *on_success* (a
    :class:`ServerDescription` from the reply) or *on_failure* (address, previous
    description, error); ``done()`` is asked after each.

    :returns: ``done()`` at the end.
    """
    first_round = True
    while True:
        if done():
            return True
        round_start = time.monotonic()
        if round_start >= deadline:
            return False
        checked: Set[Address] = set()
        while True:
            td = description()
            pending = [
                (a, sd) for a, sd in td.servers.items()
                if a not in checked and (not first_round or _needs_check(sd))
            ]
            if not pending:
                break
            address, previous = pending[0]
            checked.add(address)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return done()
            timeout = remaining if not options.connect_timeout else min(options.connect_timeout, remaining)
            try:
                reply, rtt = check(address, options, timeout)
                sd = ServerDescription.from_hello(address, reply, rtt, min_round_trip_time=rtt)
            except PyMongoError as exc:  # network, protocol (a mismatched responseTo, an
                on_failure(address, previous, exc)  # invalid hello), command
            else:
                on_success(sd)
            if done():
                return True
        first_round = False
        wait = min(round_start + recheck_interval, deadline) - time.monotonic()
        if wait > 0:
            time.sleep(wait)


def run_coroutine_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run *coro* to completion without an event loop, provided it never suspends (an
    injected resolver stub whose methods return at once).

    :raises ConfigurationError: the coroutine suspended (it needs the event loop).
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise ConfigurationError(
        "the SRV resolver needs the event loop; run an operation before reading this property"
    )


def _dns_query(resolver: Any, name: str, rdtype: str, lifetime: Optional[float], *, missing_ok: bool) -> Any:
    import dns.exception
    import dns.resolver

    kwargs: Dict[str, Any] = {}
    if lifetime is not None:
        kwargs["lifetime"] = max(lifetime, 0.001)
    try:
        return resolver.resolve(name, rdtype, **kwargs)
    except dns.resolver.NXDOMAIN as exc:
        if missing_ok:
            return None
        raise ConfigurationError(f"DNS {rdtype} query for {name!r} failed: {exc}") from exc
    except dns.resolver.NoAnswer:
        return None
    except dns.exception.DNSException as exc:
        raise ConfigurationError(f"DNS {rdtype} query for {name!r} failed: {exc}") from exc


def resolve_srv_sync(
    fqdn: str,
    *,
    srv_service_name: str = "mongodb",
    srv_max_hosts: int = 0,
    lifetime: Optional[float] = None,
    resolver: Any = None,
) -> Tuple[List[Address], Dict[str, str]]:
    """:func:`amongo.srv.resolve_srv` with dnspython's blocking resolver.

    :param lifetime: seconds allowed per query.
    :param resolver: a :class:`dns.resolver.Resolver` (default: a new one).
    :raises ConfigurationError: as :func:`amongo.srv.resolve_srv`.
    """
    from amongo import srv as _srv

    if resolver is None:
        import dns.resolver

        resolver = dns.resolver.Resolver()
    host = fqdn.rstrip(".").lower()
    name = f"_{srv_service_name}._tcp.{host}"
    answer = _dns_query(resolver, name, "SRV", lifetime, missing_ok=False)
    records: Sequence[Tuple[str, int]] = (
        [] if answer is None
        else [(rr.target.to_text(omit_final_dot=True), int(rr.port)) for rr in answer]
    )
    if not records:
        raise ConfigurationError(f"No SRV records found for {name!r}")
    hosts = _srv.check_srv_hosts(fqdn, records)
    txt_answer = _dns_query(resolver, host, "TXT", lifetime, missing_ok=True)
    txt = _srv.parse_txt_records([] if txt_answer is None else [list(rr.strings) for rr in txt_answer])
    return _srv.select_srv_hosts(hosts, srv_max_hosts), txt
