"""Structured command log messages on the ``amongo.command`` logger
(command-logging-and-monitoring spec): fields, redaction, truncation, and no handshake noise."""
from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Dict, Iterator, List

import pytest
from pymongo.errors import OperationFailure

from amongo.motor_asyncio import AsyncIOMotorClient


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> List[Dict[str, Any]]:
        return [r.msg.fields for r in self.records]


@contextlib.contextmanager
def command_log() -> Iterator[_Capture]:
    """The ``amongo.command`` log records (at DEBUG) within the block."""
    logger = logging.getLogger("amongo.command")
    handler = _Capture()
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture
def capture():
    with command_log() as handler:
        yield handler


async def test_started_and_succeeded_fields(server, capture) -> None:
    client = AsyncIOMotorClient(server.uri)
    try:
        await client["logging-tests"].command("ping")
    finally:
        client.close()
    msgs = [m for m in capture.messages() if m["commandName"] == "ping"]
    assert [m["message"] for m in msgs] == ["Command started", "Command succeeded"]
    started, succeeded = msgs
    cmd = json.loads(started["command"])
    assert cmd["ping"] == 1 and cmd["$db"] == "logging-tests"
    for m in msgs:
        assert m["databaseName"] == "logging-tests"
        assert isinstance(m["requestId"], int) and isinstance(m["serverPort"], int)
        assert isinstance(m["serverHost"], str) and isinstance(m["driverConnectionId"], int)
    assert started["requestId"] == succeeded["requestId"]
    assert json.loads(succeeded["reply"])["ok"] == 1
    assert succeeded["durationMS"] >= 0
    # the handshake and monitoring hellos are never logged as commands
    assert not any(m["commandName"] in ("hello", "isMaster", "ismaster") for m in capture.messages())
    # str() of a record is its JSON (plain handlers print one line)
    assert json.loads(str(capture.records[0].msg))["message"] == "Command started"


async def test_failed_command(secantus_rs, capture) -> None:
    # (SecantusDB only: nx-27017 answers unknown commands with ok:1, so nothing fails there)
    client = AsyncIOMotorClient(secantus_rs.uri)
    try:
        with pytest.raises(OperationFailure):
            await client.admin.command({"amongoNoSuchCommand": 1})
    finally:
        client.close()
    failed = [m for m in capture.messages() if m["message"] == "Command failed"]
    assert failed and failed[-1]["commandName"] == "amongoNoSuchCommand"
    assert "failure" in failed[-1] and failed[-1]["durationMS"] >= 0


async def test_sensitive_commands_are_redacted(secantus_rs, capture) -> None:
    client = AsyncIOMotorClient(secantus_rs.uri)
    try:
        try:
            await client.admin.command({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": b"x"})
        except OperationFailure:
            pass
    finally:
        client.close()
    msgs = [m for m in capture.messages() if m["commandName"] == "saslStart"]
    assert msgs and msgs[0]["command"] == "{}"
    assert all(m.get("reply", "{}") == "{}" for m in msgs if m["message"] == "Command succeeded")


async def test_long_documents_are_truncated(server, capture, monkeypatch) -> None:
    monkeypatch.setenv("MONGODB_LOG_MAX_DOCUMENT_LENGTH", "50")
    client = AsyncIOMotorClient(server.uri)
    try:
        await client.amongo_test.logging.insert_one({"big": "x" * 500})
    finally:
        client.close()
    started = [m for m in capture.messages() if m["commandName"] == "insert" and m["message"] == "Command started"]
    assert started and len(started[0]["command"]) == 50 + 3 and started[0]["command"].endswith("...")


async def test_nothing_formatted_when_disabled(server) -> None:
    logger = logging.getLogger("amongo.command")
    assert not logger.isEnabledFor(logging.DEBUG)
    client = AsyncIOMotorClient(server.uri)
    try:
        assert (await client.admin.command("ping"))["ok"] == 1
    finally:
        client.close()
