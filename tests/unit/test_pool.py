"""Targeted tests of amongo.pool with fake connections (no sockets)."""
from __future__ import annotations

import asyncio
import random
from typing import Any, Callable, List, Optional

import pymongo
import pytest
from pymongo import monitoring
from pymongo.errors import WaitQueueTimeoutError

from amongo.monitoring import EventListeners
from amongo.pool import Pool, PoolClearedError, PoolClosedError, PoolOptions

ADDRESS = ("localhost", 27017)


class FakeConn:
    __slots__ = (
        "id",
        "generation",
        "service_id",
        "closed",
        "pending_reply",
        "last_checkin",
        "drain_delay",
        "drain_error",
        "factory",
    )

    def __init__(self, factory: "Factory", conn_id: int, generation: int, service_id: Any = None) -> None:
        self.factory = factory
        self.id = conn_id
        self.generation = generation
        self.service_id = service_id
        self.closed = False
        self.pending_reply = False
        self.last_checkin = 0.0
        self.drain_delay = 0.0
        self.drain_error: Optional[BaseException] = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.factory.open -= 1

    async def drain(self) -> None:
        assert self.pending_reply
        if self.drain_delay:
            await asyncio.sleep(self.drain_delay)
        if self.drain_error is not None:
            raise self.drain_error
        self.pending_reply = False


class Factory:
    """``connect(generation, conn_id)`` that counts live and concurrent openings."""

    def __init__(self, delay: float = 0.0, service_id: Any = None) -> None:
        self.delay = delay
        self.service_id = service_id
        self.open = 0
        self.peak_open = 0
        self.connecting = 0
        self.peak_connecting = 0
        self.created: List[FakeConn] = []
        self.fail: Optional[Callable[[], BaseException]] = None

    async def __call__(self, generation: int, conn_id: int) -> FakeConn:
        self.connecting += 1
        self.peak_connecting = max(self.peak_connecting, self.connecting)
        try:
            await asyncio.sleep(self.delay)
            if self.fail is not None:
                raise self.fail()
        finally:
            self.connecting -= 1
        conn = FakeConn(self, conn_id, generation, self.service_id)
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        self.created.append(conn)
        return conn


class Recorder(monitoring.ConnectionPoolListener):
    def __init__(self) -> None:
        self.events: List[Any] = []

    def _add(self, event: Any) -> None:
        self.events.append(event)

    pool_created = pool_ready = pool_cleared = pool_closed = _add
    connection_created = connection_ready = connection_closed = _add
    connection_check_out_started = connection_check_out_failed = _add
    connection_checked_out = connection_checked_in = _add

    def of(self, cls: type) -> List[Any]:
        return [e for e in self.events if isinstance(e, cls)]


def make_pool(factory: Factory, recorder: Optional[Recorder] = None, **opts: Any) -> Pool:
    listeners = EventListeners([recorder]) if recorder is not None else None
    return Pool(ADDRESS, PoolOptions(**opts), factory, listeners)


async def settle(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_fifo_waiter_fairness() -> None:
    f = Factory()
    pool = make_pool(f, max_pool_size=1)
    conn = await pool.checkout()
    order: List[int] = []

    async def waiter(i: int) -> None:
        c = await pool.checkout(5)
        order.append(i)
        await asyncio.sleep(0)
        pool.checkin(c)

    tasks = []
    for i in range(6):
        tasks.append(asyncio.ensure_future(waiter(i)))
        await settle()
    # A newcomer arriving while others wait queues behind them even if a connection is idle.
    pool.checkin(conn)
    late = asyncio.ensure_future(waiter(99))
    await asyncio.gather(*tasks, late)
    assert order == [0, 1, 2, 3, 4, 5, 99]
    assert len(f.created) == 1
    await pool.close()


async def test_cancelled_waiter_after_handoff_passes_connection_on() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1)
    conn = await pool.checkout()
    a = asyncio.ensure_future(pool.checkout())
    await settle()
    b = asyncio.ensure_future(pool.checkout())
    await settle()
    assert pool.waiting == 2
    pool.checkin(conn)  # reserved for a: a's future holds the connection now
    a.cancel()  # ...but a is cancelled before it runs again
    got = await asyncio.wait_for(b, 1)
    assert got is conn
    assert a.cancelled()
    assert pool.total_connections == 1 and len(f.created) == 1
    pool.checkin(got)
    # ...and with nobody else waiting it goes back to the idle deque.
    c = asyncio.ensure_future(pool.checkout())
    pool_conn = await c
    d = asyncio.ensure_future(pool.checkout())
    await settle()
    pool.checkin(pool_conn)
    d.cancel()
    await asyncio.gather(d, return_exceptions=True)
    assert pool.available_connections == 1 and pool.waiting == 0
    await pool.close()


