"""Event listener registry.

Listeners are pymongo's own base classes (:mod:`pymongo.monitoring`): users pass the same
objects to amongo as to PyMongo/Motor through ``event_listeners=[...]`` or
:func:`pymongo.monitoring.register`. Each layer publishes its own events, using pymongo's
event value classes, through the lists held here; a list is empty (and the flag False) when
nobody listens, so the hot path costs one attribute test.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Sequence

from pymongo import monitoring as _pm

__all__ = ["EventListeners"]


class EventListeners:
    """The listeners of one client, split by kind (mirrors the role of PyMongo's private
    ``_EventListeners``; written here because publishing is driver machinery)."""

    __slots__ = (
        "command",
        "server",
        "heartbeat",
        "topology",
        "cmap",
        "enabled_for_commands",
        "enabled_for_server",
        "enabled_for_server_heartbeat",
        "enabled_for_topology",
        "enabled_for_cmap",
        "all",
    )

    def __init__(self, listeners: Optional[Iterable[Any]] = None) -> None:
        combined: List[Any] = []
        g = _pm._LISTENERS  # listeners added with pymongo.monitoring.register()
        for lst in (
            g.command_listeners,
            g.server_listeners,
            g.server_heartbeat_listeners,
            g.topology_listeners,
            g.cmap_listeners,
        ):
            for l in lst:
                if l not in combined:
                    combined.append(l)
        for l in listeners or ():
            if not isinstance(l, _pm._EventListener):
                raise TypeError(
                    f"Listeners for {l!r} must be either a CommandListener, ServerHeartbeatListener, "
                    "ServerListener, TopologyListener, or ConnectionPoolListener."
                )
            if l not in combined:
                combined.append(l)
        self.all: Sequence[Any] = tuple(combined)
        self.command = [l for l in combined if isinstance(l, _pm.CommandListener)]
        self.server = [l for l in combined if isinstance(l, _pm.ServerListener)]
        self.heartbeat = [l for l in combined if isinstance(l, _pm.ServerHeartbeatListener)]
        self.topology = [l for l in combined if isinstance(l, _pm.TopologyListener)]
        self.cmap = [l for l in combined if isinstance(l, _pm.ConnectionPoolListener)]
        self.enabled_for_commands = bool(self.command)
        self.enabled_for_server = bool(self.server)
        self.enabled_for_server_heartbeat = bool(self.heartbeat)
        self.enabled_for_topology = bool(self.topology)
        self.enabled_for_cmap = bool(self.cmap)

    @staticmethod
    def publish(listeners: Sequence[Any], method: str, event: Any) -> None:
        """Call ``listener.<method>(event)`` on each listener; a listener's exception is
        swallowed (as PyMongo does), never breaking the operation."""
        for l in listeners:
            try:
                getattr(l, method)(event)
            except Exception:  # noqa: BLE001 - listener errors must not break the driver
                pass
