"""Workloads: driver-independent code that calls an adapter (see :mod:`benchmarks.drivers`).

Every workload has a ``setup`` (not measured) and an ``op`` coroutine factory; one ``op`` call
is one measured operation. ``doc_bytes`` is the BSON size of the documents one op moves
(for MB/s). ``cheap`` workloads are the single-document ones that also run at 1000 tasks.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from . import data

DB = "amongo_bench"
N_MANY = 10_000
AGG_LIMIT = 100
BULK_INSERTS, BULK_UPDATES, BULK_DELETES = 10, 5, 5
TWEETS = 100

Op = Callable[[int], Awaitable[Any]]


async def run_ops(op: Op, n: int, concurrency: int = 1) -> int:
    """Run *n* ops of *op*: in turn (one task), or spread over *concurrency* tasks, each
    running ``n // concurrency`` of them in turn (op ``i * concurrency + k`` on task *k*).
    Returns how many ran (*n* rounded down to a multiple of *concurrency*, at least one each)."""
    if concurrency <= 1:
        for i in range(n):
            await op(i)
        return n
    per = max(1, n // concurrency)

    async def worker(k: int) -> None:
        for i in range(per):
            await op(i * concurrency + k)

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return per * concurrency


@dataclass
class Workload:
    name: str
    collection: str
    cheap: bool  # single-document op: also measured at 1000 tasks
    description: str
    setup: Callable[[Any], Awaitable[None]]
    make_op: Callable[[Any], Op]
    doc_bytes: Callable[[], int]
    fixed_concurrency: Tuple[int, ...] = field(default=())  # overrides the concurrency list
    #: the adapter method one op calls: a driver without that operation (an adapter's
    #: ``UNSUPPORTED`` names it) gets an "unavailable" row instead of a failed run
    requires: str = ""

    def unsupported(self, adapter: Any) -> Optional[str]:
        """Why *adapter*'s driver cannot run this workload, or None."""
        return getattr(adapter, "UNSUPPORTED", {}).get(self.requires)


def _small() -> Dict[str, Any]:
    return data.load("small_doc")


async def _drop(a: Any, coll: str) -> None:
    await a.drop(coll)


# -- hello ----------------------------------------------------------------------------------
async def _setup_none(a: Any) -> None:
    return None


def _op_hello(a: Any) -> Op:
    hello = a.hello
    return lambda i: hello()


# -- find_one ---------------------------------------------------------------------------------
async def _setup_find_one(a: Any) -> None:
    await _drop(a, "bench_tweet")
    tweet = data.load("tweet")
    await a.insert_many("bench_tweet", [dict(tweet, _id=i) for i in range(TWEETS)])


def _op_find_one(a: Any) -> Op:
    find_one = a.find_one

    async def op(i: int) -> Any:
        doc = await find_one("bench_tweet", {"_id": i % TWEETS})
        if doc is None:
            raise AssertionError("find_one returned None")
        return doc

    return op


# -- insert_one -------------------------------------------------------------------------------
async def _setup_insert_one(a: Any) -> None:
    await _drop(a, "bench_insert_one")


def _op_insert_one(a: Any) -> Op:
    insert_one = a.insert_one
    small = _small()
    return lambda i: insert_one("bench_insert_one", dict(small))


# -- insert_many ------------------------------------------------------------------------------
async def _setup_insert_many(a: Any) -> None:
    await _drop(a, "bench_insert_many")


def _op_insert_many(a: Any) -> Op:
    insert_many = a.insert_many
    small = _small()
    return lambda i: insert_many("bench_insert_many", [dict(small) for _ in range(N_MANY)])


# -- find (10k into a list) / aggregate ----------------------------------------------------------
async def _setup_find(a: Any) -> None:
    await _drop(a, "bench_find")
    small = _small()
    await a.insert_many("bench_find", [dict(small, i=i) for i in range(N_MANY)])


def _op_find(a: Any) -> Op:
    find_list = a.find_list

    async def op(i: int) -> Any:
        docs = await find_list("bench_find", {})
        if len(docs) != N_MANY:
            raise AssertionError(f"find returned {len(docs)} documents")
        return docs

    return op


PIPELINE = [{"$match": {"i": {"$lt": 1000}}}, {"$limit": AGG_LIMIT}]


def _op_aggregate(a: Any) -> Op:
    aggregate_list = a.aggregate_list

    async def op(i: int) -> Any:
        docs = await aggregate_list("bench_find", PIPELINE)
        if len(docs) != AGG_LIMIT:
            raise AssertionError(f"aggregate returned {len(docs)} documents")
        return docs

    return op


# -- bulk_write -------------------------------------------------------------------------------
async def _setup_bulk(a: Any) -> None:
    await _drop(a, "bench_bulk")
    small = _small()
    await a.insert_many("bench_bulk", [dict(small, i=i, tag="seed") for i in range(1000)])


def _op_bulk(a: Any) -> Op:
    bulk_write = a.bulk_write
    small = _small()

    def requests(i: int) -> List[Tuple[str, Any, Any]]:
        reqs: List[Tuple[str, Any, Any]] = [("insert", dict(small, tag="bulk"), None)
                                            for _ in range(BULK_INSERTS)]
        reqs += [("update", {"i": (i * BULK_UPDATES + k) % 1000}, {"$inc": {"n": 1}})
                 for k in range(BULK_UPDATES)]
        reqs += [("delete", {"tag": "bulk"}, None) for _ in range(BULK_DELETES)]
        return reqs

    return lambda i: bulk_write("bench_bulk", requests(i))


def _size(name: str, n: int = 1) -> Callable[[], int]:
    return lambda: data.bson_size(data.load(name)) * n


WORKLOADS: Dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("hello", "", True, "db.command('hello') (admin)", _setup_none, _op_hello,
                 lambda: 0, requires="hello"),
        Workload("find_one", "bench_tweet", True, "find_one({_id}) of a tweet document",
                 _setup_find_one, _op_find_one, _size("tweet"), requires="find_one"),
        Workload("insert_one", "bench_insert_one", True, "insert_one(small document)",
                 _setup_insert_one, _op_insert_one, _size("small_doc"),
                 requires="insert_one"),
        Workload("insert_many", "bench_insert_many", False,
                 f"insert_many({N_MANY} small documents)", _setup_insert_many, _op_insert_many,
                 _size("small_doc", N_MANY), requires="insert_many"),
        Workload("find", "bench_find", False, f"find({{}}).to_list() of {N_MANY} small documents",
                 _setup_find, _op_find, _size("small_doc", N_MANY), requires="find_list"),
        Workload("aggregate", "bench_find", False,
                 f"aggregate($match/$limit {AGG_LIMIT}).to_list() over {N_MANY} documents",
                 _setup_find, _op_aggregate, _size("small_doc", AGG_LIMIT),
                 requires="aggregate_list"),
        Workload("bulk_write", "bench_bulk", False,
                 f"bulk_write({BULK_INSERTS} InsertOne, {BULK_UPDATES} UpdateOne, "
                 f"{BULK_DELETES} DeleteOne)", _setup_bulk, _op_bulk,
                 _size("small_doc", BULK_INSERTS), requires="bulk_write"),
        Workload("find_one_10k_tasks", "bench_tweet", True,
                 "memory mode: find_one with 10,000 concurrent tasks (peak RSS)",
                 _setup_find_one, _op_find_one, _size("tweet"), fixed_concurrency=(10_000,),
                 requires="find_one"),
    ]
}

DEFAULT_WORKLOADS = [n for n in WORKLOADS]