async def test_cancelled_waiter_before_handoff_is_skipped() -> None:
    f = Factory()
    pool = make_pool(f, max_pool_size=1)
    conn = await pool.checkout()
    a = asyncio.ensure_future(pool.checkout())
    b = asyncio.ensure_future(pool.checkout())
    await settle()
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    pool.checkin(conn)
    assert await asyncio.wait_for(b, 1) is conn
    await pool.close()


async def test_cancelled_create_permit_is_released() -> None:
    f = Factory()
    pool = make_pool(f, max_pool_size=1)
    conn = await pool.checkout()
    a = asyncio.ensure_future(pool.checkout())
    b = asyncio.ensure_future(pool.checkout())
    await settle()
    conn.close()
    pool.checkin(conn)  # the slot frees up: a's future gets the permit to open one...
    assert pool.total_connections == 1 and pool.pending_connections == 1
    a.cancel()  # ...but a is cancelled before it runs: the permit goes to b
    got = await asyncio.wait_for(b, 1)
    assert a.cancelled()
    assert got.id == 2 and len(f.created) == 2
    assert pool.total_connections == 1 and pool.pending_connections == 0
    await pool.close()


async def test_pending_reply_is_drained_then_returned() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1)
    conn = await pool.checkout()
    conn.pending_reply = True
    conn.drain_delay = 0.02
    waiter = asyncio.ensure_future(pool.checkout(1))
    await settle()
    pool.checkin(conn)
    assert pool.draining_connections == 1
    assert pool.available_connections == 0
    assert pool.total_connections == 1
    await settle()
    assert not waiter.done()  # never handed out while the reply is unread
    got = await waiter
    assert got is conn and not got.pending_reply and not got.closed
    assert pool.draining_connections == 0
    assert rec.of(monitoring.ConnectionClosedEvent) == []
    pool.checkin(got)
    assert pool.available_connections == 1
    await pool.close()


async def test_drain_failure_closes_connection() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec)
    conn = await pool.checkout()
    conn.pending_reply = True
    conn.drain_error = ConnectionResetError("boom")
    pool.checkin(conn)
    await settle()
    assert conn.closed
    assert pool.total_connections == 0 and pool.draining_connections == 0
    closed = rec.of(monitoring.ConnectionClosedEvent)
    assert [(e.connection_id, e.reason) for e in closed] == [(conn.id, "error")]
    await pool.close()


async def test_drain_timeout_closes_connection() -> None:
    f = Factory()
    pool = make_pool(f, drain_timeout=0.02)
    conn = await pool.checkout()
    conn.pending_reply = True
    conn.drain_delay = 10
    pool.checkin(conn)
    await asyncio.sleep(0.1)
    assert conn.closed and pool.total_connections == 0
    await pool.close()


async def test_close_cancels_drain_tasks() -> None:
    f = Factory()
    pool = make_pool(f)
    conn = await pool.checkout()
    conn.pending_reply = True
    conn.drain_delay = 10
    pool.checkin(conn)
    await settle()
    await asyncio.wait_for(pool.close(), 1)
    assert conn.closed and pool.total_connections == 0 and f.open == 0


async def test_max_pool_size_holds_with_draining_connections() -> None:
    f = Factory()
    pool = make_pool(f, max_pool_size=2)
    c1 = await pool.checkout()
    c2 = await pool.checkout()
    for c in (c1, c2):
        c.pending_reply = True
        c.drain_delay = 0.03
        pool.checkin(c)
    assert pool.draining_connections == 2
    third = asyncio.ensure_future(pool.checkout(1))
    await asyncio.sleep(0.005)
    assert not third.done() and len(f.created) == 2
    got = await third
    assert got in (c1, c2)
    assert f.peak_open == 2 and pool.total_connections == 2
    await pool.close()


