"""Server selection as small pure functions (server-selection and max-staleness specs).

No I/O, no asyncio.  The I/O side calls :func:`select_servers` with the current
:class:`~amongo.topology.description.TopologyDescription`; when it returns servers it picks
one with :func:`choose_in_window` (the "power of two random choices" by operation count).

Selectors:

- a :mod:`pymongo.read_preferences` read preference (``Primary``, ``PrimaryPreferred``,
  ``Secondary``, ``SecondaryPreferred``, ``Nearest``; tag sets, ``max_staleness``), used as
  a value (its ``mode``, ``tag_sets`` and ``max_staleness``);
- :data:`WRITABLE`, for writes;
- any callable ``f(list[ServerDescription]) -> list[ServerDescription]`` (filters the
  topology's known servers; e.g. :func:`address_selector`).

Public names (stable): :data:`WRITABLE`, :func:`select_servers`, :func:`suitable_servers`,
:func:`latency_window`, :func:`choose_in_window`, :func:`staleness_seconds`,
:func:`validate_max_staleness`, :func:`apply_tag_sets`, :func:`address_selector`,
:data:`IDLE_WRITE_PERIOD_MS`, :data:`SMALLEST_MAX_STALENESS_SECONDS`.
"""
from __future__ import annotations

import random
from typing import Any, Callable, Collection, List, Mapping, Optional, Sequence, TypeVar

from pymongo.errors import ConfigurationError

from amongo.topology.types import Address, ServerType, ServerView, TopologyType, TopologyView

# Selection is generic in the server description type: it returns the very objects it is
# given (amongo's ServerDescription in the driver, anything shaped like one in tests).
S = TypeVar("S", bound=ServerView)

__all__ = [
    "WRITABLE",
    "IDLE_WRITE_PERIOD_MS",
    "SMALLEST_MAX_STALENESS_SECONDS",
    "select_servers",
    "suitable_servers",
    "latency_window",
    "choose_in_window",
    "staleness_seconds",
    "validate_max_staleness",
    "apply_tag_sets",
    "address_selector",
]

#: The replica set primary's idle write period (max-staleness spec), milliseconds.
IDLE_WRITE_PERIOD_MS = 10_000
#: The smallest ``maxStalenessSeconds`` a driver accepts, whatever the heartbeat frequency.
SMALLEST_MAX_STALENESS_SECONDS = 90

# pymongo.read_preferences mode numbers.
_PRIMARY, _PRIMARY_PREFERRED, _SECONDARY, _SECONDARY_PREFERRED, _NEAREST = range(5)

ServerFilter = Callable[[List[Any]], List[Any]]


class _Writable:
    """The selector for write operations (a singleton: :data:`WRITABLE`)."""

    __slots__ = ()
    mode = _PRIMARY
    tag_sets: Sequence[Mapping[str, str]] = ({},)
    max_staleness = -1

    def __repr__(self) -> str:
        return "WRITABLE"


#: Select a server that accepts writes (primary, mongos, standalone, load balancer).
WRITABLE = _Writable()


def address_selector(address: Address) -> ServerFilter:
    """A selector choosing only the server at *address* (when it is known)."""

    def select(servers: List[Any]) -> List[Any]:
        return [s for s in servers if s.address == address]

    return select


def validate_max_staleness(max_staleness: int, heartbeat_frequency_ms: float) -> None:
    """Raise :class:`~pymongo.errors.ConfigurationError` if *max_staleness* (seconds; -1
    for none) is smaller than ``max(90, heartbeatFrequencyMS/1000 + idleWritePeriodMS/1000)``.
    """
    if max_staleness is None or max_staleness == -1:
        return
    smallest = max(
        SMALLEST_MAX_STALENESS_SECONDS, (heartbeat_frequency_ms + IDLE_WRITE_PERIOD_MS) / 1000.0
    )
    if max_staleness < smallest:
        raise ConfigurationError(
            f"maxStalenessSeconds must be at least heartbeatFrequencyMS + "
            f"{IDLE_WRITE_PERIOD_MS // 1000} seconds and at least "
            f"{SMALLEST_MAX_STALENESS_SECONDS} seconds; maxStalenessSeconds={max_staleness}, "
            f"heartbeatFrequencyMS={heartbeat_frequency_ms}"
        )


