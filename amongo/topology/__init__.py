"""Topology: pure descriptions, SDAM rules and server selection (plus, separately, the I/O side).

The pure layer is importable from here; the I/O modules (``topology.py``, ``monitor.py``)
are imported explicitly by their users, so importing this package never imports asyncio.
"""
from __future__ import annotations

from amongo.topology.description import (
    MAX_SUPPORTED_WIRE_VERSION,
    MIN_SUPPORTED_WIRE_VERSION,
    Address,
    ServerDescription,
    ServerType,
    TopologyDescription,
    TopologyType,
    moving_average_rtt,
    parse_address,
)
from amongo.topology.sdam import (
    ErrorDecision,
    ErrorKind,
    ErrorPhase,
    error_handling_decision,
    initial_topology_description,
    topology_events,
    updated_topology_description,
)
from amongo.topology.selection import WRITABLE, choose_in_window, select_servers

__all__ = [
    "MAX_SUPPORTED_WIRE_VERSION",
    "MIN_SUPPORTED_WIRE_VERSION",
    "Address",
    "ServerDescription",
    "ServerType",
    "TopologyDescription",
    "TopologyType",
    "moving_average_rtt",
    "parse_address",
    "ErrorDecision",
    "ErrorKind",
    "ErrorPhase",
    "error_handling_decision",
    "initial_topology_description",
    "topology_events",
    "updated_topology_description",
    "WRITABLE",
    "choose_in_window",
    "select_servers",
]
