"""Python-version shims (amongo supports CPython 3.9 and newer)."""
from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any, Callable, TypeVar

__all__ = ["slotted_dataclass"]

T = TypeVar("T")


if TYPE_CHECKING:  # type checkers see the standard decorator (fields, __init__, replace())
    from dataclasses import dataclass as slotted_dataclass
else:
    def slotted_dataclass(**kwargs: Any) -> Callable[[T], T]:
        """``@dataclass(slots=True, **kwargs)``; on Python 3.9, whose ``dataclass`` has no
        ``slots`` argument, the class is rebuilt with ``__slots__`` the way 3.10 does it."""
        if sys.version_info >= (3, 10):
            return dataclasses.dataclass(slots=True, **kwargs)

        def wrap(cls: Any) -> Any:
            cls = dataclasses.dataclass(**kwargs)(cls)
            names = tuple(f.name for f in dataclasses.fields(cls))
            body = dict(cls.__dict__)
            body["__slots__"] = names
            for name in names:
                body.pop(name, None)  # (class-level defaults would clash with the slots)
            body.pop("__dict__", None)
            body.pop("__weakref__", None)
            new = type(cls)(cls.__name__, cls.__bases__, body)
            new.__qualname__ = cls.__qualname__
            return new

        return wrap