async def test_random_stress_invariants() -> None:
    """Random check-outs, cancellations, pending replies and clears never exceed
    maxPoolSize / maxConnecting and never hand out a connection with an unread reply."""
    rnd = random.Random(1234)
    f = Factory(delay=0.001)
    pool = make_pool(f, max_pool_size=5, max_connecting=2, drain_timeout=0.05)
    in_use: set = set()

    async def worker(i: int) -> None:
        for _ in range(30):
            try:
                conn = await pool.checkout(0.5)
            except (PoolClearedError, WaitQueueTimeoutError):
                pool.ready()
                continue
            assert not conn.pending_reply and not conn.closed
            assert conn.id not in in_use
            in_use.add(conn.id)
            try:
                await asyncio.sleep(rnd.random() * 0.002)
                r = rnd.random()
                if r < 0.3:
                    conn.pending_reply = True
                    conn.drain_delay = rnd.choice([0, 0.001, 0.1])
                    if rnd.random() < 0.2:
                        conn.drain_error = OSError("x")
                elif r < 0.35:
                    conn.close()
            finally:
                in_use.discard(conn.id)
                pool.checkin(conn)
            assert f.open <= 5

    async def chaos() -> None:
        for _ in range(10):
            await asyncio.sleep(0.005)
            pool.clear()
            await asyncio.sleep(0.001)
            pool.ready()

    workers = [asyncio.ensure_future(worker(i)) for i in range(12)]
    canceller_victims = [asyncio.ensure_future(pool.checkout(1)) for _ in range(5)]
    await settle()
    for t in canceller_victims:
        t.cancel()
    await asyncio.gather(chaos(), *workers)
    await asyncio.gather(*canceller_victims, return_exceptions=True)
    assert f.peak_open <= 5
    assert f.peak_connecting <= 2
    # Let drains finish; then every live connection is idle and counted exactly once.
    await asyncio.sleep(0.15)
    assert pool.draining_connections == 0 and pool.in_use_connections == 0
    assert pool.total_connections == pool.available_connections == f.open
    await pool.close()
    assert f.open == 0 and pool.total_connections == 0


async def test_max_connecting_limits_concurrent_openings() -> None:
    f = Factory(delay=0.01)
    pool = make_pool(f, max_pool_size=10, max_connecting=2)
    conns = await asyncio.gather(*(pool.checkout(1) for _ in range(6)))
    assert f.peak_connecting == 2
    assert len({c.id for c in conns}) == 6
    for c in conns:
        pool.checkin(c)
    await pool.close()


async def test_checked_in_connection_serves_waiter_blocked_on_max_connecting() -> None:
    f = Factory(delay=0.2)
    pool = make_pool(f, max_pool_size=10, max_connecting=1)
    f.delay = 0
    held = await pool.checkout()
    f.delay = 0.2
    opening = asyncio.ensure_future(pool.checkout())
    await settle()
    waiter = asyncio.ensure_future(pool.checkout())
    await settle()
    pool.checkin(held)
    got = await asyncio.wait_for(waiter, 0.1)  # long before the opening finishes
    assert got is held
    opening.cancel()
    await asyncio.gather(opening, return_exceptions=True)
    await pool.close()


async def test_min_pool_size_maintenance() -> None:
    f = Factory()
    rec = Recorder()
    pool = Pool(ADDRESS, PoolOptions(min_pool_size=3), f, EventListeners([rec]), paused=True)
    await settle(10)
    assert f.created == []  # paused: nothing opened
    pool.ready()
    for _ in range(100):
        if pool.available_connections == 3 and pool._fill_task is None:
            break
        await asyncio.sleep(0.001)
    assert pool.available_connections == 3 and pool.total_connections == 3
    assert pool._fill_task is None  # exists only while needed
    # PoolReady is published before the filler's first ConnectionCreated.
    names = [type(e).__name__ for e in rec.events]
    assert names.index("PoolReadyEvent") < names.index("ConnectionCreatedEvent")
    conn = await pool.checkout()
    conn.close()  # e.g. a network error
    pool.checkin(conn)
    for _ in range(100):
        if pool.total_connections == 3 and pool._fill_task is None:
            break
        await asyncio.sleep(0.001)
    assert pool.total_connections == 3 and len(f.created) == 4
    await pool.close()


