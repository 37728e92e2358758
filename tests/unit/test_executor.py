"""The executor with a fake topology and fake connections (no sockets): selection errors,
retry decisions, deprioritization, session and transaction stamping, error classification."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import bson
import pytest
from bson.timestamp import Timestamp
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    InvalidOperation,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)
from pymongo.read_preferences import ReadPreference

from amongo.engine.core import ClientCore
from amongo.engine.operation import Command
from amongo.engine.session import SessionOptions, TransactionOptions, retried_commit_write_concern
from amongo.monitoring import EventListeners
from amongo.server_errors import command_error
from amongo.topology.description import TopologyType
from amongo.wire.message import splice_elements

Address = Tuple[str, int]
A: Address = ("a", 27017)
B: Address = ("b", 27017)


class FakeConnection:
    """What the executor reads from a connection; replies come from a script."""

    def __init__(self, address: Address, script: List[Any], *, mongos: bool = False) -> None:
        self.address = address
        self.script = script
        self.sent: List[Dict[str, Any]] = []
        self.id = 1
        self.generation = 0
        self.service_id = None
        self.server_connection_id = None
        self.max_wire_version = 21
        self.is_mongos = mongos
        self.supports_sessions = True
        self.supports_retry = True
        self.hello: Dict[str, Any] = {"msg": "isdbgrid"} if mongos else {"setName": "rs"}
        self.options = SimpleNamespace(load_balanced=False, credential=None)
        self.closed = False
        self.max_bson_size = 16 * 1024 * 1024
        self.max_message_size = 48_000_000
        self.max_write_batch_size = 100_000
        self.reply_cluster_time: Optional[bytes] = None  # (replies here keep their times)
        self.sequences: List[Any] = []
        self.tails: List[Optional[bytes]] = []

    def command(self, dbname: str, cmd: Any, *, check: bool = True, **kwargs: Any) -> Any:
        sent = dict(cmd)
        tail = kwargs.get("tail")
        if tail:  # the pre-encoded elements the real connection splices in: as sent
            sent.update(bson.decode(splice_elements(bson.encode({}), tail)))
        self.sent.append(sent)
        self.tails.append(tail)
        self.sequences.append(kwargs.get("sequences"))
        item = self.script.pop(0)

        async def reply() -> Dict[str, Any]:
            if isinstance(item, BaseException):
                raise item
            if check and not item.get("ok"):
                raise command_error(item, self.max_wire_version)
            return dict(item)

        return reply()


class FakePool:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.checked_in = 0

    def checkout_now(self) -> Optional[FakeConnection]:
        return self.conn

    async def checkout(self, timeout: Optional[float] = None) -> FakeConnection:  # pragma: no cover
        return self.conn

    def checkin(self, conn: FakeConnection) -> None:
        self.checked_in += 1


class FakeServer:
    def __init__(self, address: Address, script: List[Any], *, mongos: bool = False) -> None:
        self.address = address
        self.pool = FakePool(FakeConnection(address, script, mongos=mongos))
        self.description = SimpleNamespace(min_round_trip_time=0.0)


class FakeTopology:
    """Selection by address; records what each selection was asked to avoid."""

    def __init__(self, servers: Sequence[FakeServer], topology_type: Any = TopologyType.ReplicaSetWithPrimary,
                 fail_selection: bool = False) -> None:
        self.servers = {s.address: s for s in servers}
        self._td = SimpleNamespace(topology_type=topology_type, logical_session_timeout_minutes=30)
        self.selections: List[Tuple[Any, ...]] = []
        self.errors: List[Tuple[Address, BaseException]] = []
        self.fail_selection = fail_selection
        self._loop = None  # (the executor checks the event loop the topology runs on)
        self.settings = SimpleNamespace(load_balanced=False)

    @property
    def description(self) -> Any:
        return self._td

    def _pick(self, address: Optional[Address], deprioritized: Sequence[Address]) -> Optional[FakeServer]:
        self.selections.append(tuple(deprioritized))
        if self.fail_selection:
            return None
        if address is not None:
            return self.servers[address]
        for addr, server in self.servers.items():
            if addr not in deprioritized:
                return server
        return next(iter(self.servers.values()))

    def select_now(self, read_preference: Any = None, address: Optional[Address] = None,
                   deprioritized: Sequence[Address] = ()) -> Optional[FakeServer]:
        return self._pick(address, deprioritized)

    async def select_server(self, read_preference: Any = None, *, deadline: Any = None,
                            address: Optional[Address] = None, deprioritized: Sequence[Address] = ()) -> FakeServer:
        raise ServerSelectionTimeoutError("No servers found yet, Timeout: 0.0s")

    def handle_error(self, server: FakeServer, error: BaseException, generation: Any, **kwargs: Any) -> None:
        self.errors.append((server.address, error))


def make_core(topology: FakeTopology, **kwargs: Any) -> ClientCore:
    return ClientCore(SimpleNamespace(get_io_loop=asyncio.get_event_loop), topology,  # type: ignore[arg-type]
                      EventListeners(()), **kwargs)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def command(executor: Any, dbname: str, cmd: Dict[str, Any], *, session: Any = None, **kwargs: Any) -> Any:
    """Run *cmd* as a generic :class:`~amongo.engine.operation.Command` operation."""
    return executor.execute(Command(dbname, cmd, **kwargs), session)


OK = {"ok": 1}
NOT_PRIMARY = {"ok": 0, "code": 10107, "errmsg": "not primary"}


# -- selection errors ------------------------------------------------------------------------
def test_selection_timeout_is_raised() -> None:
    core = make_core(FakeTopology([], fail_selection=True))
    with pytest.raises(ServerSelectionTimeoutError):
        run(command(core.executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY, retryable_read=True))


def test_selection_failure_on_retry_raises_the_first_error() -> None:
    server = FakeServer(A, [AutoReconnect("connection reset")])
    topology = FakeTopology([server])

    async def go() -> None:
        original = topology.select_now

        def once_then_none(*args: Any) -> Any:
            topology.select_now = lambda *a: None  # type: ignore[method-assign]
            return original(*args)

        topology.select_now = once_then_none  # type: ignore[method-assign]
        await command(make_core(topology).executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY,
                                                   retryable_read=True)

    with pytest.raises(AutoReconnect):
        run(go())


# -- retry decisions -------------------------------------------------------------------------
def test_retryable_read_is_retried_once() -> None:
    server = FakeServer(A, [NOT_PRIMARY, OK])
    topology = FakeTopology([server])
    reply = run(command(make_core(topology).executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY,
                                                     retryable_read=True))
    assert reply["ok"] == 1
    assert len(server.pool.conn.sent) == 2
    assert topology.errors and isinstance(topology.errors[0][1], NotPrimaryError)  # SDAM told


def test_read_not_retried_twice() -> None:
    server = FakeServer(A, [NOT_PRIMARY, NOT_PRIMARY, OK])
    with pytest.raises(NotPrimaryError):
        run(command(make_core(FakeTopology([server])).executor, 
            "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY, retryable_read=True))
    assert len(server.pool.conn.sent) == 2


def test_retry_reads_false_disables_retry() -> None:
    server = FakeServer(A, [NOT_PRIMARY, OK])
    with pytest.raises(NotPrimaryError):
        run(command(make_core(FakeTopology([server]), retry_reads=False).executor, 
            "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY, retryable_read=True))
    assert len(server.pool.conn.sent) == 1


def test_non_retryable_code_is_not_retried() -> None:
    server = FakeServer(A, [{"ok": 0, "code": 2, "errmsg": "bad value"}, OK])
    with pytest.raises(OperationFailure) as info:
        run(command(make_core(FakeTopology([server])).executor, 
            "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY, retryable_read=True))
    assert info.value.code == 2
    assert len(server.pool.conn.sent) == 1


def test_retryable_write_keeps_its_txn_number() -> None:
    labelled = {"ok": 0, "code": 91, "errmsg": "shutting down", "errorLabels": ["RetryableWriteError"]}
    server = FakeServer(A, [labelled, {"ok": 1, "n": 1}])
    run(command(make_core(FakeTopology([server])).executor, "db", {"insert": "c"}, retryable_write=True))
    first, second = server.pool.conn.sent
    assert first["txnNumber"] == second["txnNumber"] == 1
    assert first["lsid"] == second["lsid"]


def test_write_without_label_is_not_retried() -> None:
    server = FakeServer(A, [{"ok": 0, "code": 91, "errmsg": "shutting down"}, OK])
    with pytest.raises(NotPrimaryError):
        run(command(make_core(FakeTopology([server])).executor, "db", {"insert": "c"}, retryable_write=True))
    assert len(server.pool.conn.sent) == 1


def test_network_error_on_write_gets_retryable_label_and_retries() -> None:
    server = FakeServer(A, [AutoReconnect("reset"), {"ok": 1, "n": 1}, {"ok": 1, "n": 1}])
    topology = FakeTopology([server])
    run(command(make_core(topology).executor, "db", {"insert": "c"}, retryable_write=True))
    assert len(server.pool.conn.sent) == 2
    (addr, err), = topology.errors
    assert addr == A and isinstance(err, AutoReconnect) and err.has_error_label("RetryableWriteError")


def test_retryable_write_concern_error_is_retried() -> None:
    wce = {"ok": 1, "n": 1, "writeConcernError": {"code": 91, "errmsg": "shutdown"},
           "errorLabels": ["RetryableWriteError"]}
    server = FakeServer(A, [wce, {"ok": 1, "n": 1}])
    reply = run(command(make_core(FakeTopology([server])).executor, "db", {"insert": "c"}, retryable_write=True))
    assert "writeConcernError" not in reply
    assert len(server.pool.conn.sent) == 2


# -- deprioritization ------------------------------------------------------------------------
def test_retry_on_sharded_cluster_avoids_the_failed_mongos() -> None:
    a = FakeServer(A, [AutoReconnect("reset")], mongos=True)
    b = FakeServer(B, [{"ok": 1, "n": 1}], mongos=True)
    topology = FakeTopology([a, b], TopologyType.Sharded)
    run(command(make_core(topology).executor, "db", {"insert": "c"}, retryable_write=True))
    assert topology.selections == [(), (A,)]
    assert len(a.pool.conn.sent) == 1 and len(b.pool.conn.sent) == 1


def test_retry_on_replica_set_deprioritizes_nothing() -> None:
    a = FakeServer(A, [NOT_PRIMARY, OK])
    topology = FakeTopology([a])
    run(command(make_core(topology).executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY,
                                             retryable_read=True))
    assert topology.selections == [(), ()]


def test_overload_retry_on_replica_set_deprioritizes_the_failed_server() -> None:
    overloaded = {"ok": 0, "code": 462, "errmsg": "overloaded",
                  "errorLabels": ["SystemOverloadedError", "RetryableError"]}
    a = FakeServer(A, [overloaded])
    b = FakeServer(B, [OK])
    topology = FakeTopology([a, b])  # (a replica set with a primary)
    run(command(make_core(topology).executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY_PREFERRED,
                                             retryable_read=True))
    assert topology.selections == [(), (A,)]  # the overloaded server is avoided (DRIVERS-3404)
    assert len(b.pool.conn.sent) == 1


def test_deprioritized_mongos_is_used_when_it_is_the_only_one() -> None:
    a = FakeServer(A, [AutoReconnect("reset"), {"ok": 1, "n": 1}], mongos=True)
    topology = FakeTopology([a], TopologyType.Sharded)
    run(command(make_core(topology).executor, "db", {"insert": "c"}, retryable_write=True))
    assert topology.selections == [(), (A,)]
    assert len(a.pool.conn.sent) == 2


# -- session and transaction stamping --------------------------------------------------------
def test_implicit_session_and_cluster_time_are_stamped() -> None:
    ct = {"clusterTime": Timestamp(5, 1), "signature": {}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct}, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        await command(core.executor, "db", {"ping": 1})
        await command(core.executor, "db", {"ping": 1})

    run(go())
    first, second = server.pool.conn.sent
    assert "lsid" in first and "$clusterTime" not in first
    assert second["$clusterTime"] == ct and core.cluster_time == ct
    assert first["lsid"] == second["lsid"]  # the server session went back to the pool


def test_transaction_fields_are_stamped() -> None:
    server = FakeServer(A, [OK, OK, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        s = core.explicit_session(SessionOptions())
        s.start_transaction()
        await command(core.executor, "db", {"insert": "c", "writeConcern": {"w": 1}, "readConcern": {"level": "local"}},
                                    session=s, retryable_write=True)
        await command(core.executor, "db", {"insert": "c"}, session=s, retryable_write=True)
        await s.commit_transaction()

    run(go())
    first, second, commit = server.pool.conn.sent
    assert first["startTransaction"] is True and first["autocommit"] is False
    assert "writeConcern" not in first and "readConcern" not in first
    assert "startTransaction" not in second and second["autocommit"] is False
    assert first["txnNumber"] == second["txnNumber"] == commit["txnNumber"] == 1
    assert "commitTransaction" in commit and commit["autocommit"] is False


def test_retried_commit_uses_majority() -> None:
    server = FakeServer(A, [OK, AutoReconnect("reset"), OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        s = core.explicit_session(SessionOptions())
        s.start_transaction(write_concern=None)
        await command(core.executor, "db", {"insert": "c"}, session=s, retryable_write=True)
        await s.commit_transaction()

    run(go())
    _, commit1, commit2 = server.pool.conn.sent
    assert "writeConcern" not in commit1 or commit1["writeConcern"].get("w") != "majority"
    assert commit2["writeConcern"] == {"w": "majority", "wtimeout": 10000}
    assert retried_commit_write_concern({"w": 2, "wtimeout": 5}) == {"w": "majority", "wtimeout": 5}


def test_read_in_transaction_must_be_primary() -> None:
    server = FakeServer(A, [OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        s = core.explicit_session(SessionOptions())
        s.start_transaction(read_preference=ReadPreference.SECONDARY)
        await command(core.executor, "db", {"find": "c"}, session=s, read_preference=ReadPreference.PRIMARY)

    with pytest.raises(InvalidOperation, match="must be primary"):
        run(go())
    assert not server.pool.conn.sent


def test_session_of_another_client_is_refused() -> None:
    server = FakeServer(A, [OK])
    core, other = make_core(FakeTopology([server])), make_core(FakeTopology([server]))

    async def go() -> None:
        await command(core.executor, "db", {"ping": 1}, session=other.explicit_session(SessionOptions()))

    with pytest.raises(InvalidOperation, match="session with the MongoClient that started it"):
        run(go())


def test_causal_read_gets_after_cluster_time() -> None:
    server = FakeServer(A, [{"ok": 1, "operationTime": Timestamp(7, 1)}, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        s = core.explicit_session(SessionOptions(causal_consistency=True))
        await command(core.executor, "db", {"insert": "c"}, session=s, retryable_write=True)
        await command(core.executor, "db", {"find": "c"}, session=s, read_preference=ReadPreference.PRIMARY)

    run(go())
    assert server.pool.conn.sent[1]["readConcern"] == {"afterClusterTime": Timestamp(7, 1)}


# -- error classification --------------------------------------------------------------------
def test_network_error_in_transaction_is_transient() -> None:
    server = FakeServer(A, [ConnectionFailure("reset")])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        s = core.explicit_session(SessionOptions())
        s.start_transaction()
        await command(core.executor, "db", {"insert": "c"}, session=s, retryable_write=True)

    with pytest.raises(ConnectionFailure) as info:
        run(go())
    assert info.value.has_error_label("TransientTransactionError")


def test_state_change_code_marks_server_unknown_and_is_not_primary_error() -> None:
    server = FakeServer(A, [{"ok": 0, "code": 13436, "errmsg": "node is recovering"}])
    topology = FakeTopology([server])
    with pytest.raises(NotPrimaryError):
        run(command(make_core(topology).executor, "db", {"ping": 1}))
    assert [addr for addr, _ in topology.errors] == [A]


def test_ordinary_command_error_does_not_touch_sdam() -> None:
    server = FakeServer(A, [{"ok": 0, "code": 11000, "errmsg": "E11000 duplicate key"}])
    topology = FakeTopology([server])
    with pytest.raises(OperationFailure) as info:
        run(command(make_core(topology).executor, "db", {"insert": "c"}, retryable_write=True))
    assert type(info.value).__name__ == "DuplicateKeyError"
    assert topology.errors == []
    assert server.pool.checked_in == 1


def test_transaction_options_value() -> None:
    opts = TransactionOptions(None, None, None, None)
    assert opts.max_commit_time_ms is None


def test_concerns_are_data_stamped_by_the_executor() -> None:
    server = FakeServer(A, [OK, OK, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        await command(core.executor, "db", {"insert": "c"}, retryable_write=True, write_concern={"w": 2})
        await command(core.executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY,
                                    read_concern={"level": "majority"})
        s = core.explicit_session(SessionOptions())
        s.start_transaction()
        await command(core.executor, "db", {"insert": "c"}, session=s, retryable_write=True,
                                    write_concern={"w": 2}, read_concern={"level": "local"})

    run(go())
    write, read, in_txn = server.pool.conn.sent
    assert write["writeConcern"] == {"w": 2} and read["readConcern"] == {"level": "majority"}
    assert "writeConcern" not in in_txn and "readConcern" not in in_txn  # the transaction's apply


# -- operations as values (amongo/engine/operation.py) ---------------------------------------
import bson  # noqa: E402
from bson.codec_options import DEFAULT_CODEC_OPTIONS  # noqa: E402
from pymongo.errors import DocumentTooLarge  # noqa: E402
from pymongo.read_concern import ReadConcern  # noqa: E402
from pymongo.write_concern import WriteConcern  # noqa: E402

from amongo.engine.operation import (  # noqa: E402
    RETRY_NONE,
    RETRY_READ,
    RETRY_WRITE,
    Command,
    CursorCommand,
    FindOne,
    GetMore,
    KillCursors,
    Operation,
    WriteStatements,
    read_concern_document_for,
    read_preference_for,
    write_concern_for,
)


def _insert(encoded: List[bytes], *, retryable: bool = True, wc: Any = None) -> WriteStatements:
    return WriteStatements("db", "insert", "c", "documents", encoded, None, DEFAULT_CODEC_OPTIONS,
                           retryable=retryable, write_concern=wc, unacknowledged=False)


def test_operation_retryability_and_kind_are_data() -> None:
    find = FindOne("db", "c", {}, ReadPreference.PRIMARY, None, DEFAULT_CODEC_OPTIONS)
    assert find.retry_kind == RETRY_READ and find.is_write is False and find.read_preference is ReadPreference.PRIMARY
    insert = _insert([b""])
    assert insert.retry_kind == RETRY_WRITE and insert.is_write is True and insert.read_preference is None
    multi = WriteStatements("db", "update", "c", "updates", [b""], None, DEFAULT_CODEC_OPTIONS,
                            retryable=False, write_concern=None, unacknowledged=False)
    assert multi.retry_kind == RETRY_NONE
    get_more = GetMore("db", "c", 5, A, DEFAULT_CODEC_OPTIONS)
    assert get_more.retry_kind == RETRY_NONE and get_more.address == A and get_more.is_write is False
    kill = KillCursors("db", "c", [5], A)
    assert kill.check is False and kill.retry_kind == RETRY_NONE
    agg = CursorCommand("db", {"aggregate": "c", "pipeline": [{"$out": "d"}]}, DEFAULT_CODEC_OPTIONS,
                        read_preference=None, retryable_read=False, is_write=True, read_concern=None,
                        write_concern={"w": 1}, pin=None)
    assert agg.write_aggregate and agg.name == "aggregate" and agg.write_concern == {"w": 1}
    assert Command("db", {"ping": 1}).name == "ping"


def test_write_is_built_from_the_checked_out_connections_limits() -> None:
    server = FakeServer(A, [{"ok": 1, "n": 1}])
    conn = server.pool.conn
    conn.max_bson_size = 64
    core = make_core(FakeTopology([server]))
    big = bson.encode({"x": "y" * 100})
    with pytest.raises(DocumentTooLarge, match="up to 64 bytes"):
        run(core.executor.execute(_insert([big])))
    assert conn.sent == [] and server.pool.checked_in == 1  # never sent, connection returned
    conn.max_bson_size = 16 * 1024 * 1024
    op = _insert([big])
    run(core.executor.execute(op))
    assert conn.sent[0]["insert"] == "c" and conn.sent[0]["ordered"] is True
    assert conn.sequences[0] == (("documents", [big]),)
    assert op.server_address == A


def test_operation_is_built_again_for_each_attempt() -> None:
    class WireVersion(Operation):
        __slots__ = ()
        name = "ping"
        retryable_read = True
        read_preference = ReadPreference.PRIMARY

        def __init__(self) -> None:
            self.dbname = "db"
            self.codec_options = DEFAULT_CODEC_OPTIONS
            self.server_address = None

        def build(self, conn: Any) -> Dict[str, Any]:
            return {"ping": 1, "wire": conn.max_wire_version}

    a = FakeServer(A, [AutoReconnect("reset")], mongos=True)
    b = FakeServer(B, [OK], mongos=True)
    b.pool.conn.max_wire_version = 17
    op = WireVersion()
    run(make_core(FakeTopology([a, b], TopologyType.Sharded)).executor.execute(op))
    assert a.pool.conn.sent[0]["wire"] == 21 and b.pool.conn.sent[0]["wire"] == 17
    assert op.server_address == B


def test_multi_write_operation_is_not_retried() -> None:
    labelled = {"ok": 0, "code": 91, "errmsg": "shutting down", "errorLabels": ["RetryableWriteError"]}
    server = FakeServer(A, [labelled, OK])
    op = WriteStatements("db", "delete", "c", "deletes", [bson.encode({"q": {}, "limit": 0})], None,
                         DEFAULT_CODEC_OPTIONS, retryable=False, write_concern=None, unacknowledged=False)
    with pytest.raises(NotPrimaryError):
        run(make_core(FakeTopology([server])).executor.execute(op))
    assert len(server.pool.conn.sent) == 1 and "txnNumber" not in server.pool.conn.sent[0]


def test_find_one_operation_stamps_its_read_concern_and_handles_the_reply() -> None:
    reply = {"ok": 1, "cursor": {"id": 0, "ns": "db.c", "firstBatch": [{"_id": 1}]}}
    server = FakeServer(A, [NOT_PRIMARY, reply])
    core = make_core(FakeTopology([server]))
    op = FindOne("db", "c", {"_id": 1}, ReadPreference.PRIMARY, {"level": "majority"}, DEFAULT_CODEC_OPTIONS)
    session = core.implicit_session()  # (find_one brings its own implicit session)
    cursor = op.handle(run(core.executor.execute(op, session)))
    assert cursor["firstBatch"] == [{"_id": 1}]
    first, second = server.pool.conn.sent  # retried once (a retryable read)
    assert second["find"] == "c" and second["limit"] == 1 and second["singleBatch"] is True
    assert second["readConcern"] == {"level": "majority"} and "lsid" in second


def test_find_one_records_the_executors_implicit_session_for_killing_an_open_cursor() -> None:
    # find_one runs without a ClientSession: the executor takes a pooled server session and
    # records its lsid on the operation; the kill of a cursor the server left open names it.
    open_cursor = {"ok": 1, "cursor": {"id": 42, "ns": "db.c", "firstBatch": [{"_id": 1}]}}
    server = FakeServer(A, [open_cursor, {"ok": 1}])
    core = make_core(FakeTopology([server]))
    op = FindOne("db", "c", {"_id": 1}, ReadPreference.PRIMARY, None, DEFAULT_CODEC_OPTIONS)

    async def go() -> None:
        op.handle(await core.executor.execute(op))
        await core.executor.execute(KillCursors("db", "c", [42], A, lsid=op.lsid))

    run(go())
    find, kill = server.pool.conn.sent
    assert op.lsid is not None and find["lsid"] == op.lsid
    assert kill["killCursors"] == "c" and kill["cursors"] == [42] and kill["lsid"] == op.lsid


def test_an_executors_implicit_session_is_discarded_after_a_network_error() -> None:
    # (sessions spec: a server session that saw a network error is dirty, never reused)
    server = FakeServer(A, [AutoReconnect("reset"), {"ok": 1, "n": 1}, {"ok": 1, "n": 1}])
    core = make_core(FakeTopology([server]))
    op = WriteStatements("db", "insert", "c", "documents", [bson.encode({"_id": 1})], None,
                         DEFAULT_CODEC_OPTIONS, retryable=True, write_concern=None, unacknowledged=False)
    run(core.executor.execute(op))
    first, second = server.pool.conn.sent  # retried once, same lsid and txnNumber
    assert first["lsid"] == second["lsid"] and first["txnNumber"] == second["txnNumber"] == 1
    assert len(core.session_pool._pool) == 0  # (dirty: dropped, not pooled)
    run(core.executor.execute(WriteStatements("db", "insert", "c", "documents", [bson.encode({"_id": 2})], None,
                              DEFAULT_CODEC_OPTIONS, retryable=True, write_concern=None, unacknowledged=False)))
    assert server.pool.conn.sent[2]["lsid"] != first["lsid"]  # a new server session
    assert len(core.session_pool._pool) == 1


def test_get_more_and_kill_cursors_run_on_the_cursors_server() -> None:
    a = FakeServer(A, [])
    b = FakeServer(B, [{"ok": 1, "cursor": {"id": 0, "ns": "db.c", "nextBatch": []}}, {"ok": 0}])
    core = make_core(FakeTopology([a, b]))

    async def go() -> None:
        await core.executor.execute(GetMore("db", "c", 7, B, DEFAULT_CODEC_OPTIONS, batch_size=3, comment="x"))
        await core.executor.execute(KillCursors("db", "c", [7], B))  # (its reply is not checked)

    run(go())
    get_more, kill = b.pool.conn.sent
    assert get_more["getMore"] == 7 and get_more["batchSize"] == 3 and get_more["comment"] == "x"
    assert kill["killCursors"] == "c" and kill["cursors"] == [7]
    assert a.pool.conn.sent == []


def test_concern_rules_inside_and_outside_a_transaction() -> None:
    core = make_core(FakeTopology([FakeServer(A, [])]))
    s = core.explicit_session(SessionOptions())
    wc = WriteConcern(w=2)
    assert write_concern_for(s, wc) is wc
    assert read_concern_document_for(s, ReadConcern("majority")) == {"level": "majority"}
    assert read_concern_document_for(None, ReadConcern()) is None
    assert read_preference_for(s, ReadPreference.SECONDARY) is ReadPreference.SECONDARY
    s.start_transaction(read_preference=ReadPreference.PRIMARY)
    assert write_concern_for(s, wc) is None
    assert read_concern_document_for(s, ReadConcern("majority")) is None
    assert read_preference_for(s, ReadPreference.SECONDARY) is ReadPreference.PRIMARY


def test_bulk_write_batches_are_cut_by_the_checked_out_connections_limits() -> None:
    from pymongo.operations import UpdateMany, UpdateOne

    from amongo.engine.operations import Bulk

    server = FakeServer(A, [{"ok": 1, "n": 2, "nModified": 2}, {"ok": 1, "n": 2, "nModified": 2},
                            {"ok": 1, "n": 1, "nModified": 1}])
    conn = server.pool.conn
    conn.max_write_batch_size = 2  # (the client-side caps below are larger: the connection's apply)
    core = make_core(FakeTopology([server]))
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    for i in range(4):
        bulk.add_request(UpdateOne({"i": i}, {"$set": {"x": 1}}))
    bulk.add_request(UpdateMany({}, {"$set": {"y": 1}}))
    result, acknowledged = run(bulk.execute(core.executor, None, WriteConcern(), (16 * 1024 * 1024, 48_000_000, 1000)))
    assert acknowledged and result["nModified"] == 5
    assert [len(seqs[0][1]) for seqs in conn.sequences] == [2, 2, 1]
    first, second, last = conn.sent
    assert "txnNumber" in first and "txnNumber" in second  # retryable batches
    assert "txnNumber" not in last  # the batch holding the multi update is not retryable


# -- pre-encoded command parts (spliced after the command's own fields) ------------------------
def test_constant_parts_are_spliced_pre_encoded() -> None:
    from pymongo.server_api import ServerApi

    ct = {"clusterTime": Timestamp(5, 1), "signature": {"hash": b"\x00" * 20, "keyId": 0}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct}, OK, OK], mongos=True)
    core = make_core(FakeTopology([server], TopologyType.Sharded), server_api=ServerApi("1"))
    rp = ReadPreference.SECONDARY_PREFERRED

    async def go() -> None:
        for _ in range(3):
            await command(core.executor, "db", {"find": "c"}, read_preference=rp, retryable_read=True)

    run(go())
    conn = server.pool.conn
    first, second, third = conn.sent
    # Nothing constant is in the command dict: it arrives as bytes, and decodes as before.
    assert all(conn.tails)
    assert first["lsid"] == second["lsid"] == third["lsid"]
    assert first["$readPreference"] == second["$readPreference"] == rp.document
    assert first["apiVersion"] == "1" and "$clusterTime" not in first
    assert second["$clusterTime"] == third["$clusterTime"] == ct
    # (the spliced elements come after the command's own fields; the name stays first)
    assert next(iter(first)) == "find"
    # The same read preference object and the same clock value reuse their encoding.
    assert core.executor._ct_element[0] is core.cluster_time
    assert conn.tails[1] == conn.tails[2]


def test_spliced_cluster_time_follows_the_clients_clock() -> None:
    ct1 = {"clusterTime": Timestamp(5, 1), "signature": {"hash": b"\x01" * 20, "keyId": 1}}
    ct2 = {"clusterTime": Timestamp(6, 1), "signature": {"hash": b"\x02" * 20, "keyId": 2}}
    older = {"clusterTime": Timestamp(4, 1), "signature": {"hash": b"\x03" * 20, "keyId": 3}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct1}, {"ok": 1, "$clusterTime": ct2},
                            {"ok": 1, "$clusterTime": older}, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        for _ in range(4):
            await command(core.executor, "db", {"ping": 1})

    run(go())
    sent = server.pool.conn.sent
    assert "$clusterTime" not in sent[0]
    assert sent[1]["$clusterTime"] == ct1
    assert sent[2]["$clusterTime"] == ct2  # the clock advanced: encoded again
    assert sent[3]["$clusterTime"] == ct2  # an older reply does not move it back


def test_a_sessions_newer_cluster_time_is_sent_as_a_document() -> None:
    ct = {"clusterTime": Timestamp(5, 1), "signature": {}}
    newer = {"clusterTime": Timestamp(9, 1), "signature": {}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct}, OK])
    core = make_core(FakeTopology([server]))

    async def go() -> None:
        await command(core.executor, "db", {"ping": 1})
        session = core.explicit_session(SessionOptions())
        session.advance_cluster_time(newer)
        await command(core.executor, "db", {"ping": 1}, session=session)

    run(go())
    second = server.pool.conn.sent[1]
    assert second["$clusterTime"] is newer  # (the user's document itself, not a cached encoding)


def test_read_preference_encodings_are_per_read_preference() -> None:
    from pymongo.read_preferences import Secondary

    server = FakeServer(A, [OK, OK, OK, OK], mongos=True)
    core = make_core(FakeTopology([server], TopologyType.Sharded))
    prefs = [ReadPreference.SECONDARY, Secondary(tag_sets=[{"dc": "ny"}]), ReadPreference.NEAREST,
             ReadPreference.PRIMARY]

    async def go() -> None:
        for rp in prefs:
            await command(core.executor, "db", {"find": "c"}, read_preference=rp)

    run(go())
    sent = server.pool.conn.sent
    assert [s.get("$readPreference") for s in sent] == [
        {"mode": "secondary"}, {"mode": "secondary", "tags": [{"dc": "ny"}]}, {"mode": "nearest"}, None]


def test_direct_connection_to_a_member_sends_primary_preferred() -> None:
    server = FakeServer(A, [OK])
    core = make_core(FakeTopology([server], TopologyType.Single))
    run(command(core.executor, "db", {"find": "c"}, read_preference=ReadPreference.PRIMARY))
    assert server.pool.conn.sent[0]["$readPreference"] == {"mode": "primaryPreferred"}


def test_monitored_commands_carry_every_part_in_the_document() -> None:
    from pymongo import monitoring

    class Listener(monitoring.CommandListener):
        def __init__(self) -> None:
            self.commands: List[Any] = []

        def started(self, event: Any) -> None:
            self.commands.append(event.command)

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    listener = Listener()
    ct = {"clusterTime": Timestamp(5, 1), "signature": {}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct}, OK], mongos=True)
    topology = FakeTopology([server], TopologyType.Sharded)
    core = ClientCore(SimpleNamespace(get_io_loop=asyncio.get_event_loop), topology,  # type: ignore[arg-type]
                      EventListeners([listener]))

    async def go() -> None:
        for _ in range(2):
            await command(core.executor, "db", {"find": "c"}, read_preference=ReadPreference.NEAREST)

    run(go())
    assert server.pool.conn.tails == [None, None]  # (the connection gets the whole document)
    event = listener.commands[1]
    assert event["lsid"] and event["$clusterTime"] == ct and event["$db"] == "db"
    assert event["$readPreference"] == {"mode": "nearest"}


def test_server_session_lsid_element() -> None:
    from amongo.engine.session import ServerSession

    s = ServerSession()
    assert bson.decode(splice_elements(bson.encode({}), s.lsid_element)) == {"lsid": s.session_id}


def test_a_commands_own_fields_are_replaced_not_repeated() -> None:
    """A command that already carries lsid / $clusterTime / $readPreference / apiVersion gets
    the driver's value in its own key (as before splicing), never a second key."""
    from pymongo.server_api import ServerApi

    ct = {"clusterTime": Timestamp(5, 1), "signature": {}}
    server = FakeServer(A, [{"ok": 1, "$clusterTime": ct}, OK], mongos=True)
    core = make_core(FakeTopology([server], TopologyType.Sharded), server_api=ServerApi("1"))

    async def go() -> None:
        for _ in range(2):
            cmd = {"find": "c", "lsid": {"id": 0}, "$clusterTime": {"x": 1},
                   "$readPreference": {"mode": "primary"}, "apiVersion": "0"}
            await command(core.executor, "db", cmd, read_preference=ReadPreference.NEAREST)

    run(go())
    conn = server.pool.conn
    for sent, tail in zip(conn.sent, conn.tails):
        # (no key of the command's reappears in the spliced bytes)
        spliced = bson.decode(splice_elements(bson.encode({}), tail or b""))
        assert not set(spliced) & {"lsid", "$clusterTime", "$readPreference", "apiVersion"}
        assert sent["lsid"] != {"id": 0} and sent["apiVersion"] == "1"
        assert sent["$readPreference"] == {"mode": "nearest"}
    assert conn.sent[1]["$clusterTime"] == ct


