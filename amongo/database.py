"""A database (Motor's ``AsyncIOMotorDatabase``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Type, Dict, List, Mapping, MutableMapping, Optional, Sequence, Union, overload

from bson.codec_options import CodecOptions
from bson.son import SON
from pymongo.errors import InvalidName
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from amongo._common import _BaseObject, _facade_class, validate_database_name
from amongo._typing import _CodecDocumentType, _DocumentType, _DocumentTypeArg
from amongo.engine.operation import RunCommand
from amongo.engine.session import ClientSession

from amongo.change_stream import ChangeStream
from amongo.collection import Collection, aggregate_cursor
from amongo.command_cursor import CommandCursor, started

if TYPE_CHECKING:  # pragma: no cover
    from amongo.client import MongoClient


class Database(_BaseObject[_DocumentType]):
    """A MongoDB database (Motor: ``AsyncIOMotorDatabase``). Get one with ``client[name]``;
    generic in the document type, which its collections keep."""

    __slots__ = ("_client", "_name")
    #: the classes this database builds (the PyMongo-style layer sets its own)
    _collection_class: "ClassVar[Type[Collection[Any]]]" = _facade_class("amongo.collection:Collection")
    _command_cursor_class: "ClassVar[Type[CommandCursor[Any]]]" = _facade_class("amongo.command_cursor:CommandCursor")
    _change_stream_class: "ClassVar[Type[ChangeStream[Any]]]" = _facade_class("amongo.change_stream:ChangeStream")

    def __init__(
        self,
        client: "MongoClient[_DocumentType]",
        name: str,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
        **kwargs: Any,
    ) -> None:
        validate_database_name(name)
        self._inherit(client, codec_options, read_preference, write_concern, read_concern)
        self._client = client
        self._name = name

    @property
    def client(self) -> "MongoClient[_DocumentType]":
        """The client this database belongs to (Motor: ``AsyncIOMotorDatabase.client``)."""
        return self._client

    @property
    def name(self) -> str:
        """The database's name (Motor: ``AsyncIOMotorDatabase.name``)."""
        return self._name

    def get_io_loop(self) -> Any:
        """The event loop the client runs on (Motor: ``AsyncIOMotorDatabase.get_io_loop``)."""
        return self._client.get_io_loop()

    def wrap(self, obj: Any) -> Any:
        """Motor wraps PyMongo objects in Motor classes; amongo's objects already are the
        Motor-facing ones, so *obj* is returned unchanged (Motor: ``wrap``)."""
        return obj

    def __getattr__(self, name: str) -> "Collection[_DocumentType]":
        if name.startswith("_"):
            raise AttributeError(
                f"Database has no attribute {name!r}. To access the {name} collection, use database[{name!r}]."
            )
        return self[name]

    def __getitem__(self, name: str) -> "Collection[_DocumentType]":
        return self._collection_class(self, name)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Database):
            return self._client == other._client and self._name == other._name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._name)

    def __bool__(self) -> bool:
        raise NotImplementedError(
            "Database objects do not implement truth value testing or bool(). Please compare with None instead: database is not None"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"'Database' object is not callable. If you meant to call the '{self._name}' method on a 'Client' object it is failing because no such method exists.")

    def __repr__(self) -> str:
        return f"Database({self._client!r}, {self._name!r})"

    def get_collection(
        self,
        name: str,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
    ) -> "Collection[_DocumentType]":
        """Get a collection with optional different options (Motor: ``get_collection``)."""
        return self._collection_class(self, name, codec_options, read_preference, write_concern, read_concern)  # type: ignore[arg-type]

    def with_options(
        self,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
    ) -> "Database[_DocumentType]":
        """A copy with some options changed (Motor: ``with_options``)."""
        copy = type(self)(self._client, self._name)
        copy._inherit(self, codec_options, read_preference, write_concern, read_concern)
        return copy

    # -- commands ---------------------------------------------------------------------------
    @overload
    async def command(
        self,
        command: Union[str, MutableMapping[str, Any]],
        value: Any = ...,
        check: bool = ...,
        allowable_errors: Optional[Sequence[Union[str, int]]] = ...,
        read_preference: Any = ...,
        codec_options: None = ...,
        session: Optional["ClientSession"] = ...,
        comment: Any = ...,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Typed overload of :meth:`command` (see the implementation below)."""
        ...

    @overload
    async def command(
        self,
        command: Union[str, MutableMapping[str, Any]],
        value: Any = ...,
        check: bool = ...,
        allowable_errors: Optional[Sequence[Union[str, int]]] = ...,
        read_preference: Any = ...,
        codec_options: CodecOptions[_CodecDocumentType] = ...,
        session: Optional["ClientSession"] = ...,
        comment: Any = ...,
        **kwargs: Any,
    ) -> _CodecDocumentType:
        """Typed overload of :meth:`command` (see the implementation below)."""
        ...

    async def command(
        self,
        command: Union[str, MutableMapping[str, Any]],
        value: Any = 1,
        check: bool = True,
        allowable_errors: Optional[Sequence[Union[str, int]]] = None,
        read_preference: Any = None,
        codec_options: Optional[CodecOptions[Any]] = None,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Run a database command (Motor: ``command``). ``read_preference`` defaults to primary,
        as in Motor; the database's read preference is not used."""
        if isinstance(command, str):
            cmd: Dict[str, Any] = {command: value}
        else:
            cmd = dict(command)
        cmd.update(kwargs)
        if comment is not None:
            cmd["comment"] = comment
        if read_preference is None:
            read_preference = (
                session.txn_options.read_preference
                if session is not None and session.in_transaction and session.txn_options
                else None
            ) or ReadPreference.PRIMARY
        try:
            return await self._executor.execute(
                RunCommand(self._name, cmd, codec_options if codec_options is not None else self._codec_options,
                           read_preference, check=check and not allowable_errors),
                session,
            )
        finally:
            pass

    async def cursor_command(
        self,
        command: Union[str, MutableMapping[str, Any]],
        value: Any = 1,
        read_preference: Any = None,
        codec_options: Optional[CodecOptions[Any]] = None,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
        max_await_time_ms: Optional[int] = None,
        **kwargs: Any,
    ) -> "CommandCursor[_DocumentType]":
        """Run a command that returns a cursor (Motor: ``cursor_command``)."""
        if isinstance(command, str):
            cmd: Dict[str, Any] = {command: value}
        else:
            cmd = dict(command)
        cmd.update(kwargs)
        cursor: "CommandCursor[_DocumentType]" = self._command_cursor_class(
            self["$cmd"], cmd, session=session,
            read_preference=read_preference or ReadPreference.PRIMARY,
            codec_options=codec_options, max_await_time_ms=max_await_time_ms,
            require_cursor=True, getmore_comment=comment,  # (as PyMongo: on the getMores only)
        )
        await started(cursor)
        return cursor

    async def _command_write(self, cmd: Dict[str, Any], *, session: Optional["ClientSession"] = None, comment: Any = None, write_concern: Optional[WriteConcern] = None, check: bool = True) -> Dict[str, Any]:
        """Run a command that writes (and takes this database's write concern)."""
        return await self._run_write_command(self._name, cmd, session, comment=comment, write_concern=write_concern,
                                             check=check)

    async def create_collection(
        self,
        name: str,
        codec_options: Optional[CodecOptions[_DocumentTypeArg]] = None,
        read_preference: Any = None,
        write_concern: Optional[WriteConcern] = None,
        read_concern: Optional[ReadConcern] = None,
        session: Optional["ClientSession"] = None,
        check_exists: Optional[bool] = True,
        **kwargs: Any,
    ) -> "Collection[_DocumentType]":
        """Create a collection (Motor: ``create_collection``); CollectionInvalid if it exists."""
        from pymongo.errors import CollectionInvalid, OperationFailure

        coll = self._collection_class(self, name, codec_options, read_preference, write_concern, read_concern)  # type: ignore[arg-type]
        if check_exists and not (session is not None and session.in_transaction):
            names = await self.list_collection_names(filter={"name": name}, session=session)
            if name in names:
                raise CollectionInvalid(f"collection {name} already exists")
        cmd: Dict[str, Any] = {"create": name}
        comment = kwargs.pop("comment", None)
        encrypted = kwargs.pop("encryptedFields", None)
        if encrypted is not None:
            cmd["encryptedFields"] = encrypted
        if "size" in kwargs:
            kwargs["size"] = float(kwargs["size"]) if isinstance(kwargs["size"], float) else kwargs["size"]
        cmd.update(kwargs)
        try:
            await self._command_write(cmd, session=session, comment=comment, write_concern=coll.write_concern if write_concern else None)
        except OperationFailure as exc:
            if exc.code == 48:
                raise CollectionInvalid(f"collection {name} already exists") from exc
            raise
        return coll

    async def drop_collection(
        self,
        name_or_collection: Any,
        session: Optional["ClientSession"] = None,
        comment: Any = None,
        encrypted_fields: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Drop a collection (Motor: ``drop_collection``); dropping a missing one is not an error."""
        from pymongo.errors import OperationFailure

        name = name_or_collection.name if isinstance(name_or_collection, Collection) else name_or_collection
        if not isinstance(name, str):
            raise TypeError("name_or_collection must be an instance of str or Collection")
        try:
            return await self._command_write({"drop": name}, session=session, comment=comment)
        except OperationFailure as exc:
            if exc.code == 26 or "ns not found" in str(exc):
                return dict(exc.details or {"ok": 0, "errmsg": "ns not found", "code": 26})
            raise

    async def list_collections(
        self,
        session: Optional["ClientSession"] = None,
        filter: Optional[Mapping[str, Any]] = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> "CommandCursor[MutableMapping[str, Any]]":
        """A command cursor over ``listCollections`` (Motor: ``list_collections``)."""
        cmd: Dict[str, Any] = {"listCollections": 1, "cursor": {}}
        if filter is not None:
            cmd["filter"] = filter
        if comment is not None:
            cmd["comment"] = comment
        batch_size = kwargs.pop("batchSize", kwargs.pop("batch_size", None))
        if batch_size is not None:
            cmd["cursor"] = {"batchSize": batch_size}
        cmd.update(kwargs)
        rp = self._read_preference_for(session) if session is not None and session.in_transaction else ReadPreference.PRIMARY
        cursor: "CommandCursor[MutableMapping[str, Any]]" = self._command_cursor_class(
            self["$cmd"], cmd, session=session, read_preference=rp, retryable=True, batch_size=batch_size or 0)
        await started(cursor)
        return cursor

    async def list_collection_names(
        self,
        session: Optional["ClientSession"] = None,
        filter: Optional[Mapping[str, Any]] = None,
        comment: Any = None,
        **kwargs: Any,
    ) -> List[str]:
        """Names of the collections (Motor: ``list_collection_names``)."""
        if filter is None or (len(filter) == 1 and "name" in filter):
            kwargs["nameOnly"] = True
        if "authorizedCollections" not in kwargs:
            pass
        cursor = await self.list_collections(session=session, filter=filter, comment=comment, **kwargs)
        return [d["name"] async for d in cursor]

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], session: Optional["ClientSession"] = None, **kwargs: Any
    ) -> "CommandCursor[_DocumentType]":
        """A database-level aggregation, returned without awaiting (Motor: ``aggregate``;
        positional parameters as PyMongo's ``Database.aggregate``)."""
        return aggregate_cursor(self["$cmd.aggregate"], pipeline, db_level=True, session=session, **kwargs)

    def watch(self, pipeline: Any = None, full_document: Any = None, resume_after: Any = None,
              max_await_time_ms: Any = None, batch_size: Any = None, collation: Any = None,
              start_at_operation_time: Any = None, session: Any = None, start_after: Any = None,
              comment: Any = None, full_document_before_change: Any = None,
              show_expanded_events: Any = None) -> "ChangeStream[_DocumentType]":
        """A change stream on this database (Motor: ``watch``; returned without awaiting)."""
        return self._change_stream_class(
            self, pipeline, full_document, resume_after, max_await_time_ms, batch_size, collation,
            start_at_operation_time, session, start_after, comment, full_document_before_change,
            show_expanded_events, aggregate_on=self["$cmd.aggregate"], aggregate_target=1,
        )

    async def validate_collection(
        self, name_or_collection: Any, scandata: bool = False, full: bool = False,
        session: Optional["ClientSession"] = None, background: Optional[bool] = None, comment: Any = None,
    ) -> Dict[str, Any]:
        """Validate a collection (Motor: ``validate_collection``)."""
        from pymongo.errors import CollectionInvalid

        name = name_or_collection.name if isinstance(name_or_collection, Collection) else name_or_collection
        if not isinstance(name, str):
            raise TypeError("name_or_collection must be an instance of str or Collection")
        cmd: Dict[str, Any] = {"validate": name, "scandata": scandata, "full": full}
        if background is not None:
            cmd["background"] = background
        res = await self.command(cmd, session=session, comment=comment)
        if not res.get("valid", True):
            raise CollectionInvalid(f"{name} invalid: {res!r}")
        return res

    async def dereference(
        self, dbref: Any, session: Optional["ClientSession"] = None, comment: Any = None, **kwargs: Any
    ) -> Optional[_DocumentType]:
        """Resolve a DBRef (Motor: ``dereference``)."""
        from bson.dbref import DBRef

        if not isinstance(dbref, DBRef):
            raise TypeError(f"cannot dereference a {type(dbref)}")
        if dbref.database is not None and dbref.database != self._name:
            raise ValueError(f"trying to dereference a DBRef that points to another database ({dbref.database!r} not {self._name!r})")
        return await self[dbref.collection].find_one({"_id": dbref.id}, session=session, comment=comment, **kwargs)
