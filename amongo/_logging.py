"""Structured log messages (the MongoDB logging specification, as PyMongo 4.20 does it).

One logger per component of the specification:

========================== ================= ================================================
logger                     component         messages
========================== ================= ================================================
``amongo.command``         command           Command started / succeeded / failed
``amongo.serverSelection`` serverSelection   Server selection started / succeeded / failed,
                                             Waiting for suitable server (INFO)
``amongo.connection``      connection        Connection pool created / ready / cleared /
                                             closed, Connection created / ready / closed,
                                             checkout started / failed, checked out / in
``amongo.topology``        topology          Starting / Stopped topology monitoring,
                                             Starting / Stopped server monitoring, Topology
                                             description changed, Server heartbeat started /
                                             succeeded / failed
========================== ================= ================================================

Each message is a :class:`LogMessage` whose ``fields`` hold the specification's structured data
(field names exactly as the specification spells them; absent values are omitted, never
``null``) and whose ``str()`` is that data as one JSON object, so plain handlers print one JSON
line and structured handlers read ``record.msg.fields``.  Callers check
``logger.isEnabledFor(...)`` first, so nothing is built or formatted when nobody listens.
Documents (commands, replies, failures, heartbeat replies) are rendered as relaxed Extended
JSON truncated to ``MONGODB_LOG_MAX_DOCUMENT_LENGTH`` characters (default 1000) followed by
``...``.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from bson import json_util
from pymongo import monitoring as _pm

COMMAND_LOGGER = logging.getLogger("amongo.command")
SERVER_SELECTION_LOGGER = logging.getLogger("amongo.serverSelection")
CONNECTION_LOGGER = logging.getLogger("amongo.connection")
TOPOLOGY_LOGGER = logging.getLogger("amongo.topology")
DEBUG = logging.DEBUG
INFO = logging.INFO

_JSON_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED)
_DEFAULT_DOCUMENT_LENGTH = 1000


def max_document_length() -> int:
    """``MONGODB_LOG_MAX_DOCUMENT_LENGTH`` (an invalid or negative value means the default,
    1000, as the logging specification asks)."""
    try:
        value = int(os.environ.get("MONGODB_LOG_MAX_DOCUMENT_LENGTH", _DEFAULT_DOCUMENT_LENGTH))
    except ValueError:
        return _DEFAULT_DOCUMENT_LENGTH
    return value if value >= 0 else _DEFAULT_DOCUMENT_LENGTH


def document_json(doc: Mapping[str, Any]) -> str:
    """A document as relaxed Extended JSON, truncated per the logging spec."""
    text = json_util.dumps(doc, json_options=_JSON_OPTIONS)
    limit = max_document_length()
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


class LogMessage:
    """One structured log message: ``fields`` is the data, ``str()`` its JSON."""

    __slots__ = ("fields", "client_id")

    def __init__(self, client_id: int = 0, **fields: Any) -> None:
        self.fields: Dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        #: ``id()`` of the client that logged (lets a test harness attribute messages)
        self.client_id = client_id

    def __str__(self) -> str:
        return json.dumps(self.fields, default=str)

    __repr__ = __str__


def debug(logger: logging.Logger, client_id: int = 0, **fields: Any) -> None:
    """Emit a DEBUG structured message (callers have checked ``isEnabledFor``)."""
    logger.debug(LogMessage(client_id, **fields))


def info(logger: logging.Logger, client_id: int = 0, **fields: Any) -> None:
    """Emit an INFO structured message (callers have checked ``isEnabledFor``)."""
    logger.info(LogMessage(client_id, **fields))


# -- connection (CMAP) ----------------------------------------------------------------------

def _ms(seconds: Optional[float]) -> Optional[float]:
    """A CMAP event's duration (seconds; PyMongo types it Optional) in milliseconds."""
    return None if seconds is None else seconds * 1000.0


_VERBOSE_REASONS = {
    "poolClosed": "Connection pool was closed",
    "stale": "Connection pool was stale",
    "error": "An error occurred while using the connection",
    "idle": "Connection was idle too long",
    "connectionError": "An error occurred while trying to establish a new connection",
    "timeout": "Wait queue timeout elapsed without a connection becoming available",
}


