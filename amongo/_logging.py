"""Structured log messages (command-logging-and-monitoring spec).

Loggers: ``amongo.command`` (command started/succeeded/failed), ``amongo.topology``,
``amongo.pool``, ``amongo.wire``. Each message is a :class:`LogMessage` whose ``fields`` hold the
spec's structured data and whose ``str()`` is that data as JSON, so plain handlers print one JSON
line and structured handlers read ``record.msg.fields``. Callers check ``isEnabledFor`` first, so
nothing is formatted when nobody listens; documents are rendered as relaxed Extended JSON,
truncated to ``MONGODB_LOG_MAX_DOCUMENT_LENGTH`` (default 1000) characters.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, Mapping

from bson import json_util

COMMAND_LOGGER = logging.getLogger("amongo.command")
TOPOLOGY_LOGGER = logging.getLogger("amongo.topology")
POOL_LOGGER = logging.getLogger("amongo.pool")

_JSON_OPTIONS = json_util.JSONOptions(json_mode=json_util.JSONMode.RELAXED)


def max_document_length() -> int:
    try:
        return int(os.environ.get("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "1000"))
    except ValueError:
        return 1000


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
        self.fields: Dict[str, Any] = fields
        #: ``id()`` of the client that logged (lets a test harness attribute messages)
        self.client_id = client_id

    def __str__(self) -> str:
        return json.dumps(self.fields, default=str)

    __repr__ = __str__


def debug(logger: logging.Logger, client_id: int = 0, **fields: Any) -> None:
    """Emit a DEBUG structured message (callers have checked ``isEnabledFor``)."""
    logger.debug(LogMessage(client_id, **fields))
