"""The document type variable the facades are generic in (PyMongo's ``_DocumentType``).

``AsyncIOMotorClient[User]``, ``AsyncIOMotorCollection[User]``, ``AsyncIOMotorCursor[User]``...
are ``typing.Generic`` in it, so ``await coll.find_one()`` is ``Optional[User]`` and
``async for doc in cursor`` yields ``User``.

It has no default, exactly as in PyMongo and Motor's stubs: where they leave the type
unsolved amongo does the same, so code that type-checks with Motor type-checks with amongo.
That includes the error on an unannotated ``client = AsyncIOMotorClient(...)`` ("Need type
annotation"): Motor applications annotate it or silence it with ``# type: ignore``, and a
default (``Any`` or ``dict[str, Any]``, both tried) turns that ignore into an "unused
ignore" error under ``mypy --strict``, while ``dict[str, Any]`` also breaks code that relies
on ``Any`` where the type is unsolved (``AsyncIOMotorClient().db.coll`` assigned to an
``AsyncIOMotorCollection[User]``). Annotate ``AsyncIOMotorClient[dict[str, Any]]`` or pass
``document_class=`` for a precise type.
"""
from __future__ import annotations

from typing import Any, Mapping, TypeVar

_DocumentType = TypeVar("_DocumentType", bound=Mapping[str, Any])
#: a second document type, for arguments whose type does not bind the result's (Motor's stubs)
_DocumentTypeArg = TypeVar("_DocumentTypeArg", bound=Mapping[str, Any])
#: the document type of a command's reply decoded with explicit codec options
_CodecDocumentType = TypeVar("_CodecDocumentType", bound=Mapping[str, Any])

__all__ = ["_DocumentType", "_DocumentTypeArg", "_CodecDocumentType"]
