"""Field descriptors: one class per column type, generic in the Python value it holds.

On the class, a field is the table's column (``Event.some_number > 3`` is a SQLAlchemy
expression); on an instance, it is the value (``event.some_number`` is an ``int | None``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy_redshift.dialect import SUPER as RedshiftSuper
from sqlalchemy_redshift.dialect import TIMESTAMPTZ as RedshiftTimestampTZ

from arbalest import convert
from arbalest._typing import JSONValue
from arbalest.errors import SchemaError
from arbalest.schema.jsonpath import JSONPath, parse_path

if TYPE_CHECKING:
    from sqlalchemy.types import TypeEngine

__all__ = [
    "BigInt",
    "Boolean",
    "Char",
    "Date",
    "Decimal",
    "Double",
    "Field",
    "Integer",
    "Real",
    "SmallInt",
    "String",
    "Super",
    "Timestamp",
    "TimestampTZ",
]

T = TypeVar("T")


class Field(Generic[T]):
    """A column of a schema, filled from one JSONPath of each record.

    Args:
        key: The JSON key (default: the attribute name).
        name: The column name (default: the attribute names on the path, joined by ``_``).
        path: A whole JSONPath such as ``"$['tags'][0]"``, overriding the keys.
        nullable: Whether the column accepts NULL; a NULL for a NOT NULL column is a
            rejected record (code 1213). Primary keys are never nullable.
        primary_key: Part of the primary key (``merge`` upserts on it). Never autoincrements.
        doc: Documentation, kept on the SQLAlchemy column.
        encode: Redshift column compression (``ENCODE``), e.g. ``"zstd"`` or ``"az64"``.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        name: str | None = None,
        path: str | None = None,
        nullable: bool = True,
        primary_key: bool = False,
        doc: str | None = None,
        encode: str | None = None,
    ) -> None:
        if key is not None and path is not None:
            raise SchemaError("give a field key= or path=, not both")
        if key == "":
            raise SchemaError("key= must not be empty")
        if name is not None and not name.strip():
            raise SchemaError("name= must not be empty")
        self.key = key
        self.name = name
        self.path: JSONPath | None = parse_path(path) if path is not None else None
        self.primary_key = primary_key
        self.nullable = nullable and not primary_key
        self.doc = doc
        self.encode = encode
        self.attr: str = ""

    # -- what each type defines ----------------------------------------------------------

    def sa_type(self) -> TypeEngine[Any]:
        """The SQLAlchemy type of the column."""
        raise NotImplementedError

    @property
    def rule(self) -> convert.Rule:
        """The conversion rule (REDSHIFT_COPY.md "Conversions") for this column."""
        raise NotImplementedError

    # -- descriptor protocol -------------------------------------------------------------

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> sa.Column[T]: ...

    @overload
    def __get__(self, obj: object, owner: type[Any]) -> T | None: ...

    def __get__(self, obj: object | None, owner: type[Any]) -> Any:
        if obj is not None:
            # Values live in the instance's __dict__, which is looked up before this
            # (non-data) descriptor; getting here means the value was never set.
            return None
        columns: dict[str, sa.Column[Any]] | None = owner.__dict__.get("__columns__")
        if columns is None or self.attr not in columns:
            raise AttributeError(
                f"{owner.__qualname__}.{self.attr} has no column: the class is abstract "
                "or not part of a schema"
            )
        return columns[self.attr]

    def column_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``sa.Column`` (dialect options)."""
        return {"redshift_encode": self.encode} if self.encode else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._repr_args()})"

    def _repr_args(self) -> str:
        parts = []
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        if self.primary_key:
            parts.append("primary_key=True")
        elif not self.nullable:
            parts.append("nullable=False")
        return ", ".join(parts)


class SmallInt(Field[int]):
    """SMALLINT: 16-bit integers."""

    _RULE = convert.IntegerRule(16)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.SmallInteger()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Integer(Field[int]):
    """INTEGER: 32-bit integers."""

    _RULE = convert.IntegerRule(32)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Integer()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class BigInt(Field[int]):
    """BIGINT: 64-bit integers."""

    _RULE = convert.IntegerRule(64)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.BigInteger()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Decimal(Field[decimal.Decimal]):
    """DECIMAL(precision, scale); extra fractional digits are truncated, not rounded.

    Args:
        precision: Total digits, 1 to 38 (default 18, as in Redshift).
        scale: Digits after the decimal point, 0 to precision (default 0).
    """

    def __init__(self, precision: int = 18, scale: int = 0, **kw: Any) -> None:
        super().__init__(**kw)
        try:
            self._rule = convert.DecimalRule(precision, scale)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        self.precision = precision
        self.scale = scale

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Numeric(self.precision, self.scale, asdecimal=True)

    @property
    def rule(self) -> convert.Rule:
        return self._rule

    def _repr_args(self) -> str:
        extra = super()._repr_args()
        return f"{self.precision}, {self.scale}" + (f", {extra}" if extra else "")


class Real(Field[float]):
    """REAL: 32-bit floating point."""

    _RULE = convert.FloatRule(32)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.REAL()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Double(Field[float]):
    """DOUBLE PRECISION: 64-bit floating point."""

    _RULE = convert.FloatRule(64)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Double()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Boolean(Field[bool]):
    """BOOLEAN, from true/false or the strings t, yes, 1, f, no, 0 (any case)."""

    _RULE = convert.BooleanRule()

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Boolean(create_constraint=False)

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Char(Field[str]):
    """CHAR(length): single-byte characters, padded with blanks to ``length``."""

    def __init__(self, length: int = 1, **kw: Any) -> None:
        super().__init__(**kw)
        try:
            self._rule = convert.CharRule(length)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        self.length = length

    def sa_type(self) -> TypeEngine[Any]:
        return sa.CHAR(self.length)

    @property
    def rule(self) -> convert.Rule:
        return self._rule

    def _repr_args(self) -> str:
        extra = super()._repr_args()
        return f"{self.length}" + (f", {extra}" if extra else "")


class String(Field[str]):
    """VARCHAR(length), where length counts bytes of UTF-8 (default 256, at most 65535)."""

    def __init__(self, length: int = 256, **kw: Any) -> None:
        super().__init__(**kw)
        try:
            self._rule = convert.VarcharRule(length)
        except ValueError as exc:
            raise SchemaError(str(exc)) from None
        self.length = length

    def sa_type(self) -> TypeEngine[Any]:
        return sa.String(self.length)

    @property
    def rule(self) -> convert.Rule:
        return self._rule

    def _repr_args(self) -> str:
        extra = super()._repr_args()
        return f"{self.length}" + (f", {extra}" if extra else "")


class Date(Field[dt.date]):
    """DATE; a time part is dropped."""

    _RULE = convert.DateRule()

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Date()

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Timestamp(Field[dt.datetime]):
    """TIMESTAMP (without time zone): an offset in the data is applied, giving UTC."""

    _RULE = convert.TimestampRule()

    def sa_type(self) -> TypeEngine[Any]:
        return sa.DateTime(timezone=False)

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class TimestampTZ(Field[dt.datetime]):
    """TIMESTAMPTZ: the instant, kept in UTC."""

    _RULE = convert.TimestampRule(timezone=True)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.DateTime(timezone=True).with_variant(RedshiftTimestampTZ(), "redshift")

    @property
    def rule(self) -> convert.Rule:
        return self._RULE


class Super(Field[JSONValue]):
    """SUPER: a JSON value kept whole (JSONB in PostgreSQL, JSON in DuckDB)."""

    _RULE = convert.SuperRule()

    def sa_type(self) -> TypeEngine[Any]:
        return (
            sa.JSON(none_as_null=True)
            .with_variant(JSONB(none_as_null=True), "postgresql")
            .with_variant(RedshiftSuper(), "redshift")
        )

    @property
    def rule(self) -> convert.Rule:
        return self._RULE
