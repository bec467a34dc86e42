"""Parquet objects against a schema: which Parquet types fit which fields (Redshift's
``COPY ... FORMAT AS PARQUET`` refuses a column whose type differs from the table's), where
each field's value is in an object's columns, and reading a Parquet footer."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from arbalest import convert
from arbalest.convert import BAD_DATE, BAD_TIMESTAMP, sql_literal
from arbalest.errors import ConfigurationError, StoreError
from arbalest.schema._build import ColumnSpec

__all__ = [
    "Conversion",
    "ParquetSource",
    "is_text",
    "misfit",
    "parquet_columns",
    "parquet_conversion",
    "parquet_metadata",
    "parquet_schema_from_tail",
    "quoted_name",
    "value_type",
]

_MAGIC: Final = b"PAR1"


def quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def value_type(kind: pa.DataType) -> pa.DataType:
    """A dictionary-encoded column's values' type; any other type as it is."""
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind)) or (
        str(kind) == "string_view"
    )


def _describe(kind: pa.DataType) -> str:
    return str(value_type(kind))


# -- Parquet: which types fit which fields ---------------------------------------------------

Conversion = tuple[Callable[[str], str], Callable[[str, str], str]]

_SIGNED = {8: "int8", 16: "int16", 32: "int32", 64: "int64"}
_INT_TYPES = {16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}
_MIN_DATE = "DATE '0001-01-01'"
_MAX_DATE = "DATE '9999-12-31'"


def _no_error(s: str, v: str) -> str:
    return "NULL"


def _cast(sql_type: str) -> Callable[[str], str]:
    return lambda s: f"CAST({s} AS {sql_type})"


def _integer_bits(kind: pa.DataType) -> int | None:
    """The signed width that holds every value of an integer type (uint8: 16), or None."""
    if pa.types.is_signed_integer(kind):
        return int(kind.bit_width)
    if pa.types.is_unsigned_integer(kind) and kind.bit_width < 64:
        return int(kind.bit_width) * 2
    return None


def _timestamp(kind: pa.TimestampType) -> Callable[[str], str]:
    """SQL: a Parquet timestamp as a naive TIMESTAMP in UTC, microseconds truncated."""

    def naive(s: str) -> str:
        if kind.unit == "ns":
            ns = f"epoch_ns({s})"
            # floor to the microsecond (a fraction is cut, never rounded; before 1970 too)
            return f"make_timestamp(({ns} - ((({ns} % 1000) + 1000) % 1000)) // 1000)"
        value = s if kind.unit == "us" else f"CAST({s} AS TIMESTAMP)"
        return f"timezone('UTC', {value})" if kind.tz is not None else value

    return naive


def parquet_conversion(
    rule: convert.Rule,
    kind: pa.DataType,
    options: convert.ConvertOptions = convert.DEFAULT_OPTIONS,
) -> Conversion | None:
    """How a Parquet column of Arrow type ``kind`` (as pyarrow reads the Parquet type)
    converts into a field of ``rule``'s type: SQL for the value and for the error code, or
    ``None`` when the type does not fit (docs/loading.md has the table). Strings take
    ``options`` (``truncate_columns``)."""
    kind = value_type(kind)
    if pa.types.is_null(kind):  # a column of NULLs only fits every field
        return (lambda s: "NULL"), _no_error
    if isinstance(rule, convert.SuperRule):
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return None
        super_rule = rule

        def super_value(s: str) -> str:
            return super_rule.sql_value(f"to_json({s})")

        def super_error(s: str, v: str) -> str:
            return super_rule.sql_error(f"to_json({s})", v)

        return super_value, super_error
    if isinstance(rule, convert.IntegerRule):
        bits = _integer_bits(kind)
        if bits is None or bits > rule.bits:
            return None
        return _cast(_INT_TYPES[rule.bits]), _no_error
    if isinstance(rule, convert.DecimalRule):
        if not pa.types.is_decimal(kind):
            return None
        if kind.scale > rule.scale or kind.precision - kind.scale > rule.precision - rule.scale:
            return None
        return _cast(f"DECIMAL({rule.precision},{rule.scale})"), _no_error
    if isinstance(rule, convert.FloatRule):
        if pa.types.is_float32(kind) or pa.types.is_float16(kind):
            return _cast("REAL" if rule.bits == 32 else "DOUBLE"), _no_error
        if pa.types.is_float64(kind) and rule.bits == 64:
            return _cast("DOUBLE"), _no_error
        return None
    if isinstance(rule, convert.BooleanRule):
        return ((lambda s: s), _no_error) if pa.types.is_boolean(kind) else None
    if isinstance(rule, convert.VarcharRule | convert.CharRule):
        if not is_text(kind):
            return None
        text_rule = rule
        return (
            lambda s: text_rule.sql_value(s, options),
            lambda s, v: text_rule.sql_error(s, v, options),
        )
    if isinstance(rule, convert.DateRule):
        if not (pa.types.is_date32(kind) or pa.types.is_date64(kind)):
            return None

        def date_value(s: str) -> str:
            day = f"CAST({s} AS DATE)"
            return f"CASE WHEN {day} BETWEEN {_MIN_DATE} AND {_MAX_DATE} THEN {day} END"

        return (
            date_value,
            lambda s, v: f"CASE WHEN {s} IS NOT NULL AND {v} IS NULL THEN {BAD_DATE} END",
        )
    if isinstance(rule, convert.TimestampRule):
        if not pa.types.is_timestamp(kind):
            return None
        naive = _timestamp(kind)
        zoned = rule.timezone

        def timestamp_value(s: str) -> str:
            instant = naive(s)
            checked = (
                f"CASE WHEN {instant} BETWEEN TIMESTAMP '0001-01-01 00:00:00' "
                f"AND TIMESTAMP '9999-12-31 23:59:59.999999' THEN {instant} END"
            )
            return f"make_timestamptz(epoch_us({checked}))" if zoned else checked

        return timestamp_value, (
            lambda s, v: f"CASE WHEN {s} IS NOT NULL AND {v} IS NULL THEN {BAD_TIMESTAMP} END"
        )
    return None


@dataclass(frozen=True)
class ParquetSource:
    """Where a field's value is in a Parquet object: an expression, its Arrow type, and the
    lists along the way whose index may be out of range."""

    expr: str
    kind: pa.DataType
    lists: tuple[tuple[str, int], ...] = ()


def _parquet_source(spec: ColumnSpec, schema: pa.Schema, key: str) -> ParquetSource | None:
    """The field's source in an object of ``schema``; ``None`` when the object lacks it.

    Raises:
        StoreError: When the path leads into a value that is not a struct or a list.
    """
    first = spec.path[0] if spec.path else None
    if not isinstance(first, str):
        raise ConfigurationError(
            f"field {spec.qualname!r} reads {spec.jsonpath}: a Parquet path starts with a "
            "column name"
        )
    index = schema.get_field_index(first)
    if index < 0:
        return None
    kind = value_type(schema.field(index).type)
    expr = quoted_name(first)
    lists: list[tuple[str, int]] = []
    for step in spec.path[1:]:
        if isinstance(step, str):
            if not pa.types.is_struct(kind):
                raise StoreError(misfit(key, spec, f"{_describe(kind)}, which has no key {step!r}"))
            position = kind.get_field_index(step)
            if position < 0:
                return None
            kind = value_type(kind.field(position).type)
            expr = f"struct_extract({expr}, {sql_literal(step)})"
        else:
            if not (
                pa.types.is_list(kind)
                or pa.types.is_large_list(kind)
                or pa.types.is_fixed_size_list(kind)
            ):
                raise StoreError(
                    misfit(key, spec, f"{_describe(kind)}, which is not a list (index {step})")
                )
            lists.append((expr, step))
            kind = value_type(kind.value_type)
            expr = f"list_extract({expr}, {step + 1})"
    return ParquetSource(expr, kind, tuple(lists))


def misfit(key: str, spec: ColumnSpec, what: str, kind: pa.DataType | None = None) -> str:
    fits = "" if kind is None else _fitting(kind)
    return (
        f"{key!r}: field {spec.qualname!r} ({spec.field.rule.type_name}) reads "
        f"{spec.jsonpath}, which is Parquet {what}; Redshift's COPY refuses a Parquet column "
        "whose type is not the table's, so the step stops rather than read it otherwise"
        f"{'; ' + fits if fits else ''} (docs/loading.md has the table of types)"
    )


def _fitting(kind: pa.DataType) -> str:
    """The field types a Parquet type loads into, as advice."""
    candidates: list[tuple[str, convert.Rule]] = [
        ("SmallInt()", convert.IntegerRule(16)),
        ("Integer()", convert.IntegerRule(32)),
        ("BigInt()", convert.IntegerRule(64)),
        ("Real()", convert.FloatRule(32)),
        ("Double()", convert.FloatRule(64)),
        ("Boolean()", convert.BooleanRule()),
        ("String(n)", convert.VarcharRule(256)),
        ("Date()", convert.DateRule()),
        ("Timestamp()", convert.TimestampRule()),
        ("TimestampTZ()", convert.TimestampRule(timezone=True)),
    ]
    kind = value_type(kind)
    names = [name for name, rule in candidates if parquet_conversion(rule, kind) is not None]
    if pa.types.is_decimal(kind):
        names.insert(0, f"Decimal({kind.precision}, {kind.scale}) or wider")
    if pa.types.is_struct(kind):
        names.insert(0, "a Nested class")
    if parquet_conversion(convert.SuperRule(), kind) is not None:
        names.append("Super()")
    return f"it loads into {' or '.join(names)}" if names else "no field type takes it"


def parquet_columns(
    specs: Sequence[ColumnSpec],
    schema: pa.Schema,
    key: str,
    options: convert.ConvertOptions = convert.DEFAULT_OPTIONS,
) -> list[tuple[ParquetSource | None, Conversion | None]]:
    """Each field's source and conversion in an object of ``schema``.

    Raises:
        StoreError: For a column whose type does not fit its field, or a NOT NULL field the
            object has no column for (naming the object and the field).
    """
    out: list[tuple[ParquetSource | None, Conversion | None]] = []
    for spec in specs:
        source = _parquet_source(spec, schema, key)
        if source is None:
            if not spec.nullable:
                raise StoreError(
                    f"{key!r} has no column {spec.jsonpath} for the NOT NULL field "
                    f"{spec.qualname!r}: every row would be rejected"
                )
            out.append((None, None))
            continue
        conversion = parquet_conversion(spec.field.rule, source.kind, options)
        if conversion is None:
            raise StoreError(misfit(key, spec, _describe(source.kind), source.kind))
        out.append((source, conversion))
    return out


def parquet_metadata(path: Path, key: str) -> pq.FileMetaData:
    """The footer of a Parquet file.

    Raises:
        StoreError: If the file is not Parquet (naming the object).
    """
    try:
        with path.open("rb") as file:
            head = file.read(4)
            file.seek(0, 2)
            size = file.tell()
            file.seek(max(0, size - 4))
            tail = file.read(4)
    except OSError as exc:
        raise StoreError(f"cannot read {key!r}: {exc}") from exc
    if head != _MAGIC or tail != _MAGIC:
        raise StoreError(
            f"{key!r} is not a Parquet file (it does not start and end with PAR1); the step "
            "reads Parquet"
        )
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{key!r} is not a readable Parquet file: {exc}") from exc


def parquet_schema_from_tail(tail: bytes, key: str) -> pa.Schema:
    """The Arrow schema of a Parquet object from its last bytes (at least the footer and
    the 8 bytes after it).

    Raises:
        StoreError: If the bytes do not end a Parquet file.
    """
    import io

    if len(tail) < 8 or tail[-4:] != _MAGIC:
        raise StoreError(f"{key!r} is not a Parquet file (it does not end with PAR1)")
    (length,) = struct.unpack("<I", tail[-8:-4])
    if length + 8 > len(tail):
        raise StoreError(f"{key!r}: its Parquet footer is larger than the bytes read")
    try:
        return pq.read_metadata(io.BytesIO(tail[-(length + 8) :])).schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{key!r} is not a readable Parquet file: {exc}") from exc
