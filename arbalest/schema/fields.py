"""Field descriptors: one class per column type, generic in the Python value it holds.

On the class, a field is the table's column (``Event.some_number > 3`` is a SQLAlchemy
expression); on an instance, it is the value (``event.some_number`` is an ``int | None``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import difflib
import os
import sys
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypedDict, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy_redshift.dialect import SUPER as RedshiftSuper
from sqlalchemy_redshift.dialect import TIMESTAMPTZ as RedshiftTimestampTZ

from arbalest import convert
from arbalest._typing import JSONValue
from arbalest.errors import SchemaError
from arbalest.schema.jsonpath import JSONPath, parse_path

if TYPE_CHECKING:
    from types import FrameType
    from typing import Unpack

    from sqlalchemy.types import TypeEngine

__all__ = [
    "BigInt",
    "Boolean",
    "Char",
    "Date",
    "Decimal",
    "Double",
    "Field",
    "FieldOptions",
    "Integer",
    "Real",
    "SmallInt",
    "String",
    "Super",
    "Timestamp",
    "TimestampTZ",
]

T = TypeVar("T")


class FieldOptions(TypedDict, total=False):
    """The keyword arguments every field takes (see ``Field``)."""

    key: str | None
    name: str | None
    path: str | None
    nullable: bool
    primary_key: bool
    doc: str | None
    encode: str | None


_OPTIONS: Final = tuple(FieldOptions.__annotations__)
_TEXT_OPTIONS: Final = ("key", "name", "path", "doc", "encode")


class Field(Generic[T]):
    """A column of a schema, filled from one JSONPath of each record.

    Keyword Args:
        key (str | None): The JSON key (default: the attribute name).
        name (str | None): The column name (default: the attribute names on the path, joined
            by ``_``).
        path (str | None): A whole JSONPath such as ``"$['tags'][0]"``, overriding the keys.
        nullable (bool): Whether the column accepts NULL; a NULL for a NOT NULL column is a
            rejected record (code 1213). Primary keys are never nullable.
        primary_key (bool): Part of the primary key (``merge`` upserts on it). Never
            autoincrements.
        doc (str | None): Documentation, kept on the SQLAlchemy column.
        encode (str | None): Redshift column compression (``ENCODE``), e.g. ``"zstd"`` or
            ``"az64"``.

    A mistake in the arguments (``String("forty")``, ``primary_kye=True``) is a
    [`SchemaError`][arbalest.SchemaError] raised when the schema class that holds the field
    is defined, naming the class, the field and the argument; a field used outside a schema
    raises it when its type or rule is asked for ([`check`][arbalest.Field.check]).
    """

    #: Arguments besides the options, in the order they are given positionally.
    _ARGS: tuple[str, ...] = ()

    def __init__(self, **options: Unpack[FieldOptions]) -> None:
        #: What is wrong with the arguments, one message each (raised by ``check()``).
        self.problems: list[str] = []
        given: dict[str, Any] = dict(options)
        for unknown in [k for k in given if k not in _OPTIONS]:
            del given[unknown]
            self._problem(_unknown_keyword(type(self).__name__, unknown, self._ARGS + _OPTIONS))
        for option in _TEXT_OPTIONS:
            value = given.get(option)
            if value is not None and not isinstance(value, str):
                self._bad(option, value, "must be a string")
                del given[option]
        for option in ("nullable", "primary_key"):
            if option in given and not isinstance(given[option], bool):
                self._bad(option, given.pop(option), "must be True or False")
        key: str | None = given.get("key")
        name: str | None = given.get("name")
        path: str | None = given.get("path")
        if key is not None and path is not None:
            self._problem(f"{type(self).__name__}(): give key= or path=, not both")
        if key == "":
            self._bad("key", key, "must not be empty")
        if name is not None and not name.strip():
            self._bad("name", name, "must not be empty")
        self.key = key
        self.name = name
        self.path: JSONPath | None = None
        if path is not None:
            try:
                self.path = parse_path(path)
            except SchemaError as exc:
                self._bad("path", path, str(exc))
        self.primary_key: bool = given.get("primary_key", False)
        self.nullable: bool = given.get("nullable", True) and not self.primary_key
        self.doc: str | None = given.get("doc")
        self.encode: str | None = given.get("encode")
        self.attr: str = ""

    def check(self, where: str | None = None) -> None:
        """Raise ``SchemaError`` for the first mistake in the arguments.

        Args:
            where: What holds the field, for the message (``"Event.count"``).
        """
        if self.problems:
            error = SchemaError(f"{where}: {self.problems[0]}" if where else self.problems[0])
            error.filename, error.lineno = self._declared
            raise error

    def _problem(self, message: str) -> None:
        if not self.problems:
            self._declared = _declaration()
        self.problems.append(message)

    def _bad(self, argument: str, value: object, reason: str) -> None:
        self._problem(f"{type(self).__name__}() argument {argument}={value!r}: {reason}")

    def _length(self, value: object, most: int, make: Any) -> Any:
        """The rule ``make(value)`` builds for a length, or None with a problem recorded."""
        if not _whole(value):
            self._bad("length", value, f"must be a whole number of bytes, 1 to {most}")
            return None
        try:
            return make(value)
        except ValueError as exc:
            self._bad("length", value, str(exc))
            return None

    # -- what each type declares ---------------------------------------------------------

    #: The column's SQLAlchemy type, for a type without arguments (a type with arguments,
    #: such as ``String(length)``, makes it from them in ``sa_type``).
    _TYPE: ClassVar[TypeEngine[Any] | None] = None
    #: The conversion rule (docs/loading.md, "Conversions"): the class's own, or for a type
    #: with arguments the one ``__init__`` made from them (None: the arguments are wrong).
    _rule: convert.Rule | None = None

    def sa_type(self) -> TypeEngine[Any]:
        """The SQLAlchemy type of the column."""
        if self._TYPE is None:
            raise NotImplementedError(f"{type(self).__name__} declares no SQL type")
        return self._TYPE

    @property
    def rule(self) -> convert.Rule:
        """The conversion rule (docs/loading.md, "Conversions") for this column."""
        if self._rule is None:
            self.check()  # a type with wrong arguments has no rule: say what is wrong
            raise NotImplementedError(f"{type(self).__name__} declares no conversion rule")
        return self._rule

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
        parts = [f"{getattr(self, arg)}" for arg in self._ARGS]  # (length), (precision, scale)
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        if self.primary_key:
            parts.append("primary_key=True")
        elif not self.nullable:
            parts.append("nullable=False")
        return ", ".join(parts)


def _unknown_keyword(kind: str, unknown: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(unknown, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}=?" if close else f"it takes {', '.join(known)}"
    return f"{kind}() got an unexpected keyword argument {unknown!r}; {hint}"


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_HERE: Final = os.path.dirname(os.path.abspath(__file__))


def _declaration() -> tuple[str | None, int | None]:
    """The file and line that declared the field being built: the first caller outside
    ``arbalest.schema`` (only looked up for a field with a mistake)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.dirname(os.path.abspath(filename)) != _HERE:
            return filename, frame.f_lineno
        frame = frame.f_back
    return None, None


