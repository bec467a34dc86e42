"""The Parquet lane: rows made in Arrow equal the query's for the same chunk, and a chunk with
any value that is a reject is left to the query (which rejects it)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arbalest import (
    BigInt,
    Boolean,
    Char,
    Date,
    Decimal,
    Double,
    Integer,
    Nested,
    Real,
    Schema,
    SmallInt,
    String,
    Super,
    Timestamp,
    TimestampTZ,
    convert,
)
from arbalest.loading import parquet_lane, tabular_feed
from arbalest.loading.parquet import parquet_columns, parquet_metadata
from arbalest.loading.parquet_lane import lane_for
from arbalest.loading.tabular import TableChunk, TabularTransform
from arbalest.loading.transform import connect_private
from arbalest.schema._build import ColumnSpec
from tests.fixtures.feeds import object_chunks
from tests.fixtures.schemas import fresh_base


class Wide(fresh_base()):  # type: ignore[misc]
    __tablename__ = "wide"
    id = String(8, nullable=False)
    small = SmallInt()
    number = BigInt()
    real = Real()
    amount = Decimal(12, 2)
    score = Double()
    day = Date()
    at = Timestamp()
    zoned = TimestampTZ()
    missing = Integer()  # no such column in the objects: NULL

    class inner(Nested):
        flag = Boolean()
        level = Integer()


def _wide(**changes: list[Any]) -> dict[str, pa.Array | list[Any]]:
    columns: dict[str, pa.Array | list[Any]] = {
        "id": ["a", "é", ""],
        "small": pa.array([1, None, -3], pa.int8()),
        "number": pa.array([2**40, None, -(2**40)], pa.int64()),
        "real": pa.array([1.5, None, -0.25], pa.float32()),
        "amount": pa.array(
            [decimal.Decimal("1.5"), None, decimal.Decimal("-99.9")], pa.decimal128(5, 1)
        ),
        "score": pa.array([0.1, None, 1e300], pa.float64()),
        "day": pa.array([dt.date(1, 1, 1), None, dt.date(9999, 12, 31)], pa.date32()),
        "at": pa.array(
            [dt.datetime(2024, 1, 2, 3, 4, 5, 6000), None, dt.datetime(1, 1, 1)],
            pa.timestamp("ms"),
        ),
        "zoned": pa.array(
            [dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC), None, None],
            pa.timestamp("us", tz="Europe/Paris"),
        ),
        "inner": pa.array(
            [{"flag": True, "level": 1}, None, {"flag": None, "level": 7}],
            pa.struct([("flag", pa.bool_()), ("level", pa.int16())]),
        ),
    }
    columns.update(changes)
    return columns


def _chunk(tmp_path: Path, specs: list[ColumnSpec], columns: dict[str, Any]) -> TableChunk:
    """The object's one chunk, read as the feed reads it."""
    pq.write_table(pa.table(columns), tmp_path / "o.parquet")
    (chunk,) = object_chunks(tmp_path, "o.parquet", specs, fmt="parquet")
    return chunk


def _convert(chunk: TableChunk, specs: list[ColumnSpec], *, lane: bool) -> tuple[Any, ...]:
    """The good rows (sorted), the rows per chunk, the filled counts and the rejects."""
    table, chunk_lane = chunk.table, chunk.lane
    if not lane:
        chunk.lane = None
    con = connect_private(threads=1)
    transform = TabularTransform(specs, convert.ConvertOptions(), con)
    try:
        batch = transform.convert([chunk])
        taken = batch.fast is not None
        transform.finish(batch, {})
        transform.export(batch, Path("unused"), "arrow", with_position=True)
        rows = [] if batch.table is None else batch.table.to_pylist()
        rejects = [(r.line, r.column, r.code) for r in batch.rejects]
        return (
            taken,
            sorted(rows, key=lambda r: r["line"]),
            batch.rows,
            batch.filled,
            rejects,
        )
    finally:
        chunk.table, chunk.lane = table, chunk_lane
        transform.close()
        con.close()


def test_the_lane_gives_the_querys_rows_for_every_kind_it_takes(tmp_path: Path) -> None:
    specs = list(Wide.__fields__)
    chunk = _chunk(tmp_path, specs, _wide())
    assert chunk.lane is not None
    taken, *fast = _convert(chunk, specs, lane=True)
    slow_taken, *slow = _convert(chunk, specs, lane=False)
    assert (taken, slow_taken) == (True, False)
    assert fast == slow
    rows = fast[0]
    assert [r["line"] for r in rows] == [1, 2, 3]
    assert rows[0]["v8"] == dt.datetime(2024, 1, 2, 3, 4, 5, 6000)  # ms read exactly
    assert rows[0]["v9"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)
    assert (rows[0]["v11"], rows[2]["v11"], rows[2]["v12"]) == (True, None, 7)  # nested
    assert rows[1]["v11"] is None  # a NULL struct: NULL fields


