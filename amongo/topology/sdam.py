"""The SDAM rules as pure functions over :class:`~amongo.topology.description.TopologyDescription`.

Nothing here does I/O or touches asyncio.  The I/O side (``topology/topology.py``) calls:

- :func:`initial_topology_description` once, from the parsed URI options;
- :func:`updated_topology_description` with every new :class:`ServerDescription` (a monitor's
  hello outcome, or the Unknown description an application error produces) and swaps in the
  returned value;
- :func:`error_handling_decision` when an application operation fails, then applies the
  returned :class:`ErrorDecision` (mark Unknown via :func:`updated_topology_description`, clear
  the pool, request an immediate check, cancel an in-progress check), all without awaiting;
- :func:`check_failure_decision` when a monitor's own hello fails (and
  :func:`min_round_trip_time` for the RTT task);
- :func:`topology_events`, :func:`opening_events`, :func:`closing_events` to get the pymongo
  SDAM event objects to publish for a description change.

Also public: :func:`classify_state_change`, :func:`is_shutdown_code`,
:func:`command_error_fields`, :class:`ErrorKind`, :class:`ErrorPhase`, :class:`StateChange`,
:data:`SYSTEM_OVERLOADED_LABEL`,
:data:`RECOVERING_CODES`, :data:`NOT_WRITABLE_PRIMARY_CODES`, :data:`SHUTDOWN_CODES`.
"""
from __future__ import annotations

import enum
from dataclasses import replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from bson.objectid import ObjectId
from pymongo import monitoring as _pm
from pymongo.errors import ConfigurationError

from amongo._compat import slotted_dataclass
from amongo.server_errors import NOT_WRITABLE_PRIMARY_CODES, RECOVERING_CODES, SHUTDOWN_CODES

from amongo.topology.description import (
    Address,
    ServerDescription,
    ServerType,
    TopologyDescription,
    TopologyType,
    compare_topology_version,
)

__all__ = [
    "initial_topology_description",
    "updated_topology_description",
    "ErrorKind",
    "ErrorPhase",
    "ErrorDecision",
    "error_handling_decision",
    "check_failure_decision",
    "CheckFailureDecision",
    "min_round_trip_time",
    "classify_state_change",
    "StateChange",
    "SYSTEM_OVERLOADED_LABEL",
    "is_shutdown_code",
    "command_error_fields",
    "RECOVERING_CODES",
    "NOT_WRITABLE_PRIMARY_CODES",
    "SHUTDOWN_CODES",
    "STALE_PRIMARY_ELECTION_MSG",
    "STALE_PRIMARY_NEWER_MSG",
    "topology_events",
    "opening_events",
    "closing_events",
]

STALE_PRIMARY_ELECTION_MSG = "primary marked stale due to electionId/setVersion mismatch"
STALE_PRIMARY_NEWER_MSG = "primary marked stale due to discovery of newer primary"

_RS_MEMBER_TYPES = (ServerType.RSSecondary, ServerType.RSArbiter, ServerType.RSOther)


# ---------------------------------------------------------------------------------------
# Initial description
# ---------------------------------------------------------------------------------------


def initial_topology_description(
    seeds: Sequence[Address],
    *,
    replica_set_name: Optional[str] = None,
    direct_connection: Optional[bool] = None,
    load_balanced: bool = False,
    topology_type: Optional[TopologyType] = None,
) -> TopologyDescription:
    """The starting description for a client configured with *seeds*.

    The initial type follows the SDAM table: ``loadBalanced`` gives LoadBalanced (its one
    server is a LoadBalancer at once), ``directConnection=true`` gives Single, a replica set
    name gives ReplicaSetNoPrimary, otherwise Unknown.  *topology_type* forces a type.

    :raises ConfigurationError: for combinations the SDAM spec forbids.
    """
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise ConfigurationError("need at least one seed")
    if load_balanced:
        if direct_connection:
            raise ConfigurationError("loadBalanced cannot be used with directConnection=true")
        if replica_set_name is not None:
            raise ConfigurationError("loadBalanced cannot be used with replicaSet")
        if len(seeds) != 1:
            raise ConfigurationError("loadBalanced requires exactly one host")
    if direct_connection and len(seeds) != 1:
        raise ConfigurationError("directConnection=true requires exactly one host")

    if topology_type is None:
        if load_balanced:
            topology_type = TopologyType.LoadBalanced
        elif direct_connection:
            topology_type = TopologyType.Single
        elif replica_set_name is not None:
            topology_type = TopologyType.ReplicaSetNoPrimary
        else:
            topology_type = TopologyType.Unknown
    if topology_type == TopologyType.Single and len(seeds) != 1:
        raise ConfigurationError("TopologyType Single requires exactly one host")

    servers: Dict[Address, ServerDescription] = {}
    for a in seeds:
        if topology_type == TopologyType.LoadBalanced:
            servers[a] = ServerDescription.load_balancer(a)
        else:
            servers[a] = ServerDescription.unknown(a)
    return TopologyDescription(
        topology_type=topology_type,
        servers=servers,
        replica_set_name=replica_set_name,
        seed_count=len(seeds),
    )


