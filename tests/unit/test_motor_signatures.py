"""amongo accepts the positional (and keyword) arguments Motor 3.7.1 accepts, in the same order.

Compared programmatically with the installed Motor (``motor==3.7.1``, in the test extra) and
the PyMongo classes it wraps: Motor's awaitable methods carry the wrapped synchronous PyMongo
method's signature (``functools.wraps``), and where Motor itself only says ``(*args,
**kwargs)`` (``find``, ``aggregate``, ``list_search_indexes``...) the call is forwarded to a
PyMongo method or cursor constructor, whose signature is the real one. Any drift (a new
PyMongo parameter, a reordering on either side) fails here.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

import gridfs
import motor.motor_asyncio as motor_asyncio
import pymongo.collection
import pymongo.cursor
import pymongo.database
import pymongo.mongo_client
import pytest

from amongo import cursor as amongo_cursor
from amongo import gridfs as amongo_gridfs
from amongo import motor_asyncio as amongo_motor

P = inspect.Parameter
POSITIONAL = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)

#: Motor class names compared (the tornado classes are the same classes in both libraries)
CLASS_NAMES = [
    "AsyncIOMotorClient",
    "AsyncIOMotorDatabase",
    "AsyncIOMotorCollection",
    "AsyncIOMotorCursor",
    "AsyncIOMotorCommandCursor",
    "AsyncIOMotorLatentCommandCursor",
    "AsyncIOMotorChangeStream",
    "AsyncIOMotorClientSession",
    "AsyncIOMotorGridFSBucket",
    "AsyncIOMotorGridIn",
    "AsyncIOMotorGridOut",
    "AsyncIOMotorGridOutCursor",
]

#: Motor constructors applications do not call (Motor builds these from PyMongo objects)
INTERNAL_INIT = {
    "AsyncIOMotorCursor", "AsyncIOMotorCommandCursor", "AsyncIOMotorLatentCommandCursor",
    "AsyncIOMotorChangeStream", "AsyncIOMotorClientSession", "AsyncIOMotorGridOutCursor",
}

#: (signature source, how many leading parameters to drop: self and the bound collection)
Source = Tuple[Callable[..., Any], int]

#: Motor members whose own signature is a forwarding ``(*args, **kwargs)``: the real one
MOTOR_RESOLVED: Dict[Tuple[str, str], Source] = {
    ("AsyncIOMotorClient", "__init__"): (pymongo.mongo_client.MongoClient.__init__, 1),
    ("AsyncIOMotorCollection", "find"): (pymongo.cursor.Cursor.__init__, 2),
    ("AsyncIOMotorCollection", "find_raw_batches"): (pymongo.cursor.Cursor.__init__, 2),
    # find_one(filter, *args, **kwargs) -> find(filter, *args, **kwargs): Cursor's parameters
    ("AsyncIOMotorCollection", "find_one"): (pymongo.cursor.Cursor.__init__, 1),
    ("AsyncIOMotorCollection", "aggregate"): (pymongo.collection.Collection.aggregate, 1),
    ("AsyncIOMotorCollection", "list_search_indexes"): (pymongo.collection.Collection.list_search_indexes, 1),
    ("AsyncIOMotorDatabase", "aggregate"): (pymongo.database.Database.aggregate, 1),
    ("AsyncIOMotorGridFSBucket", "find"): (gridfs.GridOutCursor.__init__, 2),
}

#: amongo members that forward ``(*args, **kwargs)`` to a constructor: the real one
AMONGO_RESOLVED: Dict[Tuple[str, str], Source] = {
    ("AsyncIOMotorCollection", "find"): (amongo_cursor.Cursor.__init__, 2),
    ("AsyncIOMotorCollection", "find_raw_batches"): (amongo_cursor.Cursor.__init__, 2),
    ("AsyncIOMotorCollection", "find_one"): (amongo_cursor.Cursor.__init__, 1),
    ("AsyncIOMotorGridFSBucket", "find"): (amongo_gridfs.GridOutCursor.__init__, 2),
}


def _params(source: Source) -> List[inspect.Parameter]:
    fn, drop = source
    return list(inspect.signature(fn).parameters.values())[drop:]


def _own(cls: type, member: str) -> Source:
    fn = getattr(cls, member)
    return fn, 1  # unbound: drop self


def _public_methods(cls: type) -> List[str]:
    names = []
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__init__":
            continue
        if isinstance(inspect.getattr_static(cls, name), property):
            continue
        if callable(getattr(cls, name)):
            names.append(name)
    return names


def _cases() -> List[Any]:
    cases = []
    for cls_name in CLASS_NAMES:
        motor_cls = getattr(motor_asyncio, cls_name)
        for member in _public_methods(motor_cls):
            if member == "__init__" and cls_name in INTERNAL_INIT:
                continue
            cases.append(pytest.param(cls_name, member, id=f"{cls_name}.{member}"))
    return cases


CASES = _cases()


def test_cases_cover_the_api():
    names = {c.id for c in CASES}
    # a sample of what must be compared: if Motor's introspection changes shape, this fails
    for must in ("AsyncIOMotorCollection.aggregate", "AsyncIOMotorCollection.insert_one", "AsyncIOMotorCollection.find",
                 "AsyncIOMotorDatabase.command", "AsyncIOMotorClient.__init__", "AsyncIOMotorCursor.sort",
                 "AsyncIOMotorCommandCursor.to_list", "AsyncIOMotorClientSession.with_transaction",
                 "AsyncIOMotorGridFSBucket.upload_from_stream", "AsyncIOMotorChangeStream.try_next"):
        assert must in names, must
    assert len(CASES) > 150


@pytest.mark.parametrize("cls_name,member", CASES)
def test_positional_parameters_match_motor(cls_name: str, member: str) -> None:
    motor_cls = getattr(motor_asyncio, cls_name)
    amongo_cls = getattr(amongo_motor, cls_name)
    assert hasattr(amongo_cls, member), f"amongo's {cls_name} lacks {member}"
    motor_params = _params(MOTOR_RESOLVED.get((cls_name, member)) or _own(motor_cls, member))
    amongo_params = _params(AMONGO_RESOLVED.get((cls_name, member)) or _own(amongo_cls, member))

    motor_pos = [p.name for p in motor_params if p.kind in POSITIONAL]
    while motor_pos and motor_pos[-1].startswith("_"):  # Motor's private ``_delegate``
        motor_pos.pop()
    amongo_pos = [p.name for p in amongo_params if p.kind in POSITIONAL]
    # Motor's positional parameters, same names, same order (amongo may accept more after them)
    assert amongo_pos[: len(motor_pos)] == motor_pos, (
        f"{cls_name}.{member}: Motor takes {motor_pos} positionally, amongo {amongo_pos}"
    )
    for extra in amongo_params[len(motor_pos):]:
        if extra.kind in POSITIONAL:
            assert extra.default is not P.empty, f"{cls_name}.{member}: extra required parameter {extra.name}"
    motor_var_pos = any(p.kind == P.VAR_POSITIONAL for p in motor_params)
    amongo_var_pos = any(p.kind == P.VAR_POSITIONAL for p in amongo_params)
    assert motor_var_pos == amongo_var_pos, f"{cls_name}.{member}: *args differs (Motor {motor_var_pos})"

    # every parameter Motor names is accepted by name (explicitly, or through **kwargs)
    amongo_names = {p.name for p in amongo_params if p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)}
    amongo_var_kw = any(p.kind == P.VAR_KEYWORD for p in amongo_params)
    for p in motor_params:
        if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD, P.POSITIONAL_ONLY) or p.name.startswith("_"):
            continue
        assert p.name in amongo_names or amongo_var_kw, f"{cls_name}.{member}: no parameter {p.name!r}"
    # and a parameter Motor requires is required by amongo too (and vice versa)
    motor_required = [p.name for p in motor_params if p.kind in POSITIONAL and p.default is P.empty]
    motor_required = [n for n in motor_required if not n.startswith("_")]
    amongo_required = [p.name for p in amongo_params if p.kind in POSITIONAL and p.default is P.empty]
    assert motor_required == amongo_required, f"{cls_name}.{member}: required {motor_required} vs {amongo_required}"


def test_motor_awaitables_carry_pymongo_signatures():
    """The comparison above is against PyMongo's real signatures: Motor's awaitable methods
    report the wrapped synchronous PyMongo method's signature."""
    for name in ("insert_one", "update_one", "find_one_and_update", "count_documents", "distinct"):
        assert inspect.signature(getattr(motor_asyncio.AsyncIOMotorCollection, name)) == inspect.signature(
            getattr(pymongo.collection.Collection, name)
        ), name
    assert inspect.signature(motor_asyncio.AsyncIOMotorDatabase.command) == inspect.signature(
        pymongo.database.Database.command
    )


