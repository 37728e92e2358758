"""Structured log messages of the serverSelection, connection and topology components
(``amongo.serverSelection``, ``amongo.connection``, ``amongo.topology``; the logging
specification as PyMongo 4.20 implements it), and that nothing is built when they are off."""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from amongo import _logging
from amongo.motor_asyncio import AsyncIOMotorClient

from .test_command_logging import _Capture as _CommandCapture

_NAMES = ("amongo.serverSelection", "amongo.connection", "amongo.topology")


class _Capture(_CommandCapture):
    def of(self, logger: str, client: Any = None) -> List[Dict[str, Any]]:
        return [
            r.msg.fields for r in self.records
            if r.name == logger and (client is None or r.msg.client_id == id(client))
        ]


@pytest.fixture
def capture() -> Iterator[_Capture]:
    handler = _Capture()
    saved = []
    for name in _NAMES:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


async def test_lifecycle_messages(server, capture) -> None:
    client = AsyncIOMotorClient(server.uri)
    try:
        await client["logging-tests"].things.insert_one({"x": 1})
        await client["logging-tests"].things.find_one({})
    finally:
        client.close()

    sel = capture.of("amongo.serverSelection", client)
    inserts = [m for m in sel if m["operation"] == "insert"]
    assert [m["message"] for m in inserts][0] == "Server selection started"
    assert inserts[-1]["message"] == "Server selection succeeded"
    assert inserts[-1]["serverHost"] == server.host and inserts[-1]["serverPort"] == server.port
    assert len({m["operationId"] for m in inserts}) == 1
    assert all("topologyDescription" in m and "selector" in m for m in sel)
    assert [m["operation"] for m in sel if m["message"] == "Server selection succeeded"][-1] == "find"

    conn = [m["message"] for m in capture.of("amongo.connection", client)]
    assert conn[:2] == ["Connection pool created", "Connection pool ready"]
    for expected in ("Connection checkout started", "Connection created", "Connection ready",
                     "Connection checked out", "Connection checked in"):
        assert expected in conn
    assert conn[-2:] == ["Connection closed", "Connection pool closed"]
    closed = [m for m in capture.of("amongo.connection", client) if m["message"] == "Connection closed"][-1]
    assert closed["reason"] == "Connection pool was closed" and isinstance(closed["driverConnectionId"], int)
    ready = [m for m in capture.of("amongo.connection", client) if m["message"] == "Connection ready"][0]
    assert ready["durationMS"] >= 0 and ready["serverPort"] == server.port

    topo = capture.of("amongo.topology", client)
    names = [m["message"] for m in topo]
    assert names[0] == "Starting topology monitoring"
    assert "Starting server monitoring" in names and "Topology description changed" in names
    assert names[-1] == "Stopped topology monitoring" and "Stopped server monitoring" in names
    assert len({str(m["topologyId"]) for m in topo}) == 1
    beats = [m for m in topo if m["message"] == "Server heartbeat succeeded"]
    assert beats and '"ok"' in beats[0]["reply"]
    assert beats[0]["durationMS"] >= 0 and "awaited" in beats[0] and "driverConnectionId" in beats[0]
    # messages are JSON when printed by a plain handler
    assert json.loads(str(capture.records[0].msg))["message"]


async def test_selection_failure_messages(capture) -> None:
    # Nothing listens on port 1: selection waits (INFO message) then fails.
    client = AsyncIOMotorClient("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=200")
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            await client.db.coll.find_one({})
    finally:
        client.close()
    waiting = [r for r in capture.records
               if r.name == "amongo.serverSelection" and r.msg.fields["message"].startswith("Waiting")]
    assert len(waiting) == 1 and waiting[0].levelno == logging.INFO
    assert 0 < waiting[0].msg.fields["remainingTimeMS"] <= 300
    sel = capture.of("amongo.serverSelection", client)
    assert [m["message"] for m in sel] == [
        "Server selection started", "Waiting for suitable server to become available", "Server selection failed"
    ]
    assert "ServerSelectionTimeoutError" in sel[-1]["failure"] and sel[-1]["operation"] == "find"
    failed = [m for m in capture.of("amongo.topology", client) if m["message"] == "Server heartbeat failed"]
    assert failed and failed[0]["durationMS"] >= 0 and "failure" in failed[0]
    assert "driverConnectionId" not in failed[0]  # the connection was never opened: field omitted


async def test_nothing_built_when_disabled(server, monkeypatch) -> None:
    built: List[Any] = []
    real = _logging.LogMessage.__init__

    def spy(self: Any, *a: Any, **k: Any) -> None:
        built.append(k.get("message"))
        real(self, *a, **k)

    monkeypatch.setattr(_logging.LogMessage, "__init__", spy)
    for name in (*_NAMES, "amongo.command"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
    client = AsyncIOMotorClient(server.uri)
    try:
        await client["logging-tests"].things.find_one({})
    finally:
        client.close()
    assert built == []


def test_max_document_length(monkeypatch) -> None:
    doc = {"k": "x" * 50}
    monkeypatch.setenv("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "20")
    text = _logging.document_json(doc)
    assert text == json.dumps(doc)[:20] + "..."
    monkeypatch.setenv("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "-5")  # invalid: the default (1000)
    assert _logging.document_json(doc) == json.dumps(doc)
    monkeypatch.setenv("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "junk")
    assert _logging.max_document_length() == 1000


def test_absent_fields_are_omitted() -> None:
    msg = _logging.LogMessage(0, message="Connection pool cleared", serviceId=None, serverPort=1)
    assert msg.fields == {"message": "Connection pool cleared", "serverPort": 1}
    assert json.loads(str(msg)) == msg.fields