# ---------------------------------------------------------------------------------------
# updated_topology_description
# ---------------------------------------------------------------------------------------


class _State:
    """Scratch state while one update runs (never escapes this module)."""

    __slots__ = ("servers", "topology_type", "set_name", "max_set_version", "max_election_id")

    def __init__(self, td: TopologyDescription) -> None:
        self.servers: Dict[Address, ServerDescription] = dict(td.servers)
        self.topology_type = td.topology_type
        self.set_name = td.replica_set_name
        self.max_set_version = td.max_set_version
        self.max_election_id = td.max_election_id

    def check_if_has_primary(self) -> None:
        if any(s.server_type == ServerType.RSPrimary for s in self.servers.values()):
            self.topology_type = TopologyType.ReplicaSetWithPrimary
        else:
            self.topology_type = TopologyType.ReplicaSetNoPrimary

    def mark_possible_primary(self, primary: Optional[Address]) -> None:
        if primary is None:
            return
        sd = self.servers.get(primary)
        if sd is not None and sd.server_type == ServerType.Unknown:
            self.servers[primary] = sd.with_type(ServerType.PossiblePrimary)

    def add_hosts(self, sd: ServerDescription) -> None:
        for a in sd.all_hosts:
            if a not in self.servers:
                self.servers[a] = ServerDescription.unknown(a)


def updated_topology_description(
    td: TopologyDescription, sd: ServerDescription
) -> TopologyDescription:
    """The description after processing *sd* (SDAM "updating the TopologyDescription").

    Returns *td* itself when *sd* is ignored: its server is no longer in the topology, or
    its ``topologyVersion`` is older than the current description's.
    """
    address = sd.address
    current = td.servers.get(address)
    if current is None:
        return td
    if compare_topology_version(current.topology_version, sd.topology_version) > 0:
        return td

    ttype = td.topology_type
    if ttype == TopologyType.LoadBalanced:
        # The load balancer is never checked; only a LoadBalancer description replaces it.
        if sd.server_type != ServerType.LoadBalancer:
            return td
        servers = dict(td.servers)
        servers[address] = sd
        return replace(td, servers=servers)

    if ttype == TopologyType.Single:
        if (
            td.replica_set_name is not None
            and sd.server_type != ServerType.Unknown
            and sd.set_name != td.replica_set_name
        ):
            sd = ServerDescription.unknown(
                address,
                ConfigurationError(
                    f"Expected replica set name {td.replica_set_name!r}, "
                    f"server reports {sd.set_name!r}"
                ),
            )
        servers = dict(td.servers)
        servers[address] = sd
        return replace(td, servers=servers)

    st = _State(td)
    st.servers[address] = sd
    stype = sd.server_type

    if ttype == TopologyType.Unknown:
        if stype == ServerType.Standalone:
            if td.seed_count == 1:
                st.topology_type = TopologyType.Single
            else:
                del st.servers[address]
        elif stype == ServerType.Mongos:
            st.topology_type = TopologyType.Sharded
        elif stype == ServerType.RSPrimary:
            _update_rs_from_primary(st, sd)
        elif stype in _RS_MEMBER_TYPES:
            st.topology_type = TopologyType.ReplicaSetNoPrimary
            _update_rs_without_primary(st, sd)
        # Unknown, RSGhost (and PossiblePrimary, never produced by a check): no-op.
    elif ttype == TopologyType.Sharded:
        if stype not in (ServerType.Unknown, ServerType.Mongos):
            del st.servers[address]
    elif ttype == TopologyType.ReplicaSetNoPrimary:
        if stype in (ServerType.Standalone, ServerType.Mongos):
            del st.servers[address]
        elif stype == ServerType.RSPrimary:
            _update_rs_from_primary(st, sd)
        elif stype in _RS_MEMBER_TYPES:
            _update_rs_without_primary(st, sd)
    elif ttype == TopologyType.ReplicaSetWithPrimary:
        if stype in (ServerType.Standalone, ServerType.Mongos):
            del st.servers[address]
            st.check_if_has_primary()
        elif stype == ServerType.RSPrimary:
            _update_rs_from_primary(st, sd)
        elif stype in _RS_MEMBER_TYPES:
            _update_rs_with_primary_from_member(st, sd)
        else:
            st.check_if_has_primary()

    return TopologyDescription(
        topology_type=st.topology_type,
        servers=st.servers,
        replica_set_name=st.set_name,
        max_set_version=st.max_set_version,
        max_election_id=st.max_election_id,
        seed_count=td.seed_count,
    )


