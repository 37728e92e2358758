"""The SDAM vocabulary shared by descriptions and selection (pure; no asyncio).

:class:`ServerType`, :class:`TopologyType` and :data:`Address` sit below both
:mod:`amongo.topology.description` (the frozen descriptions) and
:mod:`amongo.topology.selection` (the algorithm), so selection reads descriptions through the
small :class:`ServerView` / :class:`TopologyView` protocols and never imports the module that
defines them. :mod:`amongo.topology.description` re-exports every name here.
"""
from __future__ import annotations

import enum
from typing import Mapping, Optional, Protocol, Tuple, TypeVar

__all__ = ["Address", "ServerType", "TopologyType", "ServerView", "TopologyView"]

Address = Tuple[str, int]


class ServerType(enum.IntEnum):
    """The SDAM server types (numbered like PyMongo's ``SERVER_TYPE``)."""

    Unknown = 0
    Standalone = 1
    Mongos = 2
    PossiblePrimary = 3
    RSPrimary = 4
    RSSecondary = 5
    RSArbiter = 6
    RSOther = 7
    RSGhost = 8
    LoadBalancer = 9


class TopologyType(enum.IntEnum):
    """The SDAM topology types (numbered like PyMongo's ``TOPOLOGY_TYPE``)."""

    Single = 0
    ReplicaSetNoPrimary = 1
    ReplicaSetWithPrimary = 2
    Sharded = 3
    Unknown = 4
    LoadBalanced = 5


class ServerView(Protocol):
    """What server selection reads of a server description."""

    @property
    def address(self) -> Address:
        """The server's (host, port)."""
    @property
    def server_type(self) -> ServerType:
        """The server's type (ServerType)."""
    @property
    def is_server_type_known(self) -> bool:
        """Whether the type is known (not Unknown)."""
    @property
    def tags(self) -> Mapping[str, str]:
        """The replica-set member's tags."""
    @property
    def last_write_date(self) -> Optional[float]:
        """The server's lastWrite.lastWriteDate, in seconds (max staleness)."""
    @property
    def last_update_time(self) -> float:
        """When this description was made (time.monotonic())."""
    @property
    def round_trip_time(self) -> Optional[float]:
        """The average round-trip time, in seconds."""


S_co = TypeVar("S_co", bound=ServerView, covariant=True)


class TopologyView(Protocol[S_co]):
    """What server selection reads of a topology description."""

    @property
    def topology_type(self) -> TopologyType:
        """The topology's type (TopologyType)."""
    @property
    def servers(self) -> Mapping[Address, S_co]:
        """The servers by address."""
    @property
    def primary(self) -> Optional[S_co]:
        """The primary's description, if there is one."""
