"""Immutable descriptions of servers and of the whole deployment (pure; no asyncio).

This module implements the data structures of the Server Discovery and Monitoring
specification.  Every value here is frozen: the I/O layer (``topology/topology.py``) replaces
the current :class:`TopologyDescription` with a new one produced by
:func:`amongo.topology.sdam.updated_topology_description`, it never mutates one.

Public names (stable):

- :data:`Address` -- ``tuple[str, int]``; :func:`parse_address`, :func:`format_address`.
- :data:`MIN_SUPPORTED_WIRE_VERSION` (9, MongoDB 4.4), :data:`MAX_SUPPORTED_WIRE_VERSION` (27).
- :class:`ServerType`, :class:`TopologyType` -- ``IntEnum`` with PyMongo's numbering
  (``SERVER_TYPE`` / ``TOPOLOGY_TYPE``), so values compare equal to PyMongo's.
- :class:`ServerDescription` -- :meth:`~ServerDescription.from_hello`,
  :meth:`~ServerDescription.unknown`, :meth:`~ServerDescription.load_balancer`.
- :class:`TopologyDescription` -- ``servers`` mapping plus PyMongo's public accessors
  (``server_descriptions()``, ``topology_type_name``, ``has_readable_server()``, ...).
- :func:`moving_average_rtt` -- the exponentially weighted RTT average (alpha 0.2).
- :func:`compare_topology_version` -- the SDAM ``topologyVersion`` comparison.
"""
from __future__ import annotations

import datetime
import math
import time
from dataclasses import field, replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar, overload

from bson.objectid import ObjectId
from pymongo.errors import ConfigurationError, ProtocolError

from amongo._compat import slotted_dataclass
from amongo.topology.selection import WRITABLE, select_servers
from amongo.topology.types import Address, ServerType, TopologyType

__all__ = [
    "Address",
    "MIN_SUPPORTED_WIRE_VERSION",
    "MAX_SUPPORTED_WIRE_VERSION",
    "MIN_SUPPORTED_SERVER_VERSION",
    "RTT_ALPHA",
    "ServerType",
    "TopologyType",
    "ServerDescription",
    "TopologyDescription",
    "parse_address",
    "format_address",
    "moving_average_rtt",
    "compare_topology_version",
    "DATA_BEARING_TYPES",
    "hello_int",
    "invalid_hello",
]

#: Oldest wire version amongo speaks (MongoDB 4.4).
MIN_SUPPORTED_WIRE_VERSION = 9
#: Newest wire version amongo knows about.
MAX_SUPPORTED_WIRE_VERSION = 27
#: The server release matching :data:`MIN_SUPPORTED_WIRE_VERSION`, for error messages.
MIN_SUPPORTED_SERVER_VERSION = "4.4"
#: Weight of a new sample in the RTT moving average (server-selection spec).
RTT_ALPHA = 0.2

DEFAULT_PORT = 27017


#: Server types an application can read data from.
DATA_BEARING_TYPES = frozenset(
    (
        ServerType.Standalone,
        ServerType.Mongos,
        ServerType.RSPrimary,
        ServerType.RSSecondary,
        ServerType.LoadBalancer,
    )
)

_WRITABLE_TYPES = frozenset(
    (ServerType.Standalone, ServerType.Mongos, ServerType.RSPrimary, ServerType.LoadBalancer)
)


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """Parse ``"host"``, ``"host:port"`` or ``"[v6]:port"`` into a lower-cased address.

    :param text: the address as a hello reply or a test file writes it.
    :param default_port: the port when *text* has none.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.index("]")
        host = text[1:end]
        rest = text[end + 1 :]
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return host.lower(), port
    if text.endswith(".sock"):
        return text, 0
    if text.count(":") == 1:
        host, _, port_s = text.partition(":")
        return host.lower(), int(port_s)
    return text.lower(), default_port


def format_address(address: Address) -> str:
    """Render an address as ``host:port`` (``[v6]:port`` for IPv6 literals)."""
    host, port = address
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def moving_average_rtt(previous: Optional[float], sample: float) -> float:
    """The new average round trip time: ``alpha*sample + (1-alpha)*previous`` (alpha 0.2).

    The first sample (``previous is None``) becomes the average unchanged.
    """
    if previous is None:
        return sample
    return RTT_ALPHA * sample + (1 - RTT_ALPHA) * previous


def compare_topology_version(
    current: Optional[Mapping[str, Any]], other: Optional[Mapping[str, Any]]
) -> int:
    """Compare two ``topologyVersion`` documents as SDAM prescribes.

    Returns -1 if *current* is older than *other* (or either is missing, or the process ids
    differ: *other* is then assumed newer), 0 if equal, 1 if *current* is newer.
    """
    if current is None or other is None:
        return -1
    if current.get("processId") != other.get("processId"):
        return -1
    c1 = current.get("counter")
    c2 = other.get("counter")
    if c1 == c2:
        return 0
    if c1 is None or c2 is None:
        return -1
    return -1 if c1 < c2 else 1


def _to_seconds(value: Any) -> Optional[float]:
    """A BSON datetime (``datetime``) or milliseconds number, as POSIX seconds."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        seconds: float = value.timestamp()
        return seconds
    if hasattr(value, "to_datetime"):  # bson DatetimeMS
        return _to_seconds(value.to_datetime())
    return float(value) / 1000.0