@pytest.mark.parametrize(
    ("changes", "reject"),
    [
        ({"id": ["a", "b", "123456789"]}, (3, "id", 1204)),  # longer than String(8)
        ({"id": ["a", "b\x00", "c"]}, (2, "id", 1220)),  # NUL
        ({"id": ["a", None, "c"]}, (2, "id", 1213)),  # NULL in a NOT NULL field
        (
            {"at": pa.array([0, 253402300800, None], pa.timestamp("s"))},  # year 10000
            (2, "at", 1206),
        ),
        ({"day": pa.array([0, -719163, None], pa.date32())}, (2, "day", 1205)),  # year 0
    ],
    ids=["overlong", "nul", "not null", "timestamp range", "date range"],
)
def test_a_chunk_with_a_reject_is_left_to_the_query(
    tmp_path: Path, changes: dict[str, Any], reject: tuple[int, str, int]
) -> None:
    specs = list(Wide.__fields__)
    chunk = _chunk(tmp_path, specs, _wide(**changes))
    taken, rows, counts, _, rejects = _convert(chunk, specs, lane=True)
    assert not taken
    assert rejects == [reject]
    assert len(rows) == 2
    assert counts == {0: 2}


def test_nanoseconds_and_a_string_not_utf8_are_left_to_the_query(
    tmp_path: Path, base: type[Schema]
) -> None:
    class Times(base):  # type: ignore[misc, valid-type]
        __tablename__ = "times"
        at = Timestamp()

    specs = list(Times.__fields__)
    chunk = _chunk(tmp_path, specs, {"at": pa.array([1_999], pa.timestamp("ns"))})
    assert chunk.lane is None
    assert chunk.table is None
    bad = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(b"\0\0\0\0\2\0\0\0"), pa.py_buffer(b"\xff\xfe")]
    )
    assert parquet_lane.checked_text(bad, 10) is None


def test_lane_for_leaves_char_super_and_list_elements_to_the_query(
    tmp_path: Path, base: type[Schema]
) -> None:
    class Fixed(base):  # type: ignore[misc, valid-type]
        __tablename__ = "fixed"
        code = Char(3)

    class Loose(base):  # type: ignore[misc, valid-type]
        __tablename__ = "loose"
        doc = Super()

    class Listed(base):  # type: ignore[misc, valid-type]
        __tablename__ = "listed"
        first = String(4, path="$.tags[0]")

    cases: list[tuple[type[Schema], dict[str, Any]]] = [
        (Fixed, {"code": ["abc"]}),
        (Loose, {"doc": ["{}"]}),
        (Listed, {"tags": [["a"]]}),
    ]
    for schema, columns in cases:
        specs = list(schema.__fields__)
        pq.write_table(pa.table(columns), tmp_path / "o.parquet")
        arrow = parquet_metadata(tmp_path / "o.parquet", "o").schema.to_arrow_schema()
        assert lane_for(specs, parquet_columns(specs, arrow, "o")) is None, schema


def test_a_nul_is_found_only_within_the_strings_a_slice_holds() -> None:
    strings = pa.array(["ab", "c\x00d", "ef", None])
    assert parquet_lane._has_nul(strings)
    assert parquet_lane._has_nul(strings.slice(1, 1))
    assert not parquet_lane._has_nul(strings.slice(0, 1))
    assert not parquet_lane._has_nul(strings.slice(2))


def test_chunks_are_cut_by_size_and_numbered_across_row_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small chunks across row groups: each chunk's rows and first row as the object has
    them."""
    pq.write_table(
        pa.table({"id": [f"r{i}" for i in range(10)]}), tmp_path / "o.parquet", row_group_size=3
    )
    metadata = parquet_metadata(tmp_path / "o.parquet", "o")
    monkeypatch.setattr(tabular_feed, "PARQUET_CHUNK_BYTES", 1)
    pieces = list(tabular_feed._row_chunks(tmp_path / "o.parquet", metadata, ["id"]))
    assert [(a, b) for a, b, _ in pieces] == [(i, i + 1) for i in range(10)]
    assert [t.column("id").to_pylist() for _, _, t in pieces if t is not None] == [
        [f"r{i}"] for i in range(10)
    ]
