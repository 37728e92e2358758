"""pytest plugin for ``make test-odm`` (Beanie 2.x): ``-p amongo_as_pymongo`` replaces
``pymongo.AsyncMongoClient`` with ``amongo.AsyncMongoClient`` before the ODM's conftest (and
Beanie itself) run ``from pymongo import AsyncMongoClient``.

Everything else Beanie imports from pymongo (errors, results, operations, IndexModel, the
``pymongo.asynchronous`` classes it names in annotations) stays PyMongo's own, exactly as for an
application that changes the import of its client class.

``AMONGO_ODM_DRIVER=pymongo`` leaves PyMongo's own client in place (the baseline run).
"""
from __future__ import annotations

import os

import pymongo
import pytest

DRIVER = os.environ.get("AMONGO_ODM_DRIVER", "amongo")
if DRIVER == "amongo":
    import amongo

    pymongo.AsyncMongoClient = amongo.AsyncMongoClient  # type: ignore[misc]  # the one-line swap
elif DRIVER != "pymongo":
    raise RuntimeError(f"AMONGO_ODM_DRIVER must be 'amongo' or 'pymongo', not {DRIVER!r}")


def pytest_report_header(config: pytest.Config) -> str:
    cls = pymongo.AsyncMongoClient
    return f"pymongo.AsyncMongoClient served by: {DRIVER} ({cls.__module__}.{cls.__qualname__})"
