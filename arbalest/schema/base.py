"""``Schema`` and ``Nested``: typed classes that describe a table and its JSON records."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Self, cast

import sqlalchemy as sa

from arbalest import convert
from arbalest._typing import JSONValue
from arbalest.errors import LoadError, SchemaError
from arbalest.schema import _build
from arbalest.schema.fields import Field
from arbalest.schema.jsonpath import JSONPath

__all__ = ["Nested", "Schema", "SchemaMeta", "metadata"]

#: The MetaData every schema joins unless its base names another one
#: (``target_metadata = arbalest.metadata`` lets Alembic see them all).
metadata: Final = sa.MetaData()

_MISSING: Final = object()


class _Record:
    """Shared by schema and nested instances: construction, equality and repr."""

    __columns__: ClassVar[dict[str, sa.Column[Any]]]

    def __init__(self, **values: Any) -> None:
        known = _build.members(type(self))
        for attr, value in values.items():
            member = known.get(attr)
            if member is None:
                raise TypeError(
                    f"{type(self).__qualname__}() got an unexpected keyword argument "
                    f"{attr!r}; known: {', '.join(known)}"
                )
            if not isinstance(member, Field):
                nested_cls = getattr(type(self), attr)
                if isinstance(value, Mapping):
                    value = nested_cls(**value)
                elif not isinstance(value, nested_cls.__dict__.get("__origin__", nested_cls)):
                    raise TypeError(
                        f"{type(self).__qualname__}.{attr} takes a mapping or a "
                        f"{nested_cls.__qualname__} instance, not {type(value).__name__}"
                    )
            self.__dict__[attr] = value
        for attr, member in known.items():
            if attr not in self.__dict__ and not isinstance(member, Field):
                self.__dict__[attr] = getattr(type(self), attr)()

    def _values(self) -> dict[str, Any]:
        return {attr: getattr(self, attr) for attr in _build.members(type(self))}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Record):
            return NotImplemented
        return type(self) is type(other) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), tuple(map(repr, self._values().values()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._values().items())
        return f"{type(self).__qualname__}({args})"


class Nested(_Record):
    """A JSON object inside a record; its fields become columns ``<parent>_<field>``.

    Declare it inside a schema (``class child(Nested): ...``). ``__key__`` sets the JSON
    key (default: the attribute name).
    """

    __is_nested__: ClassVar[bool] = True
    __key__: ClassVar[str | None] = None


class SchemaMeta(type):
    """Builds ``__table__``, ``__jsonpaths__`` and the column specs once, at class creation.

    Thin on purpose: it checks the class and delegates to the functions of ``_build``.
    """

    def __new__(
        mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any
    ) -> SchemaMeta:
        cls = super().__new__(mcls, name, bases, ns, **kw)
        if ns.get("__abstract__", False) or not any(isinstance(b, SchemaMeta) for b in bases):
            return cls  # Schema itself, or a project's own base with its own MetaData
        _build_schema(cls)
        return cls


def _build_schema(cls: Any) -> None:
    owner = cls.__qualname__
    found = list(_build.walk(cls))
    _build.check_fields(owner, found)
    specs = [
        _build.ColumnSpec(attrs, path, _build.column_name(attrs, field, owner), field)
        for attrs, path, field in found
    ]
    _build.check_specs(owner, specs)
    tablename = cls.__dict__.get("__tablename__") or _build.snake_case(cls.__name__)
    md = cls.metadata
    if not isinstance(md, sa.MetaData):
        raise SchemaError(f"{owner}.metadata must be a sqlalchemy.MetaData")
    table = _build.build_table(tablename, md, specs, cls.__dict__.get("__table_args__"), owner)
    cls.__table__ = table
    cls.__fields__ = tuple(specs)
    cls.__jsonpaths__ = _build.jsonpaths(specs)
    cls.__tablename__ = tablename
    by_attrs = {spec.attrs: table.c[spec.name] for spec in specs}
    _bind(cls, (), by_attrs)


def _bind(owner: Any, prefix: tuple[str, ...], by_attrs: dict[tuple[str, ...], Any]) -> None:
    """Give ``owner`` its columns, and each nested class a subclass bound to this schema.

    A subclass per schema lets one nested class be shared by several schemas.
    """
    columns: dict[str, Any] = {}
    for attr, member in _build.members(owner).items():
        here = (*prefix, attr)
        if isinstance(member, Field):
            columns[attr] = by_attrs[here]
            continue
        origin = member.__dict__.get("__origin__", member)
        bound = type(origin)(
            origin.__name__,
            (origin,),
            {
                "__qualname__": f"{owner.__qualname__}.{attr}",
                "__module__": origin.__module__,
                "__origin__": origin,
            },
        )
        setattr(owner, attr, bound)
        _bind(bound, here, by_attrs)
    owner.__columns__ = columns


class Schema(_Record, metaclass=SchemaMeta):
    """A table and the JSON records that fill it, declared as a class.

    Example:
        ```python
        class Event(Schema):
            __tablename__ = "events"
            id = String(36, primary_key=True)
            some_number = Integer(key="someNumber")

            class child(Nested):
                some_boolean = Boolean(key="someBoolean")

        Event.__jsonpaths__   # {"jsonpaths": ["$['id']", "$['someNumber']",
                              #                "$['child']['someBoolean']"]}
        Event.from_json({"id": "a", "someNumber": "7", "child": {"someBoolean": "yes"}}).row()
                              # ('a', 7, True)
        select(Event.id).where(Event.child.some_boolean)
        ```
    """

    metadata: ClassVar[sa.MetaData] = metadata
    __abstract__: ClassVar[bool] = True
    __tablename__: ClassVar[str]
    __table__: ClassVar[sa.Table]
    __jsonpaths__: ClassVar[dict[str, list[str]]]
    __fields__: ClassVar[tuple[_build.ColumnSpec, ...]]

    @classmethod
    def from_json(
        cls,
        obj: JSONValue | str | bytes,
        *,
        truncate_columns: bool = False,
        time_format: str = "auto",
    ) -> Self:
        """Build an instance from one JSON record, applying the JSONPaths and COPY's rules.

        JSON text is read as the loaders read it (``convert.json_loads``): of duplicate keys
        the first counts, ``NaN`` and ``Infinity`` are numbers, and a number beyond a double
        keeps its text.

        Args:
            obj: A decoded JSON value (usually a dict), or its JSON text.
            truncate_columns: Cut overlong strings instead of rejecting them.
            time_format: ``"auto"``, ``"epochsecs"``, ``"epochmillisecs"`` or a format.

        Raises:
            LoadError: A value cannot be converted (with its column, value, reason, code).
        """
        options = convert.ConvertOptions(truncate_columns, time_format)
        if isinstance(obj, str | bytes):
            try:
                obj = convert.json_loads(obj)
            except (ValueError, RecursionError) as exc:
                raise LoadError(None, None, f"Invalid JSON: {exc}", convert.BAD_RECORD) from None
        if not isinstance(obj, dict | list):
            raise LoadError(
                None,
                convert.json_text(cast(JSONValue, obj)),
                "Record is not a JSON object or array",
                convert.BAD_RECORD,
            )
        record = cls()
        for spec in cls.__fields__:
            value = _pick(obj, spec.path, spec.name)
            converted = (
                None
                if value is _MISSING
                else convert.convert_value(
                    spec.rule, cast(JSONValue, value), column=spec.name, options=options
                )
            )
            if converted is None and not spec.nullable:
                raise LoadError(
                    spec.name,
                    None,
                    convert.reason_for(convert.NOT_NULL),
                    convert.NOT_NULL,
                )
            target: Any = record
            for attr in spec.attrs[:-1]:
                target = target.__dict__[attr]
            target.__dict__[spec.attrs[-1]] = converted
        return record

    def row(self) -> tuple[Any, ...]:
        """The values in column order, as a tuple."""
        out = []
        for spec in type(self).__fields__:
            target: Any = self
            for attr in spec.attrs:
                target = getattr(target, attr)
            out.append(target)
        return tuple(out)

    def to_json(self) -> dict[str, JSONValue]:
        """A dict shaped like the source JSON, which ``from_json`` turns back into ``self``.

        Decimals are written as strings (exact), dates and timestamps in ISO 8601.
        """
        doc: dict[str, Any] = {}
        for spec, value in zip(type(self).__fields__, self.row(), strict=True):
            _put(doc, spec.path, _jsonable(value))
        return doc


def _pick(obj: Any, path: JSONPath, column: str) -> Any:
    """Follow a JSONPath: a missing key or a null on the way is missing (NULL)."""
    value = obj
    for step in path:
        if isinstance(step, str):
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(step, _MISSING)
            if value is _MISSING:
                return _MISSING
        else:
            if value is None or value is _MISSING:
                return _MISSING
            if not isinstance(value, list) or step >= len(value):
                raise LoadError(
                    column,
                    convert.json_text(value),
                    "Not an array or index out of range",
                    convert.BAD_RECORD,
                )
            value = value[step]
    return value


def _put(doc: dict[str, Any], path: JSONPath, value: Any) -> None:
    target: Any = doc
    for step, following in zip(path, (*path[1:], None), strict=True):
        last = following is None
        if isinstance(step, str):
            if last:
                target[step] = value
            else:
                target = target.setdefault(step, [] if isinstance(following, int) else {})
        else:
            while len(target) <= step:
                target.append(None)
            if last:
                target[step] = value
            else:
                if target[step] is None:
                    target[step] = [] if isinstance(following, int) else {}
                target = target[step]


def _jsonable(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