async def test_min_pool_size_filler_cancelled_on_close() -> None:
    f = Factory(delay=10)
    pool = make_pool(f, min_pool_size=2)
    await settle()
    fill = pool._fill_task
    assert fill is not None and f.connecting == 2
    await asyncio.wait_for(pool.close(), 1)
    assert fill.done() and pool._fill_task is None
    await settle()
    assert f.connecting == 0 and pool.total_connections == 0


async def test_populate_error_goes_to_handler() -> None:
    f = Factory()
    f.fail = lambda: OSError("refused")
    errors: List[BaseException] = []
    pool = Pool(ADDRESS, PoolOptions(min_pool_size=1), f, None, populate_error_handler=errors.append)
    for _ in range(50):
        if errors and pool._fill_task is None:
            break
        await asyncio.sleep(0.001)
    assert errors and isinstance(errors[0], OSError)
    assert pool._fill_task is None and pool.total_connections == 0
    await pool.close()


async def test_idle_expiry() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_idle_time_ms=20)
    a = await pool.checkout()
    b = await pool.checkout()
    pool.checkin(a)
    pool.checkin(b)
    await asyncio.sleep(0.04)
    c = await pool.checkout()
    assert c not in (a, b) and a.closed and b.closed
    closed = rec.of(monitoring.ConnectionClosedEvent)
    assert sorted(e.connection_id for e in closed) == [a.id, b.id]
    assert {e.reason for e in closed} == {"idle"}
    assert pool.total_connections == 1
    await pool.close()


async def test_idle_expiry_prunes_oldest_first() -> None:
    f = Factory()
    pool = make_pool(f, max_idle_time_ms=30)
    a = await pool.checkout()
    b = await pool.checkout()
    pool.checkin(a)
    await asyncio.sleep(0.04)
    pool.checkin(b)  # b is fresh, a is expired (and on the left)
    got = await pool.checkout()
    assert got is b and a.closed
    await pool.close()


async def test_close_fails_waiters_and_later_checkouts() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1)
    conn = await pool.checkout()
    waiters = [asyncio.ensure_future(pool.checkout()) for _ in range(3)]
    await settle()
    await pool.close()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, PoolClosedError) for r in results)
    with pytest.raises(PoolClosedError):
        await pool.checkout()
    pool.checkin(conn)
    assert conn.closed and pool.total_connections == 0
    failed = rec.of(monitoring.ConnectionCheckOutFailedEvent)
    assert [e.reason for e in failed] == ["poolClosed"] * 4


async def test_no_task_created_on_idle_fast_path() -> None:
    f = Factory()
    pool = make_pool(f)
    conn = await pool.checkout()
    pool.checkin(conn)
    loop = asyncio.get_running_loop()
    created: List[Any] = []

    def factory(loop: Any, coro: Any, **kw: Any) -> asyncio.Task:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kw)

    loop.set_task_factory(factory)
    futures: List[Any] = []
    orig_create_future = loop.create_future

    def counting_create_future() -> Any:
        fut = orig_create_future()
        futures.append(fut)
        return fut

    loop.create_future = counting_create_future  # type: ignore[method-assign]
    try:
        for _ in range(100):
            c = await pool.checkout()
            pool.checkin(c)
    finally:
        loop.set_task_factory(None)
        del loop.create_future
    assert created == [] and futures == []
    assert len(f.created) == 1
    await pool.close()


async def test_wait_queue_timeout_and_csot_deadline() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1, wait_queue_timeout_ms=20)
    conn = await pool.checkout()
    with pytest.raises(WaitQueueTimeoutError):
        await pool.checkout()
    with pytest.raises(WaitQueueTimeoutError):
        await pool.checkout(0.01)
    with pymongo.timeout(0.01):
        with pytest.raises(WaitQueueTimeoutError):
            await pool.checkout()
    assert pool.waiting == 0
    assert [e.reason for e in rec.of(monitoring.ConnectionCheckOutFailedEvent)] == ["timeout"] * 3
    pool.checkin(conn)
    assert pool.available_connections == 1
    await pool.close()


