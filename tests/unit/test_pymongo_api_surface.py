"""amongo.asynchronous against the installed pymongo.asynchronous (and gridfs.asynchronous):
every public name of every mirrored class exists with the same kind (attribute, property,
plain call, coroutine function, async generator). The deliberate differences are listed in
``DIFFERENCES`` below, each with its reason; nothing else may differ."""
from __future__ import annotations

import importlib
import inspect
from typing import Dict, List, Tuple

import pytest

pytest.importorskip("pymongo.asynchronous")

#: (amongo module, pymongo module, class names) mirrored name by name
MODULES: List[Tuple[str, str, List[str]]] = [
    ("amongo.asynchronous.mongo_client", "pymongo.asynchronous.mongo_client", ["AsyncMongoClient"]),
    ("amongo.asynchronous.database", "pymongo.asynchronous.database", ["AsyncDatabase"]),
    ("amongo.asynchronous.collection", "pymongo.asynchronous.collection", ["AsyncCollection"]),
    ("amongo.asynchronous.cursor", "pymongo.asynchronous.cursor", ["AsyncCursor", "AsyncRawBatchCursor"]),
    ("amongo.asynchronous.command_cursor", "pymongo.asynchronous.command_cursor",
     ["AsyncCommandCursor", "AsyncRawBatchCommandCursor"]),
    ("amongo.asynchronous.change_stream", "pymongo.asynchronous.change_stream",
     ["AsyncChangeStream", "AsyncCollectionChangeStream", "AsyncDatabaseChangeStream", "AsyncClusterChangeStream"]),
    ("amongo.asynchronous.client_session", "pymongo.asynchronous.client_session", ["AsyncClientSession"]),
    ("amongo.asynchronous.encryption", "pymongo.asynchronous.encryption", ["AsyncClientEncryption"]),
    ("amongo.asynchronous.gridfs", "gridfs.asynchronous",
     ["AsyncGridFSBucket", "AsyncGridIn", "AsyncGridOut", "AsyncGridOutCursor", "AsyncGridFS"]),
]

ENCRYPTION_MEMBERS = ("create_data_key", "encrypt", "decrypt", "encrypt_expression", "rewrap_many_data_key",
                      "get_key", "get_keys", "delete_key", "add_key_alt_name", "get_key_by_alt_name",
                      "remove_key_alt_name", "close", "create_encrypted_collection", "__aenter__", "__aexit__",
                      "__class_getitem__")

#: THE deliberate differences, with their reason: (class, member) -> reason
DIFFERENCES: Dict[Tuple[str, str], str] = {
    # client-side field-level encryption is not implemented: the class exists and its
    # constructor raises ConfigurationError (amongo.motor_core.AgnosticClientEncryption)
    **{("AsyncClientEncryption", m): "encryption not implemented: the constructor raises ConfigurationError"
       for m in ENCRYPTION_MEMBERS},
    # amongo's command cursors return raw batches through the same class (aggregate_raw_batches)
    ("AsyncRawBatchCommandCursor", "*"): "an alias of AsyncCommandCursor",
}


def _kind(cls: type, name: str) -> str:
    try:
        raw = inspect.getattr_static(cls, name)
    except AttributeError:
        return "missing"
    if isinstance(raw, property):
        return "property"
    if isinstance(raw, (classmethod, staticmethod)):
        raw = raw.__func__
    if raw is None:
        return "None"
    if inspect.iscoroutinefunction(raw):
        return "coroutine"
    if inspect.isasyncgenfunction(raw):
        return "asyncgen"
    if callable(raw):
        return "call"
    return "attribute"


def _public(cls: type) -> List[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_") or (n.startswith("__") and n in _DUNDERS))


_DUNDERS = {"__aenter__", "__aexit__", "__aiter__", "__anext__", "__getitem__", "__getattr__", "__iter__",
            "__next__", "__call__", "__bool__", "__class_getitem__"}


def _pairs() -> List[Tuple[str, type, type]]:
    out = []
    for amod, pmod, names in MODULES:
        a, p = importlib.import_module(amod), importlib.import_module(pmod)
        for name in names:
            out.append((name, getattr(a, name), getattr(p, name)))
    return out


@pytest.mark.parametrize("name,ours,theirs", _pairs(), ids=[p[0] for p in _pairs()])
def test_same_public_names_and_kinds(name: str, ours: type, theirs: type) -> None:
    if (name, "*") in DIFFERENCES:
        return
    wrong = []
    for member in _public(theirs):
        if (name, member) in DIFFERENCES:
            continue
        want, got = _kind(theirs, member), _kind(ours, member)
        if want != got and not (want == "attribute" and got == "property"):
            wrong.append(f"{name}.{member}: PyMongo {want}, amongo {got}")
    assert not wrong, "\n".join(wrong)


def test_package_exports() -> None:
    import amongo
    import amongo.asynchronous as ours

    assert amongo.AsyncMongoClient is ours.AsyncMongoClient
    for _amod, _pmod, names in MODULES[:-2]:
        for n in names:
            assert hasattr(importlib.import_module(_amod), n)


def test_differences_are_real() -> None:
    """Each listed difference names a member PyMongo has (no stale entries)."""
    classes = {name: theirs for name, _ours, theirs in _pairs()}
    for cls_name, member in DIFFERENCES:
        assert cls_name in classes
        if member != "*":
            assert hasattr(classes[cls_name], member), (cls_name, member)


def test_async_for_motor_and_pymongo_share_the_implementation() -> None:
    """The PyMongo-style classes are subclasses of the Motor-style ones (one implementation)."""
    from amongo.asynchronous import AsyncCollection, AsyncCursor, AsyncDatabase, AsyncMongoClient
    from amongo.motor_core import AgnosticClient, AgnosticCollection, AgnosticCursor, AgnosticDatabase

    assert issubclass(AsyncMongoClient, AgnosticClient)
    assert issubclass(AsyncDatabase, AgnosticDatabase)
    assert issubclass(AsyncCollection, AgnosticCollection)
    assert issubclass(AsyncCursor, AgnosticCursor)