def _lt_nullable(a: Any, b: Any) -> bool:
    """``a < b`` where None is less than every value (and equal to None)."""
    if a is None:
        return b is not None
    if b is None:
        return False
    return bool(a < b)


def _update_rs_from_primary(st: _State, sd: ServerDescription) -> None:
    address = sd.address
    if st.set_name is None:
        st.set_name = sd.set_name
    elif st.set_name != sd.set_name:
        del st.servers[address]
        st.check_if_has_primary()
        return

    if sd.max_wire_version >= 17:
        eid, sv = sd.election_id, sd.set_version
        newer = _lt_nullable(st.max_election_id, eid) or (
            eid == st.max_election_id and not _lt_nullable(sv, st.max_set_version)
        )
        if newer:
            st.max_election_id = eid
            st.max_set_version = sv
        else:
            _mark_stale_primary(st, sd)
            return
    else:
        if sd.set_version is not None and sd.election_id is not None:
            if (
                st.max_set_version is not None
                and st.max_election_id is not None
                and (
                    st.max_set_version > sd.set_version
                    or (
                        st.max_set_version == sd.set_version
                        and st.max_election_id > sd.election_id
                    )
                )
            ):
                _mark_stale_primary(st, sd)
                return
            st.max_election_id = sd.election_id
        if sd.set_version is not None and (
            st.max_set_version is None or sd.set_version > st.max_set_version
        ):
            st.max_set_version = sd.set_version

    for a, other in list(st.servers.items()):
        if a != address and other.server_type == ServerType.RSPrimary:
            st.servers[a] = ServerDescription.unknown(a, _StalePrimary(STALE_PRIMARY_NEWER_MSG))

    st.add_hosts(sd)
    members = set(sd.all_hosts)
    for a in list(st.servers):
        if a not in members:
            del st.servers[a]
    st.check_if_has_primary()


class _StalePrimary(Exception):
    """The error stored on a primary that SDAM marked Unknown as stale."""


def _mark_stale_primary(st: _State, sd: ServerDescription) -> None:
    msg = (
        f"{STALE_PRIMARY_ELECTION_MSG}, ({sd.election_id}, {sd.set_version}) is stale "
        f"compared to ({st.max_election_id}, {st.max_set_version})"
    )
    st.servers[sd.address] = ServerDescription.unknown(sd.address, _StalePrimary(msg))
    st.check_if_has_primary()


def _update_rs_without_primary(st: _State, sd: ServerDescription) -> None:
    address = sd.address
    if st.set_name is None:
        st.set_name = sd.set_name
    elif st.set_name != sd.set_name:
        del st.servers[address]
        return
    st.add_hosts(sd)
    st.mark_possible_primary(sd.primary)
    if sd.me is not None and sd.me != address:
        del st.servers[address]