async def test_paused_pool_and_clear_fail_with_pool_cleared_error() -> None:
    f = Factory()
    pool = Pool(ADDRESS, PoolOptions(max_pool_size=1), f, None, paused=True)
    with pytest.raises(PoolClearedError):
        await pool.checkout()
    pool.ready()
    conn = await pool.checkout()
    waiter = asyncio.ensure_future(pool.checkout())
    await settle()
    pool.clear()
    with pytest.raises(PoolClearedError):
        await waiter
    assert pool.generation == 1 and pool.paused
    pool.checkin(conn)  # stale: closed
    assert conn.closed and pool.total_connections == 0
    pool.ready()
    conn2 = await pool.checkout()
    assert conn2.generation == 1
    pool.checkin(conn2)
    await pool.close()


async def test_clear_closes_idle_connections_now() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec)
    conns = [await pool.checkout() for _ in range(3)]
    for c in conns:
        pool.checkin(c)
    pool.clear()
    assert all(c.closed for c in conns) and pool.total_connections == 0
    names = [type(e).__name__ for e in rec.events[-4:]]
    assert names == ["PoolClearedEvent"] + ["ConnectionClosedEvent"] * 3
    await pool.close()


async def test_clear_interrupts_in_use_and_pending_connections() -> None:
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec)
    in_use = await pool.checkout()
    f.delay = 10
    opening = asyncio.ensure_future(pool.checkout())
    await settle()
    assert f.connecting == 1
    pool.clear(interrupt_connections=True)
    assert in_use.closed  # socket closed now; accounted for at check-in
    with pytest.raises(PoolClearedError, match="interrupted due to server monitor timeout"):
        await opening
    assert f.connecting == 0
    assert pool.total_connections == 1
    pool.checkin(in_use)
    assert pool.total_connections == 0
    cleared = rec.of(monitoring.PoolClearedEvent)
    assert cleared[0].interrupt_connections is True
    closed = rec.of(monitoring.ConnectionClosedEvent)
    assert [(e.connection_id, e.reason) for e in closed] == [(2, "error"), (1, "stale")]
    await pool.close()


async def test_checkin_of_foreign_or_twice_checked_in_connection_raises() -> None:
    f = Factory()
    pool = make_pool(f)
    conn = await pool.checkout()
    pool.checkin(conn)
    with pytest.raises(ValueError):
        pool.checkin(conn)
    with pytest.raises(ValueError):
        pool.checkin(FakeConn(f, 99, 0))
    assert pool.available_connections == 1
    await pool.close()


async def test_connect_error_propagates_and_frees_slot() -> None:
    f = Factory()
    f.fail = lambda: OSError("refused")
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1)
    with pytest.raises(OSError):
        await pool.checkout()
    assert pool.total_connections == 0 and pool.pending_connections == 0
    f.fail = None
    conn = await pool.checkout()
    assert conn.id == 2
    failed = rec.of(monitoring.ConnectionCheckOutFailedEvent)
    assert [e.reason for e in failed] == ["connectionError"]
    await pool.close()


async def test_cancelled_checkout_keeps_opened_connection() -> None:
    f = Factory(delay=0.01)
    pool = make_pool(f)
    t = asyncio.ensure_future(pool.checkout())
    await asyncio.sleep(0.005)
    t.cancel()
    await asyncio.gather(t, return_exceptions=True)
    assert pool.total_connections == 0 or pool.available_connections == pool.total_connections
    assert pool.pending_connections == 0
    await pool.close()
    assert f.open == 0