class CmapLogListener(_pm.ConnectionPoolListener):
    """Turns one pool's CMAP events into the specification's ``connection`` log messages.

    The pool calls it after its event listeners, and only while ``amongo.connection`` is
    enabled for DEBUG."""

    def __init__(self, client_id: int, address: Tuple[str, int]) -> None:
        self._client_id = client_id
        self._host, self._port = address[0], address[1]

    def _log(self, message: str, **fields: Any) -> None:
        debug(CONNECTION_LOGGER, self._client_id, message=message, serverHost=self._host,
              serverPort=self._port, **fields)

    def pool_created(self, event: _pm.PoolCreatedEvent) -> None:
        """Log ``Connection pool created`` with the pool's non-default options."""
        self._log("Connection pool created", **dict(event.options))

    def pool_ready(self, event: _pm.PoolReadyEvent) -> None:
        """Log ``Connection pool ready``."""
        self._log("Connection pool ready")

    def pool_cleared(self, event: _pm.PoolClearedEvent) -> None:
        """Log ``Connection pool cleared`` (with ``serviceId`` in load-balanced mode)."""
        sid = event.service_id
        self._log("Connection pool cleared", serviceId=None if sid is None else str(sid))

    def pool_closed(self, event: _pm.PoolClosedEvent) -> None:
        """Log ``Connection pool closed``."""
        self._log("Connection pool closed")

    def connection_created(self, event: _pm.ConnectionCreatedEvent) -> None:
        """Log ``Connection created``."""
        self._log("Connection created", driverConnectionId=event.connection_id)

    def connection_ready(self, event: _pm.ConnectionReadyEvent) -> None:
        """Log ``Connection ready`` with the time it took (``durationMS``)."""
        self._log("Connection ready", driverConnectionId=event.connection_id,
                  durationMS=_ms(event.duration))

    def connection_closed(self, event: _pm.ConnectionClosedEvent) -> None:
        """Log ``Connection closed`` with the specification's wording of the reason."""
        reason = event.reason
        self._log("Connection closed", driverConnectionId=event.connection_id,
                  reason=_VERBOSE_REASONS.get(reason, reason),
                  error=reason if reason == "error" else None)

    def connection_check_out_started(self, event: _pm.ConnectionCheckOutStartedEvent) -> None:
        """Log ``Connection checkout started``."""
        self._log("Connection checkout started")

    def connection_check_out_failed(self, event: _pm.ConnectionCheckOutFailedEvent) -> None:
        """Log ``Connection checkout failed`` with the reason and the time waited."""
        reason = event.reason
        self._log("Connection checkout failed", reason=_VERBOSE_REASONS.get(reason, reason),
                  error=reason, durationMS=_ms(event.duration))

    def connection_checked_out(self, event: _pm.ConnectionCheckedOutEvent) -> None:
        """Log ``Connection checked out`` with the time waited."""
        self._log("Connection checked out", driverConnectionId=event.connection_id,
                  durationMS=_ms(event.duration))

    def connection_checked_in(self, event: _pm.ConnectionCheckedInEvent) -> None:
        """Log ``Connection checked in``."""
        self._log("Connection checked in", driverConnectionId=event.connection_id)


# -- topology (SDAM) ------------------------------------------------------------------------

def log_sdam_events(client_id: int, events: Iterable[Any]) -> None:
    """The ``topology`` log messages for a list of SDAM events (the topology's publishing
    order); ServerDescriptionChanged has no message in the specification."""
    for event in events:
        name = type(event).__name__
        tid = event.topology_id
        if name == "TopologyOpenedEvent":
            debug(TOPOLOGY_LOGGER, client_id, message="Starting topology monitoring", topologyId=tid)
        elif name == "TopologyClosedEvent":
            debug(TOPOLOGY_LOGGER, client_id, message="Stopped topology monitoring", topologyId=tid)
        elif name == "TopologyDescriptionChangedEvent":
            debug(TOPOLOGY_LOGGER, client_id, message="Topology description changed", topologyId=tid,
                  previousDescription=repr(event.previous_description),
                  newDescription=repr(event.new_description))
        elif name == "ServerOpeningEvent":
            debug(TOPOLOGY_LOGGER, client_id, message="Starting server monitoring", topologyId=tid,
                  serverHost=event.server_address[0], serverPort=event.server_address[1])
        elif name == "ServerClosedEvent":
            debug(TOPOLOGY_LOGGER, client_id, message="Stopped server monitoring", topologyId=tid,
                  serverHost=event.server_address[0], serverPort=event.server_address[1])


def log_heartbeat(
    client_id: int,
    topology_id: Any,
    address: Tuple[str, int],
    message: str,
    awaited: bool,
    conn: Any,
    **fields: Any,
) -> None:
    """A ``Server heartbeat started/succeeded/failed`` message (*conn*: the monitoring
    connection, or None when it could not be opened)."""
    debug(
        TOPOLOGY_LOGGER, client_id, message=message, topologyId=topology_id,
        serverHost=address[0], serverPort=address[1], awaited=awaited,
        driverConnectionId=None if conn is None else conn.id,
        serverConnectionId=None if conn is None else conn.server_connection_id,
        **fields,
    )


# -- serverSelection ------------------------------------------------------------------------

def selector_text(read_preference: Any, address: Optional[Tuple[str, int]]) -> str:
    """How a selection's selector appears in ``selector``."""
    if address is not None:
        return f"server at {address[0]}:{address[1]}"
    if read_preference is None:
        return "writable server"
    return repr(read_preference)