def staleness_seconds(
    server: S,
    primary: Optional[S],
    freshest_secondary: Optional[S],
    heartbeat_frequency_ms: float,
) -> float:
    """Estimated staleness of a secondary, in seconds (max-staleness spec).

    With a primary P: ``(S.lastUpdateTime - S.lastWriteDate) - (P.lastUpdateTime -
    P.lastWriteDate) + heartbeatFrequency``; without: ``SMax.lastWriteDate -
    S.lastWriteDate + heartbeatFrequency`` where SMax is the freshest secondary.
    """
    hb = heartbeat_frequency_ms / 1000.0
    s_write = server.last_write_date or 0.0
    if primary is not None:
        p_write = primary.last_write_date or 0.0
        return (server.last_update_time - s_write) - (primary.last_update_time - p_write) + hb
    if freshest_secondary is not None:
        return (freshest_secondary.last_write_date or 0.0) - s_write + hb
    return hb


def _filter_staleness(
    secondaries: List[S],
    primary: Optional[S],
    max_staleness: int,
    heartbeat_frequency_ms: float,
) -> List[S]:
    if max_staleness is None or max_staleness == -1 or not secondaries:
        return secondaries
    freshest = None
    if primary is None:
        freshest = max(secondaries, key=lambda s: s.last_write_date or 0.0)
    return [
        s
        for s in secondaries
        if staleness_seconds(s, primary, freshest, heartbeat_frequency_ms) <= max_staleness
    ]


def apply_tag_sets(
    servers: List[S], tag_sets: Optional[Sequence[Mapping[str, str]]]
) -> List[S]:
    """Servers matching the first tag set that matches any (an empty set matches all)."""
    if not tag_sets:
        return servers
    for tag_set in tag_sets:
        items = list(tag_set.items())
        matched = [s for s in servers if all(s.tags.get(k) == v for k, v in items)]
        if matched:
            return matched
    return []


def latency_window(
    servers: List[S], local_threshold_ms: float = 15
) -> List[S]:
    """Servers whose average RTT is within *local_threshold_ms* of the fastest one.

    Servers without an RTT (e.g. a load balancer) are always in the window.
    """
    if len(servers) <= 1:
        return list(servers)
    rtts = [s.round_trip_time for s in servers if s.round_trip_time is not None]
    if not rtts:
        return list(servers)
    limit = min(rtts) + local_threshold_ms / 1000.0
    return [s for s in servers if s.round_trip_time is None or s.round_trip_time <= limit]


def _rs_servers(
    td: TopologyView[S],
    servers: List[S],
    selector: Any,
    heartbeat_frequency_ms: float,
) -> List[S]:
    primary = next((s for s in servers if s.server_type == ServerType.RSPrimary), None)
    if selector is WRITABLE:
        return [primary] if primary is not None else []
    mode = selector.mode
    if mode == _PRIMARY:
        return [primary] if primary is not None else []
    max_staleness = getattr(selector, "max_staleness", -1)
    tag_sets = getattr(selector, "tag_sets", None)
    # The primary of the whole topology drives staleness, even if it was filtered out.
    td_primary = td.primary
    secondaries = [s for s in servers if s.server_type == ServerType.RSSecondary]

    def matching_secondaries() -> List[S]:
        fresh = _filter_staleness(secondaries, td_primary, max_staleness, heartbeat_frequency_ms)
        return apply_tag_sets(fresh, tag_sets)

    if mode == _PRIMARY_PREFERRED:
        return [primary] if primary is not None else matching_secondaries()
    if mode == _SECONDARY:
        return matching_secondaries()
    if mode == _SECONDARY_PREFERRED:
        found = matching_secondaries()
        if found:
            return found
        return [primary] if primary is not None else []
    if mode == _NEAREST:
        fresh = _filter_staleness(secondaries, td_primary, max_staleness, heartbeat_frequency_ms)
        members = ([primary] if primary is not None else []) + fresh
        # Keep the topology's order for stable output.
        keep = {id(s) for s in members}
        return apply_tag_sets([s for s in servers if id(s) in keep], tag_sets)
    raise ConfigurationError(f"unknown read preference mode {mode!r}")