def _update_rs_with_primary_from_member(st: _State, sd: ServerDescription) -> None:
    address = sd.address
    if st.set_name != sd.set_name or (sd.me is not None and sd.me != address):
        del st.servers[address]
        st.check_if_has_primary()
        return
    if not any(s.server_type == ServerType.RSPrimary for s in st.servers.values()):
        st.topology_type = TopologyType.ReplicaSetNoPrimary
        st.mark_possible_primary(sd.primary)


# ---------------------------------------------------------------------------------------
# Application error handling
# ---------------------------------------------------------------------------------------

# RECOVERING_CODES, NOT_WRITABLE_PRIMARY_CODES, SHUTDOWN_CODES: see amongo.server_errors.

#: Label on errors the server raises under overload; such errors never change SDAM state.
SYSTEM_OVERLOADED_LABEL = "SystemOverloadedError"


class ErrorKind(enum.Enum):
    """What failed: a network error, a network timeout, or a server reply."""

    NETWORK = "network"
    TIMEOUT = "timeout"
    COMMAND = "command"


class ErrorPhase(enum.Enum):
    """When it failed, relative to the connection's handshake (hello + authentication)."""

    BEFORE_HANDSHAKE = "beforeHandshakeCompletes"
    AFTER_HANDSHAKE = "afterHandshakeCompletes"


class StateChange(enum.Enum):
    """The kind of state-change error (see :func:`classify_state_change`)."""

    NONE = 0
    NOT_WRITABLE_PRIMARY = 1
    RECOVERING = 2


def classify_state_change(code: Optional[int], message: Optional[str]) -> StateChange:
    """Classify a server error as "not writable primary", "node is recovering" or neither.

    The code decides when there is one; only a reply without a code falls back to the
    message substrings.
    """
    if code:
        if code in RECOVERING_CODES:
            return StateChange.RECOVERING
        if code in NOT_WRITABLE_PRIMARY_CODES:
            return StateChange.NOT_WRITABLE_PRIMARY
        return StateChange.NONE
    msg = message or ""
    if "not master or secondary" in msg or "node is recovering" in msg:
        return StateChange.RECOVERING
    if "not master" in msg:
        return StateChange.NOT_WRITABLE_PRIMARY
    return StateChange.NONE


def is_shutdown_code(code: Optional[int]) -> bool:
    """Whether *code* means "node is shutting down"."""
    return bool(code) and code in SHUTDOWN_CODES


def command_error_fields(
    response: Mapping[str, Any],
) -> Optional[Tuple[Optional[int], str, Optional[Mapping[str, Any]]]]:
    """``(code, message, topologyVersion)`` of the error SDAM must look at in *response*.

    That is the command error for ``ok: 0``, else the ``writeConcernError``; ``writeErrors``
    are never considered.  None when the reply carries neither.
    """
    if not response.get("ok", 0):
        return (
            response.get("code"),
            str(response.get("errmsg", response.get("$err", ""))),
            response.get("topologyVersion"),
        )
    wce = response.get("writeConcernError")
    if wce:
        return wce.get("code"), str(wce.get("errmsg", "")), response.get("topologyVersion")
    return None


@slotted_dataclass(frozen=True)
class ErrorDecision:
    """What the I/O layer must do about one application error, in this order.

    - ``stale``: the error is stale (older connection generation or topologyVersion); do
      nothing at all.  When ``stale`` is true every other flag is false.
    - ``mark_unknown``: run :func:`updated_topology_description` with
      ``ServerDescription.unknown(address, error, topology_version=topology_version)``.
    - ``clear_pool``: clear the server's pool (for ``service_id`` only in load-balanced
      mode), synchronously with the description update.
    - ``request_check``: wake the server's monitor for an immediate check.
    - ``cancel_check``: cancel the monitor's in-progress check.
    """

    stale: bool = False
    mark_unknown: bool = False
    clear_pool: bool = False
    request_check: bool = False
    cancel_check: bool = False
    topology_version: Optional[Mapping[str, Any]] = None
    service_id: Optional[ObjectId] = None

    @property
    def ignored(self) -> bool:
        """True when the error changes nothing (stale, or not an SDAM-relevant error)."""
        return not (self.mark_unknown or self.clear_pool or self.request_check or self.cancel_check)


