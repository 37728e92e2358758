"""The unified test format's rules for matching expected values against actual ones."""
from __future__ import annotations

import datetime
import json
import re
from typing import Any, Callable, Dict, Mapping

from bson import (
    Binary,
    Code,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
    json_util,
)
from bson.int64 import Int64 as _Int64


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


class MatchError(AssertionError):
    pass


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, _Int64)) and not isinstance(v, bool)


def _bson_type(v: Any) -> set:
    if isinstance(v, bool):
        return {"bool"}
    if isinstance(v, _Int64):
        return {"long", "number"}
    if isinstance(v, int):
        return {"int", "number"} if -(2**31) <= v < 2**31 else {"long", "number"}
    if isinstance(v, float):
        return {"double", "number"}
    if isinstance(v, Decimal128):
        return {"decimal", "number"}
    if isinstance(v, str):
        return {"string"}
    if isinstance(v, Mapping):
        return {"object"}
    if isinstance(v, (list, tuple)):
        return {"array"}
    if isinstance(v, (bytes, Binary)):
        return {"binData"}
    if isinstance(v, ObjectId):
        return {"objectId"}
    if isinstance(v, datetime.datetime):
        return {"date"}
    if v is None:
        return {"null"}
    if isinstance(v, (Regex, re.Pattern)):
        return {"regex"}
    if type(v).__name__ == "DBRef":
        return {"dbPointer", "object"}
    if isinstance(v, Code):
        return {"javascriptWithScope"} if v.scope is not None else {"javascript"}
    if isinstance(v, Timestamp):
        return {"timestamp"}
    if isinstance(v, MinKey):
        return {"minKey"}
    if isinstance(v, MaxKey):
        return {"maxKey"}
    return {type(v).__name__}


class Matcher:
    """Matches expectations; *entities* resolves ``$$matchesEntity`` / ``$$sessionLsid``."""

    def __init__(self, entities: Dict[str, Any], lsids: Dict[str, Any]) -> None:
        self.entities = entities
        self.lsids = lsids

    def match(self, expected: Any, actual: Any, root: bool = True, path: str = "$") -> None:
        if isinstance(expected, Mapping) and len(expected) == 1:
            (key,) = expected
            if isinstance(key, str) and key.startswith("$$"):
                self._special(key, expected[key], actual, root, path)
                return
        if actual is MISSING:
            raise MatchError(f"{path}: missing, expected {expected!r}")
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping):
                raise MatchError(f"{path}: expected a document, got {actual!r}")
            for k, v in expected.items():
                self.match(v, actual[k] if k in actual else MISSING, False, f"{path}.{k}")
            if not root:
                extra = [k for k in actual if k not in expected]
                if extra:
                    raise MatchError(f"{path}: unexpected fields {extra} in {actual!r}")
            return
        if isinstance(expected, list):
            if not isinstance(actual, (list, tuple)):
                raise MatchError(f"{path}: expected an array, got {actual!r}")
            if len(expected) != len(actual):
                raise MatchError(f"{path}: expected {len(expected)} items, got {len(actual)}: {actual!r}")
            for i, (e, a) in enumerate(zip(expected, actual)):
                self.match(e, a, root, f"{path}[{i}]")
            return
        if _is_number(expected) and _is_number(actual):
            if expected != actual:
                raise MatchError(f"{path}: {actual!r} != {expected!r}")
            return
        if isinstance(expected, bool) or isinstance(actual, bool):
            if type(expected) is not type(actual) or expected != actual:
                raise MatchError(f"{path}: {actual!r} != {expected!r}")
            return
        if isinstance(expected, (bytes, Binary)) and isinstance(actual, (bytes, Binary)):
            if bytes(expected) != bytes(actual):
                raise MatchError(f"{path}: {actual!r} != {expected!r}")
            return
        if expected != actual:
            raise MatchError(f"{path}: {actual!r} != {expected!r}")

    def _special(self, op: str, arg: Any, actual: Any, root: bool, path: str) -> None:
        if op == "$$exists":
            if bool(arg) != (actual is not MISSING):
                raise MatchError(f"{path}: $$exists {arg} but actual is {actual!r}")
            return
        if op == "$$unsetOrMatches":
            if actual is MISSING:
                return
            self.match(arg, actual, root, path)
            return
        if actual is MISSING:
            raise MatchError(f"{path}: missing, expected {op}: {arg!r}")
        if op == "$$type":
            names = [arg] if isinstance(arg, str) else list(arg)
            types = _bson_type(actual)
            if not any(n in types for n in names):
                raise MatchError(f"{path}: {actual!r} is not of type {names}")
        elif op == "$$matchesEntity":
            self.match(self.entities[arg], actual, root, path)
        elif op == "$$matchesHexBytes":
            if not isinstance(actual, (bytes, Binary)) or bytes(actual) != bytes.fromhex(arg):
                raise MatchError(f"{path}: {actual!r} does not match hex {arg}")
        elif op == "$$sessionLsid":
            self.match(self.lsids[arg], actual, False, path)
        elif op == "$$lte":
            if not (_is_number(actual) and actual <= arg):
                raise MatchError(f"{path}: {actual!r} is not <= {arg!r}")
        elif op == "$$matchAsDocument":
            if not isinstance(actual, str):
                raise MatchError(f"{path}: $$matchAsDocument needs a string, got {actual!r}")
            self.match(arg, json_util.loads(actual), False, path)
        elif op == "$$matchAsRoot":
            self.match(arg, actual, True, path)
        else:
            raise NotImplementedError(f"special operator {op}")


def exact_equal(expected: Any, actual: Any) -> bool:
    """Outcome comparison: exact, except numerically equal numbers of different types."""
    if isinstance(expected, Mapping):
        return (isinstance(actual, Mapping) and set(expected) == set(actual)
                and all(exact_equal(expected[k], actual[k]) for k in expected))
    if isinstance(expected, list):
        return (isinstance(actual, (list, tuple)) and len(expected) == len(actual)
                and all(exact_equal(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return expected == actual