_T = TypeVar("_T")


# -- hello field validation ------------------------------------------------------------
# A hello reply is untrusted input: a field of an unexpected type must not raise somewhere
# deep inside SDAM (or a comparison with another server's value), it makes the whole reply
# invalid. ``from_hello`` raises ProtocolError for it; the monitor then marks the server
# Unknown with that error and goes on checking (issue 11, defect 2).

#: Largest port a hello may name.
_MAX_PORT = 65535


def invalid_hello(address: Optional[Address], message: str) -> ProtocolError:
    """The ProtocolError for an invalid hello reply from *address*."""
    where = f" from {format_address(address)}" if address and address[0] else ""
    return ProtocolError(f"Invalid hello reply{where}: {message}")


def _type_name(value: Any) -> str:
    return type(value).__name__


@overload
def hello_int(
    hello: Mapping[str, Any], name: str, default: int, address: Optional[Address] = None
) -> int: ...
@overload
def hello_int(
    hello: Mapping[str, Any], name: str, default: None, address: Optional[Address] = None
) -> Optional[int]: ...
def hello_int(
    hello: Mapping[str, Any], name: str, default: Optional[int], address: Optional[Address] = None
) -> Optional[int]:
    """The integer field *name* of a hello reply (*default* when missing or null).

    A BSON double holding an integer is accepted; a bool, string, fraction, NaN or
    infinity is not.

    :raises ProtocolError: the field has another type.
    """
    value = hello.get(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise invalid_hello(address, f"{name!r} must be an integer, not {_type_name(value)} {value!r:.40}")


def _hello_typed(
    hello: Mapping[str, Any], name: str, address: Address, kind: Type[_T], what: str
) -> Optional[_T]:
    """Field *name* when it is None or a *kind* (described as *what* in the error)."""
    value = hello.get(name)
    if value is None or isinstance(value, kind):
        return value
    raise invalid_hello(address, f"{name!r} must be {what}, not {_type_name(value)}")


def _hello_str(hello: Mapping[str, Any], name: str, address: Address) -> Optional[str]:
    return _hello_typed(hello, name, address, str, "a string")


def _hello_oid(hello: Mapping[str, Any], name: str, address: Address) -> Optional[ObjectId]:
    return _hello_typed(hello, name, address, ObjectId, "an ObjectId")


def _hello_mapping(hello: Mapping[str, Any], name: str, address: Address) -> Optional[Mapping[str, Any]]:
    return _hello_typed(hello, name, address, Mapping, "a document")  # type: ignore[type-abstract]


def _hello_strings(hello: Mapping[str, Any], name: str, address: Address) -> List[str]:
    values = hello.get(name)
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise invalid_hello(address, f"{name!r} must be an array, not {_type_name(values)}")
    for v in values:
        if not isinstance(v, str):
            raise invalid_hello(address, f"{name!r} entries must be strings, not {_type_name(v)}")
    return values  # type: ignore[return-value]


def _hello_address(text: str, name: str, address: Address) -> Address:
    try:
        parsed = parse_address(text)
    except ValueError:
        parsed = None
    if parsed is None or not parsed[0] or not 0 <= parsed[1] <= _MAX_PORT:
        raise invalid_hello(address, f"{name!r} holds an invalid address {text!r:.80}")
    return parsed


def _topology_version(hello: Mapping[str, Any], address: Address) -> Optional[Mapping[str, Any]]:
    tv = _hello_mapping(hello, "topologyVersion", address)
    if tv is None:
        return None
    if not isinstance(tv.get("processId"), ObjectId):
        raise invalid_hello(address, "'topologyVersion.processId' must be an ObjectId")
    counter = tv.get("counter")
    if not isinstance(counter, int) or isinstance(counter, bool):
        raise invalid_hello(address, "'topologyVersion.counter' must be an integer")
    return tv


def _last_write_date(hello: Mapping[str, Any], address: Address) -> Optional[float]:
    last_write = _hello_mapping(hello, "lastWrite", address)
    if not last_write:
        return None
    value = last_write.get("lastWriteDate")
    if value is None or isinstance(value, datetime.datetime) or hasattr(value, "to_datetime"):
        try:
            return _to_seconds(value)
        except (ValueError, OverflowError, OSError) as exc:  # a DatetimeMS out of range
            raise invalid_hello(address, f"'lastWrite.lastWriteDate' is out of range: {exc}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return _to_seconds(value)
    raise invalid_hello(address, f"'lastWrite.lastWriteDate' must be a date, not {_type_name(value)}")


def _addresses(values: Optional[Iterable[str]], name: str = "hosts", address: Address = ("", 0)) -> Tuple[Address, ...]:
    """Parsed addresses, duplicates removed, in order (linear: a hello may list thousands)."""
    if not values:
        return ()
    return tuple(dict.fromkeys(_hello_address(v, name, address) for v in values))


def _error_key(error: Optional[BaseException]) -> Any:
    if error is None:
        return None
    return (type(error), str(error))


@slotted_dataclass(frozen=True, eq=False)
class ServerDescription:
    """Immutable view of one server from its latest hello reply (or failed check).

    Equality (``==``) is the spec's *Server Description Equality*: only the fields marked
    (=) in the SDAM spec are compared, so ``old == new`` tells whether a
    ``ServerDescriptionChangedEvent`` must be published.  Times are seconds:
    ``round_trip_time`` (the moving average), ``min_round_trip_time``,
    ``last_update_time`` (``time.monotonic()``) and ``last_write_date`` (POSIX time).
    """

    address: Address
    server_type: ServerType = ServerType.Unknown
    hosts: Tuple[Address, ...] = ()
    passives: Tuple[Address, ...] = ()
    arbiters: Tuple[Address, ...] = ()
    primary: Optional[Address] = None
    me: Optional[Address] = None
    set_name: Optional[str] = None
    set_version: Optional[int] = None
    election_id: Optional[ObjectId] = None
    tags: Mapping[str, str] = field(default_factory=dict)
    min_wire_version: int = 0
    max_wire_version: int = 0
    last_write_date: Optional[float] = None
    last_update_time: float = -math.inf
    round_trip_time: Optional[float] = None
    min_round_trip_time: Optional[float] = None
    logical_session_timeout_minutes: Optional[int] = None
    topology_version: Optional[Mapping[str, Any]] = None
    error: Optional[BaseException] = None
    hello: Mapping[str, Any] = field(default_factory=dict)
    max_bson_size: int = 16 * 1024 * 1024
    max_message_size: int = 48 * 1000 * 1000
    max_write_batch_size: int = 100_000
    service_id: Optional[ObjectId] = None
    iscryptd: bool = False
    compression: Tuple[str, ...] = ()

    # -- constructors -------------------------------------------------------------------

    @classmethod
    def from_hello(
        cls,
        address: Address,
        hello: Mapping[str, Any],
        round_trip_time: Optional[float] = None,
        *,
        min_round_trip_time: Optional[float] = None,
        last_update_time: Optional[float] = None,
    ) -> "ServerDescription":
        """Build a description from a successful ``hello`` (or legacy hello) reply.

        :param address: the address the client connected to (not the reply's ``me``).
        :param hello: the reply document.  ``ok`` other than 1 gives an Unknown server.
        :param round_trip_time: the *averaged* RTT in seconds (see :func:`moving_average_rtt`).
        :param min_round_trip_time: minimum RTT over the recent samples, in seconds.
        :param last_update_time: ``time.monotonic()`` of the check; defaults to now.
        :raises ProtocolError: a field SDAM reads has an unexpected type or value (a
            wrong-typed ``electionId``, ``setVersion``, ``topologyVersion``, ``hosts`` entry...).
        """
        if last_update_time is None:
            last_update_time = time.monotonic()
        if not isinstance(hello, Mapping):
            raise invalid_hello(address, f"expected a document, not {_type_name(hello)}")
        ok = hello.get("ok", 0)
        if not ok or ok != 1:
            return cls(
                address=address,
                hello=dict(hello),
                last_update_time=last_update_time,
                topology_version=_topology_version(hello, address),
            )
        server_type = _server_type_from_hello(hello)
        primary = _hello_str(hello, "primary", address)
        me = _hello_str(hello, "me", address)
        tags = _hello_mapping(hello, "tags", address)
        return cls(
            address=address,
            server_type=server_type,
            hosts=_addresses(_hello_strings(hello, "hosts", address), "hosts", address),
            passives=_addresses(_hello_strings(hello, "passives", address), "passives", address),
            arbiters=_addresses(_hello_strings(hello, "arbiters", address), "arbiters", address),
            primary=_hello_address(primary, "primary", address) if primary else None,
            me=_hello_address(me, "me", address) if me else None,
            set_name=_hello_str(hello, "setName", address),
            set_version=hello_int(hello, "setVersion", None, address),
            election_id=_hello_oid(hello, "electionId", address),
            tags=dict(tags or {}),
            min_wire_version=hello_int(hello, "minWireVersion", 0, address),
            max_wire_version=hello_int(hello, "maxWireVersion", 0, address),
            last_write_date=_last_write_date(hello, address),
            last_update_time=last_update_time,
            round_trip_time=round_trip_time,
            min_round_trip_time=min_round_trip_time,
            logical_session_timeout_minutes=hello_int(hello, "logicalSessionTimeoutMinutes", None, address),
            topology_version=_topology_version(hello, address),
            hello=dict(hello),
            max_bson_size=hello_int(hello, "maxBsonObjectSize", 16 * 1024 * 1024, address),
            max_message_size=hello_int(hello, "maxMessageSizeBytes", 48 * 1000 * 1000, address),
            max_write_batch_size=hello_int(hello, "maxWriteBatchSize", 100_000, address),
            service_id=_hello_oid(hello, "serviceId", address),
            iscryptd=bool(hello.get("iscryptd", False)),
            compression=tuple(_hello_strings(hello, "compression", address)),
        )

    @classmethod
    def unknown(
        cls,
        address: Address,
        error: Optional[BaseException] = None,
        *,
        topology_version: Optional[Mapping[str, Any]] = None,
    ) -> "ServerDescription":
        """A default description of type Unknown (optionally carrying *error*)."""
        return cls(address=address, error=error, topology_version=topology_version)

    @classmethod
    def load_balancer(cls, address: Address) -> "ServerDescription":
        """The description of the load balancer in load-balanced mode (never checked)."""
        return cls(address=address, server_type=ServerType.LoadBalancer)

    # -- derived properties -------------------------------------------------------------

    @property
    def server_type_name(self) -> str:
        """The server type's name, e.g. ``"RSPrimary"`` (PyMongo's ``server_type_name``)."""
        return self.server_type.name

    @property
    def replica_set_name(self) -> Optional[str]:
        """PyMongo's name for :attr:`set_name`."""
        return self.set_name

    @property
    def all_hosts(self) -> Tuple[Address, ...]:
        """``hosts`` + ``passives`` + ``arbiters`` in reply order, without duplicates."""
        return tuple(dict.fromkeys(self.hosts + self.passives + self.arbiters))

    @property
    def is_server_type_known(self) -> bool:
        """Whether the server type is anything but Unknown (PyMongo: ``is_server_type_known``)."""
        return self.server_type != ServerType.Unknown

    @property
    def is_data_bearing(self) -> bool:
        """Whether the server holds data (primary, secondary, mongos, standalone, load balancer)."""
        return self.server_type in DATA_BEARING_TYPES

    @property
    def is_writable(self) -> bool:
        """Whether writes may go to this server (PyMongo: ``is_writable``)."""
        return self.server_type in _WRITABLE_TYPES

    @property
    def is_readable(self) -> bool:
        """Whether reads may go to this server (PyMongo: ``is_readable``)."""
        return self.server_type == ServerType.RSSecondary or self.is_writable

    @property
    def retryable_writes_supported(self) -> bool:
        """Whether this server supports retryable writes (sessions and a writable type)."""
        return self.server_type == ServerType.LoadBalancer or (
            self.logical_session_timeout_minutes is not None
            and self.server_type in (ServerType.Mongos, ServerType.RSPrimary)
        )

    @property
    def retryable_reads_supported(self) -> bool:
        """Whether the server supports retryable reads (PyMongo: ``retryable_reads_supported``)."""
        return self.max_wire_version >= 6

    @property
    def election_tuple(self) -> Tuple[Optional[int], Optional[ObjectId]]:
        """``(setVersion, electionId)``, compared to detect a stale primary (SDAM)."""
        return self.set_version, self.election_id

    def with_type(self, server_type: ServerType) -> "ServerDescription":
        """A copy with another server type (used for PossiblePrimary)."""
        return replace(self, server_type=server_type)

    # -- equality -----------------------------------------------------------------------

    def _eq_key(self) -> Tuple[Any, ...]:
        return (
            self.address,
            self.server_type,
            self.min_wire_version,
            self.max_wire_version,
            self.me,
            frozenset(self.hosts),
            frozenset(self.passives),
            frozenset(self.arbiters),
            tuple(sorted(self.tags.items())),
            self.set_name,
            self.set_version,
            self.election_id,
            self.primary,
            self.logical_session_timeout_minutes,
            None if self.topology_version is None else tuple(sorted(self.topology_version.items())),
            _error_key(self.error),
            self.iscryptd,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerDescription):
            return NotImplemented
        return self._eq_key() == other._eq_key()

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((self.address, self.server_type, self.set_name))

    def __repr__(self) -> str:
        extra = ""
        if self.error is not None:
            extra = f", error={self.error!r}"
        rtt = self.round_trip_time
        return (
            f"<ServerDescription {self.address!r} server_type: {self.server_type_name}, "
            f"rtt: {rtt}{extra}>"
        )


def _server_type_from_hello(hello: Mapping[str, Any]) -> ServerType:
    if hello.get("isreplicaset"):
        return ServerType.RSGhost
    if hello.get("setName"):
        if hello.get("hidden"):
            return ServerType.RSOther
        primary = hello.get("isWritablePrimary")
        if primary is None:
            primary = hello.get("ismaster")
        if primary:
            return ServerType.RSPrimary
        if hello.get("secondary"):
            return ServerType.RSSecondary
        if hello.get("arbiterOnly"):
            return ServerType.RSArbiter
        return ServerType.RSOther
    if hello.get("msg") == "isdbgrid":
        return ServerType.Mongos
    return ServerType.Standalone


@slotted_dataclass(frozen=True)
class TopologyDescription:
    """Immutable view of the whole deployment.

    ``servers`` maps each address to its :class:`ServerDescription` (treat it as read-only;
    :meth:`server_descriptions` returns a copy, as in PyMongo).  ``compatible``,
    ``compatibility_error`` and ``logical_session_timeout_minutes`` are derived from the
    servers when the value is built.  ``seed_count`` is the number of seeds the client was
    configured with (SDAM's *updateUnknownWithStandalone* needs it).
    """

    topology_type: TopologyType
    servers: Mapping[Address, ServerDescription]
    replica_set_name: Optional[str] = None
    max_set_version: Optional[int] = None
    max_election_id: Optional[ObjectId] = None
    seed_count: int = 1
    compatible: bool = field(init=False, default=True)
    compatibility_error: Optional[str] = field(init=False, default=None)
    logical_session_timeout_minutes: Optional[int] = field(init=False, default=None)

    def __post_init__(self) -> None:
        compatible, err = _compatibility(self.servers.values())
        object.__setattr__(self, "compatible", compatible)
        object.__setattr__(self, "compatibility_error", err)
        object.__setattr__(
            self, "logical_session_timeout_minutes", _ls_timeout(self.servers.values())
        )

    def __hash__(self) -> int:
        return id(self)

    # -- PyMongo-compatible accessors ---------------------------------------------------

    @property
    def topology_type_name(self) -> str:
        """The topology type's name, e.g. ``"ReplicaSetWithPrimary"``."""
        return self.topology_type.name

    def server_descriptions(self) -> Dict[Address, ServerDescription]:
        """A new dict of address to :class:`ServerDescription` (PyMongo's method)."""
        return dict(self.servers)

    def has_server(self, address: Address) -> bool:
        """Whether *address* is one of the described servers."""
        return address in self.servers

    def reset_server(self, address: Address, error: Optional[BaseException] = None) -> "TopologyDescription":
        """A copy where *address* is a default Unknown server (SDAM rules not re-run)."""
        servers = dict(self.servers)
        servers[address] = ServerDescription.unknown(address, error)
        return replace(self, servers=servers)

    @property
    def known_servers(self) -> List[ServerDescription]:
        """Servers whose type is not Unknown."""
        return [s for s in self.servers.values() if s.is_server_type_known]

    @property
    def has_known_servers(self) -> bool:
        """Whether any server's type is known (PyMongo: ``has_known_servers``)."""
        return any(s.is_server_type_known for s in self.servers.values())

    @property
    def readable_servers(self) -> List[ServerDescription]:
        """The servers reads may go to (PyMongo: ``readable_servers``)."""
        return [s for s in self.servers.values() if s.is_readable]

    @property
    def common_wire_version(self) -> Optional[int]:
        """The lowest ``maxWireVersion`` among known servers (None if there are none)."""
        known = self.known_servers
        return min(s.max_wire_version for s in known) if known else None

    @property
    def primary(self) -> Optional[ServerDescription]:
        """The primary's description, or None."""
        for s in self.servers.values():
            if s.server_type == ServerType.RSPrimary:
                return s
        return None

    def check_compatible(self) -> None:
        """Raise :class:`pymongo.errors.ConfigurationError` if a server is incompatible."""
        if not self.compatible:
            raise ConfigurationError(self.compatibility_error or "incompatible server")

    def apply_selector(
        self,
        selector: Any,
        address: Optional[Address] = None,
        custom_selector: Optional[Callable[[List[ServerDescription]], List[ServerDescription]]] = None,
        *,
        local_threshold_ms: float = 15,
        heartbeat_frequency_ms: float = 10_000,
    ) -> List[ServerDescription]:
        """Servers suitable for *selector* (see :func:`amongo.topology.selection.select_servers`).

        :param address: when given, only that server (if it is known) is returned.
        :param custom_selector: a further filter applied before the latency window.
        """
        if address is not None:
            sd = self.servers.get(address)
            return [sd] if sd is not None and sd.is_server_type_known else []
        return select_servers(
            self,
            selector,
            local_threshold_ms,
            heartbeat_frequency_ms=heartbeat_frequency_ms,
            custom_selector=custom_selector,
        )

    def has_readable_server(self, read_preference: Any = None) -> bool:
        """Whether a server matches *read_preference* (default: primary) right now."""
        from pymongo.read_preferences import ReadPreference

        if read_preference is None:
            read_preference = ReadPreference.PRIMARY
        return bool(self.apply_selector(read_preference))

    def has_writable_server(self) -> bool:
        """Whether a writable server is known right now."""
        return bool(self.apply_selector(WRITABLE))

    def __repr__(self) -> str:
        servers = sorted(self.servers.values(), key=lambda s: s.address)
        return (
            f"<TopologyDescription topology_type: {self.topology_type_name}, "
            f"servers: {servers!r}>"
        )


def _compatibility(servers: Iterable[ServerDescription]) -> Tuple[bool, Optional[str]]:
    for s in servers:
        if (
            not s.is_server_type_known
            or s.server_type in (ServerType.LoadBalancer, ServerType.PossiblePrimary)
        ):
            continue
        if s.min_wire_version > MAX_SUPPORTED_WIRE_VERSION:
            return False, (
                f"Server at {format_address(s.address)} requires wire version "
                f"{s.min_wire_version}, but this version of amongo only supports up to "
                f"{MAX_SUPPORTED_WIRE_VERSION}."
            )
        if s.max_wire_version < MIN_SUPPORTED_WIRE_VERSION:
            return False, (
                f"Server at {format_address(s.address)} reports wire version "
                f"{s.max_wire_version}, but this version of amongo requires at least "
                f"{MIN_SUPPORTED_WIRE_VERSION} (MongoDB {MIN_SUPPORTED_SERVER_VERSION})."
            )
    return True, None


def _ls_timeout(servers: Iterable[ServerDescription]) -> Optional[int]:
    values: List[Optional[int]] = [
        s.logical_session_timeout_minutes
        for s in servers
        if s.is_data_bearing and s.server_type != ServerType.LoadBalancer
    ]
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)
