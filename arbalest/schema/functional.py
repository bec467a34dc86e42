"""The original Arbalest's functional schemas: ``JsonObject`` and ``Property``.

```python
JsonObject("events",
           Property("id", "VARCHAR(36)"),
           Property("someNumber", "INTEGER", "custom_column_name"),
           Property("child", Property("someBoolean", "BOOLEAN")))
```

builds a ``Schema`` class like any other, in a MetaData of its
own unless ``metadata=`` is given. Column names follow the original: the JSON key (nested
keys joined by ``_``), lowercased as Redshift stores them, unless a column name is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self, cast

import sqlalchemy as sa

from arbalest.errors import SchemaError
from arbalest.schema import fields
from arbalest.schema.base import Schema, SchemaMeta
from arbalest.schema.jsonpath import format_path

__all__ = ["JsonObject", "Property", "field_for_type"]

_TYPE: Final = re.compile(
    r"\s*(?P<name>[A-Za-z][A-Za-z0-9 ]*?)\s*"
    r"(?:\(\s*(?P<a>[0-9]+|MAX|max)\s*(?:,\s*(?P<b>[0-9]+)\s*)?\))?\s*"
)

_SIMPLE: Final[dict[str, type[fields.Field[Any]]]] = {
    "SMALLINT": fields.SmallInt,
    "INT2": fields.SmallInt,
    "INTEGER": fields.Integer,
    "INT": fields.Integer,
    "INT4": fields.Integer,
    "BIGINT": fields.BigInt,
    "INT8": fields.BigInt,
    "REAL": fields.Real,
    "FLOAT4": fields.Real,
    "DOUBLE PRECISION": fields.Double,
    "FLOAT8": fields.Double,
    "FLOAT": fields.Double,
    "BOOLEAN": fields.Boolean,
    "BOOL": fields.Boolean,
    "DATE": fields.Date,
    "TIMESTAMP": fields.Timestamp,
    "TIMESTAMP WITHOUT TIME ZONE": fields.Timestamp,
    "TIMESTAMPTZ": fields.TimestampTZ,
    "TIMESTAMP WITH TIME ZONE": fields.TimestampTZ,
    "SUPER": fields.Super,
}
_CHAR: Final = frozenset({"CHAR", "CHARACTER", "NCHAR", "BPCHAR"})
_VARCHAR: Final = frozenset({"VARCHAR", "CHARACTER VARYING", "NVARCHAR", "TEXT"})
_DECIMAL: Final = frozenset({"DECIMAL", "NUMERIC"})


def field_for_type(type_string: str, **options: Any) -> fields.Field[Any]:
    """Turn a Redshift type string (``"VARCHAR(36)"``, ``"DECIMAL(12,2)"``) into a field.

    Raises:
        SchemaError: For a type Arbalest does not support, naming the ones it does.
    """
    field = _field(type_string, options)
    if field is None:
        supported = sorted({*_SIMPLE, *_CHAR, *_VARCHAR, *_DECIMAL})
        raise SchemaError(
            f"unsupported column type {type_string!r}; supported: {', '.join(supported)}"
        )
    field.check(f"column type {type_string!r}")
    return field


def _field(type_string: str, options: dict[str, Any]) -> fields.Field[Any] | None:
    m = _TYPE.fullmatch(type_string)
    name = " ".join(m.group("name").upper().split()) if m else ""
    a, b = (m.group("a"), m.group("b")) if m else (None, None)
    if name in _SIMPLE and a is None:
        return _SIMPLE[name](**options)
    if name in _DECIMAL:
        return fields.Decimal(int(a) if a else 18, int(b) if b else 0, **options)
    if name in _CHAR and b is None and (a is None or a.isdigit()):
        return fields.Char(int(a) if a else 1, **options)
    if name in _VARCHAR and b is None:
        if name == "TEXT" and a is None:
            return fields.String(256, **options)
        length = 256 if a is None else 65535 if a.upper() == "MAX" else int(a)
        return fields.String(length, **options)
    return None


@dataclass(frozen=True, init=False)
class Property:
    """One JSON property and its column, as in the original Arbalest.

    ``Property(name, type)``, ``Property(name, type, column_name)``, or
    ``Property(name, Property(...))`` for a property of a nested object.
    """

    keys: tuple[str, ...]
    type: str
    column_name: str | None

    def __init__(
        self,
        name: str,
        column_type_or_child_property: str | Property,
        column_name: str | None = None,
    ) -> None:
        child = column_type_or_child_property
        if isinstance(child, Property):
            keys, type_string, column = (
                (name, *child.keys),
                child.type,
                child.column_name,
            )
            column = column if column is not None else column_name
        elif isinstance(child, str):
            keys, type_string, column = (name,), child, column_name
        else:
            raise SchemaError(
                f"Property {name!r}: the second argument is a type string or a Property"
            )
        try:
            field_for_type(type_string)  # an unsupported type fails here, as in the original
        except SchemaError as exc:
            error = SchemaError(f"Property {name!r}: {exc}")
            error.filename, error.lineno = exc.filename, exc.lineno
            raise error from None
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "type", type_string)
        object.__setattr__(self, "column_name", column)

    @property
    def name(self) -> str:
        """The first JSON key."""
        return self.keys[0]

    @property
    def column(self) -> str:
        """The column name: the one given, or the keys joined by ``_``, lowercased."""
        return (self.column_name or "_".join(self.keys)).lower()

    def field(self) -> fields.Field[Any]:
        """The field this property declares."""
        return field_for_type(self.type, path=format_path(self.keys), name=self.column)


class _FunctionalSchema(Schema):
    """Base of the classes ``JsonObject`` builds: adds the fluent ``.property()``."""

    __abstract__ = True
    __properties__: ClassVar[tuple[Property, ...]] = ()

    @classmethod
    def property(
        cls,
        name: str,
        type: str | Property,  # the original's signature: property(name, type, column=None)
        column: str | None = None,
        *,
        column_name: str | None = None,
    ) -> type[Self]:
        """Add one property to this schema, in place, and return the schema (fluent).

        ``.property("total", "DECIMAL(12,2)", "amount")`` as in the original, or with the
        column by name: ``.property("total", "DECIMAL(12,2)", column="amount")``
        (``column_name=`` is accepted too, as earlier versions documented).
        """
        if column is not None and column_name is not None and column != column_name:
            raise SchemaError(
                f"{cls.__qualname__}.property({name!r}): give column= or column_name=, not both"
            )
        prop = Property(name, type, column if column is not None else column_name)
        rebuilt = JsonObject(
            cls.__tablename__,
            *cls.__properties__,
            prop,
            metadata=cls.metadata,
            _replace=True,
        )
        # Keep the identity of the class users hold: move the rebuilt state onto it.
        for attr in list(vars(cls)):
            if isinstance(vars(cls)[attr], fields.Field):
                delattr(cls, attr)
        for attr, value in vars(rebuilt).items():
            if isinstance(value, fields.Field) or attr in (
                "__table__",
                "__fields__",
                "__jsonpaths__",
                "__columns__",
                "__properties__",
            ):
                setattr(cls, attr, value)
        return cls


def JsonObject(
    table: str,
    *properties: Property,
    metadata: sa.MetaData | None = None,
    _replace: bool = False,
) -> type[_FunctionalSchema]:
    """Build a schema class for ``table`` from ``Property`` declarations.

    Args:
        table: The table name.
        *properties: The properties, in column order.
        metadata: The MetaData to join (default: a new one, so that porting many
            pipelines never clashes on table names).

    Raises:
        SchemaError: For an unsupported type or two properties with the same column.
    """
    namespace: dict[str, Any] = {
        "__tablename__": table,
        "__module__": __name__,
        "__qualname__": f"JsonObject({table!r})",
        "__properties__": tuple(properties),
        "metadata": metadata if metadata is not None else sa.MetaData(),
    }
    if _replace:
        namespace["__table_args__"] = {"extend_existing": True}
    for prop in properties:
        if not isinstance(prop, Property):
            raise SchemaError(f"JsonObject({table!r}) takes Property objects, not {prop!r}")
        if prop.column in namespace:
            raise SchemaError(
                f"JsonObject({table!r}): cannot define duplicate column of name {prop.column!r}"
            )
        namespace[prop.column] = prop.field()
    cls = SchemaMeta(f"JsonObject_{table}", (_FunctionalSchema,), namespace)
    return cast("type[_FunctionalSchema]", cls)