def test_insert_many_one_array_is_decided_by_the_checked_out_connection() -> None:
    """insert_many's documents go as one ``documents`` array when they fit one command on the
    connection checked out (its limits, not the topology description's), else as kind-1
    sequences cut by that connection's limits."""
    from amongo.engine.operations import Bulk

    docs = [{"_id": i, "s": "x" * 10} for i in range(5)]
    # Fits: one command, no sequences, the array appended when sent.
    server = FakeServer(A, [{"ok": 1, "n": 5}])
    conn = server.pool.conn
    arrays: List[Any] = []
    sent = conn.command

    def command(dbname: str, cmd: Any, **kwargs: Any) -> Any:
        arrays.append(kwargs.get("array"))
        return sent(dbname, cmd, **kwargs)

    conn.command = command  # type: ignore[method-assign]
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    bulk.insert_docs = list(docs)
    result, _ = run(bulk.execute(make_core(FakeTopology([server])).executor, None, WriteConcern()))
    assert result["nInserted"] == 5
    assert conn.sequences == [None] and arrays[0] is not None and arrays[0].docs == docs
    assert "txnNumber" in conn.sent[0]  # retryable
    # The connection's maxWriteBatchSize is 2: sequences of 2, 2, 1 (no caps given).
    server = FakeServer(A, [{"ok": 1, "n": 2}, {"ok": 1, "n": 2}, {"ok": 1, "n": 1}])
    server.pool.conn.max_write_batch_size = 2
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    bulk.insert_docs = list(docs)
    result, _ = run(bulk.execute(make_core(FakeTopology([server])).executor, None, WriteConcern()))
    assert result["nInserted"] == 5
    assert [len(seqs[0][1]) for seqs in server.pool.conn.sequences] == [2, 2, 1]
    # Its maxBsonObjectSize is too small for one array, not for each document.
    server = FakeServer(A, [{"ok": 1, "n": 5}])
    server.pool.conn.max_bson_size = 100
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    bulk.insert_docs = list(docs)
    result, _ = run(bulk.execute(make_core(FakeTopology([server])).executor, None, WriteConcern()))
    assert [len(seqs[0][1]) for seqs in server.pool.conn.sequences] == [5]
    # Caps (a client subclass's lower max_write_batch_size) still apply.
    server = FakeServer(A, [{"ok": 1, "n": 3}, {"ok": 1, "n": 2}])
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    bulk.insert_docs = list(docs)
    run(bulk.execute(make_core(FakeTopology([server])).executor, None, WriteConcern(),
                     (16 * 1024 * 1024, 48_000_000, 3)))
    assert [len(seqs[0][1]) for seqs in server.pool.conn.sequences] == [3, 2]


