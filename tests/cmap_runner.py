"""The cmap-format spec-test runner (connection-monitoring-and-pooling/cmap-format), shared by
``tests/unit/test_cmap_spec.py`` (every ``"style": "unit"`` file, with a fake connection
factory: no sockets, no server) and ``tests/integration/test_cmap_integration.py`` (every
``"style": "integration"`` file, against a live server with ``failCommand``).

The runner follows the cmap-format README: the "threads" are asyncio tasks, each running its
operations in order; ``waitForEvent`` counts every event (the ``ignore`` list applies only to
the final comparison); values ``42`` / ``"42"`` in an expected event match anything present.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

from pymongo import monitoring
from pymongo.errors import WaitQueueTimeoutError

from amongo.monitoring import EventListeners
from amongo.pool import Pool, PoolClearedError, PoolClosedError, PoolOptions
from tests._specs import load, spec_files

SPEC_PARTS = ("connection-monitoring-and-pooling", "cmap-format")


def files_by_style() -> Dict[str, List[Path]]:
    out: Dict[str, List[Path]] = {"unit": [], "integration": []}
    for path in spec_files(*SPEC_PARTS):
        data = load(path)
        out.setdefault(data.get("style", "unit"), []).append(path)
    return out


FILES = files_by_style()

EVENT_TYPES = {
    monitoring.PoolCreatedEvent: "ConnectionPoolCreated",
    monitoring.PoolReadyEvent: "ConnectionPoolReady",
    monitoring.PoolClearedEvent: "ConnectionPoolCleared",
    monitoring.PoolClosedEvent: "ConnectionPoolClosed",
    monitoring.ConnectionCreatedEvent: "ConnectionCreated",
    monitoring.ConnectionReadyEvent: "ConnectionReady",
    monitoring.ConnectionClosedEvent: "ConnectionClosed",
    monitoring.ConnectionCheckOutStartedEvent: "ConnectionCheckOutStarted",
    monitoring.ConnectionCheckOutFailedEvent: "ConnectionCheckOutFailed",
    monitoring.ConnectionCheckedOutEvent: "ConnectionCheckedOut",
    monitoring.ConnectionCheckedInEvent: "ConnectionCheckedIn",
}

EVENT_FIELDS = {
    "address": "address",
    "connectionId": "connection_id",
    "duration": "duration",
    "options": "options",
    "reason": "reason",
    "interruptInUseConnections": "interrupt_connections",
    "serviceId": "service_id",
}

ERROR_TYPES = {
    "WaitQueueTimeoutError": WaitQueueTimeoutError,
    "PoolClosedError": PoolClosedError,
    "PoolClearedError": PoolClearedError,
}

OPTION_NAMES = {
    "maxPoolSize": "max_pool_size",
    "minPoolSize": "min_pool_size",
    "maxIdleTimeMS": "max_idle_time_ms",
    "maxConnecting": "max_connecting",
    "waitQueueTimeoutMS": "wait_queue_timeout_ms",
}
# Test-only or irrelevant without a server: we have no periodic background run.
IGNORED_OPTIONS = {"backgroundThreadIntervalMS", "appName"}

ADDRESS = ("localhost", 27017)


class FakeConnection:
    """Just what the pool uses of a connection."""

    __slots__ = ("id", "address", "generation", "service_id", "closed", "pending_reply", "last_checkin")

    def __init__(self, conn_id: int, generation: int) -> None:
        self.id = conn_id
        self.address = ADDRESS
        self.generation = generation
        self.service_id = None
        self.closed = False
        self.pending_reply = False
        self.last_checkin = 0.0

    def close(self) -> None:
        self.closed = True

    async def drain(self) -> None:
        self.pending_reply = False


async def fake_connect(generation: int, conn_id: int) -> FakeConnection:
    await asyncio.sleep(0)
    return FakeConnection(conn_id, generation)


class Recorder(monitoring.ConnectionPoolListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def _add(self, event: Any) -> None:
        self.events.append(event)

    pool_created = pool_ready = pool_cleared = pool_closed = _add
    connection_created = connection_ready = connection_closed = _add
    connection_check_out_started = connection_check_out_failed = _add
    connection_checked_out = connection_checked_in = _add

    def count(self, type_name: str) -> int:
        return sum(1 for e in self.events if EVENT_TYPES[type(e)] == type_name)


def matches(expected: Any, actual: Any, path: str = "") -> None:
    """Assert *actual* MATCHES *expected* (cmap-format README)."""
    if expected == 42 or expected == "42":
        assert actual is not None, f"{path}: expected a value, got None"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected a document, got {actual!r}"
        for k, v in expected.items():
            assert k in actual, f"{path}.{k}: missing in {actual!r}"
            matches(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, (list, tuple)), f"{path}: expected an array, got {actual!r}"
        for i, v in enumerate(expected):
            assert i < len(actual), f"{path}[{i}]: missing"
            matches(v, actual[i], f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def event_matches(expected: Dict[str, Any], event: Any, idx: int) -> None:
    actual_type = EVENT_TYPES[type(event)]
    assert actual_type == expected["type"], f"event {idx}: expected {expected['type']}, got {event!r}"
    for key, value in expected.items():
        if key == "type":
            continue
        attr = EVENT_FIELDS[key]
        assert hasattr(event, attr), f"event {idx} ({actual_type}) has no {attr}"
        matches(value, getattr(event, attr), f"event {idx}.{key}")


class Thread:
    """A named runner "thread": an asyncio task running queued operations in order."""

    def __init__(self, runner: "Runner", name: str) -> None:
        self.runner = runner
        self.name = name
        self.queue: "asyncio.Queue[Optional[Dict[str, Any]]]" = asyncio.Queue()
        self.error: Optional[BaseException] = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            op = await self.queue.get()
            if op is None:
                return
            if self.error is not None:
                continue
            try:
                await self.runner.run_op(op)
            except Exception as exc:  # recorded; re-raised by waitForThread
                self.error = exc


class Runner:
    """Runs one cmap-format test against a pool built with *connect* (the fake factory
    by default; tests/integration passes a real ``connect(generation, conn_id)`` honouring
    ``poolOptions.appName``, and SDAM's handler as *populate_error_handler*)."""

    def __init__(
        self,
        test: Dict[str, Any],
        connect: Any = None,
        address: Any = ADDRESS,
        populate_error_handler: Any = None,
    ) -> None:
        self.test = test
        self.recorder = Recorder()
        kwargs: Dict[str, Any] = {}
        for name, value in (test.get("poolOptions") or {}).items():
            if name in IGNORED_OPTIONS:
                continue
            kwargs[OPTION_NAMES[name]] = value
        self.pool = Pool(
            address,
            PoolOptions(**kwargs),
            connect or fake_connect,
            EventListeners([self.recorder]),
            paused=True,
            populate_error_handler=populate_error_handler,
        )
        self.threads: Dict[str, Thread] = {}
        self.labels: Dict[str, Any] = {}
        self.orphans: List[Any] = []

    async def run_op(self, op: Dict[str, Any]) -> None:
        name = op["name"]
        if name == "checkOut":
            conn = await self.pool.checkout()
            if op.get("label"):
                self.labels[op["label"]] = conn
            else:
                self.orphans.append(conn)
        elif name == "checkIn":
            self.pool.checkin(self.labels[op["connection"]])
        elif name == "clear":
            self.pool.clear(interrupt_connections=bool(op.get("interruptInUseConnections", False)))
        elif name == "close":
            await self.pool.close()
        elif name == "ready":
            self.pool.ready()
        elif name == "wait":
            await asyncio.sleep(op["ms"] / 1000.0)
        elif name == "waitForEvent":
            timeout = op.get("timeout", 10000) / 1000.0
            deadline = asyncio.get_running_loop().time() + timeout
            while self.recorder.count(op["event"]) < op["count"]:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(
                        f"timed out waiting for {op['count']} {op['event']} events; got "
                        f"{self.recorder.events!r}"
                    )
                await asyncio.sleep(0.001)
        else:
            raise AssertionError(f"unknown operation {name!r}")

    async def run_main_op(self, op: Dict[str, Any]) -> None:
        name = op["name"]
        if name == "start":
            self.threads[op["target"]] = Thread(self, op["target"])
        elif name == "waitForThread":
            thread = self.threads[op["target"]]
            thread.queue.put_nowait(None)
            await asyncio.wait_for(thread.task, 10)
            if thread.error is not None:
                raise thread.error
        elif op.get("thread"):
            self.threads[op["thread"]].queue.put_nowait(op)
        else:
            await self.run_op(op)

    async def run(self) -> None:
        test = self.test
        error: Optional[BaseException] = None
        try:
            for op in test["operations"]:
                try:
                    await self.run_main_op(op)
                except AssertionError:
                    raise
                except Exception as exc:
                    error = exc
                    break
            # Let events triggered by the last operation be published.
            await asyncio.sleep(0)
            expected_error = test.get("error")
            if expected_error:
                assert error is not None, f"expected error {expected_error!r}"
                assert isinstance(error, ERROR_TYPES[expected_error["type"]]), repr(error)
                if "message" in expected_error:
                    assert expected_error["message"] in str(error), str(error)
            elif error is not None:
                raise error
            ignore = set(test.get("ignore", ()))
            actual = [e for e in self.recorder.events if EVENT_TYPES[type(e)] not in ignore]
            for idx, expected in enumerate(test.get("events", ())):
                assert idx < len(actual), (
                    f"missing event {idx} {expected!r}; actual events: {actual!r}"
                )
                event_matches(expected, actual[idx], idx)
        finally:
            for thread in self.threads.values():
                thread.task.cancel()
            await asyncio.gather(*(t.task for t in self.threads.values()), return_exceptions=True)
            await self.pool.close()
            # Connections still checked out (the pool closes them only at check-in).
            for conn in [*self.labels.values(), *self.orphans]:
                conn.close()
