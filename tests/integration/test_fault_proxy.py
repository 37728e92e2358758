"""Fault-injection scenarios through the TCP proxy (tests/proxy.py) in front of a real SecantusDB.

Every fault kind the proxy knows (a reply dropped mid-frame, stalled, cut into pieces,
duplicated, preceded by a stale frame, reordered, reset, corrupted ...) is injected, one at a
time, into each kind of traffic: connection handshakes, monitor checks, authentication
(SecantusDB ``--auth``), finds, cursors (getMore), transactions and change streams. One client
per traffic kind lives through all the faults, and after each one these invariants are checked:

* every operation either succeeds or raises a ``pymongo.errors`` exception (never anything else,
  never a hang: each is bounded);
* no reply reaches the wrong request: ``find_one({"_id": k})`` returns document *k*, a cursor
  returns exactly the documents it asked for, a change stream the changes made;
* the pool and topology recover without recreating the client: the next operations succeed and
  the monitor task is still running.

A last scenario injects random faults (seeded) into concurrent finds and counts wrong replies.
"""
from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple

import pytest
from pymongo.errors import PyMongoError

from amongo.motor_asyncio import AsyncIOMotorClient
from proxy import Proxy
from servers import Deployment

pytestmark = pytest.mark.integration

N_DOCS = 40
#: every fault kind of the proxy (``reply`` answers for the server: not a network fault)
FAULTS = ["close", "close_after_reply", "truncate", "stall", "chunked", "duplicate", "stale",
          "reorder", "reset", "corrupt", "drop", "corrupt_length", "corrupt_opcode",
          "corrupt_checksum", "delay"]
#: per-operation bound: a hang is a failure (the client's socket timeout is well below it)
OP_BOUND = 20.0
CLIENT_OPTS: Dict[str, Any] = {
    "socketTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "serverSelectionTimeoutMS": 10000,
    "heartbeatFrequencyMS": 500,
    "maxPoolSize": 4,
}


class WrongReply(AssertionError):
    pass


class Outcome:
    """What happened to the operations of one scenario."""

    def __init__(self) -> None:
        self.ok = 0
        self.errors: Counter = Counter()
        self.wrong: List[str] = []

    def __repr__(self) -> str:
        return f"<ok={self.ok} errors={dict(self.errors)} wrong={self.wrong}>"


async def run_op(out: Outcome, coro: Awaitable[Any], check: Callable[[Any], Optional[str]] = lambda r: None) -> Any:
    """Await *coro* (bounded); a result is checked with *check* (returns a complaint or None),
    a pymongo error is counted; anything else fails the test."""
    try:
        result = await asyncio.wait_for(coro, OP_BOUND)
    except asyncio.TimeoutError:
        raise AssertionError(f"operation hung for {OP_BOUND}s") from None
    except PyMongoError as exc:
        out.errors[type(exc).__name__] += 1
        return exc
    complaint = check(result)
    if complaint:
        out.wrong.append(complaint)
    out.ok += 1
    return result


def doc_check(k: int) -> Callable[[Any], Optional[str]]:
    def check(d: Any) -> Optional[str]:
        if d is None or d.get("_id") != k or d.get("v") != f"value-{k}":
            return f"find_one({{_id: {k}}}) returned {d!r}"
        return None

    return check


async def find_ones(out: Outcome, coll: Any, keys: List[int]) -> None:
    await asyncio.gather(*(run_op(out, coll.find_one({"_id": k}), doc_check(k)) for k in keys))


