"""Unified-format runner operations beyond CRUD: ``thread`` entities (``runOnThread``,
``waitForThread``), ``wait``, topology descriptions (``recordTopologyDescription``,
``assertTopologyType``, ``waitForPrimaryChange``) and CSOT (operation ``timeoutMS``, session
``defaultTimeoutMS``, mapped onto ``pymongo.timeout()``).

Kept apart from ``runner.py`` (a mixin of :class:`~.runner.UnifiedRunner`). The runner and
the driver share one event loop, so a "thread" is a chain of asyncio tasks: its operations run
in order, concurrently with the test's main operations.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, List, Optional

import pymongo

#: How long waitForThread / waitForPrimaryChange wait by default (unified format: 10 s).
WAIT_TIMEOUT = 10.0


class ThreadEntity:
    """A unified-format ``thread``: operations run one after another in a task chain."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last: Optional["asyncio.Task[None]"] = None
        self.errors: List[BaseException] = []

    def schedule(self, coro_factory: Any) -> None:
        previous = self.last

        async def step() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await coro_factory()
            except BaseException as exc:  # noqa: BLE001 - reported by waitForThread
                self.errors.append(exc)

        self.last = asyncio.get_running_loop().create_task(step())

    async def join(self, timeout: float = WAIT_TIMEOUT) -> None:
        if self.last is not None:
            done, _ = await asyncio.wait({self.last}, timeout=timeout)
            if not done:
                raise AssertionError(f"thread {self.name} did not finish within {timeout} s")
        if self.errors:
            raise self.errors[0]

    def cancel(self) -> None:
        if self.last is not None and not self.last.done():
            self.last.cancel()


class ExtraOperations:
    """Mixin for :class:`~.runner.UnifiedRunner` (which provides ``entities``,
    ``run_operation`` and ``session_timeouts``)."""

    entities: Dict[str, Any]
    session_timeouts: Dict[int, float]

    async def run_operation(self, op: Dict[str, Any]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- threads ---------------------------------------------------------------------------
    def _make_thread(self, spec: Dict[str, Any]) -> ThreadEntity:
        return ThreadEntity(spec["id"])

    async def _tr_runOnThread(self, thread: str, operation: Dict[str, Any]) -> None:
        entity = self.entities[thread]
        if not isinstance(entity, ThreadEntity):
            raise AssertionError(f"{thread} is not a thread entity")
        entity.schedule(lambda: self.run_operation(operation))

    async def _tr_waitForThread(self, thread: str) -> None:
        await self.entities[thread].join()

    def _cancel_threads(self) -> None:
        for entity in self.entities.values():
            if isinstance(entity, ThreadEntity):
                entity.cancel()

    async def _tr_wait(self, ms: int) -> None:
        await asyncio.sleep(ms / 1000.0)

    # -- topology descriptions -------------------------------------------------------------
    async def _tr_recordTopologyDescription(self, client: str, id: str) -> None:
        self.entities[id] = self.entities[client].topology_description

    async def _tr_assertTopologyType(self, topologyDescription: str, topologyType: str) -> None:
        actual = self.entities[topologyDescription].topology_type_name
        if actual != topologyType:
            raise AssertionError(f"topology type {actual} != {topologyType}")

    async def _tr_waitForPrimaryChange(self, client: str, priorTopologyDescription: str,
                                       timeoutMS: int = 10000) -> None:
        prior = _primary_address(self.entities[priorTopologyDescription])
        c = self.entities[client]
        deadline = time.monotonic() + timeoutMS / 1000.0
        while True:
            current = _primary_address(c.topology_description)
            if current is not None and current != prior:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"primary did not change from {prior} within {timeoutMS} ms")
            await asyncio.sleep(0.05)

    # -- CSOT ------------------------------------------------------------------------------
    def _operation_timeout(self, args: Dict[str, Any], target: Any = None) -> Optional[float]:
        """The deadline (seconds) an operation runs under: its ``timeoutMS`` argument (removed
        from *args*), else the ``defaultTimeoutMS`` of its session (its ``session`` argument,
        or *target* when the operation is a session's own); None for neither. 0 means no
        deadline (as ``timeoutMS=0``)."""
        if "timeoutMode" in args:
            from .runner import Skip

            raise Skip("timeoutMode is not in the Motor 3.7.1 / PyMongo 4.20 API")
        if "timeoutMS" in args:
            return args.pop("timeoutMS") / 1000.0
        session = args.get("session", target)
        if isinstance(session, str):
            session = self.entities.get(session)
        if session is not None and id(session) in self.session_timeouts:
            return self.session_timeouts[id(session)]
        return None

    @staticmethod
    def _timeout_context(seconds: float) -> Any:
        # pymongo.timeout(0), like timeoutMS=0: no deadline, and the client's timeoutMS does not
        # apply either.
        return pymongo.timeout(seconds)


def _primary_address(td: Any) -> Any:
    for sd in td.server_descriptions().values():
        if sd.server_type_name == "RSPrimary":
            return sd.address
    return None
