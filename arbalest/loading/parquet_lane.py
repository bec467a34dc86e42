"""The Parquet fast lane: a chunk's rows converted in Arrow, with no query, when every value
fits its field as it is.

A Parquet chunk is read into Arrow by the feed's reading threads. When each field's column
is of a kind the lane knows (integers, decimals, floats, booleans, VARCHAR text, dates,
timestamps to the microsecond, a column the object lacks) and this chunk's values give no
reject (no string longer than its VARCHAR or holding NUL or bytes that are not UTF-8, no
date or timestamp outside years 1 to 9999, no NULL in a NOT NULL field), its converted rows
are exactly the query's (``tabular.parquet_query``), made with Arrow's casts alone. Any
other chunk returns ``None`` and goes through the query, which finds its rejects: the lane
only ever skips work whose outcome it has proved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from arbalest import convert
from arbalest.loading.parquet import Conversion, ParquetSource, is_text, value_type
from arbalest.schema._build import ColumnSpec

__all__ = ["Lane", "checked_text", "counting", "lane_for"]

#: The microseconds of 0001-01-01 00:00:00 and of 9999-12-31 23:59:59.999999 (UTC).
_MIN_US: Final = -62_135_596_800_000_000
_MAX_US: Final = 253_402_300_799_999_999
#: The days of 0001-01-01 and of 9999-12-31.
_MIN_DAY: Final = -719_162
_MAX_DAY: Final = 2_932_896

#: One field's converted column of a chunk's table, or ``None`` (the query must convert).
Column = Callable[[pa.Table], "pa.Array | pa.ChunkedArray | None"]
#: A chunk's converted rows (``chunk, line, idx, v1..vn``) given its table, its sequence
#: number and its first row's number in the object (from 0), or ``None``.
Lane = Callable[[pa.Table, int, int], "pa.Table | None"]


def _target(rule: convert.Rule) -> pa.DataType | None:
    """The Arrow type of a field's converted value, for the rules the lane handles."""
    if isinstance(rule, convert.IntegerRule):
        return {16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[rule.bits]
    if isinstance(rule, convert.DecimalRule):
        return pa.decimal128(rule.precision, rule.scale)
    if isinstance(rule, convert.FloatRule):
        return pa.float32() if rule.bits == 32 else pa.float64()
    if isinstance(rule, convert.BooleanRule):
        return pa.bool_()
    if isinstance(rule, convert.VarcharRule):
        return pa.string()
    if isinstance(rule, convert.DateRule):
        return pa.date32()
    if isinstance(rule, convert.TimestampRule):
        return pa.timestamp("us", tz="UTC" if rule.timezone else None)
    return None  # CHAR (padded), SUPER (JSON): the query's


def _within(values: pa.Array | pa.ChunkedArray, low: int, high: int) -> bool:
    """Whether every value (as integers) lies in ``[low, high]`` (NULLs aside)."""
    bounds = pc.min_max(values)
    least, most = bounds["min"].as_py(), bounds["max"].as_py()
    return least is None or (low <= least and most <= high)


def checked_text(
    values: pa.Array | pa.ChunkedArray, length: int, *, utf8: bool = False
) -> pa.Array | pa.ChunkedArray | None:
    """VARCHAR(length) text as it is, when no value is a reject: UTF-8 (checked here unless
    ``utf8``: known to be), at most ``length`` bytes, no NUL (the query's ``strlen`` and
    ``contains(s, chr(0))``)."""
    if values.type != pa.string():  # large_string, string_view
        values = values.cast(pa.string())
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        try:
            if not utf8:
                chunk.validate(full=True)  # Arrow's check that the bytes are UTF-8
        except pa.ArrowInvalid:
            return None
        if _has_nul(chunk):
            return None
    longest = pc.max(pc.binary_length(values)).as_py()
    return None if longest is not None and longest > length else values


def _has_nul(strings: pa.StringArray) -> bool:
    """Whether the bytes of the strings hold a NUL (one ``memchr`` over them; a NULL's
    bytes, if any, count too: that only sends the chunk to the query)."""
    _, offsets, data = strings.buffers()
    if data is None or not len(strings):
        return False
    where = memoryview(offsets).cast("i")  # int32: the array is pa.string()
    start, end = where[strings.offset], where[strings.offset + len(strings)]
    return bool(data.slice(start, end - start).to_pybytes().find(b"\x00") >= 0)


def _column(spec: ColumnSpec, source: ParquetSource | None, target: pa.DataType) -> Column | None:
    """How to take a field's converted column from a chunk's table; ``None`` when the lane
    never can (a list index on the way, a type it leaves to the query)."""
    rule = spec.field.rule
    if source is None:  # the object has no such column: NULL (a NOT NULL field fails earlier)
        return lambda table: pa.nulls(table.num_rows, target)
    if source.lists or not all(isinstance(step, str) for step in spec.path):
        return None
    kind = value_type(source.kind)
    path = [str(step) for step in spec.path]

    def values(table: pa.Table) -> pa.Array | pa.ChunkedArray:
        column: pa.Array | pa.ChunkedArray = table.column(path[0])
        for step in path[1:]:  # a NULL struct gives NULL fields
            column = pc.struct_field(column, step)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        return column

    convert_one: Callable[[pa.Array | pa.ChunkedArray], pa.Array | pa.ChunkedArray | None]
    if pa.types.is_null(kind):
        convert_one = lambda column: pa.nulls(len(column), target)  # noqa: E731
    elif isinstance(rule, convert.IntegerRule | convert.DecimalRule | convert.BooleanRule):
        convert_one = lambda column: column.cast(target)  # noqa: E731  (types that fit: exact)
    elif isinstance(rule, convert.FloatRule):
        if not (pa.types.is_float32(kind) or pa.types.is_float64(kind)):
            return None
        convert_one = lambda column: column.cast(target)  # noqa: E731
    elif isinstance(rule, convert.VarcharRule):
        if not is_text(kind):
            return None
        length = rule.length
        convert_one = lambda column: checked_text(column, length)  # noqa: E731
    elif isinstance(rule, convert.DateRule):
        if not pa.types.is_date32(kind):
            return None

        def convert_one(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
            return column if _within(column.cast(pa.int32()), _MIN_DAY, _MAX_DAY) else None

    elif isinstance(rule, convert.TimestampRule):
        if not pa.types.is_timestamp(kind) or kind.unit == "ns":
            return None  # nanoseconds are floored to the microsecond by the query

        def convert_one(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray | None:
            # Arrow holds a zoned timestamp's instant in UTC: the same number the query's
            # timezone('UTC', ...) gives, and a naive one is read as UTC
            try:
                micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
            except pa.ArrowInvalid:  # beyond what microseconds hold
                return None
            return micros.cast(target) if _within(micros, _MIN_US, _MAX_US) else None

    else:
        return None

    def take(table: pa.Table) -> pa.Array | pa.ChunkedArray | None:
        column = convert_one(values(table))
        if column is None or (not spec.nullable and column.null_count):
            return None
        return column

    return take


_COUNT: list[pa.Array] = [pa.array([], pa.int64())]


def counting(count: int) -> pa.Array:
    """1, 2, ... ``count`` (int64), sliced from one array made once for the longest yet."""
    numbers = _COUNT[0]
    if len(numbers) < count:
        numbers = _COUNT[0] = pa.array(range(1, max(count, 2 * len(numbers)) + 1), pa.int64())
    return numbers.slice(0, count)


def lane_for(
    specs: Sequence[ColumnSpec],
    columns: Sequence[tuple[ParquetSource | None, Conversion | None]],
) -> Lane | None:
    """The lane for objects whose fields are found as ``columns`` says
    (``parquet.parquet_columns``); ``None`` when some field always needs the query."""
    takers: list[Column] = []
    types: list[pa.DataType] = []
    for spec, (source, _) in zip(specs, columns, strict=True):
        target = _target(spec.field.rule)
        taker = None if target is None else _column(spec, source, target)
        if taker is None or target is None:
            return None
        takers.append(taker)
        types.append(target)
    schema = pa.schema(
        [pa.field("chunk", pa.int32()), pa.field("line", pa.int64()), pa.field("idx", pa.int32())]
        + [pa.field(f"v{i}", kind) for i, kind in enumerate(types, start=1)]
    )

    def lane(table: pa.Table, seq: int, first_row: int) -> pa.Table | None:
        count = table.num_rows
        values = []
        for taker in takers:
            column = taker(table)
            if column is None:
                return None
            values.append(column)
        position = [
            pa.repeat(pa.scalar(seq, pa.int32()), count),
            pc.add(counting(count), first_row),  # the rows' numbers in the object, from 1
            pa.repeat(pa.scalar(0, pa.int32()), count),
        ]
        return pa.Table.from_arrays([*position, *values], schema=schema)

    return lane
