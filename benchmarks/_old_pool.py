"""The placeholder connection pool amongo used before the CMAP pool (vendored verbatim from
commit 418cdfc, amongo/pool.py) for benchmarks/pool_micro.py. Not used by amongo.

Interface documented in ARCHITECTURE.md.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Optional, Tuple

from pymongo.errors import WaitQueueTimeoutError


class PoolOptions:
    __slots__ = ("max_pool_size", "min_pool_size", "max_idle_time_ms", "max_connecting", "wait_queue_timeout_ms")

    def __init__(
        self,
        max_pool_size: int = 100,
        min_pool_size: int = 0,
        max_idle_time_ms: Optional[int] = None,
        max_connecting: int = 2,
        wait_queue_timeout_ms: Optional[int] = None,
    ) -> None:
        self.max_pool_size = max_pool_size
        self.min_pool_size = min_pool_size
        self.max_idle_time_ms = max_idle_time_ms
        self.max_connecting = max_connecting
        self.wait_queue_timeout_ms = wait_queue_timeout_ms


class Pool:
    def __init__(
        self,
        address: Tuple[str, int],
        options: PoolOptions,
        connect: Callable[[int], Awaitable[Any]],
        listeners: Any = None,
        *,
        paused: bool = False,
    ) -> None:
        self.address = address
        self.options = options
        self._connect = connect
        self.generation = 0
        self._idle: Deque[Any] = deque()
        self._total = 0
        self._waiters: Deque[asyncio.Future] = deque()
        self._closed = False

    async def checkout(self, timeout: Optional[float] = None) -> Any:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and conn.generation == self.generation:
                return conn
            conn.close()
            self._total -= 1
        if self._total < self.options.max_pool_size:
            self._total += 1
            try:
                return await self._connect(self.generation)
            except BaseException:
                self._total -= 1
                raise
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise WaitQueueTimeoutError("Timed out waiting for a connection") from None

    def checkin(self, conn: Any) -> None:
        if conn.closed or conn.pending_reply or conn.generation != self.generation or self._closed:
            conn.close()
            self._total -= 1
            return
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(conn)
                return
        self._idle.append(conn)

    def clear(self, *, interrupt_connections: bool = False, service_id: Any = None) -> None:
        self.generation += 1

    def ready(self) -> None:
        pass

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
