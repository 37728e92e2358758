"""Issue 11, defect 6 (I/O side): a client with credentials whose authentication fails at a
fake server on 127.0.0.1 — no event (command, CMAP, SDAM, heartbeat), log record, warning
or exception text holds the password.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Dict, List

import pytest
from pymongo.errors import PyMongoError

from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer, Peer, RecordingListener

SECRET = "Sup3rS3cretPw"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())


def _dump(event: Any) -> str:
    parts = [repr(event)]
    for name in dir(event):
        if name.startswith("_"):
            continue
        try:
            parts.append(repr(getattr(event, name)))
        except Exception:  # noqa: BLE001
            pass
    return " ".join(parts)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"])
async def test_failed_authentication_leaks_no_password(mechanism: str) -> None:
    async def handler(peer: Peer, rid: int, cmd: Dict[str, Any]) -> Any:
        if "saslStart" in cmd or "saslContinue" in cmd or "authenticate" in cmd:
            await peer.reply(rid, {"ok": 0.0, "errmsg": "Authentication failed.", "code": 18, "codeName": "AuthenticationFailed"})
            return None
        return False

    listener = RecordingListener()
    records = Records()
    logger = logging.getLogger()
    old_level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    errors: List[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with FakeServer(handler) as srv:
                host, port = srv.address
                client = AsyncIOMotorClient(
                    f"mongodb://alice:{SECRET}@{host}:{port}/?authMechanism={mechanism}",
                    event_listeners=[listener], serverSelectionTimeoutMS=2000, password=SECRET,
                )
                try:
                    for _ in range(2):
                        with pytest.raises(PyMongoError) as info:
                            await client.admin.command("ping")
                        errors.append(f"{info.value!s} {info.value!r} {getattr(info.value, 'details', '')!r}")
                        cause = info.value.__cause__
                        while cause is not None:
                            errors.append(f"{cause!s} {cause!r}")
                            cause = cause.__cause__
                    errors.append(repr(client.topology_description))
                    errors.append(repr(client.options))
                finally:
                    client.close()
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    assert listener.events, "no events were published"
    texts = [_dump(e) for e in listener.events] + records.texts + errors + [str(w.message) for w in caught]
    leaks = [t for t in texts if SECRET in t]
    assert leaks == []
