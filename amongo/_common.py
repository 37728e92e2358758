"""Options inherited client → database → collection (shared by the facades)."""
from __future__ import annotations

from typing import Any, Dict, Generic, Optional

from bson.codec_options import CodecOptions
from pymongo.errors import InvalidName
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from amongo._typing import _DocumentType
from amongo.engine.clock import ts_newer as _clock_ts_newer

from amongo.engine.executor import Executor
from amongo.engine.operation import DatabaseWrite, read_preference_for, write_concern_for
from amongo.server_errors import check_write_concern_error
from amongo.engine.session import ClientSession


class _BaseObject(Generic[_DocumentType]):
    """Options inherited client → database → collection (generic in the document type:
    ``codec_options`` is ``CodecOptions[_DocumentType]``)."""

    __slots__ = ("_codec_options", "_read_preference", "_write_concern", "_read_concern", "_executor")
    #: the client's executor, shared by its databases and collections (and their cursors)
    _executor: Executor

    def __init__(self, codec_options: CodecOptions[_DocumentType], read_preference: Any, write_concern: WriteConcern, read_concern: ReadConcern) -> None:
        if not isinstance(codec_options, CodecOptions):
            raise TypeError("codec_options must be an instance of bson.codec_options.CodecOptions")
        if not isinstance(write_concern, WriteConcern):
            raise TypeError("write_concern must be an instance of pymongo.write_concern.WriteConcern")
        if not isinstance(read_concern, ReadConcern):
            raise TypeError("read_concern must be an instance of pymongo.read_concern.ReadConcern")
        self._codec_options = codec_options
        self._read_preference = read_preference
        self._write_concern = write_concern
        self._read_concern = read_concern

    def _inherit(
        self,
        parent: "_BaseObject[Any]",
        codec_options: Optional[CodecOptions[Any]],
        read_preference: Any,
        write_concern: Optional[WriteConcern],
        read_concern: Optional[ReadConcern],
    ) -> None:
        """Initialise from *parent*'s options, each overridden when given (not None), and
        share its engine (the client's executor: the one thing a facade hands operations to)."""
        self._executor = parent._executor
        _BaseObject.__init__(
            self,
            codec_options if codec_options is not None else parent.codec_options,
            read_preference if read_preference is not None else parent.read_preference,
            write_concern if write_concern is not None else parent.write_concern,
            read_concern if read_concern is not None else parent.read_concern,
        )

    @property
    def codec_options(self) -> CodecOptions[_DocumentType]:
        return self._codec_options

    @property
    def read_preference(self) -> Any:
        return self._read_preference

    @property
    def write_concern(self) -> WriteConcern:
        return self._write_concern

    @property
    def read_concern(self) -> ReadConcern:
        return self._read_concern

    def _write_concern_for(self, session: Optional["ClientSession"]) -> Optional[WriteConcern]:
        return write_concern_for(session, self._write_concern)  # type: ignore[no-any-return]

    def _read_preference_for(self, session: Optional["ClientSession"]) -> Any:
        return read_preference_for(session, self._read_preference)

    async def _run_write_command(
        self, dbname: str, cmd: Dict[str, Any], session: Optional["ClientSession"], *, comment: Any = None,
        write_concern: Optional[WriteConcern] = None, check: bool = True,
    ) -> Dict[str, Any]:
        """Run *cmd*, a command that writes (create, drop, renameCollection, dropDatabase),
        on database *dbname* as a ``DatabaseWrite`` operation, with *write_concern* (this
        object's when None; nothing inside a transaction); a write-concern error raises."""
        if comment is not None:
            cmd["comment"] = comment
        wc = write_concern if write_concern is not None else self._write_concern_for(session)
        reply: Dict[str, Any] = await self._executor.execute(
            DatabaseWrite(dbname, cmd, self._codec_options, write_concern=wc.document if wc is not None else None,
                          check=check),
            session,
        )
        check_write_concern_error(reply)
        return reply


# (re-exported for older importers)
ts_newer = _clock_ts_newer


class _FacadeClass:
    """A class attribute naming the facade class a facade builds (``"amongo.cursor:Cursor"``),
    imported on first use (the facades import each other lazily) and then stored on the owning
    class as a plain attribute, so later lookups cost a class-attribute read.

    The Motor-style classes build each other through these attributes, and the PyMongo-style
    layer (:mod:`amongo.asynchronous`) overrides them with its own classes: one implementation,
    two sets of public classes."""

    __slots__ = ("_path", "_owner", "_name")

    def __init__(self, path: str) -> None:
        self._path = path

    def __set_name__(self, owner: type, name: str) -> None:
        self._owner = owner
        self._name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        import importlib

        module, _, attr = self._path.partition(":")
        cls = getattr(importlib.import_module(module), attr)
        setattr(self._owner, self._name, cls)
        return cls


def _facade_class(path: str) -> Any:
    """A :class:`_FacadeClass` attribute, typed ``Any`` for the annotations of its users
    (``_cursor_class: ClassVar[Type[Any]] = _facade_class("amongo.cursor:Cursor")``)."""
    return _FacadeClass(path)


def executor_of(obj: _BaseObject[Any]) -> Executor:
    """The engine *obj* (a client, database or collection) hands its operations to: the
    client's executor. How a cursor or change stream built on a collection reaches the
    engine (the handle stays underscored on the facades, whose public attribute names are
    databases and collections)."""
    return obj._executor


def validate_database_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be an instance of str, not {type(name)}")
    if not name:
        raise InvalidName("database name cannot be the empty string")
    for ch in (" ", ".", "$", "/", "\\", "\x00", '"'):
        if ch in name:
            raise InvalidName(f"database names cannot contain the character {ch!r}")
    return name
