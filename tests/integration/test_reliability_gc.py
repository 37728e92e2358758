"""Defect 5 of issue 11: an unclosed client that is garbage-collected warns
(ResourceWarning, as PyMongo) and stops its monitors and closes its sockets; its monitor
tasks do not keep it alive. A fake server on 127.0.0.1 sees the connections close.
"""
from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any, List

import pytest

from amongo.client import MongoClient
from amongo.motor_asyncio import AsyncIOMotorClient

from ._rel_server import FakeServer


def _monitor_tasks() -> List["asyncio.Task[Any]"]:
    return [
        t for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "").startswith("Monitor.")
    ]


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        gc.collect()
        await asyncio.sleep(0.02)


async def test_unclosed_client_warns_and_stops_its_monitors_and_sockets() -> None:
    async with FakeServer() as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000, heartbeatFrequencyMS=200)
        assert (await client.admin.command("ping"))["ok"] == 1.0
        assert _monitor_tasks()
        topology_ref = weakref.ref(client._topology)
        client_ref = weakref.ref(client)
        assert len(srv.peers) >= 2  # the monitor's connection and a pooled one
        with pytest.warns(ResourceWarning, match="Unclosed AsyncIOMotorClient"):
            del client
            gc.collect()
        assert client_ref() is None  # the monitors did not keep it alive
        await _until(lambda: not _monitor_tasks())
        await _until(lambda: all(p.closed for p in srv.peers))
        await _until(lambda: topology_ref() is None)
        # and nothing connects again
        n = len(srv.peers)
        await asyncio.sleep(0.5)
        assert len(srv.peers) == n


async def test_closed_client_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    async with FakeServer() as srv:
        client = AsyncIOMotorClient(srv.uri, serverSelectionTimeoutMS=3000)
        await client.admin.command("ping")
        client.close()
        del client
        gc.collect()
        assert not [w for w in recwarn if issubclass(w.category, ResourceWarning) and "Unclosed" in str(w.message)]


def test_never_opened_client_does_not_warn(recwarn: pytest.WarningsRecorder) -> None:
    client = MongoClient("mongodb://127.0.0.1:1/", connect=False)
    del client
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning) and "Unclosed" in str(w.message)]


def test_srv_txt_hook_does_not_keep_the_client_alive() -> None:
    client = MongoClient("mongodb+srv://user:pw@test.example.com/", connect=False)
    hook = client._topology.srv_txt_hook
    assert hook is not None
    ref = weakref.ref(client)
    del client
    gc.collect()
    assert ref() is None
    assert hook({"authSource": "x"}) is None