class SmallInt(Field[int]):
    """SMALLINT: 16-bit integers."""

    _TYPE = sa.SmallInteger()
    _rule = convert.IntegerRule(16)


class Integer(Field[int]):
    """INTEGER: 32-bit integers."""

    _TYPE = sa.Integer()
    _rule = convert.IntegerRule(32)


class BigInt(Field[int]):
    """BIGINT: 64-bit integers."""

    _TYPE = sa.BigInteger()
    _rule = convert.IntegerRule(64)


class Decimal(Field[decimal.Decimal]):
    """DECIMAL(precision, scale); extra fractional digits are truncated, not rounded.

    Args:
        precision: Total digits, 1 to 38 (default 18, as in Redshift).
        scale: Digits after the decimal point, 0 to precision (default 0).
    """

    _ARGS = ("precision", "scale")

    def __init__(
        self, precision: int = 18, scale: int = 0, **options: Unpack[FieldOptions]
    ) -> None:
        super().__init__(**options)
        self.precision = precision
        self.scale = scale
        wrong = [(a, v) for a, v in (("precision", precision), ("scale", scale)) if not _whole(v)]
        for arg, value in wrong:
            self._bad(arg, value, "must be a whole number")
        if wrong:
            pass
        elif not 1 <= precision <= 38:
            self._bad("precision", precision, "DECIMAL precision is 1 to 38 digits")
        elif not 0 <= scale <= precision:
            self._bad("scale", scale, f"DECIMAL scale is 0 to the precision ({precision}) digits")
        else:
            self._rule = convert.DecimalRule(precision, scale)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.Numeric(self.precision, self.scale, asdecimal=True)


class Real(Field[float]):
    """REAL: 32-bit floating point."""

    _TYPE = sa.REAL()
    _rule = convert.FloatRule(32)


class Double(Field[float]):
    """DOUBLE PRECISION: 64-bit floating point."""

    _TYPE = sa.Double()
    _rule = convert.FloatRule(64)


class Boolean(Field[bool]):
    """BOOLEAN, from true/false or the strings t, yes, 1, f, no, 0 (any case)."""

    _TYPE = sa.Boolean(create_constraint=False)
    _rule = convert.BooleanRule()


class Char(Field[str]):
    """CHAR(length): single-byte characters, padded with blanks to ``length``."""

    _ARGS = ("length",)

    def __init__(self, length: int = 1, **options: Unpack[FieldOptions]) -> None:
        super().__init__(**options)
        self.length = length
        self._rule = self._length(length, 4096, convert.CharRule)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.CHAR(self.length)


class String(Field[str]):
    """VARCHAR(length), where length counts bytes of UTF-8 (default 256, at most 65535)."""

    _ARGS = ("length",)

    def __init__(self, length: int = 256, **options: Unpack[FieldOptions]) -> None:
        super().__init__(**options)
        self.length = length
        self._rule = self._length(length, 65535, convert.VarcharRule)

    def sa_type(self) -> TypeEngine[Any]:
        return sa.String(self.length)


class Date(Field[dt.date]):
    """DATE; a time part is dropped."""

    _TYPE = sa.Date()
    _rule = convert.DateRule()


class Timestamp(Field[dt.datetime]):
    """TIMESTAMP (without time zone): an offset in the data is applied, giving UTC."""

    _TYPE = sa.DateTime(timezone=False)
    _rule = convert.TimestampRule()


class TimestampTZ(Field[dt.datetime]):
    """TIMESTAMPTZ: the instant, kept in UTC."""

    _TYPE = sa.DateTime(timezone=True).with_variant(RedshiftTimestampTZ(), "redshift")
    _rule = convert.TimestampRule(timezone=True)


class Super(Field[JSONValue]):
    """SUPER: a JSON value kept whole (JSONB in PostgreSQL, JSON in DuckDB)."""

    _TYPE = (
        sa.JSON(none_as_null=True)
        .with_variant(JSONB(none_as_null=True), "postgresql")
        .with_variant(RedshiftSuper(), "redshift")
    )
    _rule = convert.SuperRule()
