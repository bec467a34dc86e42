"""The CSV fast lane: a chunk's text values converted in Arrow, with no query, when every
value is written in a form whose conversion is plain.

A CSV chunk's records are split into text columns by the feed (``csv_feed``). For each
field the lane proves, with vectorised checks over the whole column, that every value is
in a form the field's rule (``arbalest.convert``) reads in one way and that none is a
reject, and then converts the column with one Arrow cast:

- integers: the value's own text (``-?[1-9][0-9]*`` or ``0``): Arrow's cast, written back,
  gives the text again, and the type's range holds;
- decimals: the value's own text with exactly the scale's digits after the point (again
  written back to be sure), within the precision;
- REAL and DOUBLE: the rule's grammar (``FloatRule.grammar``), finite; Arrow and DuckDB both round
  decimal text to the nearest double;
- booleans: ``true``/``false``/``t``/``f``/``yes``/... in any case, as the rule reads them;
- VARCHAR: at most the column's bytes, no NUL (the bytes are UTF-8: the feed checked);
- timestamps: ``YYYY-MM-DD[T ]HH:MM[:SS[.f{1,6}]][Z]`` (years 0001 to 9999) and dates
  ``YYYY-MM-DD``, with ``time_format`` ``auto``;
- a field the header lacks: NULL.

An empty field of a type other than CHAR and VARCHAR is NULL, as in the query. Any other
value (a blank one, ``+5``, ``007``, ``1.5`` for a DECIMAL of scale 2, a date with a time, a
NULL in a NOT NULL field...) sends the whole chunk to the exact query
(``tabular.csv_query``), which finds the rejects: the lane only ever skips work whose
outcome it has proved. CHAR and SUPER fields, and custom or epoch time formats, take the
query always.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from arbalest import convert
from arbalest.convert.numbers import BOOLEAN_FALSE, BOOLEAN_TRUE
from arbalest.loading.parquet_lane import checked_text
from arbalest.schema._build import ColumnSpec

__all__ = ["CsvLane", "csv_lane_for"]

_YEAR: Final = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE: Final = rf"{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
#: The timestamps the lane takes: a subset of the rule's naive ISO 8601 grammar.
_TIMESTAMP: Final = (
    rf"^{_DATE}[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{{1,6}})?)?Z?$"
)
_DATE_ONLY: Final = rf"^{_DATE}$"
#: The rule's own grammar for REAL and DOUBLE, anchored.
_FLOAT: Final = rf"^(?:{convert.FloatRule.grammar})$"
_BOOLEANS: Final = pa.array(sorted(BOOLEAN_TRUE | BOOLEAN_FALSE))
_TRUE: Final = pa.array(sorted(BOOLEAN_TRUE))

Values: TypeAlias = "pa.Array | pa.ChunkedArray"
#: One field's converted column, given its text values (``None``: the query must convert).
Converter = Callable[[Values], "Values | None"]
#: A chunk's converted fields (``line``, ``v1..vn``) given its text table (``line``,
#: ``c1..cn``), or ``None``.
CsvLane = Callable[[pa.Table], "pa.Table | None"]


def _all(mask: Values) -> bool:
    """Whether every value of a boolean column is true (NULLs aside)."""
    return bool(pc.all(mask).as_py() is not False)


def _cast(values: Values, target: pa.DataType) -> Values | None:
    try:
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _matches(values: Values, pattern: str) -> bool:
    return _all(pc.match_substring_regex(values, pattern))


def _empty_as_null(values: Values) -> Values:
    """An empty field of a type other than text is NULL (blanks of other kinds are left to
    fail the lane's checks, so that the query reads them)."""
    if pc.min(pc.binary_length(values)).as_py() == 0:
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    return values


def _written_back(values: Values, converted: Values) -> bool:
    """Whether each converted value, written as text, is the text it was read from."""
    return _all(pc.equal(converted.cast(pa.string()), values))


def _integer(target: pa.DataType) -> Converter:
    def convert_one(values: Values) -> Values | None:
        wide = _cast(values, pa.int64())
        if wide is None or not _written_back(values, wide):
            return None
        return _cast(wide, target)  # out of range: an error, so the query's

    return convert_one


def _decimal(target: pa.DataType) -> Converter:
    def convert_one(values: Values) -> Values | None:
        number = _cast(values, target)  # beyond the precision or the scale: an error
        if number is None or not _written_back(values, number):
            return None
        return number

    return convert_one


def _float(target: pa.DataType) -> Converter:
    def convert_one(values: Values) -> Values | None:
        if not _matches(values, _FLOAT):
            return None
        number = _cast(values, pa.float64())
        if number is not None and target != pa.float64():
            number = number.cast(target, safe=False)  # rounded, as a C cast does
        if number is None or not _all(pc.is_finite(number)):
            return None
        return number

    return convert_one


def _boolean(values: Values) -> Values | None:
    present = len(values) - values.null_count
    if pc.sum(pc.is_in(values, _BOOLEANS)).as_py() != present:
        values = pc.utf8_lower(values)
        if pc.sum(pc.is_in(values, _BOOLEANS)).as_py() != present:
            return None
    return pc.if_else(pc.is_valid(values), pc.is_in(values, _TRUE), pa.scalar(None, pa.bool_()))


def _timestamp(target: pa.DataType) -> Converter:
    def convert_one(values: Values) -> Values | None:
        if not _matches(values, _TIMESTAMP):
            return None
        # a Z (UTC) designator changes nothing: the value is read as UTC either way
        naive = _cast(pc.utf8_rtrim(values, characters="Z"), pa.timestamp("us"))
        if naive is None:  # a day the month does not have
            return None
        return naive if target == naive.type else naive.cast(pa.int64()).cast(target)

    return convert_one


def _date(values: Values) -> Values | None:
    if not _matches(values, _DATE_ONLY):
        return None
    return _cast(values, pa.date32())


def _converter(rule: convert.Rule) -> tuple[Converter, pa.DataType] | None:
    """How the lane converts a field's text, and the converted type; ``None`` for the rules
    it leaves to the query. (A subclass of a rule may read differently: exact types only.)"""
    kind = type(rule)
    if kind is convert.IntegerRule:
        assert isinstance(rule, convert.IntegerRule)
        target: pa.DataType = {16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[rule.bits]
        return _integer(target), target
    if kind is convert.DecimalRule:
        assert isinstance(rule, convert.DecimalRule)
        target = pa.decimal128(rule.precision, rule.scale)
        return _decimal(target), target
    if kind is convert.FloatRule:
        assert isinstance(rule, convert.FloatRule)
        target = pa.float32() if rule.bits == 32 else pa.float64()
        return _float(target), target
    if kind is convert.BooleanRule:
        return _boolean, pa.bool_()
    if kind is convert.VarcharRule:
        assert isinstance(rule, convert.VarcharRule)
        length = rule.length
        return (lambda values: checked_text(values, length, utf8=True)), pa.string()
    if kind is convert.TimestampRule:
        assert isinstance(rule, convert.TimestampRule)
        target = pa.timestamp("us", tz="UTC" if rule.timezone else None)
        return _timestamp(target), target
    if kind is convert.DateRule:
        return _date, pa.date32()
    return None


def csv_lane_for(specs: Sequence[ColumnSpec], options: convert.ConvertOptions) -> CsvLane | None:
    """The lane for a schema's fields, or ``None`` when some field always needs the query."""
    if options.time_format != "auto":
        return None
    converters: list[tuple[Converter, pa.DataType, bool, bool]] = []
    for spec in specs:
        found = _converter(spec.field.rule)
        if found is None:
            return None
        text = isinstance(spec.field.rule, convert.VarcharRule)
        converters.append((*found, text, spec.nullable))
    schema = pa.schema(
        [pa.field("line", pa.int64())]
        + [pa.field(f"v{i}", kind) for i, (_, kind, _, _) in enumerate(converters, start=1)]
    )

    def lane(table: pa.Table) -> pa.Table | None:
        columns: list[Values] = [table.column("line")]
        for i, (convert_one, kind, text, nullable) in enumerate(converters, start=1):
            values: Values = table.column(f"c{i}")
            if values.null_count == len(values):
                if not nullable and len(values):
                    return None
                columns.append(pa.nulls(len(values), kind))
                continue
            column = convert_one(values if text else _empty_as_null(values))
            if column is None or (not nullable and column.null_count):
                return None
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=schema)

    return lane
