"""What the engine needs from a client, owned by one object (issue 12).

:class:`ClientCore` holds the topology, the event listeners, the retry/timeout/API settings,
the cluster clock, the server-session pool and the client's default concerns (for
transactions), and makes implicit sessions. The executor and sessions read it; they never
see the facade client, which they only hand back as an opaque ``owner`` (``session.client``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from amongo.engine.clock import ts_newer
from amongo.engine.executor import Executor
from amongo.engine.session import IMPLICIT_OPTIONS, ClientSession, ServerSessionPool, SessionOptions
from amongo.handshake import server_api_fields
from amongo.monitoring import EventListeners
from amongo.topology.topology import Topology



def server_api_document(api: Any) -> Optional[Dict[str, Any]]:
    """The fields every command declares for a ``ServerApi`` (versioned-api spec), or None
    (:func:`amongo.handshake.server_api_fields`, which the handshake uses too)."""
    return server_api_fields(api) if api is not None else None


def _no_write_caps() -> None:
    return None


class ClientCore:
    """The engine's view of one client (internal; no Motor equivalent)."""

    __slots__ = (
        "owner", "topology", "listeners", "retry_writes", "retry_reads", "timeout",
        "server_api", "server_api_doc", "cluster_time", "session_pool", "read_concern",
        "write_concern", "read_preference", "max_adaptive_retries", "tracing", "write_caps", "executor", "__weakref__",
    )

    def __init__(
        self,
        owner: Any,
        topology: Topology,
        listeners: EventListeners,
        *,
        retry_writes: bool = True,
        retry_reads: bool = True,
        timeout: Optional[float] = None,
        server_api: Any = None,
        read_concern: Optional[ReadConcern] = None,
        write_concern: Optional[WriteConcern] = None,
        read_preference: Any = None,
        max_adaptive_retries: Optional[int] = None,
        tracing: Any = None,
    ) -> None:
        #: the facade object sessions report as ``session.client`` (never called by the engine
        #: except ``get_io_loop``)
        self.owner = owner
        self.topology = topology
        self.listeners = listeners
        self.retry_writes = retry_writes
        self.retry_reads = retry_reads
        self.timeout = timeout
        self.server_api = server_api
        self.server_api_doc = server_api_document(server_api)
        #: the highest ``$clusterTime`` seen (the client's cluster clock)
        self.cluster_time: Optional[Mapping[str, Any]] = None
        self.session_pool = ServerSessionPool()
        self.read_concern = read_concern if read_concern is not None else ReadConcern()
        self.write_concern = write_concern if write_concern is not None else WriteConcern()
        self.read_preference = read_preference
        #: ``maxAdaptiveRetries`` (client-backpressure spec; None: the default)
        self.max_adaptive_retries = max_adaptive_retries
        #: the OpenTelemetry hook (:mod:`amongo.tracing`), None unless enabled
        self.tracing = tracing
        #: caps on the limits bulk writes split by, ``(max_bson_size, max_message_size,
        #: max_write_batch_size)``, or None (the default): each batch is cut by its
        #: checked-out connection's own limits alone. A client whose class overrides its
        #: ``max_*`` properties installs its own callable.
        self.write_caps: Callable[[], Optional[Tuple[int, int, int]]] = _no_write_caps
        #: the one executor every command of this client goes through
        self.executor = Executor(self)

    def advance_cluster_time(self, ct: Mapping[str, Any]) -> None:
        """Gossip a reply's ``$clusterTime`` into the client's clock."""
        cur = self.cluster_time
        if cur is None or ts_newer(ct["clusterTime"], cur["clusterTime"]):
            self.cluster_time = ct

    def session_timeout_minutes(self) -> Optional[int]:
        """The deployment's logicalSessionTimeoutMinutes (None: unknown or unsupported)."""
        return self.topology.description.logical_session_timeout_minutes

    def implicit_session(self) -> ClientSession:
        """A new implicit session (its server session is taken from the pool when used)."""
        return ClientSession(self, None, IMPLICIT_OPTIONS, implicit=True)

    def explicit_session(self, options: SessionOptions, cls: Any = ClientSession) -> ClientSession:
        """A new explicit session (``start_session``), of the class the API hands out
        (the Motor-style ``ClientSession`` or the PyMongo-style ``AsyncClientSession``)."""
        return cls(self, None, options, implicit=False)  # type: ignore[no-any-return]