_IGNORE = ErrorDecision()
_STALE = ErrorDecision(stale=True)


def error_handling_decision(
    td: TopologyDescription,
    address: Address,
    error_kind: ErrorKind,
    *,
    code: Optional[int] = None,
    message: Optional[str] = None,
    topology_version: Optional[Mapping[str, Any]] = None,
    connection_generation: Optional[int] = None,
    pool_generation: int = 0,
    max_wire_version: int = 0,
    phase: ErrorPhase = ErrorPhase.AFTER_HANDSHAKE,
    labels: Iterable[str] = (),
    service_id: Optional[ObjectId] = None,
) -> ErrorDecision:
    """Decide how an application error updates SDAM state (SDAM "Error handling").

    :param td: the current topology description.
    :param address: the server the operation ran on.
    :param error_kind: network error, network timeout or command error (for a command error
        pass *code*, *message* and *topology_version* from :func:`command_error_fields`).
    :param connection_generation: the failed connection's pool generation (for an error
        before the handshake completed: the pool's generation when the attempt began);
        None means "current".
    :param pool_generation: the server pool's current generation.
    :param max_wire_version: the connection's ``maxWireVersion`` (0 if unknown).
    :param phase: before or after the handshake (including authentication) completed.
    :param labels: the error's labels (``SystemOverloadedError`` errors are ignored).
    :param service_id: the connection's ``serviceId`` in load-balanced mode.
    """
    current = td.servers.get(address)
    if current is None:
        return _IGNORE
    if connection_generation is not None and connection_generation < pool_generation:
        return _STALE
    load_balanced = td.topology_type == TopologyType.LoadBalanced

    if error_kind == ErrorKind.COMMAND:
        change = classify_state_change(code, message)
        if change != StateChange.NONE:
            if compare_topology_version(current.topology_version, topology_version) >= 0:
                return _STALE
            clear = is_shutdown_code(code) or max_wire_version <= 7
            if load_balanced:
                return ErrorDecision(
                    clear_pool=clear and service_id is not None, service_id=service_id
                )
            return ErrorDecision(
                mark_unknown=True,
                clear_pool=clear,
                request_check=True,
                topology_version=topology_version,
            )
        if phase == ErrorPhase.AFTER_HANDSHAKE:
            return _IGNORE
        # A non-state-change command error while connecting (e.g. authentication failed).
    elif error_kind == ErrorKind.TIMEOUT and phase == ErrorPhase.AFTER_HANDSHAKE:
        # A timeout on an established connection may just be a slow operation.
        return _IGNORE

    if SYSTEM_OVERLOADED_LABEL in set(labels):
        return _IGNORE
    if load_balanced:
        return ErrorDecision(clear_pool=service_id is not None, service_id=service_id)
    return ErrorDecision(mark_unknown=True, clear_pool=True, cancel_check=True)


@slotted_dataclass(frozen=True)
class CheckFailureDecision:
    """What a monitor does after its own hello failed (server-monitoring spec pseudocode).

    Always: mark the server Unknown (``ServerDescription.unknown(address, error)`` through
    :func:`updated_topology_description`), *then* clear its pool, interrupting in-use
    connections when ``interrupt_connections`` is set (the failure was a network timeout).
    ``check_immediately``: start the next check at once instead of waiting
    ``heartbeatFrequencyMS`` (a network error that just turned a known server Unknown).
    """

    mark_unknown: bool = True
    clear_pool: bool = True
    interrupt_connections: bool = False
    check_immediately: bool = False


def check_failure_decision(
    previous: ServerDescription,
    *,
    is_network_error: bool = True,
    is_timeout: bool = False,
) -> CheckFailureDecision:
    """Decide what to do after a monitor's check failed.

    :param previous: the server's description before the failed check.
    :param is_network_error: the failure was a network error (timeouts included), not a
        command error in the hello reply.
    :param is_timeout: the failure was a network timeout.
    """
    return CheckFailureDecision(
        interrupt_connections=is_timeout,
        check_immediately=is_network_error and previous.server_type != ServerType.Unknown,
    )