async def test_load_balanced_clear_per_service() -> None:
    from bson import ObjectId

    sid_a, sid_b = ObjectId(), ObjectId()
    fa, fb = Factory(service_id=sid_a), Factory(service_id=sid_b)
    which = {"f": fa}

    async def connect(gen: int, conn_id: int) -> FakeConn:
        return await which["f"](gen, conn_id)

    rec = Recorder()
    pool = Pool(ADDRESS, PoolOptions(load_balanced=True), connect, EventListeners([rec]))
    a = await pool.checkout()
    a_busy = await pool.checkout()
    which["f"] = fb
    b = await pool.checkout()
    pool.checkin(a)
    pool.checkin(b)
    pool.clear(service_id=sid_a)
    assert not pool.paused
    assert a.closed and not b.closed and not a_busy.closed
    assert pool.generation_for(sid_a) == 1 and pool.generation_for(sid_b) == 0
    assert rec.of(monitoring.PoolClearedEvent)[0].service_id == sid_a
    pool.checkin(a_busy)  # stale for its service
    assert a_busy.closed
    # No connection to service A is left: its entry is dropped (CMAP load-balancer mode).
    assert sid_a not in pool._services
    assert await pool.checkout() is b
    await pool.close()


async def test_load_balanced_checkin_of_a_connection_its_error_closed() -> None:
    """Load-balanced mode: a connection closed by a network error that also cleared its
    service is closed for "error" at check-in, not "stale" (load-balancers spec events)."""
    from bson import ObjectId

    rec = Recorder()
    pool = Pool(ADDRESS, PoolOptions(load_balanced=True), Factory(service_id=ObjectId()), EventListeners([rec]))
    conn = await pool.checkout()
    conn.close()  # the network error
    pool.clear(service_id=conn.service_id)  # ... which clears the service's connections
    pool.checkin(conn)
    assert [e.reason for e in rec.of(monitoring.ConnectionClosedEvent)] == ["error"]
    await pool.close()


def test_pool_options_non_default() -> None:
    assert PoolOptions().non_default_options == {}
    assert PoolOptions(max_pool_size=50, min_pool_size=5, max_idle_time_ms=100).non_default_options == {
        "maxPoolSize": 50,
        "minPoolSize": 5,
        "maxIdleTimeMS": 100,
    }
    with pytest.raises(ValueError):
        PoolOptions(max_connecting=0)


async def test_unlimited_pool_size() -> None:
    f = Factory()
    pool = make_pool(f, max_pool_size=0, max_connecting=100)
    conns = await asyncio.gather(*(pool.checkout() for _ in range(150)))
    assert len(f.created) == 150
    for c in conns:
        pool.checkin(c)
    await pool.close()


def test_pool_made_outside_a_loop_fills_at_first_checkout() -> None:
    from tests.conftest import run_async

    f = Factory()
    pool = make_pool(f, min_pool_size=2)  # no running loop: no task yet
    assert pool._fill_task is None

    async def main() -> None:
        conn = await pool.checkout()
        for _ in range(100):
            if pool.total_connections >= 2 and pool._fill_task is None:
                break
            await asyncio.sleep(0.001)
        assert pool.total_connections >= 2
        pool.checkin(conn)
        await pool.close()

    run_async(main(), 10)


async def test_connection_closed_between_handoff_and_wakeup_is_not_used() -> None:
    """A waiter re-checks what it was handed when it runs: a connection closed (or made
    stale) after the hand-off is discarded and the waiter gets a fresh one."""
    f = Factory()
    rec = Recorder()
    pool = make_pool(f, rec, max_pool_size=1)
    conn = await pool.checkout()
    waiter = asyncio.ensure_future(pool.checkout())
    await settle()
    pool.checkin(conn)  # handed to the waiter's future (the check-in fast path)
    conn.close()  # ...and closed before the waiter runs
    got = await asyncio.wait_for(waiter, 1)
    assert got is not conn and not got.closed
    assert [e.connection_id for e in rec.of(monitoring.ConnectionClosedEvent)] == [conn.id]
    pool.checkin(got)
    # The same after a clear: the handed-over connection is stale.
    conn = await pool.checkout()
    waiter = asyncio.ensure_future(pool.checkout())
    await settle()
    pool.checkin(conn)
    pool.clear()
    pool.ready()
    got = await asyncio.wait_for(waiter, 1)
    assert got is not conn and got.generation == pool.generation
    pool.checkin(got)
    await pool.close()