def _select_from(
    td: TopologyView[S],
    servers: List[S],
    selector: Any,
    heartbeat_frequency_ms: float,
    custom_selector: Optional[ServerFilter],
) -> List[S]:
    ttype = td.topology_type
    chosen: List[S]
    if callable(selector) and not hasattr(selector, "mode"):
        chosen = selector([s for s in servers if s.is_server_type_known])
    elif ttype == TopologyType.Unknown:
        chosen = []
    elif ttype == TopologyType.Single:
        chosen = [s for s in servers if s.is_server_type_known]
    elif ttype == TopologyType.LoadBalanced:
        chosen = [s for s in servers if s.server_type == ServerType.LoadBalancer]
    elif ttype == TopologyType.Sharded:
        chosen = [s for s in servers if s.server_type == ServerType.Mongos]
    else:
        chosen = _rs_servers(td, servers, selector, heartbeat_frequency_ms)
    if custom_selector is not None and chosen:
        chosen = custom_selector(chosen)
    return chosen


def suitable_servers(
    td: TopologyView[S],
    selector: Any,
    *,
    heartbeat_frequency_ms: float = 10_000,
    deprioritized: Collection[Any] = (),
    custom_selector: Optional[ServerFilter] = None,
) -> List[S]:
    """Servers suitable for *selector*, before the latency window.

    :param deprioritized: servers (descriptions or addresses) to avoid, e.g. the one a
        retried operation failed on; they are used only if no other server is suitable.
    :raises ConfigurationError: ``maxStalenessSeconds`` too small for a replica set.
    """
    if td.topology_type in (TopologyType.ReplicaSetNoPrimary, TopologyType.ReplicaSetWithPrimary):
        validate_max_staleness(getattr(selector, "max_staleness", -1), heartbeat_frequency_ms)
    servers = list(td.servers.values())
    if deprioritized:
        avoid = {d if isinstance(d, tuple) else d.address for d in deprioritized}
        preferred = [s for s in servers if s.address not in avoid]
        if len(preferred) != len(servers):
            chosen = _select_from(td, preferred, selector, heartbeat_frequency_ms, custom_selector)
            if chosen:
                return chosen
    return _select_from(td, servers, selector, heartbeat_frequency_ms, custom_selector)


def select_servers(
    td: TopologyView[S],
    selector: Any,
    local_threshold_ms: float = 15,
    *,
    heartbeat_frequency_ms: float = 10_000,
    deprioritized: Collection[Any] = (),
    custom_selector: Optional[ServerFilter] = None,
) -> List[S]:
    """Suitable servers within the latency window (server-selection spec).

    :param td: the current topology description.
    :param selector: a pymongo read preference, :data:`WRITABLE`, or a server filter.
    :param local_threshold_ms: the ``localThresholdMS`` option.
    :param heartbeat_frequency_ms: the ``heartbeatFrequencyMS`` option (max staleness).
    :param deprioritized: servers or addresses to avoid unless nothing else is suitable.
    :param custom_selector: a further filter applied before the latency window.
    """
    return latency_window(
        suitable_servers(
            td,
            selector,
            heartbeat_frequency_ms=heartbeat_frequency_ms,
            deprioritized=deprioritized,
            custom_selector=custom_selector,
        ),
        local_threshold_ms,
    )


def choose_in_window(
    candidates: Sequence[S],
    operation_counts: Mapping[Address, int],
    rng: Optional[random.Random] = None,
) -> S:
    """Pick one server from the latency window: two distinct random candidates, keep the
    one with fewer operations in progress (either on a tie).

    :param candidates: the non-empty result of :func:`select_servers`.
    :param operation_counts: operations currently in progress per address (missing = 0).
    :param rng: the random source (``random`` module functions by default).
    """
    if not candidates:
        raise ValueError("no candidates")
    if len(candidates) == 1:
        return candidates[0]
    r = rng if rng is not None else random
    a, b = r.sample(list(candidates), 2)
    ca = operation_counts.get(a.address, 0)
    cb = operation_counts.get(b.address, 0)
    if ca < cb:
        return a
    if cb < ca:
        return b
    return a if r.random() < 0.5 else b