# -- the calls themselves (no server: these return cursors without I/O) ------------------------


@pytest.fixture
def coll() -> Any:
    client = amongo_motor.AsyncIOMotorClient("mongodb://localhost:1", connect=False)
    yield client["db"]["coll"]
    client.close()


def test_collection_aggregate_positional(coll: Any) -> None:
    cursor = coll.aggregate([{"$match": {}}], None, {"x": 1}, "hello")
    assert cursor._command["let"] == {"x": 1}
    assert cursor._command["comment"] == "hello"
    assert cursor.session is None


def test_database_aggregate_positional(coll: Any) -> None:
    cursor = coll.database.aggregate([{"$documents": [{"a": 1}]}], None, comment="c")
    assert cursor._command["aggregate"] == 1
    assert cursor._command["comment"] == "c"


def test_aggregate_raw_batches_positional(coll: Any) -> None:
    cursor = coll.aggregate_raw_batches([], None, "why")
    assert cursor._command["comment"] == "why"


def test_find_positional(coll: Any) -> None:
    cursor = coll.find({"a": 1}, {"a": 1}, 2, 3)
    cmd = cursor._find_command()
    assert (cmd["filter"], cmd["projection"], cmd["skip"], cmd["limit"]) == ({"a": 1}, {"a": 1}, 2, 3)


def test_list_search_indexes_positional(coll: Any) -> None:
    cursor = coll.list_search_indexes("idx", None, "c")
    assert cursor._command["pipeline"] == [{"$listSearchIndexes": {"name": "idx"}}]
    assert cursor._command["comment"] == "c"


def test_too_many_positional_arguments_is_a_type_error(coll: Any) -> None:
    with pytest.raises(TypeError):
        coll.aggregate([], None, None, None, None)