def min_round_trip_time(samples: Sequence[float]) -> float:
    """The minimum of the recent RTT samples (the monitor keeps the last 10), or 0 while
    fewer than two samples exist (server-monitoring spec)."""
    if len(samples) < 2:
        return 0.0
    return min(samples)


# ---------------------------------------------------------------------------------------
# SDAM events
# ---------------------------------------------------------------------------------------


# PyMongo's event classes are typed for PyMongo's own descriptions; amongo hands them its
# descriptions, which offer the same public accessors (``topology_type``,
# ``server_descriptions()``, ``has_readable_server()``, ...).
_TopologyDescriptionChangedEvent: Any = _pm.TopologyDescriptionChangedEvent
_ServerDescriptionChangedEvent: Any = _pm.ServerDescriptionChangedEvent


def _empty_unknown(seed_count: int = 1) -> TopologyDescription:
    return TopologyDescription(topology_type=TopologyType.Unknown, servers={}, seed_count=seed_count)


def opening_events(td: TopologyDescription, topology_id: ObjectId) -> List[Any]:
    """Events a client publishes when it opens: TopologyOpening, TopologyDescriptionChanged
    (from an empty Unknown description to *td*), then ServerOpening for each server."""
    events: List[Any] = [
        _pm.TopologyOpenedEvent(topology_id),
        _TopologyDescriptionChangedEvent(_empty_unknown(td.seed_count), td, topology_id),
    ]
    events.extend(_pm.ServerOpeningEvent(a, topology_id) for a in td.servers)
    return events


def closing_events(td: TopologyDescription, topology_id: ObjectId) -> List[Any]:
    """Events a client publishes when it closes: ServerClosed for each server, the change
    to an empty Unknown description, then TopologyClosed."""
    events: List[Any] = [_pm.ServerClosedEvent(a, topology_id) for a in td.servers]
    if td.servers or td.topology_type != TopologyType.Unknown:
        events.append(
            _TopologyDescriptionChangedEvent(td, _empty_unknown(td.seed_count), topology_id)
        )
    events.append(_pm.TopologyClosedEvent(topology_id))
    return events


def topology_events(
    old: TopologyDescription,
    new: TopologyDescription,
    topology_id: ObjectId,
    *,
    address: Optional[Address] = None,
) -> List[Any]:
    """The SDAM events for the change from *old* to *new*, in publishing order.

    ServerDescriptionChanged for each server present in both whose description changed
    (spec equality; *address*, the server just processed, first), then ServerClosed for
    removed servers and ServerOpening for added ones, then one TopologyDescriptionChanged
    if anything changed.  Returns ``[]`` when nothing observable changed.
    """
    events: List[Any] = []
    order = list(new.servers)
    if address is not None and address in new.servers:
        order.remove(address)
        order.insert(0, address)
    for a in order:
        prev = old.servers.get(a)
        cur = new.servers[a]
        if prev is not None and _sd_changed(prev, cur):
            events.append(_ServerDescriptionChangedEvent(prev, cur, a, topology_id))
    for a in old.servers:
        if a not in new.servers:
            events.append(_pm.ServerClosedEvent(a, topology_id))
    for a in new.servers:
        if a not in old.servers:
            events.append(_pm.ServerOpeningEvent(a, topology_id))
    if events or _td_key(old) != _td_key(new):
        events.append(_TopologyDescriptionChangedEvent(old, new, topology_id))
    return events


def _sd_changed(prev: ServerDescription, cur: ServerDescription) -> bool:
    # PossiblePrimary is only a scanning hint, synonymous with Unknown for an asynchronous
    # client: marking an unchecked server PossiblePrimary is not a published change.
    unknownish = (ServerType.Unknown, ServerType.PossiblePrimary)
    if prev.server_type in unknownish and cur.server_type in unknownish:
        prev = prev.with_type(ServerType.Unknown)
        cur = cur.with_type(ServerType.Unknown)
    return prev != cur


def _td_key(td: TopologyDescription) -> Tuple[Any, ...]:
    return (
        td.topology_type,
        td.replica_set_name,
        td.max_set_version,
        td.max_election_id,
        td.compatible,
        td.logical_session_timeout_minutes,
    )
