"""The document type variable the facades are generic in (as PyMongo's ``_DocumentType``).

``AsyncIOMotorClient[User]``, ``AsyncIOMotorCollection[User]``, ``AsyncIOMotorCursor[User]``...
are ``typing.Generic`` in it, so ``await coll.find_one()`` is ``Optional[User]`` and
``async for doc in cursor`` yields ``User``.

For type checkers it defaults (PEP 696) to ``Any``: where Motor's stubs leave the type
unsolved (an unannotated ``AsyncIOMotorClient()``, a bare ``AsyncIOMotorCollection``
annotation, ``AsyncIOMotorClient().db.coll`` assigned to an ``AsyncIOMotorCollection[User]``)
amongo gives the same ``Any`` (without Motor's "Need type annotation" error), so code that
type-checks with Motor type-checks with amongo. A ``dict[str, Any]`` default was tried and
rejected: it turns those ``Any`` into ``dict[str, Any]`` and breaks such code. Annotate
``AsyncIOMotorClient[dict[str, Any]]`` (or pass ``document_class=``) for a precise type.
At runtime the variable is a plain ``typing.TypeVar`` (no ``typing_extensions`` dependency).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    _DocumentType = TypeVar("_DocumentType", bound=Mapping[str, Any], default=Any)
else:
    from typing import TypeVar

    _DocumentType = TypeVar("_DocumentType", bound=Mapping[str, Any])

#: a second document type, for arguments whose type does not bind the result's (Motor's stubs)
_DocumentTypeArg = TypeVar("_DocumentTypeArg", bound=Mapping[str, Any])
#: the document type of a command's reply decoded with explicit codec options
_CodecDocumentType = TypeVar("_CodecDocumentType", bound=Mapping[str, Any])

__all__ = ["_DocumentType", "_DocumentTypeArg", "_CodecDocumentType"]