def test_insert_many_retry_resends_the_same_array() -> None:
    from amongo.engine.operations import Bulk

    docs = [{"_id": i} for i in range(3)]
    server = FakeServer(A, [AutoReconnect("reset"), {"ok": 1, "n": 3}])
    bulk = Bulk("db", "c", DEFAULT_CODEC_OPTIONS, True, None)
    bulk.insert_docs = docs
    result, _ = run(bulk.execute(make_core(FakeTopology([server])).executor, None, WriteConcern()))
    assert result["nInserted"] == 3
    first, retry = server.pool.conn.sent
    assert first["txnNumber"] == retry["txnNumber"] and server.pool.conn.sequences == [None, None]


def test_client_write_limits_are_caps_only_when_a_subclass_lowers_them() -> None:
    from amongo.motor_asyncio import AsyncIOMotorClient

    class Small(AsyncIOMotorClient):  # type: ignore[misc]
        @property
        def max_write_batch_size(self) -> int:  # type: ignore[override]
            return 10

    plain = AsyncIOMotorClient("mongodb://a:1", connect=False)
    small = Small("mongodb://a:1", connect=False)
    try:
        assert plain._executor.write_caps() is None
        assert small._executor.write_caps() == (16 * 1024 * 1024, 48_000_000, 10)
    finally:
        plain.close()
        small.close()