async def recovered(client: Any, coll: Any, out: Outcome, within: float = 30.0) -> None:
    """The same client serves correct replies again (five in a row), its monitors alive."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    streak = 0
    rng = random.Random(7)
    while streak < 5:
        if loop.time() > deadline:
            raise AssertionError(f"the client did not recover within {within}s: {out}")
        k = rng.randrange(N_DOCS)
        res = await run_op(out, coll.find_one({"_id": k}), doc_check(k))
        streak = 0 if isinstance(res, PyMongoError) else streak + 1
        if streak == 0:
            await asyncio.sleep(0.2)
    for srv in client._topology.servers.values():
        task = srv.monitor._task if srv.monitor is not None else None
        assert task is not None and not task.done(), f"monitor of {srv} is not running"
    assert out.wrong == [], out.wrong


def _client(uri: str, **kw: Any) -> Any:
    return AsyncIOMotorClient(uri, **{**CLIENT_OPTS, **kw})


#: faults injected by the scenarios of this module, by kind (printed at its end)
FAULT_TOTALS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _fault_summary(request: pytest.FixtureRequest) -> Any:
    yield
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and FAULT_TOTALS:
        tr.write_line(f"\nfault proxy scenarios: {sum(FAULT_TOTALS.values())} faults injected: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(FAULT_TOTALS.items())))


@contextlib.asynccontextmanager
async def scenario(dep: Deployment, name: str, *, uri: Optional[Callable[[Proxy], str]] = None,
                   every_fault: bool = True, **client_kw: Any) -> AsyncIterator[Tuple[Proxy, Any, Any, Outcome]]:
    """A proxy in front of *dep*, one client through it (never recreated), the collection
    *name* seeded with N_DOCS documents, and the outcome record. At the end: no wrong reply,
    and (with *every_fault*) every fault kind was applied."""
    async with Proxy(dep.host, dep.port) as p:
        client = _client(uri(p) if uri is not None else p.uri(), **client_kw)
        coll = client.amongo_fault[name]
        out = Outcome()
        try:
            await _seed(coll)
            yield p, client, coll, out
        finally:
            client.close()
        counts = p.fault_counts()
        FAULT_TOTALS.update(counts)
    assert out.wrong == [], out.wrong
    if every_fault:
        assert set(counts) == set(FAULTS), f"faults not applied: {set(FAULTS) - set(counts)}"


async def _seed(coll: Any) -> None:
    await coll.delete_many({})
    await coll.insert_many([{"_id": i, "v": f"value-{i}"} for i in range(N_DOCS)])


#: faults that only slow a reply down (or cut it into pieces): the operation must succeed
BENIGN = {"chunked", "delay", "reorder"}
#: faults a retryable operation survives (a network error; the retry gets a fresh connection)
RETRIED = {"close", "close_after_reply", "truncate", "reset", "stall", "drop"}


def _fault(p: Proxy, action: str, command: Optional[str], predicate: Any = None, times: int = 1) -> Any:
    kw: Dict[str, Any] = {"times": times, "predicate": predicate, "seed": hash(action) & 0xFFFF}
    if action == "delay":
        kw["delay"] = 0.3
    elif action == "reorder":
        kw["delay"] = 0.3
    elif action == "chunked":
        kw.update(value=5, delay=0.001)
    return p.fail_next(command=command, action=action, **kw)


def _behind_own_proxy(dep: Deployment) -> Deployment:
    if dep.name == "external":
        pytest.skip("the fault proxy scenarios start their own proxy in front of SecantusDB")
    return dep


@pytest.fixture
def upstream(secantus_rs: Deployment) -> Deployment:
    return _behind_own_proxy(secantus_rs)


# --------------------------------------------------------------------------------------------
# one client through every fault, per kind of traffic


@pytest.mark.timeout(240)
async def test_faults_on_finds(upstream: Deployment) -> None:
    async with scenario(upstream, "finds", retryReads=False) as (p, client, coll, out):
        for action in FAULTS:
            _fault(p, action, "find")
            before = sum(out.errors.values())
            await find_ones(out, coll, [1, 2, 3, 4])
            if action in BENIGN:
                assert sum(out.errors.values()) == before, (action, out)
            p.clear_rules()
            await recovered(client, coll, out)
        counts = p.fault_counts()
        assert set(counts) == set(FAULTS), counts


@pytest.mark.timeout(240)
async def test_faults_on_cursors(upstream: Deployment) -> None:
    async with scenario(upstream, "cursors") as (p, client, coll, out):
        want = list(range(N_DOCS))

        def same_docs(docs: Any) -> Optional[str]:
            if [d["_id"] for d in docs] != want or any(d["v"] != f"value-{d['_id']}" for d in docs):
                return f"cursor returned {[d['_id'] for d in docs]}"
            return None

        for action in FAULTS:
            _fault(p, action, "getMore")
            await run_op(out, coll.find().sort("_id", 1).batch_size(7).to_list(None), same_docs)
            p.clear_rules()
            await recovered(client, coll, out)
            await run_op(out, coll.find().sort("_id", 1).batch_size(9).to_list(None), same_docs)
        assert set(p.fault_counts()) == set(FAULTS)


@pytest.mark.timeout(300)
async def test_faults_on_handshakes(upstream: Deployment) -> None:
    """Faults on the hello of new pool connections (and of monitors reconnecting)."""
    async with scenario(upstream, "handshakes") as (p, client, coll, out):
        srv = next(iter(client._topology.servers.values()))
        for action in FAULTS:
            srv.pool.clear()  # the next operations open new connections...
            srv.pool.ready()
            # ...whose handshake (a hello with client metadata) gets the fault
            _fault(p, action, None, lambda d: "client" in d and next(iter(d)).lower() in ("hello", "ismaster"))
            await find_ones(out, coll, [5, 6])
            p.clear_rules()
            await recovered(client, coll, out)


@pytest.mark.timeout(300)
async def test_faults_on_monitors(upstream: Deployment) -> None:
    """Faults on monitor checks (streaming awaitable hellos, polling hellos, RTT pings): the
    monitor keeps running and the server stays or becomes selectable again."""
    async with scenario(upstream, "monitors") as (p, client, coll, out):

        def monitor_hello(d: Dict[str, Any]) -> bool:
            return next(iter(d)).lower() in ("hello", "ismaster") and "client" not in d

        for action in FAULTS:
            rule = _fault(p, action, None, monitor_hello, times=2)
            deadline = asyncio.get_running_loop().time() + 15
            while rule.hits < rule.times and asyncio.get_running_loop().time() < deadline:
                await find_ones(out, coll, [7, 8, 9])
                await asyncio.sleep(0.1)
            assert rule.hits >= 1, f"no monitor check met the {action} fault"
            await asyncio.sleep(0.3)
            await find_ones(out, coll, [10, 11])
            p.clear_rules()
            await recovered(client, coll, out)
        assert set(p.fault_counts()) == set(FAULTS)


@pytest.mark.timeout(300)
@pytest.mark.requires("transactions")
async def test_faults_on_transactions(upstream: Deployment) -> None:
    """Faults on the writes inside a transaction and on commitTransaction: a transaction that
    reported success has its document; one that failed may or may not (unknown commit result),
    and the client goes on."""
    async with scenario(upstream, "txns") as (p, client, coll, out):
        committed: List[int] = []
        n = 1000
        for target in ("insert", "commitTransaction"):
            for action in FAULTS:
                n += 1
                _fault(p, action, target,
                       (lambda d: "txnNumber" in d) if target == "insert" else None)

                async def txn(k: int = n) -> int:
                    async with await client.start_session() as s:
                        async with s.start_transaction():
                            await coll.insert_one({"_id": k, "v": f"value-{k}"}, session=s)
                    return k

                res = await run_op(out, txn())
                if not isinstance(res, PyMongoError):
                    committed.append(res)
                elif action in BENIGN or (target == "commitTransaction" and action in RETRIED):
                    raise AssertionError(f"{action} on {target}: the transaction failed: {res!r}")
                p.clear_rules()
                await recovered(client, coll, out)
        present = {d["_id"] async for d in coll.find({"_id": {"$gte": 1000}})}
        assert set(committed) <= present, sorted(set(committed) - present)


@pytest.mark.timeout(300)
@pytest.mark.requires("change_streams")
async def test_faults_on_change_streams(upstream: Deployment) -> None:
    """Faults on a change stream's getMores and its aggregate: the stream resumes (or raises a
    pymongo error, and is reopened from its resume token); every change is seen once, in order."""
    async with scenario(upstream, "stream") as (p, client, coll, out):
        direct = _client(upstream.direct_uri)
        dcoll = direct.amongo_fault.stream
        try:
            token = None
            k = 5000

            def is_stream(d: Dict[str, Any]) -> bool:
                if "getMore" in d:
                    return d.get("collection") == "stream"
                return any("$changeStream" in st for st in d.get("pipeline", []))

            for action in FAULTS:
                expected = list(range(k, k + 3))
                k += 3
                _fault(p, action, None, is_stream)
                stream = coll.watch(resume_after=token, max_await_time_ms=200)
                opened = False
                got: List[int] = []
                deadline = asyncio.get_running_loop().time() + 40
                while len(got) < len(expected):
                    assert asyncio.get_running_loop().time() < deadline, (action, got, out)
                    change = await run_op(out, stream.try_next())
                    if isinstance(change, PyMongoError):
                        # not resumed by the stream itself: reopen from the last token
                        await _close_quietly(stream)
                        p.clear_rules()
                        stream = coll.watch(resume_after=token, max_await_time_ms=200)
                        continue
                    if stream.resume_token is not None:
                        token = stream.resume_token
                    if not opened:
                        # the stream is open (its aggregate ran): make the changes now
                        assert token is not None
                        opened = True
                        for e in expected:
                            await dcoll.insert_one({"_id": e, "v": f"value-{e}"})
                    if change is not None:
                        got.append(change["documentKey"]["_id"])
                await _close_quietly(stream)
                if got != expected:
                    out.wrong.append(f"{action}: stream saw {got}, expected {expected}")
                p.clear_rules()
                await recovered(client, coll, out)
        finally:
            direct.close()


async def _close_quietly(stream: Any) -> None:
    try:
        await asyncio.wait_for(stream.close(), OP_BOUND)
    except PyMongoError:
        pass


@pytest.fixture
def auth_upstream(secantus_auth: Deployment) -> Deployment:
    return _behind_own_proxy(secantus_auth)


@pytest.mark.timeout(300)
async def test_faults_on_authentication(auth_upstream: Deployment) -> None:
    """Faults on saslStart / saslContinue and on the hello carrying speculativeAuthenticate
    (SecantusDB --auth): connections fail with pymongo errors, and authenticate again later."""
    dep = auth_upstream

    def auth_uri(p: Proxy) -> str:
        return (f"mongodb://{dep.username}:{dep.password}@{p.host}:{p.port}/"
                f"?directConnection=true&authSource={dep.auth_source or 'admin'}")

    async with scenario(dep, "auth", uri=auth_uri) as (p, client, coll, out):
        srv = next(iter(client._topology.servers.values()))
        targets: List[Tuple[Optional[str], Any]] = [
            (None, lambda d: "speculativeAuthenticate" in d),
            ("saslContinue", None),
            ("saslStart", None),
        ]
        for command, predicate in targets:
            for action in FAULTS:
                srv.pool.clear()
                srv.pool.ready()
                _fault(p, action, command, predicate)
                await find_ones(out, coll, [12, 13])
                p.clear_rules()
                await recovered(client, coll, out)
        counts = p.fault_counts()
        assert set(counts) == set(FAULTS), counts


# --------------------------------------------------------------------------------------------
# random faults under concurrency


@pytest.mark.timeout(300)
async def test_random_faults_under_concurrency(upstream: Deployment) -> None:
    """Seeded random faults on 5% of finds while 16 tasks run find_one concurrently over a pool
    of 4: no reply ever reaches the wrong request, and the client recovers."""
    async with scenario(upstream, "random", every_fault=False) as (p, client, coll, out):
        p.chaos([a for a in FAULTS if a not in ("stall", "drop")], 0.05, seed=11, command="find",
                delay=0.2, value=None)
        p.chaos(["stall", "drop"], 0.01, seed=12, command="find")
        rng = random.Random(3)

        async def worker() -> None:
            for _ in range(25):
                k = rng.randrange(N_DOCS)
                await run_op(out, coll.find_one({"_id": k}), doc_check(k))

        await asyncio.gather(*(worker() for _ in range(16)))
        p.clear_rules()
        await recovered(client, coll, out)
        faults = p.fault_counts()
        assert sum(faults.values()) >= 10, faults
    assert out.ok >= 300, out
